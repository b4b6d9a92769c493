// The mini CLIP the lessons share (04 builds it, 05 and 06 use it, 07, 08 and later lessons may
// reuse it): Fashion-MNIST captions from templates, the CNN image encoder, the transformer text
// encoder, the MiniCLIP model with its learnable temperature, a training loop, encoding and
// zero-shot helpers, and a checkpoint cache so later lessons can reuse lesson 04's model.
//
//   clip::CaptionBank captions = clip::make_fmnist_captions();
//   clip::FmnistClipConfig cfg = clip::default_fmnist_config(args);
//   clip::ClipModel m = clip::get_fmnist_clip(args, cfg, captions);   // cached or trained
//   Tensor img = clip::encode_images(*m.model, test.images, args.device);
//   Tensor cls = clip::class_embeddings(*m.model, captions, clip::ensemble_template_ids(),
//                                       args.device);
//   Tensor pred = clip::zero_shot_predict(img, cls);
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/lesson.h"
#include "mmgrad/data/fashion_mnist.h"
#include "mmgrad/data/tokenizer.h"
#include "mmgrad/nn/layers.h"
#include "mmgrad/nn/losses.h"
#include "mmgrad/optim/lr_scheduler.h"
#include "mmgrad/optim/optim.h"
#include "mmgrad/tensor/generator.h"

namespace mmgrad::clip {

// ---- captions ---------------------------------------------------------------------------------

// The class names as they appear in captions: "t-shirt", "trouser", "pullover", "dress", "coat",
// "sandal", "shirt", "sneaker", "bag", "ankle boot" (index = Fashion-MNIST label).
const std::vector<std::string>& fmnist_caption_names();

// The caption templates, "{}" standing for the class name: "a photo of a {}", "a
// black-and-white picture of a {}", ... The model is trained on captions from all of them.
const std::vector<std::string>& caption_templates();
// The template a single-prompt zero-shot classifier uses ("a photo of a {}").
inline constexpr int64_t kSingleTemplate = 0;
// The five templates of the prompt ensemble (indices into caption_templates()).
const std::vector<int64_t>& ensemble_template_ids();

// The template with "{}" replaced by name; "a {}" becomes "an {}" before a vowel
// ("a photo of an ankle boot").
std::string fill_template(const std::string& tmpl, const std::string& name);

// Room for the longest caption: BOS + 12 tokens + EOS, padded to 16.
inline constexpr int64_t kCaptionLen = 16;

// Every (class, template) caption, tokenized once: row c * num_templates + t is class c under
// template t, as [BOS] words [EOS] [PAD]... of length max_len.
struct CaptionBank {
  std::vector<std::string> class_names;  // caption names, one per class
  std::vector<std::string> templates;
  data::Tokenizer tokenizer;  // vocabulary of exactly these captions (deterministic ids)
  int64_t max_len = kCaptionLen;
  Tensor tokens;  // int64 [num_classes * num_templates, max_len], on the CPU

  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
  int64_t num_templates() const { return static_cast<int64_t>(templates.size()); }
  int64_t row(int64_t cls, int64_t tmpl) const { return cls * num_templates() + tmpl; }
  std::string text(int64_t cls, int64_t tmpl) const;
  // int64 [num_classes, max_len]: template tmpl filled with every class name, in class order.
  Tensor class_prompts(int64_t tmpl) const;
  // Tokenizes any texts with this vocabulary (unknown words become <unk>).
  Tensor encode(const std::vector<std::string>& texts) const;
};

// Built from fmnist_caption_names() x caption_templates() (or the names/templates given).
CaptionBank make_caption_bank(const std::vector<std::string>& class_names,
                              const std::vector<std::string>& templates,
                              int64_t max_len = kCaptionLen);
CaptionBank make_fmnist_captions(int64_t max_len = kCaptionLen);

// ---- the encoders -----------------------------------------------------------------------------

// The CNN image encoder: per entry of `channels` a 3x3 conv (padding 1) [+ batch norm] + ReLU,
// with a 2x2 max pool after every conv but the last; then adaptive average pooling to
// pool_size x pool_size and a linear projection to embed_dim. The seed notebook's encoder is
// channels {32, 64, 128}, pool_size 1 (global average), no batch norm.
struct ImageEncoderOptions {
  int64_t in_channels = 1;
  std::vector<int64_t> channels = {32, 64, 128};
  int64_t embed_dim = 64;
  int64_t pool_size = 1;
  bool batch_norm = false;
  std::string str() const;  // "in=1 ch=32,64,128 pool=1 bn=0 emb=64"
};

class ImageEncoder : public nn::Module {
 public:
  explicit ImageEncoder(const ImageEncoderOptions& options);
  // x [B, in_channels, H, W] -> [B, embed_dim] (not normalised).
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "ImageEncoder"; }
  std::string extra_repr() const override { return options.str(); }

