// Checker for task 1.1: numerical gradients of functions whose gradient autograd knows.
#include "checks.h"

namespace mmgrad::exercises {

namespace {

// The exact gradient of f at x, from mmgrad's backward().
Tensor autograd_grad(const std::function<Tensor(const Tensor&)>& f, const Tensor& x) {
  Tensor leaf = x.detach().clone().requires_grad_();
  f(leaf).backward();
  return leaf.grad();
}

}  // namespace

void check_numerical_grad(Checker& c, decltype(&numerical_grad) numerical) {
  Generator gen(11);
  struct Case {
    std::string what;
    Shape shape;
    std::function<Tensor(const Tensor&)> f;
    std::string hint;
  };
  const std::vector<Case> cases = {
      {"f(x) = sum(x^2), x of shape [4]",
       {4},
       [](const Tensor& x) { return sum(x * x); },
       "g_j = (f(x + eps e_j) - f(x - eps e_j)) / (2 eps), one entry j at a time"},
      {"f(x) = sum(x^3), x of shape [2, 3]",
       {2, 3},
       [](const Tensor& x) { return sum(x * x * x); },
       "a curved f tells central from one-sided differences: (f(x+eps e_j) - f(x-eps e_j)) / "
       "(2 eps) is accurate to eps^2, (f(x+eps e_j) - f(x)) / eps only to eps"},
      {"f(x) = sum(tanh(x) * w), x of shape [3, 2]",
       {3, 2},
       [](const Tensor& x) {
         Tensor w = Tensor::from_vector({1, -2, 3, 0.5, -1, 2}, {3, 2}, DType::Float64);
         return sum(tanh(x) * w);
       },
       "each entry j of the result is the derivative with respect to entry j of x (row-major)"},
  };
  for (const Case& k : cases) {
    Tensor x = Tensor::randn(k.shape, DType::Float64, &gen);
    Tensor before = x.clone();
    auto scalar_f = [&](const Tensor& xx) { return k.f(xx).item(); };
    Tensor got = numerical(scalar_f, x, 1e-3);
    c.close(k.what + ": x unchanged by numerical_grad", x, before, 0, 0,
            "restore every entry you nudge (or work on a copy)");
    c.close(k.what, got, autograd_grad(k.f, x), 1e-5, 1e-6, k.hint);
  }
}

namespace {
// One-sided differences: error of order eps, caught on sum(x^3) at eps = 1e-3.
Tensor forward_difference(const std::function<double(const Tensor&)>& f, const Tensor& x,
                          double eps) {
  std::vector<double> v = x.to_vector<double>();
  std::vector<double> g(v.size());
  const double f0 = f(x);
  for (size_t j = 0; j < v.size(); ++j) {
    const double keep = v[j];
    v[j] = keep + eps;
    g[j] = (f(Tensor::from_vector(v, x.shape(), DType::Float64)) - f0) / eps;
    v[j] = keep;
  }
  return Tensor::from_vector(g, x.shape(), DType::Float64);
}
// Forgets the 2 in 2 eps: every entry twice too large.
Tensor missing_two(const std::function<double(const Tensor&)>& f, const Tensor& x, double eps) {
  return solution::numerical_grad(f, x, eps) * 2.0;
}
}  // namespace

std::vector<Mutant> mutants_numerical_grad() {
  return {
      {"one-sided differences", [](Checker& c) { check_numerical_grad(c, &forward_difference); }},
      {"divides by eps instead of 2 eps",
       [](Checker& c) { check_numerical_grad(c, &missing_two); }},
  };
}

}  // namespace mmgrad::exercises
