// Stateless layers: activations (ReLU, GELU, Tanh, Sigmoid, SiLU), Identity and Flatten.
#pragma once

#include <memory>
#include <string>

#include "mmgrad/nn/module.h"

namespace mmgrad::nn {

// The activations MLP and the transformer layers can be configured with. GELU is the exact form
// (PyTorch's default); GELUTanh its tanh approximation (GELU(approximate="tanh")).
enum class Activation { ReLU, GELU, Tanh, Sigmoid, Identity, GELUTanh, SiLU };

// "relu", "gelu", "gelu_tanh", "tanh", "sigmoid", "silu", "identity" (or "none").
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

// GELU, as torch.nn.GELU(approximate): "none" (the default) is exact, x * Phi(x) with Phi the
// standard normal CDF; "tanh" is x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (GPT-2's).
class GELU : public Module {
 public:
  explicit GELU(std::string approximate = "none");
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "GELU"; }
  std::string extra_repr() const override;

  std::string approximate;
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

// SiLU (also called swish), as torch.nn.SiLU: x * sigmoid(x). Smooth, not monotonic (its minimum
// is about -0.278 at x = -1.278), and close to ReLU for large |x|; the activation of the ResNet
// blocks in diffusion U-Nets.
class SiLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "SiLU"; }
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