  ImageEncoderOptions options;
  std::shared_ptr<nn::Sequential> features;
  std::shared_ptr<nn::Linear> projection;
};

// How a sequence of token states becomes one vector.
enum class TextPooling {
  Mean,  // average over the (non-padding) positions, as in the seed notebook
  EOS,   // the state at the first EOS token, as in CLIP (needs EOS-terminated captions)
};

// The transformer text encoder: token + learned position embeddings, `layers` post-norm
// transformer encoder layers (ReLU feed-forward of ff_mult * width), pooling, and a linear
// projection to embed_dim.
struct TextEncoderOptions {
  int64_t vocab_size = 0;
  int64_t width = 64;  // d_model of the transformer
  int64_t embed_dim = 64;
  int64_t max_len = 32;  // positions the position embedding covers
  int64_t heads = 4;
  int64_t layers = 2;
  int64_t ff_mult = 4;
  double dropout = 0.1;
  TextPooling pooling = TextPooling::Mean;
  // Padding handling: with mask_padding, tokens equal to pad_id are hidden from attention and
  // left out of the mean. The seed's synthetic captions treat 0 as an ordinary token (false).
  bool mask_padding = true;
  int64_t pad_id = data::Tokenizer::kPad;
  int64_t eos_id = data::Tokenizer::kEos;
  bool causal = false;  // each position attends only to itself and earlier ones (as CLIP's)
  std::string str() const;
};

class TextEncoder : public nn::Module {
 public:
  explicit TextEncoder(const TextEncoderOptions& options);
  // tokens int64 [B, T], T <= max_len -> [B, embed_dim] (not normalised).
  Tensor forward(const Tensor& tokens) override;
  std::string name() const override { return "TextEncoder"; }
  std::string extra_repr() const override { return options.str(); }

  TextEncoderOptions options;
  std::shared_ptr<nn::Embedding> token_emb, pos_emb;
  std::shared_ptr<nn::TransformerEncoder> transformer;
  std::shared_ptr<nn::Linear> projection;
};

// ---- the model --------------------------------------------------------------------------------

// Two encoders into one embedding space plus CLIP's loss with its learnable temperature
// (criterion->logit_scale, a parameter of this module). Any image encoder whose forward maps a
// batch of images to [B, D] works (lesson 07 plugs in a ViT).
class MiniCLIP : public nn::Module {
 public:
  MiniCLIP(std::shared_ptr<nn::Module> image_encoder, std::shared_ptr<nn::Module> text_encoder,
           double init_temperature = 0.07);
  // The symmetric InfoNCE loss of a batch of matching (image, caption) pairs and its logits.
  nn::ClipLossResult forward(const Tensor& images, const Tensor& tokens);
  using nn::Module::forward;
  // Unit-length embeddings [B, D].
  Tensor encode_image(const Tensor& images);
  Tensor encode_text(const Tensor& tokens);
  std::string name() const override { return "MiniCLIP"; }

  std::shared_ptr<nn::Module> image_encoder, text_encoder;
  std::shared_ptr<nn::CLIPLoss> criterion;
};

// ---- training ---------------------------------------------------------------------------------

struct TrainOptions {
  int64_t steps = 500;
  int64_t batch_size = 256;
  double lr = 2e-3;
  double weight_decay = 0.0;  // > 0: AdamW (decoupled decay) instead of Adam
  int64_t warmup_steps = 0;   // linear warm-up, then
  bool cosine = true;         // cosine decay to min_lr_ratio * lr (false: constant lr)
  double min_lr_ratio = 0.0;
  double grad_clip = 0.0;  // > 0: clip the global gradient norm
  // false: CLIP's loss (pair i matches caption i only). true: class_target_clip_loss, where
  // every caption of the image's class counts as a match (see below).
  bool class_targets = false;
  uint64_t seed = 0;      // batch order and caption templates
  int64_t log_every = 0;  // > 0: print the loss every that many steps
  // Which templates captions are drawn from (empty: all of the bank's).
  std::vector<int64_t> templates;
  std::string str() const;
};

