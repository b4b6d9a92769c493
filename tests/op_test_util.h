// Helpers shared by the op suites (test_ops_index, test_ops_loss_norm, test_ops_attention,
// test_ops_conv, test_ops_softmax) and test_nn_losses: seeded random inputs, gradcheck and
// float32-vs-float64 expectations, error-message checks, element-wise and bit-for-bit comparisons.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "core_test_util.h"  // vals, max_rel_diff, allclose, CHECK_ERROR
#include "mmgrad/mmgrad.h"

namespace mmgrad::testing {

// max |a - b| / (max |b| + 1e-3): float32 sums of a few hundred terms agree with the float64
// result to ~1e-6 of the largest value; a wrong index gives O(1).
inline double scaled_diff(const Tensor& a, const Tensor& b) {
  auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  REQUIRE(va.size() == vb.size());
  double m = 0, d = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    m = std::max(m, std::fabs(vb[i]));
    d = std::max(d, std::fabs(va[i] - vb[i]));
  }
  return d / (m + 1e-3);
}

// A tensor's bytes (contiguous), to compare results bit for bit.
inline std::vector<unsigned char> bytes(const Tensor& t) {
  Tensor c = t.contiguous();
  const auto* p = static_cast<const unsigned char*>(c.raw_data());
  return {p, p + c.numel() * static_cast<int64_t>(c.element_size())};
}

// For each case: run(c) on 1 thread, then on 2 and 3, and check that the forward output y and
// the gradients gx and gw of what run returns have the same bits (a kernel whose sums depend on
// how work is split over threads fails). describe(c) names the case in a failure.
template <class Case, class Run, class Describe>
void expect_same_bits_on_1_2_3_threads(const std::vector<Case>& cases, Run run, Describe describe) {
  const int saved = get_num_threads();
  for (const Case& c : cases) {
    INFO(describe(c));
    set_num_threads(1);
    const auto one = run(c);
    for (int threads : {2, 3}) {
      set_num_threads(threads);
      const auto many = run(c);
      CHECK(bytes(many.y) == bytes(one.y));
      CHECK(bytes(many.gx) == bytes(one.gx));
      CHECK(bytes(many.gw) == bytes(one.gw));
    }
  }
  set_num_threads(saved);
}

// A float64 tensor of N(0, 1) values drawn from Generator(seed); a leaf that requires grad
// unless grad is false.
inline Tensor randn64(const Shape& s, uint64_t seed, bool grad = true) {
  Generator g(seed);
  Tensor t = Tensor::randn(s, kFloat64, &g);
  if (grad) t.requires_grad_();
  return t;
}

// N(0, 1) values of dtype dt drawn from Generator(seed); does not require grad.
inline Tensor rnd(const Shape& s, uint64_t seed, DType dt = kFloat64) {
  Generator g(seed);
  return Tensor::randn(s, dt, &g);
}

// An int64 tensor holding v, of shape s (1-D when s is empty).
inline Tensor ints(const std::vector<int64_t>& v, const Shape& s = {}) {
  return Tensor::from_vector(v, s);
}

// gradcheck(fn, inputs) passes (its report is shown on failure).
inline void expect_gradcheck_ok(const GradFn& fn, const std::vector<Tensor>& inputs) {
  GradcheckResult r = gradcheck(fn, inputs);
  INFO(r.report);
  CHECK(r.ok);
}

// gradcheck(fn, inputs) passes and checked at least one element (an empty check passes
// vacuously).
inline void expect_gradcheck(const GradFn& fn, const std::vector<Tensor>& inputs) {
  GradcheckResult r = gradcheck(fn, inputs);
  INFO(r.report);
  CHECK(r.ok);
  CHECK(r.elements_checked > 0);
}

// The float32 forward of fn agrees with its float64 forward: same shape, every element within
// tol (relative, floor 1). Floating-point inputs are converted to float32, the others passed as
// they are.
inline void expect_f32_matches_f64(const GradFn& fn, const std::vector<Tensor>& inputs64,
                                   double tol = 1e-5) {
  std::vector<Tensor> in64, in32;
  for (const Tensor& t : inputs64) {
    in64.push_back(t.detach());
    in32.push_back(t.is_floating_point() ? t.detach().to(kFloat32) : t.detach());
  }
  Tensor a = fn(in64), b = fn(in32);
  REQUIRE(a.dtype() == kFloat64);
  REQUIRE(b.dtype() == kFloat32);
  REQUIRE(a.shape() == b.shape());
  auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < va.size(); ++i)
    worst = std::max(worst, std::abs(va[i] - vb[i]) / std::max(1.0, std::abs(va[i])));
  CHECK(worst < tol);
}

// f() throws mmgrad::Error whose message starts with "op: " and contains `also` (when given).
inline void expect_error(const std::function<void()>& f, const std::string& op,
                         const std::string& also = "") {
  try {
    f();
  } catch (const mmgrad::Error& e) {
    std::string m = e.what();
    INFO("message: ", m);
    CHECK(m.rfind(op + ": ", 0) == 0);
    if (!also.empty()) CHECK(m.find(also) != std::string::npos);
    return;
  } catch (const std::exception& e) {
    FAIL("expected mmgrad::Error from ", op, ", got another exception: ", e.what());
    return;
  }
  FAIL("expected mmgrad::Error from ", op, ", nothing was thrown");
}

// One check over the whole vector: every |a - b| / max(1, |b|) is within tol (a NaN fails);
// on failure it reports the worst element (its index and both values).
inline void check_close(const std::vector<double>& a, const std::vector<double>& b, double tol) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double err = std::abs(a[i] - b[i]) / std::max(1.0, std::abs(b[i]));
    if (!(err <= worst)) {  // also catches NaN
      worst = std::isnan(err) ? INFINITY : err;
      at = i;
    }
  }
  CAPTURE(at);
  CAPTURE(a.empty() ? 0.0 : a[at]);
  CAPTURE(b.empty() ? 0.0 : b[at]);
  CHECK(worst <= tol);
}

// One check per element: got[i] == doctest::Approx(want[i]).epsilon(tol).scale(1.0), i.e.
// |got - want| < tol * (1 + max(|got|, |want|)), with the index captured.
inline void check_approx_each(const std::vector<double>& got, const std::vector<double>& want,
                              double tol = 1e-12) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i] == doctest::Approx(want[i]).epsilon(tol).scale(1.0));
  }
}

}  // namespace mmgrad::testing
