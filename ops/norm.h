// Normalisations: L2 normalize, cosine similarity, layer norm, batch norm.
#pragma once

#include "tensor/tensor.h"

namespace mmgrad {

// x / max(||x||_2, eps) along dim (PyTorch's F.normalize with p = 2).
Tensor normalize(const Tensor& x, int64_t dim = 1, double eps = 1e-12);
// <a, b> / max(||a|| ||b||, eps) along dim, broadcasting a and b.
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

}  // namespace mmgrad
