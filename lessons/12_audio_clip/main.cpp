// Lesson 12: a third modality. AudioCLIP's six-way loss, and ImageBind's alignment that emerges
// without paired data.
//
// What you will see:
//   - sounds for the ten Fashion-MNIST classes, made up but carrying real information: each
//     class has a signature (pitch, a glide up or down, timbre, rhythm) and every clip varies it
//     (pitch, loudness, timing) and adds noise. Three of them are written as .wav files to
//     listen to, and spectrograms of every class are drawn;
//   - the way from a waveform to what a network reads: frames, a Hann window, a real FFT
//     (data/audio.h, tested against the direct DFT), a mel filterbank and decibels: a 0.5 s clip
//     becomes a 32 x 32 log-mel "picture" of frequency by time, read by lesson 04's CNN;
//   - Part A, AudioCLIP: image, text and audio encoders trained together on (image, caption,
//     sound) triples with the six-way loss (CLIP's loss on all three pairs, both directions);
//     R@1 of the six retrieval directions on held-out triples, and zero-shot classification of
//     sounds by the class prompts' text embeddings;
//   - Part B, ImageBind: a CLIP (image + text) is trained first and frozen; then an audio encoder
//     learns against the images ONLY. No sound is ever paired with a caption, yet sounds are
//     classified by the captions' text embeddings: the alignment emerges through the images.
//     The lesson prints it next to Part A's paired number (target: emergent >= 80% of paired).
// Measured at the defaults on --seed 0, 1, 2 (these held on every seed): Part A's R@1 audio->text
// 0.976-0.991, text->audio 1.000, audio->image 0.882-0.912, image->text 0.811-0.833; sound
// zero-shot 0.977 / 0.989 / 0.992 paired and 0.965 / 0.978 / 0.989 emergent (99-100% of paired,
// target >= 80%), while images reach only 0.806-0.831 zero-shot: a sound lands in the middle of
// its class, a single picture may not.
// Retrieval counts a hit when the top item shows the query's class (captions and sounds are
// per class, not per picture: there is no single "right" caption for one T-shirt photo).
// main() at the bottom lists the sections in order, one function (a notebook cell) each.
//
// Run: ./build/lessons/12_audio_clip [--steps N] [--train-images N] [--quick]
// Files: out/12_audio_clip/{sound_trouser,sound_sandal,sound_bag}.wav, spectrograms.png,
//        spectrogram_sneaker.svg, loss.svg, recall.svg.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "04_mini_clip/clip.h"
#include "12_audio_clip/audio_clip.h"
#include "common/lesson.h"
#include "mmgrad/data/audio.h"
#include "mmgrad/data/fashion_mnist.h"
#include "mmgrad/data/image.h"
#include "mmgrad/metrics/metrics.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/plot/figure.h"

using namespace mmgrad;

