// Checker for task 7.1: the learner's layer norm backward against mmgrad's plain-loop definition
// (reference::layer_norm_backward in ops/norm.cpp: the full D x D Jacobian product per row,
// independent of the fused kernel the solution runs through autograd).
#include "checks.h"

namespace mmgrad::exercises {

void check_layer_norm_backward(Checker& c, decltype(&layer_norm_backward) f) {
  Generator gen(71);
  struct Case {
    Shape shape;
    std::string gamma;  // "ones", "random"
    double eps;
    DType dtype;
    std::string what, hint;
  };
  const std::vector<Case> cases = {
      {{1, 4},
       "ones",
       1e-5,
       DType::Float64,
       "one row of 4, gamma = 1",
       "dL/dx_j = rstd (g_j - mean(g) - xhat_j mean(g xhat)): both means couple the whole row"},
      {{3, 5},
       "random",
       1e-5,
       DType::Float64,
       "3 rows of 5, random gamma",
       "gamma scales the gradient arriving at xhat: g = grad_out * gamma, before the two means"},
      {{2, 3, 6},
       "random",
       1e-5,
       DType::Float64,
       "a [2, 3, 6] tensor (tokens of 2 images)",
       "normalise over the LAST dimension only, once per (image, token) row; keep that dimension "
       "(keepdim) so the means broadcast back"},
      {{2, 4},
       "random",
       0.5,
       DType::Float64,
       "eps = 0.5",
       "rstd = 1 / sqrt(var + eps), with the biased variance (divide by D, not D - 1)"},
      {{4, 8},
       "random",
       1e-5,
       DType::Float32,
       "float32, 4 rows of 8",
       "return x's dtype (float32 here)"},
  };
  for (const Case& k : cases) {
    const int64_t D = k.shape[k.shape.size() - 1], N = k.shape.numel() / D;
    Tensor x = Tensor::randn(k.shape, DType::Float64, &gen) * 2.0 + 0.5;
    Tensor g = Tensor::randn(k.shape, DType::Float64, &gen);
    Tensor gamma = k.gamma == "ones" ? Tensor::ones({D}, DType::Float64)
                                     : Tensor::randn({D}, DType::Float64, &gen) + 1.0;
    // the truth from float64 loops; the float32 case rounds its inputs first, as f sees them
    Tensor x_in = x.to(k.dtype), g_in = g.to(k.dtype), gamma_in = gamma.to(k.dtype);
    const auto want = reference::layer_norm_backward(
        x_in.to(DType::Float64).to_vector<double>(), g_in.to(DType::Float64).to_vector<double>(), N,
        D, gamma_in.to(DType::Float64).to_vector<double>(), k.eps);
    Tensor got = f(g_in, x_in, gamma_in, k.eps);
    const std::string what = cat_str("dL/dx for ", k.what);
    c.shape(what, got, k.shape, "dL/dx has x's shape");
    if (got.dtype() != k.dtype)
      throw WrongAnswer(cat_str(what, ": your result is ", dtype_name(got.dtype()), " but x is ",
                                dtype_name(k.dtype), "\n        hint: ", k.hint));
    const bool f32 = k.dtype == DType::Float32;
    c.close(what, got, Tensor::from_vector(want.dx, k.shape), f32 ? 1e-3 : 1e-7, f32 ? 1e-4 : 1e-9,
            k.hint);
  }
  // a constant row has var = 0: xhat = 0 and rstd = 1 / sqrt(eps) is large; nothing divides by 0
  Tensor x = Tensor::full({2, 5}, 3.0, DType::Float64);
  Tensor g = Tensor::randn({2, 5}, DType::Float64, &gen);
  Tensor gamma = Tensor::randn({5}, DType::Float64, &gen);
  const auto want = reference::layer_norm_backward(x.to_vector<double>(), g.to_vector<double>(), 2,
                                                   5, gamma.to_vector<double>(), 1e-3);
  c.close("dL/dx for constant rows (variance 0, eps = 1e-3)", f(g, x, gamma, 1e-3),
          Tensor::from_vector(want.dx, {2, 5}), 1e-7, 1e-9,
          "var = 0 gives xhat = 0 and rstd = 1 / sqrt(eps): the result is rstd (g - mean(g))");
}

namespace {
Tensor xhat_of(const Tensor& x, double eps, Tensor* rstd) {
  Tensor mu = mean(x, {-1}, true);
  *rstd = 1.0 / sqrt(var(x, {-1}, 0, true) + eps);
  return (x - mu) * *rstd;
}
// Forgets the path through the mean: no - mean(g).
Tensor no_mean_term(const Tensor& grad_out, const Tensor& x, const Tensor& gamma, double eps) {
  Tensor rstd, xhat = xhat_of(x, eps, &rstd);
  Tensor g = grad_out * gamma;
  return rstd * (g - xhat * mean(g * xhat, {-1}, true));
}
// Forgets the path through the variance: no - xhat * mean(g * xhat).
Tensor no_variance_term(const Tensor& grad_out, const Tensor& x, const Tensor& gamma, double eps) {
  Tensor rstd, xhat = xhat_of(x, eps, &rstd);
  Tensor g = grad_out * gamma;
  return rstd * (g - mean(g, {-1}, true));
}
// Uses grad_out where grad_out * gamma belongs.
Tensor ignores_gamma(const Tensor& grad_out, const Tensor& x, const Tensor&, double eps) {
  Tensor rstd, xhat = xhat_of(x, eps, &rstd);
  const Tensor& g = grad_out;
  return rstd * (g - mean(g, {-1}, true) - xhat * mean(g * xhat, {-1}, true));
}
// Normalises with the unbiased variance (divides by D - 1), as var() does by default.
Tensor unbiased_variance(const Tensor& grad_out, const Tensor& x, const Tensor& gamma, double eps) {
  Tensor mu = mean(x, {-1}, true);
  Tensor rstd = 1.0 / sqrt(var(x, {-1}, 1, true) + eps);
  Tensor xhat = (x - mu) * rstd;
  Tensor g = grad_out * gamma;
  return rstd * (g - mean(g, {-1}, true) - xhat * mean(g * xhat, {-1}, true));
}
}  // namespace

std::vector<Mutant> mutants_layer_norm_backward() {
  return {
      {"forgets the mean-of-g term (the path through the mean)",
       [](Checker& c) { check_layer_norm_backward(c, &no_mean_term); }},
      {"forgets the xhat * mean(g * xhat) term (the path through the variance)",
       [](Checker& c) { check_layer_norm_backward(c, &no_variance_term); }},
      {"ignores gamma", [](Checker& c) { check_layer_norm_backward(c, &ignores_gamma); }},
      {"uses the unbiased variance",
       [](Checker& c) { check_layer_norm_backward(c, &unbiased_variance); }},
  };
}

}  // namespace mmgrad::exercises
