#include "16_video_tokens/video_tokens.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <map>
#include <random>

#include "mmgrad/mmgrad.h"
#include "mmgrad/optim/optim.h"

namespace mmgrad::vt {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Word ids: <pad> [MASK] a, the colours, the shapes, the verbs, the directions.
constexpr int64_t kA = 2, kColor0 = 3, kShape0 = 7, kMoves = 10, kGrows = 11, kShrinks = 12,
                  kDir0 = 13, kVocab = 17;

// The RGB of each colour (a little jitter is added per clip).
constexpr float kRGB[4][3] = {
    {0.95f, 0.15f, 0.10f}, {0.15f, 0.85f, 0.20f}, {0.20f, 0.35f, 1.00f}, {0.95f, 0.90f, 0.15f}};

// Is (dx, dy) (pixels from the centre, y down) inside shape s of radius r?
bool inside(int64_t s, double dx, double dy, double r) {
  if (s == 0) return dx * dx + dy * dy <= r * r;                        // circle
  if (s == 1) return std::max(std::abs(dx), std::abs(dy)) <= 0.85 * r;  // square (same area)
  return dy >= -r && dy <= 0.8 * r && std::abs(dx) <= 0.62 * (dy + r);  // triangle, apex up
}

}  // namespace

const std::vector<std::string>& color_names() {
  static const std::vector<std::string> v = {"red", "green", "blue", "yellow"};
  return v;
}
const std::vector<std::string>& shape_names() {
  static const std::vector<std::string> v = {"circle", "square", "triangle"};
  return v;
}
const std::vector<std::string>& motion_names() {
  static const std::vector<std::string> v = {"left", "right", "up", "down", "grows", "shrinks"};
  return v;
}
const std::vector<std::string>& vocabulary() {
  static const std::vector<std::string> v = {
      "<pad>",    "[MASK]", "a",     "red",     "green", "blue",  "yellow", "circle", "square",
      "triangle", "moves",  "grows", "shrinks", "left",  "right", "up",     "down"};
  return v;
}
int64_t vocab_size() { return kVocab; }

Clips Clips::rows(const Tensor& idx) const {
  return {index_select(video, 0, idx), index_select(text, 0, idx), index_select(color, 0, idx),
          index_select(shape, 0, idx), index_select(motion, 0, idx)};
}

