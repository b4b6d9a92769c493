// Helpers for the nn test suites.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "mmgrad/mmgrad.h"
#include "mmgrad/nn/layers.h"

namespace mmgrad::testing {

// Gradient check of a module with respect to its inputs AND its parameters.
//
// autograd/gradcheck.h checks the gradient of a function with respect to the tensors passed to
// it; a module's parameters live inside the module, so this applies the same test to them:
// L = sum(fn(inputs) * w) with a fixed random w; the analytic gradient from one backward pass
// (into the inputs that require grad and into every parameter of m) is compared element by
// element with the central difference (L(x + eps) - L(x - eps)) / (2 eps), computed by
// perturbing each element in place. An element passes when
// |analytic - numeric| <= tol * max(1, |analytic|, |numeric|). m must be float64 (to(kFloat64)).
inline GradcheckResult module_gradcheck(nn::Module& m,
                                        const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                                        const std::vector<Tensor>& inputs, double eps = 1e-6,
                                        double tol = 1e-6) {
  std::vector<Tensor> leaves;
  std::vector<Tensor> targets;
  std::vector<std::string> target_names;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor leaf = inputs[i].detach().clone();
    if (inputs[i].requires_grad()) {
      REQUIRE(inputs[i].dtype() == kFloat64);
      leaf.requires_grad_(true);
      targets.push_back(leaf);
      target_names.push_back("input " + std::to_string(i));
    }
    leaves.push_back(leaf);
  }
  for (auto& [name, p] : m.named_parameters()) {
    REQUIRE(p.dtype() == kFloat64);
    REQUIRE(p.is_contiguous());
    targets.push_back(p);
    target_names.push_back(name);
  }
  m.zero_grad();
  Tensor out = fn(leaves);
  Generator gen(777);
  Tensor w = Tensor::randn(out.shape(), out.options(), &gen);
  std::vector<double> wv = w.to_vector<double>();
  out.backward(w);
  auto loss = [&]() {
    std::vector<double> o = fn(leaves).to_vector<double>();
    double s = 0;
    for (size_t i = 0; i < o.size(); ++i) s += o[i] * wv[i];
    return s;
  };
  GradcheckResult r;
  NoGradGuard no_grad;
  std::string worst_name;
  for (size_t t = 0; t < targets.size(); ++t) {
    Tensor x = targets[t];
    Tensor g = x.grad();
    std::vector<double> analytic =
        g.defined() ? g.to_vector<double>() : std::vector<double>(size_t(x.numel()), 0.0);
    double* p = x.data_ptr<double>();
    for (int64_t j = 0; j < x.numel(); ++j) {
      double orig = p[j];
      p[j] = orig + eps;
      double plus = loss();
      p[j] = orig - eps;
      double minus = loss();
      p[j] = orig;
      double numeric = (plus - minus) / (2 * eps);
      double a = analytic[size_t(j)];
      double err = std::abs(a - numeric) / std::max({1.0, std::abs(a), std::abs(numeric)});
      if (std::isnan(err)) err = INFINITY;
      if (r.worst_input < 0 || err > r.max_error) {
        r.max_error = err;
        r.worst_input = static_cast<int>(t);
        r.worst_index = j;
        r.worst_analytic = a;
        r.worst_numeric = numeric;
        worst_name = target_names[t];
      }
      ++r.elements_checked;
    }
  }
  r.ok = r.worst_input >= 0 && r.max_error <= tol;
  std::ostringstream os;
  os.precision(10);
  os << "module_gradcheck " << (r.ok ? "passed" : "FAILED") << ": " << r.elements_checked
     << " elements, worst error " << r.max_error << " at " << worst_name << " [" << r.worst_index
     << "] (analytic " << r.worst_analytic << ", numeric " << r.worst_numeric << ")";
  r.report = os.str();
  return r;
}

// Largest |a - b| / max(1, |b|) over all elements (a and b of the same shape).
inline double max_rel_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i)
    m = std::max(m, std::abs(x[i] - y[i]) / std::max(1.0, std::abs(y[i])));
  return m;
}

}  // namespace mmgrad::testing
