// softmax / log_softmax: values against a naive reference, float32 backward,
// errors. Their gradchecks and float32 forward run from the op list
// (tests/op_list.cpp).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "mmgrad/mmgrad.h"
#include "op_test_util.h"

using namespace mmgrad;
using namespace mmgrad::testing;

namespace {

// Naive softmax (or log_softmax) of a row-major buffer along dimension d of
// `shape`.
std::vector<double> ref_softmax(const std::vector<double>& x, const Shape& shape, int d, bool log) {
  int64_t outer = 1, n = shape[d], inner = 1;
  for (int i = 0; i < d; ++i) outer *= shape[i];
  for (int i = d + 1; i < shape.size(); ++i) inner *= shape[i];
  std::vector<double> y(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < inner; ++k) {
      double m = -INFINITY;
      for (int64_t i = 0; i < n; ++i) m = std::max(m, x[(o * n + i) * inner + k]);
      double s = 0;
      for (int64_t i = 0; i < n; ++i) s += std::exp(x[(o * n + i) * inner + k] - m);
      for (int64_t i = 0; i < n; ++i) {
        double v = x[(o * n + i) * inner + k];
        y[(o * n + i) * inner + k] = log ? v - m - std::log(s) : std::exp(v - m) / s;
      }
    }
  return y;
}

// N(0, 4) values: rnd(s, seed, dt) scaled by 2.
Tensor rnd_wide(const Shape& s, uint64_t seed, DType dt = kFloat64) {
  return rnd(s, seed, dt).mul_(2.0);
}

}  // namespace

TEST_CASE("softmax: values match a naive reference along every dim") {
  Shape shape{3, 4, 5};
  Tensor x = rnd_wide(shape, 1);
  auto xv = x.to_vector<double>();
  for (int d = 0; d < 3; ++d) {
    check_close(softmax(x, d).to_vector<double>(), ref_softmax(xv, shape, d, false), 1e-12);
    check_close(log_softmax(x, d).to_vector<double>(), ref_softmax(xv, shape, d, true), 1e-12);
  }
  // negative dims and the Tensor methods
  check_close(x.softmax(-1).to_vector<double>(), ref_softmax(xv, shape, 2, false), 1e-12);
  check_close(x.log_softmax(-3).to_vector<double>(), ref_softmax(xv, shape, 0, true), 1e-12);
  // rows sum to one
  auto s = softmax(x, 1).sum(Shape{1}).to_vector<double>();
  for (double v : s) CHECK(v == doctest::Approx(1.0).epsilon(1e-12));
}

TEST_CASE("softmax: non-contiguous input, scalars, size-1 and empty tensors") {
  Tensor x = rnd_wide({4, 3}, 2);
  Tensor xt = x.t();  // a transposed view
  REQUIRE_FALSE(xt.is_contiguous());
  auto ref = ref_softmax(xt.contiguous().to_vector<double>(), Shape{3, 4}, 1, false);
  check_close(softmax(xt, 1).to_vector<double>(), ref, 1e-12);
  // 0-d: softmax of a single value is 1, log_softmax is 0
  CHECK(softmax(Tensor::scalar(3.5, kFloat64), 0).item() == 1.0);
  CHECK(log_softmax(Tensor::scalar(3.5, kFloat64), -1).item() == 0.0);
  // a softmax over a size-1 dim is 1 everywhere
  auto ones = softmax(rnd_wide({2, 1, 3}, 3), 1).to_vector<double>();
  for (double v : ones) CHECK(v == 1.0);
  // empty tensors give empty results
  CHECK(softmax(Tensor::zeros({0, 3}, kFloat64), 1).numel() == 0);
  CHECK(softmax(Tensor::zeros({2, 0}, kFloat64), 1).shape() == Shape{2, 0});
}

TEST_CASE("softmax: numerically stable for large inputs, all -inf rows give NaN") {
  Tensor x =
      Tensor::from_vector({1000.0, 1001.0, 1002.0, -1000.0, -1001.0, -1002.0}, {2, 3}, kFloat32);
  auto y = softmax(x, 1).to_vector<double>();
  auto ref = ref_softmax({1000, 1001, 1002, -1000, -1001, -1002}, Shape{2, 3}, 1, false);
  check_close(y, ref, 1e-6);
  auto ly = log_softmax(x, 1).to_vector<double>();
  for (double v : ly) CHECK(std::isfinite(v));
  CHECK(ly[2] == doctest::Approx(-std::log(1 + std::exp(-1.0) + std::exp(-2.0))).epsilon(1e-6));
  // a row where every entry is -inf has no distribution: NaN, as in PyTorch
  // (attention masks handle such rows themselves)
  Tensor dead = Tensor::full({1, 3}, -INFINITY, kFloat64);
  for (double v : softmax(dead, 1).to_vector<double>()) CHECK(std::isnan(v));
  // -inf in part of a row is fine: probability 0
  Tensor part = Tensor::from_vector({0.0, -INFINITY, 0.0}, {1, 3}, kFloat64);
  auto p = softmax(part, 1).to_vector<double>();
  CHECK(p[0] == doctest::Approx(0.5));
  CHECK(p[1] == 0.0);
}

TEST_CASE("softmax: float32 backward agrees with float64") {
  Tensor x64 = rnd_wide({4, 6}, 21).requires_grad_();
  Tensor x32 = x64.detach().to(kFloat32).requires_grad_();
  Tensor w = rnd_wide({4, 6}, 22);
  (softmax(x64, 1) * w).sum().backward();
  (softmax(x32, 1) * w.to(kFloat32)).sum().backward();
  check_close(x32.grad().to_vector<double>(), x64.grad().to_vector<double>(), 1e-5);
}

TEST_CASE("softmax: bad inputs name the op") {
  Tensor i = Tensor::arange(6).view({2, 3});
  CHECK_THROWS_WITH_AS(softmax(i, 1), doctest::Contains("softmax"), Error);
  CHECK_THROWS_WITH_AS(softmax(i, 1), doctest::Contains("int64"), Error);
  CHECK_THROWS_WITH_AS(log_softmax(i, 1), doctest::Contains("log_softmax"), Error);
  Tensor x = Tensor::zeros({2, 3});
  CHECK_THROWS_WITH_AS(softmax(x, 2), doctest::Contains("softmax: dimension 2 is out of range"),
                       Error);
  CHECK_THROWS_WITH_AS(log_softmax(x, -3), doctest::Contains("log_softmax: dimension -3"), Error);
  CHECK_THROWS_WITH_AS(softmax(Tensor(), 0), doctest::Contains("softmax"), Error);
}
