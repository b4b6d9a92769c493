// Task 1b.1: softplus's backward                              (lesson 01b_write_your_own_op)
//
// Lesson 01b adds an op to mmgrad from outside the library: softplus, a smooth relu,
//
//     y = softplus(x) = log(1 + exp(beta x)) / beta
//
// with PyTorch's threshold: where beta x > threshold, y = x exactly (the two agree to 2e-9 there
// and the formula's exp would overflow for large x).
//
// Its backward Node (SoftplusBackward in lessons/01b_write_your_own_op/softplus.cpp) calls a
// plain function for the math, and this task is that function. Given x (saved by the forward)
// and grad_out = dL/dy (x's shape), return dL/dx:
//
//     dy/dx = exp(beta x) / (1 + exp(beta x)) = sigmoid(beta x)      (the beta's cancel)
//     dL/dx = grad_out * dy/dx, entry by entry
//
// and where beta x > threshold, where y = x, dy/dx = 1: dL/dx = grad_out.
//
// Inputs: x and grad_out, floating tensors of one shape; beta > 0; threshold. Return dL/dx, same
// shape and dtype. Useful: sigmoid(t), t * beta, comparisons (t > threshold gives a bool tensor),
// where(cond, a, b). The checker plugs YOUR function into the lesson's op as its backward
// (lesson::softplus_with_backward) and runs mmgrad's gradcheck on it, as the lesson does.
// Do not call lesson::softplus_backward: it is the answer.
//
// Check your work: make exercise TASK=1b.1
#include "tasks.h"

namespace mmgrad::exercises {

Tensor softplus_backward(const Tensor& x, const Tensor& grad_out, double beta, double threshold) {
  (void)x, (void)grad_out, (void)beta, (void)threshold;
  not_done("1b.1", "softplus_backward");
}

}  // namespace mmgrad::exercises