namespace {

// ===========================================================================================
// The settings
// ===========================================================================================

struct Setup {
  lesson::Args args;
  clip::FmnistClipConfig cfg;  // image + text encoders and the recipe, shared by Parts A and B
  audioclip::SoundConfig sound;
  std::vector<int64_t> audio_channels = {8, 16, 32};
  int64_t test_size = 2000;
};

// A small mini CLIP (lesson 11's size) so that the lesson can train three models in its budget:
// Part A's three encoders, Part B's CLIP, then Part B's audio encoder, each for the same steps.
Setup read_flags(int argc, char** argv) {
  Setup s;
  s.args = lesson::parse_args(
      argc, argv, "12_audio_clip",
      "a third modality: AudioCLIP's six-way loss and ImageBind's emergent audio-text alignment",
      lesson::kUsesSteps | lesson::kUsesData,
      {{"--train-images N", "training triples (default 6000; quick 3000)"},
       {"--batch N", "batch size (default 256; quick 128)"},
       {"--lr X", "peak learning rate (default 2e-3)"}});
  clip::FmnistClipConfig& cfg = s.cfg;
  cfg = clip::default_fmnist_config(s.args);
  cfg.image.channels = {8, 16, 32};
  cfg.image.embed_dim = cfg.text.embed_dim = 32;
  cfg.text.width = 32;
  cfg.train.lr = s.args.get_double("--lr", 2e-3);
  cfg.train.steps = s.args.steps_or(s.args.quick ? 60 : 150);
  cfg.train.batch_size = s.args.get_int("--batch", s.args.quick ? 128 : 256);
  cfg.train.warmup_steps = std::min<int64_t>(10, cfg.train.steps);
  cfg.train_limit = s.args.get_int("--train-images", s.args.quick ? 3000 : 6000);
  MMGRAD_CHECK(std::isfinite(cfg.train.lr) && cfg.train.lr > 0 && cfg.train.lr < 1, "--lr ",
               cfg.train.lr, ": expected a learning rate in (0, 1)");
  MMGRAD_CHECK(cfg.train.batch_size >= 2 && cfg.train_limit >= cfg.train.batch_size, "--batch ",
               cfg.train.batch_size, " / --train-images ", cfg.train_limit,
               ": expected 2 <= batch <= training triples");
  MMGRAD_CHECK(cfg.train_limit <= 60000, "--train-images ", cfg.train_limit,
               ": Fashion-MNIST has 60000 training images");
  s.test_size = s.args.quick ? 1000 : 2000;
  return s;
}

// ===========================================================================================
// 1. Sounds with information in them
// ===========================================================================================

struct Sounds {
  audio::LogMelOptions mel;
  audioclip::FeatureScale scale;
};

// Tiles of log-mel spectrograms for a picture: low frequencies at the bottom, the loudest 60 dB
// of each clip from black to white.
Tensor spectrogram_tile(const Tensor& log_mel) {  // [M, T] dB
  const int64_t M = log_mel.size(0), T = log_mel.size(1);
  const std::vector<float> v = log_mel.contiguous().to_vector<float>();
  const float top = *std::max_element(v.begin(), v.end());
  std::vector<float> tile(static_cast<size_t>(M * T));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t t = 0; t < T; ++t)
      tile[(M - 1 - m) * T + t] = std::clamp((v[m * T + t] - (top - 60.0f)) / 60.0f, 0.0f, 1.0f);
  return Tensor::from_vector(tile, {1, M, T});
}

