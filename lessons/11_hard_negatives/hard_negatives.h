// Hard-negative mining for contrastive image-text training (lesson 11).
//
// CLIP's InfoNCE treats every other caption in the batch as an equally important negative. Hard-
// negative mining (here: the importance weighting of Robinson, Chuang, Sra & Jegelka, "Contrastive
// learning with hard negative samples", ICLR 2021) gives the negatives that the model currently
// finds most similar to the anchor more weight, so the gradient concentrates on the confusing
// pairs. This file holds that loss, written as a composition of mmgrad ops, the statistics the
// lesson prints about it, and a training loop that runs the standard and the hard-negative
// objectives on exactly the same batches.
//
// The math, for row i of the logit matrix s (s_ij = scale * cos(image_i, text_j), pair i is the
// positive):
//
//   standard InfoNCE:  L_i = -s_ii + log( e^{s_ii} + sum_{j != i} e^{s_ij} )
//   hard negatives:    L_i = -s_ii + log( e^{s_ii} + M_i * sum_{j in neg(i)} w_ij e^{s_ij} )
//
//   w_ij = exp(beta * c_ij) / sum_{k in neg(i)} exp(beta * c_ik),   c = cos, DETACHED
//
// neg(i) is the set of pairs used as negatives for row i (every j != i, or, with
// mask_same_class, only the j whose label differs from y_i), M_i = |neg(i)| its size, and
// beta >= 0 the concentration: the larger, the more of the weight the hardest negatives take
// (beta -> infinity keeps only the hardest one). The weights sum to one over neg(i) and are
// multiplied by M_i, so the negative term keeps the size it had in InfoNCE: beta = 0 without
// masking gives w_ij = 1 / (N - 1) and exactly the standard loss.
//
// The weights are an importance-sampling distribution over the negatives, not part of the model:
// they are computed from detached similarities, and no gradient flows through them. In logit
// space the weighted sum is sum_j exp(s_ij + log(M_i w_ij)), so the loss is an ordinary cross-
// entropy over shifted logits
//
//   a_ij = s_ij + o_ij,  o_ii = 0 (the positive is kept as it is),  o_ij = log(M_i w_ij),
//   o_ij = kExcluded (a large negative number: e^{o} = 0) for pairs left out of neg(i),
//
// and the gradient is that of cross-entropy: dL_i/ds_ij = softmax(a_i)_j for a negative j: each
// negative is pushed away in proportion to w_ij e^{s_ij}, its similarity counted twice (once by
// the softmax, once by the weight). The CLIP loss averages both directions, image -> text (rows
// of s) and text -> image (rows of s^T), each with its own weights.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "04_mini_clip/clip.h"
#include "mmgrad/tensor/tensor.h"

