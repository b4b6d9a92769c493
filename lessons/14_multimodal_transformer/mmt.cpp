#include "14_multimodal_transformer/mmt.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <random>

#include "mmgrad/data/audio.h"
#include "mmgrad/metrics/metrics.h"
#include "mmgrad/mmgrad.h"

namespace mmgrad::mmt {

namespace {

// Caption words: 0..2 articles/adjectives, then the three sound words, then the nouns.
enum Word : int64_t { kA = 0, kThe, kLoud, kSoft, kThud, kFall, kClicks, kSound, kNoise, kVocab };

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

const std::array<const char*, 3>& texture_names() {
  static const std::array<const char*, 3> n = {"horizontal stripes", "vertical stripes",
                                               "checkerboard"};
  return n;
}

const std::array<const char*, 3>& sound_names() {
  static const std::array<const char*, 3> n = {"thud", "fall", "clicks"};
  return n;
}

const std::vector<std::string>& vocabulary() {
  static const std::vector<std::string> v = {"a",    "the",    "loud",  "soft", "thud",
                                             "fall", "clicks", "sound", "noise"};
  return v;
}

// Lesson 12's signatures: "one low buzzing thud at 110 Hz" (bag), "one long falling tone from
// 330 Hz" (trouser), "four high clicks at 1200 Hz" (sandal): three clearly different sounds.
int64_t sound_signature(int64_t q) {
  MMGRAD_CHECK(q >= 0 && q < 3, "sound_signature: sound ", q, " is outside [0, 3)");
  static const int64_t sig[3] = {8, 1, 5};
  return sig[q];
}

// ---- data -------------------------------------------------------------------------------------

Samples Samples::rows(const Tensor& idx) const {
  return {index_select(audio, 0, idx),  index_select(image, 0, idx),
          index_select(text, 0, idx),   index_select(present, 0, idx),
          index_select(labels, 0, idx), index_select(texture, 0, idx),
          index_select(sound, 0, idx)};
}

Samples Samples::without(Modality m) const {
  Samples s = *this;
  std::vector<float> keep = {1, 1, 1};
  keep[m] = 0;
  s.present = present * Tensor::from_vector(keep, {1, 3});
  if (m == kAudio) s.audio = Tensor::zeros(audio.shape());
  if (m == kImage) s.image = Tensor::zeros(image.shape());
  if (m == kText) s.text = Tensor::zeros(text.shape(), TensorOptions(kInt64));
  return s;
}

Samples Samples::with_only_present(Modality m) const {
  const std::vector<float> p = present.select(1, m).contiguous().to_vector<float>();
  std::vector<int64_t> idx;
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] > 0.5f) idx.push_back(static_cast<int64_t>(i));
  MMGRAD_CHECK(!idx.empty(), "Samples::with_only_present: no sample has its ", kModalityNames[m]);
  return rows(Tensor::from_vector(idx));
}

Samples Samples::to(Device device) const {
  return {audio.to(device),  image.to(device),   text.to(device), present.to(device),
          labels.to(device), texture.to(device), sound.to(device)};
}

