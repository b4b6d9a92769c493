// Lesson 15's data and model: audio-visual speech recognition (AVSR, seed 001) on a synthetic
// ten-word vocabulary.
//
// THE SPEECH. A word is three phoneme-like units, consonant-vowel-consonant ("pat", "dug"). Each
// unit has two faces:
//   - what it SOUNDS like: a spectral envelope over 16 frequency bins (a crude spectrogram, one
//     row per 10 ms frame, 4 frames per unit). Vowels are two strong formant peaks. A consonant
//     is a weak peak whose position says WHERE the mouth closes (its place: lips, teeth, tongue
//     tip, back), plus, when it is voiced (b, d, g, v), a strong low "voice bar" near 0 Hz.
//   - what it LOOKS like: a mouth shape (its viseme), rendered as a 12 x 12 grey image of a lip
//     contour, 2 video frames per unit (a camera is slower than a microphone).
// This is how real speech behaves, and why AVSR works: p and b (and t/d, k/g, f/v) are made with
// the same mouth, only the vocal cords differ, so they LOOK identical (one viseme) but sound
// different. The place of articulation is plain to see (closed lips vs. teeth on the lip) but its
// acoustic cue is weak and is the first thing noise hides. The two modalities fail on different
// words, so together they can be right where each alone is not.
//
// SPEAKERS. Every speaker has a vocal-tract length (all formants scaled by 0.88 to 1.12), a voice
// strength, a loudness, a mouth size, a mouth position in the frame, skin and lip brightness.
// Training and test speakers are different people: accuracy is measured on held-out SPEAKERS.
//
// NOISE. White noise is added in the power domain at a chosen signal-to-noise ratio:
//   noise power per bin = (mean signal power per bin and frame of the utterance) / 10^(SNR / 10)
// times an Exp(1) draw per bin and frame (the periodogram of white noise). 0 dB: as much noise as
// speech. The feature is the log power (dB), standardised with the training set's mean and sd.
//
// THE MODEL (seed 001's AudioVisualSpeechRecognizer, at laptop size):
//   audio [B, 12, 16] -> LSTM(16, H)                                  -> a [B, 12, H]
//   video [B, 1, 6, 12, 12] -> Conv3d(1, 8, (3,5,5), pad (1,2,2)) -> ReLU -> MaxPool3d((1,2,2))
//        -> Conv3d(8, 16, 3, pad 1) -> ReLU -> AdaptiveAvgPool3d((6, 3, 3))
//        -> per frame [B, 6, 144] -> LSTM(144, H)                    -> v [B, 6, H]
//   fusion: MultiheadAttention(H, 4 heads), audio QUERIES video:  f = a + Attn(q = a, k = v, v = v)
//   decoder: LSTM(H, H) over f, its final state -> Linear(H, 10 words)
// The audio-only model decodes a, the video-only model decodes v (same encoders, same decoder).
// One change from seed 001's code: it decodes Attn(a, v, v) alone, a weighted average of VIDEO
// vectors, so what the audio heard reaches the decoder only through where it looks. We add the
// audio back (the residual connection every transformer block has); ModelConfig::residual = false
// gives seed 001's version, which the lesson measures too.
//
// TRAINING (lesson 15): each stream is trained alone first (audio-only and video-only models);
// a fused model then starts from both encoders (init_from), with the Conv3d front-end frozen.
// Modality dropout replaces a training utterance's audio by silence() with some probability.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mmgrad/nn/attention.h"
#include "mmgrad/nn/conv.h"
#include "mmgrad/nn/linear.h"
#include "mmgrad/nn/lstm.h"
#include "mmgrad/nn/module.h"

