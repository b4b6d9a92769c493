#include <doctest/doctest.h>

#include "mmgrad.h"

using namespace mmgrad;

TEST_CASE("smoke: add and backward") {
  Tensor a = Tensor::from_vector({1.0, 2.0, 3.0}, {3}, kFloat64).requires_grad_();
  Tensor b = Tensor::from_vector({4.0, 5.0, 6.0}, {3}, kFloat64).requires_grad_();
  Tensor y = (a * b + a).sum();
  y.backward();
  CHECK(y.item() == doctest::Approx(1 * 4 + 2 * 5 + 3 * 6 + 6));
  auto ga = a.grad().to_vector<double>();
  CHECK(ga[0] == doctest::Approx(5));
  CHECK(ga[2] == doctest::Approx(7));
}
