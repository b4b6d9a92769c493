// A third modality for the mini CLIP (lesson 12): synthetic sounds for the Fashion-MNIST classes,
// their log-mel spectrograms, a conv audio encoder, AudioCLIP's six-way contrastive loss and
// ImageBind's audio-to-image training against a frozen CLIP.
//
// AudioCLIP (Guzhov et al., 2021) trains audio, image and text encoders into one space with the
// CLIP loss on all three pairs. With embeddings a, i, t of a batch of N matching triples (row n of
// each is the same item), unit-normalised, and s = exp(min(logit_scale, log 100)):
//
//   L(x -> y) = mean_n CE( s * x_n . y^T , n )   (x_n must pick its partner y_n among all y)
//   six-way loss = ( L(a->i) + L(i->a) + L(a->t) + L(t->a) + L(i->t) + L(t->i) ) / 6
//
// i.e. CLIP's symmetric loss averaged over the three pairs (nn::three_way_contrastive_loss).
//
// ImageBind (Girdhar et al., 2023) shows that the pairs need not all be seen: bind each new
// modality to images only, with the image (and text) encoders of a CLIP trained before and
// frozen. Audio then lands near the images of its class, and the images already sit near their
// captions, so audio -> text works without a single audio-text pair: alignment "emerges".
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "04_mini_clip/clip.h"
#include "mmgrad/data/audio.h"
#include "mmgrad/nn/module.h"

namespace mmgrad::audioclip {

// ---- the sounds ---------------------------------------------------------------------------------

// The sound signature of one class: what every clip of it shares. A clip is `notes` notes in a
// row; each note is a sum of `harmonics` partials k * f (k = 1, 2, ...) of amplitude 1 / k^rolloff
// (the timbre: a small rolloff is bright and buzzy, a large one mellow), whose pitch f starts at
// f0 and moves by `glide` (a ratio: -0.3 falls by 30% over the note) with a 6 Hz vibrato of
// relative depth `vibrato`; `noise` mixes in a noise burst with each note (a click or a thud).
struct ClassSound {
  std::string description;  // "two mellow notes at 220 Hz"
  double f0 = 220;
  double glide = 0;
  double vibrato = 0;
  int harmonics = 1;
  double rolloff = 2;
  int notes = 1;
  double noise = 0;
};

// One signature per Fashion-MNIST class (index = label). The four tops (T-shirt, pullover, coat,
// shirt) share a pitch range and differ only in timbre and rhythm, as their images are alike.
const std::vector<ClassSound>& fmnist_sounds();

struct SoundConfig {
  int64_t sample_rate = 8000;
  int64_t samples = 4000;  // 0.5 s at 8 kHz
  // Per-clip variation: pitch (log-normal, this sd: 0.08 is about 1.4 semitones, so the tops'
  // pitches overlap), loudness, note onsets and lengths, partial amplitudes; plus white noise at a
  // random signal-to-noise ratio.
  double pitch_sd = 0.08;
  double noise_min = 0.05, noise_max = 0.5;  // background noise sd relative to the loudness
  std::string str() const;
};

// Clip `index` of class `cls`: float samples in [-1, 1], deterministic in (cls, seed, index).
std::vector<float> synthesize(int64_t cls, uint64_t seed, uint64_t index,
                              const SoundConfig& config = {});
// One clip per label (clip n from index n): float32 [N, samples].
Tensor synthesize_batch(const Tensor& labels, uint64_t seed, const SoundConfig& config = {});

// ---- features
// ------------------------------------------------------------------------------------

// The spectrogram settings of the lesson: 256-sample frames (32 ms) every 128 samples, 32
// mel bands (Slaney scale) from 60 Hz to 4 kHz: a 0.5 s clip becomes a 32 x 32 "image".
audio::LogMelOptions log_mel_options(const SoundConfig& config = {});

// Log-mel spectrograms in dB, standardised with one mean and sd (those of the training set):
// waveforms [N, L] -> float32 [N, 1, n_mels, frames], the input of the audio encoder.
struct FeatureScale {
  double mean = 0, sd = 1;
};
FeatureScale feature_scale(const Tensor& log_mel);  // over every value of a [N, ...] tensor
Tensor audio_features(const Tensor& waveforms, const audio::LogMelOptions& options,
                      const FeatureScale& scale);
// The second half of audio_features: log-mel [N, M, T] dB -> (x - mean) / sd as [N, 1, M, T].
Tensor standardize(const Tensor& log_mel, const FeatureScale& scale);

// ---- the loss
// ------------------------------------------------------------------------------------

// The six directions, in the order of SixWayLoss::terms and of the lesson's result line.
inline const std::array<const char*, 6> kDirections = {"a2i", "i2a", "a2t", "t2a", "i2t", "t2i"};

struct SixWayLoss {
  Tensor loss;                  // 0-d: the mean of the six terms
  std::array<Tensor, 6> terms;  // 0-d each: L(a->i), L(i->a), L(a->t), L(t->a), L(i->t), L(t->i)
};

// AudioCLIP's loss of a batch of N matching triples: audio, image, text [N, D] (not necessarily
// normalised), logit_scale 0-d, all of one floating dtype and device. Equal to
// nn::three_way_contrastive_loss(audio, image, text, logit_scale), written out direction by
// direction.
SixWayLoss six_way_loss(const Tensor& audio, const Tensor& image, const Tensor& text,
                        const Tensor& logit_scale);

// ---- the model
// -----------------------------------------------------------------------------------

// The audio encoder: lesson 04's CNN (clip::ImageEncoder) reading the spectrogram as a
// one-channel picture of frequency by time, as AudioCLIP's ESResNeXt does: 3x3 convs see
// local patterns in pitch and time (a harmonic stack, a glide, an onset).
std::shared_ptr<clip::ImageEncoder> make_audio_encoder(int64_t embed_dim,
                                                       const std::vector<int64_t>& channels);

// A mini CLIP (image + text, with its logit scale) plus an audio encoder and a second logit
// scale for the audio-image loss of ImageBind training.
class AudioCLIP : public nn::Module {
 public:
  AudioCLIP(std::shared_ptr<clip::MiniCLIP> clip, std::shared_ptr<clip::ImageEncoder> audio,
            double init_temperature = 0.07);
  Tensor encode_audio(const Tensor& features);  // unit rows [B, D]
  std::string name() const override { return "AudioCLIP"; }

