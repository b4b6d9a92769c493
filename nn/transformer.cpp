#include "mmgrad/nn/transformer.h"

#include "mmgrad/ops/elementwise.h"

namespace mmgrad::nn {
namespace {

void check_options(const char* layer, const TransformerLayerOptions& o) {
  MMGRAD_CHECK(o.d_model > 0 && o.nhead > 0 && o.d_model % o.nhead == 0, layer, ": d_model (",
               o.d_model, ") must be a positive multiple of nhead (", o.nhead, ")");
  MMGRAD_CHECK(o.dim_feedforward > 0, layer, ": dim_feedforward must be positive, got ",
               o.dim_feedforward);
  MMGRAD_CHECK(o.dropout >= 0.0 && o.dropout < 1.0, layer, ": dropout must be in [0, 1), got ",
               o.dropout);
}

TransformerLayerOptions make_options(int64_t d_model, int64_t nhead, int64_t dim_feedforward,
                                     double dropout, Activation activation, bool norm_first,
                                     bool batch_first, double layer_norm_eps) {
  TransformerLayerOptions o;
  o.d_model = d_model;
  o.nhead = nhead;
  o.dim_feedforward = dim_feedforward;
  o.dropout = dropout;
  o.activation = activation;
  o.norm_first = norm_first;
  o.batch_first = batch_first;
  o.layer_norm_eps = layer_norm_eps;
  return o;
}

std::string options_repr(const TransformerLayerOptions& o) {
  return cat_str("d_model=", o.d_model, ", nhead=", o.nhead,
                 ", dim_feedforward=", o.dim_feedforward, ", dropout=", o.dropout,
                 ", activation=", activation_name(o.activation),
                 ", norm_first=", o.norm_first ? "true" : "false");
}

}  // namespace

// ---- encoder layer -----------------------------------------------------------------------------

TransformerEncoderLayer::TransformerEncoderLayer(const TransformerLayerOptions& o) : options(o) {
  check_options("TransformerEncoderLayer", o);
  self_attn = register_module("self_attn", std::make_shared<MultiheadAttention>(
                                               o.d_model, o.nhead, o.dropout, true, o.batch_first));
  linear1 = register_module("linear1", std::make_shared<Linear>(o.d_model, o.dim_feedforward));
  dropout = register_module("dropout", std::make_shared<Dropout>(o.dropout));
  linear2 = register_module("linear2", std::make_shared<Linear>(o.dim_feedforward, o.d_model));
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(o.d_model, o.layer_norm_eps));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(o.d_model, o.layer_norm_eps));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(o.dropout));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(o.dropout));
}

TransformerEncoderLayer::TransformerEncoderLayer(int64_t d_model, int64_t nhead,
                                                 int64_t dim_feedforward, double dropout,
                                                 Activation activation, bool norm_first,
                                                 bool batch_first, double layer_norm_eps)
    : TransformerEncoderLayer(make_options(d_model, nhead, dim_feedforward, dropout, activation,
                                           norm_first, batch_first, layer_norm_eps)) {}

Tensor TransformerEncoderLayer::sa_block(const Tensor& x, const Tensor& mask, const Tensor& kpm,
                                         bool is_causal) {
  Tensor a = self_attn->forward(x, x, x, kpm, mask, /*need_weights=*/false, true, is_causal).output;
  return dropout1->forward(a);
}

Tensor TransformerEncoderLayer::ff_block(const Tensor& x) {
  Tensor h = dropout->forward(activate(linear1->forward(x), options.activation));
  return dropout2->forward(linear2->forward(h));
}

Tensor TransformerEncoderLayer::forward(const Tensor& src, const Tensor& src_mask,
                                        const Tensor& src_key_padding_mask, bool is_causal) {
  Tensor x = src;
  if (options.norm_first) {
    x = x + sa_block(norm1->forward(x), src_mask, src_key_padding_mask, is_causal);
    x = x + ff_block(norm2->forward(x));
  } else {
    x = norm1->forward(x + sa_block(x, src_mask, src_key_padding_mask, is_causal));
    x = norm2->forward(x + ff_block(x));
  }
  return x;
}

std::string TransformerEncoderLayer::extra_repr() const { return options_repr(options); }

// ---- decoder layer -----------------------------------------------------------------------------

