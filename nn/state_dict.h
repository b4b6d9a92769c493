// StateDict: the named tensors that describe a model (or an optimizer): what checkpoints store.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad::nn {

// Ordered (name, tensor) pairs, e.g. {"encoder.fc1.weight", W}, {"encoder.fc1.bias", b}.
using StateDict = std::vector<std::pair<std::string, Tensor>>;

}  // namespace mmgrad::nn