Sounds meet_the_sounds(const Setup& s) {
  lesson::section("1. Sounds with information in them");
  const auto& names = data::fashion_mnist_classes();
  const auto& sounds = audioclip::fmnist_sounds();
  lesson::print("Each class has a sound signature; every clip varies it and adds noise ({}):",
                s.sound.str());
  for (size_t c = 0; c < sounds.size(); ++c)
    lesson::print("  {:<12} {}", names[c], sounds[c].description);
  Sounds out;
  out.mel = audioclip::log_mel_options(s.sound);
  const int64_t frames = audio::stft_frames(s.sound.samples, out.mel.stft);
  lesson::print(
      "\nFrom waveform to features ({}):\n"
      "  {} samples -> {} frames of {} samples ({:.0f} ms) every {} samples, Hann window\n"
      "  -> real FFT of each frame: {} frequency bins, {:.2f} Hz apart, up to {} Hz\n"
      "  -> {} mel filters (Slaney scale, {:.0f} Hz to {} Hz) -> 10 log10(power) in dB\n"
      "  = a {} x {} picture of frequency by time for the audio encoder.",
      out.mel.str(), s.sound.samples, frames, out.mel.stft.n_fft,
      1000.0 * out.mel.stft.n_fft / s.sound.sample_rate, out.mel.stft.hop_length,
      out.mel.stft.n_fft / 2 + 1, static_cast<double>(s.sound.sample_rate) / out.mel.stft.n_fft,
      s.sound.sample_rate / 2, out.mel.n_mels, out.mel.f_min, s.sound.sample_rate / 2,
      out.mel.n_mels, frames);

  // Two clips per class (seeds apart from the training data's) for the figure; three to listen.
  std::vector<int64_t> ex;
  for (int64_t c = 0; c < 10; ++c) ex.insert(ex.end(), {c, c});
  const Tensor waves =
      audioclip::synthesize_batch(Tensor::from_vector(ex), 1000 + s.args.seed, s.sound);
  const Tensor lm = audio::log_mel_spectrogram(waves, out.mel);
  std::vector<Tensor> tiles;
  std::vector<std::string> labels;
  for (size_t k = 0; k < ex.size(); ++k) {
    tiles.push_back(spectrogram_tile(lm.select(0, static_cast<int64_t>(k))));
    labels.push_back(names[ex[k]]);
  }
  data::GridOptions figure;
  figure.labels = labels;
  figure.scale = 4;
  figure.title = lesson::format(
      "Log-mel spectrograms, two clips per class: time left to right ({:.1f} s), mel frequency "
      "bottom (low) to top (high); brighter = louder",
      static_cast<double>(s.sound.samples) / static_cast<double>(s.sound.sample_rate));
  data::save_image_grid(tiles, 4, s.args.path("spectrograms.png"), figure);
  std::vector<std::string> rows, cols;
  for (int64_t m = out.mel.n_mels - 1; m >= 0; --m)
    rows.push_back(
        m % 4 == 0
            ? lesson::format(
                  "{:.0f} Hz",
                  audio::mel_to_hz(audio::hz_to_mel(out.mel.f_min, out.mel.scale) +
                                       (audio::hz_to_mel(s.sound.sample_rate / 2.0, out.mel.scale) -
                                        audio::hz_to_mel(out.mel.f_min, out.mel.scale)) *
                                           (m + 1) / (out.mel.n_mels + 1.0),
                                   out.mel.scale))
            : "");
  for (int64_t t = 0; t < frames; ++t)
    cols.push_back(t % 8 == 0 ? lesson::format("{:.2f} s", t * 128.0 / s.sound.sample_rate) : "");
  const Tensor sneaker = lm.select(0, 14);  // the first sneaker clip
  std::vector<std::vector<double>> grid;
  for (int64_t m = out.mel.n_mels - 1; m >= 0; --m) {
    std::vector<double> row;
    for (int64_t t = 0; t < frames; ++t) row.push_back(sneaker.select(0, m).select(0, t).item());
    grid.push_back(row);
  }
  double top = -1e300;
  for (const auto& row : grid) top = std::max(top, *std::max_element(row.begin(), row.end()));
  plot::Heatmap h("Log-mel spectrogram (dB) of a sneaker: four falling chirps", grid, rows, cols);
  // The loudest 30 dB: the chirps stand out of the noise floor below them.
  h.set_colormap(plot::Colormap::Viridis).set_range(top - 30, top).set_annotate(0);
  h.set_axis_labels("time", "mel band");
  h.save(s.args.path("spectrogram_sneaker.svg"));
  const std::vector<std::pair<int64_t, const char*>> listen = {
      {1, "sound_trouser.wav"}, {5, "sound_sandal.wav"}, {8, "sound_bag.wav"}};
  for (const auto& [c, file] : listen) {
    const Tensor w = waves.select(0, 2 * c).contiguous();
    audio::write_wav(s.args.path(file), w.to_vector<float>(), s.sound.sample_rate);
  }
  lesson::print(
      "\nListen: {}, {}, {} (a falling tone, clicks, a buzzing thud).\n"
      "Look: {} (two clips per class: each note is a bright stack of harmonics, a glide is a\n"
      "slanted stack, noise is the grey floor) and {}.",
      s.args.path("sound_trouser.wav"), s.args.path("sound_sandal.wav"),
      s.args.path("sound_bag.wav"), s.args.path("spectrograms.png"),
      s.args.path("spectrogram_sneaker.svg"));
  return out;
}

// ===========================================================================================
// 2. Triples: an image, a caption and a sound of the same class
// ===========================================================================================

struct Triples {
  data::Dataset images;
  Tensor features;  // [N, 1, 32, 32]: the standardised log-mel spectrogram of sound n
  Tensor captions;  // held-out only: int64 [N, T], one caption per triple
};

struct Data {
  clip::CaptionBank captions;
  Triples train, test;
};

