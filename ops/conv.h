// 2-D convolution and pooling over NCHW tensors.
#pragma once

#include "tensor/tensor.h"

namespace mmgrad {

// A (height, width) pair; a single number means both.
struct Pair2 {
  int64_t h = 0, w = 0;
  Pair2(int64_t v) : h(v), w(v) {}  // NOLINT(google-explicit-constructor)
  Pair2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
};

// x [N, C, H, W], weight [Cout, C, KH, KW], bias [Cout] (optional) -> [N, Cout, OH, OW],
// computed as im2col + GEMM.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, Pair2 stride = 1,
              Pair2 padding = 0, Pair2 dilation = 1);
// stride 0 means stride = kernel_size (PyTorch's default). Padding counts as -inf for max and
// as zero (included in the divisor) for avg.
Tensor max_pool2d(const Tensor& x, Pair2 kernel_size, Pair2 stride = 0, Pair2 padding = 0);
Tensor avg_pool2d(const Tensor& x, Pair2 kernel_size, Pair2 stride = 0, Pair2 padding = 0);
Tensor adaptive_avg_pool2d(const Tensor& x, Pair2 output_size);

}  // namespace mmgrad
