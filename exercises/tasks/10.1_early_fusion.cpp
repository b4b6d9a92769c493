// Task 10.1: early fusion                                                   (lesson 10_fusion)
//
// Lesson 10 predicts a class from two modalities: an image (a trace, seen through a frozen
// ResNet as a feature map) and a row of table values. Its EarlyFusion model joins the two
// BEFORE any decision is made, so one MLP head sees both at once (fusion::EarlyFusion in
// lessons/10_fusion/fusion_models.h):
//
//     img = global average pool of the map: img[b, c] = mean over (y, x) of image_map[b, c, y, x]
//     tab = relu(table W^T + bias)      the table encoder, a Linear(T, H) followed by ReLU
//     fused = [ img | tab ]             concatenated side by side, the image part first
//
// and the head (C + H -> 256 -> 128 -> 3) reads `fused`. Write that fusion step.
//
// Inputs:
//   image_map  float32 [B, C, h, w]  the frozen backbone's feature map (all zeros for a sample
//              whose image is missing: it then contributes a zero vector, nothing special to do)
//   table      float32 [B, T]        standardised table features
//   weight     float32 [H, T], bias float32 [H]: the table encoder's parameters (nn::Linear's
//              layout, as in PyTorch: out_features x in_features)
// Return fused, float32 [B, C + H]: columns 0..C-1 the pooled image, columns C..C+H-1 the
// encoded table. The order matters: the head's weights were trained for [img | tab].
//
// Useful: mean(t, {2, 3}) averages over the two spatial dimensions; matmul(table, weight.t())
// (or nn::linear(table, weight, bias) from nn/linear.h); relu; cat({a, b}, dim).
// Do not call the lesson's EarlyFusion::forward: it is the answer (and it returns the head's
// logits, not the fused vector); read lessons/10_fusion/fusion_models.cpp afterwards.
//
// Check your work: make exercise TASK=10.1
#include "tasks.h"

namespace mmgrad::exercises {

Tensor early_fusion(const Tensor& image_map, const Tensor& table, const Tensor& weight,
                    const Tensor& bias) {
  (void)image_map, (void)table, (void)weight, (void)bias;
  not_done("10.1", "early_fusion");
}

}  // namespace mmgrad::exercises
