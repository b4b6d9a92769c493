#include "12_audio_clip/audio_clip.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numbers>

#include "common/format.h"
#include "mmgrad/autograd/grad_mode.h"
#include "mmgrad/data/loader.h"
#include "mmgrad/ops/elementwise.h"
#include "mmgrad/ops/index.h"
#include "mmgrad/ops/loss.h"
#include "mmgrad/ops/matmul.h"
#include "mmgrad/ops/norm.h"
#include "mmgrad/optim/lr_scheduler.h"
#include "mmgrad/optim/optim.h"

namespace mmgrad::audioclip {

// ---- the sounds ---------------------------------------------------------------------------------

const std::vector<ClassSound>& fmnist_sounds() {
  // description, f0, glide, vibrato, harmonics, rolloff, notes, noise
  static const std::vector<ClassSound> s = {
      {"two mellow notes at 220 Hz", 220, 0, 0, 3, 2.0, 2, 0},                     // T-shirt/top
      {"one long falling tone from 330 Hz", 330, -0.35, 0, 2, 2.0, 1, 0},          // Trouser
      {"two bright notes at 196 Hz, slight vibrato", 196, 0, 0.02, 6, 1.0, 2, 0},  // Pullover
      {"one rising tone from 440 Hz", 440, 0.3, 0, 3, 1.5, 1, 0},                  // Dress
      {"three buzzy notes at 175 Hz", 175, 0, 0, 8, 0.8, 3, 0},                    // Coat
      {"four high clicks at 1200 Hz", 1200, 0, 0, 1, 2.0, 4, 0.3},                 // Sandal
      {"three mellow notes at 247 Hz, vibrato", 247, 0, 0.03, 3, 2.0, 3, 0},       // Shirt
      {"four falling chirps from 880 Hz", 880, -0.25, 0, 2, 1.5, 4, 0.1},          // Sneaker
      {"one low buzzing thud at 110 Hz", 110, 0, 0, 10, 0.7, 1, 0.4},              // Bag
      {"two rising notes from 587 Hz, vibrato", 587, 0.25, 0.03, 4, 1.2, 2, 0},    // Ankle boot
  };
  return s;
}

std::string SoundConfig::str() const {
  return lesson::format("{} Hz, {} samples ({:.2f} s), pitch sd {:.2f}, noise {:.2f}-{:.2f}",
                        sample_rate, samples, static_cast<double>(samples) / sample_rate, pitch_sd,
                        noise_min, noise_max);
}

namespace {

// A tiny counter-based generator (splitmix64): draw k of clip (seed, index) is a pure function of
// (seed, index, k), so every clip is the same whatever order or thread makes it.
struct ClipRng {
  uint64_t key;
  uint64_t k = 0;
  ClipRng(uint64_t seed, uint64_t index)
      : key(seed * 0x9E3779B97F4A7C15ull ^ (index + 1) * 0xD1B54A32D192ED03ull) {}
  uint64_t bits() {
    uint64_t z = key + (++k) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(bits() >> 11) * 0x1p-53; }  // [0, 1)
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
  double normal() {  // Box-Muller
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }
};

}  // namespace

std::vector<float> synthesize(int64_t cls, uint64_t seed, uint64_t index, const SoundConfig& c) {
  const auto& sounds = fmnist_sounds();
  MMGRAD_CHECK(cls >= 0 && cls < static_cast<int64_t>(sounds.size()), "synthesize: class ", cls,
               " is outside [0, ", sounds.size(), ")");
  MMGRAD_CHECK(c.sample_rate >= 1000 && c.samples >= 64, "synthesize: ", c.str(),
               "; expected a sample rate >= 1000 Hz and at least 64 samples");
  const ClassSound& s = sounds[cls];
  ClipRng rng(seed, index);
  const double sr = static_cast<double>(c.sample_rate);
  const int64_t L = c.samples;
  std::vector<double> x(static_cast<size_t>(L), 0.0);
  // What varies from clip to clip: pitch, glide amount, loudness, timing, partial amplitudes.
  const double f0 = s.f0 * std::exp(c.pitch_sd * rng.normal());
  const double glide = s.glide * (1.0 + 0.3 * rng.normal());
  const double loud = rng.uniform(0.3, 0.8);
  std::vector<double> partial(static_cast<size_t>(s.harmonics));
  for (int h = 0; h < s.harmonics; ++h)
    partial[h] = std::pow(h + 1.0, -s.rolloff) * std::exp(0.25 * rng.normal());
  const double slot = static_cast<double>(L) / s.notes;
  for (int n = 0; n < s.notes; ++n) {
    const double start = n * slot + rng.uniform(0.0, 0.2) * slot;
    const double len = rng.uniform(0.55, 0.8) * slot;
    const double vib_phase = rng.uniform(0.0, 2.0 * std::numbers::pi);
    double phase = 0;  // the running phase of the fundamental: pitch may change within the note
    for (int64_t t = static_cast<int64_t>(start); t < std::min<int64_t>(L, start + len); ++t) {
      const double u = (static_cast<double>(t) - start) / len;  // 0 .. 1 through the note
      const double f =
          f0 * (1.0 + glide * u) *
          (1.0 + s.vibrato * std::sin(2.0 * std::numbers::pi * 6.0 * t / sr + vib_phase));
      phase += 2.0 * std::numbers::pi * f / sr;
      // 5 ms attack, then an exponential decay to about 10% at the note's end.
      const double env =
          std::min(1.0, (static_cast<double>(t) - start) / (0.005 * sr)) * std::exp(-2.3 * u);
      // Partials sin(k phase), k = 1, 2, ..., by the recurrence sin((k+1)p) = 2 cos(p) sin(kp) -
      // sin((k-1)p): two trigonometric calls per sample instead of one per partial. Partials
      // above the Nyquist frequency sr / 2 are left out (they would alias to a wrong pitch).
      const double c2 = 2.0 * std::cos(phase);
      double v = 0, prev = 0, cur = std::sin(phase);
      for (int h = 0; h < s.harmonics && f * (h + 1) < sr / 2; ++h) {
        v += partial[h] * cur;
        const double next = c2 * cur - prev;
        prev = cur;
        cur = next;
      }
      // A noise burst in the first fifth of the note: a click (short) or a thud.
      if (s.noise > 0 && u < 0.2) v += s.noise * 4.0 * (1.0 - 5.0 * u) * rng.normal();
      x[t] += loud * env * v;
    }
  }
  // Normalise the peak of the tone to `loud`, then add background noise.
  double peak = 1e-9;
  for (double v : x) peak = std::max(peak, std::abs(v));
  const double noise_sd = loud * rng.uniform(c.noise_min, c.noise_max);
  std::vector<float> out(static_cast<size_t>(L));
  for (int64_t t = 0; t < L; ++t)
    out[t] =
        static_cast<float>(std::clamp(x[t] * loud / peak + noise_sd * rng.normal(), -1.0, 1.0));
  return out;
}

Tensor synthesize_batch(const Tensor& labels, uint64_t seed, const SoundConfig& c) {
  MMGRAD_CHECK(labels.defined() && labels.dim() == 1 && labels.dtype() == kInt64,
               "synthesize_batch: expects int64 labels [N]");
  const std::vector<int64_t> y = labels.cpu().to_vector<int64_t>();
  const int64_t N = static_cast<int64_t>(y.size()), L = c.samples;
  std::vector<float> all(static_cast<size_t>(N * L));
#pragma omp parallel for schedule(static) if (N > 64)
  for (int64_t n = 0; n < N; ++n) {
    const std::vector<float> clip = synthesize(y[n], seed, static_cast<uint64_t>(n), c);
    std::copy(clip.begin(), clip.end(), all.begin() + n * L);
  }
  return Tensor::from_vector(all, {N, L});
}

// ---- features
// ------------------------------------------------------------------------------------

audio::LogMelOptions log_mel_options(const SoundConfig& c) {
  audio::LogMelOptions o;
  o.sample_rate = c.sample_rate;
  o.stft.n_fft = 256;
  o.stft.hop_length = 128;
  o.n_mels = 32;
  o.f_min = 60.0;
  o.scale = audio::MelScale::Slaney;
  return o;
}

FeatureScale feature_scale(const Tensor& log_mel) {
  FeatureScale s;
  s.mean = log_mel.to(kFloat64).mean().item();
  s.sd = std::sqrt((log_mel.to(kFloat64) - s.mean).square().mean().item());
  MMGRAD_CHECK(s.sd > 0, "feature_scale: all values are equal (", s.mean, " dB)");
  return s;
}

Tensor standardize(const Tensor& lm, const FeatureScale& scale) {
  MMGRAD_CHECK(lm.defined() && lm.dim() == 3,
               "standardize: expects log-mel spectrograms [N, M, T]");
  return ((lm - scale.mean) * (1.0 / scale.sd)).reshape({lm.size(0), 1, lm.size(1), lm.size(2)});
}

Tensor audio_features(const Tensor& waveforms, const audio::LogMelOptions& o,
                      const FeatureScale& scale) {
  return standardize(audio::log_mel_spectrogram(waveforms, o), scale);
}

// ---- the loss
// ------------------------------------------------------------------------------------

SixWayLoss six_way_loss(const Tensor& audio, const Tensor& image, const Tensor& text,
                        const Tensor& logit_scale) {
  MMGRAD_CHECK(audio.defined() && image.defined() && text.defined() && audio.dim() == 2 &&
                   audio.shape() == image.shape() && audio.shape() == text.shape(),
               "six_way_loss: expects audio, image and text embeddings of one shape [N, D], got ",
               audio.defined() ? audio.shape_str() : "undefined", ", ",
               image.defined() ? image.shape_str() : "undefined", ", ",
               text.defined() ? text.shape_str() : "undefined");
  // One temperature for all three pairs, capped at 100 as in CLIP.
  const Tensor s = exp(clamp_max(logit_scale, std::log(100.0)));
  const Tensor a = normalize(audio, 1), i = normalize(image, 1), t = normalize(text, 1);
  const Tensor target = Tensor::arange(audio.size(0)).to(audio.device());
  // L(x -> y): row n of x must pick column n of y among all N.
  auto direction = [&](const Tensor& x, const Tensor& y) {
    return cross_entropy(s * matmul(x, y.t()), target);
  };
  SixWayLoss r;
  r.terms = {direction(a, i), direction(i, a), direction(a, t),
             direction(t, a), direction(i, t), direction(t, i)};
  Tensor sum = r.terms[0];
  for (size_t k = 1; k < r.terms.size(); ++k) sum = sum + r.terms[k];
  r.loss = sum * (1.0 / 6.0);
  return r;
}

// ---- the model
// -----------------------------------------------------------------------------------

std::shared_ptr<clip::ImageEncoder> make_audio_encoder(int64_t embed_dim,
                                                       const std::vector<int64_t>& channels) {
  clip::ImageEncoderOptions o;
  o.in_channels = 1;
  o.channels = channels;
  o.embed_dim = embed_dim;
  o.pool_size = 4;  // a 32 x 32 spectrogram is 8 x 8 after two poolings; keep 4 x 4 of it
  return std::make_shared<clip::ImageEncoder>(o);
}

AudioCLIP::AudioCLIP(std::shared_ptr<clip::MiniCLIP> c, std::shared_ptr<clip::ImageEncoder> a,
                     double init_temperature) {
  clip = register_module("clip", std::move(c));
  audio_encoder = register_module("audio_encoder", std::move(a));
  audio_logit_scale =
      register_parameter("audio_logit_scale", Tensor::scalar(std::log(1.0 / init_temperature)));
}

Tensor AudioCLIP::encode_audio(const Tensor& features) {
  return normalize(audio_encoder->forward(features), 1);
}

// ---- training
// ------------------------------------------------------------------------------------

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::unique_ptr<optim::LRScheduler> schedule(optim::Optimizer& opt, const clip::TrainOptions& o) {
  return std::make_unique<optim::CosineWithWarmup>(opt, o.warmup_steps, o.steps,
                                                   o.lr * o.min_lr_ratio);
}

void log_step(const clip::TrainOptions& o, int64_t step, double loss, double temperature,
              std::chrono::steady_clock::time_point t0) {
  if (o.log_every > 0 && ((step + 1) % o.log_every == 0 || step == 0)) {
    lesson::print("  step {:4}/{}  loss {:.4f}  temperature {:.4f}  {}", step + 1, o.steps, loss,
                  temperature, lesson::progress_time(step + 1, o.steps, seconds_since(t0)));
    std::fflush(stdout);
  }
}

}  // namespace

