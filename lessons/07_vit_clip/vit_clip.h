// A Vision Transformer image encoder for the mini CLIP (lesson 07), as in CLIP's ViT:
//
//   image [B, C, H, W]
//     -> PatchEmbed: cut into P x P patches, each linearly projected to `width` numbers (a
//        Conv2d with kernel = stride = P), a learned CLS token prepended, learned position
//        embeddings added                                        [B, 1 + N, width], N = HW / P^2
//     -> `layers` pre-norm transformer encoder layers (GELU feed-forward) + a final LayerNorm
//     -> CLS pooling: the output state of the CLS token (position 0)      [B, width]
//     -> a linear projection into the shared embedding space             [B, embed_dim]
//
// It plugs into clip::MiniCLIP like the CNN encoder of lessons/04_mini_clip/clip.h. cls_attention()
// returns how strongly the CLS token attends to each patch (the "where did it look" picture).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "04_mini_clip/clip.h"
#include "mmgrad/nn/layers.h"

namespace mmgrad::clip {

struct ViTOptions {
  int64_t image_size = 28;  // square images
  int64_t patch_size = 7;   // must divide image_size: 28 / 7 = a 4 x 4 grid of 16 patches
  int64_t in_channels = 1;
  int64_t width = 64;  // d_model of the transformer
  int64_t layers = 2;
  int64_t heads = 4;
  int64_t ff_mult = 2;  // feed-forward width = ff_mult * width
  double dropout = 0.0;
  int64_t embed_dim = 64;   // the shared embedding space
  std::string str() const;  // "img=28 patch=7 in=1 width=64 layers=2 heads=4 ff=2 ..."
};

class ViTEncoder : public nn::Module {
 public:
  explicit ViTEncoder(const ViTOptions& options);
  // images [B, in_channels, image_size, image_size] -> [B, embed_dim] (not normalised).
  Tensor forward(const Tensor& images) override;
  // The token states after the final LayerNorm, before pooling: [B, 1 + num_patches, width].
  Tensor tokens(const Tensor& images);
  // Attention of the CLS query over the patch keys in the last layer, averaged over the heads:
  // [B, num_patches] (row-major over the patch grid). Each row sums to 1 minus the weight the
  // CLS token gives itself. Computed without a graph.
  Tensor cls_attention(const Tensor& images);
  int64_t num_patches() const { return patch_embed->num_patches(); }
  int64_t grid() const { return options.image_size / options.patch_size; }
  std::string name() const override { return "ViTEncoder"; }
  std::string extra_repr() const override { return options.str(); }

  ViTOptions options;
  std::shared_ptr<nn::PatchEmbed> patch_embed;
  std::shared_ptr<nn::TransformerEncoder> transformer;  // pre-norm layers + final LayerNorm
  std::shared_ptr<nn::Linear> projection;

 private:
  void check_images(const Tensor& images) const;
};

}  // namespace mmgrad::clip
