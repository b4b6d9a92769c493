// Lesson 17: a tiny DALL-E 2 (unCLIP). Text -> CLIP text embedding -> prior -> CLIP image
// embedding -> diffusion decoder -> image, at Fashion-MNIST size.
//
// What you will see:
//   - the CLIP of lesson 04 (a small one trained here, or lesson 04's own with --clip-ckpt) gives
//     every caption a text embedding and every picture an image embedding;
//   - the prior: a small MLP that maps a caption's text embedding to an image embedding, against
//     the trivial "use the text embedding itself" baseline, by cosine to the true image embedding
//     on held-out pictures (CLIP's text and image embeddings sit apart: the modality gap);
//   - the forward noising process of a diffusion model: a picture dissolving into noise;
//   - the decoder: a small U-Net trained to predict the noise in a noisy 16 x 16 picture, given the
//     step (sinusoidal timestep embedding) and the picture's CLIP image embedding; 20% of the
//     time the embedding is dropped, so the same network is also an unconditional model;
//   - sampling with DDIM (20 deterministic steps instead of 1000) and classifier-free guidance:
//     eps = eps_uncond + s (eps_cond - eps_uncond), s = 1 is no guidance;
//   - samples for every class prompt, one prompt with different seeds, and at each guidance
//     scale: the fraction of samples a CNN trained on real pictures (and CLIP zero-shot) puts in
//     the prompt's class, and the diversity of the samples (mean pairwise distance) next to that
//     of real pictures of the class: what guidance buys and what it costs.
// Measured at the defaults (1 thread, machine loaded by other jobs), --seed 0 / 1: prior cosine
// 0.942 / 0.938 vs the text-embedding baseline 0.842 / 0.840; CNN accuracy of the samples at
// s = 1 / 3 / 6: 0.450 / 0.735 / 0.805 and 0.410 / 0.650 / 0.690 (target >= 0.8 at s = 6: met on
// seed 0, missed by 0.11 on seed 1; coat and shirt are the weak prompts on both seeds, 3 and 5
// of 20 samples read as their class on seed 0, 0 and 3 on seed 1); diversity 5.25 / 3.98 / 3.25
// and 4.96 / 4.01 / 3.43 against 4.05 for real pictures. Accuracy rose and diversity fell with s
// on both seeds. CPU time 119-145 s (user + sys), most of it the decoder.
// main() at the bottom lists the sections in order, one function (a notebook cell) each.
//
// Run: ./build/lessons/17_tiny_dalle2 [--decoder-steps N] [--clip-ckpt PATH] [--quick]
// Files: out/17_tiny_dalle2/{noising.png, samples_s*.png, seeds.png, loss.svg, guidance.svg}.
#include <algorithm>
#include <cmath>
#include <ctime>
#include <string>
#include <vector>

#include "04_mini_clip/clip.h"
#include "17_tiny_dalle2/diffusion.h"
#include "common/lesson.h"
#include "mmgrad/data/fashion_mnist.h"
#include "mmgrad/data/image.h"
#include "mmgrad/data/loader.h"
#include "mmgrad/metrics/metrics.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/plot/figure.h"

using namespace mmgrad;

