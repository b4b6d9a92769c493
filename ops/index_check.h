// Validation of int64 index tensors shared by the indexing ops and the losses (internal).
#pragma once

#include <cstdint>
#include <optional>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad {

// Checks that every value of the int64 tensor `index` lies in [0, bound), except values equal to
// `except` (cross_entropy's ignore_index). Reads the values on the host: in place for a
// contiguous CPU tensor, through one copy otherwise (CUDA). A bad value throws mmgrad::Error
// naming `op`, the argument `what`, the value and its position. Returns how many values are not
// equal to `except` (all of them when there is no exception).
int64_t check_index_values(const char* op, const Tensor& index, int64_t bound, const char* what,
                           std::optional<int64_t> except = std::nullopt);

}  // namespace mmgrad
