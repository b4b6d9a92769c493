// Reference for task 12.1: lesson 12's own function, audioclip::six_way_loss
// (lessons/12_audio_clip/audio_clip.cpp), which also returns the six terms one by one.
#include "12_audio_clip/audio_clip.h"
#include "tasks.h"

namespace mmgrad::exercises::solution {

Tensor six_way_loss(const Tensor& audio, const Tensor& image, const Tensor& text,
                    const Tensor& logit_scale) {
  return audioclip::six_way_loss(audio, image, text, logit_scale).loss;
}

}  // namespace mmgrad::exercises::solution
