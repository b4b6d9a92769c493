// Resizing the spatial dims of [N, C, L], [N, C, H, W] or [N, C, D, H, W] tensors: PyTorch's
// torch.nn.functional.interpolate for the modes "nearest", "nearest-exact", "linear",
// "bilinear" and "trilinear" (the upsampling of a U-Net decoder).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad {

// Give exactly one of size and scale_factor, each with one value per spatial dim or a single
// value for all of them:
//   interpolate(x, {.scale_factor = {2.0}, .mode = "bilinear"})
//   interpolate(x, {.size = {7, 9}})
struct InterpolateOptions {
  std::vector<int64_t> size = {};         // the output's spatial sizes
  std::vector<double> scale_factor = {};  // output size = floor(input size * scale_factor)
  std::string mode = "nearest";           // nearest | nearest-exact | linear | bilinear | trilinear
  std::optional<bool> align_corners = {};  // linear modes only (default false); an error otherwise
  // true: map coordinates with input / output size instead of 1 / scale_factor (PyTorch's flag;
  // the two differ when input size * scale_factor is not a whole number).
  bool recompute_scale_factor = false;
};

// Each output element reads the input at a source coordinate. Per spatial dim, with output
// index i, input size I, output size O and scale s = 1 / scale_factor when one is given (else
// s = I / O):
//   nearest         src = min(floor(i * s), I - 1). PyTorch's "nearest", not centred in
//                   general: shrinking by 2 reads the first pixel of each pair, half a pixel
//                   off the output pixel's centre.
//   nearest-exact   src = min(floor((i + 0.5) * s), I - 1): the input pixel under the output
//                   pixel's centre (what OpenCV and PIL call nearest).
//   linear modes    align_corners = false (the default): src = max((i + 0.5) * s - 0.5, 0), so
//                   the images' outer edges line up and each pixel is a square of its own size;
//                   align_corners = true: src = i * (I - 1) / (O - 1), so the centres of the
//                   corner pixels line up.
// The value is x[floor(src)] (nearest) or the straight line between the neighbours x[floor(src)]
// and x[floor(src) + 1], each weighted by its closeness to src (linear). bilinear and trilinear
// do this along each spatial dim in turn (they are separable). Downsampling does not low-pass
// filter first (PyTorch's antialias=False default): shrinking by more than 2x skips input pixels,
// where adaptive_avg_pool2d would average them. The gradient sends each output's gradient back
// to the input elements it read, with the same weights. Written with index_select, mul and add
// (ops/interpolate.cpp), so it has no kernel of its own and runs on every device.
Tensor interpolate(const Tensor& x, const InterpolateOptions& options);

}  // namespace mmgrad
