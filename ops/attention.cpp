// Scaled dot-product attention, composed from differentiable ops:
//
//   scores  = (q k^T) * scale                 [..., L, S]   scale = 1/sqrt(E) by default
//   scores += float mask, or -inf where a bool mask (or the causal mask) forbids attending
//   weights = softmax(scores, over S)          each query's distribution over the keys
//   output  = dropout(weights) @ v             [..., L, Ev]
//
// Every step is a differentiable op (matmul on a transposed view of k, mul, add/where, the fused
// softmax), so the backward comes from theirs:
//   dweights = g v^T,   dv = weights^T g,   dscores = softmax backward,   dq = dscores k * scale,
//   dk = dscores^T q * scale
// with no copy for the transposes (the GEMM reads transposed views in place). The scale is
// applied to whichever of q or k has fewer elements, which is the cheaper pass.
//
// Fully masked rows: a query that may attend to no key has a softmax over only -inf, which is
// 0/0. PyTorch returns NaN there; mmgrad returns weights of 0 and hence an output row of 0, and
// a zero gradient for that row. This is implemented without NaN anywhere in the graph: such rows
// get finite scores before the softmax and are zeroed after it. Detecting them costs one
// max-reduction over the scores, and only when a mask is given (the causal mask alone never
// masks a whole row: key 0 is always visible).
//
// Dropout (dropout_p > 0) is dropout() on the weights (ops/dropout.h, fused on the CPU): it
// zeroes each weight with probability p and scales the kept ones by 1/(1-p), so the expected
// output is unchanged. (It multiplies by the mask, so a NaN weight stays NaN where dropped, as in
// PyTorch; the weights are finite whenever the scores are.) The weights returned by
// scaled_dot_product_attention_with_weights are the softmax probabilities before dropout.
#include "mmgrad/ops/attention.h"

#include <cmath>

#include "mmgrad/ops/common.h"
#include "mmgrad/ops/dropout.h"
#include "mmgrad/ops/elementwise.h"
#include "mmgrad/ops/matmul.h"
#include "mmgrad/ops/reduce.h"
#include "mmgrad/ops/softmax.h"

namespace mmgrad {
namespace {

constexpr const char* kOp = "scaled_dot_product_attention";

Shape batch_of(const Tensor& t) { return Shape(t.shape().begin(), t.shape().end() - 2); }

// Validates the inputs (the mask against the scores' shape [..., L, S], whose batch dims are
// those of q, k and v broadcast together).
void check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& opt) {
  check_floating(kOp, q, "query");
  check_floating(kOp, k, "key");
  check_floating(kOp, v, "value");
  check_same_device(kOp, q, k);
  check_same_device(kOp, q, v);
  check_same_dtype(kOp, q, k);
  check_same_dtype(kOp, q, v);
  MMGRAD_CHECK(q.dim() >= 2 && k.dim() >= 2 && v.dim() >= 2, kOp,
               ": query, key and value need at least 2 dimensions ([..., L, E], [..., S, E], "
               "[..., S, Ev]), got ",
               q.shape().str(), ", ", k.shape().str(), ", ", v.shape().str());
  MMGRAD_CHECK(q.size(-1) == k.size(-1), kOp,
               ": query and key need the same embedding size (last dim), got query ",
               q.shape().str(), " and key ", k.shape().str());
  MMGRAD_CHECK(k.size(-2) == v.size(-2), kOp,
               ": key and value need the same sequence length (dim -2), got key ", k.shape().str(),
               " and value ", v.shape().str());
  Shape batch;
  try {
    batch = broadcast_shapes(kOp, broadcast_shapes(kOp, batch_of(q), batch_of(k)), batch_of(v));
  } catch (const Error&) {
    fail(cat_str(kOp, ": the batch dims of query ", q.shape().str(), ", key ", k.shape().str(),
                 " and value ", v.shape().str(), " do not broadcast together"));
  }
  Shape scores = batch;
  scores.push_back(q.size(-2));
  scores.push_back(k.size(-2));
  if (opt.attn_mask.defined()) {
    const Tensor& m = opt.attn_mask;
    check_same_device(kOp, q, m);
    MMGRAD_CHECK(m.dtype() == DType::Bool || m.dtype() == q.dtype(), kOp,
                 ": attn_mask must be bool (true = may attend) or have the query's dtype ",
                 dtype_name(q.dtype()), " (added to the scores), got ", describe(m));
    bool ok = m.dim() <= scores.size();
    for (int i = 1; ok && i <= m.dim(); ++i) {
      int64_t ms = m.size(-i), ss = scores[scores.size() - i];
      ok = ms == ss || ms == 1;
    }
    MMGRAD_CHECK(ok, kOp, ": attn_mask of shape ", m.shape().str(),
                 " does not broadcast to the attention scores' shape [..., L, S] = ", scores.str());
  }
  MMGRAD_CHECK(opt.dropout_p >= 0.0 && opt.dropout_p < 1.0, kOp,
               ": dropout_p must be in [0, 1), got ", opt.dropout_p);
  if (opt.scale) {
    MMGRAD_CHECK(std::isfinite(*opt.scale), kOp, ": scale must be finite, got ", *opt.scale);
  } else {
    MMGRAD_CHECK(q.size(-1) > 0, kOp, ": the default scale 1/sqrt(E) needs E > 0, got query ",
                 q.shape().str());
  }
}

// [L, S] bool: query i may attend to key j when j <= i (top-left aligned, as in PyTorch).
Tensor causal_mask(int64_t L, int64_t S, Device device) {
  TensorOptions opts = TensorOptions(DType::Int64).device(device);
  Tensor rows = Tensor::arange(L, opts).view({L, 1});
  Tensor cols = Tensor::arange(S, opts).view({1, S});
  return le(cols, rows);
}

}  // namespace

