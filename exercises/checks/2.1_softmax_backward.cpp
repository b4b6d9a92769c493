// Checker for task 2.1: the learner's softmax backward against autograd through softmax.
#include "checks.h"

namespace mmgrad::exercises {

void check_softmax_backward(Checker& c, decltype(&softmax_backward) backward) {
  Generator gen(21);
  struct Case {
    Shape shape;
    int64_t dim;
    std::string hint;
  };
  const std::vector<Case> cases = {
      {{1, 4}, 1, "dL/dx_j = y_j (grad_out_j - sum_i grad_out_i y_i): the sum couples the row"},
      {{3, 5}, -1, "dim = -1 is the last dimension; the sum runs along it, once per row"},
      {{4, 3}, 0, "dim = 0: the sums run down each column, not along the rows"},
      {{2, 3, 4}, 1, "a 3-d tensor: sum along dim 1 for every (i, k), keeping the dimension"},
  };
  for (const Case& k : cases) {
    Tensor x = Tensor::randn(k.shape, DType::Float64, &gen).requires_grad_();
    Tensor g = Tensor::randn(k.shape, DType::Float64, &gen);
    Tensor y = softmax(x, k.dim);
    y.backward(g);
    c.close(cat_str("softmax over dim ", k.dim, " of shape ", k.shape, ", random grad_out"),
            backward(g, y.detach(), k.dim), x.grad(), 1e-6, 1e-9, k.hint);
  }
}

namespace {
// Treats the Jacobian as diagonal: y_j (1 - y_j) g_j, the sigmoid-like mistake.
Tensor diagonal_only(const Tensor& g, const Tensor& y, int64_t) { return g * y * (1.0 - y); }
// Forgets that the row sum must be kept as a size-1 dimension: sums over the whole tensor.
Tensor sums_everything(const Tensor& g, const Tensor& y, int64_t) { return y * (g - sum(g * y)); }
// Always reduces the last dimension, whatever dim says.
Tensor ignores_dim(const Tensor& g, const Tensor& y, int64_t) {
  return y * (g - sum(g * y, {-1}, true));
}
}  // namespace

std::vector<Mutant> mutants_softmax_backward() {
  return {
      {"treats the Jacobian as diagonal",
       [](Checker& c) { check_softmax_backward(c, &diagonal_only); }},
      {"sums over the whole tensor",
       [](Checker& c) { check_softmax_backward(c, &sums_everything); }},
      {"ignores dim", [](Checker& c) { check_softmax_backward(c, &ignores_dim); }},
  };
}

}  // namespace mmgrad::exercises
