// 3-D convolution and pooling over NCDHW tensors (video clips: [batch, channels, frames, H, W]).
//
// All three are COMPOSED from the 2-D ops of ops/conv.h and shape ops (ops/conv3d.cpp says how),
// so they have no kernel of their own: their backward comes from the parts, and they run on
// every device the parts run on.
#pragma once

#include "mmgrad/ops/conv.h"
#include "mmgrad/tensor/tensor.h"

namespace mmgrad {

// A (depth, height, width) triple; a single number means all three.
struct Triple3 {
  int64_t d = 0, h = 0, w = 0;
  Triple3(int64_t v) : d(v), h(v), w(v) {}  // NOLINT(google-explicit-constructor)
  Triple3(int64_t d_, int64_t h_, int64_t w_) : d(d_), h(h_), w(w_) {}
};

// Every op also takes an unbatched [C, D, H, W] input and then returns [C', OD, OH, OW].
// Output size per axis as in 2-D: OD = (D + 2*padding - dilation*(KD - 1) - 1) / stride + 1.

// x [N, C, D, H, W], weight [Cout, C, KD, KH, KW], bias [Cout] (optional)
//   -> [N, Cout, OD, OH, OW], PyTorch's conv3d with groups = 1 (groups are not supported).
Tensor conv3d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, Triple3 stride = 1,
              Triple3 padding = 0, Triple3 dilation = 1);
// stride 0 (the default) means stride = kernel_size, as PyTorch; padding may be at most half the
// kernel and counts as -inf. ceil_mode, dilation and return_indices are not supported. Ties and
// NaN as max_pool2d: the first maximum in (d, h, w) order wins, a window holding NaN gives NaN.
Tensor max_pool3d(const Tensor& x, Triple3 kernel_size, Triple3 stride = 0, Triple3 padding = 0);
// Output cell (i, j, k) averages frames [floor(i*D/OD), ceil((i+1)*D/OD)) and likewise rows and
// columns: any input size maps to the requested output size (1 = global average pooling).
Tensor adaptive_avg_pool3d(const Tensor& x, Triple3 output_size);

}  // namespace mmgrad
