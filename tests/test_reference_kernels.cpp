// The fused kernels against their definitions (llm.c's habit): layer norm, softmax, log_softmax,
// softmax cross-entropy and the Adam / AdamW step, run through the public ops in float64 and
// float32, compared with the plain float64 loops of mmgrad::reference (written at the end of
// ops/norm.cpp, ops/softmax.cpp, ops/loss.cpp and nn/adam.cpp). And the CPU's float32 Eigen fast
// paths (exp, log, tanh, sigmoid, gelu, GeluGrad) against the scalar formulas of
// kernels/element_ops.h evaluated in double.
//
// Inputs are rounded to the tested dtype first, so the reference sees exactly the numbers the
// kernel sees; what differs is only the kernel's own rounding (float32 storage, summation order,
// the rearranged backward formulas).
#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "mmgrad/core/philox.h"
#include "mmgrad/kernels/element_ops.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/nn/init.h"
#include "mmgrad/optim/optim.h"

using namespace mmgrad;

namespace {

// Uniform values in [shift - scale, shift + scale), rounded to dt.
std::vector<double> random_values(int64_t n, uint64_t seed, double scale, DType dt,
                                  double shift = 0.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = shift + scale * u(rng);
  return Tensor::from_vector(v, {n}).to(dt).to_vector<double>();
}

Tensor make(const std::vector<double>& v, const Shape& s, DType dt, bool grad = false) {
  Tensor t = Tensor::from_vector(v, s).to(dt);
  if (grad) t.requires_grad_();
  return t;
}

// Every element within tol * max(1, |want|) of the reference (NaN only where the reference has
// NaN). Reports the worst element.
void expect_close(const std::vector<double>& got, const std::vector<double>& want, double tol,
                  const std::string& what) {
  REQUIRE_MESSAGE(got.size() == want.size(), what, ": ", got.size(), " values, want ", want.size());
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i]) || std::isnan(got[i])) {
      if (std::isnan(want[i]) != std::isnan(got[i])) {
        worst = std::numeric_limits<double>::infinity();
        at = i;
      }
      continue;
    }
    const double err = std::abs(got[i] - want[i]) / std::max(1.0, std::abs(want[i]));
    if (err > worst) {
      worst = err;
      at = i;
    }
  }
  CHECK_MESSAGE(worst <= tol, what, ": element ", at, " is ", (at < got.size() ? got[at] : 0.0),
                ", the reference ", (at < want.size() ? want[at] : 0.0), " (error ", worst,
                ", tolerance ", tol, ")");
}

// float64 kernels differ from the references only by rounding in another order: ~1e-15 per
// operation. float32 kernels round every stored value to 2^-24 ~ 6e-8 (relative); through a
// row of sums and the backward's products that grows to a few 1e-7, so 1e-5 leaves a margin
// that still catches any wrong term.
double tol_for(DType dt) { return dt == kFloat64 ? 1e-12 : 1e-5; }

const DType kDtypes[] = {kFloat64, kFloat32};

}  // namespace

// ---- layer norm ---------------------------------------------------------------------------------

TEST_CASE("reference kernels: layer_norm forward and backward match the plain loops") {
  const double eps = 1e-5;
  for (DType dt : kDtypes)
    for (auto [N, D] :
         std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 1}, {4, 7}, {16, 64}, {5, 300}})
      for (bool affine : {false, true}) {
        std::vector<double> x = random_values(N * D, 10 + D, 3.0, dt, 1.5);
        // a row of identical values (variance 0: rstd = 1 / sqrt(eps)) when there are rows to
        // spare
        if (N > 1)
          for (int64_t i = 0; i < D; ++i) x[D + i] = 2.5;
        std::vector<double> w, b;
        if (affine) {
          w = random_values(D, 20 + D, 1.0, dt, 1.0);
          b = random_values(D, 30 + D, 1.0, dt);
        }
        const std::vector<double> dy = random_values(N * D, 40 + D, 1.0, dt);
        Tensor xt = make(x, {N, D}, dt, true);
        Tensor wt = affine ? make(w, {D}, dt, true) : Tensor();
        Tensor bt = affine ? make(b, {D}, dt, true) : Tensor();
        Tensor y = layer_norm(xt, {D}, wt, bt, eps);
        y.backward(make(dy, {N, D}, dt));

        const std::string what =
            cat_str("layer_norm ", dtype_name(dt), " [", N, ", ", D, "] affine ", affine);
        const reference::LayerNormGrads g = reference::layer_norm_backward(x, dy, N, D, w, eps);
        // The identical row has rstd = 1 / sqrt(eps) ~ 316: its gradient is that much larger,
        // and float32's absolute error with it.
        const double tol = tol_for(dt) * (N > 1 ? 1.0 / std::sqrt(eps) : 1.0);
        expect_close(y.to_vector<double>(), reference::layer_norm(x, N, D, w, b, eps), tol_for(dt),
                     what + " y");
        expect_close(xt.grad().to_vector<double>(), g.dx, tol, what + " dx");
        if (affine) {
          expect_close(wt.grad().to_vector<double>(), g.dw, tol_for(dt) * N, what + " dw");
          expect_close(bt.grad().to_vector<double>(), g.db, tol_for(dt) * N, what + " db");
        }
      }
}

