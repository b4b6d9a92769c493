// Dropout layer: in training, zeroes each element with probability p and scales the survivors
// by 1 / (1 - p) so the expected value is unchanged; in eval mode, the identity.
#pragma once

#include "mmgrad/nn/module.h"

namespace mmgrad::nn {

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Dropout"; }
  std::string extra_repr() const override;

  double p;
};

}  // namespace mmgrad::nn
