// Pooling layers over NCHW tensors (ops/conv.h has the functions).
#pragma once

#include "mmgrad/nn/module.h"
#include "mmgrad/ops/conv.h"
#include "mmgrad/ops/conv3d.h"

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

// ---- 3-D pooling over NCDHW tensors (issue 15; ops/conv3d.h has the functions) -----------------

// stride 0 means stride = kernel_size (PyTorch's default); padding counts as -inf.
class MaxPool3d : public Module {
 public:
  explicit MaxPool3d(Triple3 kernel_size, Triple3 stride = 0, Triple3 padding = 0);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "MaxPool3d"; }
  std::string extra_repr() const override;
  Triple3 kernel_size, stride, padding;  // stride as used (kernel_size when given as 0)
};

// Averages each of output_size.d x .h x .w regions of the input (any input size):
// AdaptiveAvgPool3d(1) is global average pooling over frames and pixels.
class AdaptiveAvgPool3d : public Module {
 public:
  explicit AdaptiveAvgPool3d(Triple3 output_size);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "AdaptiveAvgPool3d"; }
  std::string extra_repr() const override;
  Triple3 output_size;
};

}  // namespace mmgrad::nn
