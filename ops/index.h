// Joining and indexing: cat, stack, index_select, gather, scatter_add, embedding, one_hot.
#pragma once

#include <vector>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad {

// Joins tensors along an existing dimension (all other sizes equal).
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
// Joins tensors of equal shape along a new dimension.
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
// Picks slices along dim by a 1-D int64 index: out.size(dim) == index.numel().
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// out[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (and so on): index has x's rank, sizes no
// larger than x's outside dim, values in [0, x.size(dim)); out has index's shape.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// x with src added at the positions index names along dim (the adjoint of gather):
// out[index[i][j][k]][j][k] += src[i][j][k] for dim 0. index is no larger than src anywhere and
// than x outside dim; only the part of src that index covers is read.
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
// Rows of weight [V, D] looked up by int64 indices of any shape: result [..., D]. The row
// padding_idx (if >= 0) receives no gradient.
Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx = -1);
// [..., num_classes] float32 (or dtype) with a 1 at each index (no gradient); num_classes -1
// infers max(indices) + 1.
Tensor one_hot(const Tensor& indices, int64_t num_classes, DType dtype = DType::Float32);

}  // namespace mmgrad
