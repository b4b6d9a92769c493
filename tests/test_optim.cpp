// Optimizers, schedules and gradient clipping, checked against updates computed by hand.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <numbers>
#include <vector>

#include "mmgrad/mmgrad.h"
#include "mmgrad/optim/lr_scheduler.h"
#include "mmgrad/optim/optim.h"

using namespace mmgrad;
using doctest::Approx;
using doctest::Contains;
using optim::AdamOptions;
using optim::AdamWOptions;
using optim::SGDOptions;

namespace {

using Vec = std::vector<double>;

Tensor param(const Vec& v, DType dtype = kFloat64) {
  return Tensor::from_vector(v, {}, dtype).requires_grad_();
}

void set_grad(const Tensor& p, const Vec& g) {
  p.set_grad(Tensor::from_vector(g, p.shape(), p.dtype()));
}

void check_close(const Tensor& t, const Vec& want, double tol = 1e-12) {
  std::vector<double> got = t.to_vector<double>();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(tol).scale(1.0));
}

// The gradients fed at steps 0, 1, 2, ... (different each step, with both signs).
Vec grad_at(int step) {
  return {0.5 - 0.2 * step, -0.25 + 0.1 * step * step, 1.0 / (step + 1), -2.0, 0.0};
}
const Vec kP0 = {1.0, -2.0, 3.0, 0.5, -0.75};

// A scalar reference for PyTorch's SGD, written straight from its documentation.
Vec sgd_reference(int steps, const SGDOptions& o) {
  Vec p = kP0, buf(p.size(), 0.0);
  for (int t = 0; t < steps; ++t) {
    Vec g = grad_at(t);
    for (size_t i = 0; i < p.size(); ++i) {
      double d = g[i] + o.weight_decay * p[i];
      if (o.momentum != 0.0) {
        buf[i] = t == 0 ? d : o.momentum * buf[i] + (1.0 - o.dampening) * d;
        d = o.nesterov ? d + o.momentum * buf[i] : buf[i];
      }
      p[i] -= o.lr * d;
    }
  }
  return p;
}

// A scalar reference for Adam / AdamW with bias correction.
Vec adam_reference(int steps, const AdamOptions& o, bool decoupled) {
  Vec p = kP0, m(p.size(), 0.0), v(p.size(), 0.0);
  for (int t = 1; t <= steps; ++t) {
    Vec g = grad_at(t - 1);
    for (size_t i = 0; i < p.size(); ++i) {
      double gi = g[i];
      if (decoupled)
        p[i] -= o.lr * o.weight_decay * p[i];
      else
        gi += o.weight_decay * p[i];
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * gi;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
      const double mhat = m[i] / (1 - std::pow(o.beta1, t));
      const double vhat = v[i] / (1 - std::pow(o.beta2, t));
      p[i] -= o.lr * mhat / (std::sqrt(vhat) + o.eps);
    }
  }
  return p;
}

template <class Opt, class Options>
Tensor run_steps(int steps, const Options& o, DType dtype = kFloat64) {
  Tensor p = param(kP0, dtype);
  Opt opt({p}, o);
  for (int t = 0; t < steps; ++t) {
    set_grad(p, grad_at(t));
    opt.step();
  }
  return p;
}

}  // namespace

// ---- SGD ----------------------------------------------------------------------------------------
TEST_CASE("SGD: one plain step is p - lr * g") {
  Tensor p = param({1.0, -2.0, 3.0});
  optim::SGD opt({p}, {.lr = 0.1});
  set_grad(p, {0.5, 0.25, -1.0});
  opt.step();
  check_close(p, {1.0 - 0.05, -2.0 - 0.025, 3.0 + 0.1});
  CHECK(p.requires_grad());
  CHECK(p.is_leaf());
}

TEST_CASE("SGD: momentum and weight decay by hand, two steps") {
  // p0 = 2, g0 = 1, g1 = -1, lr 0.1, momentum 0.9, wd 0.5, dampening 0.2
  Tensor p = param({2.0});
  optim::SGD opt({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.2, .weight_decay = 0.5});
  set_grad(p, {1.0});
  opt.step();
  // d0 = 1 + 0.5 * 2 = 2; b0 = d0 = 2 (no dampening on the first step); p1 = 2 - 0.2 = 1.8
  check_close(p, {1.8});
  set_grad(p, {-1.0});
  opt.step();
  // d1 = -1 + 0.9 = -0.1; b1 = 0.9 * 2 + 0.8 * (-0.1) = 1.72; p2 = 1.8 - 0.172 = 1.628
  check_close(p, {1.628});
}

