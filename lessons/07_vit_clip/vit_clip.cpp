#include "07_vit_clip/vit_clip.h"

#include <sstream>

#include "mmgrad/autograd/grad_mode.h"
#include "mmgrad/ops/elementwise.h"
#include "mmgrad/ops/shape.h"

namespace mmgrad::clip {

std::string ViTOptions::str() const {
  std::ostringstream s;
  s << "img=" << image_size << " patch=" << patch_size << " in=" << in_channels
    << " width=" << width << " layers=" << layers << " heads=" << heads << " ff=" << ff_mult
    << " dropout=" << dropout << " emb=" << embed_dim;
  return s.str();
}

ViTEncoder::ViTEncoder(const ViTOptions& o) : options(o) {
  MMGRAD_CHECK(o.image_size > 0 && o.patch_size > 0 && o.image_size % o.patch_size == 0 &&
                   o.in_channels > 0 && o.width > 0 && o.heads > 0 && o.width % o.heads == 0 &&
                   o.layers > 0 && o.ff_mult > 0 && o.embed_dim > 0 && o.dropout >= 0 &&
                   o.dropout < 1,
               "ViTEncoder: bad options (", o.str(),
               "); need positive sizes, patch_size dividing image_size, width divisible by "
               "heads, dropout in [0, 1)");
  patch_embed = register_module(
      "patch_embed", std::make_shared<nn::PatchEmbed>(Pair2(o.image_size), Pair2(o.patch_size),
                                                      o.in_channels, o.width));
  // Pre-norm layers (x + attn(LN(x)), x + mlp(LN(x))) as in ViT and CLIP: the residual stream
  // is never normalised, which keeps gradients healthy from the first step; the final
  // LayerNorm (final_norm) then normalises what the pooling reads.
  nn::TransformerLayerOptions layer;
  layer.d_model = o.width;
  layer.nhead = o.heads;
  layer.dim_feedforward = o.ff_mult * o.width;
  layer.dropout = o.dropout;
  layer.activation = nn::Activation::GELU;
  layer.norm_first = true;
  transformer = register_module("transformer", std::make_shared<nn::TransformerEncoder>(
                                                   layer, o.layers, /*final_norm=*/true));
  projection = register_module("projection", std::make_shared<nn::Linear>(o.width, o.embed_dim));
}

void ViTEncoder::check_images(const Tensor& images) const {
  MMGRAD_CHECK(images.defined() && images.dim() == 4 && images.size(1) == options.in_channels &&
                   images.size(2) == options.image_size && images.size(3) == options.image_size,
               label(), ": images are ", images.defined() ? describe(images) : "undefined",
               "; expected [B, ", options.in_channels, ", ", options.image_size, ", ",
               options.image_size, "]");
}

Tensor ViTEncoder::tokens(const Tensor& images) {
  check_images(images);
  // [B, 1 + N, width]: CLS + one token per patch, positions added. No padding, no mask: every
  // token may attend to every other.
  return transformer->forward(patch_embed->forward(images));
}

Tensor ViTEncoder::forward(const Tensor& images) {
  // CLS pooling: position 0 holds no pixels of its own; through attention it has gathered what
  // it needs from every patch, so its final state summarises the image.
  return projection->forward(tokens(images).select(1, 0));
}

Tensor ViTEncoder::cls_attention(const Tensor& images) {
  check_images(images);
  NoGradGuard no_grad;
  const size_t L = transformer->layers->size();
  Tensor h = patch_embed->forward(images);
  for (size_t i = 0; i + 1 < L; ++i)
    h = transformer->layers->at<nn::TransformerEncoderLayer>(i)->forward(h);
  auto last = transformer->layers->at<nn::TransformerEncoderLayer>(L - 1);
  // A pre-norm layer attends over LN(x): recompute exactly what its attention sees.
  Tensor a_in = last->norm1->forward(h);
  Tensor w = last->self_attn
                 ->forward(a_in, a_in, a_in, {}, {}, /*need_weights=*/true,
                           /*average_attn_weights=*/true)
                 .weights;  // [B, 1 + N, 1 + N]
  // Row 0 = the CLS query; columns 1.. = the patches.
  return w.select(1, 0).narrow(1, 1, num_patches()).contiguous();
}

}  // namespace mmgrad::clip
