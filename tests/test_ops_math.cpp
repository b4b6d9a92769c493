// The differentiable math ops (ops/elementwise, reduce, shape, matmul):
//   - values against hand-computed results and naive loops, gradients at ties
//   and kinks;
//   - bad input: each public op names itself and the shapes/dtypes it got.
// Their float64 gradchecks (broadcasting, non-contiguous views, 0-d, size-1 and
// empty shapes), float32-vs-float64 forward and CPU/CUDA parity run from the op
// list (tests/op_list.cpp, tests/test_op_list.cpp).
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core_test_util.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/ops/common.h"

using namespace mmgrad;
using mmgrad::testing::allclose;
using mmgrad::testing::max_rel_diff;
using mmgrad::testing::vals;

// ---- values against hand-computed results
// ------------------------------------------------------

TEST_CASE("values: elementwise") {
  Tensor x = Tensor::from_vector({-2.0, -0.5, 0.0, 1.0, 3.0}, {5}, kFloat64);
  CHECK(vals(neg(x)) == std::vector<double>{2, 0.5, -0.0, -1, -3});
  CHECK(vals(abs(x)) == std::vector<double>{2, 0.5, 0, 1, 3});
  CHECK(vals(relu(x)) == std::vector<double>{0, 0, 0, 1, 3});
  CHECK(vals(clamp(x, -1, 2)) == std::vector<double>{-1, -0.5, 0, 1, 2});
  CHECK(vals(clamp_min(x, 0)) == std::vector<double>{0, 0, 0, 1, 3});
  CHECK(vals(sign(x)) == std::vector<double>{-1, -1, 0, 1, 1});
  CHECK(vals(pow(x, 2.0)) == std::vector<double>{4, 0.25, 0, 1, 9});
  CHECK(vals(x * x + 1.0) == std::vector<double>{5, 1.25, 1, 2, 10});
  CHECK(allclose(sigmoid(x), {1 / (1 + std::exp(2.0)), 1 / (1 + std::exp(0.5)), 0.5,
                              1 / (1 + std::exp(-1.0)), 1 / (1 + std::exp(-3.0))}));
  CHECK(allclose(tanh(x), {std::tanh(-2.0), std::tanh(-0.5), 0, std::tanh(1.0), std::tanh(3.0)}));
  // gelu(x) = x Phi(x); Phi(1) = 0.8413447460685429.
  CHECK(gelu(Tensor::scalar(1.0, kFloat64)).item() == doctest::Approx(0.8413447460685429));
  CHECK(gelu(Tensor::scalar(-1.0, kFloat64)).item() == doctest::Approx(-(1 - 0.8413447460685429)));
  // silu(x) = x sigmoid(x); sigmoid(1) = 0.7310585786300049, sigmoid(-2) = 0.11920292202211755;
  // at x = -40 the product underflows towards -0 without overflowing exp.
  CHECK(silu(Tensor::scalar(1.0, kFloat64)).item() == doctest::Approx(0.7310585786300049));
  CHECK(silu(Tensor::scalar(-2.0, kFloat64)).item() == doctest::Approx(-0.2384058440442351));
  const double tiny = silu(Tensor::scalar(-40.0, kFloat64)).item();
  CHECK(std::abs(tiny / (-40 * 4.248354255291589e-18) - 1) < 1e-12);
  CHECK(allclose(exp(Tensor::from_vector({0.0, 1.0}, {2}, kFloat64)), {1, std::exp(1.0)}));
  CHECK(allclose(log(Tensor::from_vector({1.0, std::exp(2.0)}, {2}, kFloat64)), {0, 2}));
  CHECK(allclose(sqrt(Tensor::from_vector({4.0, 2.25}, {2}, kFloat64)), {2, 1.5}));
  Tensor a = Tensor::from_vector({1.0, 5.0, 3.0}, {3}, kFloat64);
  Tensor b = Tensor::from_vector({2.0, 4.0, 3.0}, {3}, kFloat64);
  CHECK(vals(maximum(a, b)) == std::vector<double>{2, 5, 3});
  CHECK(vals(minimum(a, b)) == std::vector<double>{1, 4, 3});
  CHECK(vals(a / b) == std::vector<double>{0.5, 1.25, 1});
  CHECK(vals(a - b) == std::vector<double>{-1, 1, 0});
  CHECK(vals(pow(b, a)) == std::vector<double>{2, 1024, 27});
  CHECK(vals(1.0 / b) == std::vector<double>{0.5, 0.25, 1.0 / 3.0});
  // Sigmoid is stable at large magnitudes (no exp overflow into nan).
  CHECK(vals(sigmoid(Tensor::from_vector({-1000.0, 1000.0}, {2}, kFloat64))) ==
        std::vector<double>{0, 1});
  // Integer arithmetic stays integer.
  Tensor i = Tensor::arange(4);
  CHECK(vals(i * 3.0 + 1.0) == std::vector<double>{1, 4, 7, 10});
  CHECK(vals(i * i - i) == std::vector<double>{0, 0, 2, 6});
  CHECK(vals(clamp(i, 0.5, 2.5)) == std::vector<double>{1, 1, 2, 2});  // bounds round inwards
  CHECK(vals(clamp_min(i - Tensor::scalar(2, kInt64), 0)) == std::vector<double>{0, 0, 0, 1});
  CHECK(vals(abs(i - Tensor::scalar(2, kInt64))) == std::vector<double>{2, 1, 0, 1});
}

