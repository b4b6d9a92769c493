// Checker for task 1.3: sum_to against the gradient autograd gives a broadcast input.
#include "checks.h"

namespace mmgrad::exercises {

void check_sum_to(Checker& c, decltype(&sum_to) f) {
  Generator gen(13);
  struct Case {
    Shape big, small;
    std::string hint;
  };
  const std::vector<Case> cases = {
      {{2, 3}, {2, 3}, "when the shapes are equal nothing was broadcast: return grad"},
      {{2, 3}, {3}, "a missing leading dimension was stretched: sum over it"},
      {{2, 3}, {2, 1}, "a size-1 dimension was stretched: sum over it and keep it (size 1)"},
      {{4, 2, 3}, {2, 1}, "sum the extra leading dimensions away AND the stretched size-1 ones"},
      {{2, 5, 3}, {5, 1}, "sum dim 0 away, and sum dim 2 keeping it"},
      {{2, 3}, {}, "a 0-d target (a scalar that was broadcast): sum everything into shape []"},
  };
  for (const Case& k : cases) {
    // y = small + zeros(big) broadcasts `small` to `big`; backward with grad g gives the answer
    Tensor s = Tensor::randn(k.small, DType::Float64, &gen).requires_grad_();
    Tensor g = Tensor::randn(k.big, DType::Float64, &gen);
    (s + Tensor::zeros(k.big, DType::Float64)).backward(g);
    c.close(cat_str("sum_to(grad of shape ", k.big, ", ", k.small, ")"), f(g, k.small), s.grad(),
            1e-9, 1e-9, k.hint);
  }
}

namespace {
// Sums only the leading dimensions: right for [2, 3] -> [3], wrong for size-1 dimensions.
Tensor leading_only(const Tensor& grad, const Shape& shape) {
  Tensor g = grad;
  while (g.dim() > shape.size()) g = sum(g, {0});
  return g;
}
// Sums the stretched dimensions without keeping them: [2, 3] -> [2] instead of [2, 1].
Tensor drops_kept_dims(const Tensor& grad, const Shape& shape) {
  Tensor g = leading_only(grad, shape);
  Shape dims;
  for (int d = 0; d < shape.size(); ++d)
    if (shape[d] == 1 && g.shape()[d] != 1) dims.push_back(d);
  return dims.empty() ? g : sum(g, dims, false);
}
}  // namespace

std::vector<Mutant> mutants_sum_to() {
  return {
      {"sums only the leading dimensions", [](Checker& c) { check_sum_to(c, &leading_only); }},
      {"drops the size-1 dimensions it sums over",
       [](Checker& c) { check_sum_to(c, &drops_kept_dims); }},
  };
}

}  // namespace mmgrad::exercises