TEST_CASE("reference kernels: the layer_norm reference is the textbook formula") {
  // One row [1, 2, 3]: mean 2, biased variance 2/3.
  const std::vector<double> y = reference::layer_norm({1, 2, 3}, 1, 3, {}, {}, 0.0);
  const double s = std::sqrt(2.0 / 3.0);
  CHECK(y[0] == doctest::Approx(-1.0 / s));
  CHECK(y[1] == doctest::Approx(0.0));
  CHECK(y[2] == doctest::Approx(1.0 / s));
  // A constant upstream gradient gives dx = 0 (shifting x does not change y).
  const reference::LayerNormGrads g =
      reference::layer_norm_backward({1, 2, 3}, {1, 1, 1}, 1, 3, {}, 1e-5);
  for (double d : g.dx) CHECK(std::abs(d) < 1e-12);
}

// ---- softmax and log_softmax --------------------------------------------------------------------

namespace {

std::vector<double> transpose(const std::vector<double>& v, int64_t R, int64_t C) {
  std::vector<double> t(v.size());
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) t[c * R + r] = v[r * C + c];
  return t;
}

}  // namespace

TEST_CASE("reference kernels: softmax and log_softmax forward and backward match the plain loops") {
  for (DType dt : kDtypes)
    for (auto [R, D] :
         std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 1}, {5, 7}, {4, 33}, {8, 1000}})
      for (bool log : {false, true})
        for (int dim : {1, 0}) {
          std::vector<double> x = random_values(R * D, 50 + D, 4.0, dt);
          if (R > 1)  // a row of identical values: the uniform distribution
            for (int64_t i = 0; i < D; ++i) x[D + i] = -1.25;
          if (R > 2)  // large logits: only the shift by the maximum keeps exp finite
            for (int64_t i = 0; i < D; ++i) x[2 * D + i] += (i % 2 ? 1000.0 : 990.0);
          x = Tensor::from_vector(x, {R * D}).to(dt).to_vector<double>();
          const std::vector<double> dy = random_values(R * D, 60 + D, 1.0, dt);
          // softmax over dim 1 of [R, D], or over dim 0 of its transpose [D, R]: the same rows
          // read with stride R (the kernel's inner > 1 path).
          const Shape shape = dim == 1 ? Shape{R, D} : Shape{D, R};
          Tensor xt = make(dim == 1 ? x : transpose(x, R, D), shape, dt, true);
          Tensor y = log ? log_softmax(xt, dim) : softmax(xt, dim);
          y.backward(make(dim == 1 ? dy : transpose(dy, R, D), shape, dt));
          std::vector<double> got_y = y.to_vector<double>();
          std::vector<double> got_dx = xt.grad().to_vector<double>();
          if (dim == 0) {
            got_y = transpose(got_y, D, R);
            got_dx = transpose(got_dx, D, R);
          }
          const std::string what = cat_str(log ? "log_softmax " : "softmax ", dtype_name(dt), " [",
                                           R, ", ", D, "] dim ", dim);
          // log_softmax's outputs reach |x - max| ~ 20 and float32 rounds them relative to that.
          expect_close(got_y, reference::softmax(x, R, D, log), tol_for(dt), what + " y");
          expect_close(got_dx, reference::softmax_backward(x, dy, R, D, log), tol_for(dt),
                       what + " dx");
        }
}