Samples make_samples(int64_t n, uint64_t seed, const TaskConfig& config, AudioScale& scale) {
  MMGRAD_CHECK(n > 0, "make_samples: n = ", n, ", expected at least one sample");
  MMGRAD_CHECK(config.caption_reliability >= 0 && config.caption_reliability <= 1 &&
                   config.audio_rate >= 0 && config.audio_rate <= 1 && config.image_noise >= 0,
               "make_samples: caption_reliability ", config.caption_reliability, ", audio_rate ",
               config.audio_rate, " (expected in [0, 1]), image_noise ", config.image_noise,
               " (expected >= 0)");
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + 14);
  std::uniform_int_distribution<int> three(0, 2), two(0, 1);
  std::uniform_real_distribution<double> u01(0, 1), contrast(0.6, 1.2);
  std::normal_distribution<double> noise(0, 1);
  std::vector<int64_t> p(n), q(n), y(n), words(n * kTextTokens), sig(n);
  std::vector<float> pixels(n * kImageSize * kImageSize), present(n * 3, 1.0f);
  for (int64_t i = 0; i < n; ++i) {
    p[i] = three(rng);
    q[i] = three(rng);
    y[i] = (p[i] + q[i]) % 3;
    sig[i] = sound_signature(q[i]);
    // The image: +-c stripes (or checks) with a random phase, plus noise.
    const double c = contrast(rng);
    const int phase = two(rng);
    for (int64_t r = 0; r < kImageSize; ++r)
      for (int64_t col = 0; col < kImageSize; ++col) {
        const int64_t k = p[i] == 0 ? r : p[i] == 1 ? col : r + col;
        const double v = ((k + phase) % 2 == 0 ? c : -c) + config.image_noise * noise(rng);
        pixels[(i * kImageSize + r) * kImageSize + col] = static_cast<float>(v);
      }
    // The caption: "<a|the> <loud|soft> <sound word> <sound|noise>"; the sound word is right
    // with probability caption_reliability, otherwise any of the three (possibly right by luck).
    const int64_t said = u01(rng) < config.caption_reliability ? q[i] : three(rng);
    int64_t* w = &words[i * kTextTokens];
    w[0] = two(rng) ? kA : kThe;
    w[1] = two(rng) ? kLoud : kSoft;
    w[2] = kThud + said;
    w[3] = two(rng) ? kSound : kNoise;
    if (u01(rng) >= config.audio_rate) present[i * 3 + kAudio] = 0;
  }
  Samples s;
  s.labels = Tensor::from_vector(y);
  s.texture = Tensor::from_vector(p);
  s.sound = Tensor::from_vector(q);
  s.text = Tensor::from_vector(words, {n, kTextTokens});
  s.present = Tensor::from_vector(present, {n, 3});
  // 8x8 image -> four 4x4 patches, row-major: [N, 2, 4, 2, 4] -> [N, 2, 2, 4, 4] -> [N, 4, 16].
  s.image = Tensor::from_vector(pixels, {n, 2, kPatch, 2, kPatch})
                .permute({0, 1, 3, 2, 4})
                .reshape({n, kImageTokens, kPatchDim});
  // The sound: lesson 12's clip of signature sig[i] (clip i of seed `seed`), its log-mel
  // spectrogram [N, 32 mels, 32 frames], standardised, then 4 frames averaged per token:
  // [N, 32, 8, 4] -> mean -> [N, 32, 8] -> tokens [N, 8, 32] (one per 64 ms).
  const Tensor waves = audioclip::synthesize_batch(Tensor::from_vector(sig), seed, config.sound);
  const Tensor lm = audio::log_mel_spectrogram(waves, audioclip::log_mel_options(config.sound));
  MMGRAD_CHECK(lm.size(1) == kMels && lm.size(2) == kAudioTokens * 4, "make_samples: log-mel ",
               describe(lm), ", expected [N, ", kMels, ", ", kAudioTokens * 4, "]");
  if (!scale.fitted) {
    scale.scale = audioclip::feature_scale(lm);
    scale.fitted = true;
  }
  Tensor feats = ((lm - scale.scale.mean) * (1.0 / scale.scale.sd))
                     .reshape({n, kMels, kAudioTokens, 4})
                     .mean({3})
                     .transpose(1, 2)
                     .contiguous();
  s.audio = feats * s.present.select(1, kAudio).reshape({n, 1, 1});  // zero where missing
  return s;
}

// ---- models -----------------------------------------------------------------------------------

Tensor MultimodalClassifier::forward_unimodal(const Samples&) {
  fail(cat_str(name(), ": has no unimodal head (the curriculum needs the multimodal transformer)"));
}

Tensor MultimodalClassifier::forward(const Tensor& x) {
  fail(cat_str(name(), ": takes Samples (audio, image, text, present), not one tensor ",
               describe(x)));
}

std::string MMTConfig::str() const {
  return cat_str("d_model ", d_model, ", ", heads, " heads, ", layers, " layers, feed-forward ",
                 dim_feedforward, ", modality embeddings ", modality_embeddings ? "on" : "off");
}

