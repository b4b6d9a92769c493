// Matrix multiplication with PyTorch's rules: 1-D x 1-D is a dot product, 2-D x 2-D a matrix
// product, and higher ranks are batches of matrices whose batch dims broadcast.
#pragma once

#include "mmgrad/tensor/tensor.h"

namespace mmgrad {

Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace mmgrad
