#include "15_avsr/avsr.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "mmgrad/metrics/metrics.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/nn/pooling.h"
#include "mmgrad/optim/optim.h"

namespace mmgrad::avsr {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A mouth shape: half-width and opening (both relative to the frame), and whether the teeth show
// at the top of the opening.
struct MouthShape {
  double width, open, teeth;
};

// Visemes, in the order of viseme_names(). Rest (index 7) is the closed, relaxed mouth a word
// starts from.
const MouthShape kShapes[8] = {
    {0.40, 0.00, 0.0},  // lips pressed together: p, b
    {0.38, 0.12, 1.0},  // lower lip under the upper teeth: f, v
    {0.34, 0.26, 1.0},  // teeth showing, slightly apart: t, d
    {0.30, 0.36, 0.0},  // jaw open, no teeth: k, g
    {0.40, 0.50, 0.0},  // wide open: a
    {0.48, 0.16, 1.0},  // spread lips, teeth showing: i
    {0.18, 0.24, 0.0},  // rounded, pushed forward: u
    {0.38, 0.02, 0.0},  // at rest
};

float sigmoidf(double x) { return static_cast<float>(1.0 / (1.0 + std::exp(-x))); }

// Renders one 12 x 12 frame of `shape` for speaker s (pixel (r, c), values in [0, 1]). The lips
// are the ring between an outer ellipse and the opening; edges are soft (a sigmoid of the
// distance), so small shape changes change the pixels smoothly.
void render_mouth(const MouthShape& shape, const Speaker& s, float* out) {
  const double half = kMouth / 2.0;
  const double a = shape.width * s.mouth_scale * kMouth;                 // half-width, px
  const double open = shape.open * s.mouth_scale * kMouth * 0.5 + 0.05;  // half-opening, px
  const double lip = 1.5 * s.mouth_scale;                                // lip thickness, px
  const double sharp = 3.0;                                              // edge softness
  for (int64_t r = 0; r < kMouth; ++r)
    for (int64_t c = 0; c < kMouth; ++c) {
      const double x = (c + 0.5 - half - s.dx), y = (r + 0.5 - half - s.dy);
      // Outer lip contour: an ellipse of half-axes (a + lip, open + lip); inside = lips.
      const double outer = std::sqrt(std::pow(x / (a + lip), 2) + std::pow(y / (open + lip), 2));
      const double inner = std::sqrt(std::pow(x / a, 2) + std::pow(y / open, 2));
      const float in_lips = sigmoidf(sharp * (1 - outer) * (open + lip));
      const float in_mouth = sigmoidf(sharp * (1 - inner) * open);
      // Teeth: the upper third of the opening, bright.
      const float teeth = static_cast<float>(shape.teeth) * in_mouth * sigmoidf(4 * (-y));
      float v = static_cast<float>(s.skin);
      v = v + in_lips * (static_cast<float>(s.lip) - v);  // lips over skin
      v = v + in_mouth * (0.0f - v);                      // dark mouth inside
      v = v + teeth * (1.0f - v);                         // teeth over the dark
      out[r * kMouth + c] = std::clamp(v, 0.0f, 1.0f);
    }
}

// The clean power spectrum of one unit for speaker s (16 bins), before the per-frame jitter.
void unit_spectrum(const Unit& u, const Speaker& s, double* p) {
  const auto peak = [&](double centre, double width, double amp) {
    for (int64_t f = 0; f < kBins; ++f) {
      const double z = (static_cast<double>(f) - centre * s.formant_scale) / width;
      p[f] += amp * std::exp(-0.5 * z * z);
    }
  };
  for (int64_t f = 0; f < kBins; ++f) p[f] = 0.004;  // a quiet floor
  if (u.vowel) {
    peak(u.f1, 1.0, 1.0);  // two strong formants
    peak(u.f2, 1.0, 0.6);
  } else {
    // The place cue is weak: a burst or a hiss of about a tenth of a vowel's power.
    peak(u.f1, 1.5 * u.f2, u.voiced ? 0.012 : 0.015);
    if (u.voiced) peak(0.3, 0.7, 0.45 * s.voice);  // the voice bar: strong, low, robust
  }
  for (int64_t f = 0; f < kBins; ++f) p[f] *= s.loudness;
}

}  // namespace