MultimodalTransformer::MultimodalTransformer(const MMTConfig& c) : config(c) {
  MMGRAD_CHECK(c.d_model > 0 && c.heads > 0 && c.d_model % c.heads == 0 && c.layers > 0 &&
                   c.dim_feedforward > 0,
               "MultimodalTransformer: ", c.str(), ": expected positive sizes, d_model divisible ",
               "by heads");
  audio_proj = register_module("audio_proj", std::make_shared<nn::Linear>(kMels, c.d_model));
  image_proj = register_module("image_proj", std::make_shared<nn::Linear>(kPatchDim, c.d_model));
  text_embed = register_module(
      "text_embed", std::make_shared<nn::Embedding>(static_cast<int64_t>(kVocab), c.d_model));
  if (c.modality_embeddings) {
    modality_embed =
        register_module("modality_embed", std::make_shared<nn::Embedding>(3, c.d_model));
    // Small, as BERT's token-type embeddings (N(0, 0.02)), not nn::Embedding's N(0, 1): a unit
    // normal row has norm sqrt(d) ~ 5.7, larger than the projected content of a token, and the
    // encoder's first LayerNorm then sees mostly "which modality" and little "what". With N(0, 1)
    // this lesson measured 0.72 instead of 0.93 held-out accuracy at --quick (both seeds worse).
    nn::init::normal_(modality_embed->weight, 0.0, 0.02);
  }
  nn::TransformerLayerOptions layer;
  layer.d_model = c.d_model;
  layer.nhead = c.heads;
  layer.dim_feedforward = c.dim_feedforward;
  layer.dropout = 0.0;  // small data, short training: dropout only slows learning here
  encoder = register_module("encoder", std::make_shared<nn::TransformerEncoder>(layer, c.layers));
  classifier = register_module("classifier", std::make_shared<nn::Linear>(c.d_model, kClasses));
  unimodal_head =
      register_module("unimodal_head", std::make_shared<nn::Linear>(c.d_model, kClasses));
  std::vector<int64_t> tm;
  for (int64_t k = 0; k < kAudioTokens; ++k) tm.push_back(kAudio);
  for (int64_t k = 0; k < kImageTokens; ++k) tm.push_back(kImage);
  for (int64_t k = 0; k < kTextTokens; ++k) tm.push_back(kText);
  token_modality = register_buffer("token_modality", Tensor::from_vector(tm), false);
}

Tensor MultimodalTransformer::encode(const Samples& in) {
  const int64_t B = in.size();
  MMGRAD_CHECK(in.audio.defined() && in.audio.shape() == Shape({B, kAudioTokens, kMels}) &&
                   in.image.shape() == Shape({B, kImageTokens, kPatchDim}) &&
                   in.text.shape() == Shape({B, kTextTokens}) &&
                   in.present.shape() == Shape({B, 3}),
               "MultimodalTransformer: got audio ", describe(in.audio), ", image ",
               describe(in.image), ", text ", describe(in.text), ", present ", describe(in.present),
               "; expected [B, 8, 32], [B, 4, 16], int64 [B, 4], [B, 3]");
  // A sample with no modality at all would attend to nothing (softmax over no key): refuse it.
  MMGRAD_CHECK(in.present.sum({1}).min().item() > 0.5,
               "MultimodalTransformer: a sample has no modality present (present ",
               describe(in.present), ")");
  Tensor a = audio_proj->forward(in.audio);                             // [B, 8, d]
  Tensor i = image_proj->forward(in.image);                             // [B, 4, d]
  Tensor t = text_embed->forward(in.text);                              // [B, 4, d]
  Tensor x = cat({a, i, t}, 1);                                         // [B, 16, d]
  if (modality_embed) x = x + modality_embed->forward(token_modality);  // + [16, d], broadcast
  // keep [B, 16]: 1 where the token's modality is present. key_padding_mask = not keep.
  Tensor keep = index_select(in.present, 1, token_modality);
  Tensor h = encoder->forward(x, {}, keep < 0.5);
  Tensor w = keep.unsqueeze(2);  // [B, 16, 1]
  return (h * w).sum({1}) / w.sum({1});
}

Tensor MultimodalTransformer::forward(const Samples& in) { return classifier->forward(encode(in)); }

