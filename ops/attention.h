// Scaled dot-product attention: softmax(q k^T * scale + mask) v.
#pragma once

#include <optional>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad {

struct AttentionOptions {
  // Bool (true = may attend, as in PyTorch) or floating (added to the scores), broadcastable
  // to [..., L, S].
  Tensor attn_mask;
  bool is_causal = false;       // query i attends to keys j <= i
  double dropout_p = 0.0;       // on the attention weights (only when > 0)
  std::optional<double> scale;  // default 1 / sqrt(head_dim)
  Generator* generator = nullptr;
};

// q [..., L, E], k [..., S, E], v [..., S, Ev] -> [..., L, Ev]; batch dims broadcast.
// attn_mask and is_causal may be combined (both apply). A query row that may attend to no key
// gets all-zero weights and a zero output row (PyTorch gives NaN), with zero gradient.
// dropout_p must be in [0, 1); pass 0 in evaluation (there is no training flag here).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& options = {});

// The same, also returning the attention weights [..., L, S] (for figures and tests): the
// softmax probabilities before dropout (each row sums to 1, or is all zero when fully masked).
struct AttentionResult {
  Tensor output;
  Tensor weights;
};
AttentionResult scaled_dot_product_attention_with_weights(const Tensor& q, const Tensor& k,
                                                          const Tensor& v,
                                                          const AttentionOptions& options = {});

}  // namespace mmgrad