const std::vector<Unit>& units() {
  // Consonants: {name, viseme, voiced, vowel, place bin, peak width}; vowels: {..., f1, f2}.
  static const std::vector<Unit> u = {
      {"p", 0, false, false, 3.0, 2.0},  {"b", 0, true, false, 3.0, 2.0},
      {"f", 1, false, false, 14.0, 1.5}, {"v", 1, true, false, 14.0, 1.5},
      {"t", 2, false, false, 11.0, 1.0}, {"d", 2, true, false, 11.0, 1.0},
      {"k", 3, false, false, 7.5, 1.0},  {"g", 3, true, false, 7.5, 1.0},
      {"a", 4, true, true, 5.0, 9.0},    {"i", 5, true, true, 2.5, 13.0},
      {"u", 6, true, true, 2.5, 6.0}};
  return u;
}

const std::vector<std::string>& viseme_names() {
  static const std::vector<std::string> n = {
      "lips closed (p b)", "lip on teeth (f v)", "teeth together (t d)", "jaw open (k g)",
      "open (a)",          "spread (i)",         "rounded (u)"};
  return n;
}

const std::array<const char*, kWords>& word_names() {
  static const std::array<const char*, kWords> n = {"pat", "bat", "fat", "vat", "pig",
                                                    "fig", "tug", "dug", "cut", "gut"};
  return n;
}

const std::array<std::array<int, kUnitsPerWord>, kWords>& word_units() {
  // Unit indices: p0 b1 f2 v3 t4 d5 k6 g7 a8 i9 u10 ("cut" is k-u-t).
  static const std::array<std::array<int, kUnitsPerWord>, kWords> w = {{{0, 8, 4},
                                                                        {1, 8, 4},
                                                                        {2, 8, 4},
                                                                        {3, 8, 4},
                                                                        {0, 9, 7},
                                                                        {2, 9, 7},
                                                                        {4, 10, 7},
                                                                        {5, 10, 7},
                                                                        {6, 10, 4},
                                                                        {7, 10, 4}}};
  return w;
}

std::vector<Speaker> make_speakers(int64_t n, uint64_t seed) {
  MMGRAD_CHECK(n > 0, "avsr::make_speakers: n = ", n, ", expected at least one speaker");
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + 15);
  std::uniform_real_distribution<double> u01(0, 1);
  const auto in = [&](double lo, double hi) { return lo + (hi - lo) * u01(rng); };
  std::vector<Speaker> out(static_cast<size_t>(n));
  for (Speaker& s : out) {
    s.formant_scale = in(0.88, 1.12);
    s.voice = in(0.7, 1.3);
    s.loudness = std::pow(10.0, in(-0.3, 0.3));  // +-3 dB
    s.mouth_scale = in(0.85, 1.15);
    s.dx = in(-1.0, 1.0);
    s.dy = in(-0.8, 0.8);
    s.skin = in(0.5, 0.75);
    s.lip = in(0.2, 0.4);
  }
  return out;
}

Utterances Utterances::rows(const Tensor& idx) const {
  return {index_select(power, 0, idx), index_select(video, 0, idx), index_select(labels, 0, idx),
          index_select(speaker, 0, idx)};
}