Data make_triples(const Setup& s, Sounds& snd) {
  lesson::section("2. Triples: an image, a caption and a sound of the same class");
  Data d{clip::make_fmnist_captions(), {}, {}};
  d.train.images = data::load_fashion_mnist(data::Split::Train, s.args.data, s.cfg.train_limit);
  d.test.images = data::load_fashion_mnist(data::Split::Test, s.args.data, s.test_size);
  const double t0 = lesson::elapsed_seconds();
  // Sound n goes with image n: a fresh clip of the image's class. Training and test clips come
  // from different seeds, so no test sound was heard in training.
  const Tensor train_waves =
      audioclip::synthesize_batch(d.train.images.labels, 2 * s.args.seed + 1, s.sound);
  const Tensor test_waves =
      audioclip::synthesize_batch(d.test.images.labels, 2 * s.args.seed + 2, s.sound);
  const Tensor train_lm = audio::log_mel_spectrogram(train_waves, snd.mel);
  snd.scale = audioclip::feature_scale(train_lm);  // the training set's mean and sd
  d.train.features = audioclip::standardize(train_lm, snd.scale);
  d.test.features = audioclip::audio_features(test_waves, snd.mel, snd.scale);
  // One caption per held-out triple, from the five templates of the prompt ensemble in turn.
  const std::vector<int64_t> y = d.test.images.labels.to_vector<int64_t>();
  const auto& tmpl = clip::ensemble_template_ids();
  std::vector<int64_t> rows;
  for (size_t n = 0; n < y.size(); ++n) rows.push_back(d.captions.row(y[n], tmpl[n % tmpl.size()]));
  d.test.captions = index_select(d.captions.tokens, 0, Tensor::from_vector(rows));
  lesson::print(
      "Training triples: {} (the first Fashion-MNIST training images, each with a caption of its\n"
      "class drawn per step and its own sound clip). Held-out triples: {} test images, {} new\n"
      "sounds, one caption each. Sounds and log-mel features made in {:.1f} s; features\n"
      "standardised with the training set's mean {:.1f} dB and sd {:.1f} dB.",
      d.train.images.size(), d.test.images.size(), d.test.images.size(),
      lesson::elapsed_seconds() - t0, snd.scale.mean, snd.scale.sd);
  return d;
}

// ===========================================================================================
// Evaluation, shared by Parts A and B
// ===========================================================================================

struct Eval {
  std::array<double, 6> r1{};  // a2i i2a a2t t2a i2t t2i, class-level R@1 on held-out triples
  double audio_zero_shot = 0, image_zero_shot = 0;
};

Eval evaluate(audioclip::AudioCLIP& m, const clip::CaptionBank& captions, const Triples& test,
              Device device) {
  const Tensor a = audioclip::encode_audio(m, test.features, device);
  const Tensor i = clip::encode_images(*m.clip, test.images.images, device);
  const Tensor t = clip::encode_texts(*m.clip, test.captions, device);
  const Tensor& y = test.images.labels;
  auto r1 = [&](const Tensor& q, const Tensor& g) {
    return metrics::recall_at_k(matmul(q, g.t()), y, y, 1);
  };
  Eval e;
  e.r1 = {r1(a, i), r1(i, a), r1(a, t), r1(t, a), r1(i, t), r1(t, i)};
  const Tensor cls =
      clip::class_embeddings(*m.clip, captions, clip::ensemble_template_ids(), device);
  e.audio_zero_shot = metrics::accuracy(clip::zero_shot_predict(a, cls), y);
  e.image_zero_shot = metrics::accuracy(clip::zero_shot_predict(i, cls), y);
  return e;
}

std::shared_ptr<audioclip::AudioCLIP> fresh_model(const Setup& s, const Data& d) {
  auto clip_model = clip::make_fmnist_clip(s.cfg, d.captions);  // re-seeds from the config
  auto audio = audioclip::make_audio_encoder(s.cfg.image.embed_dim, s.audio_channels);
  auto m = std::make_shared<audioclip::AudioCLIP>(clip_model, audio);
  m->to(s.args.device);
  return m;
}

// ===========================================================================================
// 3. Part A: AudioCLIP, three encoders and the six-way loss
// ===========================================================================================

struct PartA {
  audioclip::TrainLog log;
  Eval eval;
};

