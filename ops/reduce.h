// Reductions. `dims` lists the dimensions to reduce (negative counts from the end); an empty
// list reduces everything. keepdim keeps reduced dimensions with size 1.
// Over zero elements they follow PyTorch (docs/semantics.md, "Empty inputs"): sum = 0,
// mean = NaN, var = NaN, logsumexp = -inf; max, min, argmax and argmin throw (no value exists).
// var with n - correction <= 0 divides by 0 (NaN, or inf when the values differ).
#pragma once

#include "mmgrad/tensor/tensor.h"

namespace mmgrad {

// ---- differentiable
// ------------------------------------------------------------------------------
Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const Shape& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const Shape& dims, bool keepdim = false);
// Largest / smallest value; with a dim, along it. NaN propagates (a NaN gives NaN). The gradient
// (PyTorch's): max(x) splits it evenly among the elements equal to the result (the NaNs when it is
// NaN); max(x, dim) gives it all to the index argmax/argmin would return.
Tensor max(const Tensor& x);
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor min(const Tensor& x);
Tensor min(const Tensor& x, int64_t dim, bool keepdim = false);
// Variance with Bessel's correction by default (divide by N - correction).
Tensor var(const Tensor& x, const Shape& dims, int64_t correction = 1, bool keepdim = false);
Tensor var(const Tensor& x, int64_t correction = 1);
// log(sum(exp(x))) along dim, computed stably (shift by the max).
Tensor logsumexp(const Tensor& x, int64_t dim, bool keepdim = false);

// ---- no gradient -------------------------------------------------------------------------------
// Index of the largest / smallest element along dim (first one on ties; the first NaN if there is
// one, as PyTorch), int64.
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
// Index of the largest element of the flattened tensor.
Tensor argmax(const Tensor& x);

}  // namespace mmgrad
