// Loss functions on tensors (the nn library builds its loss modules on these).
#pragma once

#include <cstdint>
#include <vector>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad {

enum class Reduction { None, Mean, Sum };

struct CrossEntropyOptions {
  int64_t ignore_index = -100;   // targets equal to this contribute nothing (and are not counted)
  double label_smoothing = 0.0;  // target = (1 - eps) one_hot + eps / C
  Reduction reduction = Reduction::Mean;
};

// logits [N, C] (or [C] with a 0-d target, or [N, C, d1, ...] with targets [N, d1, ...]),
// int64 targets in [0, C) or ignore_index (anything else throws). Ignored targets get loss 0
// and gradient 0. Mean reduction divides by the number of non-ignored targets (PyTorch's rule);
// when there are none it returns NaN (0 / 0), as PyTorch does, with a zero gradient.
Tensor cross_entropy(const Tensor& logits, const Tensor& target,
                     const CrossEntropyOptions& options = {});
// mean((input - target)^2) (or sum / none); shapes must match exactly. Of empty tensors: NaN
// (mean), 0 (sum) or an empty tensor (none), as in PyTorch.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

// ---- the definition of softmax cross-entropy, in plain float64 loops
// ----------------------------- Logits [N, C] row-major, class indices [N] (defined at the end of
// ops/loss.cpp; tests/test_reference_kernels.cpp checks cross_entropy against it).
namespace reference {

// The loss of every row (0 for a row whose target is ignore_index), before any reduction.
std::vector<double> cross_entropy(const std::vector<double>& logits,
                                  const std::vector<int64_t>& target, int64_t N, int64_t C,
                                  int64_t ignore_index, double label_smoothing);
// d/d logits of sum_n g[n] * loss[n].
std::vector<double> cross_entropy_backward(const std::vector<double>& logits,
                                           const std::vector<int64_t>& target,
                                           const std::vector<double>& g, int64_t N, int64_t C,
                                           int64_t ignore_index, double label_smoothing);

}  // namespace reference

}  // namespace mmgrad