  std::shared_ptr<clip::MiniCLIP> clip;
  std::shared_ptr<clip::ImageEncoder> audio_encoder;
  Tensor audio_logit_scale;  // 0-d parameter, log(1 / temperature)
};

// ---- training
// ------------------------------------------------------------------------------------

struct TrainLog {
  std::vector<double> losses;                // the objective, one per step
  std::array<std::vector<double>, 6> terms;  // six-way training: each direction per step
  double seconds = 0;
};

// Part A: the three encoders together with six_way_loss on (image n, a caption of its class,
// audio clip n) triples. Batches and captions come from clip::ClipBatches (the same as
// train_clip's for the same options); features [N, 1, M, T] holds audio clip n for image n.
// Adam with options' cosine schedule over every parameter but audio_logit_scale; the shared
// logit scale is clamped to CLIP's cap after each step. Leaves the model in eval mode.
TrainLog train_six_way(AudioCLIP& model, const Tensor& images, const Tensor& labels,
                       const Tensor& features, const clip::CaptionBank& captions,
                       const clip::TrainOptions& options, Device device = kCPU);

// Part B (ImageBind): only the audio encoder and audio_logit_scale learn, with CLIP's loss
// between audio clip n and image n, whose embedding comes from the frozen image encoder
// (image_emb: unit rows [N, D], computed once beforehand). No caption is ever used.
TrainLog train_audio_to_images(AudioCLIP& model, const Tensor& features, const Tensor& image_emb,
                               const clip::TrainOptions& options, Device device = kCPU);

// Unit audio embeddings of many clips, in batches under NoGradGuard, float32 [N, D] on the CPU.
Tensor encode_audio(AudioCLIP& model, const Tensor& features, Device device = kCPU,
                    int64_t batch_size = 1000);

}  // namespace mmgrad::audioclip