TEST_CASE("SGD: Nesterov by hand, two steps") {
  Tensor p = param({2.0});
  optim::SGD opt({p}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
  set_grad(p, {1.0});
  opt.step();
  // b0 = 1; d = 1 + 0.9 * 1 = 1.9; p1 = 2 - 0.19 = 1.81
  check_close(p, {1.81});
  set_grad(p, {-1.0});
  opt.step();
  // b1 = 0.9 - 1 = -0.1; d = -1 - 0.09 = -1.09; p2 = 1.81 + 0.109 = 1.919
  check_close(p, {1.919});
}

TEST_CASE("SGD: several steps match the reference for every option combination") {
  const SGDOptions cases[] = {
      {.lr = 0.05},
      {.lr = 0.05, .weight_decay = 0.1},
      {.lr = 0.05, .momentum = 0.9},
      {.lr = 0.05, .momentum = 0.8, .dampening = 0.3, .weight_decay = 0.01},
      {.lr = 0.05, .momentum = 0.9, .weight_decay = 0.02, .nesterov = true},
  };
  for (const SGDOptions& o : cases) {
    CAPTURE(o.momentum);
    CAPTURE(o.nesterov);
    check_close(run_steps<optim::SGD>(4, o), sgd_reference(4, o));
    check_close(run_steps<optim::SGD>(4, o, kFloat32), sgd_reference(4, o), 1e-6);
  }
}

// ---- Adam / AdamW
// ---------------------------------------------------------------------------------
TEST_CASE("Adam: the first step is lr * g / (|g| + eps) (bias correction cancels)") {
  Tensor p = param({1.0, -2.0, 3.0});
  optim::Adam opt({p}, {.lr = 0.01, .eps = 1e-3});
  set_grad(p, {0.5, -4.0, 0.0});
  opt.step();
  // m_hat = g, v_hat = g^2 after one step: the update is lr * g / (|g| + eps).
  check_close(p, {1.0 - 0.01 * 0.5 / 0.501, -2.0 + 0.01 * 4.0 / 4.001, 3.0});
}

TEST_CASE("Adam: several steps with bias correction match the closed form") {
  const AdamOptions o{.lr = 0.01, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6};
  check_close(run_steps<optim::Adam>(5, o), adam_reference(5, o, false));
  check_close(run_steps<optim::Adam>(5, o, kFloat32), adam_reference(5, o, false), 2e-6);
  // Default betas as well.
  const AdamOptions d{.lr = 0.003};
  check_close(run_steps<optim::Adam>(3, d), adam_reference(3, d, false));
}

TEST_CASE("Adam: L2 weight decay goes through the moments") {
  const AdamOptions o{.lr = 0.02, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8, .weight_decay = 0.1};
  check_close(run_steps<optim::Adam>(4, o), adam_reference(4, o, false));
}

TEST_CASE("AdamW: decoupled weight decay, several steps") {
  const AdamWOptions w{.lr = 0.02, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8, .weight_decay = 0.1};
  const AdamOptions o{w.lr, w.beta1, w.beta2, w.eps, w.weight_decay};
  Tensor got = run_steps<optim::AdamW>(4, w);
  check_close(got, adam_reference(4, o, true));
  // ...and it differs from Adam's L2 form (the test would not notice a mix-up otherwise).
  CHECK(std::abs(got.to_vector<double>()[0] - adam_reference(4, o, false)[0]) > 1e-6);
  // By hand, one step: g = 0 leaves only the decay: p = p * (1 - lr * wd).
  Tensor p = param({2.0});
  optim::AdamW opt({p}, {.lr = 0.1, .weight_decay = 0.5});
  set_grad(p, {0.0});
  opt.step();
  check_close(p, {2.0 * (1 - 0.05)});
  CHECK(optim::AdamWOptions{}.weight_decay == 1e-2);
}

TEST_CASE("Adam: non-contiguous gradient and a parameter without gradient") {
  Tensor a = param({1.0, 2.0, 3.0, 4.0});
  Tensor b = param({5.0});
  optim::Adam opt({a, b}, {.lr = 0.1});
  // A strided (non-contiguous) gradient view, as a user might set it.
  Tensor g = Tensor::from_vector({1.0, 9.0, 2.0, 9.0, 3.0, 9.0, 4.0, 9.0}, {8}, kFloat64)
                 .slice(0, 0, 8, 2);
  REQUIRE_FALSE(g.is_contiguous());
  a.set_grad(g);
  opt.step();
  // Each element moves by lr * sign(g) (first step, eps negligible); b has no grad: unchanged.
  check_close(a, {0.9, 1.9, 2.9, 3.9}, 1e-7);
  check_close(b, {5.0});
  nn::StateDict sd = opt.state_dict();
  for (const auto& kv : sd) CHECK(kv.first.rfind("state.1.", 0) != 0);
  set_grad(b, {-1.0});
  opt.step();
  check_close(b, {5.1}, 1e-7);  // b's first step: its own step count starts at 1
}

TEST_CASE("Adam: a gradient computed by backward, float32") {
  Tensor w = Tensor::from_vector({0.5f, -1.0f, 2.0f}, {3}, kFloat32).requires_grad_();
  optim::Adam opt({w}, {.lr = 0.1});
  Tensor loss = (w * w).sum();  // grad = 2w
  loss.backward();
  opt.step();
  check_close(w, {0.4, -0.9, 1.9}, 1e-6);
  CHECK(w.grad().defined());
  opt.zero_grad();
  CHECK_FALSE(w.grad().defined());
}

// ---- common behaviour and errors ----------------------------------------------------------------
TEST_CASE("Optimizer: zero_grad, lr and skipped parameters") {
  Tensor a = param({1.0, 2.0});
  Tensor b = param({3.0});
  optim::SGD opt({a, b}, {.lr = 0.5});
  set_grad(a, {1.0, 1.0});
  opt.step();
  check_close(a, {0.5, 1.5});
  check_close(b, {3.0});  // no gradient: skipped
  opt.zero_grad(/*set_to_none=*/false);
  REQUIRE(a.grad().defined());
  check_close(a.grad(), {0.0, 0.0});
  opt.zero_grad();
  CHECK_FALSE(a.grad().defined());
  CHECK(opt.lr() == 0.5);
  opt.set_lr(0.25);
  CHECK(opt.lr() == 0.25);
  CHECK(opt.options().lr == 0.25);
  CHECK_THROWS_WITH_AS(opt.set_lr(-1.0), Contains("SGD.set_lr"), Error);
  CHECK_THROWS_AS(opt.set_lr(NAN), Error);
}

TEST_CASE("Optimizer: bad construction is rejected with a clear message") {
  Tensor p = param({1.0});
  CHECK_THROWS_WITH_AS(optim::SGD({}, {.lr = 0.1}), Contains("empty parameter list"), Error);
  CHECK_THROWS_WITH_AS(optim::SGD({p}, {.lr = -0.1}), Contains("invalid learning rate"), Error);
  CHECK_THROWS_WITH_AS(optim::Adam({p}, {.lr = -1}), Contains("Adam: invalid learning rate"),
                       Error);
  Tensor frozen = Tensor::from_vector({1.0, 2.0}, {}, kFloat64);
  CHECK_THROWS_WITH_AS(optim::Adam({p, frozen}), Contains("parameter 1"), Error);
  CHECK_THROWS_WITH_AS(optim::Adam({p, frozen}), Contains("does not require grad"), Error);
  CHECK_THROWS_WITH_AS(optim::Adam({p, p}), Contains("more than once"), Error);
  CHECK_THROWS_WITH_AS(optim::Adam({p * 2.0}), Contains("not a leaf"), Error);
  CHECK_THROWS_WITH_AS(optim::Adam({Tensor()}), Contains("undefined"), Error);
  CHECK_THROWS_WITH_AS(optim::Adam({p}, {.beta1 = 1.0}), Contains("beta1"), Error);
  CHECK_THROWS_WITH_AS(optim::Adam({p}, {.beta2 = -0.1}), Contains("beta2"), Error);
  CHECK_THROWS_WITH_AS(optim::Adam({p}, {.eps = -1e-8}), Contains("eps"), Error);
  CHECK_THROWS_WITH_AS(optim::AdamW({p}, {.weight_decay = -1}),
                       Contains("AdamW: invalid weight_decay"), Error);
  CHECK_THROWS_WITH_AS(optim::SGD({p}, {.lr = 0.1, .momentum = -0.5}), Contains("momentum"), Error);
  CHECK_THROWS_WITH_AS(optim::SGD({p}, {.lr = 0.1, .nesterov = true}), Contains("Nesterov"), Error);
  CHECK_THROWS_WITH_AS(
      optim::SGD({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}),
      Contains("dampening"), Error);
}

TEST_CASE("Optimizer: a gradient of the wrong shape fails before any parameter changes") {
  Tensor a = param({1.0, 2.0});
  Tensor b = param({3.0, 4.0, 5.0});
  for (int which = 0; which < 2; ++which) {
    std::unique_ptr<optim::Optimizer> opt;
    if (which == 0)
      opt = std::make_unique<optim::SGD>(std::vector<Tensor>{a, b}, SGDOptions{.lr = 0.1});
    else
      opt = std::make_unique<optim::Adam>(std::vector<Tensor>{a, b});
    set_grad(a, {1.0, 1.0});
    // set_grad refuses a wrong shape, so plant it the way a buggy extension might.
    b.impl()->grad = Tensor::zeros({2}, kFloat64);
    CHECK_THROWS_WITH_AS(opt->step(), Contains("gradient of parameter 1"), Error);
    check_close(a, {1.0, 2.0});  // a was not updated either
    b.impl()->grad = Tensor::zeros({3}, kFloat32);
    CHECK_THROWS_WITH_AS(opt->step(), Contains("float32"), Error);
    b.impl()->grad = Tensor();
  }
}

// ---- optimizer state_dict
// -------------------------------------------------------------------------
TEST_CASE("Optimizer state_dict: names, values and an identical continuation") {
  const AdamOptions o{.lr = 0.01, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6};
  Tensor p = param(kP0);
  Tensor q = param({0.1, 0.2});
  optim::Adam opt({p, q}, o);
  for (int t = 0; t < 3; ++t) {
    set_grad(p, grad_at(t));
    opt.step();
  }
  nn::StateDict sd = opt.state_dict();
  // Expected layout: count, lr, hyperparameters, then state of parameter 0 only.
  std::vector<std::string> names;
  for (const auto& kv : sd) names.push_back(kv.first);
  CHECK(names == std::vector<std::string>{"num_params", "lr", "beta1", "beta2", "eps",
                                          "weight_decay", "decoupled_weight_decay", "state.0.step",
                                          "state.0.exp_avg", "state.0.exp_avg_sq"});
  CHECK(sd[0].second.dtype() == kInt64);
  CHECK(sd[0].second.item() == 2);
  CHECK(sd[1].second.dtype() == kFloat64);
  CHECK(sd[1].second.dim() == 0);
  CHECK(sd[1].second.item() == 0.01);
  CHECK(sd[7].second.item() == 3);
  CHECK(sd[8].second.shape() == p.shape());

  // A copy of everything, then a fresh optimizer restored from it: both must continue the same.
  nn::StateDict saved;
  for (const auto& [k, t] : sd) saved.emplace_back(k, t.clone());
  Tensor p2 = p.detach().clone().requires_grad_();
  Tensor q2 = q.detach().clone().requires_grad_();
  optim::Adam opt2({p2, q2}, {.lr = 0.5});  // other lr: restored from the state
  opt2.load_state_dict(saved);
  CHECK(opt2.lr() == 0.01);
  CHECK(opt2.options().beta1 == 0.8);
  for (int t = 3; t < 6; ++t) {
    set_grad(p, grad_at(t));
    set_grad(p2, grad_at(t));
    opt.step();
    opt2.step();
  }
  CHECK(p.to_vector<double>() == p2.to_vector<double>());
  check_close(p, adam_reference(6, o, false));
  // The loaded buffers are copies: stepping did not change `saved`.
  CHECK(saved[7].second.item() == 3);
}

TEST_CASE("Optimizer load_state_dict: validation leaves the optimizer unchanged") {
  Tensor p = param({1.0, 2.0});
  optim::SGD sgd({p}, {.lr = 0.1, .momentum = 0.9});
  set_grad(p, {1.0, -1.0});
  sgd.step();
  const nn::StateDict good = sgd.state_dict();

  Tensor r = param({1.0, 2.0});
  optim::SGD target({r}, {.lr = 0.3, .momentum = 0.5});
  auto check_unchanged = [&] {
    CHECK(target.lr() == 0.3);
    CHECK(target.options().momentum == 0.5);
    CHECK(target.state_dict().size() == 6);  // no momentum buffer yet
  };
  auto with = [&](const std::string& key, const Tensor& value) {
    nn::StateDict sd = good;
    bool found = false;
    for (auto& kv : sd) {
      if (kv.first != key) continue;
      kv.second = value;
      found = true;
    }
    if (!found) sd.emplace_back(key, value);
    return sd;
  };
  auto without = [&](const std::string& key) {
    nn::StateDict sd;
    for (const auto& kv : good)
      if (kv.first != key) sd.push_back(kv);
    return sd;
  };
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("num_params", Tensor::scalar(2, kInt64))),
                       Contains("for 2 parameters but this optimizer has 1"), Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(without("num_params")), Contains("num_params"),
                       Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(without("momentum")), Contains("missing"), Error);
  CHECK_THROWS_WITH_AS(
      target.load_state_dict(with("state.0.momentum_buffer", Tensor::zeros({3}, kFloat64))),
      Contains("state.0.momentum_buffer"), Error);
  CHECK_THROWS_WITH_AS(
      target.load_state_dict(with("state.0.momentum_buffer", Tensor::zeros({2}, kFloat32))),
      Contains("float32"), Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("state.3.momentum_buffer", good.back().second)),
                       Contains("parameter 3"), Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("state.x.y", good.back().second)),
                       Contains("malformed"), Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("state.0.exp_avg", good.back().second)),
                       Contains("unexpected entry 'state.0.exp_avg'"), Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("lr", Tensor::scalar(-1.0, kFloat64))),
                       Contains("invalid learning rate"), Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("momentum", Tensor::scalar(-1.0, kFloat64))),
                       Contains("invalid momentum"), Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("nesterov", Tensor::scalar(0.5, kFloat64))),
                       Contains("'nesterov' must be 0 or 1"), Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("lr", Tensor::zeros({1}, kFloat64))),
                       Contains("0-d"), Error);
  nn::StateDict dup = good;
  dup.push_back(good[1]);
  CHECK_THROWS_WITH_AS(target.load_state_dict(dup), Contains("duplicate"), Error);
  check_unchanged();

  // Another optimizer's state.
  optim::Adam adam({r});
  CHECK_THROWS_WITH_AS(adam.load_state_dict(good), Contains("unexpected entry"), Error);
  optim::AdamW adamw({r});
  CHECK_THROWS_WITH_AS(adamw.load_state_dict(adam.state_dict()), Contains("from Adam"), Error);

  target.load_state_dict(good);
  CHECK(target.lr() == 0.1);
  CHECK(target.options().momentum == 0.9);
  CHECK(target.state_dict().size() == 7);
}