AttentionResult scaled_dot_product_attention_with_weights(const Tensor& q, const Tensor& k,
                                                          const Tensor& v,
                                                          const AttentionOptions& opt) {
  check_inputs(q, k, v, opt);
  const int64_t L = q.size(-2), S = k.size(-2);
  const double scale = opt.scale ? *opt.scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));

  // 1. scores = q k^T * scale (the scale goes on the smaller operand)
  Tensor scores;
  if (scale == 1.0)
    scores = matmul(q, k.transpose(-2, -1));
  else if (q.numel() <= k.numel())
    scores = matmul(mul(q, scale), k.transpose(-2, -1));
  else
    scores = matmul(q, mul(k, scale).transpose(-2, -1));

  // 2. masks: a float mask is added; bool and causal masks set forbidden scores to -inf
  const Tensor& m = opt.attn_mask;
  Tensor allowed;  // bool, true = may attend
  if (opt.is_causal) allowed = causal_mask(L, S, q.device());
  if (m.defined() && m.dtype() == DType::Bool)
    allowed = allowed.defined() ? logical_and(m, allowed) : m;
  if (m.defined() && m.dtype() != DType::Bool) scores = add(scores, m);
  if (allowed.defined()) scores = where(allowed, scores, -INFINITY);

  // 3. rows with no visible key: finite scores in, zero weights out (see the header comment)
  Tensor visible;  // [..., L, 1] bool, only when some row is fully masked
  if (m.defined() && S > 0 && scores.numel() > 0) {
    NoGradGuard no_grad;
    Tensor dead = eq(max(scores.detach(), -1, true), -INFINITY);
    if (dead.to(DType::Int64).sum().item() > 0) visible = logical_not(dead);
  }
  if (visible.defined()) scores = where(visible, scores, 0.0);
  Tensor weights = softmax(scores, -1);
  if (visible.defined()) weights = where(visible, weights, 0.0);

  // 4. dropout on the weights, then the weighted sum of the values
  Tensor attn = weights;
  if (opt.dropout_p > 0.0) attn = dropout(weights, opt.dropout_p, true, opt.generator);
  Tensor out = matmul(attn, v);
  return {out, weights};
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& options) {
  return scaled_dot_product_attention_with_weights(q, k, v, options).output;
}

}  // namespace mmgrad