// ---- softmax cross-entropy ----------------------------------------------------------------------

TEST_CASE("reference kernels: cross_entropy forward and backward match the plain loops") {
  const int64_t ignore = -100;
  for (DType dt : kDtypes)
    for (auto [N, C] :
         std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {4, 3}, {7, 10}, {16, 1000}})
      for (double eps : {0.0, 0.1, 1.0}) {
        std::vector<double> x = random_values(N * C, 70 + C, 5.0, dt);
        // large logits in row 1: float32's lse (stored for the backward) is rounded to ~5e-5 at
        // 800, so its backward gets a looser tolerance below
        const double big = dt == kFloat64 ? 800.0 : 80.0;
        if (N > 1)
          for (int64_t c = 0; c < C; ++c) x[C + c] += (c % 3 ? big : -big);
        x = Tensor::from_vector(x, {N * C}).to(dt).to_vector<double>();
        std::vector<int64_t> target(static_cast<size_t>(N));
        for (int64_t n = 0; n < N; ++n) target[n] = (n * 7 + 3) % C;
        if (N > 2) target[2] = ignore;  // ignored rows: loss 0, gradient 0
        if (N > 5) target[5] = ignore;
        const std::vector<double> g = random_values(N, 80 + C, 1.0, dt);
        Tensor xt = make(x, {N, C}, dt, true);
        CrossEntropyOptions o;
        o.ignore_index = ignore;
        o.label_smoothing = eps;
        o.reduction = Reduction::None;
        Tensor loss = cross_entropy(xt, Tensor::from_vector(target, {N}), o);
        loss.backward(make(g, {N}, dt));

        const std::string what =
            cat_str("cross_entropy ", dtype_name(dt), " [", N, ", ", C, "] eps ", eps);
        const std::vector<double> want = reference::cross_entropy(x, target, N, C, ignore, eps);
        expect_close(loss.to_vector<double>(), want, tol_for(dt), what + " loss");
        expect_close(xt.grad().to_vector<double>(),
                     reference::cross_entropy_backward(x, target, g, N, C, ignore, eps),
                     tol_for(dt) * (N > 1 ? big : 1.0), what + " dx");

        // The mean reduction divides by the rows that count.
        o.reduction = Reduction::Mean;
        double sum = 0;
        int64_t counted = 0;
        for (int64_t n = 0; n < N; ++n)
          if (target[n] != ignore) {
            sum += want[n];
            ++counted;
          }
        const double mean_loss =
            cross_entropy(xt.detach(), Tensor::from_vector(target, {N}), o).item();
        expect_close({mean_loss}, {sum / static_cast<double>(counted)}, tol_for(dt),
                     what + " mean");
      }
}

// ---- Adam / AdamW -------------------------------------------------------------------------------

TEST_CASE("reference kernels: Adam and AdamW steps match the plain loop") {
  for (DType dt : kDtypes)
    for (int64_t n : {int64_t{1}, int64_t{37}, int64_t{1000}})
      for (bool decoupled : {false, true})
        for (double wd : {0.0, 0.05}) {
          optim::AdamOptions o;
          o.lr = 1e-2;
          o.weight_decay = wd;
          std::vector<double> p = random_values(n, 90 + n, 1.0, dt);
          std::vector<double> m(static_cast<size_t>(n), 0.0), v(m);
          Tensor pt = make(p, {n}, dt, true);
          std::unique_ptr<optim::Optimizer> opt;
          if (decoupled)
            opt = std::make_unique<optim::AdamW>(
                std::vector<Tensor>{pt},
                optim::AdamWOptions{.lr = o.lr, .weight_decay = o.weight_decay});
          else
            opt = std::make_unique<optim::Adam>(std::vector<Tensor>{pt}, o);
          for (int64_t step = 1; step <= 5; ++step) {
            const std::vector<double> g = random_values(n, 100 * step + n, 1.0, dt);
            pt.set_grad(make(g, {n}, dt));
            opt->step();
            reference::adam_step(p, g, m, v, step, o, decoupled);
          }
          const std::string what = cat_str(decoupled ? "AdamW " : "Adam ", dtype_name(dt), " n ", n,
                                           " weight_decay ", wd);
          expect_close(pt.to_vector<double>(), p, tol_for(dt), what + " param after 5 steps");
        }
}

