// Lesson 14's model and data: one transformer over audio, image and text tokens (seed 001's
// "multimodal transformer"), the late-fusion baseline, and the training strategies of seed 001
// (modality-balanced sampling, the curriculum, gradual modality integration, modality dropout).
//
// The task needs two modalities JOINTLY. Every sample has a texture (in the image: horizontal
// stripes, vertical stripes or a checkerboard, index p) and a sound (in the audio: a low thud, a
// falling tone or high clicks, index q; lesson 12's synthetic sounds), and a caption that names
// the sound ("a loud thud sound") but is wrong now and then. The class is
//
//   y = (p + q) mod 3
//
// so the image alone or the sound alone says NOTHING about y (for a fixed p, each class is
// equally likely), while image + sound decide it. The caption is a second, noisier witness of q:
// image + caption still work when the audio is missing, only less reliably.
//
// The multimodal transformer (seed 001):
//   audio tokens  [B, 8, 32]  (log-mel frames)    -> Linear(32, d) + m_audio  --.
//   image tokens  [B, 4, 16]  (4x4 patches)       -> Linear(16, d) + m_image  --+--> concat
//   text tokens   [B, 4]      (word ids)          -> Embedding(V, d) + m_text --'    [B, 16, d]
//   -> one nn::TransformerEncoder (self-attention across ALL tokens: a sound token can look at
//      an image patch) -> mean over the tokens that are present -> Linear(d, 3).
// m_audio, m_image, m_text are the learned modality embeddings (nn::Embedding(3, d), rows 0, 1,
// 2) that tell the encoder which modality a token came from. A missing modality's tokens are
// dropped with the attention's key_padding_mask (no token attends to them) and left out of the
// mean, so its data never reaches the output.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "12_audio_clip/audio_clip.h"
#include "mmgrad/nn/layers.h"

namespace mmgrad::mmt {

// The three modalities, in token order (and the rows of the modality embedding).
enum Modality : int { kAudio = 0, kImage = 1, kText = 2 };
inline constexpr std::array<const char*, 3> kModalityNames = {"audio", "image", "text"};

inline constexpr int64_t kClasses = 3;
inline constexpr int64_t kAudioTokens = 8, kMels = 32;  // 8 tokens of 4 averaged frames each
inline constexpr int64_t kImageSize = 8, kPatch = 4;    // 8x8 image, 4 patches of 4x4
inline constexpr int64_t kImageTokens = 4, kPatchDim = 16;
inline constexpr int64_t kTextTokens = 4;
inline constexpr int64_t kTokens = kAudioTokens + kImageTokens + kTextTokens;

// Names of the textures (p), the sounds (q) and the caption vocabulary.
const std::array<const char*, 3>& texture_names();
const std::array<const char*, 3>& sound_names();
const std::vector<std::string>& vocabulary();
// The lesson-12 sound signature (audioclip::fmnist_sounds() index) used for sound q.
int64_t sound_signature(int64_t q);

struct TaskConfig {
  double caption_reliability = 0.7;  // P(the caption names the true sound), else a random one
  double image_noise = 0.8;          // pixel noise sd (the stripes are +-contrast, 0.6 to 1.2)
  double audio_rate = 1.0;           // P(the sample has its audio); < 1: a rare combination
  audioclip::SoundConfig sound;      // lesson 12's clips: 0.5 s at 8 kHz
};

// A set of samples (or a batch): every modality's tokens, which modalities are present, the
// class and the two hidden factors.
struct Samples {
  Tensor audio;    // float32 [N, 8, 32]: standardised log-mel, 4 frames averaged per token
  Tensor image;    // float32 [N, 4, 16]: the 4x4 patches of the 8x8 texture image
  Tensor text;     // int64 [N, 4]: word ids of the caption
  Tensor present;  // float32 [N, 3]: 1 = the modality is there (audio, image, text)
  Tensor labels;   // int64 [N]: y = (p + q) mod 3
  Tensor texture;  // int64 [N]: p
  Tensor sound;    // int64 [N]: q
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  // The rows `idx` (int64 [B]).
  Samples rows(const Tensor& idx) const;
  // A copy with modality m marked missing everywhere (its data zeroed too).
  Samples without(Modality m) const;
  // Only the samples whose modality m is present.
  Samples with_only_present(Modality m) const;
  // Every tensor on `device`.
  Samples to(Device device) const;
};

// The log-mel scale of a set's audio (computed on the training set, reused for the test set).
struct AudioScale {
  audioclip::FeatureScale scale;
  bool fitted = false;
};

// n samples, deterministic in (seed, config). `scale`: when not fitted, it is fitted on these
// samples' log-mel values (the training set) and stored; when fitted, it is applied (test set).
Samples make_samples(int64_t n, uint64_t seed, const TaskConfig& config, AudioScale& scale);

// ---- models -----------------------------------------------------------------------------------

// A classifier of Samples. forward: logits [B, 3] of y. forward_unimodal: logits [B, 3] of the
// factor a single modality shows (used by the curriculum's first phase; the late-fusion
// baseline has none and throws).
class MultimodalClassifier : public nn::Module {
 public:
  using nn::Module::forward;
  virtual Tensor forward(const Samples& in) = 0;
  virtual Tensor forward_unimodal(const Samples& in);
  Tensor forward(const Tensor& x) override;  // throws: these models take Samples
};

struct MMTConfig {
  int64_t d_model = 32, heads = 2, layers = 2, dim_feedforward = 64;
  bool modality_embeddings = true;
  std::string str() const;
};

class MultimodalTransformer : public MultimodalClassifier {
 public:
  explicit MultimodalTransformer(const MMTConfig& config);
  Tensor forward(const Samples& in) override;
  Tensor forward_unimodal(const Samples& in) override;
  // The pooled representation [B, d]: mean of the encoder's outputs over the present tokens.
  Tensor encode(const Samples& in);
  std::string name() const override { return "MultimodalTransformer"; }