namespace {

constexpr int64_t kSize = 16;  // the decoder's pictures: 16 x 16
constexpr int64_t kClasses = 10;

// ===========================================================================================
// The settings
// ===========================================================================================

struct Setup {
  lesson::Args args;
  clip::FmnistClipConfig cfg;
  std::string clip_ckpt;  // "" : train a small CLIP here
  int64_t train_images = 0, test_images = 0;
  int64_t prior_steps = 0, decoder_steps = 0, batch = 0, cnn_steps = 0;
  int64_t per_class = 0;  // samples per prompt for the measurements
  int64_t ddim_steps = 20;
  int64_t base = 16;
  double lr = 2e-3;
  double p_uncond = 0.2;  // classifier-free guidance: how often the condition is dropped
  std::vector<double> scales = {1.0, 3.0, 6.0};
};

Setup read_flags(int argc, char** argv) {
  Setup s;
  s.args = lesson::parse_args(
      argc, argv, "17_tiny_dalle2",
      "a tiny DALL-E 2: CLIP embeddings, a prior, a diffusion decoder, classifier-free guidance",
      lesson::kUsesData,
      {{"--decoder-steps N", "training steps of the diffusion decoder (default 400; quick 60)"},
       {"--train-images N", "training pictures (default 20000; quick 3000)"},
       {"--base N", "U-Net channels at full resolution (default 16; quick 8)"},
       {"--batch N", "decoder batch size (default 128; quick 32)"},
       {"--lr X", "decoder peak learning rate (default 2e-3; quick 4e-3)"},
       {"--per-class N",
        "samples per prompt and guidance scale for the table (default 20; quick 10)"},
       {"--cnn-steps N", "training steps of the judging CNN (default 600; quick 60)"},
       {"--clip-steps N", "training steps of the small CLIP (default 150; quick 40)"},
       {"--clip-ckpt PATH",
        "lesson 04's CLIP to use (e.g. out/04_mini_clip/fmnist_clip.ckpt); default: train a "
        "small CLIP here"}});
  const bool q = s.args.quick;
  s.clip_ckpt = s.args.get_string("--clip-ckpt", "");
  // Quick mode (the test's setting): everything small, a few seconds in all. It cannot draw
  // good pictures; it shows that each part works.
  s.train_images = s.args.get_int("--train-images", q ? 3000 : 20000);
  s.test_images = q ? 500 : 2000;
  s.decoder_steps = s.args.get_int("--decoder-steps", q ? 60 : 400);
  s.per_class = s.args.get_int("--per-class", q ? 10 : 20);
  s.prior_steps = q ? 100 : 300;
  s.cnn_steps = s.args.get_int("--cnn-steps", q ? 60 : 600);
  s.batch = s.args.get_int("--batch", q ? 32 : 128);
  s.base = s.args.get_int("--base", q ? 8 : 16);
  s.lr = s.args.get_double("--lr", q ? 4e-3 : 2e-3);
  if (q) {
    s.ddim_steps = 8;
    s.scales = {1.0, 4.0};
  }
  MMGRAD_CHECK(s.train_images >= s.batch && s.train_images <= 60000, "--train-images ",
               s.train_images, ": expected ", s.batch, " to 60000");
  MMGRAD_CHECK(std::isfinite(s.lr) && s.lr > 0 && s.lr < 1, "--lr ", s.lr,
               ": expected a learning rate in (0, 1)");
  MMGRAD_CHECK(s.base >= 4 && s.base % 4 == 0 && s.base <= 256, "--base ", s.base,
               ": expected a multiple of 4 from 4 to 256 (GroupNorm uses 4 groups)");
  MMGRAD_CHECK(s.decoder_steps >= 1, "--decoder-steps ", s.decoder_steps, ": expected >= 1");
  MMGRAD_CHECK(s.per_class >= 2 && s.per_class <= 100, "--per-class ", s.per_class,
               ": expected 2 to 100 (pairwise distances need two samples)");
  if (!s.clip_ckpt.empty() && !q) {
    // Lesson 04's model: its own recipe, so that the checkpoint's signature matches.
    s.cfg = clip::default_fmnist_config(s.args);
  } else {
    // A small CLIP (lesson 12's size) that trains in a few seconds.
    s.cfg = clip::default_fmnist_config(s.args);
    s.cfg.image.channels = {8, 16, 32};
    s.cfg.image.embed_dim = s.cfg.text.embed_dim = 32;
    s.cfg.text.width = 32;
    s.cfg.train.steps = s.args.get_int("--clip-steps", q ? 40 : 150);
    s.cfg.train.batch_size = q ? 128 : 256;
    s.cfg.train.warmup_steps = 10;
    s.cfg.train_limit = q ? 2000 : 6000;
  }
  return s;
}

// Fashion-MNIST [N, 1, 28, 28] in [0, 1] -> the decoder's [N, 1, 16, 16] in [-1, 1]: adaptive
// average pooling (each output pixel the mean of a 1.75 x 1.75 window, so nothing aliases).
Tensor to_decoder(const Tensor& x28) { return adaptive_avg_pool2d(x28, 16) * 2.0 - 1.0; }
// And back, for CLIP: [-1, 1] 16 x 16 -> [0, 1] 28 x 28 (bilinear).
Tensor to_clip(const Tensor& x16) {
  return interpolate((x16 + 1.0) * 0.5, {.size = {28, 28}, .mode = "bilinear"});
}
// [-1, 1] pictures as tiles in [0, 1] for the image grids.
std::vector<Tensor> tiles(const Tensor& x16) {
  Tensor v = clamp((x16.cpu() + 1.0) * 0.5, 0.0, 1.0);
  std::vector<Tensor> out;
  for (int64_t i = 0; i < v.size(0); ++i) out.push_back(v.select(0, i));
  return out;
}

// ===========================================================================================
// 1. The data and the CLIP
// ===========================================================================================

struct World {
  clip::CaptionBank captions;
  clip::ClipModel clip;
  data::Dataset train, test;
  Tensor train16, test16;              // decoder pictures
  Tensor train_img_emb, test_img_emb;  // CLIP image embeddings [N, D]
  Tensor caption_emb;                  // [classes * templates, D], row = captions.row(c, t)
  Tensor class_emb;                    // prompt-ensemble class embeddings for zero-shot [10, D]
  double clip_zero_shot = 0, clip_zero_shot_16 = 0;
  int64_t D = 0;
};

World load_world(const Setup& s) {
  lesson::section("1. The data and the CLIP that gives text and images one embedding space");
  World w;
  w.captions = clip::make_fmnist_captions();
  if (s.clip_ckpt.empty() || s.args.quick) {
    w.clip = clip::get_fmnist_clip(s.args, s.cfg, w.captions, "none");
  } else {
    // Lesson 04's trained model, or a clear error (training it here would take minutes).
    w.clip.model = clip::make_fmnist_clip(s.cfg, w.captions);
    const std::string why =
        clip::try_load_clip_checkpoint(*w.clip.model, s.cfg, w.captions, s.clip_ckpt);
    MMGRAD_CHECK(why.empty(), "--clip-ckpt ", s.clip_ckpt, ": ", why,
                 " (run lesson 04 first, or leave the flag out to train a small CLIP here)");
    w.clip.from_checkpoint = true;
    w.clip.model->to(s.args.device);
    w.clip.model->eval();
    lesson::print("Loaded lesson 04's CLIP from {}.", s.clip_ckpt);
  }
  w.train = data::load_fashion_mnist(data::Split::Train, s.args.data, s.train_images);
  w.test = data::load_fashion_mnist(data::Split::Test, s.args.data, s.test_images);
  w.train16 = to_decoder(w.train.images);
  w.test16 = to_decoder(w.test.images);
  clip::MiniCLIP& m = *w.clip.model;
  w.train_img_emb = clip::encode_images(m, w.train.images, s.args.device);
  w.test_img_emb = clip::encode_images(m, w.test.images, s.args.device);
  w.caption_emb = clip::encode_texts(m, w.captions.tokens, s.args.device);
  w.class_emb = clip::class_embeddings(m, w.captions, clip::ensemble_template_ids(), s.args.device);
  w.D = w.train_img_emb.size(1);
  w.clip_zero_shot =
      metrics::accuracy(clip::zero_shot_predict(w.test_img_emb, w.class_emb), w.test.labels);
  const Tensor round_trip = clip::encode_images(m, to_clip(w.test16), s.args.device);
  w.clip_zero_shot_16 =
      metrics::accuracy(clip::zero_shot_predict(round_trip, w.class_emb), w.test.labels);
  lesson::print(
      "Embedding size D = {}. CLIP zero-shot accuracy on {} test pictures: {:.3f} at 28 x 28,\n"
      "{:.3f} after the trip to the decoder's 16 x 16 and back (the best CLIP can score on\n"
      "generated pictures). Decoder data: {} training pictures, pooled to 16 x 16 in [-1, 1].",
      w.D, w.test.size(), w.clip_zero_shot, w.clip_zero_shot_16, w.train.size());
  return w;
}

// ===========================================================================================
// 2. The prior: text embedding -> image embedding
// ===========================================================================================

struct PriorResult {
  std::shared_ptr<dalle::Prior> prior;
  double cosine = 0, baseline = 0;
  std::vector<double> losses;
};

// The held-out pairs: test picture n with a caption of its class under template n % T.
Tensor caption_rows_for(const World& w, const Tensor& labels, int64_t offset) {
  const std::vector<int64_t> y = labels.to_vector<int64_t>();
  std::vector<int64_t> rows;
  for (size_t n = 0; n < y.size(); ++n)
    rows.push_back(
        w.captions.row(y[n], static_cast<int64_t>((n + offset) % w.captions.num_templates())));
  return index_select(w.caption_emb, 0, Tensor::from_vector(rows));
}

double mean_cosine(const Tensor& a, const Tensor& b) { return sum(a * b, {1}).mean().item(); }

PriorResult train_prior(const Setup& s, const World& w) {
  lesson::section("2. The prior: from a caption's text embedding to an image embedding");
  PriorResult r;
  manual_seed(s.args.seed * 7 + 3);
  r.prior = std::make_shared<dalle::Prior>(w.D, 128);
  optim::Adam opt(r.prior->parameters(), {.lr = 3e-3});
  const int64_t N = w.train.size(), B = 256;
  for (int64_t step = 0; step < s.prior_steps; ++step) {
    const std::vector<int64_t> perm = data::permutation(N, s.args.seed + 11, step);
    Tensor idx = Tensor::from_vector(std::vector<int64_t>(perm.begin(), perm.begin() + B));
    Tensor img = index_select(w.train_img_emb, 0, idx);
    Tensor txt = caption_rows_for(w, index_select(w.train.labels, 0, idx), step);
    // Maximise the cosine to the true image embedding (both are unit vectors).
    Tensor loss = 1.0 - sum(r.prior->forward(txt) * img, {1}).mean();
    opt.zero_grad();
    loss.backward();
    opt.step();
    r.losses.push_back(loss.item());
  }
  NoGradGuard ng;
  const Tensor txt = caption_rows_for(w, w.test.labels, 0);
  r.baseline = mean_cosine(txt, w.test_img_emb);
  r.cosine = mean_cosine(r.prior->forward(txt), w.test_img_emb);
  lesson::print(
      "Prior: {} ({} parameters), {} steps of {} (caption, picture) pairs, loss 1 - cosine.\n"
      "Mean cosine to the true image embedding on {} held-out pictures with captions:\n"
      "  baseline, the caption's text embedding itself: {:.3f}\n"
      "  the prior's predicted image embedding:         {:.3f}\n"
      "CLIP's loss only asks a picture to be nearer its own caption than the others, not to sit\n"
      "on top of it: text and image embeddings live in two separate cones (the modality gap).\n"
      "The prior learns to carry a caption over to where pictures of it live. With one caption\n"
      "per class it can only learn the centre of the class's pictures; DALL-E 2's diffusion\n"
      "prior samples a different image embedding each time instead (here the decoder's noise\n"
      "supplies the variety).",
      "MLP " + std::to_string(w.D) + " -> 128 -> 128 -> " + std::to_string(w.D) + " + residual",
      r.prior->num_parameters(), s.prior_steps, B, w.test.size(), r.baseline, r.cosine);
  return r;
}

// ===========================================================================================
// 3. The forward process: a picture dissolving into noise
// ===========================================================================================

void show_noising(const Setup& s, const World& w, const dalle::Schedule& sched) {
  lesson::section("3. The forward process: q(x_t | x_0) adds noise step by step");
  const std::vector<int64_t> ts = {0, 100, 200, 400, 600, 800, 900, 999};
  std::vector<Tensor> cells;
  std::vector<std::string> labels;
  Generator g(s.args.seed + 5);
  for (int64_t k : {0, 1, 2}) {
    const Tensor x0 = w.test16.narrow(0, k, 1);
    const Tensor eps = Tensor::randn(x0.shape(), {}, &g);
    for (int64_t t : ts) {
      cells.push_back(tiles(dalle::add_noise(sched, x0, {t}, eps))[0]);
      labels.push_back(lesson::format("t={}", t));
    }
  }
  data::GridOptions o;
  o.labels = labels;
  o.scale = 4;
  o.title =
      "x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, the same eps along each row (shown "
      "clipped to [-1, 1])";
  data::save_image_grid(cells, static_cast<int64_t>(ts.size()), s.args.path("noising.png"), o);
  lesson::print("Cosine schedule over T = {} steps; what is left of the picture, sqrt(abar_t):",
                sched.T);
  for (int64_t t : ts) lesson::print_inline("  t={}: {:.2f}", t, std::sqrt(sched.alpha_bar[t]));
  lesson::print("\nFigure: {}", s.args.path("noising.png"));
}

// ===========================================================================================
// 4. The decoder: a U-Net that predicts the noise, trained with dropped conditions
// ===========================================================================================

struct Decoder {
  std::shared_ptr<dalle::UNet> unet;
  std::vector<double> losses;
  double first_loss = 0, last_loss = 0;
};

double window_mean(const std::vector<double>& v, size_t from, size_t n) {
  double sum = 0;
  for (size_t i = from; i < from + n; ++i) sum += v[i];
  return sum / static_cast<double>(n);
}

Decoder train_decoder(const Setup& s, const World& w, const dalle::Schedule& sched) {
  lesson::section("4. The decoder: a U-Net that predicts the noise, given the image embedding");
  Decoder d;
  manual_seed(s.args.seed * 7 + 1);
  d.unet = std::make_shared<dalle::UNet>(dalle::UNetOptions{.base = s.base, .cond_dim = w.D});
  d.unet->to(s.args.device);
  lesson::print(
      "U-Net ({}), {} parameters:\n16x16 -> 8x8 -> 4x4 and back up, with skips; every block "
      "adds a per-channel shift computed from MLP(sinusoidal code of t) + Linear(image "
      "embedding).\n"
      "Training: {} steps of {} pictures, Adam; per picture a random step t and noise eps, loss\n"
      "||eps - eps_theta(x_t, t, z_img)||^2, with z_img replaced by zeros {:.0f}% of the time.",
      d.unet->options.str(), d.unet->num_parameters(), s.decoder_steps, s.batch, 100 * s.p_uncond);
  optim::Adam opt(d.unet->parameters(), {.lr = s.lr});
  const std::clock_t c0 = std::clock();
  optim::CosineWithWarmup sched_lr(opt, std::min<int64_t>(20, s.decoder_steps), s.decoder_steps,
                                   1e-4);
  Generator g(s.args.seed * 13 + 2);
  const int64_t N = w.train.size();
  const int64_t per_epoch = N / s.batch;
  const double t0 = lesson::elapsed_seconds();
  for (int64_t step = 0; step < s.decoder_steps; ++step) {
    const std::vector<int64_t> perm = data::permutation(N, s.args.seed + 17, step / per_epoch);
    const int64_t off = (step % per_epoch) * s.batch;
    Tensor idx =
        Tensor::from_vector(std::vector<int64_t>(perm.begin() + off, perm.begin() + off + s.batch));
    Tensor x0 = index_select(w.train16, 0, idx).to(s.args.device);
    Tensor z = index_select(w.train_img_emb, 0, idx).to(s.args.device);
    const std::vector<float> u = Tensor::rand({s.batch}, {}, &g).to_vector<float>();
    std::vector<bool> drop(u.size());
    for (size_t i = 0; i < u.size(); ++i) drop[i] = u[i] < s.p_uncond;
    Tensor loss = dalle::denoising_loss(*d.unet, sched, x0, z, drop, g);
    opt.zero_grad();
    loss.backward();
    opt.step();
    sched_lr.step();
    d.losses.push_back(loss.item());
    if ((step + 1) % std::max<int64_t>(1, s.decoder_steps / 5) == 0 || step + 1 == s.decoder_steps)
      lesson::print(
          "  step {:4d}  loss {:.4f} (mean of the last 20)  {}", step + 1,
          window_mean(d.losses, d.losses.size() - std::min<size_t>(20, d.losses.size()),
                      std::min<size_t>(20, d.losses.size())),
          lesson::progress_time(step + 1, s.decoder_steps, lesson::elapsed_seconds() - t0));
  }
  lesson::print("Trained in {:.1f} s ({:.1f} s of CPU time).", lesson::elapsed_seconds() - t0,
                static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC);
  const size_t n = std::min<size_t>(20, d.losses.size());
  d.first_loss = window_mean(d.losses, 0, n);
  d.last_loss = window_mean(d.losses, d.losses.size() - n, n);
  plot::LinePlot lp("Decoder training: noise-prediction loss", "step", "MSE");
  lp.add_series("loss per step", d.losses);
  lp.save(s.args.path("loss.svg"));
  lesson::print(
      "Loss fell from {:.3f} (first 20 steps) to {:.3f} (last 20). A model that predicted zero\n"
      "noise would score 1.0 (eps has unit variance). Figure: {}",
      d.first_loss, d.last_loss, s.args.path("loss.svg"));
  return d;
}

// ===========================================================================================
// 5. Judges that took no part: a CNN trained on real pictures
// ===========================================================================================

struct Judge {
  std::shared_ptr<clip::ImageEncoder> cnn;
  double real_acc = 0;
};

Tensor cnn_predict(clip::ImageEncoder& cnn, const Tensor& x16, Device device) {
  NoGradGuard ng;
  return argmax(cnn.forward(x16.to(device)), 1).cpu();
}

Judge train_judge(const Setup& s, const World& w) {
  lesson::section("5. The judge: a CNN trained on real 16 x 16 pictures");
  Judge j;
  manual_seed(s.args.seed * 7 + 2);
  clip::ImageEncoderOptions o;
  o.channels = {16, 32};
  o.pool_size = 4;
  o.embed_dim = kClasses;  // the "embedding" is the 10 class logits
  j.cnn = std::make_shared<clip::ImageEncoder>(o);
  j.cnn->to(s.args.device);
  optim::Adam opt(j.cnn->parameters(), {.lr = 3e-3});
  optim::CosineWithWarmup lr(opt, std::min<int64_t>(20, s.cnn_steps), s.cnn_steps, 1e-4);
  const int64_t N = w.train.size(), B = 128, per_epoch = N / B;
  for (int64_t step = 0; step < s.cnn_steps; ++step) {
    const std::vector<int64_t> perm = data::permutation(N, s.args.seed + 23, step / per_epoch);
    const int64_t off = (step % per_epoch) * B;
    Tensor idx =
        Tensor::from_vector(std::vector<int64_t>(perm.begin() + off, perm.begin() + off + B));
    Tensor loss = cross_entropy(j.cnn->forward(index_select(w.train16, 0, idx).to(s.args.device)),
                                index_select(w.train.labels, 0, idx).to(s.args.device));
    opt.zero_grad();
    loss.backward();
    opt.step();
    lr.step();
  }
  j.cnn->eval();
  j.real_acc = metrics::accuracy(cnn_predict(*j.cnn, w.test16, s.args.device), w.test.labels);
  lesson::print(
      "CNN ({}), {} steps of {} real training pictures: accuracy {:.3f} on {} real test\n"
      "pictures. It never saw a generated picture, and the decoder never saw it.",
      o.str(), s.cnn_steps, B, j.real_acc, w.test.size());
  return j;
}

// ===========================================================================================
// 6. Sampling: DDIM with classifier-free guidance, every prompt, several scales
// ===========================================================================================

struct ScaleResult {
  double scale = 0, acc_cnn = 0, acc_clip = 0, diversity = 0;
  std::vector<double> per_prompt;  // CNN accuracy of each prompt's samples
  Tensor samples;                  // [10 * per_class, 1, 16, 16], class-major
};

// Mean Euclidean distance between two different pictures of a set (pixels in [0, 1]).
double mean_pairwise_distance(const Tensor& x16) {
  const Tensor v = ((x16.cpu() + 1.0) * 0.5).reshape({x16.size(0), -1}).contiguous();
  const int64_t n = v.size(0), p = v.size(1);
  const std::vector<float> a = v.to_vector<float>();
  double sum = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      double d2 = 0;
      for (int64_t k = 0; k < p; ++k) {
        const double d = a[i * p + k] - a[j * p + k];
        d2 += d * d;
      }
      sum += std::sqrt(d2);
    }
  return sum / (0.5 * static_cast<double>(n * (n - 1)));
}

