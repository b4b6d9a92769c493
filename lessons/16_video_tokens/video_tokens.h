// Lesson 16's data and models: synthetic captioned clips, a VQ-VAE that turns a clip into 32
// discrete video tokens, and VideoBERT (seed 001): video and text tokens in one transformer,
// trained by masked-token prediction on both.
//
// The clips. 8 frames of 16x16 RGB: a red, green, blue or yellow circle, square or triangle on a
// tinted background (a random dark colour with a vertical gradient), which moves left, right, up
// or down (0.8 to 1.2 pixels a frame), grows or shrinks. The caption says what happens, in five
// word slots: "a red circle moves left", "a blue square grows" (the fifth slot is <pad>).
// 4 colours x 3 shapes x 6 motions = 72 different captions.
//
// The VQ-VAE (van den Oord et al. 2017) with a Conv3d encoder:
//   clip [B, 3, 8, 16, 16]
//   -> Conv3d(3, 32, kernel = stride = (2, 4, 4))     tubelets of 2 frames x 4x4 pixels: [B, 32, 4,
//   4, 4]
//   -> ReLU -> Conv3d(32, 32, kernel (2, 3, 3), stride (2, 1, 1), padding (0, 1, 1)): [B, 32, 2, 4,
//   4]
//      (each output sees 4 frames: a filter can respond to MOTION, not only to shape)
//   -> ReLU -> Conv3d(32, D, 1)                         z [B, D, 2, 4, 4], permuted channels-last
//   -> nn::VectorQuantizer(K, D): 2 x 4 x 4 = 32 tokens per clip, each one of K codes
//   decoder: Conv3d(D, 64, (1, 3, 3), padding (0, 1, 1)) -> ReLU -> Conv3d(64, 3 * 4 * 4 * 4, 1)
//   -> "depth to space": each token's 192 channels become its 3 x (4 frames x 4 x 4 pixels) block
//      (a transposed convolution with kernel = stride, written as reshape + permute) -> sigmoid.
//
// VideoBERT (Sun et al. 2019): token sequence [32 video tokens | 5 text tokens], each embedded
// by its own table (video: K codes + [MASK]; text: the words + <pad> + [MASK]), plus a learned
// position embedding and a learned MODALITY embedding (video or text), through one
// nn::TransformerEncoder, then a video head (K logits) on the video positions and a text head
// (vocabulary logits) on the text positions.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mmgrad/nn/layers.h"

namespace mmgrad::vt {

inline constexpr int64_t kFrames = 8, kSize = 16, kChannels = 3;
inline constexpr int64_t kTokT = 2, kTokH = 4, kTokW = 4;  // the token grid of a clip
inline constexpr int64_t kVideoTokens = kTokT * kTokH * kTokW;
inline constexpr int64_t kTextTokens = 5;  // "a <colour> <shape> <verb> <direction or pad>"

// The factors of a clip, and the words.
const std::vector<std::string>& color_names();   // red green blue yellow
const std::vector<std::string>& shape_names();   // circle square triangle
const std::vector<std::string>& motion_names();  // left right up down grows shrinks
const std::vector<std::string>& vocabulary();    // <pad> [MASK] a red ... down
inline constexpr int64_t kPad = 0, kMask = 1;
int64_t vocab_size();

// A set of clips: videos, captions and the factors behind them.
struct Clips {
  Tensor video;   // float32 [N, 3, 8, 16, 16] in [0, 1]
  Tensor text;    // int64 [N, 5]: word ids
  Tensor color;   // int64 [N]
  Tensor shape;   // int64 [N]
  Tensor motion;  // int64 [N]
  int64_t size() const { return video.defined() ? video.size(0) : 0; }
  Clips rows(const Tensor& idx) const;
};

// n clips, deterministic in seed.
Clips make_clips(int64_t n, uint64_t seed);
std::string caption(const Clips& c, int64_t i);  // "a red circle moves left"
std::string caption_of(const std::vector<int64_t>& words);

// One index per distinct caption (the first clip that has it), sorted by caption: a retrieval
// gallery in which every caption has exactly one right clip.
std::vector<int64_t> one_clip_per_caption(const Clips& c);

// ---- the VQ-VAE --------------------------------------------------------------------------------

struct VQVAEConfig {
  int64_t codes = 32;    // K, the codebook size (the video vocabulary)
  int64_t code_dim = 8;  // D
  int64_t hidden = 32;   // encoder channels
  double beta = 0.25;    // commitment weight
  bool straight_through = true;
  // The codebook's initial values: 0 = the VQ-VAE reference init, U(-1/K, 1/K); > 0 = N(0,
  // init_sd^2) (nn::Embedding's default is 1).
  double init_sd = 0;
};

class VQVAE : public nn::Module {
 public:
  explicit VQVAE(const VQVAEConfig& config);
  // clip [B, 3, 8, 16, 16] -> z [B, 2, 4, 4, D] (channels last, ready for the quantizer).
  Tensor encode(const Tensor& video);
  // quantized [B, 2, 4, 4, D] -> reconstruction [B, 3, 8, 16, 16] in (0, 1).
  Tensor decode(const Tensor& zq);
  // int64 tokens [B, 32] -> the clip they stand for.
  Tensor decode_tokens(const Tensor& tokens);
  // The 32 tokens of each clip, int64 [B, 32] (no gradient).
  Tensor tokenize(const Tensor& video);
  Tensor forward(const Tensor& video) override {
    return decode(vq->quantize(encode(video)).quantized);
  }
  std::string name() const override { return "VQVAE"; }

