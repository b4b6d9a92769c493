// Task 11.1: hard-negative weights                                  (lesson 11_hard_negatives)
//
// CLIP's InfoNCE pushes every other caption of the batch away from an image with the same
// importance. Lesson 11 weights the negatives instead (Robinson et al., ICLR 2021): the captions
// the model currently finds most similar to the image (the "hard" negatives) get more weight.
//
// Input: cos [N, N], the cosine similarities of anchor i (row) with candidate j (column); the
// diagonal holds the positives (pair i matches i). exclude: a bool [N, N] tensor marking pairs
// that are NOT negatives besides the diagonal (for instance a caption of the same class), or an
// undefined Tensor (exclude.defined() == false) when nothing is excluded. beta >= 0: the
// concentration.
//
// For row i, the negatives neg(i) are the j with j != i and exclude[i][j] false. Return w [N, N]:
//
//     w_ij = exp(beta * cos_ij) / sum_{k in neg(i)} exp(beta * cos_ik)    for j in neg(i)
//     w_ij = 0                                                            otherwise (the
//                                                                         diagonal, excluded pairs)
//
// so each row sums to 1 over its negatives: a softmax over the negatives of the row only. beta = 0
// gives uniform weights 1 / |neg(i)|; the larger beta, the more the hardest negatives take. A row
// with no negative left (everything excluded) is all zeros: no NaN from 0 / 0. Return cos's dtype.
// beta may be large (the lesson allows up to 1000): exp(100) is already infinite in float32, so
// use a softmax that subtracts the row's maximum (mmgrad's softmax / log_softmax do).
//
// Useful: Tensor::eye(N, cos.options()), masked_fill(t, mask, value) (writes value where the bool
// mask is true), logical_or, softmax(t, 1), where. A "minus infinity" such as -1e4 * (anything
// larger than the spread of beta * cos) works as "this entry takes no share of the softmax".
// The lesson multiplies these weights by |neg(i)| and adds their log to the logits (the offsets
// o_ij = log(|neg(i)| w_ij)), which turns the weighted loss into a plain cross-entropy.
// Do not call hardneg::row_negative_weights: it is the lesson's own answer
// (lessons/11_hard_negatives/hard_negatives.cpp); read it afterwards.
//
// Check your work: make exercise TASK=11.1
#include "tasks.h"

namespace mmgrad::exercises {

Tensor hard_negative_weights(const Tensor& cos, const Tensor& exclude, double beta) {
  (void)cos, (void)exclude, (void)beta;
  not_done("11.1", "hard_negative_weights");
}

}  // namespace mmgrad::exercises
