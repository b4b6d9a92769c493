// Normalisations: L2 normalize, cosine similarity, layer norm, batch norm, group norm.
#pragma once

#include <cstdint>
#include <vector>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad {

// x / max(||x||_2, eps) along dim (PyTorch's F.normalize with p = 2).
Tensor normalize(const Tensor& x, int64_t dim = 1, double eps = 1e-12);
// sum(a / max(||a||, eps) * b / max(||b||, eps)) along dim, broadcasting a and b: PyTorch's
// formula, forward and backward (the clamp does not stop the gradient; see ops/norm.cpp).
Tensor cosine_similarity(const Tensor& a, const Tensor& b, int64_t dim = 1, double eps = 1e-8);
// Normalises over the trailing dims given by normalized_shape, then scales and shifts by the
// optional weight and bias (of that shape).
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);
// Batch norm over [N, C, ...] per channel C. In training it uses the batch statistics and
// updates running_mean / running_var in place (if defined) with momentum (unbiased variance);
// in eval it uses the running statistics.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum = 0.1,
                  double eps = 1e-5);
// Group norm over [N, C, ...]: the C channels are split into num_groups groups of C / num_groups
// consecutive channels, and each (sample, group) is normalised over its channels and spatial
// positions together (biased variance); then weight [C] and bias [C] (optional) scale and shift
// each channel. num_groups = 1 is layer norm over [C, ...] with per-channel affine; num_groups
// = C is instance norm. Unlike batch norm it uses no batch statistics, so it behaves the same in
// training and eval and with a batch of one (diffusion U-Nets use it for that reason).
Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);

// ---- the definition of layer norm, in plain float64 loops
// ----------------------------------------- What the kernels compute, written to be read rather
// than to be fast (defined at the end of ops/norm.cpp; tests/test_reference_kernels.cpp checks
// layer_norm against it). Rows of D values, row-major [N, D]; w and b of D values, or empty for
// none.
namespace reference {

struct LayerNormGrads {
  std::vector<double> dx, dw, db;  // [N, D], [D], [D]
};
// y = (x - mean) / sqrt(var + eps) * w + b per row (biased variance).
std::vector<double> layer_norm(const std::vector<double>& x, int64_t N, int64_t D,
                               const std::vector<double>& w, const std::vector<double>& b,
                               double eps);
// The gradients of sum(dy * y) with respect to x, w and b.
LayerNormGrads layer_norm_backward(const std::vector<double>& x, const std::vector<double>& dy,
                                   int64_t N, int64_t D, const std::vector<double>& w, double eps);

}  // namespace reference

}  // namespace mmgrad