TEST_CASE("values: float32 transcendentals (vectorised) against float64") {
  // A dense sweep (long runs: chunked, and split over threads) plus special
  // values.
  std::vector<double> xs = vals(Tensor::linspace(-30, 30, 200001, kFloat64));
  for (double v : std::initializer_list<double>{NAN, INFINITY, -INFINITY, 0.0, -0.0, 1e-30, -1e-30,
                                                1e-8, 88.0, 89.0, -104.0})
    xs.push_back(v);
  Tensor x64 = Tensor::from_vector(xs, {static_cast<int64_t>(xs.size())}, kFloat64);
  Tensor x32 = x64.to(kFloat32);
  std::vector<double> xr = vals(x32);  // the float32 inputs, exactly
  Tensor xr64 = Tensor::from_vector(xr, {static_cast<int64_t>(xr.size())}, kFloat64);
  struct Case {
    const char* name;
    std::function<Tensor(const Tensor&)> f;
    bool scale_by_x;  // error measured relative to max(1, |x|) (gelu cancels for
                      // x << 0)
  };
  const std::vector<Case> cases = {
      {"exp", [](const Tensor& t) { return exp(t); }, false},
      {"log", [](const Tensor& t) { return log(abs(t)); }, false},
      {"tanh", [](const Tensor& t) { return tanh(t); }, false},
      {"sigmoid", [](const Tensor& t) { return sigmoid(t); }, false},
      {"gelu", [](const Tensor& t) { return gelu(t); }, true},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    std::vector<double> got = vals(c.f(x32)), want = vals(c.f(xr64));
    double worst = 0;
    bool specials_ok = true;
    for (size_t i = 0; i < got.size(); ++i) {
      if (std::isnan(want[i]) || std::isinf(want[i]) || std::abs(want[i]) > 3e38) {
        specials_ok =
            specials_ok && (std::isnan(want[i]) ? std::isnan(got[i])
                                                : (got[i] == want[i] || std::abs(want[i]) > 3e38));
        continue;
      }
      double scale = c.scale_by_x ? std::max(1.0, std::abs(xr[i])) : std::abs(want[i]);
      if (scale < 1e-37) scale = 1e-37;  // exp underflow: float32 flushes to 0
      worst = std::max(worst, std::abs(got[i] - want[i]) / scale);
    }
    CHECK(specials_ok);
    CHECK(worst < 1e-6);
    // Non-contiguous input: the same bits as the contiguous path.
    Tensor m = x32.narrow(0, 0, 200000).view({400, 500});
    CHECK(vals(c.f(m.t())) == vals(c.f(m.t().contiguous())));
  }
  // The fused gelu backward, float32 against float64.
  Tensor g64 = Tensor::randn({xr64.numel()}, kFloat64);
  Tensor g32 = g64.to(kFloat32);
  Tensor gx32 = Tensor::empty({xr64.numel()}), gx64 = Tensor::empty({xr64.numel()}, kFloat64);
  backend(kCPU).binary(BinaryOp::GeluGrad, g32.desc(), x32.desc(), gx32.desc());
  backend(kCPU).binary(BinaryOp::GeluGrad, g32.to(kFloat64).desc(), xr64.desc(), gx64.desc());
  std::vector<double> a = vals(gx32), b = vals(gx64);
  double worst = 0;
  for (size_t i = 0; i + 11 < a.size(); ++i)  // finite inputs
    worst = std::max(worst, std::abs(a[i] - b[i]) / std::max(1.0, std::abs(xr[i])));
  CHECK(worst < 2e-6);
}