// The prompt "a photo of a <class>" for every class, through CLIP's text encoder and the prior.
Tensor prompt_embeddings(const World& w, dalle::Prior& prior) {
  NoGradGuard ng;
  std::vector<int64_t> rows;
  for (int64_t c = 0; c < kClasses; ++c) rows.push_back(w.captions.row(c, clip::kSingleTemplate));
  return prior.forward(index_select(w.caption_emb, 0, Tensor::from_vector(rows)));
}

struct Sampling {
  std::vector<ScaleResult> scales;
  double real_diversity = 0;
};

Sampling sample_and_measure(const Setup& s, const World& w, const Decoder& d,
                            const dalle::Schedule& sched, const Judge& j, dalle::Prior& prior) {
  lesson::section("6. Sampling: every class prompt, DDIM, classifier-free guidance");
  const Tensor z = prompt_embeddings(w, prior);  // [10, D]
  const int64_t n = s.per_class;
  std::vector<int64_t> rep, labels;
  for (int64_t c = 0; c < kClasses; ++c)
    for (int64_t k = 0; k < n; ++k) {
      rep.push_back(c);
      labels.push_back(c);
    }
  const Tensor cond = index_select(z, 0, Tensor::from_vector(rep)).to(s.args.device);
  const Tensor y = Tensor::from_vector(labels);
  Sampling out;
  // Real diversity: the first n test pictures of each class.
  const std::vector<int64_t> ty = w.test.labels.to_vector<int64_t>();
  for (int64_t c = 0; c < kClasses; ++c) {
    std::vector<int64_t> idx;
    for (size_t i = 0; i < ty.size() && static_cast<int64_t>(idx.size()) < n; ++i)
      if (ty[i] == c) idx.push_back(static_cast<int64_t>(i));
    out.real_diversity +=
        mean_pairwise_distance(index_select(w.test16, 0, Tensor::from_vector(idx))) / kClasses;
  }
  lesson::print(
      "Prompt \"{}\" for each class ({{}} = the class name) -> CLIP text embedding ->\n"
      "prior -> image embedding -> {} DDIM steps from pure noise, {} samples per prompt,\n"
      "at guidance scales s = 1 (none: the conditional model alone) and above\n"
      "(eps_uncond + s (eps_cond - eps_uncond)).",
      w.captions.templates[clip::kSingleTemplate], s.ddim_steps, n);
  for (double sc : s.scales) {
    const double t0 = lesson::elapsed_seconds();
    ScaleResult r;
    r.scale = sc;
    r.samples = dalle::ddim_sample(*d.unet, sched, cond, {.steps = s.ddim_steps, .guidance = sc},
                                   s.args.seed * 101 + 7);
    const std::vector<int64_t> pred =
        cnn_predict(*j.cnn, r.samples, s.args.device).to_vector<int64_t>();
    r.per_prompt.assign(kClasses, 0.0);
    for (size_t i = 0; i < pred.size(); ++i)
      r.per_prompt[labels[i]] += (pred[i] == labels[i] ? 1.0 : 0.0) / static_cast<double>(n);
    for (double a : r.per_prompt) r.acc_cnn += a / kClasses;
    const Tensor emb = clip::encode_images(*w.clip.model, to_clip(r.samples.cpu()), s.args.device);
    r.acc_clip = metrics::accuracy(clip::zero_shot_predict(emb, w.class_emb), y);
    for (int64_t c = 0; c < kClasses; ++c)
      r.diversity += mean_pairwise_distance(r.samples.narrow(0, c * n, n)) / kClasses;
    lesson::print("  s = {:.0f}: sampled in {:.1f} s", sc, lesson::elapsed_seconds() - t0);
    out.scales.push_back(r);
  }
  return out;
}