Clips make_clips(int64_t n, uint64_t seed) {
  MMGRAD_CHECK(n > 0, "make_clips: n = ", n, ", expected at least one clip");
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + 16);
  std::uniform_real_distribution<double> u01(0, 1);
  const auto uni = [&](double lo, double hi) { return lo + (hi - lo) * u01(rng); };
  const int64_t frame = kSize * kSize, clip = kChannels * kFrames * frame;
  std::vector<float> px(static_cast<size_t>(n * clip));
  std::vector<int64_t> col(n), shp(n), mot(n), words(n * kTextTokens);
  for (int64_t i = 0; i < n; ++i) {
    col[i] = static_cast<int64_t>(u01(rng) * 4) % 4;
    shp[i] = static_cast<int64_t>(u01(rng) * 3) % 3;
    mot[i] = static_cast<int64_t>(u01(rng) * 6) % 6;
    // The path: centre (x, y) and radius r at frame 0 and frame 7, linear in between.
    double x0, y0, x1, y1, r0, r1;
    if (mot[i] < 4) {  // moves left / right / up / down
      r0 = r1 = uni(3.4, 4.2);
      const double lo = r0 + 0.5, hi = kSize - 0.5 - r0, travel = 7 * uni(0.6, 0.85);
      const double start = uni(lo, hi - travel), across = uni(lo, hi);
      const bool horizontal = mot[i] < 2, forward = mot[i] == 1 || mot[i] == 3;  // right, down
      const double a0 = forward ? start : hi - (start - lo),
                   a1 = forward ? a0 + travel : a0 - travel;
      x0 = horizontal ? a0 : across;
      x1 = horizontal ? a1 : across;
      y0 = horizontal ? across : a0;
      y1 = horizontal ? across : a1;
    } else {  // grows / shrinks in place
      x0 = x1 = uni(6.0, 10.0);
      y0 = y1 = uni(6.0, 10.0);
      const double small = uni(1.6, 2.4), big = uni(5.0, 6.0);
      r0 = mot[i] == 4 ? small : big;
      r1 = mot[i] == 4 ? big : small;
    }
    // Background: a dark tint with a vertical gradient; the shape's colour with some jitter.
    float bg[3], fg[3], grad[3];
    for (int c = 0; c < 3; ++c) {
      bg[c] = static_cast<float>(uni(0.0, 0.4));
      grad[c] = static_cast<float>(uni(-0.15, 0.15));
      fg[c] = static_cast<float>(std::clamp(kRGB[col[i]][c] + uni(-0.08, 0.08), 0.0, 1.0));
    }
    for (int64_t t = 0; t < kFrames; ++t) {
      const double f = static_cast<double>(t) / (kFrames - 1);
      const double cx = x0 + f * (x1 - x0), cy = y0 + f * (y1 - y0), r = r0 + f * (r1 - r0);
      for (int64_t yy = 0; yy < kSize; ++yy)
        for (int64_t xx = 0; xx < kSize; ++xx) {
          // Coverage from 2x2 samples inside the pixel: soft (anti-aliased) edges.
          int cover = 0;
          for (double sy : {0.25, 0.75})
            for (double sx : {0.25, 0.75}) cover += inside(shp[i], xx + sx - cx, yy + sy - cy, r);
          const float a = static_cast<float>(cover) / 4.0f;
          for (int c = 0; c < 3; ++c) {
            const float b =
                std::clamp(bg[c] + grad[c] * (static_cast<float>(yy) / 15.0f - 0.5f), 0.0f, 1.0f);
            px[static_cast<size_t>(i * clip + (c * kFrames + t) * frame + yy * kSize + xx)] =
                b * (1 - a) + fg[c] * a;
          }
        }
    }
    int64_t* w = &words[i * kTextTokens];
    w[0] = kA;
    w[1] = kColor0 + col[i];
    w[2] = kShape0 + shp[i];
    w[3] = mot[i] < 4 ? kMoves : mot[i] == 4 ? kGrows : kShrinks;
    w[4] = mot[i] < 4 ? kDir0 + mot[i] : kPad;
  }
  Clips c;
  c.video = Tensor::from_vector(px, {n, kChannels, kFrames, kSize, kSize});
  c.text = Tensor::from_vector(words, {n, kTextTokens});
  c.color = Tensor::from_vector(col);
  c.shape = Tensor::from_vector(shp);
  c.motion = Tensor::from_vector(mot);
  return c;
}

std::string caption_of(const std::vector<int64_t>& words) {
  std::string s;
  for (int64_t w : words) {
    if (w == kPad) continue;
    MMGRAD_CHECK(w >= 0 && w < kVocab, "caption_of: word id ", w, " outside [0, ", kVocab, ")");
    s += (s.empty() ? "" : " ") + vocabulary()[static_cast<size_t>(w)];
  }
  return s;
}

std::string caption(const Clips& c, int64_t i) {
  return caption_of(c.text.select(0, i).to_vector<int64_t>());
}

std::vector<int64_t> one_clip_per_caption(const Clips& c) {
  std::map<std::string, int64_t> first;
  for (int64_t i = 0; i < c.size(); ++i) first.emplace(caption(c, i), i);
  std::vector<int64_t> out;
  for (const auto& [cap, i] : first) out.push_back(i);
  return out;
}

// ---- the VQ-VAE --------------------------------------------------------------------------------