// CLIP's symmetric loss with class-level targets. With 10 classes, a batch of 256 pairs holds
// about 25 pairs per class, and CLIP's loss calls 24 of them wrong matches for each image (false
// negatives) although their captions say the same thing. Here the target of row i is spread
// evenly over all pairs of i's class:
//   q_ij = [y_i == y_j] / #{k : y_k == y_i},
//   loss = ( -sum_ij q_ij log softmax_j(logits_i.) - sum_ij q_ij log softmax_i(logits_.j) ) / 2N
// logits [N, N] (scaled cosine similarities, e.g. ClipLossResult::logits_per_image), labels
// int64 [N]. With all labels distinct it is exactly CLIP's loss.
Tensor class_target_clip_loss(const Tensor& logits, const Tensor& labels);

struct TrainLog {
  std::vector<double> losses;  // one per step
  double seconds = 0.0;
  double final_temperature = 0.0;
  // The lowest CLIP loss these batches allow: images of one class are interchangeable for
  // their captions, so with n_c pairs of class c in a batch the best a row can do is spread its
  // probability over n_c equal matches, a loss of log n_c. This is the mean of log n_c over all
  // pairs and steps (with every label distinct it would be 0).
  double loss_floor = 0.0;
  // Mean loss over the last `n` steps (a smoother "final loss").
  double tail_mean(size_t n = 20) const;
};

// The batches train_clip trains on, one per step: shuffled passes over the images, epoch after
// epoch (data::permutation(n, seed, epoch)), each image with a caption of its class under a
// template drawn from a generator seeded by options.seed. Any objective trained with the same
// options sees the same (image, caption) pairs in the same order (lesson 11 relies on it). The
// constructor checks images [N, C, H, W] float32, labels [N] int64 (CPU) and the options;
// errors name `op`.
class ClipBatches {
 public:
  ClipBatches(const Tensor& images, const Tensor& labels, const CaptionBank& captions,
              const TrainOptions& options, Device device, const char* op);

  struct Batch {
    std::vector<int64_t> idx, labels;  // the batch's image rows and their classes
    // A batch holds at most classes x templates distinct captions (80 for 256 images), so each
    // is encoded once and its embedding gathered for every image it belongs to: the same loss
    // and gradients as encoding all rows (index_select's backward adds up the copies' gradients)
    // at a fraction of the text encoder's cost. Image i's caption is unique_rows[which[i]].
    std::vector<int64_t> unique_rows, which;
    Tensor images, tokens, gather;  // on the device: the images, the distinct captions' tokens,
                                    // and `which` as an int64 index
  };
  // The batch of training step `step` (steps are drawn in order 0, 1, 2, ...).
  Batch next(int64_t step);

 private:
  const Tensor& images_;
  const CaptionBank& captions_;
  TrainOptions o_;
  Device device_;
  std::vector<int64_t> y_, templates_, order_;
  Generator gen_;
  int64_t per_epoch_;
};

// The optimizer of train_clip: Adam (AdamW when weight_decay > 0) over every parameter of the
// model, including the logit scale, with the options' schedule (cosine with linear warm-up, or
// linear warm-up alone).
class ClipOptimizer {
 public:
  ClipOptimizer(MiniCLIP& model, const TrainOptions& options);
  void zero_grad() { opt_->zero_grad(); }
  // After backward(): clips the gradient norm (options.grad_clip), updates, advances the
  // schedule, and clamps the logit scale to CLIP's cap (1 / temperature <= 100).
  void step();

 private:
  MiniCLIP& model_;
  std::vector<Tensor> params_;
  double grad_clip_;
  std::unique_ptr<optim::Adam> opt_;
  std::unique_ptr<optim::LRScheduler> sched_;
};

