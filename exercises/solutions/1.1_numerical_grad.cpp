// Reference for task 1.1: central differences, entry by entry (what autograd/gradcheck.cpp
// does for every op in tests/op_list.cpp).
#include "tasks.h"

namespace mmgrad::exercises::solution {

Tensor numerical_grad(const std::function<double(const Tensor&)>& f, const Tensor& x, double eps) {
  std::vector<double> v = x.to_vector<double>();
  std::vector<double> g(v.size());
  for (size_t j = 0; j < v.size(); ++j) {
    const double keep = v[j];
    v[j] = keep + eps;
    const double up = f(Tensor::from_vector(v, x.shape(), DType::Float64));
    v[j] = keep - eps;
    const double down = f(Tensor::from_vector(v, x.shape(), DType::Float64));
    v[j] = keep;
    g[j] = (up - down) / (2 * eps);
  }
  return Tensor::from_vector(g, x.shape(), DType::Float64);
}

}  // namespace mmgrad::exercises::solution