VQVAE::VQVAE(const VQVAEConfig& c) : config(c) {
  MMGRAD_CHECK(c.codes > 1 && c.code_dim > 0 && c.hidden > 0, "VQVAE: codes ", c.codes,
               ", code_dim ", c.code_dim, ", hidden ", c.hidden, ": expected codes > 1, sizes > 0");
  const int64_t h = c.hidden;
  encoder = register_module(
      "encoder",
      std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
          std::make_shared<nn::Conv3d>(kChannels, h, Triple3{2, 4, 4}, Triple3{2, 4, 4}),
          std::make_shared<nn::ReLU>(),
          std::make_shared<nn::Conv3d>(h, h, Triple3{2, 3, 3}, Triple3{2, 1, 1}, Triple3{0, 1, 1}),
          std::make_shared<nn::ReLU>(), std::make_shared<nn::Conv3d>(h, c.code_dim, 1)}));
  vq = register_module(
      "vq", std::make_shared<nn::VectorQuantizer>(c.codes, c.code_dim, c.beta, c.straight_through));
  if (c.init_sd > 0) nn::init::normal_(vq->weight, 0.0, c.init_sd);
  decoder = register_module(
      "decoder",
      std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
          std::make_shared<nn::Conv3d>(c.code_dim, 2 * h, Triple3{1, 3, 3}, 1, Triple3{0, 1, 1}),
          std::make_shared<nn::ReLU>(),
          std::make_shared<nn::Conv3d>(2 * h, kChannels * 4 * 4 * 4, 1)}));
}

Tensor VQVAE::encode(const Tensor& video) {
  MMGRAD_CHECK(video.dim() == 5 && video.size(1) == kChannels && video.size(2) == kFrames &&
                   video.size(3) == kSize && video.size(4) == kSize,
               "VQVAE.encode: video is ", describe(video), "; expected [B, 3, 8, 16, 16]");
  return encoder->forward(video).permute({0, 2, 3, 4, 1});  // [B, D, 2, 4, 4] -> [B, 2, 4, 4, D]
}

Tensor VQVAE::decode(const Tensor& zq) {
  const int64_t B = zq.size(0);
  Tensor y = decoder->forward(zq.permute({0, 4, 1, 2, 3}));  // [B, 192, 2, 4, 4]
  // Depth to space: channel (c, pt, ph, pw) of token (t, h, w) is pixel (c, 4t + pt, 4h + ph,
  // 4w + pw) of the clip.
  y = y.reshape({B, kChannels, 4, 4, 4, kTokT, kTokH, kTokW})
          .permute({0, 1, 5, 2, 6, 3, 7, 4})
          .reshape({B, kChannels, kFrames, kSize, kSize});
  return y.sigmoid();
}

Tensor VQVAE::decode_tokens(const Tensor& tokens) {
  return decode(vq->lookup(tokens.reshape({-1, kTokT, kTokH, kTokW})));
}

Tensor VQVAE::tokenize(const Tensor& video) {
  NoGradGuard no_grad;
  return vq->nearest(encode(video)).reshape({video.size(0), kVideoTokens});
}

VQTrainLog train_vqvae(VQVAE& m, const Clips& train, const VQTrainOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  m.train();
  optim::Adam opt(m.parameters(), {.lr = o.lr});
  std::mt19937_64 rng(o.seed * 7919 + 3);
  std::uniform_int_distribution<int64_t> pick(0, train.size() - 1);
  std::deque<Tensor> recent;  // the last few batches' encoder outputs, for the restarts
  VQTrainLog log;
  for (int64_t step = 1; step <= o.steps; ++step) {
    std::vector<int64_t> idx(static_cast<size_t>(o.batch_size));
    for (auto& i : idx) i = pick(rng);
    const Tensor x = index_select(train.video, 0, Tensor::from_vector(idx));
    const Tensor z = m.encode(x);
    const nn::VQOutput q = m.vq->quantize(z);
    const Tensor recon = m.decode(q.quantized);
    const Tensor rec_loss = mse_loss(recon, x);
    opt.zero_grad();
    (rec_loss + q.loss).backward();
    opt.step();
    if (o.restart_every > 0) {
      recent.push_back(z.detach());
      if (static_cast<int64_t>(recent.size()) > 4) recent.pop_front();
      if (step % o.restart_every == 0 && step <= o.restart_until * o.steps)
        log.restarted += m.vq->restart_dead_codes(
            cat(std::vector<Tensor>(recent.begin(), recent.end()), 0), o.min_count);
    }
    if (step % o.log_every == 0 || step == o.steps) {
      log.steps.push_back(static_cast<double>(step));
      log.recon_mse.push_back(rec_loss.item());
      log.perplexity.push_back(q.perplexity);
      log.codes_used.push_back(static_cast<double>(q.codes_used));
    }
  }
  m.eval();
  log.seconds = seconds_since(t0);
  return log;
}