// Trains the model on (image, caption) pairs: each step takes batch_size images (a shuffled
// pass over `images`, epoch after epoch) and gives each one a caption of its class under a
// randomly chosen template. Adam(W) with the schedule of `options`; the logit scale is clamped
// to CLIP's cap after each step. images [N, C, H, W] float32 and labels [N] int64 on the CPU;
// batches are moved to `device`. The model is left in eval mode.
TrainLog train_clip(MiniCLIP& model, const Tensor& images, const Tensor& labels,
                    const CaptionBank& captions, const TrainOptions& options, Device device = kCPU);

// ---- encoding and zero-shot ------------------------------------------------------------------

// Unit-length embeddings of many images / token rows, computed in batches under NoGradGuard
// with the model in eval mode (restored afterwards): float32 [N, D] on the CPU.
Tensor encode_images(MiniCLIP& model, const Tensor& images, Device device = kCPU,
                     int64_t batch_size = 1000);
Tensor encode_texts(MiniCLIP& model, const Tensor& tokens, Device device = kCPU,
                    int64_t batch_size = 1000);

// One unit-length text embedding per class [num_classes, D]: the class prompts of each
// template are encoded, averaged over the templates, then re-normalised (a prompt ensemble;
// one template gives that template's prompt embeddings).
Tensor class_embeddings(MiniCLIP& model, const CaptionBank& captions,
                        const std::vector<int64_t>& template_ids, Device device = kCPU);

// The same for any template strings (each with one "{}"), e.g. wordings the model was not
// trained on; words outside the caption vocabulary become <unk>.
Tensor class_embeddings_from(MiniCLIP& model, const CaptionBank& captions,
                             const std::vector<std::string>& templates, Device device = kCPU);

// Cosine similarities [N, C] between unit image embeddings [N, D] and class embeddings [C, D],
// and the zero-shot prediction: the class of the most similar prompt, int64 [N].
Tensor similarity(const Tensor& image_emb, const Tensor& class_emb);
Tensor zero_shot_predict(const Tensor& image_emb, const Tensor& class_emb);

// ---- the Fashion-MNIST model and its checkpoint cache ------------------------------------------

// Everything that determines the trained Fashion-MNIST model: architecture, training recipe and
// seed. Two runs with the same config give the same model, which is what makes the cache safe.
struct FmnistClipConfig {
  ImageEncoderOptions image;
  TextEncoderOptions text;  // vocab_size and max_len are filled in from the caption bank
  TrainOptions train;
  int64_t train_limit = -1;  // use only the first N training images (-1: all 60,000)
  double init_temperature = 0.07;
  // One line naming every setting (and the caption vocabulary), stored in the checkpoint.
  std::string signature(const CaptionBank& captions) const;
};

// The lessons' default recipe (quick: the same model and recipe, 50 steps, for the tests). The seed
// is args.seed; --steps overrides the number of training steps.
FmnistClipConfig default_fmnist_config(const lesson::Args& args);

// The model of a config, with fresh weights. Re-seeds the default generator from the config's
// seed first, so the initial weights depend on the config alone.
std::shared_ptr<MiniCLIP> make_fmnist_clip(const FmnistClipConfig& config,
                                           const CaptionBank& captions);

// Lesson 04 writes its trained model here (relative to the working directory).
inline const char* kDefaultCheckpoint = "out/04_mini_clip/fmnist_clip.ckpt";

// Saves the model's state with the config signature (atomic write).
void save_clip_checkpoint(const MiniCLIP& model, const FmnistClipConfig& config,
                          const CaptionBank& captions, const std::string& path);
// Loads the checkpoint into model when it exists, is readable and was made with this exact
// config; returns "" on success, else why it was not used (the model is then unchanged).
std::string try_load_clip_checkpoint(MiniCLIP& model, const FmnistClipConfig& config,
                                     const CaptionBank& captions, const std::string& path);

struct ClipModel {
  std::shared_ptr<MiniCLIP> model;
  bool from_checkpoint = false;
  TrainLog log;  // empty when loaded
};

// The Fashion-MNIST mini CLIP for a lesson: loaded from `checkpoint` when present and made with
// this config (never in --quick mode, which always trains its own model for a few steps), else
// trained on the training split here (and then not saved; lesson 04 owns the cache). Prints
// what it did.
// The model is on args.device, in eval mode.
ClipModel get_fmnist_clip(const lesson::Args& args, const FmnistClipConfig& config,
                          const CaptionBank& captions,
                          const std::string& checkpoint = kDefaultCheckpoint);

}  // namespace mmgrad::clip
