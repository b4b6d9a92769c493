// Task 5.1: zero-shot classification with a prompt ensemble                (lesson 05_zero_shot)
//
// A CLIP model classifies images it was never trained to classify: write one caption per class
// ("a photo of a {class}"), embed the captions, and give each image the class whose caption
// embedding is most similar (cosine similarity). A prompt ensemble uses several templates
// ("a photo of a {}", "a black-and-white picture of a {}", ...) and averages, per class, the
// embeddings of its T prompts (lesson 05, section 5; clip::class_embeddings in
// lessons/04_mini_clip/clip.cpp):
//
//     u[t][c]   = prompt_emb[t][c] / |prompt_emb[t][c]|        each prompt to unit length
//     class[c]  = mean_t u[t][c], then scaled to unit length   (the mean of unit vectors is
//                                                              shorter than 1: re-normalise)
//     img[n]    = image_emb[n] / |image_emb[n]|
//     similarity[n][c] = img[n] . class[c]                     a cosine, in [-1, 1]
//     predicted[n]     = the c with the largest similarity[n][c]
//
// Normalise each prompt BEFORE averaging: otherwise a template whose embeddings happen to be
// long outvotes the others.
//
// Inputs: image_emb [N, D] and prompt_emb [T, C, D] (T templates, C classes; rows need not have
// unit length), floating, one dtype. Return a ZeroShotResult (exercises/tasks.h):
// similarity [N, C] in the inputs' dtype and predicted int64 [N]. (Normalising the images does
// not change which class wins, only the scores; the checker looks at both.)
// Useful: normalize(t, dim), mean(t, {dim}), matmul, t(), argmax(t, dim).
// Do not call clip::class_embeddings / clip::zero_shot_predict: they are the answer.
//
// Check your work: make exercise TASK=5.1
#include "tasks.h"

namespace mmgrad::exercises {

ZeroShotResult zero_shot_classify(const Tensor& image_emb, const Tensor& prompt_emb) {
  (void)image_emb, (void)prompt_emb;
  not_done("5.1", "zero_shot_classify");
}

}  // namespace mmgrad::exercises