TEST_CASE("Optimizer load_state_dict: a wrong step count is rejected") {
  Tensor p = param({1.0});
  optim::Adam opt({p});
  set_grad(p, {1.0});
  opt.step();
  nn::StateDict sd = opt.state_dict();
  for (auto& kv : sd)
    if (kv.first == "state.0.step") kv.second = Tensor::scalar(0, kInt64);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(sd), Contains("state.0.step"), Error);
  for (auto& kv : sd)
    if (kv.first == "state.0.step") kv.second = Tensor::scalar(1.0, kFloat64);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(sd), Contains("int64"), Error);
}

// ---- clip_grad_norm_ ----------------------------------------------------------------------------
TEST_CASE("clip_grad_norm_: total norm over all gradients, scaled in place") {
  Tensor a = param({0.0, 0.0});
  Tensor b = param({0.0});
  Tensor c = param({1.0});  // no gradient: ignored
  set_grad(a, {3.0, 4.0});
  set_grad(b, {12.0});
  // ||(3, 4, 12)|| = 13
  double norm = optim::clip_grad_norm_({a, b, c}, 100.0);
  CHECK(norm == Approx(13.0).epsilon(1e-15));
  check_close(a.grad(), {3.0, 4.0});  // below the limit: untouched
  norm = optim::clip_grad_norm_({a, b, c}, 6.5);
  CHECK(norm == Approx(13.0).epsilon(1e-15));
  const double coef = 6.5 / (13.0 + 1e-6);
  check_close(a.grad(), {3.0 * coef, 4.0 * coef});
  check_close(b.grad(), {12.0 * coef});
  CHECK_FALSE(c.grad().defined());
  // The new norm is max_norm (up to the epsilon).
  CHECK(optim::clip_grad_norm_({a, b}, 1e9) == Approx(6.5).epsilon(1e-6));

  // float32 gradients, and nothing to clip.
  Tensor f = param({0.0, 0.0, 0.0, 0.0}, kFloat32);
  set_grad(f, {1.0, 1.0, 1.0, 1.0});
  CHECK(optim::clip_grad_norm_({f}, 1.0) == Approx(2.0));
  check_close(f.grad(), {0.5, 0.5, 0.5, 0.5}, 1e-6);
  CHECK(optim::clip_grad_norm_({c}, 1.0) == 0.0);
  CHECK_THROWS_WITH_AS(optim::clip_grad_norm_({a}, -1.0), Contains("clip_grad_norm_"), Error);
}