PartA train_audioclip(const Setup& s, const Data& d) {
  lesson::section("3. Part A: AudioCLIP, three encoders trained with the six-way loss");
  auto m = fresh_model(s, d);
  lesson::print(
      "Image encoder: {}\nAudio encoder: lesson 04's CNN on the 1 x 32 x 32 spectrogram ({})\n"
      "Training: {}\n"
      "Loss: CLIP's InfoNCE on each pair (audio-image, audio-text, image-text), both directions,\n"
      "averaged: six terms, one shared temperature. A batch of {} triples starts at\n"
      "log {} = {:.2f} per term.",
      s.cfg.image.str(), m->audio_encoder->options.str(), s.cfg.train.str(), s.cfg.train.batch_size,
      s.cfg.train.batch_size, std::log(static_cast<double>(s.cfg.train.batch_size)));
  clip::TrainOptions o = s.cfg.train;
  o.log_every = std::max<int64_t>(1, o.steps / 4);
  PartA a;
  a.log = audioclip::train_six_way(*m, d.train.images.images, d.train.images.labels,
                                   d.train.features, d.captions, o, s.args.device);
  lesson::print_inline("Trained in {:.1f} s. Last-20-step mean of each term:", a.log.seconds);
  for (size_t k = 0; k < 6; ++k) {
    const auto& v = a.log.terms[k];
    double sum = 0;
    const size_t n = std::min<size_t>(20, v.size());
    for (size_t j = v.size() - n; j < v.size(); ++j) sum += v[j];
    lesson::print_inline(" {} {:.3f}", audioclip::kDirections[k], sum / n);
  }
  lesson::print("");
  a.eval = evaluate(*m, d.captions, d.test, s.args.device);
  return a;
}

// ===========================================================================================
// 4. Part A results: six retrieval directions and audio zero-shot
// ===========================================================================================

void print_part_a(const Setup& s, const Data& d, const PartA& a) {
  lesson::section("4. Part A results on the held-out triples");
  const char* what[6] = {"audio -> image", "image -> audio", "audio -> text",
                         "text -> audio",  "image -> text",  "text -> image"};
  lesson::print(
      "R@1: the query's nearest item of the other modality (cosine) among the {} held-out\n"
      "triples shows the query's class. Chance: about 0.10 (ten balanced classes).",
      d.test.images.size());
  for (size_t k = 0; k < 6; ++k)
    lesson::print("  {:<16} ({})  R@1 {:.3f}", what[k], audioclip::kDirections[k], a.eval.r1[k]);
  lesson::print(
      "Zero-shot: each sound gets the class whose prompt-ensemble text embedding is nearest.\n"
      "  sounds {:.3f}, images {:.3f} (chance 0.100)",
      a.eval.audio_zero_shot, a.eval.image_zero_shot);
  (void)s;
}

// ===========================================================================================
// 5. Part B, step 1: a CLIP of images and text, trained first and then frozen
// ===========================================================================================

struct PartB {
  clip::TrainLog clip_log;
  audioclip::TrainLog audio_log;
  Eval eval;
};

PartB train_imagebind(const Setup& s, const Data& d) {
  lesson::section("5. Part B (ImageBind), step 1: a CLIP of images and text, then frozen");
  auto m = fresh_model(s, d);
  clip::TrainOptions o = s.cfg.train;
  o.log_every = std::max<int64_t>(1, o.steps / 4);
  PartB b;
  b.clip_log = clip::train_clip(*m->clip, d.train.images.images, d.train.images.labels, d.captions,
                                o, s.args.device);
  lesson::print("CLIP trained in {:.1f} s on the same images, captions and steps as Part A.",
                b.clip_log.seconds);

  lesson::section("6. Part B, step 2: sounds bound to images only");
  // The frozen image encoder's embeddings of the training images, once, without gradient: the
  // targets the audio encoder is pulled to. No caption and no text encoder is involved.
  const Tensor img_emb = clip::encode_images(*m->clip, d.train.images.images, s.args.device);
  lesson::print(
      "Loss: CLIP's InfoNCE between sound n and image n, both directions; only the audio\n"
      "encoder and its own temperature learn. The text encoder is never run in this step.");
  b.audio_log = audioclip::train_audio_to_images(*m, d.train.features, img_emb, o, s.args.device);
  lesson::print("Audio encoder trained in {:.1f} s.", b.audio_log.seconds);
  b.eval = evaluate(*m, d.captions, d.test, s.args.device);
  return b;
}

// ===========================================================================================
// 7. Paired against emergent
// ===========================================================================================

