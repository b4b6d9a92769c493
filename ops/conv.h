// 2-D convolution and pooling over NCHW tensors.
#pragma once

#include "mmgrad/tensor/tensor.h"

namespace mmgrad {

// A (height, width) pair; a single number means both.
struct Pair2 {
  int64_t h = 0, w = 0;
  Pair2(int64_t v) : h(v), w(v) {}  // NOLINT(google-explicit-constructor)
  Pair2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
};

// Every op also takes an unbatched [C, H, W] input and then returns [C', OH, OW].
// Output size per axis: OH = (H + 2*padding - dilation*(KH - 1) - 1) / stride + 1 (floor).

// x [N, C, H, W], weight [Cout, C, KH, KW], bias [Cout] (optional) -> [N, Cout, OH, OW],
// computed as im2col + GEMM (ops/conv.cpp).
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, Pair2 stride = 1,
              Pair2 padding = 0, Pair2 dilation = 1);
// Pooling (ops/pool.cpp). stride 0 (the default) means stride = kernel_size, as PyTorch; padding
// may be at most half the kernel. Padding counts as -inf for max and as zero (included in the
// divisor, count_include_pad) for avg. max_pool2d propagates NaN as PyTorch: a window holding
// NaN gives NaN, and its index (the gradient's target) is the window's last NaN.
Tensor max_pool2d(const Tensor& x, Pair2 kernel_size, Pair2 stride = 0, Pair2 padding = 0);
Tensor avg_pool2d(const Tensor& x, Pair2 kernel_size, Pair2 stride = 0, Pair2 padding = 0);
// Output cell (i, j) averages rows [floor(i*H/OH), ceil((i+1)*H/OH)) and likewise columns.
Tensor adaptive_avg_pool2d(const Tensor& x, Pair2 output_size);

}  // namespace mmgrad
