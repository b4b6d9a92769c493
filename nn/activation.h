// Stateless layers: activations (ReLU, GELU, Tanh, Sigmoid), Identity and Flatten.
#pragma once

#include <memory>
#include <string>

#include "nn/module.h"

namespace mmgrad::nn {

// The activations MLP and the transformer layers can be configured with.
enum class Activation { ReLU, GELU, Tanh, Sigmoid, Identity };

// "relu", "gelu", "tanh", "sigmoid", "identity" (or "none").
Activation parse_activation(const std::string& s);
const char* activation_name(Activation a);
// The function itself, and the same as a module (for Sequential).
Tensor activate(const Tensor& x, Activation a);
std::shared_ptr<Module> make_activation(Activation a);

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "ReLU"; }
};

// Exact GELU: x * Phi(x), Phi the standard normal CDF.
class GELU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "GELU"; }
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Tanh"; }
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Sigmoid"; }
};

class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Identity"; }
};

// Flattens dims start_dim..end_dim into one (a view when the input is contiguous); the default
// keeps the batch dim: [N, C, H, W] -> [N, C*H*W].
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1)
      : start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Flatten"; }
  std::string extra_repr() const override;

  int64_t start_dim, end_dim;
};

}  // namespace mmgrad::nn
