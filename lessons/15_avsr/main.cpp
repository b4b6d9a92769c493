// Lesson 15: audio-visual speech recognition. Lips help most where the sound is worst.
//
// What you will see:
//   - a ten-word vocabulary (pat, bat, fat, vat, pig, fig, tug, dug, cut, gut), each word three
//     phoneme-like units; the audio is a small spectrogram (16 frequency bins by 12 frames), the
//     video six 12 x 12 frames of a lip contour. As in real speech, p and b (t/d, k/g, f/v) are
//     made with the same mouth shape (one viseme): they LOOK identical and differ only by the
//     voice, while the place where the mouth closes is plain to see but has a weak acoustic cue
//     that noise hides first. The two modalities fail on different words;
//   - seed 001's recogniser: an LSTM audio encoder, a Conv3d + pooling + LSTM video encoder,
//     cross-attention in which the audio frames query the video frames, an LSTM decoder and a
//     classifier; and the audio-only and video-only recognisers built from the same pieces;
//   - word accuracy on held-out SPEAKERS at several signal-to-noise ratios (clean, 10, 0 and
//     -5 dB), a table and a figure, and which words each model confuses;
//   - modality dropout (training sometimes without the audio) and what it buys when the
//     microphone is off at test time;
//   - verdicts computed from the numbers against the targets: at 0 dB the fused model
//     beats the better single modality by >= 10 points, and with modality dropout it keeps at
//     least the video-only accuracy when the audio is missing.
// Measured at the defaults on --seed 0, 1, 2 (1,000 utterances by 12 held-out speakers; kernels
// of 2026-12-07, evening): audio only at 0 dB 0.844 / 0.839 / 0.810, lip reader 0.599 / 0.600 /
// 0.600 (its ceiling is 0.60), fused at 0 dB 1.000 / 0.993 / 0.996 (+15.6 / +15.4 / +18.6 points
// over the better single modality, target >= +10); microphone off: fused + modality dropout
// 0.600 on every seed (target >= the lip reader), fused without dropout 0.600 / 0.599 / 0.600;
// seed 001's residual-free fusion: no clear difference at 0 dB; at -5 dB -1.3 / +2.2 / +0.4
// points against ours.
// 16-19 s of CPU (user + sys) on one thread; --quick about 5-7 s.
// main() at the bottom lists the sections in order, one function (a notebook cell) each.
//
// Run: ./build/lessons/15_avsr [--steps N] [--train N] [--lr X] [--quick]
// Files: out/15_avsr/inputs.png, snr.svg.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "15_avsr/avsr.h"
#include "common/lesson.h"
#include "mmgrad/data/image.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/plot/figure.h"

using namespace mmgrad;

