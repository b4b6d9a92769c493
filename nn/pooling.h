// Pooling layers over NCHW tensors (ops/conv.h has the functions).
#pragma once

#include "mmgrad/nn/module.h"
#include "mmgrad/ops/conv.h"

namespace mmgrad::nn {

// stride 0 means stride = kernel_size (PyTorch's default); padding counts as -inf.
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(Pair2 kernel_size, Pair2 stride = 0, Pair2 padding = 0);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "MaxPool2d"; }
  std::string extra_repr() const override;
  Pair2 kernel_size, stride, padding;
};

// Padding counts as zeros and is included in the divisor.
class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(Pair2 kernel_size, Pair2 stride = 0, Pair2 padding = 0);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "AvgPool2d"; }
  std::string extra_repr() const override;
  Pair2 kernel_size, stride, padding;
};

// Averages each of output_size.h x output_size.w regions of the input (any input size):
// AdaptiveAvgPool2d(1) is global average pooling.
class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Pair2 output_size);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "AdaptiveAvgPool2d"; }
  std::string extra_repr() const override;
  Pair2 output_size;
};

}  // namespace mmgrad::nn
