// Task 12.1: AudioCLIP's six-way loss                                   (lesson 12_audio_clip)
//
// Lesson 12 trains three encoders (audio, image, text) into one embedding space. A batch holds N
// matching triples: row n of `audio`, `image` and `text` (each [N, D]) is the same item (a sound,
// a picture and a caption of one class). CLIP's loss aligns two modalities; AudioCLIP applies it
// to all three pairs, in both directions: six terms.
//
// Compute, for inputs of one floating dtype (float32 or float64):
//
//     a, i, t = normalize(audio, 1), normalize(image, 1), normalize(text, 1)   (unit rows)
//     s = exp(min(logit_scale, log 100))        (logit_scale is 0-d: log(1 / temperature); CLIP
//                                                caps the scale at 100)
//     L(x -> y) = mean over n of  -log softmax_m( s * x_n . y_m )[n]
//               = cross_entropy(s * x y^T, targets 0, 1, ..., N-1)
//                 (row n of x must pick its partner y_n among all N rows of y)
//     loss = ( L(a->i) + L(i->a) + L(a->t) + L(t->a) + L(i->t) + L(t->i) ) / 6
//
// Return the loss as a 0-d tensor of the inputs' dtype, built from mmgrad ops so that autograd
// gives its gradients (the checker compares them too). Note L(x -> y) != L(y -> x): the first
// normalises over the rows of x y^T, the second over its columns.
//
// Useful: normalize(t, 1), matmul(x, y.t()), exp, clamp_max(t, v), cross_entropy(logits, target),
// Tensor::arange(N).to(device), or log_softmax and gather to write cross-entropy yourself.
// Do not call nn::three_way_contrastive_loss, nn::clip_loss or audioclip::six_way_loss: they are
// the library's and the lesson's answers (lessons/12_audio_clip/audio_clip.cpp; read it
// afterwards).
//
// Check your work: make exercise TASK=12.1
#include "tasks.h"

namespace mmgrad::exercises {

Tensor six_way_loss(const Tensor& audio, const Tensor& image, const Tensor& text,
                    const Tensor& logit_scale) {
  (void)audio, (void)image, (void)text, (void)logit_scale;
  not_done("12.1", "six_way_loss");
}

}  // namespace mmgrad::exercises
