// Fused float32 dropout on the CPU (ops/dropout.cpp takes it for contiguous float32 tensors).
//
// The composed version draws u = rand(x.shape), builds mask = where(u >= p, 1 / (1 - p), 0) and
// multiplies: three kernels, a float32 random tensor, a bool tensor and a float32 mask per call
// (lesson 04's small CLIP spent ~10% of its training step there). These do it in one pass, keep
// the mask as one byte per element, and give the same bits: u is the same Philox sample
// (philox::uniform_sample<float> at the same counters), and y and the gradient are the same
// float products.
#pragma once

#include <cstdint>

namespace mmgrad::cpu {

// For i in [0, n): u = philox::uniform_sample<float>(offset + i, seed, 0, 1) (what
// Tensor::rand draws at that generator state), keep[i] = (u >= p), y[i] = x[i] * m with
// m = keep[i] ? scale : 0 (so a dropped inf or NaN gives NaN, as x * 0 does).
void dropout_forward(const float* x, float* y, uint8_t* keep, int64_t n, uint64_t seed,
                     uint64_t offset, float p, float scale);

// gx[i] = g[i] * (keep[i] ? scale : 0).
void dropout_backward(const float* g, const uint8_t* keep, float* gx, int64_t n, float scale);

}  // namespace mmgrad::cpu