void compare(const PartA& a, const PartB& b) {
  lesson::section("7. Emergent alignment: audio -> text without a single audio-text pair");
  lesson::print("{:<34} {:>12} {:>12}", "", "A: paired", "B: emergent");
  lesson::print("{:<34} {:12.3f} {:12.3f}", "audio zero-shot (class prompts)",
                a.eval.audio_zero_shot, b.eval.audio_zero_shot);
  lesson::print("{:<34} {:12.3f} {:12.3f}", "audio -> text R@1", a.eval.r1[2], b.eval.r1[2]);
  lesson::print("{:<34} {:12.3f} {:12.3f}", "text -> audio R@1", a.eval.r1[3], b.eval.r1[3]);
  lesson::print("{:<34} {:12.3f} {:12.3f}", "audio -> image R@1", a.eval.r1[0], b.eval.r1[0]);
  lesson::print("{:<34} {:12.3f} {:12.3f}", "image zero-shot", a.eval.image_zero_shot,
                b.eval.image_zero_shot);
  const double ratio = b.eval.audio_zero_shot / std::max(1e-9, a.eval.audio_zero_shot);
  lesson::print(
      "Chance is 0.100 everywhere. The emergent audio zero-shot accuracy is {:.0f}% of the paired\n"
      "one (target >= 80%: {}). In Part B the sounds only ever met images, yet the captions'\n"
      "text embeddings classify them: the frozen CLIP had put each class's images near its\n"
      "captions, and the audio encoder learned to land near those images. A sound cannot tell\n"
      "which T-shirt photo it belongs to, only the class, so InfoNCE pulls it towards the middle\n"
      "of its class's image cluster: compare its accuracy with the image zero-shot row, where\n"
      "every single image must be near its class's prompts on its own.",
      100 * ratio, ratio >= 0.8 ? "met" : "MISSED");
}

void draw_figures(const Setup& s, const PartA& a, const PartB& b) {
  plot::LinePlot loss("Training losses", "step", "loss");
  for (size_t k = 0; k < 6; ++k)
    loss.add_series(std::string("A: six-way, ") + audioclip::kDirections[k], a.log.terms[k]);
  loss.add_series("B: CLIP (image-text)", b.clip_log.losses);
  loss.add_series("B: audio-image, CLIP frozen", b.audio_log.losses);
  loss.save(s.args.path("loss.svg"));
  std::vector<std::string> cats;
  for (const char* k : audioclip::kDirections) cats.push_back(std::string(k) + " R@1");
  cats.push_back("audio zero-shot");
  std::vector<double> va(a.eval.r1.begin(), a.eval.r1.end()),
      vb(b.eval.r1.begin(), b.eval.r1.end());
  va.push_back(a.eval.audio_zero_shot);
  vb.push_back(b.eval.audio_zero_shot);
  plot::BarChart bars("Held-out triples: paired (A) vs audio bound to images only (B)", "",
                      "R@1 / accuracy");
  bars.set_categories(cats).set_value_labels(true, 2).set_ylim(0, 1);
  bars.add_series("A: AudioCLIP six-way", va);
  bars.add_series("B: ImageBind (no audio-text pairs)", vb);
  bars.save(s.args.path("recall.svg"));
  lesson::print("\nFigures: {}, {}", s.args.path("loss.svg"), s.args.path("recall.svg"));
}

}  // namespace

int main(int argc, char** argv) {
  return lesson::run([&] {
    Setup s = read_flags(argc, argv);
    Sounds snd = meet_the_sounds(s);
    Data d = make_triples(s, snd);
    PartA a = train_audioclip(s, d);
    print_part_a(s, d, a);
    PartB b = train_imagebind(s, d);
    compare(a, b);
    draw_figures(s, a, b);
    lesson::Result r;
    for (size_t k = 0; k < 6; ++k)
      r.add(std::string(audioclip::kDirections[k]) + "_r1", a.eval.r1[k]);
    r.add("audio_zero_shot_paired", a.eval.audio_zero_shot)
        .add("audio_zero_shot_emergent", b.eval.audio_zero_shot)
        .add("emergent_a2t_r1", b.eval.r1[2])
        .add("image_zero_shot", a.eval.image_zero_shot);
    r.print();
  });
}
