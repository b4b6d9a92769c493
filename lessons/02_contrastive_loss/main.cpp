// Lesson 02: the contrastive (InfoNCE) loss from first principles.
//
// What you will see (each section is one function below, in this order; main() lists them):
//   1. the_alignment_problem: two encoders of two modalities give vectors that are not
//      comparable, even when they describe the same thing.
//   2. infonce_step_by_step: InfoNCE built on a batch of 4 pairs: normalise, cosine-similarity
//      matrix, scale by 1/temperature, softmax over each row, -log of the matching entry, both
//      directions averaged; then nn::clip_loss gives the same number.
//   3. learnable_temperature: the logit scale = log(1/temperature) and which way its gradient
//      points for random and for aligned embeddings.
//   4. random_embeddings: random embeddings give a loss of about log N (averaged over several
//      draws).
//   5. aligned_embeddings: perfectly aligned embeddings give a loss near 0.
//   6. temperature_sweep: a table and a line plot (temperature_sweep.svg).
//   7. learn_an_alignment, then show_the_alignment: two linear maps trained with InfoNCE bring
//      two synthetic modalities into one space (alignment_loss.svg). Similarity-matrix heatmaps
//      and the two embedding clouds (PCA to 2-D) before and after, all on held-out pairs.
//   8. summary: the targets.
//
// The last line is `result: random_loss=... log_n=... aligned_loss=... ...`.
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "common/lesson.h"
#include "mmgrad/metrics/metrics.h"
#include "mmgrad/metrics/pca.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/nn/layers.h"
#include "mmgrad/nn/losses.h"
#include "mmgrad/optim/optim.h"
#include "mmgrad/plot/figure.h"

using namespace mmgrad;