namespace mmgrad::avsr {

inline constexpr int64_t kWords = 10, kUnitsPerWord = 3;
inline constexpr int64_t kBins = 16, kAudioFramesPerUnit = 4;
inline constexpr int64_t kAudioFrames = kUnitsPerWord * kAudioFramesPerUnit;  // 12
inline constexpr int64_t kMouth = 12, kVideoFramesPerUnit = 2;                // 12 x 12 pixels
inline constexpr int64_t kVideoFrames = kUnitsPerWord * kVideoFramesPerUnit;  // 6
inline constexpr double kClean = 1e9;  // "SNR" of the clean audio: no noise at all

// A phoneme-like unit: its name, its viseme (mouth shape) and its sound.
struct Unit {
  const char* name;
  int viseme;   // index into viseme_names()
  bool voiced;  // vocal cords on: a strong low "voice bar" (consonants b, d, g, v)
  bool vowel;   // vowels: two strong formants f1, f2 (bins); consonants: one weak place peak
  double f1 = 0, f2 = 0;  // vowel formants, or (place bin, width) of a consonant
};

const std::vector<Unit>& units();
const std::vector<std::string>& viseme_names();
// The ten words: names and their three unit indices.
const std::array<const char*, kWords>& word_names();
const std::array<std::array<int, kUnitsPerWord>, kWords>& word_units();

struct Speaker {
  double formant_scale = 1, voice = 1, loudness = 1;              // audio
  double mouth_scale = 1, dx = 0, dy = 0, skin = 0.6, lip = 0.3;  // video
};
// n speakers, deterministic in seed (train and test speakers come from different seeds).
std::vector<Speaker> make_speakers(int64_t n, uint64_t seed);

// Utterances: the clean signal (before noise) and the video. Noise is added by features().
struct Utterances {
  Tensor power;    // float32 [N, 12, 16]: clean power spectrum per frame (linear)
  Tensor video;    // float32 [N, 1, 6, 12, 12]: mouth frames in [0, 1] (NCDHW, for Conv3d)
  Tensor labels;   // int64 [N]: the word
  Tensor speaker;  // int64 [N]: index into the speaker list they were made with
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  Utterances rows(const Tensor& idx) const;
};

// n utterances by the given speakers (chosen at random), deterministic in seed. balanced: every
// word exactly n / kWords times (n must be a multiple of 10; for test sets: a word that video
// cannot tell from another then costs every model exactly the same), else words at random.
Utterances make_utterances(int64_t n, const std::vector<Speaker>& speakers, uint64_t seed,
                           bool balanced);

// Standardisation of the log-power features (fitted on training features).
struct FeatureScale {
  double mean = 0, sd = 1;
};

// Log-power features [N, 12, 16] of the utterances with white noise at snr_db[n] (kClean: none),
// noise drawn from seed: (10 log10(power + noise + 1e-4) - mean) / sd.
Tensor features(const Tensor& power, const std::vector<double>& snr_db, uint64_t seed,
                const FeatureScale& scale);
// The same SNR for every utterance.
Tensor features(const Tensor& power, double snr_db, uint64_t seed, const FeatureScale& scale);
FeatureScale fit_scale(const Tensor& log_features_unscaled);
// The features of a switched-off microphone: silence (power 0, so 10 log10(1e-4) = -40 dB in
// every bin), standardised: [n, 12, 16]. Quieter than any training utterance at any SNR.
Tensor silence(int64_t n, const FeatureScale& scale);

// ---- the model --------------------------------------------------------------------------------

enum class Mode { Audio, Video, Fused };
const char* mode_name(Mode m);

struct ModelConfig {
  Mode mode = Mode::Fused;
  int64_t hidden = 32, heads = 4;
  int64_t conv1_kernel = 5, c1 = 8, c2 = 16;  // video front-end: 3 x k x k kernel, channels
  bool residual = true;  // fused = a + Attn(a, v, v); false: seed 001's Attn(a, v, v) alone
};

class AVSRModel : public nn::Module {
 public:
  explicit AVSRModel(const ModelConfig& config);
  // audio [B, 12, 16] (silence() = the audio is missing), video [B, 1, 6, 12, 12] -> logits
  // [B, 10].
  // A model ignores the modality it does not use (pass an empty tensor there).
  Tensor forward(const Tensor& audio, const Tensor& video);
  Tensor forward(const Tensor& x) override;  // throws: takes audio and video
  // The pieces, for the lesson to look inside: a [B, 12, H], v [B, 6, H].
  Tensor encode_audio(const Tensor& audio);
  // video [B, 1, 6, 12, 12], or its front-end features [B, 6, frontend_size()].
  Tensor encode_video(const Tensor& video);
  // The Conv3d front-end alone: video [B, 1, 6, 12, 12] -> one vector per frame [B, 6, c2 * 9].
  Tensor video_frontend(const Tensor& video);
  int64_t frontend_size() const { return config.c2 * 9; }
  // "Pre-train each stream, then fuse": a fused model takes the audio encoder of audio_model and
  // the video encoder (front-end and LSTM) of video_model; freeze_frontend stops the Conv3d
  // layers from learning (train() then computes their features once for the whole set).
  void init_from(AVSRModel& audio_model, AVSRModel& video_model, bool freeze_frontend);
  bool frontend_frozen() const;
  std::string name() const override { return "AVSRModel"; }

  ModelConfig config;
  std::shared_ptr<nn::LSTM> audio_encoder, video_encoder, decoder;
  std::shared_ptr<nn::Conv3d> conv1, conv2;
  std::shared_ptr<nn::MultiheadAttention> fusion;
  std::shared_ptr<nn::Linear> classifier;
};

// ---- training ---------------------------------------------------------------------------------

struct TrainOptions {
  int64_t steps = 400, batch_size = 32;
  double lr = 3e-3;  // Adam, 20-step warm-up, then cosine decay to 10%
  // Per training sample the SNR is drawn uniformly from [snr_lo, snr_hi] dB, or clean with
  // probability p_clean: the model hears every noise level (multi-condition training).
  double snr_lo = -10, snr_hi = 20, p_clean = 0.2;
  double audio_dropout = 0;  // modality dropout: P(a training utterance's audio is silence())
  uint64_t seed = 0;         // batches, noise and dropout draws
  Device device = kCPU;
  std::string str() const;
};

struct TrainLog {
  std::vector<double> loss;  // per step
  double seconds = 0;
};

// Trains m (Adam, already on options.device) on `train`; noise is drawn anew for every batch.
// Leaves m in eval mode.
TrainLog train(AVSRModel& m, const Utterances& train, const FeatureScale& scale,
               const TrainOptions& options);

// Word accuracy on `audio` features [N, 12, 16] (CPU) and the utterances' video and labels.
double accuracy(AVSRModel& m, const Tensor& audio, const Utterances& u, Device device = kCPU);
// Predicted words [N] (int64, CPU).
Tensor predict(AVSRModel& m, const Tensor& audio, const Utterances& u, Device device = kCPU);

}  // namespace mmgrad::avsr
