// Conv2d layer over NCHW tensors (im2col + GEMM in ops/conv.cpp).
#pragma once

#include "mmgrad/nn/module.h"
#include "mmgrad/ops/conv.h"

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

}  // namespace mmgrad::nn
