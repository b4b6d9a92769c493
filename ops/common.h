// Helpers every op uses: input checks with clear messages, broadcasting, output allocation.
#pragma once

#include "mmgrad/autograd/node.h"
#include "mmgrad/kernels/backend.h"
#include "mmgrad/tensor/tensor.h"

namespace mmgrad {

// "op: argument 'name' is an undefined tensor"
void check_defined(const char* op, const Tensor& t, const char* arg = "input");
// Both on the same device (a CUDA tensor with a CPU tensor is an error, not a crash).
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
void check_floating(const char* op, const Tensor& t, const char* arg = "input");
void check_dtype(const char* op, const Tensor& t, DType want, const char* arg = "input");
void check_dim(const char* op, const Tensor& t, int want, const char* arg = "input");

// PyTorch's broadcasting rule: align shapes at the right; each pair of sizes must be equal or
// one of them 1. The result takes the larger size.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);
// The kernel view of t read as if expanded to `shape` (stride 0 on broadcast dims).
Strided broadcast_desc(const Tensor& t, const Shape& shape);

// Sums a gradient of the broadcast shape back to an input's shape: the backward of
// broadcasting (a sum over every dimension the input was stretched along).
Tensor sum_to(const Tensor& grad, const Shape& shape);

// A new contiguous tensor of the given shape with t's dtype and device.
inline Tensor empty_as(const Tensor& t, const Shape& shape) {
  return Tensor::empty(shape, t.options());
}

}  // namespace mmgrad
