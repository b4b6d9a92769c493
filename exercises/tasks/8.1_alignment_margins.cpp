// Task 8.1: the alignment test's margins                         (lesson 08_alignment_quality)
//
// Lesson 08 asks of every held-out image: does its own caption beat EVERY caption of the other
// classes? The margin says by how much, and is what margins.svg plots (right of 0 passes).
//
// Inputs (what clip::encode_images / encode_texts return: unit-length rows, so a dot product is a
// cosine similarity):
//   image_emb    float32 [N, D], one row per image
//   labels       N class ids in [0, C)
//   caption_emb  float32 [C * T, D]: row c * T + t is the caption of class c under template t
//                ("a photo of a {}", "a picture of a {}", ...; clip::CaptionBank's order)
//   num_classes = C >= 2, num_templates = T >= 1
//
// Image i with label y is tested with the caption of its class under template t = i mod T (the
// images take turns over the templates). Its negatives are the (C - 1) * T captions of the OTHER
// classes, under every template (the other templates of its own class are neither match nor
// negative: they say the same thing). Return the margins [N] (float32 or float64):
//
//     margin_i = cos(image_i, caption[y * T + t])
//                - max over c != y and u in 0..T-1 of cos(image_i, caption[c * T + u])
//
// Image i passes the test when margin_i > 0; the lesson's pass rate is the share that does, and
// a negative margin means a caption of another class fits the image better than its own.
//
// Useful: matmul(image_emb, caption_emb.t()) gives every cosine at once [N, C * T]; then plain
// loops over s.to_vector<float>() (row i starts at i * C * T) are the clearest way to take the
// max over the negatives. Tensor::from_vector(values, {N}) builds the result.
// Do not call align::alignment_test: it is the lesson's own answer
// (lessons/08_alignment_quality/alignment.cpp); read it afterwards.
//
// Check your work: make exercise TASK=8.1
#include "tasks.h"

namespace mmgrad::exercises {

Tensor alignment_margins(const Tensor& image_emb, const std::vector<int64_t>& labels,
                         const Tensor& caption_emb, int64_t num_classes, int64_t num_templates) {
  (void)image_emb, (void)labels, (void)caption_emb, (void)num_classes, (void)num_templates;
  not_done("8.1", "alignment_margins");
}

}  // namespace mmgrad::exercises