// ---- schedules ----------------------------------------------------------------------------------
TEST_CASE("StepLR: lr = base * gamma^(k / step_size)") {
  Tensor p = param({1.0});
  optim::SGD opt({p}, {.lr = 1.0});
  optim::StepLR sched(opt, 3, 0.5);
  const Vec want = {1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125};
  for (size_t k = 0; k < want.size(); ++k) {
    CAPTURE(k);
    CHECK(sched.last_step() == static_cast<int64_t>(k));
    CHECK(sched.get_last_lr() == Approx(want[k]).epsilon(1e-15));
    CHECK(opt.lr() == sched.get_last_lr());
    sched.step();
  }
  CHECK_THROWS_WITH_AS(optim::StepLR(opt, 0), Contains("StepLR: step_size"), Error);
  CHECK_THROWS_WITH_AS(optim::StepLR(opt, 2, -0.1), Contains("gamma"), Error);
}

TEST_CASE("CosineWithWarmup: warm-up, cosine and floor at chosen steps") {
  Tensor p = param({1.0});
  optim::AdamW opt({p}, {.lr = 2.0});
  optim::CosineWithWarmup sched(opt, 4, 12, 0.2);
  // base 2, min 0.2, warm-up 4 steps, cosine over steps 4..11.
  auto cosine = [](double t) { return 0.2 + 1.8 * 0.5 * (1 + std::cos(std::numbers::pi * t)); };
  const std::vector<std::pair<int, double>> want = {
      {0, 0.5},  {1, 1.0}, {3, 2.0}, {4, 2.0}, {6, cosine(0.25)}, {8, 1.1}, {11, cosine(7.0 / 8)},
      {12, 0.2}, {20, 0.2}};
  CHECK(opt.lr() == 0.5);  // set for step 0 on construction
  int k = 0;
  for (const auto& [step, lr] : want) {
    while (k < step) {
      sched.step();
      ++k;
    }
    CAPTURE(step);
    CHECK(sched.get_last_lr() == Approx(lr).epsilon(1e-14));
    CHECK(opt.lr() == Approx(lr).epsilon(1e-14));
  }
  // Monotone: up during warm-up, down afterwards.
  for (int j = 0; j < 3; ++j) CHECK(sched.lr_at(j) < sched.lr_at(j + 1));
  for (int j = 4; j < 12; ++j) CHECK(sched.lr_at(j) > sched.lr_at(j + 1));
  // No warm-up at all: starts at the base.
  optim::CosineWithWarmup plain(opt, 0, 10);
  CHECK(plain.lr_at(0) == Approx(opt.lr()));
  CHECK(plain.lr_at(5) == Approx(0.5 * plain.base_lr()));
  CHECK_THROWS_WITH_AS(optim::CosineWithWarmup(opt, 5, 4), Contains("warmup_steps"), Error);
  CHECK_THROWS_WITH_AS(optim::CosineWithWarmup(opt, 0, 0), Contains("total_steps"), Error);
  CHECK_THROWS_WITH_AS(optim::CosineWithWarmup(opt, 1, 4, -1.0), Contains("min_lr"), Error);
}

