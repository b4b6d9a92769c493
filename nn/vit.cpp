#include "mmgrad/nn/vit.h"

#include "mmgrad/nn/checks.h"
#include "mmgrad/nn/init.h"
#include "mmgrad/ops/elementwise.h"
#include "mmgrad/ops/index.h"

namespace mmgrad::nn {

PatchEmbed::PatchEmbed(Pair2 img_size, Pair2 patch_size, int64_t in_channels, int64_t embed_dim)
    : img_size(img_size),
      patch_size(patch_size),
      in_channels(in_channels),
      embed_dim(embed_dim),
      grid_h(0),
      grid_w(0) {
  MMGRAD_CHECK(img_size.h > 0 && img_size.w > 0 && patch_size.h > 0 && patch_size.w > 0 &&
                   img_size.h % patch_size.h == 0 && img_size.w % patch_size.w == 0,
               "PatchEmbed: image size ", img_size.h, "x", img_size.w,
               " must be a positive multiple of the patch size ", patch_size.h, "x", patch_size.w);
  MMGRAD_CHECK(in_channels > 0 && embed_dim > 0,
               "PatchEmbed: in_channels and embed_dim must be positive, got ", in_channels, " and ",
               embed_dim);
  grid_h = img_size.h / patch_size.h;
  grid_w = img_size.w / patch_size.w;
  proj = register_module("proj",
                         std::make_shared<Conv2d>(in_channels, embed_dim, patch_size, patch_size));
  cls_token = register_parameter("cls_token", Tensor::empty({1, 1, embed_dim}));
  pos_embed = register_parameter("pos_embed", Tensor::empty({1, 1 + num_patches(), embed_dim}));
  init::trunc_normal_(cls_token, 0.0, 0.02, -0.04, 0.04);
  init::trunc_normal_(pos_embed, 0.0, 0.02, -0.04, 0.04);
}

Tensor PatchEmbed::forward(const Tensor& x) {
  detail::check_input(*this, x, cls_token);
  MMGRAD_CHECK(x.dim() == 4 && x.size(1) == in_channels && x.size(2) == img_size.h &&
                   x.size(3) == img_size.w,
               label(), ": input is ", describe(x), "; expected [B, ", in_channels, ", ",
               img_size.h, ", ", img_size.w, "] (the position embeddings fix the image size)");
  const int64_t B = x.size(0);
  // [B, D, gh, gw] -> [B, D, N] -> [B, N, D]: one token per patch, row by row.
  Tensor tokens = proj->forward(x).flatten(2).transpose(1, 2);
  Tensor cls = cls_token.expand({B, 1, embed_dim});
  return cat({cls, tokens}, 1) + pos_embed;
}

std::string PatchEmbed::extra_repr() const {
  return cat_str("img_size=(", img_size.h, ", ", img_size.w, "), patch_size=(", patch_size.h, ", ",
                 patch_size.w, "), in_channels=", in_channels, ", embed_dim=", embed_dim,
                 ", num_patches=", num_patches());
}

}  // namespace mmgrad::nn
