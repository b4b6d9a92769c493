#include "08_alignment_quality/alignment.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>

#include "mmgrad/autograd/grad_mode.h"
#include "mmgrad/data/loader.h"
#include "mmgrad/metrics/metrics.h"
#include "mmgrad/ops/elementwise.h"
#include "mmgrad/ops/index.h"
#include "mmgrad/ops/matmul.h"
#include "mmgrad/ops/shape.h"

namespace mmgrad::align {

namespace {

// Cosine similarities of unit rows: a [N, D] x b [M, D] -> row-major N x M on the host.
std::vector<float> cosines(const Tensor& a, const Tensor& b, const char* op) {
  MMGRAD_CHECK(a.defined() && b.defined() && a.dim() == 2 && b.dim() == 2 &&
                   a.size(1) == b.size(1) && a.dtype() == b.dtype(),
               op, ": embeddings ", a.defined() ? describe(a) : "undefined", " and ",
               b.defined() ? describe(b) : "undefined",
               "; expected [N, D] and [M, D] of one dtype");
  NoGradGuard no_grad;
  return matmul(a.cpu(), b.cpu().t()).contiguous().to_vector<float>();
}

void check_labels(const std::vector<int64_t>& labels, int64_t n, int64_t C, const char* op) {
  MMGRAD_CHECK(static_cast<int64_t>(labels.size()) == n, op, ": ", labels.size(), " labels for ", n,
               " images");
  for (int64_t y : labels)
    MMGRAD_CHECK(y >= 0 && y < C, op, ": label ", y, " outside [0, ", C, ")");
}

std::string article(const std::string& name) {
  const char c = name.empty() ? 'x' : name[0];
  return (c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u') ? "an " : "a ";
}

}  // namespace

AlignmentReport alignment_test(const Tensor& image_emb, const std::vector<int64_t>& labels,
                               const Tensor& caption_emb, int64_t C, int64_t T) {
  MMGRAD_CHECK(C >= 2 && T >= 1 && caption_emb.defined() && caption_emb.dim() == 2 &&
                   caption_emb.size(0) == C * T,
               "alignment_test: ", C, " classes x ", T, " templates need [", C * T,
               ", D] caption embeddings, got ",
               caption_emb.defined() ? describe(caption_emb) : "undefined");
  const int64_t N = image_emb.defined() ? image_emb.size(0) : 0;
  MMGRAD_CHECK(N > 0, "alignment_test: no images");
  check_labels(labels, N, C, "alignment_test");
  const std::vector<float> s = cosines(image_emb, caption_emb, "alignment_test");
  const int64_t M = C * T;
  AlignmentReport r;
  r.margins.resize(N);
  r.winner_class.resize(N);
  std::vector<double> pass(C, 0), margin(C, 0), count(C, 0);
  std::vector<std::vector<int64_t>> beaten_by(C, std::vector<int64_t>(C, 0));
  int64_t passed = 0, passed_same = 0;
  for (int64_t i = 0; i < N; ++i) {
    const int64_t y = labels[i], t = i % T;
    const float* row = s.data() + i * M;
    const float match = row[y * T + t];
    float best = -2, best_same = -2;
    int64_t best_cls = -1;
    for (int64_t c = 0; c < C; ++c) {
      if (c == y) continue;
      for (int64_t u = 0; u < T; ++u) {
        const float v = row[c * T + u];
        if (v > best) best = v, best_cls = c;
        if (u == t) best_same = std::max(best_same, v);
      }
    }
    r.margins[i] = static_cast<double>(match) - best;
    r.winner_class[i] = best_cls;
    const bool ok = match > best;
    passed += ok;
    passed_same += match > best_same;
    pass[y] += ok;
    margin[y] += r.margins[i];
    count[y] += 1;
    if (!ok) ++beaten_by[y][best_cls];
  }
  r.accuracy = static_cast<double>(passed) / N;
  r.same_template_accuracy = static_cast<double>(passed_same) / N;
  double msum = 0;
  for (double m : r.margins) msum += m;
  r.mean_margin = msum / N;
  for (int64_t c = 0; c < C; ++c) {
    r.class_accuracy.push_back(count[c] > 0 ? pass[c] / count[c] : 0.0);
    r.class_margin.push_back(count[c] > 0 ? margin[c] / count[c] : 0.0);
    int64_t rival = -1, most = 0;
    for (int64_t k = 0; k < C; ++k)
      if (beaten_by[c][k] > most) most = beaten_by[c][k], rival = k;
    r.class_top_rival.push_back(rival);
  }
  return r;
}

NegationReport negation_test(const Tensor& image_emb, const std::vector<int64_t>& labels,
                             const Tensor& pos_emb, const Tensor& neg_emb, int64_t C) {
  MMGRAD_CHECK(pos_emb.defined() && neg_emb.defined() && pos_emb.dim() == 2 && neg_emb.dim() == 2 &&
                   pos_emb.size(0) == C && neg_emb.size(0) == C,
               "negation_test: need [", C, ", D] positive and negated caption embeddings, got ",
               pos_emb.defined() ? describe(pos_emb) : "undefined", " and ",
               neg_emb.defined() ? describe(neg_emb) : "undefined");
  const int64_t N = image_emb.defined() ? image_emb.size(0) : 0;
  MMGRAD_CHECK(N > 0, "negation_test: no images");
  check_labels(labels, N, C, "negation_test");
  const std::vector<float> sp = cosines(image_emb, pos_emb, "negation_test");
  const std::vector<float> sn = cosines(image_emb, neg_emb, "negation_test");
  NegationReport r;
  r.pos_score.assign(C, 0);
  r.neg_score.assign(C, 0);
  r.other_score.assign(C, 0);
  std::vector<double> count(C, 0);
  int64_t picks = 0, lowest = 0, beats = 0;
  for (int64_t i = 0; i < N; ++i) {
    const int64_t y = labels[i];
    const float* p = sp.data() + i * C;
    const float* n = sn.data() + i * C;
    r.pos_score[y] += p[y];
    r.neg_score[y] += n[y];
    double other = 0;
    float best_other_pos = -2;
    for (int64_t c = 0; c < C; ++c)
      if (c != y) other += p[c], best_other_pos = std::max(best_other_pos, p[c]);
    r.other_score[y] += other / static_cast<double>(C - 1);
    count[y] += 1;
    const int64_t top = std::max_element(n, n + C) - n;
    const int64_t bottom = std::min_element(n, n + C) - n;
    picks += top == y;
    lowest += bottom == y;
    beats += n[y] > best_other_pos;
  }
  for (int64_t c = 0; c < C; ++c) {
    const double k = std::max(1.0, count[c]);
    r.pos_score[c] /= k;
    r.neg_score[c] /= k;
    r.other_score[c] /= k;
  }
  r.picks_excluded = static_cast<double>(picks) / N;
  r.lowest_own = static_cast<double>(lowest) / N;
  r.beats_all_positives = static_cast<double>(beats) / N;
  return r;
}

std::string reverse_words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> w;
  for (std::string s; in >> s;) w.push_back(s);
  std::string out;
  for (size_t i = w.size(); i-- > 0;) out += w[i] + (i ? " " : "");
  return out;
}

SwapReport order_swap_test(clip::MiniCLIP& model, const clip::CaptionBank& captions,
                           const Tensor& image_emb, const std::vector<int64_t>& labels,
                           Device device) {
  const int64_t C = captions.num_classes();
  const int64_t N = image_emb.defined() ? image_emb.size(0) : 0;
  MMGRAD_CHECK(N > 0 && image_emb.dim() == 2, "order_swap_test: image embeddings ",
               image_emb.defined() ? describe(image_emb) : "undefined", "; expected [N, D]");
  check_labels(labels, N, C, "order_swap_test");
  // Caption c says "it is class c and not class (c + C/2) mod C"; its twin swaps the two names.
  std::vector<std::string> right, swapped, first, second;
  for (int64_t x = 0; x < C; ++x) {
    const std::string& X = captions.class_names[x];
    const std::string& Y = captions.class_names[(x + C / 2) % C];
    right.push_back("a photo of " + article(X) + X + " and not " + article(Y) + Y);
    swapped.push_back("a photo of " + article(Y) + Y + " and not " + article(X) + X);
    first.push_back("a photo of " + article(X) + X + " and " + article(Y) + Y);
    second.push_back("a photo of " + article(Y) + Y + " and " + article(X) + X);
  }
  auto scores = [&](const std::vector<std::string>& texts) {
    return cosines(image_emb, clip::encode_texts(model, captions.encode(texts), device),
                   "order_swap_test");
  };
  // Fraction of images where caption set a beats caption set b (each image against the
  // caption of its own class), and the two mean cosines.
  auto duel = [&](const std::vector<float>& a, const std::vector<float>& b, double& sa,
                  double& sb) {
    int64_t wins = 0;
    sa = sb = 0;
    for (int64_t i = 0; i < N; ++i) {
      const int64_t y = labels[i];
      wins += a[i * C + y] > b[i * C + y];
      sa += a[i * C + y];
      sb += b[i * C + y];
    }
    sa /= N;
    sb /= N;
    return static_cast<double>(wins) / N;
  };
  SwapReport r;
  r.accuracy = duel(scores(right), scores(swapped), r.true_score, r.swapped_score);
  r.control_accuracy =
      duel(scores(first), scores(second), r.control_first_score, r.control_second_score);
  r.example_true = right[7 % C];
  r.example_swapped = swapped[7 % C];
  return r;
}

OodReport ood_test(clip::MiniCLIP& model, const clip::CaptionBank& captions,
                   const data::Dataset& test, Device device) {
  MMGRAD_CHECK(test.size() > 0, "ood_test: empty test set");
  const int64_t C = captions.num_classes();
  const int64_t n = std::min<int64_t>(2000, test.size());
  OodReport r;
  r.temperature = model.criterion->temperature();
  const Tensor prompts = clip::class_embeddings(model, captions, {clip::kSingleTemplate}, device);
  const Tensor y = test.labels.narrow(0, 0, n);
  // Zero-shot accuracy and the mean top softmax probability (at the learned temperature).
  auto score = [&](const Tensor& images, double& acc, double& conf, std::vector<int64_t>* top) {
    const Tensor e = clip::encode_images(model, images, device);
    const std::vector<float> s = cosines(e, prompts, "ood_test");
    const int64_t m = e.size(0);
    std::vector<int64_t> pred(m);
    double csum = 0;
    for (int64_t i = 0; i < m; ++i) {
      const float* row = s.data() + i * C;
      const int64_t k = std::max_element(row, row + C) - row;
      // softmax of row / temperature, top entry: 1 / sum_j exp((s_j - s_k) / T).
      double z = 0;
      for (int64_t j = 0; j < C; ++j) z += std::exp((row[j] - row[k]) / r.temperature);
      csum += 1.0 / z;
      pred[i] = k;
    }
    conf = csum / m;
    if (top) *top = pred;
    if (acc >= 0) acc = metrics::accuracy(Tensor::from_vector(pred), y);
  };
  Tensor x = test.images.narrow(0, 0, n);
  score(x, r.normal_acc, r.normal_conf, nullptr);
  {
    NoGradGuard no_grad;
    Tensor inv = (1.0 - x).contiguous();  // a white background, dark garments
    score(inv, r.inverted_acc, r.inverted_conf, nullptr);
  }
  // Noise: no right answer exists (acc is not computed: -1).
  Generator gen(12345);
  Tensor noise = Tensor::rand({500, 1, 28, 28}, {}, &gen);
  double unused = -1;
  std::vector<int64_t> top;
  score(noise, unused, r.noise_conf, &top);
  std::vector<int64_t> counts(C, 0);
  for (int64_t k : top) ++counts[k];
  r.noise_top_class = std::max_element(counts.begin(), counts.end()) - counts.begin();
  r.noise_top_share = static_cast<double>(counts[r.noise_top_class]) / 500.0;
  return r;
}

Tensor invert_images(const Tensor& images) {
  MMGRAD_CHECK(images.defined() && images.dim() == 4 && images.dtype() == kFloat32,
               "invert_images: images ", images.defined() ? describe(images) : "undefined",
               "; expected float32 [N, C, H, W] with pixels in [0, 1]");
  NoGradGuard no_grad;
  return (1.0 - images).contiguous();
}

std::vector<int64_t> few_shot_indices(const Tensor& labels, int64_t num_classes, int64_t per_class,
                                      uint64_t seed) {
  MMGRAD_CHECK(labels.defined() && labels.dim() == 1 && labels.dtype() == kInt64,
               "few_shot_indices: labels ", labels.defined() ? describe(labels) : "undefined",
               "; expected int64 [N]");
  MMGRAD_CHECK(num_classes >= 1 && per_class >= 1, "few_shot_indices: num_classes ", num_classes,
               " and per_class ", per_class, " must be >= 1");
  const std::vector<int64_t> y = labels.cpu().to_vector<int64_t>();
  check_labels(y, static_cast<int64_t>(y.size()), num_classes, "few_shot_indices");
  // Walk a seeded shuffle of all rows and keep the first per_class of each class.
  std::vector<int64_t> taken(static_cast<size_t>(num_classes), 0), out;
  for (int64_t i : data::permutation(static_cast<int64_t>(y.size()), seed)) {
    if (taken[y[i]] < per_class) {
      ++taken[y[i]];
      out.push_back(i);
    }
  }
  for (int64_t c = 0; c < num_classes; ++c)
    MMGRAD_CHECK(taken[c] == per_class, "few_shot_indices: class ", c, " has ", taken[c],
                 " examples among ", y.size(), "; expected at least ", per_class);
  std::sort(out.begin(), out.end());
  return out;
}

double single_prompt_accuracy(clip::MiniCLIP& model, const clip::CaptionBank& captions,
                              const data::Dataset& set, Device device) {
  MMGRAD_CHECK(set.size() > 0, "single_prompt_accuracy: empty data set");
  const Tensor prompts = clip::class_embeddings(model, captions, {clip::kSingleTemplate}, device);
  const Tensor img = clip::encode_images(model, set.images, device);
  return metrics::accuracy(clip::zero_shot_predict(img, prompts), set.labels);
}

FineTuneCurve fine_tune(clip::MiniCLIP& model, const clip::CaptionBank& captions,
                        const Tensor& images, const Tensor& labels,
                        const clip::TrainOptions& options, const data::Dataset& domain_eval,
                        const data::Dataset& original_eval, int64_t eval_every, Device device) {
  MMGRAD_CHECK(eval_every >= 1, "fine_tune: eval_every ", eval_every, " must be >= 1");
  const auto t0 = std::chrono::steady_clock::now();
  FineTuneCurve curve;
  auto measure = [&](int64_t step) {
    curve.steps.push_back(static_cast<double>(step));
    curve.domain_acc.push_back(single_prompt_accuracy(model, captions, domain_eval, device));
    curve.original_acc.push_back(single_prompt_accuracy(model, captions, original_eval, device));
  };
  measure(0);
  // The loop of clip::train_clip (lesson 04), with measurements in between.
  clip::ClipBatches batches(images, labels, captions, options, device, "fine_tune");
  clip::ClipOptimizer optimizer(model, options);
  for (int64_t step = 0; step < options.steps; ++step) {
    model.train();
    clip::ClipBatches::Batch batch = batches.next(step);
    optimizer.zero_grad();
    Tensor img_emb = model.image_encoder->forward(batch.images);
    Tensor txt_emb = index_select(model.text_encoder->forward(batch.tokens), 0, batch.gather);
    Tensor loss = model.criterion->forward(img_emb, txt_emb).loss;
    loss.backward();
    optimizer.step();
    curve.losses.push_back(loss.item());
    MMGRAD_CHECK(std::isfinite(curve.losses.back()), "fine_tune: the loss became ",
                 curve.losses.back(), " at step ", step, " (", options.str(),
                 "); lower the learning rate");
    if ((step + 1) % eval_every == 0 || step + 1 == options.steps) measure(step + 1);
  }
  model.eval();
  curve.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return curve;
}

nn::StateDict snapshot(const nn::Module& model) {
  nn::StateDict sd = model.state_dict();
  for (auto& entry : sd) entry.second = entry.second.clone();
  return sd;
}

void histogram(const std::vector<double>& values, double lo, double hi, int bins,
               std::vector<double>& centers, std::vector<double>& counts) {
  MMGRAD_CHECK(bins >= 1 && hi > lo, "histogram: need bins >= 1 and hi > lo, got ", bins, ", [", lo,
               ", ", hi, "]");
  const double w = (hi - lo) / bins;
  centers.assign(bins, 0);
  counts.assign(bins, 0);
  for (int b = 0; b < bins; ++b) centers[b] = lo + (b + 0.5) * w;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    const int b = std::clamp(static_cast<int>(std::floor((v - lo) / w)), 0, bins - 1);
    counts[b] += 1;
  }
}

}  // namespace mmgrad::align
