// Sorting helpers (no gradient): sort and topk along a dimension.
#pragma once

#include "mmgrad/tensor/tensor.h"

namespace mmgrad {

struct SortResult {
  Tensor values;
  Tensor indices;  // int64 positions in the input along dim
};

// Stable: equal values keep their input order. NaN sorts above +inf (PyTorch's order).
SortResult sort(const Tensor& x, int64_t dim = -1, bool descending = false);
// The k largest (or smallest) entries along dim, sorted (NaN counts as the largest).
SortResult topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true);

}  // namespace mmgrad
