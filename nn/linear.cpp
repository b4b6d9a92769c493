#include "mmgrad/nn/linear.h"

#include <cmath>

#include "mmgrad/nn/checks.h"
#include "mmgrad/nn/init.h"
#include "mmgrad/ops/elementwise.h"
#include "mmgrad/ops/matmul.h"

namespace mmgrad::nn {

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  MMGRAD_CHECK(x.defined() && weight.defined(), "linear: input and weight must be defined");
  MMGRAD_CHECK(weight.dim() == 2, "linear: weight must be [out, in], got ", describe(weight));
  MMGRAD_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: input ", describe(x),
               " does not end in in_features = ", weight.size(1), " (weight ", describe(weight),
               ")");
  MMGRAD_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)),
               "linear: bias must be [", weight.size(0), "], got ", describe(bias));
  Tensor y;
  if (x.dim() <= 2) {
    y = matmul(x, weight.t());
  } else {
    // [..., in] -> [rows, in] -> [rows, out] -> [..., out]
    Shape out_shape = x.shape();
    out_shape[out_shape.size() - 1] = weight.size(0);
    y = matmul(x.reshape({-1, weight.size(1)}), weight.t()).view(out_shape);
  }
  return bias.defined() ? y + bias : y;
}

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias)
    : in_features(in_features), out_features(out_features) {
  MMGRAD_CHECK(in_features > 0 && out_features > 0,
               "Linear: in_features and out_features must be positive, got ", in_features, " and ",
               out_features);
  weight = register_parameter("weight", Tensor::empty({out_features, in_features}));
  if (with_bias) bias = register_parameter("bias", Tensor::empty({out_features}));
  reset_parameters();
}

void Linear::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Linear::forward(const Tensor& x) {
  detail::check_input(*this, x, weight);
  MMGRAD_CHECK(x.dim() >= 1 && x.size(-1) == in_features, label(), ": input is ", describe(x),
               "; expected [..., ", in_features, "]");
  return linear(x, weight, bias);
}

std::string Linear::extra_repr() const {
  return cat_str("in_features=", in_features, ", out_features=", out_features,
                 ", bias=", bias.defined() ? "true" : "false");
}

}  // namespace mmgrad::nn