// ===========================================================================================
// 7. Pictures: every prompt, one prompt with many seeds
// ===========================================================================================

void draw_samples(const Setup& s, const World& w, const Decoder& d, const dalle::Schedule& sched,
                  const Sampling& sm, dalle::Prior& prior) {
  lesson::section("7. The pictures");
  const auto& names = data::fashion_mnist_classes();
  const int64_t cols = 8, n = s.per_class;
  std::vector<std::string> files;
  for (const ScaleResult& r : sm.scales) {
    std::vector<Tensor> cells;
    std::vector<std::string> labels;
    for (int64_t c = 0; c < kClasses; ++c) {
      const std::vector<Tensor> t = tiles(r.samples.narrow(0, c * n, std::min(cols, n)));
      for (size_t k = 0; k < t.size(); ++k) {
        cells.push_back(t[k]);
        labels.push_back(k == 0 ? names[c] : "");
      }
    }
    data::GridOptions o;
    o.labels = labels;
    o.scale = 4;
    o.title = lesson::format(
        "Samples, one row per prompt \"a photo of a ...\", guidance s = {:.0f}: CNN says the "
        "prompt's class for {:.0f}% of them",
        r.scale, 100 * r.acc_cnn);
    const std::string f = lesson::format("samples_s{:.0f}.png", r.scale);
    data::save_image_grid(cells, std::min(cols, n), s.args.path(f), o);
    files.push_back(s.args.path(f));
  }
  // One prompt, eight seeds, at every scale (plus unconditional, s = 0).
  const int64_t prompt = 7;  // sneaker
  const Tensor z = prompt_embeddings(w, prior).narrow(0, prompt, 1);
  std::vector<int64_t> rep(static_cast<size_t>(cols), 0);
  const Tensor cond = index_select(z, 0, Tensor::from_vector(rep)).to(s.args.device);
  std::vector<Tensor> cells;
  std::vector<std::string> labels;
  std::vector<double> row_scales = {0.0};
  for (const ScaleResult& r : sm.scales) row_scales.push_back(r.scale);
  for (double sc : row_scales) {
    const Tensor x = dalle::ddim_sample(
        *d.unet, sched, cond, {.steps = s.ddim_steps, .guidance = sc}, s.args.seed * 31 + 3);
    const std::vector<Tensor> t = tiles(x);
    for (int64_t k = 0; k < cols; ++k) {
      cells.push_back(t[k]);
      labels.push_back(k == 0 ? lesson::format("s={:.0f}", sc) : "");
    }
  }
  data::GridOptions o;
  o.labels = labels;
  o.scale = 4;
  o.title = lesson::format(
      "\"{}\": the same eight starting noises (seeds) in every row; row s=0 ignores the prompt",
      w.captions.text(prompt, clip::kSingleTemplate));
  data::save_image_grid(cells, cols, s.args.path("seeds.png"), o);
  files.push_back(s.args.path("seeds.png"));
  lesson::print("Figures:");
  for (const std::string& f : files) lesson::print("  {}", f);
}