Utterances make_utterances(int64_t n, const std::vector<Speaker>& speakers, uint64_t seed,
                           bool balanced) {
  MMGRAD_CHECK(n > 0 && !speakers.empty(), "avsr::make_utterances: n = ", n, " with ",
               speakers.size(), " speakers, expected at least one of each");
  MMGRAD_CHECK(!balanced || n % kWords == 0, "avsr::make_utterances: balanced needs n a multiple",
               " of ", kWords, ", got ", n);
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + 1515);
  std::uniform_real_distribution<double> u01(0, 1);
  std::normal_distribution<double> normal(0, 1);
  const int64_t frame = kMouth * kMouth;
  std::vector<float> power(static_cast<size_t>(n * kAudioFrames * kBins));
  std::vector<float> video(static_cast<size_t>(n * kVideoFrames * frame));
  std::vector<int64_t> labels(n), who(n);
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = balanced ? i % kWords : static_cast<int64_t>(rng() % kWords);
    // What the camera sees (the speaker, the head position, the pixel noise) comes from its own
    // generator. In a balanced set, the ten words of a group share it: the same speaker says
    // every word in the same way, so two words with the same visemes (pat, bat) get IDENTICAL
    // videos, and no lip reader can do better than a coin flip between them.
    std::mt19937_64 cam(seed * 0x9E3779B97F4A7C15ULL +
                        7919 * static_cast<uint64_t>(balanced ? i / kWords : i) + 1);
    std::normal_distribution<double> cam_normal(0, 1);  // its own: a distribution keeps state
    who[i] = static_cast<int64_t>(cam() % speakers.size());
    Speaker s = speakers[static_cast<size_t>(who[i])];
    // Small changes from one utterance (or group) to the next of the same speaker.
    s.dx += 0.3 * cam_normal(cam);
    s.dy += 0.3 * cam_normal(cam);
    s.loudness *= std::pow(10.0, 0.1 * normal(rng));
    const auto& w = word_units()[static_cast<size_t>(labels[i])];
    MouthShape prev = kShapes[7];  // the mouth starts at rest
    for (int64_t k = 0; k < kUnitsPerWord; ++k) {
      const Unit& u = units()[static_cast<size_t>(w[k])];
      // Audio: the unit's spectrum, each frame scaled by a little random jitter.
      double p[kBins];
      unit_spectrum(u, s, p);
      for (int64_t t = 0; t < kAudioFramesPerUnit; ++t) {
        const double jitter = std::exp(0.15 * normal(rng));
        float* row =
            &power[static_cast<size_t>((i * kAudioFrames + k * kAudioFramesPerUnit + t) * kBins)];
        for (int64_t f = 0; f < kBins; ++f) row[f] = static_cast<float>(p[f] * jitter);
      }
      // Video: the first frame is on the way from the previous shape (coarticulation), the
      // second shows the unit's own shape; each with a little pixel noise.
      const MouthShape& cur = kShapes[u.viseme];
      const MouthShape mid = {(prev.width + cur.width) / 2, (prev.open + cur.open) / 2,
                              (prev.teeth + cur.teeth) / 2};
      for (int64_t t = 0; t < kVideoFramesPerUnit; ++t) {
        float* img =
            &video[static_cast<size_t>((i * kVideoFrames + k * kVideoFramesPerUnit + t) * frame)];
        render_mouth(t == 0 ? mid : cur, s, img);
        for (int64_t q = 0; q < frame; ++q)
          img[q] = std::clamp(img[q] + static_cast<float>(0.04 * cam_normal(cam)), 0.0f, 1.0f);
      }
      prev = cur;
    }
  }
  Utterances out;
  out.power = Tensor::from_vector(power, {n, kAudioFrames, kBins});
  out.video = Tensor::from_vector(video, {n, 1, kVideoFrames, kMouth, kMouth});
  out.labels = Tensor::from_vector(labels);
  out.speaker = Tensor::from_vector(who);
  return out;
}

Tensor features(const Tensor& power, const std::vector<double>& snr_db, uint64_t seed,
                const FeatureScale& scale) {
  MMGRAD_CHECK(power.dim() == 3 && power.size(1) == kAudioFrames && power.size(2) == kBins &&
                   static_cast<int64_t>(snr_db.size()) == power.size(0),
               "avsr::features: power ", describe(power), " with ", snr_db.size(),
               " SNR values, expected [N, ", kAudioFrames, ", ", kBins, "] and N values");
  MMGRAD_CHECK(scale.sd > 0, "avsr::features: scale sd ", scale.sd, ", expected > 0");
  const int64_t n = power.size(0), per = kAudioFrames * kBins;
  std::vector<float> p = power.contiguous().to_vector<float>();
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + 150);
  std::exponential_distribution<double> expo(1.0);
  std::vector<float> out(p.size());
  for (int64_t i = 0; i < n; ++i) {
    const float* x = &p[static_cast<size_t>(i * per)];
    double mean = 0;
    for (int64_t j = 0; j < per; ++j) mean += x[j];
    mean /= static_cast<double>(per);
    const double snr = snr_db[static_cast<size_t>(i)];
    const double noise = snr >= kClean ? 0.0 : mean / std::pow(10.0, snr / 10.0);
    for (int64_t j = 0; j < per; ++j) {
      const double total = x[j] + (noise > 0 ? noise * expo(rng) : 0.0) + 1e-4;
      out[static_cast<size_t>(i * per + j)] =
          static_cast<float>((10.0 * std::log10(total) - scale.mean) / scale.sd);
    }
  }
  return Tensor::from_vector(out, {n, kAudioFrames, kBins});
}

