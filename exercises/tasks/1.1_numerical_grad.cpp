// Task 1.1: a finite-difference gradient                          (lesson 01_autograd_tour)
//
// The gradient check of lesson 01 trusts backward() only because it agrees with a gradient
// computed WITHOUT backward: nudge one input entry, see how much the output moves.
//
// Given a scalar function f of a tensor x (float64, any shape) and a step eps, return a tensor g
// of x's shape (float64) with, for every entry j of x,
//
//     g_j = (f(x + eps e_j) - f(x - eps e_j)) / (2 eps)
//
// where e_j is the tensor of x's shape that is 1 at entry j and 0 elsewhere. This central
// difference has an error of order eps^2; the one-sided (f(x + eps e_j) - f(x)) / eps is only
// order eps, too coarse for a gradient check.
//
// Useful: x.to_vector<double>() gives the entries (row-major) as a std::vector<double>;
// Tensor::from_vector(values, x.shape(), DType::Float64) makes a tensor from them. Do not change
// x itself.
//
// Check your work: make exercise TASK=1.1
#include "tasks.h"

namespace mmgrad::exercises {

Tensor numerical_grad(const std::function<double(const Tensor&)>& f, const Tensor& x, double eps) {
  (void)f, (void)x, (void)eps;
  not_done("1.1", "numerical_grad");
}

}  // namespace mmgrad::exercises
