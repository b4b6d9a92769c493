// PatchEmbed: the input stage of a Vision Transformer (Dosovitskiy et al., "An image is worth
// 16x16 words"). The image is cut into non-overlapping patch x patch squares, each linearly
// projected to embed_dim (a Conv2d with kernel = stride = patch is exactly that projection),
// a learned CLS token is prepended, and learned position embeddings are added:
//   [B, C, H, W] -> [B, 1 + (H/p)(W/p), D]
#pragma once

#include <memory>

#include "mmgrad/nn/conv.h"
#include "mmgrad/nn/module.h"

namespace mmgrad::nn {

class PatchEmbed : public Module {
 public:
  // cls_token [1, 1, D] and pos_embed [1, 1 + N, D] ~ truncated N(0, 0.02^2) (as in ViT code);
  // proj is Conv2d(in_channels, D, patch, stride = patch).
  PatchEmbed(Pair2 img_size, Pair2 patch_size, int64_t in_channels, int64_t embed_dim);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "PatchEmbed"; }
  std::string extra_repr() const override;
  int64_t num_patches() const { return grid_h * grid_w; }

  Pair2 img_size, patch_size;
  int64_t in_channels, embed_dim, grid_h, grid_w;
  std::shared_ptr<Conv2d> proj;
  Tensor cls_token, pos_embed;
};

}  // namespace mmgrad::nn
