// softmax and log_softmax along a dimension (fused, numerically stable kernels).
#pragma once

#include "tensor/tensor.h"

namespace mmgrad {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

}  // namespace mmgrad