Tensor MultimodalTransformer::forward_unimodal(const Samples& in) {
  return unimodal_head->forward(encode(in));
}

LateFusion::LateFusion(int64_t hidden) {
  audio_in = register_module("audio_in", std::make_shared<nn::Linear>(kMels, hidden));
  image_in = register_module("image_in", std::make_shared<nn::Linear>(kPatchDim, hidden));
  text_in = register_module("text_in",
                            std::make_shared<nn::Embedding>(static_cast<int64_t>(kVocab), hidden));
  for (int m = 0; m < 3; ++m) {
    hidden_layer[m] = register_module(cat_str("hidden_", kModalityNames[m]),
                                      std::make_shared<nn::Linear>(hidden, hidden));
    head[m] = register_module(cat_str("head_", kModalityNames[m]),
                              std::make_shared<nn::Linear>(hidden, kClasses));
  }
}

Tensor LateFusion::forward(const Samples& in) {
  const int64_t B = in.size();
  MMGRAD_CHECK(in.present.defined() && in.present.shape() == Shape({B, 3}), "LateFusion: present ",
               describe(in.present), ", expected [", B, ", 3]");
  const Tensor x[3] = {audio_in->forward(in.audio), image_in->forward(in.image),
                       text_in->forward(in.text)};
  Tensor sum, count;
  for (int m = 0; m < 3; ++m) {
    // One modality's classifier: per-token MLP, mean over its tokens, 3 logits.
    Tensor logits = head[m]->forward(relu(hidden_layer[m]->forward(relu(x[m]))).mean({1}));
    Tensor p = in.present.select(1, m).unsqueeze(1);  // [B, 1]
    sum = m == 0 ? logits * p : sum + logits * p;
    count = m == 0 ? p : count + p;
  }
  return sum / clamp_min(count, 1.0);  // the average over the present modalities
}

// ---- training ---------------------------------------------------------------------------------

const char* schedule_name(Schedule s) {
  switch (s) {
    case Schedule::Plain:
      return "plain";
    case Schedule::Curriculum:
      return "curriculum";
    case Schedule::Gradual:
      return "gradual";
  }
  return "?";
}

std::string TrainOptions::str() const {
  return cat_str(steps, " steps of ", batch_size, ", Adam lr ", lr, ", ",
                 sampling == Sampling::Balanced ? "modality-balanced" : "uniform", " sampling, ",
                 schedule_name(schedule), " schedule, modality dropout (a/i/t) ",
                 modality_dropout[0], "/", modality_dropout[1], "/", modality_dropout[2]);
}

double accuracy(MultimodalClassifier& m, const Samples& s, Device device, int64_t batch_size) {
  NoGradGuard no_grad;
  m.eval();
  int64_t correct = 0;
  for (int64_t b = 0; b < s.size(); b += batch_size) {
    const int64_t len = std::min(batch_size, s.size() - b);
    std::vector<int64_t> idx(len);
    for (int64_t k = 0; k < len; ++k) idx[k] = b + k;
    const Samples part = s.rows(Tensor::from_vector(idx));
    const Tensor logits = m.forward(part.to(device)).to(kCPU);
    correct += static_cast<int64_t>(
        std::llround(metrics::accuracy(logits, part.labels) * static_cast<double>(len)));
  }
  return static_cast<double>(correct) / static_cast<double>(s.size());
}

