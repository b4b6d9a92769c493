#include "mmgrad/nn/attention.h"

#include <cmath>
#include <vector>

#include "mmgrad/nn/checks.h"
#include "mmgrad/nn/init.h"
#include "mmgrad/ops/attention.h"
#include "mmgrad/ops/elementwise.h"
#include "mmgrad/ops/reduce.h"

namespace mmgrad::nn {

Tensor causal_mask(int64_t L, int64_t S, Device device) {
  MMGRAD_CHECK(L >= 0 && S >= 0, "causal_mask: sizes must be >= 0, got ", L, " and ", S);
  // [L, 1] query index i against [1, S] key index j: forbidden where j > i.
  Tensor i = Tensor::arange(L).view({L, 1});
  Tensor j = Tensor::arange(S).view({1, S});
  return gt(j, i).to(device);
}

MultiheadAttention::MultiheadAttention(int64_t embed_dim, int64_t num_heads, double dropout,
                                       bool bias, bool batch_first)
    : embed_dim(embed_dim),
      num_heads(num_heads),
      head_dim(num_heads > 0 ? embed_dim / num_heads : 0),
      dropout(dropout),
      batch_first(batch_first) {
  MMGRAD_CHECK(embed_dim > 0 && num_heads > 0 && embed_dim % num_heads == 0,
               "MultiheadAttention: embed_dim (", embed_dim,
               ") must be a positive multiple of num_heads (", num_heads, ")");
  MMGRAD_CHECK(dropout >= 0.0 && dropout < 1.0,
               "MultiheadAttention: dropout must be in [0, 1), "
               "got ",
               dropout);
  in_proj_weight = register_parameter("in_proj_weight", Tensor::empty({3 * embed_dim, embed_dim}));
  if (bias) in_proj_bias = register_parameter("in_proj_bias", Tensor::empty({3 * embed_dim}));
  out_proj = register_module("out_proj", std::make_shared<Linear>(embed_dim, embed_dim, bias));
  reset_parameters();
}

void MultiheadAttention::reset_parameters() {
  init::xavier_uniform_(in_proj_weight);
  if (in_proj_bias.defined()) init::zeros_(in_proj_bias);
  out_proj->reset_parameters();
  if (out_proj->bias.defined()) init::zeros_(out_proj->bias);
}

namespace {

// The mask handed to scaled_dot_product_attention, broadcastable to [B, H, L, S]: bool with
// true = may attend when every given mask is bool, else an additive float mask (-inf where a
// bool mask forbids). Undefined when nothing is masked. (The causal mask goes to the op as
// is_causal, which applies it together with this mask.)
Tensor sdpa_mask(const Module& m, const Tensor& key_padding_mask, const Tensor& attn_mask,
                 int64_t B, int64_t H, int64_t L, int64_t S, DType dtype, Device device) {
  std::vector<Tensor> forbidden;  // bool, true = may not attend
  std::vector<Tensor> additive;   // floating, added to the scores
  bool per_head = false;
  auto classify = [&](const Tensor& mask, const char* what, const Tensor& shaped) {
    MMGRAD_CHECK(mask.device() == device, m.label(), ": ", what, " is on ",
                 device_name(mask.device()), " but the inputs are on ", device_name(device));
    if (mask.dtype() == kBool) {
      forbidden.push_back(shaped);
    } else {
      MMGRAD_CHECK(mask.dtype() == dtype, m.label(), ": ", what, " is ", describe(mask),
                   "; expected bool (true = masked out) or ", dtype_name(dtype),
                   " (added to the scores)");
      additive.push_back(shaped);
    }
  };
  if (key_padding_mask.defined()) {
    MMGRAD_CHECK(key_padding_mask.dim() == 2 && key_padding_mask.size(0) == B &&
                     key_padding_mask.size(1) == S,
                 m.label(), ": key_padding_mask is ", describe(key_padding_mask),
                 "; expected [batch, source_len] = [", B, ", ", S, "]");
    classify(key_padding_mask, "key_padding_mask", key_padding_mask.reshape({B, 1, 1, S}));
  }
  if (attn_mask.defined()) {
    const bool ok2 = attn_mask.dim() == 2 && attn_mask.size(0) == L && attn_mask.size(1) == S;
    const bool ok3 = attn_mask.dim() == 3 && attn_mask.size(0) == B * H && attn_mask.size(1) == L &&
                     attn_mask.size(2) == S;
    MMGRAD_CHECK(ok2 || ok3, m.label(), ": attn_mask is ", describe(attn_mask),
                 "; expected [target_len, source_len] = [", L, ", ", S,
                 "] or [batch * num_heads, target_len, source_len] = [", B * H, ", ", L, ", ", S,
                 "]");
    per_head = ok3;
    classify(attn_mask, "attn_mask", ok3 ? attn_mask.reshape({B, H, L, S}) : attn_mask);
  }
  if (forbidden.empty() && additive.empty()) return {};
  if (additive.empty()) {
    Tensor any = forbidden[0];
    for (size_t i = 1; i < forbidden.size(); ++i) any = logical_or(any, forbidden[i]);
    return logical_not(any);  // SDPA: true = may attend
  }
  Tensor scores_bias =
      Tensor::zeros({B, per_head ? H : 1, L, S}, TensorOptions(dtype).device(device));
  for (const Tensor& a : additive) scores_bias = scores_bias + a;
  for (const Tensor& f : forbidden) scores_bias = masked_fill(scores_bias, f, -INFINITY);
  return scores_bias;
}

}  // namespace

MultiheadAttentionOutput MultiheadAttention::forward(const Tensor& query, const Tensor& key,
                                                     const Tensor& value,
                                                     const Tensor& key_padding_mask,
                                                     const Tensor& attn_mask, bool need_weights,
                                                     bool average_attn_weights, bool is_causal) {
  detail::check_input(*this, query, in_proj_weight, "query");
  detail::check_input(*this, key, in_proj_weight, "key");
  detail::check_input(*this, value, in_proj_weight, "value");
  const int nd = query.dim();
  MMGRAD_CHECK((nd == 3 || nd == 2) && key.dim() == nd && value.dim() == nd, label(),
               ": query, key and value are ", describe(query), ", ", describe(key), ", ",
               describe(value), "; expected all ",
               batch_first ? "[batch, seq, embed_dim]" : "[seq, batch, embed_dim]",
               " or all unbatched [seq, embed_dim]");
  const bool self_attention = query.same(key) && key.same(value);
  const bool same_kv = key.same(value);

  // Everything below works on batch-first [B, seq, E].
  Tensor q = query, k = key, v = value, kpm = key_padding_mask;
  if (nd == 2) {
    q = q.unsqueeze(0);
    k = k.unsqueeze(0);
    v = v.unsqueeze(0);
    if (kpm.defined() && kpm.dim() == 1) kpm = kpm.unsqueeze(0);
  } else if (!batch_first) {
    q = q.transpose(0, 1);
    k = k.transpose(0, 1);
    v = v.transpose(0, 1);
  }
  const int64_t B = q.size(0), L = q.size(1), S = k.size(1), E = embed_dim, H = num_heads;
  MMGRAD_CHECK(q.size(2) == E && k.size(2) == E && v.size(2) == E, label(),
               ": query, key and value must end in embed_dim = ", E, ", got ", describe(query),
               ", ", describe(key), ", ", describe(value));
  MMGRAD_CHECK(k.size(0) == B && v.size(0) == B && v.size(1) == S, label(),
               ": batch sizes or key/value lengths differ: query ", describe(query), ", key ",
               describe(key), ", value ", describe(value));

  // Projections: W_q, W_k, W_v are row blocks of in_proj_weight (views, no copies).
  auto w_rows = [&](int64_t first, int64_t n) { return in_proj_weight.narrow(0, first, n); };
  auto b_rows = [&](int64_t first, int64_t n) {
    return in_proj_bias.defined() ? in_proj_bias.narrow(0, first, n) : Tensor();
  };
  Tensor Q, K, V;
  if (self_attention) {
    Tensor qkv = linear(q, in_proj_weight, in_proj_bias);  // [B, L, 3E]: one GEMM
    Q = qkv.narrow(-1, 0, E);
    K = qkv.narrow(-1, E, E);
    V = qkv.narrow(-1, 2 * E, E);
  } else if (same_kv) {
    Q = linear(q, w_rows(0, E), b_rows(0, E));
    Tensor kv = linear(k, w_rows(E, 2 * E), b_rows(E, 2 * E));  // [B, S, 2E]
    K = kv.narrow(-1, 0, E);
    V = kv.narrow(-1, E, E);
  } else {
    Q = linear(q, w_rows(0, E), b_rows(0, E));
    K = linear(k, w_rows(E, E), b_rows(E, E));
    V = linear(v, w_rows(2 * E, E), b_rows(2 * E, E));
  }
  // [B, n, E] -> [B, H, n, head_dim]
  auto split_heads = [&](const Tensor& t, int64_t n) {
    return t.reshape({B, n, H, head_dim}).transpose(1, 2);
  };
  Q = split_heads(Q, L);
  K = split_heads(K, S);
  V = split_heads(V, S);

  AttentionOptions opts;
  opts.attn_mask = sdpa_mask(*this, kpm, attn_mask, B, H, L, S, query.dtype(), query.device());
  opts.is_causal = is_causal;  // key j visible to query i when j <= i
  opts.dropout_p = is_training() ? dropout : 0.0;
  MultiheadAttentionOutput result;
  Tensor heads;
  if (need_weights) {
    AttentionResult r = scaled_dot_product_attention_with_weights(Q, K, V, opts);
    heads = r.output;
    result.weights = average_attn_weights ? mean(r.weights, {1}) : r.weights;
    if (nd == 2) result.weights = result.weights.squeeze(0);
  } else {
    heads = scaled_dot_product_attention(Q, K, V, opts);
  }
  // [B, H, L, head_dim] -> [B, L, H * head_dim]: concatenate the heads, then mix them.
  Tensor out = out_proj->forward(heads.transpose(1, 2).reshape({B, L, E}));
  if (nd == 2)
    out = out.squeeze(0);
  else if (!batch_first)
    out = out.transpose(0, 1);
  result.output = out;
  return result;
}

Tensor MultiheadAttention::forward(const Tensor& x) {
  return forward(x, x, x, {}, {}, /*need_weights=*/false).output;
}

std::string MultiheadAttention::extra_repr() const {
  return cat_str("embed_dim=", embed_dim, ", num_heads=", num_heads, ", dropout=", dropout,
                 ", batch_first=", batch_first ? "true" : "false");
}

}  // namespace mmgrad::nn
