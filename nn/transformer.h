// Transformer layers as in PyTorch (torch.nn.TransformerEncoderLayer / DecoderLayer):
//
// post-norm (default, norm_first = false, the original "Attention is all you need" layout):
//   x = norm1(x + dropout1(self_attn(x)))
//   x = norm2(x + dropout2(linear2(dropout(activation(linear1(x))))))
// pre-norm (norm_first = true, easier to train deep stacks):
//   x = x + dropout1(self_attn(norm1(x)))
//   x = x + dropout2(linear2(dropout(activation(linear1(norm2(x))))))
// The decoder layer adds cross-attention to the encoder's output (memory) between the two.
// Masks follow MultiheadAttention's convention (bool true = masked out), see nn/attention.h.
#pragma once

#include <memory>

#include "mmgrad/nn/activation.h"
#include "mmgrad/nn/attention.h"
#include "mmgrad/nn/container.h"
#include "mmgrad/nn/dropout.h"
#include "mmgrad/nn/linear.h"
#include "mmgrad/nn/normalization.h"

namespace mmgrad::nn {

struct TransformerLayerOptions {
  int64_t d_model = 512;
  int64_t nhead = 8;
  int64_t dim_feedforward = 2048;
  double dropout = 0.1;
  Activation activation = Activation::ReLU;
  bool norm_first = false;
  bool batch_first = true;
  double layer_norm_eps = 1e-5;
};

class TransformerEncoderLayer : public Module {
 public:
  explicit TransformerEncoderLayer(const TransformerLayerOptions& options);
  TransformerEncoderLayer(int64_t d_model, int64_t nhead, int64_t dim_feedforward = 2048,
                          double dropout = 0.1, Activation activation = Activation::ReLU,
                          bool norm_first = false, bool batch_first = true,
                          double layer_norm_eps = 1e-5);
  // src [B, S, d_model] (batch_first) -> same shape.
  Tensor forward(const Tensor& src, const Tensor& src_mask, const Tensor& src_key_padding_mask = {},
                 bool is_causal = false);
  Tensor forward(const Tensor& src) override { return forward(src, {}, {}, false); }
  std::string name() const override { return "TransformerEncoderLayer"; }
  std::string extra_repr() const override;

  TransformerLayerOptions options;
  std::shared_ptr<MultiheadAttention> self_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<Dropout> dropout, dropout1, dropout2;
  std::shared_ptr<LayerNorm> norm1, norm2;

 private:
  Tensor sa_block(const Tensor& x, const Tensor& mask, const Tensor& kpm, bool is_causal);
  Tensor ff_block(const Tensor& x);
};

class TransformerDecoderLayer : public Module {
 public:
  explicit TransformerDecoderLayer(const TransformerLayerOptions& options);
  TransformerDecoderLayer(int64_t d_model, int64_t nhead, int64_t dim_feedforward = 2048,
                          double dropout = 0.1, Activation activation = Activation::ReLU,
                          bool norm_first = false, bool batch_first = true,
                          double layer_norm_eps = 1e-5);
  // tgt [B, T, d_model], memory [B, S, d_model] -> [B, T, d_model]. tgt_is_causal adds the
  // causal mask to the self-attention (a decoder predicting the next token needs it).
  Tensor forward(const Tensor& tgt, const Tensor& memory, const Tensor& tgt_mask = {},
                 const Tensor& memory_mask = {}, const Tensor& tgt_key_padding_mask = {},
                 const Tensor& memory_key_padding_mask = {}, bool tgt_is_causal = false,
                 bool memory_is_causal = false);
  using Module::forward;  // the single-input forward throws: a decoder needs memory
  std::string name() const override { return "TransformerDecoderLayer"; }
  std::string extra_repr() const override;

  TransformerLayerOptions options;
  std::shared_ptr<MultiheadAttention> self_attn, multihead_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<Dropout> dropout, dropout1, dropout2, dropout3;
  std::shared_ptr<LayerNorm> norm1, norm2, norm3;

 private:
  Tensor ff_block(const Tensor& x);
};

// num_layers encoder layers (children "layers.0", "layers.1", ...), then an optional final
// LayerNorm "norm" (usual with pre-norm layers, whose output is otherwise unnormalised).
class TransformerEncoder : public Module {
 public:
  TransformerEncoder(const TransformerLayerOptions& layer, int64_t num_layers,
                     bool final_norm = false);
  Tensor forward(const Tensor& src, const Tensor& mask, const Tensor& src_key_padding_mask = {},
                 bool is_causal = false);
  Tensor forward(const Tensor& src) override { return forward(src, {}, {}, false); }
  std::string name() const override { return "TransformerEncoder"; }

  std::shared_ptr<ModuleList> layers;
  std::shared_ptr<LayerNorm> norm;  // null without final_norm
};

class TransformerDecoder : public Module {
 public:
  TransformerDecoder(const TransformerLayerOptions& layer, int64_t num_layers,
                     bool final_norm = false);
  Tensor forward(const Tensor& tgt, const Tensor& memory, const Tensor& tgt_mask = {},
                 const Tensor& memory_mask = {}, const Tensor& tgt_key_padding_mask = {},
                 const Tensor& memory_key_padding_mask = {}, bool tgt_is_causal = false,
                 bool memory_is_causal = false);
  using Module::forward;
  std::string name() const override { return "TransformerDecoder"; }

  std::shared_ptr<ModuleList> layers;
  std::shared_ptr<LayerNorm> norm;
};

}  // namespace mmgrad::nn
