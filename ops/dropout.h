// Dropout: in training, zero each element with probability p and scale the rest by 1/(1-p);
// in eval, the identity.
#pragma once

#include "mmgrad/tensor/tensor.h"

namespace mmgrad {

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);

}  // namespace mmgrad