VQEval evaluate_vqvae(VQVAE& m, const Clips& c) {
  NoGradGuard no_grad;
  m.eval();
  VQEval e;
  std::vector<int64_t> counts(static_cast<size_t>(m.config.codes), 0);
  double sq = 0;
  for (int64_t s = 0; s < c.size(); s += 250) {
    const int64_t len = std::min<int64_t>(250, c.size() - s);
    const Tensor x = c.video.narrow(0, s, len);
    const nn::VQOutput q = m.vq->quantize(m.encode(x));
    sq += mse_loss(m.decode(q.quantized), x, Reduction::Sum).item();
    for (int64_t k : q.indices.reshape({-1}).to_vector<int64_t>()) ++counts[static_cast<size_t>(k)];
  }
  e.recon_mse = sq / static_cast<double>(c.video.numel());
  e.counts = Tensor::from_vector(counts);
  e.perplexity = nn::VectorQuantizer::perplexity_of(e.counts);
  for (int64_t v : counts) e.codes_used += v > 0;
  return e;
}

double encoder_grad_norm(VQVAE& m, const Tensor& video) {
  m.zero_grad();
  const nn::VQOutput q = m.vq->quantize(m.encode(video));
  mse_loss(m.decode(q.quantized), video).backward();
  double sq = 0;
  for (const Tensor& p : m.encoder->parameters())
    if (p.grad().defined()) sq += p.grad().square().sum().item();
  m.zero_grad();
  return std::sqrt(sq);
}

// ---- VideoBERT ---------------------------------------------------------------------------------

VideoBERT::VideoBERT(int64_t video_vocab, const BertConfig& c)
    : video_vocab(video_vocab), config(c) {
  MMGRAD_CHECK(video_vocab > 1 && c.d_model > 0 && c.heads > 0 && c.d_model % c.heads == 0,
               "VideoBERT: video_vocab ", video_vocab, ", d_model ", c.d_model, ", heads ", c.heads,
               ": expected positive sizes, d_model divisible by heads");
  const int64_t S = kVideoTokens + kTextTokens;
  video_embed =
      register_module("video_embed", std::make_shared<nn::Embedding>(video_vocab + 1, c.d_model));
  text_embed = register_module("text_embed", std::make_shared<nn::Embedding>(kVocab, c.d_model));
  position_embed = register_module("position_embed", std::make_shared<nn::Embedding>(S, c.d_model));
  modality_embed = register_module("modality_embed", std::make_shared<nn::Embedding>(2, c.d_model));
  // BERT's initialisation, N(0, 0.02) for every table: a unit normal row (norm ~7 at d = 48)
  // would drown the position and modality signals that are added to it.
  for (auto& e : {video_embed, text_embed, position_embed, modality_embed})
    nn::init::normal_(e->weight, 0.0, 0.02);
  nn::TransformerLayerOptions layer;
  layer.d_model = c.d_model;
  layer.nhead = c.heads;
  layer.dim_feedforward = c.dim_feedforward;
  layer.dropout = 0.0;  // small data, short training
  encoder = register_module("encoder", std::make_shared<nn::TransformerEncoder>(layer, c.layers));
  video_head = register_module("video_head", std::make_shared<nn::Linear>(c.d_model, video_vocab));
  text_head = register_module("text_head", std::make_shared<nn::Linear>(c.d_model, kVocab));
  std::vector<int64_t> mod(static_cast<size_t>(S), 1);
  std::fill(mod.begin(), mod.begin() + kVideoTokens, 0);
  modality = register_buffer("modality", Tensor::from_vector(mod), false);
}