TrainLog train_six_way(AudioCLIP& model, const Tensor& images, const Tensor& labels,
                       const Tensor& features, const clip::CaptionBank& captions,
                       const clip::TrainOptions& o, Device device) {
  const char* op = "train_six_way";
  MMGRAD_CHECK(
      features.defined() && features.dim() == 4 && features.size(0) == images.size(0), op,
      ": expects one audio clip per image, features [N, 1, M, T] with N = ", images.size(0));
  clip::ClipBatches batches(images, labels, captions, o, device, op);
  std::vector<Tensor> params = model.clip->parameters();
  for (const Tensor& p : model.audio_encoder->parameters()) params.push_back(p);
  optim::Adam opt(params, optim::AdamOptions{.lr = o.lr});
  auto sched = schedule(opt, o);
  TrainLog log;
  const auto t0 = std::chrono::steady_clock::now();
  model.train();
  for (int64_t step = 0; step < o.steps; ++step) {
    clip::ClipBatches::Batch b = batches.next(step);
    opt.zero_grad();
    const Tensor idx = Tensor::from_vector(b.idx);
    const Tensor aud = model.audio_encoder->forward(index_select(features, 0, idx).to(device));
    const Tensor img = model.clip->image_encoder->forward(b.images);
    const Tensor txt = index_select(model.clip->text_encoder->forward(b.tokens), 0, b.gather);
    SixWayLoss l = six_way_loss(aud, img, txt, model.clip->criterion->logit_scale);
    l.loss.backward();
    opt.step();
    sched->step();
    model.clip->criterion->clamp_logit_scale_();
    log.losses.push_back(l.loss.item());
    for (size_t k = 0; k < 6; ++k) log.terms[k].push_back(l.terms[k].item());
    MMGRAD_CHECK(std::isfinite(log.losses.back()), op, ": the loss became ", log.losses.back(),
                 " at step ", step, " (", o.str(), "); lower the learning rate");
    log_step(o, step, log.losses.back(), model.clip->criterion->temperature(), t0);
  }
  model.eval();
  log.seconds = seconds_since(t0);
  return log;
}

