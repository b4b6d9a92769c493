// Checker for task 3.1: several Adam steps, the learner's results fed back in each time, against
// optim::Adam training a real parameter on the same gradients (its moments read from
// state_dict()).
#include <cmath>
#include <tuple>

#include "checks.h"

namespace mmgrad::exercises {

namespace {

// The tensor `name` ("exp_avg", ...) of parameter 0 in the optimizer's state.
Tensor state_of(const optim::Optimizer& opt, const std::string& name) {
  for (const auto& [key, t] : opt.state_dict())
    if (key == "state.0." + name) return t.clone();
  throw Error(cat_str("checker: optim::Adam has no state '", name, "'"));
}

}  // namespace

void check_adam_step(Checker& c, decltype(&adam_step) f) {
  Generator gen(31);
  struct Case {
    std::string what;
    Shape shape;
    DType dtype;
    optim::AdamOptions options;
    int steps;
    double grad_scale;
  };
  const std::vector<Case> cases = {
      {"the first step, default options (lr 1e-3, betas 0.9 / 0.999)",
       {4},
       DType::Float64,
       {},
       1,
       1.0},
      {"6 steps, lr 0.01, betas 0.8 / 0.99",
       {2, 3},
       DType::Float64,
       {.lr = 0.01, .beta1 = 0.8, .beta2 = 0.99},
       6,
       1.0},
      {"4 steps with weight_decay 0.1",
       {3, 2},
       DType::Float64,
       {.lr = 0.01, .weight_decay = 0.1},
       4,
       1.0},
      {"3 steps with tiny gradients (1e-6): where eps matters",
       {5},
       DType::Float64,
       {.lr = 0.01, .eps = 1e-6},
       3,
       1e-6},
      {"a 0-d parameter (like lesson 02's logit_scale), 5 steps",
       {},
       DType::Float64,
       {.lr = 0.05},
       5,
       1.0},
      {"5 steps in float32, weight_decay 0.01",
       {2, 4},
       DType::Float32,
       {.lr = 0.005, .weight_decay = 0.01},
       5,
       1.0},
  };
  for (const Case& k : cases) {
    const bool f64 = k.dtype == DType::Float64;
    // float32: 1 - 0.999f is 1.3e-5 away from 0.001, so float32 results differ at ~1e-5.
    const double rtol = f64 ? 1e-9 : 1e-4, atol = f64 ? 1e-15 : 1e-9;
    // The truth: optim::Adam on a real parameter. Our copy: p, m, v, fed back every step.
    Tensor start = Tensor::randn(k.shape, k.dtype, &gen);
    Tensor real = start.clone().requires_grad_();
    optim::Adam opt({real}, k.options);
    Tensor p = start.clone();
    Tensor m = Tensor::zeros(k.shape, k.dtype), v = Tensor::zeros(k.shape, k.dtype);
    for (int t = 1; t <= k.steps; ++t) {
      Tensor g = Tensor::randn(k.shape, k.dtype, &gen) * k.grad_scale;
      // sum(real * g) has gradient g: the optimizer sees exactly this gradient.
      opt.zero_grad();
      sum(real * g).backward();
      const Tensor real_before = real.detach().clone();
      opt.step();

      const Tensor p_in = p.clone(), g_in = g.clone(), m_in = m.clone(), v_in = v.clone();
      AdamStepResult r = f(p, g, m, v, t, k.options);
      // Every step is compared; only the first difference is reported (q prints no "ok").
      Checker q(false);
      const std::string at = cat_str(k.what, ", step ", t, ": ");
      for (const auto& [name, now, before] :
           {std::tuple{"param", p, p_in}, std::tuple{"grad", g, g_in},
            std::tuple{"exp_avg", m, m_in}, std::tuple{"exp_avg_sq", v, v_in}})
        q.close(cat_str(at, "your function changed its input ", name), now, before, 0, 0,
                "leave the inputs as they are: return new tensors (m * beta1 + ... makes one) "
                "instead of writing into them (copy_, add_, ...)");
      q.shape(at + "exp_avg", r.exp_avg, k.shape, "m has param's shape");
      q.shape(at + "exp_avg_sq", r.exp_avg_sq, k.shape, "v has param's shape");
      q.shape(at + "param", r.param, k.shape, "the new parameter has param's shape");
      q.expect(r.param.dtype() == k.dtype && r.exp_avg.dtype() == k.dtype &&
                   r.exp_avg_sq.dtype() == k.dtype,
               at + "dtypes", cat_str("return everything in param's dtype, ", dtype_name(k.dtype)));
      const std::string wd_hint =
          k.options.weight_decay != 0
              ? " with g = grad + weight_decay * p (Adam's L2 decay is added to the gradient, "
                "before the moments)"
              : "";
      q.close(at + "exp_avg (m)", r.exp_avg, state_of(opt, "exp_avg"), rtol, atol,
              "m = beta1 * m + (1 - beta1) * g" + wd_hint);
      q.close(at + "exp_avg_sq (v)", r.exp_avg_sq, state_of(opt, "exp_avg_sq"), rtol, atol,
              "v = beta2 * v + (1 - beta2) * g * g" + wd_hint);
      // The update itself (about lr in size) shows a difference more clearly than p does;
      // rtol 1e-5 keeps every difference reported visible in the 6 digits printed.
      q.close(at + "the update (returned param - param)", r.param - p, real.detach() - real_before,
              f64 ? 1e-5 : 1e-3, f64 ? 1e-13 : 1e-7,
              "p - lr * m_hat / (sqrt(v_hat) + eps), m_hat = m / (1 - beta1^t), v_hat = v / (1 - "
              "beta2^t), t = step (1 on the first update); eps is added after the sqrt");
      p = r.param, m = r.exp_avg, v = r.exp_avg_sq;
    }
    c.ok(cat_str(k.what, ": param, exp_avg and exp_avg_sq match optim::Adam after every step"));
  }
}

namespace {
using Opts = optim::AdamOptions;
// One step written out; the knobs are the mistakes.
struct Variant {
  bool bias_correction = true, sqrt = true, weight_decay = true, eps_inside = false;
  int64_t step_shift = 0;  // the t used is step + step_shift
};
AdamStepResult variant(const Variant& w, const Tensor& p, const Tensor& grad, const Tensor& m0,
                       const Tensor& v0, int64_t step, const Opts& o) {
  Tensor g = w.weight_decay ? grad + p * o.weight_decay : grad;
  Tensor m = m0 * o.beta1 + g * (1.0 - o.beta1);
  Tensor v = v0 * o.beta2 + g * g * (1.0 - o.beta2);
  const double t = static_cast<double>(step + w.step_shift);
  Tensor m_hat = w.bias_correction ? m / (1.0 - std::pow(o.beta1, t)) : m;
  Tensor v_hat = w.bias_correction ? v / (1.0 - std::pow(o.beta2, t)) : v;
  Tensor denom = w.eps_inside ? sqrt(v_hat + o.eps) : (w.sqrt ? sqrt(v_hat) : v_hat) + o.eps;
  return {p - m_hat / denom * o.lr, m, v};
}
AdamStepResult no_bias_correction(const Tensor& p, const Tensor& g, const Tensor& m,
                                  const Tensor& v, int64_t t, const Opts& o) {
  return variant({.bias_correction = false}, p, g, m, v, t, o);
}
AdamStepResult no_sqrt(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v,
                       int64_t t, const Opts& o) {
  return variant({.sqrt = false}, p, g, m, v, t, o);
}
AdamStepResult step_from_zero(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v,
                              int64_t t, const Opts& o) {
  return variant({.step_shift = -1}, p, g, m, v, t, o);
}
AdamStepResult step_plus_one(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v,
                             int64_t t, const Opts& o) {
  return variant({.step_shift = 1}, p, g, m, v, t, o);
}
AdamStepResult no_weight_decay(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v,
                               int64_t t, const Opts& o) {
  return variant({.weight_decay = false}, p, g, m, v, t, o);
}
AdamStepResult eps_inside_sqrt(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v,
                               int64_t t, const Opts& o) {
  return variant({.eps_inside = true}, p, g, m, v, t, o);
}
// AdamW's decoupled decay instead of Adam's L2: p shrinks directly, the moments skip the decay.
AdamStepResult decoupled_decay(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v,
                               int64_t t, const Opts& o) {
  AdamStepResult r =
      variant({.weight_decay = false}, p * (1.0 - o.lr * o.weight_decay), g, m, v, t, o);
  return r;
}
// Writes the moments into the inputs (in place) instead of returning new tensors.
AdamStepResult in_place(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v,
                        int64_t t, const Opts& o) {
  AdamStepResult r = solution::adam_step(p, g, m, v, t, o);
  Tensor mm = m, vv = v;
  mm.copy_(r.exp_avg);
  vv.copy_(r.exp_avg_sq);
  return {r.param, mm, vv};
}
}  // namespace

std::vector<Mutant> mutants_adam_step() {
  return {
      {"no bias correction", [](Checker& c) { check_adam_step(c, &no_bias_correction); }},
      {"sqrt missing (divides by v_hat)", [](Checker& c) { check_adam_step(c, &no_sqrt); }},
      {"step counted from 0 (t = step - 1)",
       [](Checker& c) { check_adam_step(c, &step_from_zero); }},
      {"t = step + 1", [](Checker& c) { check_adam_step(c, &step_plus_one); }},
      {"forgets the weight decay", [](Checker& c) { check_adam_step(c, &no_weight_decay); }},
      {"decoupled (AdamW) weight decay", [](Checker& c) { check_adam_step(c, &decoupled_decay); }},
      {"eps inside the sqrt", [](Checker& c) { check_adam_step(c, &eps_inside_sqrt); }},
      {"updates the moments in place", [](Checker& c) { check_adam_step(c, &in_place); }},
  };
}

}  // namespace mmgrad::exercises
