// Contrastive, pair and triplet losses (definitions and conventions in nn/losses.h). All of them
// are compositions of differentiable ops: normalize, matmul, exp, clamp, cross_entropy, ...
#include "mmgrad/nn/losses.h"

#include <algorithm>

#include "mmgrad/autograd/grad_mode.h"
#include "mmgrad/ops/elementwise.h"
#include "mmgrad/ops/matmul.h"
#include "mmgrad/ops/norm.h"
#include "mmgrad/ops/reduce.h"

namespace mmgrad::nn {
namespace {

// A batch of embeddings: a defined, floating [N, D] tensor with D >= 1. An empty batch (N = 0)
// is allowed and gives a NaN loss, as every mean over zero elements does (PyTorch's rule).
void check_embeddings(const char* op, const Tensor& t, const char* arg) {
  MMGRAD_CHECK(t.defined(), op, ": ", arg, " is an undefined tensor");
  MMGRAD_CHECK(t.dim() == 2, op, ": ", arg, " must be a 2-D [N, D] batch of embeddings, got ",
               describe(t));
  MMGRAD_CHECK(t.is_floating_point(), op, ": ", arg, " must be floating point, got ", describe(t));
  MMGRAD_CHECK(t.size(1) >= 1, op, ": ", arg,
               " must have at least one column (an embedding of dimension 0), got ", describe(t));
}

// `other` has the same shape, dtype and device as `ref`.
void check_same_as(const char* op, const Tensor& ref, const char* ref_name, const Tensor& other,
                   const char* other_name) {
  MMGRAD_CHECK(other.shape() == ref.shape() && other.dtype() == ref.dtype() &&
                   other.device() == ref.device(),
               op, ": ", other_name, " (", describe(other), ") must match ", ref_name, " (",
               describe(ref), ") in shape, dtype and device");
}

void check_logit_scale(const char* op, const Tensor& s, const Tensor& ref) {
  MMGRAD_CHECK(s.defined(), op, ": logit_scale is an undefined tensor");
  MMGRAD_CHECK(s.numel() == 1 && s.dim() <= 1, op,
               ": logit_scale must be a 0-d (or one-element) tensor, got ", describe(s));
  MMGRAD_CHECK(s.dtype() == ref.dtype() && s.device() == ref.device(), op, ": logit_scale (",
               describe(s), ") must have the embeddings' dtype and device (", describe(ref), ")");
}

// exp(min(logit_scale, log 100)) as a 0-d tensor (see losses.h for the gradient at the cap).
Tensor capped_scale(const Tensor& logit_scale) {
  Tensor s = clamp_max(logit_scale, kMaxLogitScale).exp();
  return s.dim() == 0 ? s : s.reshape({});
}

Tensor arange_labels(int64_t n, Device device) {
  return Tensor::arange(n, TensorOptions(DType::Int64).device(device));
}

// CE(logits, labels) + CE(logits^T, labels): both directions of InfoNCE for one pair of
// normalised batches. Returns the sum and writes the logits.
Tensor symmetric_infonce(const Tensor& x, const Tensor& y, const Tensor& scale,
                         const Tensor& labels, Tensor* logits_out = nullptr) {
  Tensor logits = mul(matmul(x, y.t()), scale);
  Tensor loss = add(cross_entropy(logits, labels), cross_entropy(logits.t(), labels));
  if (logits_out) *logits_out = logits;
  return loss;
}

// ||x1 - x2 + eps||_p along the last dim (torch.pairwise_distance).
Tensor pairwise_distance(const Tensor& x1, const Tensor& x2, double p, double eps) {
  Tensor diff = add(sub(x1, x2), eps);
  if (p == 2.0) return sqrt(sum(square(diff), {-1}));
  if (p == 1.0) return sum(abs(diff), {-1});
  return pow(sum(pow(abs(diff), p), {-1}), 1.0 / p);
}

}  // namespace

ClipLossResult clip_loss(const Tensor& image_emb, const Tensor& text_emb,
                         const Tensor& logit_scale) {
  const char* op = "clip_loss";
  check_embeddings(op, image_emb, "image_emb");
  check_embeddings(op, text_emb, "text_emb");
  check_same_as(op, image_emb, "image_emb", text_emb, "text_emb");
  check_logit_scale(op, logit_scale, image_emb);

  const int64_t n = image_emb.size(0);
  Tensor img = normalize(image_emb, 1);
  Tensor txt = normalize(text_emb, 1);
  ClipLossResult r;
  Tensor both = symmetric_infonce(img, txt, capped_scale(logit_scale),
                                  arange_labels(n, image_emb.device()), &r.logits_per_image);
  r.loss = mul(both, 0.5);
  r.logits_per_text = r.logits_per_image.t();
  return r;
}

Tensor three_way_contrastive_loss(const Tensor& a, const Tensor& b, const Tensor& c,
                                  const Tensor& logit_scale) {
  const char* op = "three_way_contrastive_loss";
  check_embeddings(op, a, "a");
  check_embeddings(op, b, "b");
  check_embeddings(op, c, "c");
  check_same_as(op, a, "a", b, "b");
  check_same_as(op, a, "a", c, "c");
  check_logit_scale(op, logit_scale, a);

  Tensor an = normalize(a, 1), bn = normalize(b, 1), cn = normalize(c, 1);
  Tensor scale = capped_scale(logit_scale);
  Tensor labels = arange_labels(a.size(0), a.device());
  Tensor total = symmetric_infonce(an, bn, scale, labels);
  total = add(total, symmetric_infonce(an, cn, scale, labels));
  total = add(total, symmetric_infonce(bn, cn, scale, labels));
  return mul(total, 1.0 / 6.0);
}

Tensor pair_contrastive_loss(const Tensor& a, const Tensor& b, const Tensor& same) {
  const char* op = "pair_contrastive_loss";
  check_embeddings(op, a, "a");
  check_embeddings(op, b, "b");
  check_same_as(op, a, "a", b, "b");
  MMGRAD_CHECK(same.defined(), op, ": same is an undefined tensor");
  MMGRAD_CHECK(same.dim() == 1 && same.size(0) == a.size(0), op, ": same must be [N] = [",
               a.size(0), "] (one label per pair), got ", describe(same));
  MMGRAD_CHECK(same.dtype() == DType::Bool || same.is_floating_point(), op,
               ": same must be bool (positive pair or not) or floating (a target similarity), "
               "got ",
               describe(same));
  MMGRAD_CHECK(same.device() == a.device(), op, ": same is on ", device_name(same.device()),
               " but the embeddings are on ", device_name(a.device()));
  Tensor target = same.dtype() == a.dtype() ? same : same.to(a.dtype());
  return mse_loss(cosine_similarity(a, b, 1), target);
}

Tensor triplet_margin_loss(const Tensor& anchor, const Tensor& positive, const Tensor& negative,
                           double margin, double p, double eps, bool swap, Reduction reduction) {
  const char* op = "triplet_margin_loss";
  MMGRAD_CHECK(anchor.defined() && positive.defined() && negative.defined(), op,
               ": anchor, positive and negative must all be defined tensors");
  MMGRAD_CHECK(anchor.dim() == 1 || anchor.dim() == 2, op,
               ": anchor must be [N, D] (or [D] for one triplet), got ", describe(anchor));
  MMGRAD_CHECK(anchor.is_floating_point(), op, ": anchor must be floating point, got ",
               describe(anchor));
  check_same_as(op, anchor, "anchor", positive, "positive");
  check_same_as(op, anchor, "anchor", negative, "negative");
  MMGRAD_CHECK(std::isfinite(p) && p > 0.0, op, ": the norm degree p must be > 0, got ", p);
  MMGRAD_CHECK(std::isfinite(margin), op, ": margin must be finite, got ", margin);
  MMGRAD_CHECK(std::isfinite(eps) && eps >= 0.0, op, ": eps must be >= 0, got ", eps);

  Tensor d_ap = pairwise_distance(anchor, positive, p, eps);
  Tensor d_an = pairwise_distance(anchor, negative, p, eps);
  if (swap) d_an = minimum(d_an, pairwise_distance(positive, negative, p, eps));
  Tensor losses = clamp_min(add(sub(d_ap, d_an), margin), 0.0);
  switch (reduction) {
    case Reduction::None:
      return losses;
    case Reduction::Sum:
      return sum(losses);
    case Reduction::Mean:
      break;
  }
  return mean(losses);
}

// ---- CLIPLoss -----------------------------------------------------------------------------------
CLIPLoss::CLIPLoss(double init_temperature, bool learnable) : learnable_(learnable) {
  MMGRAD_CHECK(std::isfinite(init_temperature) && init_temperature >= 0.01,
               "CLIPLoss: init_temperature must be >= 0.01 (a logit scale of at most 100), got ",
               init_temperature);
  Tensor init = Tensor::scalar(std::log(1.0 / init_temperature), DType::Float32);
  logit_scale =
      learnable ? register_parameter("logit_scale", init) : register_buffer("logit_scale", init);
}

ClipLossResult CLIPLoss::forward(const Tensor& image_emb, const Tensor& text_emb) const {
  return clip_loss(image_emb, text_emb, logit_scale);
}

Tensor CLIPLoss::forward(const Tensor& a, const Tensor& b, const Tensor& c) const {
  return three_way_contrastive_loss(a, b, c, logit_scale);
}

double CLIPLoss::temperature() const {
  return 1.0 / std::exp(std::min(logit_scale.item(), kMaxLogitScale));
}

void CLIPLoss::clamp_logit_scale_() {
  NoGradGuard no_grad;
  logit_scale.copy_(clamp(logit_scale, 0.0, kMaxLogitScale));
}

std::string CLIPLoss::extra_repr() const {
  return cat_str("temperature=", temperature(), ", learnable=", learnable_ ? "true" : "false",
                 ", max_logit_scale=100");
}

}  // namespace mmgrad::nn