Tensor features(const Tensor& power, double snr_db, uint64_t seed, const FeatureScale& scale) {
  return features(power, std::vector<double>(static_cast<size_t>(power.size(0)), snr_db), seed,
                  scale);
}

Tensor silence(int64_t n, const FeatureScale& scale) {
  return features(Tensor::zeros({n, kAudioFrames, kBins}), kClean, 0, scale);
}

FeatureScale fit_scale(const Tensor& x) {
  MMGRAD_CHECK(x.numel() > 1, "avsr::fit_scale: ", describe(x), ", expected several values");
  const double mean = x.mean().item();
  const double sd = std::sqrt(((x - mean) * (x - mean)).mean().item());
  return {mean, std::max(sd, 1e-6)};
}

// ---- the model --------------------------------------------------------------------------------

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::Audio:
      return "audio only";
    case Mode::Video:
      return "video only";
    case Mode::Fused:
      return "fused";
  }
  return "?";
}

AVSRModel::AVSRModel(const ModelConfig& c) : config(c) {
  MMGRAD_CHECK(c.hidden > 0 && c.heads > 0 && c.hidden % c.heads == 0, "AVSRModel: hidden ",
               c.hidden, ", heads ", c.heads,
               ": expected positive sizes, hidden divisible by heads");
  const nn::LSTMOptions bf{.batch_first = true};
  if (c.mode != Mode::Video)
    audio_encoder =
        register_module("audio_encoder", std::make_shared<nn::LSTM>(kBins, c.hidden, bf));
  if (c.mode != Mode::Audio) {
    const int64_t k = c.conv1_kernel;
    conv1 = register_module("conv1", std::make_shared<nn::Conv3d>(1, c.c1, Triple3(3, k, k), 1,
                                                                  Triple3(1, k / 2, k / 2)));
    conv2 = register_module("conv2", std::make_shared<nn::Conv3d>(c.c1, c.c2, 3, 1, 1));
    video_encoder =
        register_module("video_encoder", std::make_shared<nn::LSTM>(c.c2 * 3 * 3, c.hidden, bf));
  }
  if (c.mode == Mode::Fused)
    fusion = register_module("fusion", std::make_shared<nn::MultiheadAttention>(c.hidden, c.heads));
  decoder = register_module("decoder", std::make_shared<nn::LSTM>(c.hidden, c.hidden, bf));
  classifier = register_module("classifier", std::make_shared<nn::Linear>(c.hidden, kWords));
}

Tensor AVSRModel::encode_audio(const Tensor& audio) {
  MMGRAD_CHECK(audio_encoder, "AVSRModel (", mode_name(config.mode), "): has no audio encoder");
  MMGRAD_CHECK(audio.defined() && audio.dim() == 3 && audio.size(1) == kAudioFrames &&
                   audio.size(2) == kBins,
               "AVSRModel: audio ", describe(audio), ", expected [B, ", kAudioFrames, ", ", kBins,
               "]");
  return audio_encoder->forward(audio);  // [B, 12, H]
}

Tensor AVSRModel::video_frontend(const Tensor& video) {
  MMGRAD_CHECK(conv1, "AVSRModel (", mode_name(config.mode), "): has no video encoder");
  MMGRAD_CHECK(video.defined() && video.dim() == 5 &&
                   video.shape() == Shape({video.size(0), 1, kVideoFrames, kMouth, kMouth}),
               "AVSRModel: video ", describe(video), ", expected [B, 1, ", kVideoFrames, ", ",
               kMouth, ", ", kMouth, "]");
  const int64_t B = video.size(0);
  // [B, 1, 6, 12, 12] -> conv 3xkxk (sees 3 frames: motion) -> [B, c1, 6, 12, 12] -> pool the
  // pixels 2x2, not the frames -> [B, c1, 6, 6, 6] -> conv 3x3x3 -> [B, c2, 6, 6, 6] -> average
  // to 3 x 3 cells per frame -> [B, c2, 6, 3, 3] -> one vector per frame [B, 6, c2 * 9].
  // Pixels in [0, 1] are centred and scaled, (x - 0.5) / 0.25, so the first layer starts with
  // inputs of both signs and about unit size (uncentred, a few seeds never left chance).
  Tensor h = max_pool3d(relu(conv1->forward((video - 0.5) * 4.0)), Triple3(1, 2, 2));
  h = adaptive_avg_pool3d(relu(conv2->forward(h)), Triple3(kVideoFrames, 3, 3));
  return h.permute({0, 2, 1, 3, 4}).reshape({B, kVideoFrames, frontend_size()});
}

