// MLP: Linear layers with an activation (and optional dropout) between them.
#pragma once

#include <vector>

#include "mmgrad/nn/activation.h"
#include "mmgrad/nn/container.h"

namespace mmgrad::nn {

// dims = {in, hidden_1, ..., out}: Linear(in, hidden_1), activation, [Dropout(p)], ...,
// Linear(hidden_k, out). No activation after the last layer (it produces logits or
// embeddings). Children are numbered like a Sequential: "0" Linear, "1" ReLU, "2" Linear, ...
class MLP : public Sequential {
 public:
  explicit MLP(const std::vector<int64_t>& dims, Activation activation = Activation::ReLU,
               double dropout = 0.0, bool bias = true);
  std::string name() const override { return "MLP"; }
};

}  // namespace mmgrad::nn
