// Task 1.2: sigmoid's backward                                     (lesson 01_autograd_tour)
//
// Forward: y = sigmoid(x) = 1 / (1 + exp(-x)), entry by entry.
// Backward: the op receives grad_out = dL/dy (y's shape) and returns dL/dx (x's shape, the same).
// The derivative of the sigmoid can be written with its own output:
//
//     dy/dx = y (1 - y)
//
// so the forward pass saves y, and the backward needs no exp at all. The chain rule multiplies
// the local derivative by the gradient arriving from above, entry by entry.
//
// Inputs: grad_out and y, floating tensors of one shape. Return dL/dx, same shape and dtype.
// Use mmgrad's tensor arithmetic (a * b, 1.0 - y, ...). mmgrad's own version is the "sigmoid" row
// of ops/elementwise.cpp: read it after you are done.
//
// Check your work: make exercise TASK=1.2
#include "tasks.h"

namespace mmgrad::exercises {

Tensor sigmoid_backward(const Tensor& grad_out, const Tensor& y) {
  (void)grad_out, (void)y;
  not_done("1.2", "sigmoid_backward");
}

}  // namespace mmgrad::exercises