Tensor AVSRModel::encode_video(const Tensor& video) {
  const bool ready = video.defined() && video.dim() == 3;  // front-end features already
  MMGRAD_CHECK(!ready || (video.size(1) == kVideoFrames && video.size(2) == frontend_size()),
               "AVSRModel: video features ", describe(video), ", expected [B, ", kVideoFrames, ", ",
               frontend_size(), "]");
  return video_encoder->forward(ready ? video : video_frontend(video));  // [B, 6, H]
}

void AVSRModel::init_from(AVSRModel& audio_model, AVSRModel& video_model, bool freeze_frontend) {
  MMGRAD_CHECK(config.mode == Mode::Fused && audio_model.audio_encoder && video_model.conv1 &&
                   audio_model.config.hidden == config.hidden &&
                   video_model.config.hidden == config.hidden &&
                   video_model.frontend_size() == frontend_size() &&
                   video_model.config.conv1_kernel == config.conv1_kernel &&
                   video_model.config.c1 == config.c1,
               "AVSRModel::init_from: expected a fused model and an audio and a video model of ",
               "the same sizes");
  NoGradGuard no_grad;
  const auto copy = [](nn::Module& dst, nn::Module& src) {
    std::vector<Tensor> d = dst.parameters(), s = src.parameters();
    for (size_t k = 0; k < d.size(); ++k) d[k].copy_(s[k]);
  };
  copy(*audio_encoder, *audio_model.audio_encoder);
  copy(*conv1, *video_model.conv1);
  copy(*conv2, *video_model.conv2);
  copy(*video_encoder, *video_model.video_encoder);
  if (freeze_frontend)
    for (nn::Module* c :
         {static_cast<nn::Module*>(conv1.get()), static_cast<nn::Module*>(conv2.get())})
      for (Tensor& t : c->parameters()) t.requires_grad_(false);
}

bool AVSRModel::frontend_frozen() const { return conv1 && !conv1->weight.requires_grad(); }

Tensor AVSRModel::forward(const Tensor& audio, const Tensor& video) {
  Tensor seq;
  if (config.mode == Mode::Audio) {
    seq = encode_audio(audio);
  } else if (config.mode == Mode::Video) {
    seq = encode_video(video);
  } else {
    MMGRAD_CHECK(audio.defined() && video.defined() && audio.size(0) == video.size(0),
                 "AVSRModel (fused): audio ", describe(audio), " and video ", describe(video),
                 ", expected both, with the same batch size");
    const Tensor a = encode_audio(audio), v = encode_video(video);
    // Each audio frame (query) asks every video frame (key) how relevant it is and takes the
    // softmax-weighted average of their values: what the lips showed around that sound.
    const nn::MultiheadAttentionOutput att = fusion->forward(a, v, v, {}, {}, false);
    seq = config.residual ? a + att.output : att.output;
  }
  const nn::LSTMOutput d = decoder->forward(seq, {});
  return classifier->forward(d.h_n.select(0, 0));  // the last layer's final state [B, H]
}

Tensor AVSRModel::forward(const Tensor& x) {
  fail(cat_str("AVSRModel: takes (audio, video), not one tensor ", describe(x)));
}

// ---- training ---------------------------------------------------------------------------------

std::string TrainOptions::str() const {
  return cat_str(steps, " steps of ", batch_size, ", Adam lr ", lr, ", SNR uniform in [", snr_lo,
                 ", ", snr_hi, "] dB or clean (p ", p_clean, "), audio dropout ", audio_dropout);
}

