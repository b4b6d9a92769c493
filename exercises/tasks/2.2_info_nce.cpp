// Task 2.2: the InfoNCE (CLIP) loss                                (lesson 02_contrastive_loss)
//
// A batch holds N matching pairs (image_i, text_i). For image i the right text among all N is
// text i: a classification problem with N classes whose correct class is i. InfoNCE is the
// cross-entropy of that problem, asked in both directions and averaged (lesson 02, section 2):
//
//     I = image_emb with every row scaled to unit length         [N, D]
//     T = text_emb with every row scaled to unit length          [N, D]
//     logits = exp(logit_scale) * I T^T      logits[i][j] = cos(image i, text j) / temperature
//     image->text loss = mean_i -log softmax(logits[i, :])[i]    (softmax over each row)
//     text->image loss = mean_j -log softmax(logits[:, j])[j]    (softmax over each column)
//     loss = (image->text + text->image) / 2
//
// logit_scale holds log(1 / temperature), the way CLIP learns its temperature (lesson 02,
// section 3): exp(logit_scale) = 1 / temperature multiplies the cosines, so tau = 0.07 is
// logit_scale = log(1 / 0.07) = 2.66. (nn::clip_loss also caps exp(logit_scale) at 100; the
// checker stays below the cap, so you may leave that out.)
//
// Inputs: image_emb, text_emb [N, D] floating (float32 or float64), logit_scale a 0-d tensor of
// the same dtype. Return the loss as a 0-d tensor.
// Write it with mmgrad's differentiable ops (normalize, matmul, t(), exp, log_softmax or
// cross_entropy, gather, mean, ...) so that loss.backward() gives the gradients of all three
// inputs: the checker compares the value AND those gradients. Do not call .item() or
// to_vector() on the way, and do not call nn::clip_loss / nn::CLIPLoss: that is the answer.
// Useful: normalize(x, 1); Tensor::arange(N) as the labels; cross_entropy(logits, labels) is
// the mean over rows of -log softmax(row)[label].
//
// Check your work: make exercise TASK=2.2
#include "tasks.h"

namespace mmgrad::exercises {

Tensor info_nce(const Tensor& image_emb, const Tensor& text_emb, const Tensor& logit_scale) {
  (void)image_emb, (void)text_emb, (void)logit_scale;
  not_done("2.2", "info_nce");
}

}  // namespace mmgrad::exercises