TEST_CASE("values: comparisons, where, masked_fill") {
  Tensor x = Tensor::from_vector({1.0, 2.0, 3.0}, {3});
  Tensor y = Tensor::from_vector({3.0, 2.0, 1.0}, {3});
  CHECK(eq(x, y).to_vector<bool>() == std::vector<bool>{false, true, false});
  CHECK(ne(x, y).to_vector<bool>() == std::vector<bool>{true, false, true});
  CHECK((x < y).to_vector<bool>() == std::vector<bool>{true, false, false});
  CHECK((x <= y).to_vector<bool>() == std::vector<bool>{true, true, false});
  CHECK((x > y).to_vector<bool>() == std::vector<bool>{false, false, true});
  CHECK((x >= 2.0).to_vector<bool>() == std::vector<bool>{false, true, true});
  CHECK(x.eq(2.0).to_vector<bool>() == std::vector<bool>{false, true, false});
  CHECK(((x > 1.0) && (y > 1.0)).to_vector<bool>() == std::vector<bool>{false, true, false});
  CHECK(((x > 2.0) || (y > 2.0)).to_vector<bool>() == std::vector<bool>{true, false, true});
  CHECK((!(x > 1.0)).to_vector<bool>() == std::vector<bool>{true, false, false});
  // Integer tensors against scalars they cannot hold compare exactly.
  Tensor i = Tensor::arange(3);
  CHECK(i.lt(0.5).to_vector<bool>() == std::vector<bool>{true, false, false});
  CHECK(i.eq(0.5).to_vector<bool>() == std::vector<bool>{false, false, false});
  CHECK(gt(i, 1.5).to_vector<bool>() == std::vector<bool>{false, false, true});
  CHECK(ge(i, 1.0).to_vector<bool>() == std::vector<bool>{false, true, true});
  CHECK(le(i, -0.1).to_vector<bool>() == std::vector<bool>{false, false, false});
  CHECK(ne(i, 1.0).to_vector<bool>() == std::vector<bool>{true, false, true});

  Tensor c = Tensor::from_vector(std::vector<bool>{true, false}, {2, 1});
  Tensor w = where(c, Tensor::ones({2, 2}), Tensor::from_vector({5.0, 6.0}, {2}));
  CHECK(vals(w) == std::vector<double>{1, 1, 5, 6});
  CHECK(vals(where(c, Tensor::arange(2), -1.0)) == std::vector<double>{0, 1, -1, -1});
  Tensor m = masked_fill(Tensor::zeros({2, 3}),
                         Tensor::from_vector(std::vector<bool>{true, false, true}), 7);
  CHECK(vals(m) == std::vector<double>{7, 0, 7, 7, 0, 7});
  // masked_fill with -inf then softmax-style use keeps other entries.
  Tensor mi = Tensor::zeros({2}).masked_fill(Tensor::from_vector(std::vector<bool>{true, false}),
                                             -INFINITY);
  CHECK(std::isinf(mi.at({0})));
  CHECK(mi.at({1}) == 0);
}

