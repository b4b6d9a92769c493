// Hard-negative InfoNCE (the math is in hard_negatives.h) and the training loop of lesson 11.
#include "11_hard_negatives/hard_negatives.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>

#include "common/format.h"
#include "common/lesson.h"
#include "mmgrad/autograd/grad_mode.h"
#include "mmgrad/data/loader.h"
#include "mmgrad/nn/losses.h"
#include "mmgrad/ops/elementwise.h"
#include "mmgrad/ops/index.h"
#include "mmgrad/ops/loss.h"
#include "mmgrad/ops/matmul.h"
#include "mmgrad/ops/norm.h"
#include "mmgrad/ops/reduce.h"
#include "mmgrad/ops/shape.h"
#include "mmgrad/ops/softmax.h"
#include "mmgrad/optim/lr_scheduler.h"
#include "mmgrad/optim/optim.h"
#include "mmgrad/tensor/generator.h"

namespace mmgrad::hardneg {
namespace {

std::string describe_or(const Tensor& t) { return t.defined() ? describe(t) : "undefined"; }

// A square floating [N, N] matrix with N >= 1.
void check_square(const char* op, const Tensor& t, const char* arg) {
  MMGRAD_CHECK(t.defined() && t.dim() == 2 && t.size(0) == t.size(1) && t.size(0) >= 1 &&
                   t.is_floating_point(),
               op, ": ", arg, " is ", describe_or(t),
               "; expected a floating [N, N] matrix (row i: anchor i against every candidate)");
}

// A batch of embeddings [N, D] (N, D >= 1), floating.
void check_embeddings(const char* op, const Tensor& t, const char* arg) {
  MMGRAD_CHECK(
      t.defined() && t.dim() == 2 && t.size(0) >= 1 && t.size(1) >= 1 && t.is_floating_point(), op,
      ": ", arg, " is ", describe_or(t), "; expected floating [N, D] embeddings");
}

void check_labels(const char* op, const Tensor& labels, int64_t n, Device device) {
  MMGRAD_CHECK(labels.defined() && labels.dim() == 1 && labels.dtype() == kInt64 &&
                   labels.size(0) == n && labels.device() == device,
               op, ": labels are ", describe_or(labels), "; expected int64 [", n, "] on ",
               device_name(device));
}

// CLIP's capped scale exp(min(logit_scale, log 100)) as a 0-d tensor (as nn::clip_loss does).
Tensor capped_scale(const char* op, const Tensor& logit_scale, const Tensor& ref) {
  MMGRAD_CHECK(logit_scale.defined() && logit_scale.numel() == 1 && logit_scale.dim() <= 1 &&
                   logit_scale.dtype() == ref.dtype() && logit_scale.device() == ref.device(),
               op, ": logit_scale is ", describe_or(logit_scale),
               "; expected a 0-d tensor with the embeddings' dtype and device (", describe(ref),
               ")");
  Tensor s = exp(clamp_max(logit_scale, nn::kMaxLogitScale));
  return s.dim() == 0 ? s : s.reshape({});
}

// Both directions from the cosine matrix: s = scale * cos, and the mean of the two weighted
// cross-entropies.
Tensor symmetric_loss(const Tensor& cos, const Tensor& scale, const NegativeWeights& w,
                      Tensor* logits_out) {
  Tensor logits = mul(cos, scale);
  if (logits_out) *logits_out = logits;
  return mul(
      add(weighted_infonce(logits, w.i2t.offsets), weighted_infonce(logits.t(), w.t2i.offsets)),
      0.5);
}

void check_weights(const char* op, const NegativeWeights& w, const Tensor& cos) {
  for (const RowWeights* r : {&w.i2t, &w.t2i})
    MMGRAD_CHECK(r->offsets.defined() && r->offsets.shape() == cos.shape() &&
                     r->offsets.dtype() == cos.dtype() && r->offsets.device() == cos.device(),
                 op, ": weight offsets are ", describe_or(r->offsets), "; expected ", describe(cos),
                 " (one offset per image-text pair, from negative_weights)");
}

}  // namespace

std::string HardNegativeOptions::str() const {
  std::ostringstream s;
  s << "beta=" << beta << " mask=" << mask_same_class;
  return s.str();
}

RowWeights row_negative_weights(const Tensor& cos, const Tensor& exclude, double beta) {
  const char* op = "row_negative_weights";
  check_square(op, cos, "cos");
  MMGRAD_CHECK(std::isfinite(beta) && beta >= 0 && beta <= 1000, op, ": beta is ", beta,
               "; expected a concentration in [0, 1000] (0 = uniform weights)");
  MMGRAD_CHECK(!exclude.defined() || (exclude.dtype() == kBool && exclude.shape() == cos.shape() &&
                                      exclude.device() == cos.device()),
               op, ": exclude is ", describe_or(exclude), "; expected bool ", cos.shape_str(),
               " on ", device_name(cos.device()));
  NoGradGuard no_grad;  // the weights are constants for the loss: no graph is recorded
  const Tensor c = cos.detach();
  const int64_t n = c.size(0);
  // not_negative: the positive on the diagonal, plus any excluded pair.
  const Tensor diagonal = gt(Tensor::eye(n, c.options()), 0.5);
  const Tensor not_negative = exclude.defined() ? logical_or(diagonal, exclude) : diagonal;

  // log w_ij = beta c_ij - log sum_{k in neg(i)} exp(beta c_ik): a log-softmax over the
  // negatives of each row (the others pushed to kExcluded so they take no share of it).
  const Tensor log_w = log_softmax(masked_fill(mul(c, beta), not_negative, kExcluded), 1);
  // M_i, the number of negatives of row i (at least 1 to keep the log finite; a row without
  // negatives has every offset overwritten below anyway).
  const Tensor count =
      clamp_min(sum(logical_not(not_negative).to(c.dtype()), {1}, /*keepdim=*/true), 1.0);
  RowWeights r;
  // o_ij = log(M_i w_ij) on the negatives, kExcluded elsewhere, 0 for the positive.
  r.offsets =
      masked_fill(masked_fill(add(log_w, log(count)), not_negative, kExcluded), diagonal, 0.0);
  r.weights = masked_fill(exp(log_w), not_negative, 0.0);
  return r;
}

NegativeWeights negative_weights(const Tensor& cos, const Tensor& labels,
                                 const HardNegativeOptions& o) {
  const char* op = "negative_weights";
  check_square(op, cos, "cos");
  Tensor same;  // same[i][j]: image i and caption j show the same class
  if (o.mask_same_class) {
    check_labels(op, labels, cos.size(0), cos.device());
    same = eq(labels.unsqueeze(1), labels.unsqueeze(0));
  } else if (labels.defined()) {
    check_labels(op, labels, cos.size(0), cos.device());
  }
  NegativeWeights w;
  w.i2t = row_negative_weights(cos, same, o.beta);
  // Text -> image: the anchors are the captions, i.e. the rows of cos^T.
  w.t2i = row_negative_weights(cos.t(), same.defined() ? same.t() : Tensor(), o.beta);
  return w;
}

Tensor weighted_infonce(const Tensor& logits, const Tensor& offsets) {
  const char* op = "weighted_infonce";
  check_square(op, logits, "logits");
  MMGRAD_CHECK(offsets.defined() && offsets.shape() == logits.shape() &&
                   offsets.dtype() == logits.dtype() && offsets.device() == logits.device(),
               op, ": offsets are ", describe_or(offsets), "; expected ", describe(logits),
               " like the logits");
  MMGRAD_CHECK(!offsets.requires_grad(), op,
               ": offsets require grad; the importance weights must be constants (detach them)");
  const Tensor target =
      Tensor::arange(logits.size(0), TensorOptions(kInt64).device(logits.device()));
  // Row i: -a_ii + log sum_j exp(a_ij), with a = s + o and o_ii = 0.
  return cross_entropy(add(logits, offsets), target);
}

// Checks a batch of pairs (image i with text i: two floating [N, D] tensors alike in shape, dtype
// and device) and returns their cosine similarities [N, N], row = image, column = text.
static Tensor pair_cosines(const char* op, const Tensor& image_emb, const Tensor& text_emb) {
  check_embeddings(op, image_emb, "image_emb");
  check_embeddings(op, text_emb, "text_emb");
  MMGRAD_CHECK(image_emb.shape() == text_emb.shape() && image_emb.dtype() == text_emb.dtype() &&
                   image_emb.device() == text_emb.device(),
               op, ": image_emb ", describe(image_emb), " and text_emb ", describe(text_emb),
               " must match in shape, dtype and device (pair i = image i with text i)");
  return matmul(normalize(image_emb, 1), normalize(text_emb, 1).t());
}

Tensor weighted_clip_loss(const Tensor& image_emb, const Tensor& text_emb,
                          const Tensor& logit_scale, const NegativeWeights& weights,
                          Tensor* logits_out) {
  const char* op = "weighted_clip_loss";
  const Tensor cos = pair_cosines(op, image_emb, text_emb);
  const Tensor scale = capped_scale(op, logit_scale, image_emb);
  check_weights(op, weights, cos);
  return symmetric_loss(cos, scale, weights, logits_out);
}

HardNegativeLossResult hard_negative_clip_loss(const Tensor& image_emb, const Tensor& text_emb,
                                               const Tensor& logit_scale, const Tensor& labels,
                                               const HardNegativeOptions& options) {
  const char* op = "hard_negative_clip_loss";
  const Tensor cos = pair_cosines(op, image_emb, text_emb);
  const Tensor scale = capped_scale(op, logit_scale, image_emb);
  HardNegativeLossResult r;
  // The weights see the similarities but do not depend on them as far as autograd knows.
  r.weights = negative_weights(cos.detach(), labels, options);
  r.loss = symmetric_loss(cos, scale, r.weights, &r.logits);
  return r;
}

// ---- what the weights do -----------------------------------------------------------------------

int64_t count_same_class_pairs(const Tensor& labels) {
  MMGRAD_CHECK(labels.defined() && labels.dim() == 1 && labels.dtype() == kInt64,
               "count_same_class_pairs: labels are ", describe_or(labels), "; expected int64 [N]");
  const std::vector<int64_t> y = labels.to_vector<int64_t>();
  // Sort-and-count: a class with n_c members gives n_c (n_c - 1) ordered pairs.
  std::vector<int64_t> s = y;
  std::sort(s.begin(), s.end());
  int64_t pairs = 0;
  for (size_t i = 0; i < s.size();) {
    size_t j = i;
    while (j < s.size() && s[j] == s[i]) ++j;
    const auto c = static_cast<int64_t>(j - i);
    pairs += c * (c - 1);
    i = j;
  }
  return pairs;
}

double same_class_share(const Tensor& weights, const Tensor& labels) {
  const char* op = "same_class_share";
  check_square(op, weights, "weights");
  check_labels(op, labels, weights.size(0), labels.device());
  const int64_t n = weights.size(0);
  const std::vector<double> w = weights.detach().to_vector<double>();
  const std::vector<int64_t> y = labels.to_vector<int64_t>();
  double total = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (j != i && y[j] == y[i]) total += w[i * n + j];
  return total / static_cast<double>(n);
}

double same_class_push_share(const Tensor& logits, const Tensor& offsets, const Tensor& labels) {
  const char* op = "same_class_push_share";
  check_square(op, logits, "logits");
  check_labels(op, labels, logits.size(0), labels.device());
  MMGRAD_CHECK(offsets.defined() && offsets.shape() == logits.shape(), op, ": offsets are ",
               describe_or(offsets), "; expected ", logits.shape_str());
  const int64_t n = logits.size(0);
  std::vector<double> p;
  {
    NoGradGuard no_grad;
    p = softmax(add(logits.detach(), offsets.detach()), 1).to_vector<double>();
  }
  const std::vector<int64_t> y = labels.to_vector<int64_t>();
  double total = 0;
  int64_t rows = 0;
  for (int64_t i = 0; i < n; ++i) {
    double same = 0, all = 0;
    for (int64_t j = 0; j < n; ++j) {
      if (j == i) continue;
      all += p[i * n + j];
      if (y[j] == y[i]) same += p[i * n + j];
    }
    if (all > 0) {
      total += same / all;
      ++rows;
    }
  }
  return rows ? total / static_cast<double>(rows) : 0.0;
}

// ---- training -----------------------------------------------------------------------------------

RunLog train_with_objective(clip::MiniCLIP& model, const Tensor& images, const Tensor& labels,
                            const clip::CaptionBank& captions, const clip::TrainOptions& o,
                            const Objective& objective, Device device) {
  const char* op = "train_with_objective";
  // The batches and the optimizer of clip::train_clip: every objective trained with the same
  // options sees the same (image, caption) pairs in the same order.
  clip::ClipBatches batches(images, labels, captions, o, device, op);
  clip::ClipOptimizer optimizer(model, o);
  RunLog log;
  log.losses.reserve(static_cast<size_t>(o.steps));
  const HardNegativeOptions uniform;  // the implicit weights of standard InfoNCE
  const auto t0 = std::chrono::steady_clock::now();
  model.train();
  for (int64_t step = 0; step < o.steps; ++step) {
    clip::ClipBatches::Batch batch = batches.next(step);
    const std::vector<int64_t>& which = batch.which;
    // The false negatives of this batch: same-class pairs, and among them identical captions.
    int64_t same_caption = 0;
    for (size_t i = 0; i < which.size(); ++i)
      for (size_t j = 0; j < which.size(); ++j) same_caption += j != i && which[j] == which[i];
    const auto bn = static_cast<double>(which.size());
    Tensor yb = Tensor::from_vector(batch.labels).to(device);
    log.false_negatives.push_back(static_cast<double>(count_same_class_pairs(yb.cpu())) / bn);
    log.same_caption.push_back(static_cast<double>(same_caption) / bn);

    optimizer.zero_grad();
    Tensor img = model.image_encoder->forward(batch.images);
    Tensor txt = index_select(model.text_encoder->forward(batch.tokens), 0, batch.gather);
    Tensor loss, logits;
    NegativeWeights w;
    if (objective.standard) {
      nn::ClipLossResult r = nn::clip_loss(img, txt, model.criterion->logit_scale);
      loss = r.loss;
      logits = r.logits_per_image;
      NoGradGuard no_grad;  // only for the statistics: the uniform weights InfoNCE implies
      w = negative_weights(matmul(normalize(img.detach(), 1), normalize(txt.detach(), 1).t()),
                           Tensor(), uniform);
    } else {
      HardNegativeLossResult r =
          hard_negative_clip_loss(img, txt, model.criterion->logit_scale, yb, objective.hard);
      loss = r.loss;
      logits = r.logits;
      w = r.weights;
    }
    loss.backward();
    optimizer.step();
    log.losses.push_back(loss.item());
    MMGRAD_CHECK(std::isfinite(log.losses.back()), op, ": the ", objective.name, " loss became ",
                 log.losses.back(), " at step ", step, " (", o.str(), "); lower the learning rate");
    {
      // CLIP's loss on this batch's logits: both directions, the diagonal as the targets.
      NoGradGuard no_grad;
      const Tensor l = logits.detach();
      const Tensor target = Tensor::arange(l.size(0), TensorOptions(kInt64).device(l.device()));
      log.infonce.push_back(
          0.5 * (cross_entropy(l, target).item() + cross_entropy(l.t(), target).item()));
    }
    log.same_class_weight.push_back(
        0.5 * (same_class_share(w.i2t.weights, yb) + same_class_share(w.t2i.weights, yb)));
    log.same_class_push.push_back(0.5 * (same_class_push_share(logits, w.i2t.offsets, yb) +
                                         same_class_push_share(logits.t(), w.t2i.offsets, yb)));
    if (o.log_every > 0 && ((step + 1) % o.log_every == 0 || step == 0)) {
      const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      lesson::print("  step {:4}/{}  loss {:.4f}  temperature {:.4f}  same-class weight {:.2f}  {}",
                    step + 1, o.steps, log.losses.back(), model.criterion->temperature(),
                    log.same_class_weight.back(), lesson::progress_time(step + 1, o.steps, t));
      std::fflush(stdout);
    }
  }
  model.eval();
  log.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  log.final_temperature = model.criterion->temperature();
  return log;
}

}  // namespace mmgrad::hardneg
