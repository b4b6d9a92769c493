// Conv2d layer over NCHW tensors (im2col + GEMM in ops/conv.cpp); Conv3d over NCDHW tensors
// (video clips; composed from conv2d in ops/conv3d.cpp).
#pragma once

#include "mmgrad/nn/module.h"
#include "mmgrad/ops/conv.h"
#include "mmgrad/ops/conv3d.h"

namespace mmgrad::nn {

class Conv2d : public Module {
 public:
  // weight [out, in, kh, kw] ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in * kh * kw
  // (PyTorch's default), bias [out] the same.
  Conv2d(int64_t in_channels, int64_t out_channels, Pair2 kernel_size, Pair2 stride = 1,
         Pair2 padding = 0, bool bias = true, Pair2 dilation = 1);
  // x [N, in, H, W] (or unbatched [in, H, W]) -> [N, out, OH, OW] with
  // OH = (H + 2 padding - dilation (kh - 1) - 1) / stride + 1 (and OW alike).
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Conv2d"; }
  std::string extra_repr() const override;
  void reset_parameters();

  int64_t in_channels, out_channels;
  Pair2 kernel_size, stride, padding, dilation;
  Tensor weight, bias;
};

// ---- Conv3d (issue 15)
// ---------------------------------------------------------------------------

// A 3-D convolution: a kernel_size.d x kernel_size.h x kernel_size.w filter slides over frames,
// rows and columns, so one filter sees motion (how a patch changes across frames) as well as
// shape. groups = 1 only.
class Conv3d : public Module {
 public:
  // weight [out, in, kd, kh, kw] ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
  // fan_in = in * kd * kh * kw (PyTorch's default), bias [out] the same.
  Conv3d(int64_t in_channels, int64_t out_channels, Triple3 kernel_size, Triple3 stride = 1,
         Triple3 padding = 0, bool bias = true, Triple3 dilation = 1);
  // x [N, in, D, H, W] (or unbatched [in, D, H, W]) -> [N, out, OD, OH, OW] with
  // OD = (D + 2 padding - dilation (kd - 1) - 1) / stride + 1 (and OH, OW alike).
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Conv3d"; }
  std::string extra_repr() const override;
  void reset_parameters();

  int64_t in_channels, out_channels;
  Triple3 kernel_size, stride, padding, dilation;
  Tensor weight, bias;
};

}  // namespace mmgrad::nn
