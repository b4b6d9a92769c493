// Embedding: a lookup table of num_embeddings vectors of size embedding_dim.
#pragma once

#include "mmgrad/nn/module.h"

namespace mmgrad::nn {

class Embedding : public Module {
 public:
  // weight [num, dim] ~ N(0, 1) (PyTorch's default); the row padding_idx (if >= 0) is zero and
  // receives no gradient, so a PAD token stays the zero vector.
  Embedding(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx = -1);
  // int64 indices of any shape, each in [0, num_embeddings) -> [..., embedding_dim].
  Tensor forward(const Tensor& indices) override;
  std::string name() const override { return "Embedding"; }
  std::string extra_repr() const override;
  void reset_parameters();

  int64_t num_embeddings, embedding_dim, padding_idx;
  Tensor weight;
};

}  // namespace mmgrad::nn