TrainLog train(AVSRModel& m, const Utterances& data, const FeatureScale& scale,
               const TrainOptions& o) {
  MMGRAD_CHECK(
      o.steps > 0 && o.batch_size > 0 && o.lr > 0 && o.snr_lo <= o.snr_hi && o.p_clean >= 0 &&
          o.p_clean <= 1 && o.audio_dropout >= 0 && o.audio_dropout < 1,
      "avsr::train: ", o.str(),
      ": expected positive steps, batch and lr, snr_lo <= snr_hi, probabilities in [0, 1)");
  const auto t0 = std::chrono::steady_clock::now();
  std::mt19937_64 rng(o.seed * 0x9E3779B97F4A7C15ULL + 1501);
  std::uniform_real_distribution<double> u01(0, 1);
  std::vector<Tensor> learn;  // every parameter but a frozen front-end's
  for (const Tensor& t : m.parameters())
    if (t.requires_grad()) learn.push_back(t);
  optim::Adam opt(learn, {.lr = o.lr});
  TrainLog log;
  m.train();
  const int64_t B = o.batch_size;
  const bool uses_audio = m.config.mode != Mode::Video, uses_video = m.config.mode != Mode::Audio;
  // A frozen front-end gives every utterance the same features at every step: compute them once.
  Tensor video_all = data.video;
  if (uses_video && m.frontend_frozen()) {
    NoGradGuard no_grad;
    std::vector<Tensor> parts;
    for (int64_t b = 0; b < data.size(); b += 500)
      parts.push_back(m.video_frontend(
          data.video.narrow(0, b, std::min<int64_t>(500, data.size() - b)).to(o.device)));
    video_all = cat(parts, 0).to(kCPU);
  }
  for (int64_t step = 0; step < o.steps; ++step) {
    const double warm = std::min(1.0, (step + 1) / 20.0);
    const double cosine = 0.55 + 0.45 * std::cos(M_PI * step / static_cast<double>(o.steps));
    opt.set_lr(o.lr * warm * cosine);
    std::vector<int64_t> idx(B);
    std::vector<double> snr(B);
    std::vector<float> keep(B, 1.0f);
    for (int64_t b = 0; b < B; ++b) {
      idx[b] = static_cast<int64_t>(rng() % static_cast<uint64_t>(data.size()));
      snr[b] = u01(rng) < o.p_clean ? kClean : o.snr_lo + (o.snr_hi - o.snr_lo) * u01(rng);
      if (o.audio_dropout > 0 && u01(rng) < o.audio_dropout) keep[b] = 0.0f;
    }
    const Tensor rows = Tensor::from_vector(idx);
    const Utterances batch = data.rows(rows);
    Tensor audio, video;
    if (uses_audio) {
      audio = features(batch.power, snr, rng(), scale);
      if (o.audio_dropout > 0) {
        // Modality dropout: the dropped utterances' audio becomes silence.
        const Tensor k = Tensor::from_vector(keep, {B, 1, 1});
        audio = audio * k + silence(B, scale) * (1.0 - k);
      }
      audio = audio.to(o.device);
    }
    if (uses_video) video = index_select(video_all, 0, rows).to(o.device);
    Tensor loss = cross_entropy(m.forward(audio, video), batch.labels.to(o.device));
    opt.zero_grad();
    loss.backward();
    optim::clip_grad_norm_(learn, 1.0);  // the usual guard for recurrent nets: no blow-ups
    opt.step();
    log.loss.push_back(loss.item());
  }
  m.eval();
  log.seconds = seconds_since(t0);
  return log;
}

Tensor predict(AVSRModel& m, const Tensor& audio, const Utterances& u, Device device) {
  NoGradGuard no_grad;
  m.eval();
  const bool uses_audio = m.config.mode != Mode::Video, uses_video = m.config.mode != Mode::Audio;
  std::vector<Tensor> parts;
  const int64_t n = u.size(), chunk = 500;
  for (int64_t b = 0; b < n; b += chunk) {
    const int64_t len = std::min(chunk, n - b);
    const Tensor a = uses_audio ? audio.narrow(0, b, len).to(device) : Tensor();
    const Tensor v = uses_video ? u.video.narrow(0, b, len).to(device) : Tensor();
    parts.push_back(argmax(m.forward(a, v), 1).to(kCPU));
  }
  return cat(parts, 0);
}

double accuracy(AVSRModel& m, const Tensor& audio, const Utterances& u, Device device) {
  const Tensor pred = predict(m, audio, u, device);
  return eq(pred, u.labels).to(kFloat32).mean().item();
}

}  // namespace mmgrad::avsr
