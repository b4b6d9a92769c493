// MultiheadAttention (PyTorch's nn.MultiheadAttention): project queries, keys and values,
// split them into heads, attend in each head, concatenate and project the result.
//
//   head_h = softmax(Q_h K_h^T / sqrt(d_head) + mask) V_h,  Q = query W_q^T + b_q, ...
//   output = concat(head_1, ..., head_H) W_o^T + b_o
//
// MASK CONVENTIONS (as in torch.nn.MultiheadAttention, NOT as in scaled_dot_product_attention):
//   key_padding_mask  bool [B, S]: true = this key is padding, IGNORE it.
//                     A floating mask [B, S] is added to the scores instead.
//   attn_mask         bool [L, S] or [B * num_heads, L, S]: true = this query may NOT attend to
//                     this key. A floating mask of those shapes is added to the scores
//                     (use -inf to forbid).
//   is_causal         query i attends only to keys j <= i (combined with the masks above).
// ops/attention.h's bool mask has the opposite meaning (true = may attend); this module does
// the conversion. A query whose keys are all masked attends to nothing: its weights are all 0
// and its attention output is 0 before out_proj (PyTorch gives NaN there).
#pragma once

#include <memory>

#include "mmgrad/nn/linear.h"
#include "mmgrad/nn/module.h"

namespace mmgrad::nn {

struct MultiheadAttentionOutput {
  Tensor output;   // [B, L, E] (batch_first) or [L, B, E]
  Tensor weights;  // [B, L, S] averaged over heads, [B, H, L, S] if not averaged (softmax
                   // probabilities before dropout); undefined unless need_weights
};

class MultiheadAttention : public Module {
 public:
  // Parameters (PyTorch's names): in_proj_weight [3E, E] (rows: W_q, W_k, W_v; Xavier
  // uniform), in_proj_bias [3E] (0), out_proj (Linear E -> E, bias 0).
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, double dropout = 0.0, bool bias = true,
                     bool batch_first = true);

  // query [B, L, E], key [B, S, E], value [B, S, E] when batch_first (else [L, B, E] ...);
  // unbatched [L, E] / [S, E] also work. Self-attention: pass the same tensor three times (the
  // three projections are then one GEMM). Dropout (training mode only) applies to the weights.
  MultiheadAttentionOutput forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                   const Tensor& key_padding_mask = {},
                                   const Tensor& attn_mask = {}, bool need_weights = true,
                                   bool average_attn_weights = true, bool is_causal = false);
  // Self-attention without masks: forward(x, x, x).output (so Sequential can chain it).
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "MultiheadAttention"; }
  std::string extra_repr() const override;
  void reset_parameters();

  int64_t embed_dim, num_heads, head_dim;
  double dropout;
  bool batch_first;
  Tensor in_proj_weight, in_proj_bias;
  std::shared_ptr<Linear> out_proj;
};

// A bool [L, S] mask, true above the diagonal: the attn_mask (PyTorch convention, true = not
// allowed) that stops query i from seeing keys j > i. PyTorch's
// nn.Transformer.generate_square_subsequent_mask, in bool form.
Tensor causal_mask(int64_t L, int64_t S, Device device = kCPU);

}  // namespace mmgrad::nn