namespace mmgrad::hardneg {

// The offset given to pairs that are not negatives at all (masked false negatives): e^{-10000}
// is exactly 0 in float32 and float64, so they drop out of the softmax and get no gradient,
// without the infinities (and NaNs) that -inf would bring.
inline constexpr double kExcluded = -1.0e4;

struct HardNegativeOptions {
  double beta = 0.0;             // concentration of the weights on the cosine similarity
  bool mask_same_class = false;  // leave pairs with equal labels out of the negatives
  std::string str() const;       // "beta=8 mask=0"
};

// The detached offsets o (added to the logits) and the normalised weights w of one direction.
// Rows are anchors. weights: w_ij on the negatives, 0 on the diagonal and on excluded pairs, each
// row summing to 1 (or to 0 when a row has no negative left).
struct RowWeights {
  Tensor offsets;  // [N, N]
  Tensor weights;  // [N, N]
};

// The weights of the negatives of each row of `cos` [N, N] (rows = anchors, the diagonal the
// positives). exclude: bool [N, N] marking pairs that are not negatives (besides the diagonal),
// or undefined. Computed under NoGradGuard from a detached copy: the result never requires grad.
RowWeights row_negative_weights(const Tensor& cos, const Tensor& exclude, double beta);

// Both directions. cos [N, N]: cosine similarities, image i (rows) against text j (columns);
// labels int64 [N] (needed for mask_same_class; may be undefined otherwise).
struct NegativeWeights {
  RowWeights i2t;  // anchors = images, negatives = the other captions
  RowWeights t2i;  // anchors = captions, negatives = the other images
};
NegativeWeights negative_weights(const Tensor& cos, const Tensor& labels,
                                 const HardNegativeOptions& options);

// Mean over rows i of cross_entropy(logits_i + offsets_i, target i): the weighted InfoNCE of one
// direction. logits [N, N] (differentiable), offsets [N, N] (constant, same dtype and device).
Tensor weighted_infonce(const Tensor& logits, const Tensor& offsets);

// The symmetric loss with given weights:
//   s = min(exp(logit_scale), 100) * normalize(image_emb) normalize(text_emb)^T
//   loss = (weighted_infonce(s, w.i2t.offsets) + weighted_infonce(s^T, w.t2i.offsets)) / 2
// image_emb, text_emb [N, D]; logit_scale 0-d, all of one floating dtype and device. Writes s to
// logits_out when given. (With fixed weights this is a smooth function of the inputs: the one
// the lesson's test gradchecks.)
Tensor weighted_clip_loss(const Tensor& image_emb, const Tensor& text_emb,
                          const Tensor& logit_scale, const NegativeWeights& weights,
                          Tensor* logits_out = nullptr);

struct HardNegativeLossResult {
  Tensor loss;              // 0-d
  Tensor logits;            // [N, N] image rows, text columns
  NegativeWeights weights;  // the detached weights that were used
};

// The hard-negative CLIP loss: weights from the detached cosine similarities of this batch,
// then weighted_clip_loss. labels: int64 [N] (required when options.mask_same_class).
HardNegativeLossResult hard_negative_clip_loss(const Tensor& image_emb, const Tensor& text_emb,
                                               const Tensor& logit_scale, const Tensor& labels,
                                               const HardNegativeOptions& options);

// ---- what the weights do -----------------------------------------------------------------------

// The false negatives of a batch: the number of ordered pairs (i, j), i != j, whose labels are
// equal. InfoNCE (and unmasked hard-negative weighting) treats every one of them as a negative
// although image i matches caption j just as well as its own. labels int64 [N].
int64_t count_same_class_pairs(const Tensor& labels);

// Mean over rows i of sum_{j != i, labels_j == labels_i} weights_ij: how much of a row's negative
// weight lands on same-class pairs, i.e. on "negatives" that are not negatives at all.
// weights [N, N] (rows summing to 1 over the negatives), labels int64 [N].
double same_class_share(const Tensor& weights, const Tensor& labels);

// The share of the loss's push on negatives that hits same-class pairs: with p = softmax(logits +
// offsets) by rows, mean over rows of sum_{j != i same class} p_ij / sum_{j != i} p_ij (the
// gradient of L_i with respect to a negative logit s_ij is p_ij).
double same_class_push_share(const Tensor& logits, const Tensor& offsets, const Tensor& labels);

// ---- training -----------------------------------------------------------------------------------

// Which objective a run trains with.
struct Objective {
  std::string name;          // "InfoNCE", "hard negatives", ...
  bool standard = true;      // true: the library's nn::clip_loss (standard InfoNCE)
  HardNegativeOptions hard;  // used when !standard
};

struct RunLog {
  std::vector<double> losses;  // the objective's loss, one per step
  // Per step, the plain InfoNCE (CLIP's loss) of the same batch and logits, whatever the
  // objective: the one curve the three runs can be compared on.
  std::vector<double> infonce;
  // Per step, both directions averaged: the share of the negative weight (same_class_share) and
  // of the push (same_class_push_share) that went to same-class pairs. For the standard loss the
  // weights are the implicit uniform 1 / (N - 1).
  std::vector<double> same_class_weight, same_class_push;
  // Per step: false negatives per anchor (count_same_class_pairs / N), and how many of them
  // carry the very same caption text as the anchor's own caption (identical token rows).
  std::vector<double> false_negatives, same_caption;
  double seconds = 0.0;
  double final_temperature = 0.0;
};

// Trains `model` exactly as clip::train_clip does (Adam(W) with its schedule, the same shuffled
// batches and caption templates for a given options.seed, the logit scale clamped after each
// step), with `objective` as the loss. So two runs that differ only in the objective see the same
// batches in the same order. images [N, 1, 28, 28] float32, labels int64 [N] on the CPU; batches
// go to `device`. The model is left in eval mode.
RunLog train_with_objective(clip::MiniCLIP& model, const Tensor& images, const Tensor& labels,
                            const clip::CaptionBank& captions, const clip::TrainOptions& options,
                            const Objective& objective, Device device = kCPU);

}  // namespace mmgrad::hardneg
