// Lesson 09's model: TinyVLM, LLaVA in miniature. A small CNN turns a 32x32 image into a 4x4 grid
// of features; a linear projector maps each cell to one visual token in the language model's
// embedding space; learned [IMG] and [/IMG] embeddings wrap the 16 visual tokens, which go before
// the text; a decoder-only transformer (causal self-attention, GPT style) and an LM head predict
// the next text token. The lesson (main.cpp) trains it; bench_all's "vlm" row times its step.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "mmgrad/nn/layers.h"
#include "mmgrad/nn/module.h"
#include "mmgrad/tensor/tensor.h"

namespace mmgrad::lesson::vlm {

constexpr int64_t kImage = 32;  // canvas side (Fashion-MNIST's 28x28 is padded to 32x32)
constexpr int64_t kGrid = 4;    // the CNN's output grid: kGrid x kGrid cells
constexpr int64_t kVisual = kGrid * kGrid;  // visual tokens per image (k)
constexpr int64_t kPrefix = kVisual + 2;    // [IMG] v_1 .. v_k [/IMG]
constexpr int64_t kText = 12;               // text positions: <bos>, up to 10 words, <eos>

// The vision encoder and the language model are trained together from scratch here (LLaVA
// starts from a pretrained CLIP ViT and a pretrained LLM and first trains only the projector);
// the wiring is the same.
class TinyVLM : public nn::Module {
 public:
  // vocab: the tokenizer's size; d_model, layers, heads: the language model; channels: the
  // vision encoder's first convolution.
  TinyVLM(int64_t vocab, int64_t d_model, int64_t layers, int64_t heads, int64_t channels);
  std::string name() const override { return "TinyVLM"; }

  // images [B, 3, 32, 32] -> the image part of the sequence [B, k + 2, d]:
  // [IMG] v_1 ... v_16 [/IMG], the visual tokens in row-major grid order.
  Tensor image_prefix(const Tensor& images);

  // The decoder's output at the text positions [B, T, d]; position j has seen the image and
  // text tokens 0..j only (causal mask), so it can be trained to predict token j + 1.
  Tensor text_hidden(const Tensor& prefix, const Tensor& text);

  // Next-token logits at every text position [B, T, V].
  Tensor text_logits(const Tensor& prefix, const Tensor& text) {
    return lm_head->forward(text_hidden(prefix, text));
  }

  int64_t d;
  std::shared_ptr<nn::Sequential> vision;
  std::shared_ptr<nn::LayerNorm> feature_norm;
  std::shared_ptr<nn::Linear> projector;
  Tensor image_start, image_end;
  std::shared_ptr<nn::Embedding> tok_emb, pos_emb;
  std::shared_ptr<nn::TransformerEncoder> decoder;
  std::shared_ptr<nn::Linear> lm_head;
};

}  // namespace mmgrad::lesson::vlm