TEST_CASE("reference kernels: the Adam reference's first step moves each weight by lr") {
  // Step 1 of Adam without decay: m_hat = g and v_hat = g^2, so p moves by lr * g / (|g| + eps).
  std::vector<double> p = {1.0, -2.0}, m = {0, 0}, v = {0, 0};
  optim::AdamOptions o;
  o.lr = 0.1;
  o.eps = 0.0;
  reference::adam_step(p, {0.5, -3.0}, m, v, 1, o, false);
  CHECK(p[0] == doctest::Approx(0.9));
  CHECK(p[1] == doctest::Approx(-1.9));
}

// ---- the float32 Eigen fast paths against the scalar formulas -----------------------------------

namespace {

// Many float32 inputs: a dense sweep of [-lim, lim], tiny and subnormal values, zeros, huge
// values, infinities and NaN.
std::vector<float> sweep_inputs(double lim) {
  std::vector<float> v;
  for (int i = -20000; i <= 20000; ++i) v.push_back(static_cast<float>(lim * i / 20000.0));
  for (float s : {1.0f, -1.0f})
    for (float a : {1e-45f, 1e-40f, 1e-38f, FLT_MIN, 1e-30f,
                    1e-20f, 1e-10f, 1e-5f,  1e-3f,   0.5f,
                    1.0f,   2.0f,   9.0f,   10.0f,   15.0f,
                    20.0f,  50.0f,  88.0f,  89.0f,   100.0f,
                    1e4f,   1e10f,  1e30f,  FLT_MAX, std::numeric_limits<float>::infinity()})
      v.push_back(s * a);
  v.push_back(0.0f);
  v.push_back(-0.0f);
  v.push_back(std::numeric_limits<float>::quiet_NaN());
  return v;
}

// Accepts got when it equals the double formula rounded to float (infinities, signed zeros
// within the tolerance), both are NaN, or |got - want| <= rel * |want| + abs_x * |x| + abs +
// FLT_MIN (FLT_MIN: results in float32's subnormal range may be flushed to zero by Eigen).
// accept, when given, lets through a documented deviation of Eigen's function at x.
struct Tolerance {
  double rel, abs_x = 0.0, abs = 0.0;
  bool (*accept)(float x, float got) = nullptr;
};

template <class F>
void check_fast_path(const std::string& name, const std::vector<float>& xs,
                     const std::vector<float>& got, F formula, Tolerance tol) {
  double worst = 0;
  size_t bad = 0, at = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double want = formula(static_cast<double>(xs[i]));
    const double want_f = static_cast<double>(static_cast<float>(want));
    const double g = got[i];
    if (std::isnan(want) || std::isnan(g)) {
      if (std::isnan(want) != std::isnan(g)) {
        ++bad;
        at = i;
      }
      continue;
    }
    if (g == want_f || (tol.accept && tol.accept(xs[i], got[i]))) continue;
    const double err = std::abs(g - want);
    const double allowed =
        tol.rel * std::abs(want) + tol.abs_x * std::abs(xs[i]) + tol.abs + FLT_MIN;
    if (!(err <= allowed)) {
      ++bad;
      at = i;
    }
    if (std::isfinite(want) && std::abs(want) > FLT_MIN)
      worst = std::max(worst, err / std::abs(want));
  }
  MESSAGE(name, ": worst relative error ", worst, " over ", xs.size(), " inputs");
  CHECK_MESSAGE(bad == 0, name, ": ", bad, " values outside the tolerance, e.g. x = ", xs[at],
                " gives ", got[at], ", the formula ", formula(static_cast<double>(xs[at])));
}

template <UnaryOp OP>
void check_unary_fast_path(const std::string& name, double lim, Tolerance tol) {
  const std::vector<float> xs = sweep_inputs(lim);
  const int64_t n = static_cast<int64_t>(xs.size());
  Tensor x = Tensor::from_vector(xs, {n}), y = Tensor::empty({n}, kFloat32);
  backend(kCPU).unary(OP, x.desc(), y.desc(), 0.0, 0.0);  // contiguous float32: the Eigen path
  check_fast_path(
      name, xs, y.to_vector<float>(),
      [](double v) { return elem::unary_fn<OP, double>(v, 0.0, 0.0); }, tol);
}

}  // namespace