TEST_CASE("values: reductions") {
  Tensor x = Tensor::from_vector({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3}, kFloat64);
  CHECK(sum(x).item() == 21);
  CHECK(vals(x.sum({0})) == std::vector<double>{5, 7, 9});
  CHECK(vals(x.sum({1})) == std::vector<double>{6, 15});
  CHECK(x.sum({1}, true).shape() == Shape{2, 1});
  CHECK(x.sum({0, 1}).dim() == 0);
  CHECK(vals(x.t().sum({1})) == std::vector<double>{5, 7, 9});
  CHECK(mean(x).item() == 3.5);
  CHECK(vals(x.mean({1})) == std::vector<double>{2, 5});
  CHECK(max(x).item() == 6);
  CHECK(min(x).item() == 1);
  CHECK(vals(x.max(0)) == std::vector<double>{4, 5, 6});
  CHECK(vals(x.min(1, true)) == std::vector<double>{1, 4});
  CHECK(x.min(1, true).shape() == Shape{2, 1});
  CHECK(vals(argmax(x, 1)) == std::vector<double>{2, 2});
  CHECK(vals(argmin(x, 0)) == std::vector<double>{0, 0, 0});
  CHECK(argmax(x).item() == 5);
  CHECK(argmax(x, 1).dtype() == kInt64);
  // var: [1..6] has mean 3.5 and squared deviations summing to 17.5.
  CHECK(var(x).item() == doctest::Approx(17.5 / 5));
  CHECK(var(x, 0).item() == doctest::Approx(17.5 / 6));
  CHECK(vals(x.var({1})) == std::vector<double>{1, 1});
  // logsumexp([0, log 3]) = log 4; a row of -inf gives -inf, not nan; large
  // values do not overflow.
  Tensor l = Tensor::from_vector({0.0, std::log(3.0), -INFINITY, -INFINITY, 1000.0, 1000.0}, {3, 2},
                                 kFloat64);
  std::vector<double> lse = vals(logsumexp(l, 1));
  CHECK(lse[0] == doctest::Approx(std::log(4.0)));
  CHECK(lse[1] == -INFINITY);
  CHECK(lse[2] == doctest::Approx(1000 + std::log(2.0)));
  // Integer sums stay integer; an empty sum is 0.
  CHECK(sum(Tensor::arange(5)).dtype() == kInt64);
  CHECK(sum(Tensor::arange(5)).item() == 10);
  CHECK(sum(Tensor::zeros({0})).item() == 0);
  CHECK(vals(Tensor::zeros({2, 0}).sum({1})) == std::vector<double>{0, 0});
  // max propagates nan.
  CHECK(std::isnan(max(Tensor::from_vector({1.0, NAN, 3.0})).item()));
  // A float32 sum of many values accumulates in double.
  CHECK(Tensor::full({1 << 20}, 0.1f).sum().item() == doctest::Approx(104857.6).epsilon(1e-6));
}

TEST_CASE("values: max/min/argmax/argmin kernels against a naive loop") {
  // Integers in [0, 6) make ties common; a few NaNs must win (the first one,
  // for arg ops).
  Generator g(21);
  const Shape shape{5, 7, 9};
  std::vector<double> v = vals(Tensor::randint(0, 6, shape, kFloat64, &g));
  for (size_t i : {3u, 50u, 51u, 200u}) v[i] = NAN;
  Tensor x = Tensor::from_vector(v, shape, kFloat64);
  auto at = [&](int64_t i, int64_t j, int64_t k) {
    return v[static_cast<size_t>((i * 7 + j) * 9 + k)];
  };
  for (int dim = 0; dim < 3; ++dim) {
    for (bool want_max : {true, false}) {
      // Naive reference over dim: values and the first index of the extreme
      // (NaN first).
      std::vector<double> ref_v, ref_i;
      int64_t n[3] = {5, 7, 9};
      int a0 = dim == 0 ? 1 : 0, a1 = dim == 2 ? 1 : 2;
      for (int64_t p = 0; p < n[a0]; ++p)
        for (int64_t q = 0; q < n[a1]; ++q) {
          double best = 0;
          int64_t arg = -1;
          for (int64_t r = 0; r < n[dim]; ++r) {
            int64_t idx[3];
            idx[dim] = r;
            idx[a0] = p;
            idx[a1] = q;
            double y = at(idx[0], idx[1], idx[2]);
            bool better = arg < 0 || (std::isnan(y) && !std::isnan(best)) ||
                          (!std::isnan(best) && (want_max ? y > best : y < best));
            if (better) {
              best = y;
              arg = r;
            }
          }
          ref_v.push_back(best);
          ref_i.push_back(static_cast<double>(arg));
        }
      INFO("dim ", dim, want_max ? " max" : " min");
      // Contiguous input, and the same logical tensor through a permuted
      // (strided) view.
      Tensor xp = x.permute({2, 0, 1}).contiguous().permute({1, 2, 0});
      for (const Tensor& in : {x, xp}) {
        std::vector<double> got_v = vals(want_max ? in.max(dim) : in.min(dim));
        std::vector<double> got_i = vals(want_max ? in.argmax(dim) : in.argmin(dim));
        REQUIRE(got_v.size() == ref_v.size());
        bool same_v = true;
        for (size_t i = 0; i < ref_v.size(); ++i)
          same_v =
              same_v && (got_v[i] == ref_v[i] || (std::isnan(got_v[i]) && std::isnan(ref_v[i])));
        CHECK(same_v);
        CHECK(got_i == ref_i);
      }
    }
  }
  // Whole-tensor max/min, and a large contiguous row (the vectorised path), NaN
  // or not.
  CHECK(std::isnan(max(x).item()));
  Tensor big = Tensor::arange(0.0, 5000.0, 1.0, kFloat64);
  CHECK(max(big).item() == 4999);
  CHECK(min(big.slice(0, 7, 5000, 3)).item() == 7);
  CHECK(argmax(big.view({50, 100}), 0).at({99}) == 49);
  big.select(0, 4321).fill_(NAN);
  CHECK(std::isnan(max(big).item()));
  CHECK(std::isnan(min(big).item()));
  CHECK(argmax(big, 0).item() == 4321);
  CHECK(vals(Tensor::arange(10).view({2, 5}).max(1)) == std::vector<double>{4, 9});  // int64
}

