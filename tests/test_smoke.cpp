#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "mmgrad/mmgrad.h"

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

TEST_CASE("set_num_threads: changes the team size, same results, rejects n < 1") {
  const int before = get_num_threads();
  Generator g(3);
  Tensor a = Tensor::randn({300, 200}, kFloat64, &g), b = Tensor::randn({200, 100}, kFloat64, &g);
  set_num_threads(2);
  CHECK(get_num_threads() == 2);
  std::vector<double> two = matmul(a, b).to_vector<double>();
  set_num_threads(1);
  CHECK(get_num_threads() == 1);
  std::vector<double> one = matmul(a, b).to_vector<double>();
  REQUIRE(one.size() == two.size());
  double worst = 0;
  for (size_t i = 0; i < one.size(); ++i) worst = std::max(worst, std::abs(one[i] - two[i]));
  CHECK(worst < 1e-9);
  CHECK_THROWS_WITH_AS(set_num_threads(0), doctest::Contains("set_num_threads"), mmgrad::Error);
  set_num_threads(before);
}
