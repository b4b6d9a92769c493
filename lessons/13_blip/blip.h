// Lesson 13's model: BLIP in miniature (Li et al., 2022, "BLIP: Bootstrapping Language-Image
// Pre-training"), and the pieces of its CapFilt bootstrapping.
//
// One image encoder feeds three text modules, each trained with its own objective:
//
//   image -> CNN -> 16 image tokens [B, 16, d] -----------+----------------+
//              |                                          |                |
//              mean -> Linear -> image embedding          | cross-attn     | cross-attn
//                                   |  ITC (contrastive)  v                v
//   caption -> text encoder -> [bos] -> text embedding   ITM encoder       LM decoder
//              (self-attention only)                      (bidirectional)  (causal)
//                                                    mean of words    next word
//                                                         -> match?
//
//   ITC  image-text contrastive: CLIP's symmetric InfoNCE between the two embeddings.
//   ITM  image-text matching: a binary classifier "does this caption describe this image?" on
//        the mean output over the caption's words of a text encoder whose every layer also
//        cross-attends to the image tokens (BLIP uses the [CLS] output; see itm_logits). Its
//        negatives are HARD ones: for each image a caption sampled from the batch with
//        probability softmax(ITC cosine similarity / T), and for each caption an image chosen
//        the same way (T: TrainOptions::neg_temperature).
//   LM   language modelling: a causal decoder cross-attending to the image, trained to predict
//        each next caption word (teacher forcing). It is the captioner.
// The three losses are summed and trained together in one backward pass per step.
//
// Weight sharing: the three text modules share the token and position embeddings; their
// transformer layers are separate. (BLIP shares every layer of the ITM encoder and the LM
// decoder except self-attention; with one small layer each, sharing saves little here.)
//
// CapFilt (BLIP, section 3.3): the trained decoder (Cap) writes a synthetic caption for each web
// image; the trained ITM head (Filt) scores the web caption and the synthetic caption; a pair the
// filter calls a non-match is dropped. A new model is pre-trained on what remains. (BLIP keeps
// both accepted captions; the lesson's default replaces only a rejected web caption, see
// main.cpp's --synthetic.)
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mmgrad/data/tokenizer.h"
#include "mmgrad/nn/layers.h"
#include "mmgrad/nn/module.h"

namespace mmgrad::lesson::blip {

inline constexpr int64_t kImage = 32;   // the scene canvas (09_vlm/scenes.h)
inline constexpr int64_t kTokens = 16;  // image tokens: the CNN's 4x4 grid
inline constexpr int64_t kText = 12;    // <bos>, up to 10 words, <eos>, <pad>...
inline constexpr int64_t kIgnore = -100;

struct BlipOptions {
  int64_t vocab = 0;
  int64_t d_model = 64;    // width of the image tokens and of every text module
  int64_t embed_dim = 64;  // the ITC embedding
  int64_t heads = 4;
  int64_t channels = 16;  // the CNN's first convolution
  int64_t features = 48;  // the CNN's other convolutions (features per grid cell)
  int64_t layers = 1;     // transformer layers per text module
};

class Blip : public nn::Module {
 public:
  explicit Blip(const BlipOptions& o);
  std::string name() const override { return "Blip"; }

  // images [B, 3, 32, 32] -> image tokens [B, 16, d] (LayerNorm-ed CNN grid cells).
  Tensor image_tokens(const Tensor& images);
  // ITC embeddings, not normalised: from image tokens [B, 16, d] -> [B, E]; from caption ids
  // int64 [B, kText] -> [B, E] (the [bos] position of the unimodal text encoder).
  Tensor image_embed(const Tensor& tokens);
  Tensor text_embed(const Tensor& ids);
  // ITM logits [B, 2] (column 1 = "match") for caption ids [B, kText] and image tokens [B, 16, d].
  Tensor itm_logits(const Tensor& ids, const Tensor& tokens);
  // Next-word logits [B, T, V] for decoder inputs ids [B, T] (T <= kText).
  Tensor lm_logits(const Tensor& ids, const Tensor& tokens);

  BlipOptions opt;
  std::shared_ptr<nn::Sequential> cnn;
  std::shared_ptr<nn::LayerNorm> token_norm;
  std::shared_ptr<nn::Linear> to_tokens, image_proj, text_proj, itm_head, lm_head;
  std::shared_ptr<nn::Embedding> tok_emb, pos_emb;
  std::shared_ptr<nn::TransformerEncoder> text_encoder;
  std::shared_ptr<nn::TransformerDecoder> itm_encoder, lm_decoder;
  Tensor logit_scale;  // 0-d, log(1 / temperature), capped at log 100 as in CLIP

 private:
  Tensor embed_text(const Tensor& ids);
};

// A training set of (image, caption) pairs: images [N, 3, 32, 32], pair p = (image_of[p], ids[p]).
struct PairSet {
  Tensor images;
  std::vector<int64_t> image_of;
  std::vector<std::vector<int64_t>> ids;  // kText each: <bos> words <eos> <pad>...
  int64_t size() const { return static_cast<int64_t>(ids.size()); }
};

// <bos> words <eos> padded to kText (an error if the caption is longer).
std::vector<int64_t> caption_ids(const data::Tokenizer& tok, const std::string& caption);

struct TrainOptions {
  int64_t steps = 300, batch = 64;
  double lr = 2e-3;
  // ITM's hard negatives are drawn with probability softmax(cosine similarity / neg_temperature)
  // over the batch. BLIP uses the ITC logits themselves (temperature = the learned ITC one, 0.07
  // falling towards 0.01): negatives so hard that our small model's ITM stayed at its prior.
  double neg_temperature = 0.5;
  uint64_t seed = 0;  // batch order and the ITM negative sampling
  int64_t log_every = 30;
};
struct TrainLog {
  std::vector<double> step, itc, itm, lm;  // mean losses over each logging window
  double seconds = 0;
};
// ITC + ITM (with hard negatives) + LM, summed, AdamW with warm-up and cosine decay. Prints a
// progress line every log_every steps with `label` in front.
TrainLog train(Blip& model, const PairSet& data, const TrainOptions& opt, const std::string& label,
               Device device);

// Unit-length ITC embeddings of images [N, 3, 32, 32] and of caption ids (kText each): [N, E].
Tensor embed_images(Blip& model, const Tensor& images, Device device);
Tensor embed_texts(Blip& model, const std::vector<std::vector<int64_t>>& ids, Device device);
// ITM match probability of caption ids[p] with image images[image_of[p]], per pair.
std::vector<double> itm_scores(Blip& model, const Tensor& images,
                               const std::vector<int64_t>& image_of,
                               const std::vector<std::vector<int64_t>>& ids, Device device);
// Greedy captions (words only, no specials) of images [N, 3, 32, 32].
std::vector<std::vector<int64_t>> generate(Blip& model, const Tensor& images, Device device);

}  // namespace mmgrad::lesson::blip