TEST_CASE("values: gradients at ties and kinks") {
  // max: ties share the gradient evenly.
  Tensor x = Tensor::from_vector({1.0, 3.0, 3.0}, {3}, kFloat64).requires_grad_();
  max(x).backward();
  CHECK(vals(x.grad()) == std::vector<double>{0, 0.5, 0.5});
  // max along a dim: the gradient goes to the index max(x, dim) picks (the first of the ties),
  // as PyTorch's max(x, dim) backward does (tests/test_nan_semantics.cpp has more).
  Tensor y = Tensor::from_vector({2.0, 2.0, 1.0, 0.0}, {2, 2}, kFloat64).requires_grad_();
  y.max(1).sum().backward();
  CHECK(vals(y.grad()) == std::vector<double>{1, 0, 1, 0});
  // maximum/minimum: ties split.
  Tensor a = Tensor::from_vector({1.0, 2.0}, {2}, kFloat64).requires_grad_();
  Tensor b = Tensor::from_vector({1.0, 3.0}, {2}, kFloat64).requires_grad_();
  maximum(a, b).sum().backward();
  CHECK(vals(a.grad()) == std::vector<double>{0.5, 0});
  CHECK(vals(b.grad()) == std::vector<double>{0.5, 1});
  // abs and relu have gradient 0 at 0; clamp passes the gradient at its bounds.
  Tensor z = Tensor::from_vector({0.0, -1.0, 1.0}, {3}, kFloat64).requires_grad_();
  (abs(z) + relu(z)).sum().backward();
  CHECK(vals(z.grad()) == std::vector<double>{0, -1, 2});
  Tensor c = Tensor::from_vector({-1.0, 0.0, 1.0, 2.0}, {4}, kFloat64).requires_grad_();
  clamp(c, -1, 1).sum().backward();
  CHECK(vals(c.grad()) == std::vector<double>{1, 1, 1, 0});
  // mean spreads 1/n; matmul of known matrices.
  Tensor m = Tensor::zeros({2, 5}, kFloat64).requires_grad_();
  m.mean().backward();
  CHECK(vals(m.grad()) == std::vector<double>(10, 0.1));
}

TEST_CASE("values: matmul") {
  Tensor a = Tensor::from_vector({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3}, kFloat64);
  Tensor b = Tensor::from_vector({7.0, 8.0, 9.0, 10.0, 11.0, 12.0}, {3, 2}, kFloat64);
  CHECK(vals(matmul(a, b)) == std::vector<double>{58, 64, 139, 154});
  CHECK(vals(matmul(b.t(), a.t())) == std::vector<double>{58, 139, 64, 154});
  CHECK(matmul(Tensor::from_vector({1.0, 2.0, 3.0}, {3}, kFloat64),
               Tensor::from_vector({4.0, 5.0, 6.0}, {3}, kFloat64))
            .item() == 32);
  CHECK(matmul(Tensor::ones({3}), Tensor::ones({3})).dim() == 0);
  CHECK(vals(matmul(a, Tensor::from_vector({1.0, 0.0, -1.0}, {3}, kFloat64))) ==
        std::vector<double>{-2, -2});
  CHECK(vals(matmul(Tensor::from_vector({1.0, 1.0}, {2}, kFloat64), a)) ==
        std::vector<double>{5, 7, 9});
  // Batched with a broadcast batch dim: each batch gets the same b.
  Tensor ab = matmul(a.unsqueeze(0).expand({3, 2, 3}), b);
  CHECK(ab.shape() == Shape{3, 2, 2});
  CHECK(vals(ab.select(0, 2)) == std::vector<double>{58, 64, 139, 154});
  // An empty inner dimension gives zeros; empty outer dims an empty result.
  CHECK(vals(matmul(Tensor::ones({2, 0}), Tensor::ones({0, 3}))) == std::vector<double>(6, 0));
  CHECK(matmul(Tensor::ones({0, 4}), Tensor::ones({4, 3})).shape() == Shape{0, 3});
  // float32 GEMM on a larger (multi-threaded, blocked) size agrees with
  // float64.
  Generator g(9);
  Tensor p = Tensor::randn({130, 70}, kFloat64, &g), q = Tensor::randn({70, 90}, kFloat64, &g);
  double diff = max_rel_diff(vals(matmul(p.to(kFloat32), q.to(kFloat32))), vals(matmul(p, q)));
  CHECK(diff < 1e-5);
  // Against a naive triple loop.
  std::vector<double> pv = vals(p), qv = vals(q), pq = vals(matmul(p, q));
  double worst = 0;
  for (int i = 0; i < 130; ++i)
    for (int j = 0; j < 90; ++j) {
      double s = 0;
      for (int k = 0; k < 70; ++k) s += pv[i * 70 + k] * qv[k * 90 + j];
      worst = std::max(worst, std::abs(s - pq[i * 90 + j]));
    }
  CHECK(worst < 1e-12);
}