  MMTConfig config;
  std::shared_ptr<nn::Linear> audio_proj, image_proj;
  std::shared_ptr<nn::Embedding> text_embed;
  std::shared_ptr<nn::Embedding> modality_embed;  // null without modality embeddings
  std::shared_ptr<nn::TransformerEncoder> encoder;
  std::shared_ptr<nn::Linear> classifier;
  std::shared_ptr<nn::Linear> unimodal_head;  // the curriculum's phase-1 head (p or q)
  Tensor token_modality;                      // int64 [16]: the modality of each token
};

// Lesson 10's late fusion for three modalities: one small classifier per modality (per-token
// MLP, mean over the tokens, Linear to 3 logits), and the logits averaged over the modalities
// that are present. The modalities never meet before the average, so the model is a SUM of
// one-modality scores: it cannot represent y = (p + q) mod 3 (see the lesson).
class LateFusion : public MultimodalClassifier {
 public:
  explicit LateFusion(int64_t hidden = 32);
  Tensor forward(const Samples& in) override;
  std::string name() const override { return "LateFusion"; }
  std::shared_ptr<nn::Linear> audio_in, image_in;
  std::shared_ptr<nn::Embedding> text_in;
  std::array<std::shared_ptr<nn::Linear>, 3> hidden_layer, head;
};

// ---- training ---------------------------------------------------------------------------------

// How the batches are drawn: Uniform = every training sample equally often; Balanced = seed
// 001's ModalityBalancedSampler: each combination of present modalities gets the same share
// of the batches (weight total / count), so a rare combination is seen as often as a common one.
enum class Sampling { Uniform, Balanced };

// What the model is shown over training (fraction t of the steps done):
//   Plain       all modalities present from the first step.
//   Curriculum  seed 001's phases: t < 0.2 unimodal (each sample shows ONE of its modalities and
//               the unimodal head predicts what that modality shows: the texture p or the sound
//               q), t < 0.5 pairwise (image + text, class y), then full (all, class y).
//   Gradual     seed 001's gradual modality integration: class y throughout, with the inactive
//               modalities masked: t < 0.3 text only, t < 0.6 text + image, then all.
enum class Schedule { Plain, Curriculum, Gradual };
const char* schedule_name(Schedule s);

struct TrainOptions {
  int64_t steps = 300, batch_size = 64;
  double lr = 3e-3;  // Adam, constant after a 20-step warm-up
  Sampling sampling = Sampling::Uniform;
  Schedule schedule = Schedule::Plain;
  // Modality dropout: each training sample hides each modality with this probability (audio,
  // image, text), on top of what is missing in the data; a sample keeps at least one.
  std::array<double, 3> modality_dropout = {0, 0, 0};
  int64_t eval_every = 25;  // held-out accuracy every k steps (the training curve)
  uint64_t seed = 0;        // batches, masks and dropout draws
  Device device = kCPU;     // where the model is; the data stays on the CPU, batches move
  std::string str() const;
};

struct TrainLog {
  std::vector<double> loss;                  // per step
  std::vector<double> eval_steps, eval_acc;  // the held-out curve
  double seconds = 0;
};

// Trains m (Adam, already on options.device) on `train` (on the CPU); after every eval_every steps
// (and at the end) measures the accuracy on `heldout` for the curve (only watched: nothing is
// chosen with it). Leaves m in eval mode.
TrainLog train(MultimodalClassifier& m, const Samples& train, const Samples& heldout,
               const TrainOptions& options);

// Accuracy of y on a set kept on the CPU (eval mode, no graph, in batches moved to `device`,
// where the model is).
double accuracy(MultimodalClassifier& m, const Samples& s, Device device = kCPU,
                int64_t batch_size = 500);

}  // namespace mmgrad::mmt