TrainLog train_audio_to_images(AudioCLIP& model, const Tensor& features, const Tensor& image_emb,
                               const clip::TrainOptions& o, Device device) {
  const char* op = "train_audio_to_images";
  MMGRAD_CHECK(features.defined() && image_emb.defined() && features.dim() == 4 &&
                   image_emb.dim() == 2 && features.size(0) == image_emb.size(0) &&
                   features.size(0) >= o.batch_size && o.batch_size >= 2 && o.steps >= 1,
               op, ": expects features [N, 1, M, T] and image embeddings [N, D] with N >= batch ",
               "size ", o.batch_size, " >= 2");
  // Only the audio side learns: the CLIP's parameters are not given to the optimizer, and the
  // image embeddings were computed once, without gradient.
  std::vector<Tensor> params = model.audio_encoder->parameters();
  params.push_back(model.audio_logit_scale);
  optim::Adam opt(params, optim::AdamOptions{.lr = o.lr});
  auto sched = schedule(opt, o);
  const int64_t N = features.size(0), per_epoch = N / o.batch_size;
  TrainLog log;
  const auto t0 = std::chrono::steady_clock::now();
  model.train();
  std::vector<int64_t> order;
  for (int64_t step = 0; step < o.steps; ++step) {
    const int64_t epoch = step / per_epoch, at = step % per_epoch;
    if (at == 0) order = data::permutation(N, o.seed, static_cast<uint64_t>(epoch));
    const Tensor idx = Tensor::from_vector(std::vector<int64_t>(
        order.begin() + at * o.batch_size, order.begin() + (at + 1) * o.batch_size));
    opt.zero_grad();
    const Tensor aud = model.audio_encoder->forward(index_select(features, 0, idx).to(device));
    const Tensor img = index_select(image_emb, 0, idx).to(device);
    const Tensor loss = nn::clip_loss(aud, img, model.audio_logit_scale).loss;
    loss.backward();
    opt.step();
    sched->step();
    {
      NoGradGuard g;  // CLIP's cap on the scale, as clamp_logit_scale_ does for the CLIP's own
      model.audio_logit_scale.copy_(model.audio_logit_scale.clamp(0.0, std::log(100.0)));
    }
    log.losses.push_back(loss.item());
    MMGRAD_CHECK(std::isfinite(log.losses.back()), op, ": the loss became ", log.losses.back(),
                 " at step ", step, "; lower the learning rate");
    log_step(o, step, log.losses.back(),
             1.0 / std::exp(std::min(model.audio_logit_scale.item(), std::log(100.0))), t0);
  }
  model.eval();
  log.seconds = seconds_since(t0);
  return log;
}

Tensor encode_audio(AudioCLIP& model, const Tensor& features, Device device, int64_t batch_size) {
  MMGRAD_CHECK(features.defined() && features.dim() == 4 && features.size(0) > 0 && batch_size > 0,
               "encode_audio: expects a non-empty batch of features [N, 1, M, T]");
  NoGradGuard g;
  const bool was_training = model.is_training();
  model.eval();
  std::vector<Tensor> parts;
  for (int64_t s = 0; s < features.size(0); s += batch_size) {
    const int64_t len = std::min(batch_size, features.size(0) - s);
    parts.push_back(model.encode_audio(features.narrow(0, s, len).to(device)).cpu());
  }
  model.train(was_training);
  return cat(parts, 0);
}

}  // namespace mmgrad::audioclip