// ---- bad input
// ----------------------------------------------------------------------------------

TEST_CASE("bad input: binary elementwise ops") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4}), d = Tensor::zeros({2, 3}, kFloat64);
  Tensor i = Tensor::zeros({2, 3}, kInt64), bo = Tensor::zeros({2, 3}, kBool);
  using BinFn = Tensor (*)(const Tensor&, const Tensor&);
  const std::vector<std::pair<const char*, BinFn>> ops = {
      {"add", [](const Tensor& x, const Tensor& y) { return add(x, y); }},
      {"sub", [](const Tensor& x, const Tensor& y) { return sub(x, y); }},
      {"mul", [](const Tensor& x, const Tensor& y) { return mul(x, y); }},
      {"div", [](const Tensor& x, const Tensor& y) { return div(x, y); }},
      {"pow", [](const Tensor& x, const Tensor& y) { return pow(x, y); }},
      {"maximum", [](const Tensor& x, const Tensor& y) { return maximum(x, y); }},
      {"minimum", [](const Tensor& x, const Tensor& y) { return minimum(x, y); }},
      {"eq", [](const Tensor& x, const Tensor& y) { return eq(x, y); }},
      {"ne", [](const Tensor& x, const Tensor& y) { return ne(x, y); }},
      {"lt", [](const Tensor& x, const Tensor& y) { return lt(x, y); }},
      {"le", [](const Tensor& x, const Tensor& y) { return le(x, y); }},
      {"gt", [](const Tensor& x, const Tensor& y) { return gt(x, y); }},
      {"ge", [](const Tensor& x, const Tensor& y) { return ge(x, y); }},
  };
  for (auto& [name, f] : ops) {
    INFO(name);
    CHECK_ERROR(f(a, b), name, "[2, 3]", "[4]", "broadcast");
    CHECK_ERROR(f(a, d), name, "float32", "float64", "same dtype");
    CHECK_ERROR(f(a, Tensor()), name, "undefined");
    CHECK_ERROR(f(Tensor(), a), name, "undefined");
  }
  for (const char* name : {"add", "sub", "mul", "div", "pow", "maximum", "minimum"}) {
    for (auto& [n, f] : ops)
      if (std::string(n) == name) CHECK_ERROR(f(bo, bo), name, "bool");
  }
  CHECK_ERROR(div(i, i), "div", "floating", "int64");
  CHECK_ERROR(pow(i, i), "pow", "floating", "int64");
  CHECK_ERROR(a + i, "add", "int64");
  // Scalar forms.
  CHECK_ERROR(add(bo, 1.0), "add", "bool");
  CHECK_ERROR(mul(bo, 2.0), "mul", "bool");
  CHECK_ERROR(i * 0.5, "mul", "0.5", "int64");
  CHECK_ERROR(i + 0.5, "add", "0.5", "int64");
  CHECK_ERROR(i / 2.0, "int64");
  CHECK_ERROR(1.0 / i, "div", "int64");
  CHECK_ERROR(add(Tensor(), 1.0), "add", "undefined");
  CHECK_ERROR(eq(Tensor(), 1.0), "eq", "undefined");
  // Logic ops take bool tensors.
  CHECK_ERROR(logical_and(a, bo), "logical_and", "bool", "float32");
  CHECK_ERROR(logical_or(bo, i), "logical_or", "int64");
  CHECK_ERROR(logical_not(a), "logical_not", "float32");
  CHECK_ERROR(logical_and(bo, Tensor::zeros({4}, kBool)), "logical_and", "[2, 3]", "[4]");
  if (!cuda_available())
    MESSAGE(
        "no CUDA device: mixed-device inputs cannot be built here (device "
        "checks skipped)");
}

