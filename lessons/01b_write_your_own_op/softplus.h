// softplus, written OUTSIDE the library the way you would add your own op to mmgrad: a forward
// made of existing ops, run without recording, and a backward Node of our own that autograd
// calls like any built-in op's (autograd/node.h).
//
//   softplus(x)     = log(1 + exp(beta x)) / beta      a smooth relu: ~0 far below 0, ~x far above
//   d softplus / dx = sigmoid(beta x)
// As PyTorch's F.softplus(x, beta, threshold): where beta x > threshold the result is x itself
// (log(1 + e^z) and z agree to 2e-9 there), and its gradient is 1.
#pragma once

#include "mmgrad/tensor/tensor.h"

namespace mmgrad::lesson {

// The backward's math, as a plain function the Node calls: given x and dL/dy (grad_out, x's
// shape), returns dL/dx = grad_out * sigmoid(beta x), and grad_out itself where beta x >
// threshold. (The exercise "1b.1 softplus backward" asks you to write this function.)
Tensor softplus_backward(const Tensor& x, const Tensor& grad_out, double beta = 1.0,
                         double threshold = 20.0);

// softplus(x) with its own backward Node (SoftplusBackward, in softplus.cpp). x: any floating
// tensor, on any device; beta > 0.
Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0);

// The same op with another function as its backward: the lesson passes deliberately wrong ones
// to see gradcheck catch them.
using SoftplusBackwardFn = Tensor (*)(const Tensor& x, const Tensor& grad_out, double beta,
                                      double threshold);
Tensor softplus_with_backward(const Tensor& x, SoftplusBackwardFn backward, double beta = 1.0,
                              double threshold = 20.0);

}  // namespace mmgrad::lesson