std::pair<Tensor, Tensor> VideoBERT::forward_both(const Tensor& video, const Tensor& text) {
  MMGRAD_CHECK(video.dim() == 2 && video.size(1) == kVideoTokens && text.dim() == 2 &&
                   text.size(1) == kTextTokens && video.size(0) == text.size(0),
               "VideoBERT: video ", describe(video), ", text ", describe(text), "; expected [B, ",
               kVideoTokens, "] and [B, ", kTextTokens, "]");
  const int64_t S = kVideoTokens + kTextTokens;
  Tensor x = cat({video_embed->forward(video), text_embed->forward(text)}, 1);  // [B, S, d]
  const Tensor pos = Tensor::arange(S).to(modality.device());
  x = x + (position_embed->forward(pos) + modality_embed->forward(modality)).unsqueeze(0);
  const Tensor h = encoder->forward(x);
  return {video_head->forward(h.narrow(1, 0, kVideoTokens)),
          text_head->forward(h.narrow(1, kVideoTokens, kTextTokens))};
}

BertTrainLog train_videobert(VideoBERT& m, const TokenSet& train, const BertTrainOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  m.train();
  optim::Adam opt(m.parameters(), {.lr = o.lr});
  std::mt19937_64 rng(o.seed * 104729 + 5);
  std::uniform_real_distribution<double> u01(0, 1);
  const int64_t N = train.video.size(0), K = m.video_vocab, B = o.batch_size;
  std::uniform_int_distribution<int64_t> pick(0, N - 1), pos(0, kVideoTokens - 1);
  const auto vid = train.video.to_vector<int64_t>(), txt = train.text.to_vector<int64_t>();
  BertTrainLog log;
  CrossEntropyOptions ce;  // targets -100 (unmasked positions) are ignored
  for (int64_t step = 1; step <= o.steps; ++step) {
    std::vector<int64_t> vin(B * kVideoTokens), vtg(B * kVideoTokens, -100), tin(B * kTextTokens),
        ttg(B * kTextTokens, -100);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t i = pick(rng);
      const bool caption_only = u01(rng) < o.caption_only;
      bool any = false;
      for (int64_t p = 0; p < kTextTokens; ++p) {
        const int64_t w = txt[i * kTextTokens + p];
        const bool masked = caption_only || u01(rng) < o.text_mask;
        tin[b * kTextTokens + p] = masked ? kMask : w;
        if (masked) ttg[b * kTextTokens + p] = w;
        any |= masked;
      }
      for (int64_t p = 0; p < kVideoTokens; ++p) {
        const int64_t v = vid[i * kVideoTokens + p];
        const bool masked = !caption_only && u01(rng) < o.video_mask;
        vin[b * kVideoTokens + p] = masked ? K : v;
        if (masked) vtg[b * kVideoTokens + p] = v;
        any |= masked;
      }
      if (!any) {  // nothing to predict in this sample: mask one video token
        const int64_t p = pos(rng);
        vtg[b * kVideoTokens + p] = vid[i * kVideoTokens + p];
        vin[b * kVideoTokens + p] = K;
      }
    }
    const auto [vl, tl] = m.forward_both(Tensor::from_vector(vin, {B, kVideoTokens}),
                                         Tensor::from_vector(tin, {B, kTextTokens}));
    const auto count = [](const std::vector<int64_t>& t) {
      return std::count_if(t.begin(), t.end(), [](int64_t v) { return v >= 0; });
    };
    Tensor loss = Tensor::scalar(0.0), v_loss, t_loss;
    if (count(vtg) > 0) {
      v_loss = cross_entropy(vl.reshape({-1, K}), Tensor::from_vector(vtg), ce);
      loss = loss + v_loss;
    }
    if (count(ttg) > 0) {
      t_loss = cross_entropy(tl.reshape({-1, kVocab}), Tensor::from_vector(ttg), ce);
      loss = loss + t_loss;
    }
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (step % o.log_every == 0 || step == o.steps) {
      log.steps.push_back(static_cast<double>(step));
      log.video_loss.push_back(v_loss.defined() ? v_loss.item() : NAN);
      log.text_loss.push_back(t_loss.defined() ? t_loss.item() : NAN);
    }
  }
  m.eval();
  log.seconds = seconds_since(t0);
  return log;
}

