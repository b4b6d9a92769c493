// Lesson 16: video tokens. A VQ-VAE turns a clip into 32 discrete tokens (seed 001's
// VectorQuantizer), and VideoBERT reads video tokens and words in one transformer.
//
// What you will see (one function per section, in this order):
//  1. make_data: synthetic clips, 8 frames of 16x16, a coloured circle, square or triangle
//     that moves left / right / up / down, grows or shrinks, on a tinted background, with its
//     caption ("a red circle moves left"); clips.png.
//  2. vqvae: the VQ-VAE of 16_video_tokens/video_tokens.h (Conv3d encoder, nn::VectorQuantizer,
//     Conv3d decoder) trained with the straight-through estimator and dead-code restarts:
//     32 tokens per clip, every code used, perplexity >= K / 2; recon.png.
//  3. straight_through: the same model without the straight-through estimator: the
//     reconstruction loss gives the encoder a gradient of exactly 0, and it learns nothing.
//  4. collapse: without the restarts, from the same N(0, 1) codebook: one code takes every
//     vector (codes used, perplexity), and seed 001's U(-1/K, 1/K) init for comparison (not in
//     --quick); code_usage.svg.
//  5. videobert: the clips as tokens, VideoBERT trained by masked-token prediction on video
//     tokens AND words (modality embeddings tell them apart).
//  6. captions: the caption's words predicted from the video tokens alone, word by word.
//  7. retrieval: text -> video with the same model: a caption's score for a clip is
//     log p(caption | clip's tokens); R@1 against chance.
// Figures: out/16_video_tokens/clips.png, recon.png, code_usage.svg, curves.svg (+ .csv).
//
// Measured at the defaults (seed 0): see the README row; the numbers of every seed are printed.
//
// Run: ./build/lessons/16_video_tokens [--steps N] [--quick]
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "16_video_tokens/video_tokens.h"
#include "common/lesson.h"
#include "mmgrad/data/image.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/plot/figure.h"

using namespace mmgrad;

