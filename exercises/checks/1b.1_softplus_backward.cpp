// Checker for task 1b.1: the learner's softplus backward, compared entry by entry with the
// lesson's, then plugged into the lesson's op as its backward and gradchecked.
#include "01b_write_your_own_op/softplus.h"
#include "checks.h"
#include "mmgrad/autograd/gradcheck.h"

namespace mmgrad::exercises {

void check_softplus_backward(Checker& c, decltype(&softplus_backward) backward) {
  Generator gen(111);
  struct Case {
    std::string what;
    double beta, threshold;
    bool ones;
    std::string hint;
  };
  const std::vector<Case> cases = {
      {"beta 1, threshold 20, grad_out = 1", 1.0, 20.0, true,
       "dy/dx = sigmoid(beta x): ~0 far below 0, 1/2 at 0, ~1 far above"},
      {"beta 1, threshold 20, random grad_out", 1.0, 20.0, false,
       "the chain rule: multiply dy/dx by grad_out, entry by entry"},
      {"beta 2, threshold 20, random grad_out", 2.0, 20.0, false,
       "the derivative of log(1 + exp(beta x)) / beta is sigmoid(beta x): beta stays inside"},
      {"beta 1, threshold 1 (entries with x > 1 take the linear branch)", 1.0, 1.0, false,
       "where beta x > threshold the forward is y = x, so there dL/dx = grad_out exactly"},
  };
  for (const Case& k : cases) {
    Tensor x = Tensor::randn({3, 4}, DType::Float64, &gen) * 3.0;
    Tensor g =
        k.ones ? Tensor::ones({3, 4}, DType::Float64) : Tensor::randn({3, 4}, DType::Float64, &gen);
    c.close(k.what, backward(x, g, k.beta, k.threshold),
            lesson::softplus_backward(x, g, k.beta, k.threshold), 1e-9, 1e-12, k.hint);
  }
  // Your function as the backward of the lesson's op, against central differences.
  for (double beta : {1.0, 0.5}) {
    Tensor x = (Tensor::randn({2, 5}, DType::Float64, &gen) * 4.0).requires_grad_();
    GradcheckResult r = gradcheck(
        [&](const std::vector<Tensor>& in) {
          return lesson::softplus_with_backward(in[0], backward, beta, 20.0);
        },
        {x});
    c.expect(r.ok, cat_str("gradcheck of softplus(x, beta ", beta, ") with your backward"),
             r.report);
  }
  Tensor x32 = Tensor::randn({4}, DType::Float32, &gen);
  Tensor got = backward(x32, Tensor::ones({4}, DType::Float32), 1.0, 20.0);
  c.expect(got.defined() && got.dtype() == DType::Float32, "float32 inputs give a float32 gradient",
           "build the result from x and grad_out with tensor ops, keeping their dtype");
}

namespace {
Tensor sign_slip(const Tensor& x, const Tensor& g, double beta, double threshold) {
  return where(x * beta > threshold, g, g * sigmoid(x * -beta));
}
Tensor forgets_grad_out(const Tensor& x, const Tensor& g, double beta, double threshold) {
  return where(x * beta > threshold, g, sigmoid(x * beta));
}
Tensor forgets_beta(const Tensor& x, const Tensor& g, double beta, double threshold) {
  return where(x * beta > threshold, g, g * sigmoid(x));
}
Tensor ignores_threshold(const Tensor& x, const Tensor& g, double beta, double) {
  return g * sigmoid(x * beta);
}
}  // namespace

std::vector<Mutant> mutants_softplus_backward() {
  return {
      {"sigmoid(-beta x)", [](Checker& c) { check_softplus_backward(c, &sign_slip); }},
      {"forgets grad_out", [](Checker& c) { check_softplus_backward(c, &forgets_grad_out); }},
      {"sigmoid(x) without beta", [](Checker& c) { check_softplus_backward(c, &forgets_beta); }},
      {"ignores the threshold", [](Checker& c) { check_softplus_backward(c, &ignores_threshold); }},
  };
}

}  // namespace mmgrad::exercises
