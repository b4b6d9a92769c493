// Reference for task 2.2: mmgrad's own nn::clip_loss (nn/losses.cpp), the loss lesson 02 builds
// step by step and then calls. Its cap on exp(logit_scale) (100) is never reached by the checker.
#include "mmgrad/nn/losses.h"
#include "tasks.h"

namespace mmgrad::exercises::solution {

Tensor info_nce(const Tensor& image_emb, const Tensor& text_emb, const Tensor& logit_scale) {
  return nn::clip_loss(image_emb, text_emb, logit_scale).loss;
}

}  // namespace mmgrad::exercises::solution
