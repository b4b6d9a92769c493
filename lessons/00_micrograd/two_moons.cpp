#include "00_micrograd/two_moons.h"

#include <cmath>
#include <numbers>

#include "mmgrad/core/error.h"
#include "mmgrad/tensor/tensor.h"

namespace mmgrad::lesson {

Moons make_moons(int64_t n, double noise, Generator& gen) {
  MMGRAD_CHECK(n >= 0 && noise >= 0, "make_moons: expects n >= 0 and noise >= 0, got n = ", n,
               ", noise = ", noise);
  std::vector<double> t = Tensor::rand({n}, DType::Float64, &gen).to_vector<double>();
  std::vector<double> e = Tensor::randn({n, 2}, DType::Float64, &gen).to_vector<double>();
  Moons m;
  for (int64_t i = 0; i < n; ++i) {
    const double a = std::numbers::pi * t[i];
    const int c = static_cast<int>(i % 2);
    m.x.push_back((c == 0 ? std::cos(a) : 1 - std::cos(a)) + noise * e[2 * i]);
    m.y.push_back((c == 0 ? std::sin(a) : 0.5 - std::sin(a)) + noise * e[2 * i + 1]);
    m.label.push_back(c);
  }
  return m;
}

}  // namespace mmgrad::lesson