namespace {

// Prints a small matrix with row/column headers, each value with `decimals` digits.
void print_matrix(const char* title, const Tensor& m, const char* row_name, const char* col_name,
                  int decimals = 3) {
  std::vector<double> v = m.to_vector<double>();
  const int64_t rows = m.size(0), cols = m.size(1);
  const std::string cell = lesson::format(" {{:7.{}f}}", decimals);  // e.g. " {:7.3f}"
  lesson::print_inline("{}\n{:<6}", title, "");
  for (int64_t j = 0; j < cols; ++j) lesson::print_inline(" {:>7}", cat_str(col_name, j));
  lesson::print("");
  for (int64_t i = 0; i < rows; ++i) {
    lesson::print_inline("{:<6}", cat_str(row_name, i));
    for (int64_t j = 0; j < cols; ++j) lesson::print_inline(cell, v[i * cols + j]);
    lesson::print("");
  }
  lesson::print("");
}

// "[0.1655, 0.0620, ...]"
std::string fmt_vec(const Tensor& t) {
  std::string s = "[";
  for (double x : t.to_vector<double>())
    s += lesson::format(s.size() > 1 ? ", {:.4f}" : "{:.4f}", x);
  return s + "]";
}

// The symmetric InfoNCE loss at a fixed temperature (a plain number: no learnable scale).
double infonce_at(const Tensor& img, const Tensor& txt, double temperature) {
  NoGradGuard no_grad;
  Tensor scale = Tensor::scalar(std::log(1.0 / temperature), img.options());
  return nn::clip_loss(img, txt, scale).loss.item();
}

// Mean and standard deviation of a list of numbers.
std::pair<double, double> mean_std(const std::vector<double>& v) {
  double m = 0, s = 0;
  for (double x : v) m += x;
  m /= static_cast<double>(v.size());
  for (double x : v) s += (x - m) * (x - m);
  return {m, v.size() > 1 ? std::sqrt(s / static_cast<double>(v.size() - 1)) : 0.0};
}

// Synthetic two-modality data: each pair describes one "thing" u (a point in an 8-d latent
// space, near the centre of one of 8 concepts). Modality A ("image") sees u through one random
// linear sensor, modality B ("text") through another, each with its own offset (a "modality
// gap") and a little noise. A linear map per modality can undo its sensor: that is what we
// will learn.
struct World {
  static constexpr int64_t kLatent = 8, kDimA = 16, kDimB = 12, kConcepts = 8;
  static constexpr int64_t kShared = 3;  // the shared space the two maps project into
  Tensor centers, mix_a, mix_b, offset_a, offset_b;
  explicit World(Generator& gen) {
    centers = Tensor::randn({kConcepts, kLatent}, {}, &gen) * 1.5;
    mix_a = Tensor::randn({kLatent, kDimA}, {}, &gen) / std::sqrt(double(kLatent));
    mix_b = Tensor::randn({kLatent, kDimB}, {}, &gen) / std::sqrt(double(kLatent));
    offset_a = Tensor::randn({kDimA}, {}, &gen) * 1.0;
    offset_b = Tensor::randn({kDimB}, {}, &gen) * 1.0;
  }
  struct Pairs {
    Tensor a, b, concept_id;  // [n, 16], [n, 12], int64 [n]
  };
  // n pairs, concepts in turn (0, 1, ..., 7, 0, 1, ...).
  Pairs sample(int64_t n, Generator& gen) const {
    std::vector<int64_t> c(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) c[static_cast<size_t>(i)] = i % kConcepts;
    Pairs p;
    p.concept_id = Tensor::from_vector(c);
    Tensor u = index_select(centers, 0, p.concept_id) + Tensor::randn({n, kLatent}, {}, &gen) * 0.6;
    p.a = matmul(u, mix_a) + offset_a + Tensor::randn({n, kDimA}, {}, &gen) * 0.05;
    p.b = matmul(u, mix_b) + offset_b + Tensor::randn({n, kDimB}, {}, &gen) * 0.05;
    return p;
  }
};

// ---- 1. The alignment problem -------------------------------------------------------------------
void the_alignment_problem(Generator& gen) {
  lesson::section("1. The alignment problem");
  // An image encoder and a text encoder each turn their input into a vector, but each has its
  // own coordinate system. Even for the SAME concept, the two vectors need not point the same
  // way: their cosine similarity is as likely to be 0.1 as -0.3. Alignment means training the
  // encoders so that matching (image, text) pairs land close together in ONE shared space,
  // and non-matching pairs far apart. Below, 4 concepts seen through two random "encoders".
  Tensor meaning = Tensor::randn({4, 8}, {}, &gen);
  Tensor enc_img = Tensor::randn({8, 8}, {}, &gen), enc_txt = Tensor::randn({8, 8}, {}, &gen);
  Tensor img = normalize(matmul(meaning, enc_img), 1);
  Tensor txt = normalize(matmul(meaning, enc_txt), 1);
  print_matrix("cosine(image i, text j) from two unrelated encoders (rows: images):",
               matmul(img, txt.t()), "img", "txt");
  lesson::print(
      "The diagonal (matching pairs) is no higher than the rest: the two spaces are\n"
      "not aligned. The contrastive loss is how we fix that.");
}

// ---- 2. InfoNCE, step by step -------------------------------------------------------------------
void infonce_step_by_step(Generator& gen) {
  lesson::section("2. InfoNCE, step by step");
  // A batch of N pairs (image_i, text_i). For image i the "right answer" among all N texts is
  // text i: a classification problem with N classes whose correct class is i. InfoNCE is
  // exactly the cross-entropy of that problem, in both directions.
  const int64_t n4 = 4, d8 = 8;
  Tensor img_raw = Tensor::randn({n4, d8}, {}, &gen);
  Tensor txt_raw = img_raw + Tensor::randn({n4, d8}, {}, &gen) * 0.8;  // partly aligned
  const double tau = 0.07;                                             // CLIP's initial temperature

  // (a) Normalise every row to unit length, so a dot product is a cosine in [-1, 1].
  Tensor I = normalize(img_raw, 1), T = normalize(txt_raw, 1);
  lesson::print("(a) row norms after normalize: {}\n", sqrt(sum(square(I), {1})).str());
  // (b) The similarity matrix: S[i][j] = cos(image i, text j) = (I T^T)[i][j].
  Tensor S = matmul(I, T.t());
  print_matrix("(b) S = I T^T, cosine similarities (diagonal = matching pairs):", S, "img", "txt");
  // (c) Divide by the temperature: logits = S / tau. A small tau stretches the differences.
  Tensor logits = S * (1.0 / tau);
  print_matrix("(c) logits = S / tau, tau = 0.07 (logit scale 1/tau = 14.29):", logits, "img",
               "txt", 2);
  // (d) Softmax over each row: P[i][j] = exp(logits[i][j]) / sum_k exp(logits[i][k]), the
  //     model's belief that text j belongs to image i.
  Tensor P = softmax(logits, 1);
  print_matrix("(d) P = softmax over each row = p(text j | image i):", P, "img", "txt");
  // (e) The loss of row i is -log P[i][i]: small when the matching text gets the probability.
  //     log_softmax computes log P stably (it subtracts the row max before exp).
  Tensor labels = Tensor::arange(n4);
  Tensor row_loss = -gather(log_softmax(logits, 1), 1, labels.unsqueeze(1)).squeeze(1);
  double i2t = mean(row_loss).item();
  lesson::print("(e) -log P[i][i] per image: {} -> image->text loss = mean = {:.4f}",
                fmt_vec(row_loss), i2t);
  const int64_t worst = argmax(row_loss, 0).item<int64_t>();
  lesson::print(
      "    the costliest row is img{}: its own text gets P = {:.4f}, so -log P = {:.2f};\n"
      "    one confident mistake weighs more than several right answers.",
      worst, P.at({worst, worst}), row_loss.at({worst}));
  // (f) The other direction: for text j, which image? Softmax over each COLUMN, i.e. over
  //     the rows of logits^T.
  Tensor col_loss = -gather(log_softmax(logits.t(), 1), 1, labels.unsqueeze(1)).squeeze(1);
  double t2i = mean(col_loss).item();
  lesson::print("(f) -log P[j][j] per text (column softmax): {} -> text->image loss = {:.4f}",
                fmt_vec(col_loss), t2i);
  // (g) The symmetric loss averages the two directions.
  double by_hand = 0.5 * (i2t + t2i);
  double with_ce =
      0.5 * (cross_entropy(logits, labels).item() + cross_entropy(logits.t(), labels).item());
  Tensor logit_scale0 = Tensor::scalar(std::log(1.0 / tau));
  double with_clip = nn::clip_loss(img_raw, txt_raw, logit_scale0).loss.item();
  lesson::print("\n(g) symmetric loss = (image->text + text->image) / 2");
  lesson::print("    by hand (log_softmax + pick the diagonal) : {:.6f}", by_hand);
  lesson::print("    with cross_entropy(logits, arange(N))      : {:.6f}", with_ce);
  lesson::print("    with nn::clip_loss(image, text, log(1/tau)) : {:.6f}", with_clip);
  lesson::print("    largest difference: {:.1e} (float32 rounding)",
                std::max(std::abs(by_hand - with_ce), std::abs(by_hand - with_clip)));
}

// ---- 3. The learnable temperature ---------------------------------------------------------------
void learnable_temperature(Generator& gen) {
  lesson::section("3. The learnable temperature");
  // CLIP does not fix tau; it learns logit_scale = log(1/tau) along with the encoders.
  //  - Learning the log keeps tau positive whatever the optimizer does.
  //  - The scale is capped at 100 (tau >= 0.01) so the logits cannot blow up.
  // Its gradient says which way the loss wants the scale to move:
  //   dL/d(logit_scale) > 0: lower the scale (softer): the embeddings are not trustworthy
  //   dL/d(logit_scale) < 0: raise the scale (sharper): the matches are already right
  nn::CLIPLoss criterion(0.07);  // logit_scale = log(1/0.07) = 2.659, a learnable parameter
  lesson::print("nn::CLIPLoss: {}, logit_scale = {:.4f}\n", criterion.label(),
                criterion.logit_scale.item());
  struct Case {
    const char* name;
    Tensor img, txt;
  };
  Tensor rnd_img = Tensor::randn({32, 64}, {}, &gen), rnd_txt = Tensor::randn({32, 64}, {}, &gen);
  Tensor al_img = Tensor::randn({32, 64}, {}, &gen);
  Tensor al_txt = al_img + Tensor::randn({32, 64}, {}, &gen) * 0.8;
  lesson::print("{:<38} {:>8} {:>20} {}", "batch (N = 32, D = 64)", "loss", "dL/d(logit_scale)",
                "the loss wants");
  for (const Case& c : {Case{"random pairs", rnd_img, rnd_txt},
                        Case{"aligned pairs (text = image + noise)", al_img, al_txt}}) {
    criterion.zero_grad();
    nn::ClipLossResult r = criterion(c.img, c.txt);
    r.loss.backward();
    double gs = criterion.logit_scale.grad().item();
    lesson::print("{:<38} {:8.4f} {:20.4f} {}", c.name, r.loss.item(), gs,
                  gs > 0 ? "a higher temperature" : "a lower temperature");
  }
}

// ---- 4. Random embeddings: about log N ----------------------------------------------------------
// The batch of sections 4 and 5: N pairs of D-dimensional embeddings.
constexpr int64_t N = 32, D = 64;

struct RandomLoss {
  double log_n, tau1, tau007;  // log N, and the mean random loss at tau = 1 and 0.07
};

RandomLoss random_embeddings(Generator& gen, int draws) {
  lesson::section("4. Random embeddings give about log N");
  // If images and texts are unrelated, the model cannot do better than guessing among N
  // texts: probability 1/N for the right one, loss -log(1/N) = log N. Random vectors in 64-d
  // are nearly orthogonal (cosines ~ +-1/sqrt(64) = +-0.125), so at temperature 1 all logits
  // are ~0 and the softmax is ~uniform: loss ~ log N.
  // At tau = 0.07 the same cosines become logits of spread sigma ~ 0.125 / 0.07 ~ 1.8: the
  // model is now confidently WRONG about random pairs, and the loss rises above log N by
  // about sigma^2 / 2 (for large N): E[log sum_j exp(l_j)] ~ log N + sigma^2 / 2.
  const double log_n = std::log(static_cast<double>(N));
  std::vector<double> rand_t1, rand_t007;
  for (int k = 0; k < draws; ++k) {
    Tensor a = Tensor::randn({N, D}, {}, &gen), b = Tensor::randn({N, D}, {}, &gen);
    rand_t1.push_back(infonce_at(a, b, 1.0));
    rand_t007.push_back(infonce_at(a, b, 0.07));
  }
  auto [random_loss, random_sd] = mean_std(rand_t1);
  auto [random007, random007_sd] = mean_std(rand_t007);
  lesson::print("N = {} pairs, D = {}, averaged over {} random batches:", N, D, draws);
  lesson::print("  log N                          = {:.4f}", log_n);
  lesson::print("  random loss at tau = 1         = {:.4f} +- {:.4f}", random_loss, random_sd);
  lesson::print("  random loss at tau = 0.07      = {:.4f} +- {:.4f}  (log N + sigma^2/2 = {:.4f})",
                random007, random007_sd, log_n + 0.5 * std::pow(1.0 / std::sqrt(64.0) / 0.07, 2));
  lesson::print("\n{:<6} {:<8} {:<18}", "N", "log N", "random loss (tau 1)");
  for (int64_t n : {8, 32, 128, 512}) {
    std::vector<double> v;
    for (int k = 0; k < draws; ++k)
      v.push_back(
          infonce_at(Tensor::randn({n, D}, {}, &gen), Tensor::randn({n, D}, {}, &gen), 1.0));
    lesson::print("{:<6} {:<8.4f} {:.4f}", n, std::log(double(n)), mean_std(v).first);
  }
  lesson::print(
      "The loss of an untrained model is log N: doubling the batch adds log 2 = 0.69.\n"
      "That is the number to compare a training curve's start against.");
  return {log_n, random_loss, random007};
}

// ---- 5. Perfectly aligned embeddings: a low loss ------------------------------------------------
// Returns the mean loss of perfectly aligned batches at tau = 0.07.
double aligned_embeddings(Generator& gen, int draws) {
  lesson::section("5. Perfectly aligned embeddings give a low loss");
  // text_i = image_i exactly: the diagonal cosines are 1, the others ~ +-0.125.
  // At tau = 0.07 the right logit (14.3) beats the others (~ +-1.8) by a wide margin:
  // loss_i = log(1 + sum_{j != i} exp(l_ij - l_ii)) ~ (N - 1) e^{-14.3 + sigma^2/2} ~ 0.
  std::vector<double> al;
  for (int k = 0; k < draws; ++k) {
    Tensor a = Tensor::randn({N, D}, {}, &gen);
    al.push_back(infonce_at(a, a, 0.07));
  }
  auto [aligned_loss, aligned_sd] = mean_std(al);
  Tensor a1 = Tensor::randn({N, D}, {}, &gen);
  lesson::print("perfectly aligned, tau = 0.07: loss = {:.6f} +- {:.6f} (log N = {:.4f})",
                aligned_loss, aligned_sd, std::log(static_cast<double>(N)));
  lesson::print(
      "perfectly aligned, tau = 1   : loss = {:.4f}  (a high temperature cannot give a\n"
      "confident answer even when the match is perfect: about log(1 + (N-1)/e) = {:.4f})",
      infonce_at(a1, a1, 1.0), std::log(1.0 + (N - 1) / std::exp(1.0)));
  return aligned_loss;
}

// ---- 6. Temperature sweep -----------------------------------------------------------------------
void temperature_sweep(const lesson::Args& args, int draws) {
  lesson::section("6. Temperature sweep");
  // Three kinds of batch, each averaged over several draws:
  //   random   : unrelated images and texts
  //   noisy    : text = image + noise (cos(image_i, text_i) ~ 0.6): partly aligned
  //   aligned  : text = image
  const std::vector<double> temps = {1.0, 0.5, 0.3, 0.2, 0.1, 0.07, 0.05, 0.03, 0.02, 0.01};
  std::vector<double> inv_t, sweep_rand, sweep_noisy, sweep_al;
  lesson::print("{:<8} {:<12} {:<10} {:<10} {:<10}", "tau", "1/tau", "random", "noisy", "aligned");
  for (double t : temps) {
    std::vector<double> r, nz, a;
    Generator g2(args.seed + 77);  // the same batches for every temperature
    for (int k = 0; k < draws; ++k) {
      Tensor x = Tensor::randn({N, D}, {}, &g2), y = Tensor::randn({N, D}, {}, &g2);
      r.push_back(infonce_at(x, y, t));
      nz.push_back(infonce_at(x, x + y * 1.3, t));
      a.push_back(infonce_at(x, x, t));
    }
    inv_t.push_back(1.0 / t);
    sweep_rand.push_back(mean_std(r).first);
    sweep_noisy.push_back(mean_std(nz).first);
    sweep_al.push_back(mean_std(a).first);
    lesson::print("{:<8.2f} {:<12.1f} {:<10.4f} {:<10.4f} {:<10.6f}", t, 1.0 / t, sweep_rand.back(),
                  sweep_noisy.back(), sweep_al.back());
  }
  size_t best = static_cast<size_t>(std::min_element(sweep_noisy.begin(), sweep_noisy.end()) -
                                    sweep_noisy.begin());
  lesson::print(
      "\nLowering tau helps aligned pairs and hurts random ones. For the partly aligned\n"
      "batch the loss is lowest at tau = {:.2f}: the best temperature depends on how well\n"
      "the embeddings match, which is why CLIP learns it instead of fixing it.",
      temps[best]);
  plot::LinePlot p("InfoNCE loss vs temperature (N = 32, D = 64)", "1 / temperature (logit scale)",
                   "loss (log scale)");
  p.add_series("random pairs", inv_t, sweep_rand)
      .add_series("partly aligned", inv_t, sweep_noisy)
      .add_series("perfectly aligned", inv_t, sweep_al)
      .add_hline("log N", std::log(static_cast<double>(N)))
      .set_log_y()
      .set_ylim(1e-5, 100)
      .set_markers();
  p.save(args.path("temperature_sweep.svg"));
  lesson::print("wrote {}", args.path("temperature_sweep.svg"));
}

// ---- 7. Learning an alignment -------------------------------------------------------------------
// Held-out evaluation of the two maps: InfoNCE over the 256 held-out pairs as one batch
// (log 256 = 5.55 at chance), and retrieval: for each held-out A item, is its own B partner the
// most similar of all 256 B items (top-1), and is the most similar one at least of the same
// concept?
struct Eval {
  double loss, pair_top1, concept_top1;
  Tensor emb_a, emb_b;  // normalised held-out embeddings, on the CPU
};

Eval evaluate(nn::Linear& f_a, nn::Linear& f_b, nn::CLIPLoss& clip, const World::Pairs& test,
              Device dev) {
  NoGradGuard no_grad;
  Eval e;
  e.emb_a = normalize(f_a.forward(test.a.to(dev)), 1).cpu();
  e.emb_b = normalize(f_b.forward(test.b.to(dev)), 1).cpu();
  e.loss = nn::clip_loss(e.emb_a, e.emb_b, clip.logit_scale.cpu()).loss.item();
  Tensor sim = matmul(e.emb_a, e.emb_b.t());
  e.pair_top1 = metrics::recall_at_k(sim, 1);
  e.concept_top1 = metrics::recall_at_k(sim, test.concept_id, test.concept_id, 1);
  return e;
}

struct Alignment {
  World::Pairs test;          // the held-out pairs
  Eval before, after;         // the maps on them, before and after training
  double temperature = 0.07;  // the learned temperature
};

Alignment learn_an_alignment(const lesson::Args& args, Generator& gen, int train_steps) {
  lesson::section("7. Learning an alignment between two modalities");
  // Two synthetic modalities of 8 concepts (see World above): A is 16-d, B is 12-d. Two
  // linear maps, f_a: 16 -> 3 and f_b: 12 -> 3, project them into a shared 3-d space (small,
  // so that the 2-D picture below shows almost all of it); we train f_a, f_b and the
  // temperature with the InfoNCE loss on 1024 training pairs and evaluate on 256 held-out
  // pairs drawn separately from the same world.
  const Device dev = args.device;
  World world(gen);
  World::Pairs train = world.sample(1024, gen);
  Alignment al{world.sample(256, gen), {}, {}};
  auto f_a = std::make_shared<nn::Linear>(World::kDimA, World::kShared);
  auto f_b = std::make_shared<nn::Linear>(World::kDimB, World::kShared);
  auto clip = std::make_shared<nn::CLIPLoss>(0.07);
  f_a->to(dev);
  f_b->to(dev);
  clip->to(dev);
  std::vector<Tensor> params = f_a->parameters();
  for (const Tensor& p : f_b->parameters()) params.push_back(p);
  params.push_back(clip->logit_scale);
  optim::Adam opt(params, {.lr = 0.01});
  al.before = evaluate(*f_a, *f_b, *clip, al.test, dev);

  const int64_t batch = 64;
  std::vector<double> curve_x, curve_loss;
  lesson::print("{:<6} {:<12} {:<12}", "step", "batch loss", "temperature");
  for (int step = 0; step < train_steps; ++step) {
    // A batch: 64 random training pairs (the other 63 are each pair's negatives).
    Tensor idx = Tensor::randint(0, train.a.size(0), {batch}, DType::Int64, &gen);
    Tensor xa = index_select(train.a, 0, idx).to(dev), xb = index_select(train.b, 0, idx).to(dev);
    opt.zero_grad();
    nn::ClipLossResult r = (*clip)(f_a->forward(xa), f_b->forward(xb));
    r.loss.backward();
    opt.step();
    clip->clamp_logit_scale_();  // keep the scale in [1, 100] as CLIP does
    double l = r.loss.item();
    curve_x.push_back(step);
    curve_loss.push_back(l);
    if (step % (train_steps / 8) == 0 || step == train_steps - 1)
      lesson::print("{:<6} {:<12.4f} {:<12.4f}", step, l, clip->temperature());
  }
  al.after = evaluate(*f_a, *f_b, *clip, al.test, dev);
  al.temperature = clip->temperature();
  plot::LinePlot lp("InfoNCE training loss (batch of 64)", "step", "loss");
  lp.add_series("train batch loss", curve_x, curve_loss)
      .add_hline("log 64 (chance)", std::log(64.0));
  lp.save(args.path("alignment_loss.svg"));
  return al;
}

// The held-out numbers before and after, the similarity heatmaps and the two clouds.
void show_the_alignment(const lesson::Args& args, const Alignment& al) {
  lesson::print(
      "(the loss starts far above log 64 = 4.16: in a 3-d space random cosines spread\n"
      "widely, and at tau = 0.07 the untrained maps are confidently wrong, as in\n"
      "section 4)");
  lesson::print("\n{:<34} {:<10} {:<10}", "held-out (256 pairs)", "before", "after");
  lesson::print("{:<34} {:<10.4f} {:<10.4f}   (log 256 = {:.3f})", "InfoNCE loss", al.before.loss,
                al.after.loss, std::log(256.0));
  lesson::print("{:<34} {:<10.3f} {:<10.3f}   (chance 1/256 = 0.004)",
                "A->B top-1: its own partner", al.before.pair_top1, al.after.pair_top1);
  lesson::print("{:<34} {:<10.3f} {:<10.3f}   (chance ~1/8 = 0.125)", "A->B top-1: same concept",
                al.before.concept_top1, al.after.concept_top1);
  lesson::print("learned temperature: {:.4f} (started at 0.07)", al.temperature);

  // Heatmaps of 16 held-out pairs (2 per concept, sorted by concept): before training the
  // matrix is noise; after, the diagonal (each item's own partner) lights up, with lighter
  // blocks for the same concept.
  std::vector<int64_t> pick;
  for (int64_t c = 0; c < World::kConcepts; ++c)
    for (int64_t k = 0; k < 2; ++k) pick.push_back(c + k * World::kConcepts);
  Tensor pick_t = Tensor::from_vector(pick);
  std::vector<std::string> names;
  for (int64_t i : pick) names.push_back(cat_str("c", i % World::kConcepts));
  const std::pair<const char*, const Eval*> stages[] = {{"before", &al.before},
                                                        {"after", &al.after}};
  for (auto [tag, ev] : stages) {
    Tensor sim = matmul(index_select(ev->emb_a, 0, pick_t), index_select(ev->emb_b, 0, pick_t).t());
    plot::Heatmap hm(std::string("cosine similarity, held-out pairs, ") + tag + " training", sim,
                     names, names);
    hm.set_colormap(plot::Colormap::RedBlue)
        .set_range(-1, 1)
        .set_axis_labels("B item (text)", "A item (image)");
    std::string path = args.path(std::string("similarity_") + tag + ".svg");
    hm.save(path);
    lesson::print("wrote {}", path);
    double diag = 0, off = 0;
    std::vector<double> s = sim.to_vector<double>();
    for (int64_t i = 0; i < 16; ++i)
      for (int64_t j = 0; j < 16; ++j) (i == j ? diag : off) += s[i * 16 + j];
    lesson::print("  {}: mean diagonal cosine {:.3f}, mean off-diagonal {:.3f}", tag, diag / 16,
                  off / (16 * 15));
  }

  // The clouds: both modalities' held-out embeddings in one 2-D PCA picture (PCA fitted on
  // A and B together), coloured by concept; circles = A, squares = B.
  std::vector<std::string> concept_names;
  for (int64_t c = 0; c < World::kConcepts; ++c) concept_names.push_back(cat_str("concept ", c));
  for (auto [tag, ev] : stages) {
    metrics::PCAResult pc = metrics::pca(cat({ev->emb_a, ev->emb_b}, 0), 2);
    Tensor xy_a = pc.projected.narrow(0, 0, 256), xy_b = pc.projected.narrow(0, 256, 256);
    plot::ScatterPlot sp(std::string("shared space, held-out pairs, ") + tag + " training (PCA)",
                         "PC 1", "PC 2");
    sp.add_classes(xy_a, al.test.concept_id, concept_names, plot::Marker::Circle, "A")
        .add_classes(xy_b, al.test.concept_id, concept_names, plot::Marker::Square, "B")
        .set_point_size(3.5);
    std::string path = args.path(std::string("clouds_") + tag + ".svg");
    sp.save(path);
    lesson::print("wrote {}", path);
  }
  lesson::print(
      "Before: the two modalities form two unrelated clouds. After: each B square sits\n"
      "on the A circles of its own concept: one shared space.");
}

// ---- 8. Summary ---------------------------------------------------------------------------------
void summary(const RandomLoss& rnd, double aligned_loss, const Alignment& al) {
  lesson::section("8. Summary");
  const double rel = std::abs(rnd.tau1 - rnd.log_n) / rnd.log_n;
  const bool ok_random = rel < 0.05;
  const bool ok_aligned = aligned_loss < 0.1;
  const bool ok_learned = al.after.loss < 0.5 * al.before.loss && al.after.concept_top1 >= 0.8 &&
                          al.after.pair_top1 >= 0.25;
  lesson::print("random loss {:.4f} vs log N {:.4f}: {:.1f}% apart (target < 5%): {}", rnd.tau1,
                rnd.log_n, 100 * rel, ok_random ? "met" : "MISSED");
  lesson::print("perfectly aligned loss {:.6f} (target < 0.1): {}", aligned_loss,
                ok_aligned ? "met" : "MISSED");
  lesson::print(
      "learned alignment on held-out pairs: loss {:.3f} -> {:.3f} (target: halved), top-1\n"
      "same concept {:.3f} (target >= 0.8, chance 0.125), top-1 own partner {:.3f} (target\n"
      ">= 0.25, chance 0.004): {}",
      al.before.loss, al.after.loss, al.after.concept_top1, al.after.pair_top1,
      ok_learned ? "met" : "MISSED");

  lesson::Result()
      .add("random_loss", rnd.tau1)
      .add("log_n", rnd.log_n)
      .add("aligned_loss", aligned_loss)
      .add("random_loss_tau007", rnd.tau007)
      .add("heldout_loss_before", al.before.loss)
      .add("heldout_loss_after", al.after.loss)
      .add("heldout_pair_top1", al.after.pair_top1)
      .add("heldout_concept_top1", al.after.concept_top1)
      .add("learned_temperature", al.temperature)
      .print();
}

}  // namespace

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Args args = lesson::parse_args(
        argc, argv, "02_contrastive_loss",
        "the alignment problem and the InfoNCE loss with a learnable temperature",
        lesson::kUsesSteps);
    const int draws = args.quick ? 5 : 20;  // random batches averaged in 4-6
    const int train_steps = args.steps_or(args.quick ? 250 : 400);
    Generator gen(args.seed + 2);  // data for this lesson (the model uses the default one)

    the_alignment_problem(gen);
    infonce_step_by_step(gen);
    learnable_temperature(gen);
    RandomLoss rnd = random_embeddings(gen, draws);
    double aligned_loss = aligned_embeddings(gen, draws);
    temperature_sweep(args, draws);
    Alignment al = learn_an_alignment(args, gen, train_steps);
    show_the_alignment(args, al);
    summary(rnd, aligned_loss, al);
  });
}