TEST_CASE("bad input: unary elementwise ops") {
  Tensor i = Tensor::arange(3), bo = Tensor::zeros({3}, kBool);
  using UnFn = Tensor (*)(const Tensor&);
  const std::vector<std::pair<const char*, UnFn>> float_only = {
      {"exp", [](const Tensor& x) { return exp(x); }},
      {"log", [](const Tensor& x) { return log(x); }},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }},
      {"relu", [](const Tensor& x) { return relu(x); }},
      {"gelu", [](const Tensor& x) { return gelu(x); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }},
      {"tanh", [](const Tensor& x) { return tanh(x); }},
      {"silu", [](const Tensor& x) { return silu(x); }},
      {"pow", [](const Tensor& x) { return pow(x, 2.0); }},
  };
  for (auto& [name, f] : float_only) {
    INFO(name);
    CHECK_ERROR(f(i), name, "[3] int64", "floating-point");
    CHECK_ERROR(f(bo), name, "bool");
    CHECK_ERROR(f(Tensor()), name, "undefined");
  }
  for (auto& [name, f] : std::vector<std::pair<const char*, UnFn>>{
           {"neg", [](const Tensor& x) { return neg(x); }},
           {"abs", [](const Tensor& x) { return abs(x); }},
           {"sign", [](const Tensor& x) { return sign(x); }},
           {"clamp", [](const Tensor& x) { return clamp(x, 0, 1); }}}) {
    INFO(name);
    CHECK_ERROR(f(bo), name, "bool");
    CHECK_ERROR(f(Tensor()), name, "undefined");
  }
  CHECK_ERROR(clamp(Tensor::zeros({2}), 2, 1), "clamp", "min (2)", "max (1)");
}

TEST_CASE("bad input: where and masked_fill") {
  Tensor x = Tensor::zeros({2, 3}), c = Tensor::zeros({2, 3}, kBool);
  CHECK_ERROR(where(x, x, x), "where", "condition", "bool", "float32");
  CHECK_ERROR(where(c, x, Tensor::zeros({2, 3}, kFloat64)), "where", "float32", "float64");
  CHECK_ERROR(where(c, x, Tensor::zeros({4})), "where", "[2, 3]", "[4]");
  CHECK_ERROR(where(Tensor::zeros({5}, kBool), x, x), "where", "[5]", "[2, 3]");
  CHECK_ERROR(where(c, Tensor(), x), "where", "undefined");
  CHECK_ERROR(where(c, Tensor::arange(3), 0.5), "where", "0.5", "int64");
  CHECK_ERROR(masked_fill(x, x, 1.0), "masked_fill", "mask", "bool", "float32");
  CHECK_ERROR(masked_fill(x, Tensor::zeros({2, 2, 3}, kBool), 1.0), "masked_fill", "[2, 2, 3]",
              "[2, 3]");
  CHECK_ERROR(masked_fill(x, Tensor::zeros({4}, kBool), 1.0), "masked_fill", "[4]", "[2, 3]");
  CHECK_ERROR(masked_fill(Tensor::arange(3), Tensor::zeros({3}, kBool), 0.5), "masked_fill",
              "int64");
  CHECK_ERROR(masked_fill(Tensor(), c, 1.0), "masked_fill", "undefined");
}