TransformerDecoderLayer::TransformerDecoderLayer(const TransformerLayerOptions& o) : options(o) {
  check_options("TransformerDecoderLayer", o);
  self_attn = register_module("self_attn", std::make_shared<MultiheadAttention>(
                                               o.d_model, o.nhead, o.dropout, true, o.batch_first));
  multihead_attn = register_module(
      "multihead_attn",
      std::make_shared<MultiheadAttention>(o.d_model, o.nhead, o.dropout, true, o.batch_first));
  linear1 = register_module("linear1", std::make_shared<Linear>(o.d_model, o.dim_feedforward));
  dropout = register_module("dropout", std::make_shared<Dropout>(o.dropout));
  linear2 = register_module("linear2", std::make_shared<Linear>(o.dim_feedforward, o.d_model));
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(o.d_model, o.layer_norm_eps));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(o.d_model, o.layer_norm_eps));
  norm3 = register_module("norm3", std::make_shared<LayerNorm>(o.d_model, o.layer_norm_eps));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(o.dropout));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(o.dropout));
  dropout3 = register_module("dropout3", std::make_shared<Dropout>(o.dropout));
}

TransformerDecoderLayer::TransformerDecoderLayer(int64_t d_model, int64_t nhead,
                                                 int64_t dim_feedforward, double dropout,
                                                 Activation activation, bool norm_first,
                                                 bool batch_first, double layer_norm_eps)
    : TransformerDecoderLayer(make_options(d_model, nhead, dim_feedforward, dropout, activation,
                                           norm_first, batch_first, layer_norm_eps)) {}

Tensor TransformerDecoderLayer::ff_block(const Tensor& x) {
  Tensor h = dropout->forward(activate(linear1->forward(x), options.activation));
  return dropout3->forward(linear2->forward(h));
}

Tensor TransformerDecoderLayer::forward(const Tensor& tgt, const Tensor& memory,
                                        const Tensor& tgt_mask, const Tensor& memory_mask,
                                        const Tensor& tgt_key_padding_mask,
                                        const Tensor& memory_key_padding_mask, bool tgt_is_causal,
                                        bool memory_is_causal) {
  MMGRAD_CHECK(memory.defined(), label(), ": memory (the encoder output) is undefined");
  auto sa = [&](const Tensor& x) {
    return dropout1->forward(
        self_attn->forward(x, x, x, tgt_key_padding_mask, tgt_mask, false, true, tgt_is_causal)
            .output);
  };
  auto ca = [&](const Tensor& x) {
    return dropout2->forward(multihead_attn
                                 ->forward(x, memory, memory, memory_key_padding_mask, memory_mask,
                                           false, true, memory_is_causal)
                                 .output);
  };
  Tensor x = tgt;
  if (options.norm_first) {
    x = x + sa(norm1->forward(x));
    x = x + ca(norm2->forward(x));
    x = x + ff_block(norm3->forward(x));
  } else {
    x = norm1->forward(x + sa(x));
    x = norm2->forward(x + ca(x));
    x = norm3->forward(x + ff_block(x));
  }
  return x;
}

std::string TransformerDecoderLayer::extra_repr() const { return options_repr(options); }

// ---- stacks ------------------------------------------------------------------------------------

TransformerEncoder::TransformerEncoder(const TransformerLayerOptions& layer, int64_t num_layers,
                                       bool final_norm) {
  MMGRAD_CHECK(num_layers >= 1, "TransformerEncoder: num_layers must be >= 1, got ", num_layers);
  layers = register_module("layers", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < num_layers; ++i)
    layers->push_back(std::make_shared<TransformerEncoderLayer>(layer));
  if (final_norm)
    norm =
        register_module("norm", std::make_shared<LayerNorm>(layer.d_model, layer.layer_norm_eps));
}

Tensor TransformerEncoder::forward(const Tensor& src, const Tensor& mask,
                                   const Tensor& src_key_padding_mask, bool is_causal) {
  Tensor x = src;
  for (const auto& m : *layers)
    x = static_cast<TransformerEncoderLayer&>(*m).forward(x, mask, src_key_padding_mask, is_causal);
  return norm ? norm->forward(x) : x;
}

TransformerDecoder::TransformerDecoder(const TransformerLayerOptions& layer, int64_t num_layers,
                                       bool final_norm) {
  MMGRAD_CHECK(num_layers >= 1, "TransformerDecoder: num_layers must be >= 1, got ", num_layers);
  layers = register_module("layers", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < num_layers; ++i)
    layers->push_back(std::make_shared<TransformerDecoderLayer>(layer));
  if (final_norm)
    norm =
        register_module("norm", std::make_shared<LayerNorm>(layer.d_model, layer.layer_norm_eps));
}

Tensor TransformerDecoder::forward(const Tensor& tgt, const Tensor& memory, const Tensor& tgt_mask,
                                   const Tensor& memory_mask, const Tensor& tgt_key_padding_mask,
                                   const Tensor& memory_key_padding_mask, bool tgt_is_causal,
                                   bool memory_is_causal) {
  Tensor x = tgt;
  for (const auto& m : *layers)
    x = static_cast<TransformerDecoderLayer&>(*m).forward(
        x, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask,
        tgt_is_causal, memory_is_causal);
  return norm ? norm->forward(x) : x;
}

}  // namespace mmgrad::nn