TEST_CASE("LambdaLR and scheduler state") {
  Tensor p = param({1.0});
  optim::SGD opt({p}, {.lr = 0.1});
  optim::LambdaLR sched(opt, [](int64_t k) { return 1.0 / (1.0 + static_cast<double>(k)); });
  sched.step();
  sched.step();
  CHECK(opt.lr() == Approx(0.1 / 3));
  nn::StateDict sd = sched.state_dict();

  Tensor q = param({1.0});
  optim::SGD opt2({q}, {.lr = 0.1});
  optim::StepLR other(opt2, 1, 0.5);
  other.load_state_dict(sd);
  CHECK(other.last_step() == 2);
  CHECK(opt2.lr() == Approx(0.025));
  other.step();
  CHECK(opt2.lr() == Approx(0.0125));
  CHECK_THROWS_WITH_AS(other.load_state_dict({{"last_step", Tensor::scalar(-1, kInt64)},
                                              {"base_lr", Tensor::scalar(0.1, kFloat64)}}),
                       Contains("last_step"), Error);
  CHECK_THROWS_WITH_AS(other.load_state_dict({{"oops", Tensor::scalar(1, kInt64)}}),
                       Contains("unexpected entry 'oops'"), Error);
  CHECK(other.last_step() == 3);

  optim::LambdaLR bad(opt, [](int64_t k) { return k < 1 ? 1.0 : -1.0; });
  CHECK_THROWS_WITH_AS(bad.step(), Contains("LambdaLR"), Error);
  CHECK(bad.last_step() == 0);
}

