#include "mmgrad/nn/activation.h"

#include <utility>

#include "mmgrad/ops/elementwise.h"
#include "mmgrad/ops/shape.h"

namespace mmgrad::nn {

Activation parse_activation(const std::string& s) {
  if (s == "relu") return Activation::ReLU;
  if (s == "gelu") return Activation::GELU;
  if (s == "gelu_tanh") return Activation::GELUTanh;
  if (s == "tanh") return Activation::Tanh;
  if (s == "sigmoid") return Activation::Sigmoid;
  if (s == "silu") return Activation::SiLU;
  if (s == "identity" || s == "none") return Activation::Identity;
  fail(cat_str("parse_activation: unknown activation '", s,
               "' (expected relu, gelu, gelu_tanh, tanh, sigmoid, silu or identity)"));
}

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::ReLU:
      return "relu";
    case Activation::GELU:
      return "gelu";
    case Activation::GELUTanh:
      return "gelu_tanh";
    case Activation::Tanh:
      return "tanh";
    case Activation::Sigmoid:
      return "sigmoid";
    case Activation::SiLU:
      return "silu";
    case Activation::Identity:
      return "identity";
  }
  return "?";
}

Tensor activate(const Tensor& x, Activation a) {
  switch (a) {
    case Activation::ReLU:
      return relu(x);
    case Activation::GELU:
      return gelu(x);
    case Activation::GELUTanh:
      return gelu(x, "tanh");
    case Activation::Tanh:
      return tanh(x);
    case Activation::Sigmoid:
      return sigmoid(x);
    case Activation::SiLU:
      return silu(x);
    case Activation::Identity:
      return x;
  }
  fail("activate: invalid activation");
}

std::shared_ptr<Module> make_activation(Activation a) {
  switch (a) {
    case Activation::ReLU:
      return std::make_shared<ReLU>();
    case Activation::GELU:
      return std::make_shared<GELU>();
    case Activation::GELUTanh:
      return std::make_shared<GELU>("tanh");
    case Activation::Tanh:
      return std::make_shared<Tanh>();
    case Activation::Sigmoid:
      return std::make_shared<Sigmoid>();
    case Activation::SiLU:
      return std::make_shared<SiLU>();
    case Activation::Identity:
      return std::make_shared<Identity>();
  }
  fail("make_activation: invalid activation");
}

Tensor ReLU::forward(const Tensor& x) { return relu(x); }
GELU::GELU(std::string approximate_) : approximate(std::move(approximate_)) {
  MMGRAD_CHECK(approximate == "none" || approximate == "tanh",
               "GELU: approximate must be \"none\" or \"tanh\", got \"", approximate, "\"");
}
Tensor GELU::forward(const Tensor& x) { return gelu(x, approximate); }
std::string GELU::extra_repr() const {
  return approximate == "none" ? "" : cat_str("approximate='", approximate, "'");
}
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }
Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }
Tensor SiLU::forward(const Tensor& x) { return silu(x); }
Tensor Identity::forward(const Tensor& x) { return x; }

Tensor Flatten::forward(const Tensor& x) {
  MMGRAD_CHECK(x.defined(), label(), ": input is an undefined tensor");
  return flatten(x, start_dim, end_dim);
}

std::string Flatten::extra_repr() const {
  return cat_str("start_dim=", start_dim, ", end_dim=", end_dim);
}

}  // namespace mmgrad::nn
