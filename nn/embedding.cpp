#include "mmgrad/nn/embedding.h"

#include "mmgrad/autograd/grad_mode.h"
#include "mmgrad/nn/init.h"
#include "mmgrad/ops/index.h"

namespace mmgrad::nn {

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx)
    : num_embeddings(num_embeddings), embedding_dim(embedding_dim), padding_idx(padding_idx) {
  MMGRAD_CHECK(num_embeddings > 0 && embedding_dim > 0,
               "Embedding: num_embeddings and embedding_dim must be positive, got ", num_embeddings,
               " and ", embedding_dim);
  MMGRAD_CHECK(padding_idx >= -1 && padding_idx < num_embeddings, "Embedding: padding_idx ",
               padding_idx, " must be -1 (none) or in [0, ", num_embeddings, ")");
  weight = register_parameter("weight", Tensor::empty({num_embeddings, embedding_dim}));
  reset_parameters();
}

void Embedding::reset_parameters() {
  init::normal_(weight);
  if (padding_idx >= 0) {
    NoGradGuard no_grad;
    weight.select(0, padding_idx).zero_();
  }
}

Tensor Embedding::forward(const Tensor& indices) {
  MMGRAD_CHECK(indices.defined(), label(), ": indices are an undefined tensor");
  MMGRAD_CHECK(indices.dtype() == kInt64, label(), ": indices are ", describe(indices),
               "; expected int64 token ids");
  MMGRAD_CHECK(indices.device() == weight.device(), label(), ": indices are on ",
               device_name(indices.device()), " but the weight is on ",
               device_name(weight.device()));
  return embedding(weight, indices, padding_idx);
}

std::string Embedding::extra_repr() const {
  std::string s = cat_str(num_embeddings, ", ", embedding_dim);
  if (padding_idx >= 0) s += cat_str(", padding_idx=", padding_idx);
  return s;
}

}  // namespace mmgrad::nn