// ---- the learning rate has one home -------------------------------------------------------------
// Optimizer::lr_ is the only place the learning rate is kept: lr(), options().lr and the
// state_dict entry "lr" read it, step() uses it, and a scheduler sets it (its get_last_lr() is
// computed from its step count, as PyTorch's returns the scheduler's own last value). A second
// copy (say in the options struct) would go stale after set_lr or a scheduler step.
namespace {

template <class Opt>
void check_lr_everywhere(const Opt& opt, double lr) {
  CHECK(opt.lr() == lr);
  CHECK(opt.options().lr == lr);
  nn::StateDict sd = opt.state_dict();
  REQUIRE(sd.size() >= 2);
  CHECK(sd[1].first == "lr");
  CHECK(sd[1].second.item() == lr);
}

// A fresh optimizer of this kind built with `lr`, one step from p = [1, -2] with g = [0.5, 0.25].
template <class Opt>
Vec fresh_step(double lr) {
  Tensor p = param({1.0, -2.0});
  Opt opt({p}, {.lr = lr});
  set_grad(p, {0.5, 0.25});
  opt.step();
  return p.to_vector<double>();
}

template <class Opt>
void check_one_home(const char* kind) {
  CAPTURE(kind);
  Tensor p = param({1.0, -2.0});
  Opt opt({p}, {.lr = 0.1});
  check_lr_everywhere(opt, 0.1);
  opt.set_lr(0.05);
  check_lr_everywhere(opt, 0.05);
  optim::StepLR sched(opt, 1, 0.5);  // base lr 0.05 read from the optimizer; halves each step
  check_lr_everywhere(opt, 0.05);
  sched.step();
  check_lr_everywhere(opt, 0.025);
  CHECK(sched.get_last_lr() == 0.025);
  opt.set_lr(0.3);  // by hand: the optimizer's lr changes, the scheduler's last value does not
  check_lr_everywhere(opt, 0.3);
  CHECK(sched.get_last_lr() == 0.025);
  opt.set_lr(0.025);

  // The state_dict round trip restores the lr into its one home, in memory and through a file.
  nn::StateDict saved;
  for (const auto& [k, t] : opt.state_dict()) saved.emplace_back(k, t.clone());
  Tensor p2 = param({1.0, -2.0});
  Opt opt2({p2}, {.lr = 0.9});
  opt2.load_state_dict(saved);
  check_lr_everywhere(opt2, 0.025);
  const std::string path = (std::filesystem::temp_directory_path() /
                            cat_str("mmgrad_test_optim_lr_", ::getpid(), "_", kind, ".ckpt"))
                               .string();
  save(opt, path);
  Tensor p3 = param({1.0, -2.0});
  Opt opt3({p3}, {.lr = 0.7});
  load(opt3, path);
  std::filesystem::remove(path);
  check_lr_everywhere(opt3, 0.025);

  // step() uses that same value: each takes the step of an optimizer built with lr = 0.025.
  const Vec want = fresh_step<Opt>(0.025);
  for (Tensor* q : {&p, &p2, &p3}) set_grad(*q, {0.5, 0.25});
  opt.step();
  opt2.step();
  opt3.step();
  CHECK(p.to_vector<double>() == want);
  CHECK(p2.to_vector<double>() == want);
  CHECK(p3.to_vector<double>() == want);
}

}  // namespace

TEST_CASE("Optimizer: the learning rate has one home (set_lr, scheduler, options, state_dict)") {
  check_one_home<optim::SGD>("SGD");
  check_one_home<optim::Adam>("Adam");
  check_one_home<optim::AdamW>("AdamW");
}
