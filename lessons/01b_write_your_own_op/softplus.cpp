// A new differentiable op in three pieces: the forward, a Node that saves what the backward
// needs, and the backward's math. Nothing in the library changes; everything used here is in
// the public headers (mmgrad.h).
#include "01b_write_your_own_op/softplus.h"

#include <cmath>

#include "mmgrad/mmgrad.h"

namespace mmgrad::lesson {

Tensor softplus_backward(const Tensor& x, const Tensor& grad_out, double beta, double threshold) {
  // Chain rule: dL/dx = dL/dy * dy/dx, and dy/dx = e^(beta x) / (1 + e^(beta x)) * beta / beta
  // = sigmoid(beta x) (the 1/beta of the forward cancels the inner derivative beta). Where the
  // forward returned x itself, dy/dx = 1. Written with differentiable ops on whole tensors, so
  // it runs on every device and dtype.
  Tensor z = x * beta;
  return where(z > threshold, grad_out, grad_out * sigmoid(z));
}

namespace {

// The Node: one per softplus call that needs a gradient. It saves x (SavedTensor registers it
// with the Node, records its version, and is freed by the engine after backward) and the two
// attributes, and hands the math to a function (softplus_backward unless told otherwise).
struct SoftplusBackward : Node {
  SavedTensor x{this};
  double beta = 1.0, threshold = 20.0;
  SoftplusBackwardFn rule = softplus_backward;
  const char* name() const override { return "softplus"; }
  // dL/d(output) in, dL/d(each input) out: one input, one gradient.
  std::vector<Tensor> backward(const Tensor& grad_output) override {
    return {rule(x.get(), grad_output, beta, threshold)};
  }
};

// log(1 + u) to full precision for small u (what C's log1p computes; mmgrad has no log1p op).
// 1 + u rounds away the digits of u below 1e-16, so log(1 + u) alone is only accurate to about
// 1e-16 / u relative (1.5e-14 at u = 0.0067, and 0 instead of u below 1e-16). With w = 1 + u
// rounded, log(w) * u / (w - 1) divides that rounding back out (Goldberg's trick, "What every
// computer scientist should know about floating-point arithmetic", 1991); where w == 1 the answer
// is u itself.
Tensor log1p_accurate(const Tensor& u) {
  Tensor w = 1.0 + u;
  return where(eq(w, 1.0), u, log(w) * u / (w - 1.0));  // (the 0/0 where w == 1 is not selected)
}

// The forward in a numerically stable form. log(1 + e^z) overflows for z > 709 in float64 (and
// z > 88 in float32) if computed as written; instead
//   log(1 + e^z) = max(z, 0) + log1p(e^-|z|),      e^-|z| in (0, 1]: nothing overflows.
Tensor softplus_forward(const Tensor& x, double beta, double threshold) {
  Tensor z = x * beta;
  Tensor stable = (relu(z) + log1p_accurate(exp(-abs(z)))) * (1.0 / beta);
  return where(z > threshold, x, stable);
}

}  // namespace

Tensor softplus_with_backward(const Tensor& x, SoftplusBackwardFn backward, double beta,
                              double threshold) {
  MMGRAD_CHECK(x.defined() && x.is_floating_point(),
               "softplus: expects a floating-point tensor, got ",
               x.defined() ? describe(x) : std::string("an undefined tensor"));
  MMGRAD_CHECK(beta > 0 && std::isfinite(beta), "softplus: expects beta > 0, got ", beta);
  MMGRAD_CHECK(backward != nullptr, "softplus: the backward function is null");
  // 1. The forward, with recording off: the ops inside are an implementation detail, so they
  //    must not become graph nodes of their own (our Node replaces them all).
  Tensor y;
  {
    NoGradGuard no_grad;
    y = softplus_forward(x, beta, threshold);
  }
  // 2. The Node: make_node returns null when no gradient is needed (grad mode off, or x does
  //    not require grad); otherwise it links y -> node -> x's producer and marks y as needing a
  //    gradient. We then save what backward will read.
  if (auto node = make_node<SoftplusBackward>(y, {x})) {
    node->x = x;
    node->beta = beta;
    node->threshold = threshold;
    node->rule = backward;
  }
  return y;
}

Tensor softplus(const Tensor& x, double beta, double threshold) {
  return softplus_with_backward(x, softplus_backward, beta, threshold);
}

}  // namespace mmgrad::lesson
