// Task 2.1: softmax's backward                                     (lesson 02_contrastive_loss)
//
// Forward: along dimension `dim`, y_i = exp(x_i) / sum_k exp(x_k). Every output depends on
// every input of its row (the normaliser), so the Jacobian is not diagonal:
//
//     dy_i/dx_j = y_i (delta_ij - y_j)
//
// Given grad_out = dL/dy (y's shape), the chain rule sums over the outputs i:
//
//     dL/dx_j = sum_i grad_out_i * y_i (delta_ij - y_j) = y_j (grad_out_j - sum_i grad_out_i y_i)
//
// The sum runs along `dim` only, separately for every other index (every row of a [N, C] tensor
// when dim = 1). You never need the C x C Jacobian: one reduction and two products.
//
// Inputs: grad_out and y = softmax(x, dim), floating tensors of one shape; dim may be negative
// (-1 = the last dimension). Return dL/dx, same shape.
// Useful: sum(t, {dim}, /*keepdim=*/true) keeps the summed dimension with size 1, so the result
// broadcasts against y.
//
// Check your work: make exercise TASK=2.1
#include "tasks.h"

namespace mmgrad::exercises {

Tensor softmax_backward(const Tensor& grad_out, const Tensor& y, int64_t dim) {
  (void)grad_out, (void)y, (void)dim;
  not_done("2.1", "softmax_backward");
}

}  // namespace mmgrad::exercises
