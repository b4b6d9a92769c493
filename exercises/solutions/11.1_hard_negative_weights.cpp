// Reference for task 11.1: lesson 11's own function, hardneg::row_negative_weights
// (lessons/11_hard_negatives/hard_negatives.cpp), which also returns the offsets the loss adds to
// the logits; the task asks for the weights.
#include "11_hard_negatives/hard_negatives.h"
#include "tasks.h"

namespace mmgrad::exercises::solution {

Tensor hard_negative_weights(const Tensor& cos, const Tensor& exclude, double beta) {
  return hardneg::row_negative_weights(cos, exclude, beta).weights;
}

}  // namespace mmgrad::exercises::solution
