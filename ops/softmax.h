// softmax and log_softmax along a dimension (fused, numerically stable kernels).
#pragma once

#include <cstdint>
#include <vector>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// ---- the definition of softmax and log_softmax, in plain float64 loops
// --------------------------- Over each row of a row-major [R, D] buffer (defined at the end of
// ops/softmax.cpp; tests/test_reference_kernels.cpp checks softmax and log_softmax against it).
namespace reference {

// y = softmax(x) (log = false) or log_softmax(x) (log = true) of every row.
std::vector<double> softmax(const std::vector<double>& x, int64_t R, int64_t D, bool log);
// dx from x and the gradient dy of the output, through the Jacobian of each row.
std::vector<double> softmax_backward(const std::vector<double>& x, const std::vector<double>& dy,
                                     int64_t R, int64_t D, bool log);

}  // namespace reference

}  // namespace mmgrad
