// Losses for representation learning: CLIP's symmetric InfoNCE, the three-way (AudioCLIP-style)
// contrastive loss, the cosine pair loss and the triplet margin loss. Each is written with
// differentiable ops, so its backward comes from autograd and it runs on any device.
// cross_entropy and mse_loss live in ops/loss.h and are re-exported here.
// An empty batch (N = 0) gives a NaN loss (a mean over zero elements, PyTorch's rule; Sum gives
// 0 and None an empty tensor), with gradients of the inputs' shapes (docs/semantics.md).
#pragma once

#include <cmath>

#include "mmgrad/nn/module.h"
#include "mmgrad/ops/loss.h"
#include "mmgrad/tensor/tensor.h"

namespace mmgrad::nn {

using mmgrad::cross_entropy;
using mmgrad::CrossEntropyOptions;
using mmgrad::mse_loss;
using mmgrad::Reduction;

// CLIP caps the logit scale at 100 (a temperature of 0.01): exp(logit_scale) <= 100.
inline const double kMaxLogitScale = std::log(100.0);

struct ClipLossResult {
  Tensor loss;              // 0-d: (CE(image -> text) + CE(text -> image)) / 2
  Tensor logits_per_image;  // [N, N]: row i scores image i against every text
  Tensor logits_per_text;   // [N, N]: its transpose (a view)
};

// Symmetric InfoNCE over a batch of N matching (image, text) pairs, as in CLIP:
//   I = normalize(image_emb), T = normalize(text_emb)              (rows to unit length)
//   logits = exp(min(logit_scale, log 100)) * I T^T                (cosine similarities, scaled)
//   loss = (cross_entropy(logits, arange(N)) + cross_entropy(logits^T, arange(N))) / 2
// Pair i is the positive for row i and column i; the other N - 1 entries are negatives.
// image_emb, text_emb: [N, D] floating tensors of one dtype and device; logit_scale: a 0-d (or
// one-element) tensor of the same dtype and device, usually a learnable parameter holding
// log(1 / temperature).
//
// The cap uses the clamp op in the forward. At or below log(100) the gradient w.r.t. logit_scale
// flows as usual; above it the scale used is exactly 100 and that gradient is zero, so the loss
// stops pushing the parameter up (the logits, and every other gradient, are those of scale 100).
// CLIP and OpenCLIP also clamp the stored parameter after each optimizer step, so it never sits
// above the cap; CLIPLoss::clamp_logit_scale_() does that.
// For random embeddings the loss is about log N; for perfectly aligned, mutually orthogonal
// embeddings with a large scale it is about 0.
ClipLossResult clip_loss(const Tensor& image_emb, const Tensor& text_emb,
                         const Tensor& logit_scale);

// The three-way contrastive loss over three aligned modalities (AudioCLIP: audio, image, text):
// the average of the six directional InfoNCE terms a->b, b->a, a->c, c->a, b->c, c->b, each with
// logits exp(min(logit_scale, log 100)) * normalize(x) normalize(y)^T. Equivalently the mean of
// clip_loss over the three pairs. a, b, c: [N, D].
Tensor three_way_contrastive_loss(const Tensor& a, const Tensor& b, const Tensor& c,
                                  const Tensor& logit_scale);

// The cosine pair loss (an MSE form of the contrastive loss):
//   loss = mean_i (cos(a_i, b_i) - target_i)^2
// with target 1 for positive pairs ("same") and 0 for negatives, pushing the cosine similarity
// of positives to 1 and of negatives to 0 (orthogonal, not opposite). a, b: [N, D];
// same: [N], bool or floating (a soft target in [0, 1]).
Tensor pair_contrastive_loss(const Tensor& a, const Tensor& b, const Tensor& same);

// PyTorch's triplet margin loss:
//   loss_i = max(d(a_i, p_i) - d(a_i, n_i) + margin, 0),   d(x, y) = ||x - y + eps||_p
// (the eps inside the norm, as torch.pairwise_distance does, keeps the gradient finite when two
// embeddings coincide). With swap, d(a, n) is replaced by min(d(a, n), d(p, n)). Inputs: [N, D]
// (or one triplet [D]); reduction Mean (default), Sum or None ([N]).
Tensor triplet_margin_loss(const Tensor& anchor, const Tensor& positive, const Tensor& negative,
                           double margin = 1.0, double p = 2.0, double eps = 1e-6,
                           bool swap = false, Reduction reduction = Reduction::Mean);

// ---- CLIPLoss: the loss with its learnable temperature -----------------------------------------
// Holds logit_scale = log(1 / temperature) as a 0-d parameter (float32; module.to(kFloat64)
// converts it), initialised to log(1 / 0.07) ~ 2.659 as in CLIP. Put it in the optimizer with
// the encoders' parameters:
//
//   auto criterion = std::make_shared<nn::CLIPLoss>();
//   std::vector<Tensor> params = model.parameters();
//   params.push_back(criterion->logit_scale);
//   ... auto [loss, logits, logits_t] = (*criterion)(img_emb, txt_emb);
//   ... opt.step(); criterion->clamp_logit_scale_();   // optional, as OpenCLIP does
//
// With learnable = false the scale is a buffer: saved in the state dict, never trained (the
// fixed temperature of the AudioCLIP formulation).
class CLIPLoss : public Module {
 public:
  // Needs 0.01 <= init_temperature (a scale of at most 100) and a finite value.
  explicit CLIPLoss(double init_temperature = 0.07, bool learnable = true);

  using Module::forward;
  using Module::operator();
  // clip_loss(image_emb, text_emb, logit_scale).
  ClipLossResult forward(const Tensor& image_emb, const Tensor& text_emb) const;
  ClipLossResult operator()(const Tensor& image_emb, const Tensor& text_emb) const {
    return forward(image_emb, text_emb);
  }
  // three_way_contrastive_loss(a, b, c, logit_scale) with the same learnable scale.
  Tensor forward(const Tensor& a, const Tensor& b, const Tensor& c) const;

  // 1 / exp(min(logit_scale, log 100)): the temperature the loss currently uses.
  double temperature() const;
  // Clamps the stored logit_scale into [0, log 100] in place (CLIP / OpenCLIP do this after each
  // optimizer step, so the parameter never drifts beyond the range the forward can use).
  void clamp_logit_scale_();

  std::string name() const override { return "CLIPLoss"; }
  std::string extra_repr() const override;

  Tensor logit_scale;  // 0-d; a parameter when learnable, else a buffer

 private:
  bool learnable_;
};

}  // namespace mmgrad::nn