TEST_CASE("bad input: reductions") {
  Tensor x = Tensor::zeros({2, 3});
  CHECK_ERROR(sum(x, {2}), "sum", "dimension 2", "2 dimension");
  CHECK_ERROR(sum(x, {0, -2}), "sum", "twice", "[0, -2]");
  CHECK_ERROR(sum(Tensor::zeros({2}, kBool)), "sum", "bool");
  CHECK_ERROR(sum(Tensor()), "sum", "undefined");
  CHECK_ERROR(mean(x, {5}), "mean", "dimension 5");
  CHECK_ERROR(mean(Tensor::arange(3)), "mean", "int64", "floating-point");
  CHECK_ERROR(max(x, 2), "max", "out of range");
  CHECK_ERROR(max(Tensor::zeros({0})), "max", "size 0", "[0]");
  CHECK_ERROR(min(Tensor::zeros({3, 0}), 1), "min", "size 0", "[3, 0]");
  CHECK_ERROR(max(Tensor::zeros({2}, kBool)), "max", "bool");
  // (mean / var of zero elements or with no degrees of freedom give NaN, as in PyTorch:
  // tests/test_empty_inputs.cpp.)
  CHECK_ERROR(var(Tensor::arange(3)), "var", "int64");
  CHECK_ERROR(var(x, Shape{-3}), "var", "out of range");
  // (var(x, {1}) with one number in braces picks the var(x, correction)
  // overload.)
  CHECK_ERROR(var(x, -1), "var", "correction", "-1");
  CHECK_ERROR(logsumexp(x, 2), "logsumexp", "out of range");
  CHECK_ERROR(logsumexp(Tensor::arange(3), 0), "logsumexp", "int64");
  CHECK_ERROR(argmax(Tensor::scalar(1.0), 0), "argmax", "scalar");
  CHECK_ERROR(argmin(x, 3), "argmin", "out of range");
  CHECK_ERROR(argmax(Tensor::zeros({2, 0}), 1), "argmax", "size 0");
  CHECK_ERROR(sum_to(Tensor::zeros({3}), {2, 3}), "sum_to", "[3]", "[2, 3]");
}

TEST_CASE("values: matmul copies and gradients keep the operands' layouts, same bits") {
  // Attention's k^T: a transposed view whose batch dims ([B, H] with strides L * 3E and hd) do
  // not collapse, so the GEMM reads a copy; it is copied in storage order and used transposed.
  // Linear's weight.t(): its gradient is computed as (g^T a)^T, so the weight's arrives
  // contiguous. Both give the bits of the same product on contiguous copies of the operands.
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    Generator g(3);
    Tensor qkv = Tensor::randn({4, 8, 3 * 32}, dt, &g);
    Tensor q = qkv.narrow(-1, 0, 32).reshape({4, 8, 2, 16}).transpose(1, 2);
    Tensor k = qkv.narrow(-1, 32, 32).reshape({4, 8, 2, 16}).transpose(1, 2);
    Tensor s1 = matmul(q, k.transpose(-2, -1));
    Tensor s2 = matmul(q.contiguous(), k.transpose(-2, -1).contiguous());
    CHECK(vals(s1) == vals(s2));
    for (int64_t rows : {1, 5, 300}) {
      Tensor x = Tensor::randn({rows, 24}, dt, &g).requires_grad_();
      Tensor w = Tensor::randn({40, 24}, dt, &g).requires_grad_();
      Tensor gy = Tensor::randn({rows, 40}, dt, &g);
      matmul(x, w.t()).backward(gy);
      CHECK(w.grad().is_contiguous());
      Tensor want = matmul(x.detach().t().contiguous(), gy).t();  // (x^T g)^T, the old way
      CHECK(vals(w.grad()) == vals(want));
      CHECK(vals(x.grad()) == vals(matmul(gy, w.detach())));
    }
  }
}

TEST_CASE("bad input: matmul") {
  Tensor a = Tensor::zeros({2, 3});
  CHECK_ERROR(matmul(a, Tensor::zeros({4, 5})), "matmul", "[2, 3]", "[4, 5]", "3 != 4");
  CHECK_ERROR(matmul(Tensor::zeros({3}), Tensor::zeros({4})), "matmul", "[3]", "[4]");
  CHECK_ERROR(matmul(a, Tensor::zeros({2})), "matmul", "[2, 3]", "[2]");
  CHECK_ERROR(matmul(Tensor::zeros({4}), Tensor::zeros({2, 3, 5})), "matmul", "[4]", "[2, 3, 5]");
  CHECK_ERROR(matmul(Tensor::scalar(1.0), a), "matmul", "at least 1 dimension", "[]", "[2, 3]");
  CHECK_ERROR(matmul(a, Tensor::scalar(1.0)), "matmul", "at least 1 dimension");
  CHECK_ERROR(matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 4})), "matmul", "[2, 2, 3]",
              "[3, 3, 4]", "batch", "broadcast");
  CHECK_ERROR(matmul(a, Tensor::zeros({3, 4}, kFloat64)), "matmul", "float32", "float64");
  CHECK_ERROR(matmul(Tensor::zeros({2, 3}, kInt64), Tensor::zeros({3, 4}, kInt64)), "matmul",
              "int64", "floating-point");
  CHECK_ERROR(matmul(a, Tensor()), "matmul", "undefined");
  CHECK_ERROR(a.matmul(Tensor::zeros({2, 3})), "matmul", "3 != 2");
}