namespace {

struct Setup {
  lesson::Args args;
  int64_t n_train = 0, n_test = 0;
  vt::VQVAEConfig vq;
  vt::VQTrainOptions vq_train;
  double init_sd = 1.0;  // the codebook's N(0, 1) start (nn::Embedding's default)
  vt::BertConfig bert;
  vt::BertTrainOptions bert_train;
};

Setup read_flags(int argc, char** argv) {
  Setup s;
  s.args = lesson::parse_args(
      argc, argv, "16_video_tokens",
      "a VQ-VAE tokenizer for video (straight-through, codebook collapse and its fix) and "
      "VideoBERT over video and text tokens",
      lesson::kUsesSteps,
      {{"--codes K", "codebook size (default 128)"},
       {"--bert-steps N", "VideoBERT training steps (default 1000; quick 250)"}});
  const bool q = s.args.quick;
  s.n_train = q ? 800 : 2000;
  s.n_test = q ? 300 : 600;
  s.vq.codes = s.args.get_int("--codes", 128);
  MMGRAD_CHECK(s.vq.codes >= 2 && s.vq.codes <= 1024, "--codes ", s.vq.codes,
               ": expected 2 to 1024 codes");
  s.vq_train.steps = s.args.steps_or(q ? 100 : 600);
  s.vq_train.log_every = q ? 10 : 25;
  s.bert_train.steps = s.args.get_int("--bert-steps", q ? 250 : 1000);
  s.bert_train.batch_size = q ? 32 : 64;
  MMGRAD_CHECK(s.bert_train.steps >= 1 && s.bert_train.steps <= 100000, "--bert-steps ",
               s.bert_train.steps, ": expected 1 to 100000");
  s.bert_train.log_every = q ? 20 : 50;
  s.vq_train.seed = s.bert_train.seed = s.args.seed;
  return s;
}

// A clip as one film strip [3, 16, 8 * 17 - 1]: its frames side by side, 1 white pixel apart.
Tensor strip(const Tensor& clip) {
  std::vector<Tensor> parts;
  for (int64_t t = 0; t < vt::kFrames; ++t) {
    if (t > 0) parts.push_back(Tensor::ones({vt::kChannels, vt::kSize, 1}));
    parts.push_back(clip.select(1, t));
  }
  return cat(parts, 2).contiguous();
}

// ===========================================================================================
// 1. Clips with captions
// ===========================================================================================

struct Data {
  vt::Clips train, test;
};

Data make_data(const Setup& s) {
  lesson::section("1. Clips with captions");
  const double t0 = lesson::elapsed_seconds();
  Data d{vt::make_clips(s.n_train, 1000 * s.args.seed + 1),
         vt::make_clips(s.n_test, 1000 * s.args.seed + 2)};
  lesson::print(
      "{} training clips and {} held-out clips (made in {:.1f} s). A clip is 8 frames of 16x16\n"
      "RGB, a tensor [3, 8, 16, 16]: a {} {} or {} in one of {} colours, that moves {}, {},\n"
      "{} or {} (0.6 to 0.85 pixels a frame), {} or {}, on a random dark tint with a gradient.\n"
      "Its caption has five word slots; {} colours x {} shapes x {} motions = {} captions.",
      s.n_train, s.n_test, lesson::elapsed_seconds() - t0, vt::shape_names()[0],
      vt::shape_names()[1], vt::shape_names()[2], vt::color_names().size(), vt::motion_names()[0],
      vt::motion_names()[1], vt::motion_names()[2], vt::motion_names()[3], vt::motion_names()[4],
      vt::motion_names()[5], vt::color_names().size(), vt::shape_names().size(),
      vt::motion_names().size(),
      vt::color_names().size() * vt::shape_names().size() * vt::motion_names().size());
  std::vector<Tensor> tiles;
  std::vector<std::string> labels;
  for (int64_t i = 0; i < 8; ++i) {
    tiles.push_back(strip(d.test.video.select(0, i)));
    labels.push_back("\"" + vt::caption(d.test, i) + "\"");
    lesson::print("  clip {}: \"{}\"", i, vt::caption(d.test, i));
  }
  data::GridOptions g;
  g.labels = labels;
  g.scale = 4;
  g.title = "Eight held-out clips, frames 0 to 7 left to right, with their captions";
  data::save_image_grid(tiles, 2, s.args.path("clips.png"), g);
  lesson::print("Look: {}", s.args.path("clips.png"));
  return d;
}

// ===========================================================================================
// 2. Without the straight-through estimator, the encoder learns nothing
// ===========================================================================================

struct Results {
  vt::VQTrainLog fixed_log, no_st_log, collapsed_log, reference_log;
  vt::VQEval fixed, no_st, collapsed, reference;
  bool have_reference = false;
  vt::BertTrainLog bert_log;
  double caption_acc = 0, t2v_r1 = 0, video_acc = 0, chance = 0;
  int64_t gallery = 0;
};

// A VQ-VAE with the lesson's settings; every variant starts from the same weights.
std::shared_ptr<vt::VQVAE> make_vqvae(const Setup& s, bool straight_through, double init_sd) {
  manual_seed(1000 * s.args.seed + 7);
  vt::VQVAEConfig c = s.vq;
  c.straight_through = straight_through;
  c.init_sd = init_sd;
  return std::make_shared<vt::VQVAE>(c);
}

vt::VQTrainOptions with_restarts(const Setup& s) {
  vt::VQTrainOptions o = s.vq_train;
  o.restart_every = 25;
  o.min_count = 1;
  return o;
}

Tensor reconstruct(vt::VQVAE& m, const Tensor& x) {
  NoGradGuard no_grad;
  m.eval();
  return m.forward(x);
}

// Mean length of the encoder's output vectors z and of the codes (before training).
std::pair<double, double> scales(vt::VQVAE& m, const Tensor& x) {
  NoGradGuard no_grad;
  const Tensor z = m.encode(x);
  return {z.square().sum({-1}).sqrt().mean().item(),
          m.vq->weight.square().sum({-1}).sqrt().mean().item()};
}

// ===========================================================================================
// 2. A VQ-VAE: Conv3d encoder, vector quantizer, Conv3d decoder
// ===========================================================================================

void vqvae(const Setup& s, const Data& d, Results& r, std::shared_ptr<vt::VQVAE>& fixed) {
  lesson::section("2. A VQ-VAE: Conv3d encoder, vector quantizer, Conv3d decoder");
  fixed = make_vqvae(s, true, s.init_sd);
  const vt::VQTrainOptions o = with_restarts(s);
  lesson::print(
      "encoder: Conv3d(3, 32, kernel = stride = (2, 4, 4)) cuts the clip into 2-frame x 4x4\n"
      "tubelets -> ReLU -> Conv3d(32, 32, (2, 3, 3), stride (2, 1, 1)): each output sees 4\n"
      "frames, so a filter can respond to motion -> ReLU -> Conv3d(32, D = {}, 1):\n"
      "z [B, 2, 4, 4, {}], 32 vectors per clip.\n"
      "quantizer: nn::VectorQuantizer(K = {}, D = {}): each z -> its nearest code e_k (the\n"
      "token k); loss = ||sg(z) - e||^2 (codebook) + {} ||z - sg(e)||^2 (commitment).\n"
      "decoder: Conv3d(D, 64, (1, 3, 3)) -> ReLU -> Conv3d(64, 192, 1), each token's 192\n"
      "channels unfolded into its 3 colours x 4 frames x 4x4 pixels (a transposed conv with\n"
      "kernel = stride), sigmoid. Trained on reconstruction MSE + the VQ loss, Adam, {} steps\n"
      "of batch {}.\n"
      "The codebook starts as nn::Embedding's N(0, 1); every {} steps (until {:.0f}% of\n"
      "training) a code that none of the last 4 batches' vectors picked is moved onto a random\n"
      "encoder output (nn::VectorQuantizer::restart_dead_codes): sections 3 and 4 take each\n"
      "ingredient away.",
      s.vq.code_dim, s.vq.code_dim, s.vq.codes, s.vq.code_dim, s.vq.beta, s.vq_train.steps,
      s.vq_train.batch_size, o.restart_every, 100 * o.restart_until);
  r.fixed_log = vt::train_vqvae(*fixed, d.train, o);
  r.fixed = vt::evaluate_vqvae(*fixed, d.test);
  lesson::print(
      "Trained in {:.1f} s ({} codes restarted along the way). Held-out clips ({} tokens):\n"
      "reconstruction MSE {:.4f} per pixel value, {} of {} codes used, perplexity {:.1f}\n"
      "(exp of the entropy of the code usage: K = {} when every code is used equally, 1 when\n"
      "one code takes all). Target perplexity >= K / 2 = {:.0f}: {}.",
      r.fixed_log.seconds, r.fixed_log.restarted, s.n_test * vt::kVideoTokens, r.fixed.recon_mse,
      r.fixed.codes_used, s.vq.codes, r.fixed.perplexity, s.vq.codes, s.vq.codes / 2.0,
      r.fixed.perplexity >= s.vq.codes / 2.0 ? "met" : "MISSED");

  const Tensor x = d.test.video.narrow(0, 0, 6);
  const Tensor a = reconstruct(*fixed, x);
  std::vector<Tensor> tiles;
  std::vector<std::string> labels;
  for (int64_t i = 0; i < 6; ++i) {
    tiles.push_back(strip(x.select(0, i)));
    labels.push_back("\"" + vt::caption(d.test, i) + "\"");
    tiles.push_back(strip(a.select(0, i)));
    labels.push_back("from its 32 tokens");
  }
  data::GridOptions g;
  g.labels = labels;
  g.scale = 4;
  g.title = lesson::format(
      "Held-out clips (left, frames 0 to 7) and the VQ-VAE's reconstruction from 32 tokens of "
      "{} codes (right); held-out MSE {:.4f}",
      s.vq.codes, r.fixed.recon_mse);
  data::save_image_grid(tiles, 2, s.args.path("recon.png"), g);
  lesson::print(
      "Look: {}. Colours, positions and motion survive; edges are soft and the corners of\n"
      "squares and triangles are rounded off: 32 tokens of 7 bits for 6,144 pixel values.",
      s.args.path("recon.png"));
}

// ===========================================================================================
// 3. Without the straight-through estimator, the encoder learns nothing
// ===========================================================================================

void straight_through(const Setup& s, const Data& d, Results& r) {
  lesson::section("3. Without the straight-through estimator, the encoder learns nothing");
  auto with = make_vqvae(s, true, s.init_sd), without = make_vqvae(s, false, s.init_sd);
  const Tensor batch = d.train.video.narrow(0, 0, 32);
  const double g_with = vt::encoder_grad_norm(*with, batch);
  const double g_without = vt::encoder_grad_norm(*without, batch);
  lesson::print(
      "argmin has no useful gradient. Straight-through feeds the decoder z + sg(q - z)\n"
      "(sg = detach): the value of the code q, the gradient of z. Without it the decoder reads\n"
      "q itself, whose only parents are codebook rows. The gradient norm of the reconstruction\n"
      "loss with respect to the encoder's weights, one batch of 32 clips, same initial weights:\n"
      "  with straight-through        {:.3e}\n"
      "  without (the decoder reads q) {:.3e}{}",
      g_with, g_without, g_without == 0.0 ? "   exactly zero" : "");
  r.no_st_log = vt::train_vqvae(*without, d.train, with_restarts(s));
  r.no_st = vt::evaluate_vqvae(*without, d.test);
  lesson::print(
      "Trained anyway, the same {} steps with restarts ({:.1f} s): the decoder and the codebook\n"
      "learn, but the encoder moves only through the commitment loss (towards its codes), never\n"
      "towards what the decoder needs. Held-out reconstruction MSE {:.4f} without\n"
      "straight-through, {:.4f} with (section 2); {} codes used.",
      s.vq_train.steps, r.no_st_log.seconds, r.no_st.recon_mse, r.fixed.recon_mse,
      r.no_st.codes_used);
}

// ===========================================================================================
// 4. Without dead-code restarts: codebook collapse
// ===========================================================================================

// Code usage shares, largest first.
std::vector<double> sorted_shares(const Tensor& counts) {
  std::vector<double> c = counts.to_vector<double>();
  double total = 0;
  for (double v : c) total += v;
  for (double& v : c) v /= total;
  std::sort(c.rbegin(), c.rend());
  return c;
}

void collapse(const Setup& s, const Data& d, Results& r) {
  lesson::section("4. Without dead-code restarts: codebook collapse");
  auto m = make_vqvae(s, true, s.init_sd);
  const auto [z_len, code_len] = scales(*m, d.train.video.narrow(0, 0, 32));
  r.collapsed_log = vt::train_vqvae(*m, d.train, s.vq_train);
  r.collapsed = vt::evaluate_vqvae(*m, d.test);
  lesson::print(
      "The same model and steps, no restarts ({:.1f} s). At the start the encoder's vectors\n"
      "have length {:.2f} on average and the N(0, 1) codes {:.2f}: the codes sit far outside\n"
      "the cloud of z's, so the one code nearest to the cloud wins every vector. Only a chosen\n"
      "code gets a gradient (the codebook loss pulls it to its vectors), the rest never move:\n",
      r.collapsed_log.seconds, z_len, code_len);
  lesson::print("  {:>6} {:>10} {:>11} {:>11}", "step", "recon MSE", "codes used", "perplexity");
  const size_t n = r.collapsed_log.steps.size();
  for (size_t i = 0; i < n; i += std::max<size_t>(1, n / 5))
    lesson::print("  {:>6.0f} {:>10.4f} {:>11.0f} {:>11.1f}", r.collapsed_log.steps[i],
                  r.collapsed_log.recon_mse[i], r.collapsed_log.codes_used[i],
                  r.collapsed_log.perplexity[i]);
  if (!s.args.quick) {
    // Seed 001's (and the VQ-VAE reference code's) initialisation: U(-1/K, 1/K).
    auto ref = make_vqvae(s, true, 0.0);
    r.reference_log = vt::train_vqvae(*ref, d.train, s.vq_train);
    r.reference = vt::evaluate_vqvae(*ref, d.test);
    r.have_reference = true;
    lesson::print(
        "\nSeed 001's init, U(-1/K, 1/K) (each coordinate within +-{:.4f}: all codes near the\n"
        "origin, inside the cloud of z's), no restarts ({:.1f} s): codes used per training batch\n"
        "at steps {:.0f} / {:.0f} / {:.0f}: {:.0f} / {:.0f} / {:.0f}. The codes come alive as the\n"
        "z's spread out past them, slowly.",
        1.0 / static_cast<double>(s.vq.codes), r.reference_log.seconds, r.reference_log.steps[0],
        r.reference_log.steps[n / 4], r.reference_log.steps[n - 1], r.reference_log.codes_used[0],
        r.reference_log.codes_used[n / 4], r.reference_log.codes_used[n - 1]);
  }
  lesson::print("\nHeld-out clips:");
  lesson::print("  {:<28} {:>11} {:>11} {:>10}", "", "codes used", "perplexity", "recon MSE");
  const auto row = [&](const char* name, const vt::VQEval& e) {
    lesson::print("  {:<28} {:>11} {:>11.1f} {:>10.4f}", name, e.codes_used, e.perplexity,
                  e.recon_mse);
  };
  row("N(0,1) + restarts (sec. 2)", r.fixed);
  row("without straight-through", r.no_st);
  row("N(0,1), no restarts", r.collapsed);
  if (r.have_reference) row("U(-1/K,1/K), no restarts", r.reference);
  lesson::print(
      "Restarts put dead codes where the data are. The collapsed codebook spends the tokens of\n"
      "all held-out clips on {} of its {} codes: a token carries at most log2({}) = {:.1f} bits\n"
      "instead of log2({}) = {:.0f}, and says little about what is in the clip.",
      r.collapsed.codes_used, s.vq.codes, r.collapsed.codes_used,
      std::log2(static_cast<double>(r.collapsed.codes_used)), s.vq.codes,
      std::log2(static_cast<double>(s.vq.codes)));

  plot::LinePlot usage(
      lesson::format("Code usage on the held-out clips, codes sorted by use (K = {})", s.vq.codes),
      "code rank", "share of tokens");
  std::vector<double> rank;
  for (int64_t k = 1; k <= s.vq.codes; ++k) rank.push_back(static_cast<double>(k));
  const auto floor_at = [](std::vector<double> v) {  // log axis: unused codes drawn at 1e-5
    for (double& x : v) x = std::max(x, 1e-5);
    return v;
  };
  const auto add = [&](const char* name, const vt::VQEval& e) {
    usage.add_series(
        lesson::format("{}: {} used, perplexity {:.1f}", name, e.codes_used, e.perplexity), rank,
        floor_at(sorted_shares(e.counts)));
  };
  add("N(0,1), no restarts", r.collapsed);
  if (r.have_reference) add("U(-1/K,1/K), no restarts", r.reference);
  add("N(0,1) + dead-code restarts", r.fixed);
  usage.add_hline("every code equally (1/K)", 1.0 / static_cast<double>(s.vq.codes));
  usage.set_log_y();
  usage.save(s.args.path("code_usage.svg"));
  lesson::print("Look: {} (unused codes drawn at 1e-5).", s.args.path("code_usage.svg"));
}

// ===========================================================================================
// 5. VideoBERT: video tokens and words in one transformer
// ===========================================================================================

struct Tokens {
  vt::TokenSet train, test;
};

Tokens videobert(const Setup& s, const Data& d, vt::VQVAE& tokenizer, Results& r,
                 std::shared_ptr<vt::VideoBERT>& bert) {
  lesson::section("5. VideoBERT: video tokens and words in one transformer");
  Tokens t{{tokenizer.tokenize(d.train.video), d.train.text},
           {tokenizer.tokenize(d.test.video), d.test.text}};
  const auto v0 = t.test.video.select(0, 0).to_vector<int64_t>();
  std::string first;
  for (int64_t k = 0; k < 8; ++k) first += lesson::format("{} ", v0[static_cast<size_t>(k)]);
  lesson::print(
      "Every clip is now 32 integers in [0, {}) (the codes of the VQ-VAE with restarts, clip\n"
      "half by row by column), e.g. clip 0: {}... and its caption 5 word ids.\n"
      "VideoBERT: [32 video tokens | 5 words], each embedded by its own table, plus a position\n"
      "and a MODALITY embedding (video or text), through one nn::TransformerEncoder (d = {}, {}\n"
      "layers, {} heads); a video head predicts codes, a text head words. Training (masked-token\n"
      "prediction on both): for {:.0f}% of the samples ALL words are [MASK] (predict the caption\n"
      "from the video); otherwise each word is masked with p = {:.2f} and each video token with\n"
      "p = {:.2f} (predict a hidden piece of the clip from the rest and the caption).",
      s.vq.codes, first, s.bert.d_model, s.bert.layers, s.bert.heads,
      100 * s.bert_train.caption_only, s.bert_train.text_mask, s.bert_train.video_mask);
  manual_seed(1000 * s.args.seed + 11);
  bert = std::make_shared<vt::VideoBERT>(s.vq.codes, s.bert);
  r.bert_log = vt::train_videobert(*bert, t.train, s.bert_train);
  r.video_acc = vt::video_token_accuracy(*bert, t.test, s.bert_train.video_mask, 99);
  const auto& L = r.bert_log;
  lesson::print(
      "{} steps of batch {} ({:.1f} s). Masked-token loss, first / last log: video {:.2f} ->\n"
      "{:.2f} (chance ln K = {:.2f}), words {:.2f} -> {:.2f}. Held-out masked video tokens\n"
      "predicted exactly: {:.1f}% (chance 1/K = {:.1f}%): a hidden tubelet is partly\n"
      "predictable from its neighbours and the caption, not entirely (the background tint and\n"
      "the exact position are not in the words).",
      s.bert_train.steps, s.bert_train.batch_size, L.seconds, L.video_loss.front(),
      L.video_loss.back(), std::log(static_cast<double>(s.vq.codes)), L.text_loss.front(),
      L.text_loss.back(), 100 * r.video_acc, 100.0 / static_cast<double>(s.vq.codes));
  return t;
}

// ===========================================================================================
// 6. Captions from video tokens alone
// ===========================================================================================

void captions(const Data& d, const Tokens& t, vt::VideoBERT& bert, Results& r) {
  lesson::section("6. Captions from video tokens alone");
  const Tensor lp = vt::caption_log_probs(bert, t.test.video);
  r.caption_acc = vt::caption_word_accuracy(lp, t.test.text);
  const auto pred = lp.argmax(-1).to_vector<int64_t>();
  const auto truth = t.test.text.to_vector<int64_t>();
  lesson::print(
      "Every word slot is [MASK]; the model fills them from the {} video tokens. Held-out\n"
      "accuracy per slot (argmax), and what always guessing the most common word would get:",
      vt::kVideoTokens);
  const char* slot_names[] = {"", "colour", "shape", "verb", "direction (moves only)"};
  std::vector<double> slot_acc(vt::kTextTokens, 0.0);
  for (int64_t slot = 1; slot < vt::kTextTokens; ++slot) {
    std::vector<int64_t> hist(static_cast<size_t>(vt::vocab_size()), 0);
    int64_t right = 0, total = 0;
    for (size_t i = static_cast<size_t>(slot); i < truth.size(); i += vt::kTextTokens) {
      if (truth[i] == vt::kPad) continue;
      ++total;
      right += pred[i] == truth[i];
      ++hist[static_cast<size_t>(truth[i])];
    }
    const double prior = static_cast<double>(*std::max_element(hist.begin(), hist.end())) / total;
    slot_acc[static_cast<size_t>(slot)] = static_cast<double>(right) / total;
    lesson::print("  {:<24} {:>6.1%}   (most common word {:>5.1%})", slot_names[slot],
                  slot_acc[static_cast<size_t>(slot)], prior);
  }
  lesson::print("  {:<24} {:>6.1%}   target >= 80%: {}", "all caption words", r.caption_acc,
                r.caption_acc >= 0.8 ? "met" : "MISSED");
  const auto best = std::max_element(slot_acc.begin() + 1, slot_acc.end()) - slot_acc.begin();
  const auto worst = std::min_element(slot_acc.begin() + 1, slot_acc.end()) - slot_acc.begin();
  lesson::print("Read best: {}; read worst: {}.", slot_names[best], slot_names[worst]);
  if (worst == 2)
    lesson::print(
        "A token stands for a 4x4-pixel, 4-frame block and has 7 bits: what the reconstruction\n"
        "loss pays for most (the colour of many pixels, where the blob is in each half of the\n"
        "clip) survives; the few corner pixels that tell a square from a circle or a triangle\n"
        "mostly do not, as the rounded shapes of recon.png show.");
  else
    lesson::print(
        "(A short run: the model has not yet learned to compare the two halves of the clip, or\n"
        "to read shapes; the default run reads every slot but the shape above 90%.)");
  lesson::print("Examples (held-out clips):");
  for (int64_t i = 0; i < 6; ++i) {
    std::vector<int64_t> w(pred.begin() + i * vt::kTextTokens,
                           pred.begin() + (i + 1) * vt::kTextTokens);
    lesson::print("  true \"{}\"  predicted \"{}\"", vt::caption(d.test, i), vt::caption_of(w));
  }
}

// ===========================================================================================
// 7. Text -> video retrieval
// ===========================================================================================

void retrieval(const Data& d, const Tokens& t, vt::VideoBERT& bert, Results& r) {
  lesson::section("7. Text -> video retrieval");
  const std::vector<int64_t> gallery = vt::one_clip_per_caption(d.test);
  const Tensor gi = Tensor::from_vector(gallery);
  const Tensor lp = vt::caption_log_probs(bert, index_select(t.test.video, 0, gi));
  r.gallery = static_cast<int64_t>(gallery.size());
  r.chance = 1.0 / static_cast<double>(r.gallery);
  r.t2v_r1 = vt::text_to_video_r1(lp, index_select(t.test.text, 0, gi));
  lesson::print(
      "A gallery of {} held-out clips, one per caption (so every caption has exactly one right\n"
      "clip). No second model: a caption's score for a clip is log p(caption | clip) = the sum\n"
      "of log p(word | clip's tokens) over its slots, from the same masked-word predictions.\n"
      "For each caption, is its own clip ranked first?\n"
      "  text -> video R@1 {:.3f}   chance 1/{} = {:.3f}   ({:.0f}x chance)",
      r.gallery, r.t2v_r1, r.gallery, r.chance, r.t2v_r1 / r.chance);
  // What the misses got wrong: the slots in which the retrieved clip's caption differs.
  const std::vector<int64_t> top = vt::text_to_video_top1(lp, index_select(t.test.text, 0, gi));
  const auto words = index_select(t.test.text, 0, gi).to_vector<int64_t>();
  int64_t misses = 0, shape_only = 0;
  for (size_t c = 0; c < top.size(); ++c) {
    if (top[c] == static_cast<int64_t>(c)) continue;
    ++misses;
    bool only_shape = true;
    for (int64_t p = 1; p < vt::kTextTokens; ++p)
      if (p != 2 && words[c * vt::kTextTokens + p] !=
                        words[static_cast<size_t>(top[c]) * vt::kTextTokens + p])
        only_shape = false;
    shape_only += only_shape;
  }
  lesson::print(
      "Of the {} misses, {} retrieved a clip whose caption differs only in the shape word (the\n"
      "same colour and motion).",
      misses, shape_only);
}

void summary(const Setup& s, const Results& r) {
  lesson::section("Summary");
  plot::LinePlot rec("VQ-VAE reconstruction (training batches)", "step", "MSE");
  rec.add_series("N(0,1) + restarts", r.fixed_log.steps, r.fixed_log.recon_mse)
      .add_series("without straight-through", r.no_st_log.steps, r.no_st_log.recon_mse)
      .add_series("N(0,1), no restarts", r.collapsed_log.steps, r.collapsed_log.recon_mse);
  if (r.have_reference)
    rec.add_series("U(-1/K,1/K), no restarts", r.reference_log.steps, r.reference_log.recon_mse);
  rec.set_log_y();
  plot::LinePlot ppl("Codebook perplexity (training batches)", "step", "perplexity");
  ppl.add_series("N(0,1) + restarts", r.fixed_log.steps, r.fixed_log.perplexity)
      .add_series("without straight-through", r.no_st_log.steps, r.no_st_log.perplexity)
      .add_series("N(0,1), no restarts", r.collapsed_log.steps, r.collapsed_log.perplexity);
  if (r.have_reference)
    ppl.add_series("U(-1/K,1/K), no restarts", r.reference_log.steps, r.reference_log.perplexity);
  ppl.add_hline("target K / 2", s.vq.codes / 2.0);
  plot::LinePlot bert("VideoBERT masked-token loss", "step", "cross-entropy");
  bert.add_series("video tokens", r.bert_log.steps, r.bert_log.video_loss)
      .add_series("words", r.bert_log.steps, r.bert_log.text_loss);
  plot::Panels panels("Training curves", 3);
  panels.add(rec).add(ppl).add(bert).save(s.args.path("curves.svg"));
  lesson::print(
      "  recon MSE (held-out)        {:.4f}  (without restarts {:.4f}, without "
      "straight-through {:.4f})",
      r.fixed.recon_mse, r.collapsed.recon_mse, r.no_st.recon_mse);
  lesson::print("  codebook perplexity         {:.1f} of K = {} (target >= {:.0f}); {} codes used",
                r.fixed.perplexity, s.vq.codes, s.vq.codes / 2.0, r.fixed.codes_used);
  lesson::print("  caption words from video    {:.3f} (target >= 0.8)", r.caption_acc);
  lesson::print("  text -> video R@1           {:.3f} (chance {:.3f})", r.t2v_r1, r.chance);
  lesson::print("Figures: {}", s.args.path("curves.svg"));
}

}  // namespace

int main(int argc, char** argv) {
  return lesson::run([&] {
    Setup s = read_flags(argc, argv);
    Data d = make_data(s);
    Results r;
    std::shared_ptr<vt::VQVAE> fixed;
    std::shared_ptr<vt::VideoBERT> bert;
    vqvae(s, d, r, fixed);
    straight_through(s, d, r);
    collapse(s, d, r);
    const Tokens t = videobert(s, d, *fixed, r, bert);
    captions(d, t, *bert, r);
    retrieval(d, t, *bert, r);
    summary(s, r);
    lesson::Result res;
    res.add("recon_mse", r.fixed.recon_mse)
        .add("codebook_perplexity", r.fixed.perplexity)
        .add("codes_used", static_cast<double>(r.fixed.codes_used))
        .add("caption_word_acc", r.caption_acc)
        .add("t2v_r1", r.t2v_r1);
    res.print();
  });
}
