// Task 7.1: layer norm's backward                                        (lesson 07_vit_clip)
//
// Every transformer layer of lesson 07's ViT normalises each token's vector with nn::LayerNorm
// (twice per layer, pre-norm, plus once at the end). Forward, over the LAST dimension (D values)
// of x, separately for every row (every token of every image):
//
//     mean   = (1/D) sum_i x_i
//     var    = (1/D) sum_i (x_i - mean)^2        (biased: 1/D, not 1/(D-1))
//     rstd   = 1 / sqrt(var + eps)
//     xhat_i = (x_i - mean) * rstd
//     y_i    = gamma_i * xhat_i + beta_i
//
// Given grad_out = dL/dy (x's shape), return dL/dx (x's shape). Only dL/dx: gamma's and beta's
// gradients are not part of this task, and beta does not change dL/dx at all (it only shifts y).
//
// The mean and the variance depend on every x_j of the row, so every output y_i depends on every
// x_j. Write g_i = grad_out_i * gamma_i (the gradient arriving at xhat); the chain rule through
// xhat_i = (x_i - mean) * rstd gives, per row,
//
//     dL/dx_j = rstd * ( g_j - mean_i(g_i) - xhat_j * mean_i(g_i * xhat_i) )
//
//   - mean_i(g_i): the path through the mean (moving every x_j moves the mean by 1/D);
//   - xhat_j * mean_i(g_i xhat_i): the path through the variance
//     (d var / d x_j = 2 (x_j - mean) / D).
// Deriving it yourself on paper is the best part of the task; the two means are taken along the
// last dimension, once per row, and broadcast back.
//
// Inputs: grad_out and x of shape [..., D] (any number of leading dimensions, float32 or float64),
// gamma of shape [D] (same dtype), eps > 0. Return dL/dx, x's shape and dtype.
// Useful: mean(t, {-1}, /*keepdim=*/true) (a [..., 1] tensor that broadcasts against x), var(t,
// {-1}, /*correction=*/0, true) for the biased variance, sqrt, and tensor arithmetic.
// Do not call layer_norm or autograd: that is the library's own answer (ops/norm.cpp, the
// LayerNormBackward node, and reference::layer_norm_backward at its end); read them afterwards.
//
// Check your work: make exercise TASK=7.1
#include "tasks.h"

namespace mmgrad::exercises {

Tensor layer_norm_backward(const Tensor& grad_out, const Tensor& x, const Tensor& gamma,
                           double eps) {
  (void)grad_out, (void)x, (void)gamma, (void)eps;
  not_done("7.1", "layer_norm_backward");
}

}  // namespace mmgrad::exercises
