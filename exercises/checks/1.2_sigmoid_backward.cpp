// Checker for task 1.2: the learner's backward against mmgrad's autograd through sigmoid.
#include "checks.h"

namespace mmgrad::exercises {

void check_sigmoid_backward(Checker& c, decltype(&sigmoid_backward) backward) {
  Generator gen(12);
  struct Case {
    std::string what;
    Shape shape;
    bool ones;  // grad_out = 1 everywhere: checks the local derivative alone
    std::string hint;
  };
  const std::vector<Case> cases = {
      {"x of shape [5], grad_out = 1", {5}, true, "dy/dx = y (1 - y): write it with y alone"},
      {"x of shape [3, 4], random grad_out",
       {3, 4},
       false,
       "the chain rule: dL/dx = dL/dy * dy/dx, entry by entry: multiply by grad_out"},
  };
  for (const Case& k : cases) {
    Tensor x = Tensor::randn(k.shape, DType::Float64, &gen) * 2.0;
    Tensor g = k.ones ? Tensor::ones(k.shape, DType::Float64)
                      : Tensor::randn(k.shape, DType::Float64, &gen);
    Tensor leaf = x.clone().requires_grad_();
    sigmoid(leaf).backward(g);
    Tensor y = sigmoid(x);
    c.close(k.what, backward(g, y), leaf.grad(), 1e-6, 1e-9, k.hint);
  }
  // float32 in, float32 out: a backward keeps the dtype of its inputs
  Tensor x = Tensor::randn({4}, DType::Float32, &gen);
  Tensor got = backward(Tensor::ones({4}, DType::Float32), sigmoid(x));
  c.expect(got.dtype() == DType::Float32, "float32 inputs give a float32 gradient",
           cat_str("the result is ", dtype_name(got.dtype()),
                   ": build it from grad_out and y with tensor arithmetic"));
}

namespace {
Tensor forgets_one_minus_y(const Tensor& g, const Tensor& y) { return g * y; }
Tensor forgets_grad_out(const Tensor& g, const Tensor& y) {
  (void)g;
  return y * (1.0 - y);
}
}  // namespace

std::vector<Mutant> mutants_sigmoid_backward() {
  return {
      {"forgets the factor (1 - y)",
       [](Checker& c) { check_sigmoid_backward(c, &forgets_one_minus_y); }},
      {"forgets to multiply by grad_out",
       [](Checker& c) { check_sigmoid_backward(c, &forgets_grad_out); }},
  };
}

}  // namespace mmgrad::exercises