// The tolerances are those stated with the fast paths (kernels/cpu/elementwise.cpp): Eigen's
// float32 exp and log are within ~1e-7 relative, tanh ~3e-7, and erf ~4e-7 absolute, which GELU
// multiplies by |x| / 2; float32's own rounding adds 6e-8. Measured here (AVX-512): exp 3.0e-7
// (at large |x|), log 6.5e-8, tanh 2.6e-7, sigmoid 3.0e-7, gelu 2e-7 |x| absolute. Two deviations
// at the edges of float32's range are Eigen's and stay (the fast path is kept bit for bit):
//   - exp overflows to inf from x = 88.3763 on, where float32 still holds exp(x) up to 88.7228;
//   - log of a subnormal input (below FLT_MIN ~ 1.2e-38) gives about log(FLT_MIN) = -87.34
//     instead of down to -103.28.
TEST_CASE("reference kernels: float32 Eigen exp, log, tanh, sigmoid, gelu match elem:: in double") {
  check_unary_fast_path<UnaryOp::Exp>("exp", 100.0, {4e-7, 0.0, 0.0, [](float x, float got) {
                                                       return x >= 88.3762f && std::isinf(got);
                                                     }});
  check_unary_fast_path<UnaryOp::Log>("log", 1e4, {2e-7, 0.0, 0.0, [](float x, float got) {
                                                     return x > 0.0f && x < FLT_MIN &&
                                                            got >= -87.35f && got <= -87.33f;
                                                   }});
  check_unary_fast_path<UnaryOp::Tanh>("tanh", 20.0, {4e-7});
  check_unary_fast_path<UnaryOp::Sigmoid>("sigmoid", 100.0, {4e-7});
  check_unary_fast_path<UnaryOp::Gelu>("gelu", 20.0, {2e-7, 2.5e-7});
}

TEST_CASE("reference kernels: float32 Eigen GeluGrad matches elem:: in double") {
  // g * (Phi(x) + x phi(x)) for g in a few magnitudes; the erf error (~4e-7 absolute) enters
  // through Phi = (1 + erf) / 2 times |g|.
  const std::vector<float> xs = sweep_inputs(20.0);
  const int64_t n = static_cast<int64_t>(xs.size());
  for (float gv : {1.0f, -0.375f, 1e3f}) {
    Tensor x = Tensor::from_vector(xs, {n}), g = Tensor::full({n}, gv, kFloat32);
    Tensor y = Tensor::empty({n}, kFloat32);
    backend(kCPU).binary(BinaryOp::GeluGrad, g.desc(), x.desc(), y.desc());
    const double gd = gv;
    check_fast_path(cat_str("GeluGrad g ", gv), xs, y.to_vector<float>(),
                    [gd](double v) { return elem::binary_fn<BinaryOp::GeluGrad, double>(gd, v); },
                    {3e-7, 0.0, 2.5e-7 * std::abs(gd)});
  }
}

// ---- dropout and uniform random fills --------------------------------------------------------

namespace {

std::vector<unsigned char> refk_bits(const Tensor& t) {
  Tensor c = t.contiguous();
  const auto* p = static_cast<const unsigned char*>(c.raw_data());
  return {p, p + c.numel() * static_cast<int64_t>(c.element_size())};
}

// Dropout written as ops/dropout.cpp's composed path, with u drawn by the scalar Philox at the
// generator's counters: mask = where(u >= p, 1/(1-p), 0), y = x * mask (mask returned for the
// gradient g * mask).
Tensor refk_composed_dropout(const Tensor& x, double p, uint64_t seed, uint64_t offset,
                             Tensor* mask) {
  std::vector<double> uv(static_cast<size_t>(x.numel()));
  for (size_t i = 0; i < uv.size(); ++i) {
    uv[i] = x.dtype() == kFloat32 ? philox::uniform_sample<float>(offset + i, seed, 0.0, 1.0)
                                  : philox::uniform_sample<double>(offset + i, seed, 0.0, 1.0);
  }
  Tensor u = Tensor::from_vector(uv, x.shape()).to(x.dtype());
  *mask = where(ge(u, p), Tensor::scalar(1.0 / (1.0 - p), x.options()), 0.0);
  return mul(x.detach(), *mask);
}

}  // namespace