namespace {

// ===========================================================================================
// The settings
// ===========================================================================================

struct Setup {
  lesson::Args args;
  int64_t train_size = 3000, test_groups = 100;  // a test group: one speaker says all ten words
  int64_t train_speakers = 24, test_speakers = 12;
  int64_t audio_steps = 300, video_steps = 500, fused_steps = 400, dropout_steps = 400;
  double lr = 1e-2;
  double audio_dropout = 0.5;
  std::vector<double> snrs = {avsr::kClean, 10, 0, -5};  // the test conditions
  avsr::ModelConfig model;
};

Setup read_flags(int argc, char** argv) {
  Setup s;
  s.args = lesson::parse_args(
      argc, argv, "15_avsr",
      "audio-visual speech recognition: lips help most where the sound is worst",
      lesson::kUsesSteps,
      {{"--train N", "training utterances (default 3000; quick 1200)"},
       {"--lr X", "Adam learning rate (default 1e-2)"},
       {"--dropout P", "modality dropout: P(audio silenced) while fine-tuning (default 0.5)"},
       {"--dropout-steps N", "steps of the modality-dropout fine-tuning (default 400; quick 80)"}});
  const bool q = s.args.quick;
  s.train_size = s.args.get_int("--train", q ? 1200 : 3000);
  s.test_groups = q ? 30 : 100;
  s.audio_steps = s.args.steps_or(q ? 200 : 300);
  s.video_steps = s.args.steps_or(q ? 200 : 500);
  s.fused_steps = s.args.steps_or(q ? 120 : 400);
  s.dropout_steps = s.args.get_int("--dropout-steps", s.args.steps_or(q ? 80 : 400));
  s.audio_dropout = s.args.get_double("--dropout", 0.5);
  s.lr = s.args.get_double("--lr", 1e-2);
  MMGRAD_CHECK(s.train_size >= 100 && s.train_size <= 50000, "--train ", s.train_size,
               ": expected 100 to 50000 utterances");
  MMGRAD_CHECK(std::isfinite(s.lr) && s.lr > 0 && s.lr < 1, "--lr ", s.lr,
               ": expected a learning rate in (0, 1)");
  MMGRAD_CHECK(s.audio_dropout >= 0 && s.audio_dropout < 1, "--dropout ", s.audio_dropout,
               ": expected a probability in [0, 1)");
  MMGRAD_CHECK(s.dropout_steps >= 1, "--dropout-steps ", s.dropout_steps, ": expected >= 1");
  return s;
}

std::string snr_name(double snr) {
  return snr >= avsr::kClean ? std::string("clean") : lesson::format("{:g} dB", snr);
}

// The words grouped by a key (what one modality can perceive): words with the same key cannot
// be told apart by it. On a test set with every word equally often, the best possible accuracy
// is (number of distinct keys) / (number of words): one right answer per group.
struct Groups {
  std::map<std::string, std::vector<int>> members;
  double best_accuracy() const {
    return static_cast<double>(members.size()) / static_cast<double>(avsr::kWords);
  }
  std::string confusable() const {
    std::string out;
    for (const auto& [key, words] : members) {
      if (words.size() < 2) continue;
      std::string g;
      for (int w : words) {
        if (!g.empty()) g += "/";
        g += avsr::word_names()[w];
      }
      if (!out.empty()) out += ", ";
      out += g;
    }
    return out;
  }
};

// What the lips show: the viseme sequence.
std::string viseme_key(int w) {
  std::string key;
  for (int u : avsr::word_units()[w]) key += std::to_string(avsr::units()[u].viseme) + ",";
  return key;
}
Groups viseme_groups() {
  Groups g;
  for (int w = 0; w < avsr::kWords; ++w) g.members[viseme_key(w)].push_back(w);
  return g;
}

// What survives strong noise in the sound: the vowels and whether each consonant is voiced.
Groups robust_audio_groups() {
  Groups g;
  for (int w = 0; w < avsr::kWords; ++w) {
    std::string key;
    for (int u : avsr::word_units()[w]) {
      const avsr::Unit& unit = avsr::units()[u];
      key += unit.vowel ? unit.name : unit.voiced ? "V" : "-";
    }
    g.members[key].push_back(w);
  }
  return g;
}

// ===========================================================================================
// 1. Ten words, two ways to perceive them
// ===========================================================================================

void the_words() {
  lesson::section("1. Ten words, two ways to perceive them");
  lesson::print(
      "Each word is three units, consonant-vowel-consonant. A unit SOUNDS like a spectrum "
      "(vowels:\n"
      "two strong formant peaks; consonants: a weak peak at a place-specific frequency, plus a\n"
      "strong low 'voice bar' when the vocal cords vibrate: b d g v) and LOOKS like a mouth "
      "shape,\n"
      "its viseme. Voiced and voiceless partners share the viseme: the vocal cords are hidden.");
  lesson::print("\n  {:<6} {:<7} {:<62} {}", "word", "units", "visemes (what the lips show)",
                "voiced?");
  for (int w = 0; w < avsr::kWords; ++w) {
    std::string us, vs, voiced;
    for (int u : avsr::word_units()[w]) {
      const avsr::Unit& unit = avsr::units()[u];
      if (!us.empty()) us += " ";
      us += unit.name;
      vs += (vs.empty() ? "" : " + ") + avsr::viseme_names()[unit.viseme];
      voiced += unit.vowel ? "." : unit.voiced ? "V" : "-";
    }
    lesson::print("  {:<6} {:<7} {:<62} {}", avsr::word_names()[w], us, vs, voiced);
  }
  const Groups v = viseme_groups(), a = robust_audio_groups();
  lesson::print(
      "\nWords the lips cannot tell apart (same visemes): {}.\n"
      "  With every word equally often, a perfect lip reader is right at most {}/{} = {:.2f}.\n"
      "Words a noisy ear cannot tell apart once the weak place cue is drowned (same vowel, same\n"
      "voicing): {}.\n"
      "  Hearing only vowels and voicing caps the audio at {:.2f}.\n"
      "The two lists share no pair: every word is pinned down by lips AND voice together.",
      v.confusable(), v.members.size(), avsr::kWords, v.best_accuracy(), a.confusable(),
      a.best_accuracy());
}

// ===========================================================================================
// 2. Speakers, noise, and what the models read
// ===========================================================================================

struct Data {
  std::vector<avsr::Speaker> train_speakers, test_speakers;
  avsr::Utterances train, test;
  avsr::FeatureScale scale;
  std::vector<Tensor> test_audio;  // the test set's features at each of Setup::snrs
  Tensor no_audio;                 // silence: the microphone is off
};

// A picture of features [12 frames, 16 bins] as a 16 x 12 image, low frequencies at the bottom,
// from -2.5 (black) to +2.5 (white) standardised units.
Tensor spectrogram_tile(const Tensor& f) {
  std::vector<int64_t> flip;
  for (int64_t b = avsr::kBins - 1; b >= 0; --b) flip.push_back(b);
  Tensor img = index_select(f.transpose(0, 1), 0, Tensor::from_vector(flip));
  return ((img + 2.5) * 0.2).clamp(0, 1).reshape({1, avsr::kBins, avsr::kAudioFrames}).contiguous();
}

Data make_data(const Setup& s) {
  lesson::section("2. Speakers, noise, and what the models read");
  const uint64_t base = 1000 * s.args.seed;
  Data d;
  d.train_speakers = avsr::make_speakers(s.train_speakers, base + 1);
  d.test_speakers = avsr::make_speakers(s.test_speakers, base + 2);  // other people
  d.train = avsr::make_utterances(s.train_size, d.train_speakers, base + 3, false);
  d.test = avsr::make_utterances(s.test_groups * avsr::kWords, d.test_speakers, base + 4, true);
  // The feature scale: mean and sd of the training features over the training noise mix.
  std::vector<double> mix(static_cast<size_t>(d.train.size()));
  for (size_t i = 0; i < mix.size(); ++i)
    mix[i] = i % 5 == 0 ? avsr::kClean : -10.0 + 30.0 * static_cast<double>(i % 97) / 96.0;
  d.scale = avsr::fit_scale(avsr::features(d.train.power, mix, base + 5, {}));
  for (size_t k = 0; k < s.snrs.size(); ++k)
    d.test_audio.push_back(avsr::features(d.test.power, s.snrs[k], base + 10 + k, d.scale));
  d.no_audio = avsr::silence(d.test.size(), d.scale);
  lesson::print(
      "Every speaker has a vocal-tract length (formants x 0.88 to 1.12), a voice strength, a\n"
      "loudness, and a mouth of their own (size, position, skin and lip shade). Training: {}\n"
      "utterances by {} speakers, each heard at a random SNR (uniform -10 to 20 dB, or clean one\n"
      "time in five), new noise at every step. Test: {} utterances by {} OTHER speakers: {} "
      "groups\n"
      "in which one speaker says all ten words, heard clean and at 10, 0 and -5 dB.",
      d.train.size(), s.train_speakers, d.test.size(), s.test_speakers, s.test_groups);
  lesson::print(
      "SNR = 10 log10(speech power / noise power): at 0 dB the noise is as strong as the speech.\n"
      "The model reads the log power of speech + noise (dB), standardised (mean {:.1f}, sd "
      "{:.1f}).",
      d.scale.mean, d.scale.sd);

  // The figure: the minimal pair pat / bat, mouth frames and spectrograms clean and at 0 dB.
  std::vector<Tensor> tiles;
  std::vector<std::string> labels;
  const Tensor clean = d.test_audio[0], noisy = d.test_audio[2];
  for (int64_t w : {0, 1}) {  // test group 0 holds word w at row w
    for (int64_t t = 0; t < avsr::kVideoFrames; ++t) {
      tiles.push_back(d.test.video.select(0, w).select(1, t).contiguous());
      labels.push_back(lesson::format("{} frame {}", avsr::word_names()[w], t + 1));
    }
    tiles.push_back(spectrogram_tile(clean.select(0, w)));
    labels.push_back(lesson::format("{} audio clean", avsr::word_names()[w]));
    tiles.push_back(spectrogram_tile(noisy.select(0, w)));
    labels.push_back(lesson::format("{} audio 0 dB", avsr::word_names()[w]));
  }
  data::GridOptions g;
  g.labels = labels;
  g.scale = 8;
  g.title =
      "One held-out speaker says 'pat' (top) and 'bat' (bottom): six mouth frames (identical: p "
      "and b share a viseme), then the audio features clean and at 0 dB (16 frequency bins, low "
      "at the bottom, by 12 frames; bright = loud). Only the voice bar at the bottom of 'bat' "
      "tells them apart; at 0 dB the weak consonant peaks are lost in the noise";
  data::save_image_grid(tiles, 8, s.args.path("inputs.png"), g);
  const double same = (d.test.video.select(0, 0) - d.test.video.select(0, 1)).abs().max().item();
  lesson::print("Look: {} (the largest pixel difference between the two videos: {:g}).",
                s.args.path("inputs.png"), same);
  return d;
}

// ===========================================================================================
// 3. Three recognisers from the same pieces
// ===========================================================================================

struct Trained {
  std::shared_ptr<avsr::AVSRModel> model;
  std::string name;
  avsr::TrainLog log;
  std::vector<double> acc;   // at each of Setup::snrs
  double no_audio = 0;       // the microphone off (fused models)
  std::vector<Tensor> pred;  // predictions at each SNR
};

int64_t parameter_count(nn::Module& m) {
  int64_t n = 0;
  for (const Tensor& t : m.parameters()) n += t.numel();
  return n;
}

void evaluate(const Setup& s, const Data& d, Trained& t) {
  for (const Tensor& a : d.test_audio) {
    t.pred.push_back(avsr::predict(*t.model, a, d.test, s.args.device));
    t.acc.push_back(eq(t.pred.back(), d.test.labels).to(kFloat32).mean().item());
  }
  if (t.model->config.mode == avsr::Mode::Fused)
    t.no_audio = avsr::accuracy(*t.model, d.no_audio, d.test, s.args.device);
}

Trained train_one(const Setup& s, const Data& d, const std::string& name, avsr::Mode mode,
                  int64_t steps, double audio_dropout, int which, const Trained* audio = nullptr,
                  const Trained* video = nullptr, bool residual = true,
                  const Trained* start = nullptr) {
  avsr::ModelConfig c = s.model;
  c.mode = mode;
  c.residual = residual;
  manual_seed(1000 * s.args.seed + 100 + static_cast<uint64_t>(which));  // the initial weights
  Trained t;
  t.name = name;
  t.model = std::make_shared<avsr::AVSRModel>(c);
  if (audio && video) t.model->init_from(*audio->model, *video->model, true);
  if (start) {  // continue from a trained model of the same shape
    NoGradGuard no_grad;
    std::vector<Tensor> to = t.model->parameters(), from = start->model->parameters();
    for (size_t k = 0; k < to.size(); ++k) to[k].copy_(from[k]);
  }
  t.model->to(s.args.device);
  avsr::TrainOptions o;
  o.steps = steps;
  o.lr = s.lr;
  o.audio_dropout = audio_dropout;
  o.seed = 1000 * s.args.seed + static_cast<uint64_t>(which);
  o.device = s.args.device;
  t.log = avsr::train(*t.model, d.train, d.scale, o);
  evaluate(s, d, t);
  return t;
}

// The mean training loss over the last tenth of the steps.
double final_loss(const avsr::TrainLog& log) {
  const size_t n = std::max<size_t>(1, log.loss.size() / 10);
  double sum = 0;
  for (size_t i = log.loss.size() - n; i < log.loss.size(); ++i) sum += log.loss[i];
  return sum / static_cast<double>(n);
}

void print_trained(const Setup& s, const Trained& t) {
  lesson::print(
      "  {:<24} {:>6} parameters, {:4d} steps in {:5.1f} s, final loss {:.3f}, clean "
      "{:.3f}",
      t.name, parameter_count(*t.model), static_cast<int>(t.log.loss.size()), t.log.seconds,
      final_loss(t.log), t.acc[0]);
  (void)s;
}

struct Results {
  Trained audio, video, fused, dropout;
  Trained seed_fusion;  // seed 001's fusion, without the residual (not in --quick)
  bool has_seed_fusion = false;
  Tensor no_audio_input;  // the test set's silence features
  const avsr::Utterances* test = nullptr;
  std::vector<const Trained*> all() const {
    std::vector<const Trained*> v = {&audio, &video, &fused, &dropout};
    if (has_seed_fusion) v.push_back(&seed_fusion);
    return v;
  }
};

void single_modalities(const Setup& s, const Data& d, Results& r) {
  lesson::section("3. Two single-modality recognisers");
  lesson::print(
      "Seed 001's pieces, at laptop size (hidden size {}):\n"
      "  audio [B, 12, 16] -> LSTM(16, {})                       -> a [B, 12, {}]\n"
      "  video [B, 1, 6, 12, 12] -> Conv3d(1, {}, 3x5x5) -> ReLU -> MaxPool3d(1x2x2)\n"
      "       -> Conv3d({}, {}, 3x3x3) -> ReLU -> AdaptiveAvgPool3d(6x3x3) -> [B, 6, {}]\n"
      "       -> LSTM({}, {})                                     -> v [B, 6, {}]\n"
      "  decoder: LSTM({}, {}) over the sequence, its last state -> Linear({}, 10) -> the word\n"
      "The audio-only model decodes a, the video-only model (a lip reader) decodes v. The first\n"
      "Conv3d spans 3 frames, so it sees how the mouth MOVES, not only its shape. Adam, lr {:g},\n"
      "batches of 32, gradients clipped to norm 1 (the usual guard for LSTMs).",
      s.model.hidden, s.model.hidden, s.model.hidden, s.model.c1, s.model.c1, s.model.c2,
      s.model.c2 * 9, s.model.c2 * 9, s.model.hidden, s.model.hidden, s.model.hidden,
      s.model.hidden, s.model.hidden, s.lr);
  r.audio = train_one(s, d, "audio only", avsr::Mode::Audio, s.audio_steps, 0, 0);
  r.video = train_one(s, d, "video only (lip reader)", avsr::Mode::Video, s.video_steps, 0, 1);
  print_trained(s, r.audio);
  print_trained(s, r.video);
}

// ===========================================================================================
// 4. Fusion: the audio queries the video
// ===========================================================================================

void fusion(const Setup& s, const Data& d, Results& r) {
  lesson::section("4. Fusion: the audio queries the video");
  lesson::print(
      "  f = a + MultiheadAttention(query = a, key = v, value = v)   ({} heads)   -> decoder\n"
      "Every audio frame asks every video frame 'are you about me?' (query . key), and takes the\n"
      "softmax-weighted average of their values: what the lips did around that sound. Seed 001's\n"
      "code decodes the attention output alone: a weighted average of VIDEO vectors, so what the\n"
      "audio heard (the voicing) reaches the decoder only through WHERE it looks. We add a back,\n"
      "the residual connection of every transformer block, and measure seed 001's version too.\n"
      "Pre-train each stream, then fuse: the fused model starts from the two encoders above (the\n"
      "Conv3d front-end frozen, its features computed once; the LSTMs keep learning); the\n"
      "attention and the decoder start fresh.\n"
      "  fused                  {} steps; every training utterance has its audio (random SNR);\n"
      "  fused + modality drop  the fused model, trained {} steps more with each utterance's\n"
      "                         audio replaced by silence with probability {:.1f} (modality\n"
      "                         dropout), so it also learns to read the lips alone;\n"
      "  seed 001's fusion      {} steps, decodes Attn(a, v, v) alone, no residual{}.",
      s.model.heads, s.fused_steps, s.dropout_steps, s.audio_dropout, s.fused_steps,
      s.args.quick ? " (skipped in --quick)" : "");
  r.fused = train_one(s, d, "fused", avsr::Mode::Fused, s.fused_steps, 0, 2, &r.audio, &r.video);
  r.dropout = train_one(s, d, "fused + modality dropout", avsr::Mode::Fused, s.dropout_steps,
                        s.audio_dropout, 3, &r.audio, &r.video, true, &r.fused);
  if (!s.args.quick) {
    r.seed_fusion = train_one(s, d, "seed 001's fusion", avsr::Mode::Fused, s.fused_steps, 0, 4,
                              &r.audio, &r.video, false);
    r.has_seed_fusion = true;
  }
  for (const Trained* t : r.all())
    if (t->model->config.mode == avsr::Mode::Fused) print_trained(s, *t);
}

// ===========================================================================================
// 5. Word accuracy against noise, on held-out speakers
// ===========================================================================================

// The most frequent (true -> predicted) mistakes of predictions p, as "pat->fat 41%" (the share
// of that word's test utterances).
std::string top_confusions(const Tensor& pred, const Tensor& labels, int k) {
  const auto p = pred.to_vector<int64_t>(), y = labels.to_vector<int64_t>();
  std::map<std::pair<int64_t, int64_t>, int> count;
  std::vector<int> per_word(avsr::kWords, 0);
  for (size_t i = 0; i < y.size(); ++i) {
    ++per_word[static_cast<size_t>(y[i])];
    if (p[i] != y[i]) ++count[{y[i], p[i]}];
  }
  std::vector<std::pair<int, std::pair<int64_t, int64_t>>> sorted;
  for (const auto& [pair, c] : count) sorted.push_back({c, pair});
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::string out;
  for (int i = 0; i < k && i < static_cast<int>(sorted.size()); ++i) {
    const auto [c, pair] = sorted[static_cast<size_t>(i)];
    out += lesson::format("{}{}->{} {:.0f}%", out.empty() ? "" : ", ",
                          avsr::word_names()[pair.first], avsr::word_names()[pair.second],
                          100.0 * c / per_word[static_cast<size_t>(pair.first)]);
  }
  return out.empty() ? "none" : out;
}

void snr_sweep(const Setup& s, const Data& d, const Results& r) {
  lesson::section("5. Word accuracy against noise, on held-out speakers");
  std::string head = lesson::format("  {:<26}", "");
  for (double snr : s.snrs) head += lesson::format(" {:>7}", snr_name(snr));
  head += lesson::format(" {:>9}", "no audio");
  lesson::print("{}", head);
  for (const Trained* t : r.all()) {
    std::string line = lesson::format("  {:<26}", t->name);
    for (double a : t->acc) line += lesson::format(" {:7.3f}", a);
    if (t->model->config.mode == avsr::Mode::Fused)
      line += lesson::format(" {:9.3f}", t->no_audio);
    else if (t->model->config.mode == avsr::Mode::Video)
      line += lesson::format(" {:9.3f}", t->acc[0]);  // it never listens
    else
      line += lesson::format(" {:>9}", "-");
    lesson::print("{}", line);
  }
  const Groups v = viseme_groups(), a = robust_audio_groups();
  lesson::print(
      "({} test utterances per column; one of them is {:.2f} points. The lip reader's ceiling\n"
      "is {:.2f}, hearing only vowels and voicing gives {:.2f}; chance is 0.10.)",
      d.test.size(), 100.0 / static_cast<double>(d.test.size()), v.best_accuracy(),
      a.best_accuracy());
  const size_t k0 = 2;  // 0 dB
  lesson::print("\nThe most frequent mistakes at 0 dB (true -> heard, share of that word):");
  for (const Trained* t : {&r.audio, &r.video, &r.fused})
    lesson::print("  {:<26} {}", t->name, top_confusions(t->pred[k0], d.test.labels, 4));
  lesson::print(
      "The ear, deafened by noise, mixes up words that differ only in the PLACE of a consonant;\n"
      "the eye mixes up words that differ only in VOICING. The fused model asks the lips for\n"
      "the place and the voice bar for the voicing.");

  plot::LinePlot p(
      "Word accuracy on held-out speakers against the audio's SNR (clean plotted at 20 dB; the "
      "video-only model never hears the noise)",
      "SNR (dB)", "word accuracy");
  std::vector<double> xs;
  for (double snr : s.snrs) xs.push_back(snr >= avsr::kClean ? 20.0 : snr);
  for (const Trained* t : r.all()) p.add_series(t->name, xs, t->acc);
  p.add_hline(lesson::format("lip-reading ceiling {:.2f}", v.best_accuracy()), v.best_accuracy());
  p.add_hline("chance 0.10", 0.1, "#bbbbbb");
  p.set_ylim(0, 1.02).set_xlim(-6, 21).set_markers(true);
  p.save(s.args.path("snr.svg"));
  lesson::print("Figure: {}", s.args.path("snr.svg"));
}

// ===========================================================================================
// 6. When the microphone is off
// ===========================================================================================

void microphone_off(const Setup& s, const Results& r) {
  lesson::section("6. When the microphone is off");
  lesson::print(
      "Every test utterance's audio is replaced by silence (power 0: the log-power floor in every\n"
      "bin, quieter than any training utterance at any SNR):\n"
      "  {:<26} {:.3f}\n  {:<26} {:.3f}\n  {:<26} {:.3f}",
      "video only", r.video.acc[0], "fused", r.fused.no_audio, "fused + modality dropout",
      r.dropout.no_audio);
  const double d = r.dropout.no_audio - r.fused.no_audio;
  // Which member of a lip-identical pair (pat/bat, ...) the models pick on silence: the word
  // whose first differing consonant is voiceless, or the voiced one.
  const auto voiceless_share = [&](const Trained& t) {
    const auto p =
        avsr::predict(*t.model, r.no_audio_input, *r.test, s.args.device).to_vector<int64_t>();
    int voiceless = 0, paired = 0;
    for (int64_t w : p) {
      const int first = avsr::word_units()[static_cast<size_t>(w)][0];
      const bool in_pair = viseme_groups().members.at(viseme_key(static_cast<int>(w))).size() > 1;
      paired += in_pair;
      voiceless += in_pair && !avsr::units()[static_cast<size_t>(first)].voiced;
    }
    return paired ? static_cast<double>(voiceless) / paired : 0.0;
  };
  lesson::print(
      "Modality dropout showed the model this very input in {:.0f}% of its training utterances:\n"
      "silence, and the answer anyway. The fused model without it never saw silence: what it\n"
      "does then was never trained, only inherited from what it learned with sound.\n"
      "Modality dropout, audio missing: {} ({:+.1f} points).\n"
      "With the audio present, dropout changed the accuracy by {:+.1f} points clean, {:+.1f} at\n"
      "0 dB and {:+.1f} at -5 dB (the last two rows of the table).",
      100 * s.audio_dropout,
      d > 0.02    ? "HELPS"
      : d < -0.02 ? "HURTS"
                  : "no clear difference",
      100 * d, 100 * (r.dropout.acc[0] - r.fused.acc[0]), 100 * (r.dropout.acc[2] - r.fused.acc[2]),
      100 * (r.dropout.acc[3] - r.fused.acc[3]));
  if (r.fused.no_audio >= r.video.acc[0] - 0.02) {
    const double share = voiceless_share(r.fused);
    lesson::print(
        "Why the fused model holds up without dropout here: on a pair the lips cannot split\n"
        "(pat/bat), any choice is right half the time, so reading the visemes from the lips is\n"
        "all it takes to reach the lip reader's ceiling; training down to -10 dB, where the sound\n"
        "tells little, taught the fused model to read them. Of its silent-input answers that fall\n"
        "in such a pair, {:.0f}% are the voiceless word (pat, fat, tug, cut){}.",
        100 * share,
        share > 0.8 ? ":\nsilence has no voice bar, so to this model it sounds 'voiceless'" : "");
  }
}

// ===========================================================================================
// 7. Verdicts
// ===========================================================================================

void verdicts(const Results& r) {
  const auto clear = [](double diff) {
    return diff > 0.02 ? "better" : diff < -0.02 ? "worse" : "no clear difference";
  };
  lesson::section("7. Verdicts (computed from the numbers above)");
  const size_t k0 = 2;  // 0 dB
  const double best_single = std::max(r.audio.acc[k0], r.video.acc[k0]);
  const double gain = r.fused.acc[k0] - best_single;
  lesson::print(
      "  at 0 dB the fused model ({:.3f}) beats the better single modality ({}, {:.3f}) by "
      "{:+.1f} points: target >= +10 {}",
      r.fused.acc[k0], r.audio.acc[k0] >= r.video.acc[k0] ? "audio" : "video", best_single,
      100 * gain,
      gain >= 0.10 ? "MET" : lesson::format("MISSED by {:.1f} points", 100 * (0.10 - gain)));
  const double keep = r.dropout.no_audio - r.video.acc[0];
  lesson::print(
      "  audio missing, fused + modality dropout {:.3f} against video only {:.3f} ({:+.1f} "
      "points): target >= video only {}",
      r.dropout.no_audio, r.video.acc[0], 100 * keep,
      keep >= 0 ? "MET" : lesson::format("MISSED by {:.1f} points", -100 * keep));
  lesson::print("  audio missing, modality dropout against none: {:+.1f} points ({:.3f} vs {:.3f})",
                100 * (r.dropout.no_audio - r.fused.no_audio), r.dropout.no_audio,
                r.fused.no_audio);
  const size_t k5 = 3;  // -5 dB
  if (r.has_seed_fusion) {
    lesson::print(
        "  seed 001's fusion (no residual) against ours: 0 dB {:.3f} vs {:.3f}, -5 dB {:.3f} vs "
        "{:.3f}:\n    {} at 0 dB ({:+.1f} points), {} at -5 dB ({:+.1f})",
        r.seed_fusion.acc[k0], r.fused.acc[k0], r.seed_fusion.acc[k5], r.fused.acc[k5],
        clear(r.seed_fusion.acc[k0] - r.fused.acc[k0]),
        100 * (r.seed_fusion.acc[k0] - r.fused.acc[k0]),
        clear(r.seed_fusion.acc[k5] - r.fused.acc[k5]),
        100 * (r.seed_fusion.acc[k5] - r.fused.acc[k5]));
    if (std::abs(r.seed_fusion.acc[k0] - r.fused.acc[k0]) <= 0.02)
      lesson::print(
          "    (WHERE the audio looks is itself a message: the attention weights depend on what\n"
          "    was heard, so the weighted mix of video vectors can carry the voicing too)");
  }
  lesson::print(
      "  at -5 dB: audio only {:.3f}, video only {:.3f}, fused {:.3f}; clean: audio only {:.3f}, "
      "fused {:.3f}",
      r.audio.acc[k5], r.video.acc[k5], r.fused.acc[k5], r.audio.acc[0], r.fused.acc[0]);
}

}  // namespace

int main(int argc, char** argv) {
  return lesson::run([&] {
    Setup s = read_flags(argc, argv);
    the_words();
    const Data d = make_data(s);
    Results r;
    r.no_audio_input = d.no_audio;
    r.test = &d.test;
    single_modalities(s, d, r);
    fusion(s, d, r);
    snr_sweep(s, d, r);
    microphone_off(s, r);
    verdicts(r);
    lesson::Result res;
    res.add("audio_acc_clean", r.audio.acc[0])
        .add("fused_acc_clean", r.fused.acc[0])
        .add("audio_acc_0db", r.audio.acc[2])
        .add("video_acc", r.video.acc[0])
        .add("fused_acc_0db", r.fused.acc[2])
        .add("fused_acc_no_audio", r.dropout.no_audio);
    res.print();
  });
}