// ===========================================================================================
// 8. What guidance buys and what it costs
// ===========================================================================================

void report(const Setup& s, const World& w, const Judge& j, const Sampling& sm) {
  lesson::section("8. What guidance buys and what it costs");
  lesson::print("{:<22} {:>10} {:>12} {:>12}", "", "CNN acc", "CLIP 0-shot", "diversity");
  lesson::print("{:<22} {:10.3f} {:12.3f} {:12.3f}", "real test pictures", j.real_acc,
                w.clip_zero_shot_16, sm.real_diversity);
  for (const ScaleResult& r : sm.scales)
    lesson::print("{:<22} {:10.3f} {:12.3f} {:12.3f}",
                  lesson::format("samples, s = {:.0f}{}", r.scale, r.scale == 1.0 ? " (none)" : ""),
                  r.acc_cnn, r.acc_clip, r.diversity);
  lesson::print(
      "Accuracy: the fraction of samples put in the prompt's class (chance 0.100). Diversity:\n"
      "mean pixel distance between two samples of one prompt ({} per prompt; real: {} real test\n"
      "pictures per class), averaged over the ten prompts.",
      s.per_class, s.per_class);
  const ScaleResult& none = sm.scales.front();
  const ScaleResult& most = sm.scales.back();
  lesson::print_inline("CNN accuracy per prompt at s = {:.0f}:", most.scale);
  for (int64_t c = 0; c < kClasses; ++c)
    lesson::print_inline("{} {} {:.2f}", c % 5 == 0 ? "\n " : ",", w.captions.class_names[c],
                         most.per_prompt[c]);
  // The four tops (t-shirt, pullover, coat, shirt) against the other six prompts.
  double tops = 0, rest = 0;
  for (int64_t c = 0; c < kClasses; ++c)
    (c == 0 || c == 2 || c == 4 || c == 6 ? tops : rest) += most.per_prompt[c];
  lesson::print(
      "\nThe four tops (t-shirt, pullover, coat, shirt) {:.2f} on average, the other six {:.2f}{}",
      tops / 4, rest / 6,
      tops / 4 < rest / 6
          ? ":\ntops differ in details (collar, buttons, sleeve length) that a 16 x 16 "
            "sample and the\nsmall CLIP's embedding hold least well."
          : ".");
  bool acc_rises = true, div_falls = true;
  for (size_t k = 1; k < sm.scales.size(); ++k) {
    acc_rises = acc_rises && sm.scales[k].acc_cnn > sm.scales[k - 1].acc_cnn;
    div_falls = div_falls && sm.scales[k].diversity < sm.scales[k - 1].diversity;
  }
  lesson::print(
      "Verdict: from s = {:.0f} (no guidance) to s = {:.0f} the CNN's accuracy went {:.3f} -> "
      "{:.3f}\n"
      "({}) and the diversity {:.3f} -> {:.3f}\n({}; real pictures {:.3f}).\n"
      "Target: CNN accuracy >= 0.8 at s = {:.0f}: {:.3f}, {}.\n"
      "The CNN itself scores {:.3f} on real test pictures: a sample counts as right only\n"
      "when it looks as typical as a real one.",
      none.scale, most.scale, none.acc_cnn, most.acc_cnn,
      acc_rises ? "rising at every step of s" : "not rising at every step", none.diversity,
      most.diversity, div_falls ? "falling at every step" : "not falling at every step",
      sm.real_diversity, most.scale, most.acc_cnn,
      most.acc_cnn >= 0.8 ? "met" : lesson::format("MISSED by {:.3f}", 0.8 - most.acc_cnn),
      j.real_acc);
  if (acc_rises && div_falls)
    lesson::print(
        "Guidance pushes each step further along (prediction with the prompt - prediction\n"
        "without it): towards what makes a picture look like THIS prompt rather than any\n"
        "picture. The shapes get typical and the judges surer, and the samples of a prompt\n"
        "look more alike. (Unguided samples can be more spread than real pictures: pixel\n"
        "distance also counts the speckles and half-formed shapes of a small, briefly trained\n"
        "model.)");
  else
    lesson::print(
        "In this run guidance did not both raise the accuracy and lower the diversity at every\n"
        "step: after {} decoder steps{} the unguided samples are at {:.2f} by the CNN (chance\n"
        "0.10), so there is little for guidance to amplify. Run the default setting to see the\n"
        "trade.",
        s.decoder_steps, s.args.quick ? " (quick mode)" : "", none.acc_cnn);
  std::vector<double> xs, cnn, clipa, div;
  for (const ScaleResult& r : sm.scales) {
    xs.push_back(r.scale);
    cnn.push_back(r.acc_cnn);
    clipa.push_back(r.acc_clip);
    div.push_back(r.diversity / sm.real_diversity);
  }
  plot::LinePlot lp("Classifier-free guidance: accuracy up, diversity down", "guidance scale s",
                    "");
  lp.add_series("CNN accuracy", xs, cnn);
  lp.add_series("CLIP zero-shot accuracy", xs, clipa);
  lp.add_series("diversity / real diversity", xs, div);
  lp.add_hline("real pictures: CNN accuracy", j.real_acc, "#1f77b4");
  lp.add_hline("real pictures: diversity / itself = 1", 1.0, "#d62728");
  lp.add_hline("chance (accuracy)", 0.1);
  const double top = std::max(1.1, *std::max_element(div.begin(), div.end()) * 1.1);
  lp.set_markers().set_ylim(0, top);
  lp.save(s.args.path("guidance.svg"));
  lesson::print("Figure: {}", s.args.path("guidance.svg"));
}

}  // namespace

int main(int argc, char** argv) {
  return lesson::run([&] {
    Setup s = read_flags(argc, argv);
    World w = load_world(s);
    PriorResult p = train_prior(s, w);
    const dalle::Schedule sched(1000);
    show_noising(s, w, sched);
    Decoder d = train_decoder(s, w, sched);
    Judge j = train_judge(s, w);
    Sampling sm = sample_and_measure(s, w, d, sched, j, *p.prior);
    draw_samples(s, w, d, sched, sm, *p.prior);
    report(s, w, j, sm);
    // The result line reports the strongest guidance shown (s = 6; quick: s = 4).
    const ScaleResult* best = &sm.scales.back();
    lesson::Result r;
    r.add("prior_cosine", p.cosine)
        .add("baseline_cosine", p.baseline)
        .add("gen_class_acc_cnn", best->acc_cnn)
        .add("gen_class_acc_clip", best->acc_clip)
        .add("sample_diversity", best->diversity)
        .add("real_diversity", sm.real_diversity)
        .add("unguided_acc_cnn", sm.scales.front().acc_cnn)
        .add("loss_first", d.first_loss)
        .add("loss_last", d.last_loss);
    r.print();
  });
}