TEST_CASE("reference kernels: dropout has the bits of its definition on the scalar Philox draws") {
  // Sizes around the 16-lane vector blocks and the thread split; generator offsets just below
  // 2^32, where the Philox counter's high word changes inside a vector block; inputs with
  // +-0, inf and NaN (a dropped inf or NaN gives NaN, as x * 0 does), gradients likewise.
  const int saved = get_num_threads();
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{15}, int64_t{16}, int64_t{17}, int64_t{100},
                    int64_t{70001}})
    for (double p : {0.1, 0.5, 0.9, 0.3333333333333333})
      for (uint64_t offset : {uint64_t{0}, (uint64_t{1} << 32) - 7})
        for (int threads : {1, 2, 3}) {
          set_num_threads(threads);
          const std::string what =
              cat_str("n ", n, " p ", p, " offset ", offset, " threads ", threads);
          INFO(what);
          std::vector<double> xv = random_values(n, 7 + n, 3.0, kFloat32);
          std::vector<double> gv = random_values(n, 8 + n, 2.0, kFloat32);
          const double specials[] = {0.0, -0.0, INFINITY, -INFINITY, NAN};
          for (size_t i = 0; i < xv.size() && i < 40; ++i) {
            xv[i] = specials[i % 5];
            gv[(i * 7) % xv.size()] = specials[(i + 2) % 5];
          }
          Tensor x = make(xv, {n}, kFloat32, true), gy = make(gv, {n}, kFloat32);
          Generator g1(11);
          g1.set_state({11, offset});
          Tensor y = dropout(x, p, true, &g1);
          y.backward(gy);
          Tensor mask;
          Tensor want = refk_composed_dropout(x, p, 11, offset, &mask);
          CHECK(g1.offset() == offset + static_cast<uint64_t>(n));
          CHECK(refk_bits(y) == refk_bits(want));
          CHECK(refk_bits(x.grad()) == refk_bits(mul(gy, mask)));
        }
  set_num_threads(saved);
  // A non-contiguous float32 input (a transposed view) and a float64 one (the composed path).
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor x = make(random_values(600, 3, 1.0, dt), {20, 30}, dt).transpose(0, 1);
    Generator g1(5);
    Tensor mask;
    CHECK(refk_bits(dropout(x, 0.25, true, &g1)) ==
          refk_bits(refk_composed_dropout(x, 0.25, 5, 0, &mask)));
  }
}

TEST_CASE("reference kernels: uniform random fills match the scalar Philox sample") {
  // The CPU fills float32 and float64 tensors 16 counters at a time (AVX-512 where the CPU has
  // it); every element must be philox::uniform_sample at its counter, including ranges whose
  // rounding reaches the upper bound and counters crossing 2^32.
  for (DType dt : {kFloat32, kFloat64})
    for (int64_t n : {int64_t{1}, int64_t{17}, int64_t{5000}})
      for (uint64_t offset : {uint64_t{0}, (uint64_t{1} << 32) - 9})
        for (auto [a, b] :
             {std::pair{0.0, 1.0}, std::pair{-3.0, 5.5}, std::pair{1.0, 1.0 + 1e-7}}) {
          INFO(dtype_name(dt), " n ", n, " offset ", offset, " [", a, ", ", b, ")");
          Generator g(21);
          g.set_state({21, offset});
          Tensor u = a == 0.0 && b == 1.0 ? Tensor::rand({n}, dt, &g)
                                          : nn::init::uniform_(Tensor::empty({n}, dt), a, b, &g);
          std::vector<double> got = u.to_vector<double>();
          bool same = true;
          for (int64_t i = 0; i < n; ++i) {
            const uint64_t c = offset + static_cast<uint64_t>(i);
            const double want = dt == kFloat32 ? philox::uniform_sample<float>(c, 21, a, b)
                                               : philox::uniform_sample<double>(c, 21, a, b);
            same = same && std::memcmp(&got[i], &want, sizeof want) == 0;
          }
          CHECK(same);
        }
}
