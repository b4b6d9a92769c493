// Lesson 09's TinyVLM (vlm.h): its layers and how an image and a text become one sequence.
#include "09_vlm/vlm.h"

#include <initializer_list>

#include "mmgrad/mmgrad.h"

namespace mmgrad::lesson::vlm {

TinyVLM::TinyVLM(int64_t vocab, int64_t d_model, int64_t layers, int64_t heads, int64_t channels)
    : d(d_model) {
  // Vision encoder: a full-resolution 3x3 convolution (`channels` edge/colour detectors at
  // 32x32), then three stride-2 convolutions, 32x32 -> 16x16 -> 8x8 -> 4x4, 64 features per
  // cell. A 4x4 cell "sees" a 17x17 window of the image (its receptive field) centred on its
  // 8x8 patch: enough to tell a triangle from a square and to know where the shape is. The first
  // layer runs at full resolution because the small shapes are only 6-8 pixels wide: a first
  // convolution with stride 2 instead (a third of the encoder's cost) named the wrong shape for
  // about 12% of single held-out objects after 700 training steps, this encoder for about 2%.
  vision = register_module(
      "vision",
      std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
          std::make_shared<nn::Conv2d>(3, channels, 3, 1, 1), std::make_shared<nn::ReLU>(),
          std::make_shared<nn::Conv2d>(channels, 64, 3, 2, 1), std::make_shared<nn::ReLU>(),
          std::make_shared<nn::Conv2d>(64, 64, 3, 2, 1), std::make_shared<nn::ReLU>(),
          std::make_shared<nn::Conv2d>(64, 64, 3, 2, 1), std::make_shared<nn::ReLU>()}));
  // He initialisation for ReLU convolutions: keeps the activations' scale from layer to layer
  // (the default init shrinks it by about sqrt(3) per layer, which slows early learning).
  for (const auto& m : *vision)
    if (auto conv = std::dynamic_pointer_cast<nn::Conv2d>(m)) {
      nn::init::kaiming_uniform_(conv->weight, 0.0, nn::init::FanMode::FanIn, "relu");
      nn::init::zeros_(conv->bias);
    }
  // The features of each cell are normalised before the projector (as CLIP's ViT output is).
  feature_norm = register_module("feature_norm", std::make_shared<nn::LayerNorm>(64));
  // The connector: one Linear from the vision features to the LM's width (LLaVA's mm_projector).
  projector = register_module("projector", std::make_shared<nn::Linear>(64, d));
  // Learned embeddings that mark where the image starts and ends in the sequence.
  image_start = register_parameter("image_start", Tensor::randn({d}).mul_(0.02));
  image_end = register_parameter("image_end", Tensor::randn({d}).mul_(0.02));
  tok_emb = register_module("tok_emb", std::make_shared<nn::Embedding>(vocab, d));
  pos_emb = register_module("pos_emb", std::make_shared<nn::Embedding>(kPrefix + kText, d));
  // GPT-style small initial embeddings (nn::Embedding draws N(0, 1)): the residual stream
  // then starts at a scale the attention and MLP outputs can change.
  nn::init::normal_(tok_emb->weight, 0.0, 0.02);
  nn::init::normal_(pos_emb->weight, 0.0, 0.02);
  // Decoder-only = self-attention blocks with a causal mask and no cross-attention: exactly
  // nn::TransformerEncoderLayer called with is_causal = true. (nn::TransformerDecoderLayer
  // adds cross-attention to a separate memory, which LLaVA does not use: the image is part of
  // the sequence itself.) Pre-norm layers and a final LayerNorm, as in GPT-2.
  nn::TransformerLayerOptions o;
  o.d_model = d;
  o.nhead = heads;
  o.dim_feedforward = 4 * d;
  o.dropout = 0.0;  // every training scene is new: nothing to overfit
  o.activation = nn::Activation::GELU;
  o.norm_first = true;
  decoder = register_module("decoder", std::make_shared<nn::TransformerEncoder>(o, layers, true));
  lm_head = register_module("lm_head", std::make_shared<nn::Linear>(d, vocab));
}

Tensor TinyVLM::image_prefix(const Tensor& images) {
  const int64_t B = images.size(0);
  Tensor f = vision->forward(images);           // [B, 64, 4, 4]
  Tensor cells = f.flatten(2).transpose(1, 2);  // [B, 16, 64]: one row per grid cell
  Tensor visual = projector->forward(feature_norm->forward(cells));  // [B, 16, d]
  Tensor s = image_start.view({1, 1, d}).expand({B, 1, d});
  Tensor e = image_end.view({1, 1, d}).expand({B, 1, d});
  return cat({s, visual, e}, 1);
}

Tensor TinyVLM::text_hidden(const Tensor& prefix, const Tensor& text) {
  Tensor x = cat({prefix, tok_emb->forward(text)}, 1);  // [B, k + 2 + T, d]
  const int64_t L = x.size(1);
  x = x + pos_emb->forward(Tensor::arange(L).to(x.device()));  // [L, d] broadcast over B
  Tensor h = decoder->forward(x, {}, {}, /*is_causal=*/true);
  return h.narrow(1, prefix.size(1), text.size(1));
}

}  // namespace mmgrad::lesson::vlm