TrainLog train(MultimodalClassifier& m, const Samples& data, const Samples& heldout,
               const TrainOptions& o) {
  MMGRAD_CHECK(o.steps > 0 && o.batch_size > 0 && o.lr > 0 && o.eval_every > 0,
               "mmt::train: ", o.str(), ": expected positive steps, batch size, lr and eval_every");
  for (double p : o.modality_dropout)
    MMGRAD_CHECK(p >= 0 && p < 1, "mmt::train: modality dropout ", p, ", expected in [0, 1)");
  const auto t0 = std::chrono::steady_clock::now();
  std::mt19937_64 rng(o.seed * 0x9E3779B97F4A7C15ULL + 1414);
  std::uniform_real_distribution<double> u01(0, 1);
  // The combinations of present modalities (a 3-bit code per sample) and their members.
  const std::vector<float> pres = data.present.contiguous().to_vector<float>();
  std::map<int, std::vector<int64_t>> groups;
  for (int64_t i = 0; i < data.size(); ++i) {
    int code = 0;
    for (int k = 0; k < 3; ++k) code |= (pres[i * 3 + k] > 0.5f) << k;
    groups[code].push_back(i);
  }
  std::vector<const std::vector<int64_t>*> group_list;
  for (const auto& [code, members] : groups) group_list.push_back(&members);

  optim::Adam opt(m.parameters(), {.lr = o.lr});
  TrainLog log;
  m.train();
  const int64_t B = o.batch_size;
  for (int64_t step = 0; step < o.steps; ++step) {
    opt.set_lr(o.lr * std::min(1.0, (step + 1) / 20.0));
    // 1. Draw the batch: uniform over samples, or uniform over combinations then over samples.
    std::vector<int64_t> idx(B);
    for (int64_t b = 0; b < B; ++b) {
      if (o.sampling == Sampling::Balanced) {
        const auto& g = *group_list[rng() % group_list.size()];
        idx[b] = g[rng() % g.size()];
      } else {
        idx[b] = static_cast<int64_t>(rng() % static_cast<uint64_t>(data.size()));
      }
    }
    Samples batch = data.rows(Tensor::from_vector(idx));
    // 2. Which modalities the model may see in this step (a mask on top of the data's own).
    const double t = static_cast<double>(step) / static_cast<double>(o.steps);
    std::vector<float> mask(B * 3, 1.0f);
    std::vector<int64_t> target = batch.labels.to_vector<int64_t>();
    bool unimodal = false;
    const std::vector<float> bp = batch.present.contiguous().to_vector<float>();
    const std::vector<int64_t> bt = batch.texture.to_vector<int64_t>();
    const std::vector<int64_t> bs = batch.sound.to_vector<int64_t>();
    for (int64_t b = 0; b < B; ++b) {
      float* mk = &mask[b * 3];
      if (o.schedule == Schedule::Curriculum && t < 0.2) {
        // Unimodal: one of the sample's modalities; the target is what that modality shows.
        std::vector<int> have;
        for (int k = 0; k < 3; ++k)
          if (bp[b * 3 + k] > 0.5f) have.push_back(k);
        const int k = have[rng() % have.size()];
        mk[0] = mk[1] = mk[2] = 0;
        mk[k] = 1;
        target[b] = k == kImage ? bt[b] : bs[b];
        unimodal = true;
      } else if (o.schedule == Schedule::Curriculum && t < 0.5) {
        mk[kAudio] = 0;  // pairwise: image + text
      } else if (o.schedule == Schedule::Gradual && t < 0.3) {
        mk[kAudio] = mk[kImage] = 0;  // text only
      } else if (o.schedule == Schedule::Gradual && t < 0.6) {
        mk[kAudio] = 0;  // text + image
      }
      // Modality dropout: hide each present modality with its probability, keeping one.
      for (int k = 0; k < 3; ++k) {
        if (o.modality_dropout[k] <= 0 || u01(rng) >= o.modality_dropout[k]) continue;
        const float before = mk[k];
        mk[k] = 0;
        float left = 0;
        for (int j = 0; j < 3; ++j) left += mk[j] * bp[b * 3 + j];
        if (left < 0.5f) mk[k] = before;
      }
    }
    batch.present = batch.present * Tensor::from_vector(mask, {B, 3});
    batch = batch.to(o.device);
    const Tensor y = Tensor::from_vector(target).to(o.device);
    Tensor logits = unimodal ? m.forward_unimodal(batch) : m.forward(batch);
    Tensor loss = cross_entropy(logits, y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    log.loss.push_back(loss.item());
    if ((step + 1) % o.eval_every == 0 || step + 1 == o.steps) {
      log.eval_steps.push_back(static_cast<double>(step + 1));
      log.eval_acc.push_back(accuracy(m, heldout, o.device));
      m.train();
    }
  }
  m.eval();
  log.seconds = seconds_since(t0);
  return log;
}

}  // namespace mmgrad::mmt