Tensor caption_log_probs(VideoBERT& m, const Tensor& video_tokens) {
  NoGradGuard no_grad;
  m.eval();
  const int64_t N = video_tokens.size(0);
  const Tensor text = Tensor::full({N, kTextTokens}, static_cast<double>(kMask), kInt64);
  return m.forward_both(video_tokens, text).second.log_softmax(-1);
}

namespace {
// The slots of a caption that depend on the clip: colour, shape, verb, and the direction when
// there is one (slot 4 is <pad> for grows / shrinks).
bool scored(int64_t slot, int64_t word) { return slot >= 1 && word != kPad; }
}  // namespace

double caption_word_accuracy(const Tensor& log_probs, const Tensor& text) {
  const auto pred = log_probs.argmax(-1).to_vector<int64_t>();
  const auto truth = text.to_vector<int64_t>();
  int64_t right = 0, total = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    const int64_t slot = static_cast<int64_t>(i) % kTextTokens;
    if (!scored(slot, truth[i])) continue;
    ++total;
    right += pred[i] == truth[i];
  }
  MMGRAD_CHECK(total > 0, "caption_word_accuracy: no caption words to score");
  return static_cast<double>(right) / static_cast<double>(total);
}

std::vector<int64_t> text_to_video_top1(const Tensor& log_probs, const Tensor& text) {
  const int64_t G = log_probs.size(0), V = log_probs.size(2);
  MMGRAD_CHECK(log_probs.dim() == 3 && log_probs.size(1) == kTextTokens && text.dim() == 2 &&
                   text.size(0) == G && text.size(1) == kTextTokens,
               "text_to_video: log_probs ", describe(log_probs), ", text ", describe(text),
               "; expected [G, ", kTextTokens, ", V] and [G, ", kTextTokens,
               "] (one caption per clip)");
  const auto lp = log_probs.contiguous().to_vector<double>();
  const auto words = text.to_vector<int64_t>();
  std::vector<int64_t> top(static_cast<size_t>(G));
  for (int64_t c = 0; c < G; ++c) {
    double best_score = -INFINITY;
    for (int64_t v = 0; v < G; ++v) {
      double s = 0;  // log p(caption c | clip v), over the slots after "a"
      for (int64_t p = 1; p < kTextTokens; ++p)
        s += lp[static_cast<size_t>((v * kTextTokens + p) * V + words[c * kTextTokens + p])];
      if (s > best_score) {
        best_score = s;
        top[static_cast<size_t>(c)] = v;
      }
    }
  }
  return top;
}

double text_to_video_r1(const Tensor& log_probs, const Tensor& text) {
  const std::vector<int64_t> top = text_to_video_top1(log_probs, text);
  int64_t hits = 0;
  for (size_t c = 0; c < top.size(); ++c) hits += top[c] == static_cast<int64_t>(c);
  return static_cast<double>(hits) / static_cast<double>(top.size());
}

double video_token_accuracy(VideoBERT& m, const TokenSet& s, double mask, uint64_t seed) {
  NoGradGuard no_grad;
  m.eval();
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u01(0, 1);
  std::vector<int64_t> vin = s.video.to_vector<int64_t>(), truth = vin;
  std::vector<bool> masked(vin.size());
  for (size_t i = 0; i < vin.size(); ++i)
    if (u01(rng) < mask) {
      masked[i] = true;
      vin[i] = m.video_vocab;
    }
  const int64_t N = s.video.size(0);
  const auto pred = m.forward_both(Tensor::from_vector(vin, {N, kVideoTokens}), s.text)
                        .first.argmax(-1)
                        .to_vector<int64_t>();
  int64_t right = 0, total = 0;
  for (size_t i = 0; i < vin.size(); ++i)
    if (masked[i]) {
      ++total;
      right += pred[i] == truth[i];
    }
  return total ? static_cast<double>(right) / static_cast<double>(total) : 0.0;
}

}  // namespace mmgrad::vt