  VQVAEConfig config;
  std::shared_ptr<nn::Sequential> encoder, decoder;
  std::shared_ptr<nn::VectorQuantizer> vq;
};

struct VQTrainOptions {
  int64_t steps = 600, batch_size = 32;
  double lr = 2e-3;
  // The fix for codebook collapse: every restart_every steps (0 = never) the codes that fewer
  // than min_count vectors of the last restart_batches batches picked move onto random encoder
  // outputs (nn::VectorQuantizer::restart_dead_codes). Stops after restart_until of the steps,
  // so the last restarted codes have time to settle.
  int64_t restart_every = 0, min_count = 1;
  double restart_until = 0.8;
  int64_t log_every = 20;
  uint64_t seed = 0;
};

struct VQTrainLog {
  std::vector<double> steps, recon_mse, perplexity, codes_used;  // every log_every steps (batch)
  int64_t restarted = 0;                                         // codes restarted in total
  double seconds = 0;
};

VQTrainLog train_vqvae(VQVAE& m, const Clips& train, const VQTrainOptions& options);

// On a held-out set (eval, no graph): reconstruction MSE per pixel, code usage over all tokens.
struct VQEval {
  double recon_mse = 0, perplexity = 0;
  int64_t codes_used = 0;
  Tensor counts;  // int64 [K]
};
VQEval evaluate_vqvae(VQVAE& m, const Clips& c);

// The gradient norm the reconstruction loss alone gives the encoder's weights on one batch (the
// straight-through test: exactly 0 without it).
double encoder_grad_norm(VQVAE& m, const Tensor& video);

// ---- VideoBERT ---------------------------------------------------------------------------------

struct BertConfig {
  int64_t d_model = 48, heads = 2, layers = 2, dim_feedforward = 96;
};

class VideoBERT : public nn::Module {
 public:
  VideoBERT(int64_t video_vocab, const BertConfig& config);
  // video tokens int64 [B, 32] (values < K, or K = [MASK]), text int64 [B, 5] -> logits
  // {video [B, 32, K], text [B, 5, V]}.
  std::pair<Tensor, Tensor> forward_both(const Tensor& video, const Tensor& text);
  std::string name() const override { return "VideoBERT"; }

  int64_t video_vocab;  // K: the video [MASK] is token K
  BertConfig config;
  std::shared_ptr<nn::Embedding> video_embed, text_embed, position_embed, modality_embed;
  std::shared_ptr<nn::TransformerEncoder> encoder;
  std::shared_ptr<nn::Linear> video_head, text_head;
  Tensor modality;  // int64 [37]: 0 for the video positions, 1 for the text ones
};

// The training data of VideoBERT: video tokens from the VQ-VAE and the captions.
struct TokenSet {
  Tensor video;  // int64 [N, 32]
  Tensor text;   // int64 [N, 5]
};

struct BertTrainOptions {
  int64_t steps = 500, batch_size = 64;
  double lr = 2e-3;
  double caption_only = 0.5;  // share of samples with ALL text masked (predict the caption)
  double text_mask = 0.3;     // otherwise each word masked with this probability
  double video_mask = 0.15;   // and each video token (BERT's 15%)
  int64_t log_every = 25;
  uint64_t seed = 0;
};

struct BertTrainLog {
  std::vector<double> steps, video_loss, text_loss;
  double seconds = 0;
};

BertTrainLog train_videobert(VideoBERT& m, const TokenSet& train, const BertTrainOptions& o);

// log p(word | video tokens) at every text slot, from the video alone (all text [MASK]ed):
// float32 [N, 5, V] log-probabilities.
Tensor caption_log_probs(VideoBERT& m, const Tensor& video_tokens);

// The words a caption is made of that depend on the clip: colour, shape, verb and, when it
// moves, the direction (not the constant "a", not <pad>). Fraction predicted right (argmax).
double caption_word_accuracy(const Tensor& log_probs, const Tensor& text);

// Text -> video retrieval with the masked-language model: clip v's score for caption c is
// log p(c | v) = sum over slots of log p(word | v). R@1 over the captions of `text`; the gallery
// is the clips of `log_probs` (the same order: caption i belongs to clip i).
double text_to_video_r1(const Tensor& log_probs, const Tensor& text);
// The best-scoring clip of every caption (R@1 is the share where it is the caption's own).
std::vector<int64_t> text_to_video_top1(const Tensor& log_probs, const Tensor& text);

// Masked-token accuracy on video tokens: with the caption visible and a share `mask` of video
// tokens masked, how often the masked code is predicted.
double video_token_accuracy(VideoBERT& m, const TokenSet& s, double mask, uint64_t seed);

}  // namespace mmgrad::vt
