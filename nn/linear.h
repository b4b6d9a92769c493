// Linear (fully connected) layer: y = x W^T + b.
#pragma once

#include "mmgrad/nn/module.h"

namespace mmgrad::nn {

// The functional form: x [..., in], weight [out, in], bias [out] (optional) -> [..., out].
// Leading dims are folded into one GEMM (one matrix product, not a batch of small ones).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

class Linear : public Module {
 public:
  // weight [out, in] ~ U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's kaiming_uniform with a = sqrt(5)),
  // bias [out] ~ the same.
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  // x [..., in_features] -> [..., out_features].
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Linear"; }
  std::string extra_repr() const override;
  // Draws weight and bias again as the constructor does.
  void reset_parameters();

  int64_t in_features, out_features;
  Tensor weight, bias;  // bias is undefined when built without one
};

}  // namespace mmgrad::nn
