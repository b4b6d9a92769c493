// Joining and indexing ops. Each one places or picks slices; its backward is the adjoint
// placement, which puts every gradient element back where its value came from:
//   cat          y = [a; b; ...] along dim     -> da = narrow(g), db = narrow(g), ...
//   stack        y[i] = t_i along a new dim    -> dt_i = select(g, dim, i)
//   index_select y[.., i, ..] = x[.., idx[i], ..]   -> dx = index_add(zeros, idx, g)
//   gather       y[o, j, k] = x[o, idx[o, j, k], k] -> dx = scatter_add(zeros, idx, g)
//   scatter_add  y = x; y[o, idx[o, j, k], k] += src[o, j, k]
//                                               -> dx = g, dsrc = gather(g, idx)
//   embedding    y[..., :] = W[idx[...], :]     -> dW = index_add(zeros, idx, g), no gradient
//                                                  for the padding row
// Repeated indices make the adjoints accumulate (index_add / scatter_add add, never overwrite),
// which is exactly the sum the chain rule asks for when one value feeds several outputs.
//
// The kernels see contiguous tensors as [outer, dim, inner]: outer is the product of the sizes
// before dim, inner the product of those after it.
#include "mmgrad/ops/index.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "mmgrad/ops/common.h"
#include "mmgrad/ops/elementwise.h"
#include "mmgrad/ops/index_check.h"

namespace mmgrad {
namespace {

int64_t outer_size(const Shape& s, int dim) {
  int64_t n = 1;
  for (int d = 0; d < dim; ++d) n *= s[d];
  return n;
}

int64_t inner_size(const Shape& s, int dim) {
  int64_t n = 1;
  for (int d = dim + 1; d < s.size(); ++d) n *= s[d];
  return n;
}

// "[1, 2]": the multi-index of flat position i in shape s (for error messages).
std::string position_str(const Shape& s, int64_t i) {
  if (s.size() == 0) return "[]";
  std::vector<int64_t> idx(static_cast<size_t>(s.size()));
  for (int d = s.size() - 1; d >= 0; --d) {
    idx[d] = s[d] ? i % s[d] : 0;
    i = s[d] ? i / s[d] : 0;
  }
  std::string r = "[";
  for (size_t k = 0; k < idx.size(); ++k) r += (k ? ", " : "") + std::to_string(idx[k]);
  return r + "]";
}

// The int64 index as a contiguous tensor on its device (what the kernels read).
Tensor dense_index(const Tensor& index) { return index.detach().contiguous(); }

// ---- gather / scatter_add without autograd (shared by the ops and their backwards) ----------

// out = gather(x, dim, idx) for a contiguous idx of x's rank with idx.size(d) <= x.size(d) for
// d != dim. The kernel wants src and idx to agree outside dim, so x is first cut to idx's sizes
// there (a view; only when they differ).
Tensor gather_kernel(const Tensor& x, int dim, const Tensor& idx) {
  Tensor src = x.detach();
  for (int d = 0; d < x.dim(); ++d)
    if (d != dim && idx.size(d) < src.size(d)) src = src.narrow(d, 0, idx.size(d));
  src = src.contiguous();
  Tensor out = empty_as(x, idx.shape());
  if (out.numel() > 0)
    backend(x.device())
        .gather(x.dtype(), src.raw_data(), idx.data_ptr<int64_t>(), out.raw_data(),
                outer_size(idx.shape(), dim), x.size(dim), idx.size(dim),
                inner_size(idx.shape(), dim));
  return out;
}

// dst (contiguous, not requiring grad) += scatter of src along dim at idx (contiguous, idx's
// sizes <= src's everywhere and <= dst's outside dim). Only the part of src that idx covers is
// read. When idx is smaller than dst outside dim, the kernel writes into a temporary of idx's
// extent that is then added into the matching window of dst.
void scatter_add_into(Tensor& dst, int dim, const Tensor& idx, const Tensor& src) {
  if (idx.numel() == 0) return;
  Tensor s = src.detach();
  for (int d = 0; d < s.dim(); ++d)
    if (idx.size(d) < s.size(d)) s = s.narrow(d, 0, idx.size(d));
  s = s.contiguous();
  bool fits = true;
  for (int d = 0; d < dst.dim(); ++d)
    if (d != dim && idx.size(d) != dst.size(d)) fits = false;
  Shape tshape = idx.shape();
  tshape[dim] = dst.size(dim);
  Tensor target = fits ? dst : Tensor::zeros(tshape, dst.options());
  backend(dst.device())
      .scatter_add(dst.dtype(), s.raw_data(), idx.data_ptr<int64_t>(), target.raw_data(),
                   outer_size(idx.shape(), dim), dst.size(dim), idx.size(dim),
                   inner_size(idx.shape(), dim));
  if (!fits) {
    Tensor window = dst;
    for (int d = 0; d < dst.dim(); ++d)
      if (d != dim) window = window.narrow(d, 0, idx.size(d));
    window.add_(target);
  }
}

// Shared checks of gather and scatter_add: index is int64, of x's rank, no larger than `limit`
// outside dim, with values in [0, x.size(dim)).
void check_gather_index(const char* op, const Tensor& x, int dim, const Tensor& index) {
  check_dtype(op, index, DType::Int64, "index");
  check_same_device(op, x, index);
  MMGRAD_CHECK(index.dim() == x.dim(), op, ": index must have the input's rank: got index ",
               index.shape().str(), " for input ", x.shape().str());
  for (int d = 0; d < x.dim(); ++d)
    MMGRAD_CHECK(d == dim || index.size(d) <= x.size(d), op, ": index ", index.shape().str(),
                 " is larger than the input ", x.shape().str(), " in dimension ", d,
                 " (only dimension ", dim, ", the one indexed, may differ)");
  if (index.numel() > 0)
    MMGRAD_CHECK(x.size(dim) > 0, op, ": cannot index dimension ", dim, " of size 0 (input ",
                 x.shape().str(), ")");
  check_index_values(op, index, x.size(dim), "index");
}

}  // namespace

int64_t check_index_values(const char* op, const Tensor& index, int64_t bound, const char* what,
                           std::optional<int64_t> except) {
  check_dtype(op, index, DType::Int64, what);
  const int64_t n = index.numel();
  if (n == 0) return 0;
  std::vector<int64_t> copy;
  const int64_t* v = nullptr;
  if (index.device() == Device::CPU && index.is_contiguous()) {
    v = index.data_ptr<int64_t>();
  } else {
    copy = index.to_vector<int64_t>();
    v = copy.data();
  }
  int64_t counted = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t x = v[i];
    if (except && x == *except) continue;
    if (x < 0 || x >= bound) {
      fail(cat_str(op, ": ", what, " value ", x, " at position ", position_str(index.shape(), i),
                   " is out of range: expected 0 <= ", what, " < ", bound,
                   except ? cat_str(" or ", what, " == ", *except, " (ignored)") : std::string()));
    }
    ++counted;
  }
  return counted;
}

// ---- cat
// ------------------------------------------------------------------------------------------
struct CatBackward : Node {
  int dim = 0;
  std::vector<int64_t> sizes;  // each input's extent along dim
  const char* name() const override { return "cat"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    std::vector<Tensor> grads(sizes.size());
    int64_t offset = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (needs_grad(i)) grads[i] = g.narrow(dim, offset, sizes[i]);
      offset += sizes[i];
    }
    return grads;
  }
};

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  const char* op = "cat";
  MMGRAD_CHECK(!tensors.empty(), "cat: expected a non-empty list of tensors");
  for (const Tensor& t : tensors) check_defined(op, t, "tensors");
  const Tensor& first = tensors[0];
  for (size_t i = 0; i < tensors.size(); ++i)
    MMGRAD_CHECK(tensors[i].dim() > 0, "cat: zero-dimensional tensor (at position ", i,
                 ") cannot be concatenated; unsqueeze it first or use stack");
  const int d = wrap_dim(dim, first.dim(), op);
  Shape shape = first.shape();
  int64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    check_same_device(op, first, t);
    check_same_dtype(op, first, t);
    MMGRAD_CHECK(t.dim() == first.dim(), "cat: tensors must have the same rank: tensor 0 is ",
                 first.shape().str(), ", tensor ", i, " is ", t.shape().str());
    for (int k = 0; k < t.dim(); ++k)
      MMGRAD_CHECK(k == d || t.size(k) == first.size(k),
                   "cat: sizes must match except in dimension ", d, ": tensor 0 is ",
                   first.shape().str(), ", tensor ", i, " is ", t.shape().str(), " (dimension ", k,
                   ")");
    MMGRAD_CHECK(!__builtin_add_overflow(total, t.size(d), &total),
                 "cat: the sizes along dimension ", d,
                 " add up to more than int64 can hold (at tensor ", i, ", ", t.shape().str(), ")");
  }
  shape[d] = total;
  Tensor out = Tensor::empty(shape, first.options());
  int64_t offset = 0;
  for (const Tensor& t : tensors) {
    if (t.numel() > 0)
      backend(out.device()).copy(t.desc(), out.narrow(d, offset, t.size(d)).desc());
    offset += t.size(d);
  }
  if (auto node = make_node<CatBackward>(out, tensors)) {
    node->dim = d;
    for (const Tensor& t : tensors) node->sizes.push_back(t.size(d));
  }
  return out;
}

// ---- stack
// ----------------------------------------------------------------------------------------
struct StackBackward : Node {
  int dim = 0;
  const char* name() const override { return "stack"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    std::vector<Tensor> grads(next.size());
    for (size_t i = 0; i < grads.size(); ++i)
      if (needs_grad(i)) grads[i] = g.select(dim, static_cast<int64_t>(i));
    return grads;
  }
};

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  const char* op = "stack";
  MMGRAD_CHECK(!tensors.empty(), "stack: expected a non-empty list of tensors");
  for (const Tensor& t : tensors) check_defined(op, t, "tensors");
  const Tensor& first = tensors[0];
  const int d = wrap_dim(dim, first.dim() + 1, op);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    check_same_device(op, first, t);
    check_same_dtype(op, first, t);
    MMGRAD_CHECK(t.shape() == first.shape(), "stack: expects tensors of equal shape: tensor 0 is ",
                 first.shape().str(), ", tensor ", i, " is ", t.shape().str());
  }
  MMGRAD_CHECK(first.dim() < kMaxDims, "stack: the result would have more than ", kMaxDims,
               " dimensions (inputs ", first.shape().str(), ")");
  Shape shape = first.shape();
  shape.insert(d, static_cast<int64_t>(tensors.size()));
  Tensor out = Tensor::empty(shape, first.options());
  if (first.numel() > 0)
    for (size_t i = 0; i < tensors.size(); ++i)
      backend(out.device()).copy(tensors[i].desc(), out.select(d, static_cast<int64_t>(i)).desc());
  if (auto node = make_node<StackBackward>(out, tensors)) node->dim = d;
  return out;
}

// ---- index_select
// ---------------------------------------------------------------------------------
struct IndexSelectBackward : Node {
  int dim = 0;
  SavedTensor index{this};  // contiguous int64
  const char* name() const override { return "index_select"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Shape& in = input_shapes[0];
    const Tensor& idx = index.get();
    Tensor gx = Tensor::zeros(in, g.options());
    Tensor gc = g.contiguous();
    if (gc.numel() > 0)
      backend(g.device())
          .index_add(g.dtype(), gc.raw_data(), idx.data_ptr<int64_t>(), gx.raw_data(),
                     outer_size(in, dim), in[dim], inner_size(in, dim), idx.numel());
    return {gx};
  }
};

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  const char* op = "index_select";
  check_defined(op, x, "input");
  check_dtype(op, index, DType::Int64, "index");
  check_same_device(op, x, index);
  MMGRAD_CHECK(x.dim() > 0,
               "index_select: expected an input with at least 1 dimension, got a "
               "0-d tensor");
  MMGRAD_CHECK(index.dim() <= 1, "index_select: index must be 1-D (or 0-d), got shape ",
               index.shape().str());
  const int d = wrap_dim(dim, x.dim(), op);
  check_index_values(op, index, x.size(d), "index");
  Tensor idx = dense_index(index);
  Tensor xc = x.contiguous();
  Shape shape = x.shape();
  shape[d] = idx.numel();
  Tensor out = empty_as(x, shape);
  if (out.numel() > 0)
    backend(x.device())
        .index_select(x.dtype(), xc.raw_data(), idx.data_ptr<int64_t>(), out.raw_data(),
                      outer_size(shape, d), x.size(d), inner_size(shape, d), idx.numel());
  if (auto node = make_node<IndexSelectBackward>(out, {xc})) {
    node->dim = d;
    node->index = idx;
  }
  return out;
}

// ---- gather
// -----------------------------------------------------------------------------------------
struct GatherBackward : Node {
  int dim = 0;
  SavedTensor index{this};
  const char* name() const override { return "gather"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor gx = Tensor::zeros(input_shapes[0], g.options());
    scatter_add_into(gx, dim, index.get(), g);
    return {gx};
  }
};

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  const char* op = "gather";
  check_defined(op, x, "input");
  MMGRAD_CHECK(x.dim() > 0,
               "gather: expected an input with at least 1 dimension, got a 0-d "
               "tensor");
  const int d = wrap_dim(dim, x.dim(), op);
  check_gather_index(op, x, d, index);
  Tensor idx = dense_index(index);
  Tensor out = gather_kernel(x, d, idx);
  if (auto node = make_node<GatherBackward>(out, {x})) {
    node->dim = d;
    node->index = idx;
  }
  return out;
}

// ---- scatter_add
// ------------------------------------------------------------------------------------
struct ScatterAddBackward : Node {
  int dim = 0;
  SavedTensor index{this};
  const char* name() const override { return "scatter_add"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor gx, gsrc;
    if (needs_grad(0)) gx = g;
    if (needs_grad(1)) {
      const Tensor& idx = index.get();
      gsrc = gather_kernel(g, dim, idx);
      const Shape& src_shape = input_shapes[1];
      if (gsrc.shape() != src_shape) {  // src entries the index does not cover get no gradient
        Tensor full = Tensor::zeros(src_shape, g.options());
        Tensor window = full;
        for (int d = 0; d < full.dim(); ++d) window = window.narrow(d, 0, idx.size(d));
        window.copy_(gsrc);
        gsrc = full;
      }
    }
    return {gx, gsrc};
  }
};

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  const char* op = "scatter_add";
  check_floating(op, x, "input");
  check_floating(op, src, "src");
  check_same_dtype(op, x, src);
  check_same_device(op, x, src);
  MMGRAD_CHECK(x.dim() > 0,
               "scatter_add: expected an input with at least 1 dimension, got a 0-d "
               "tensor");
  const int d = wrap_dim(dim, x.dim(), op);
  MMGRAD_CHECK(src.dim() == x.dim(), "scatter_add: src must have the input's rank: got src ",
               src.shape().str(), " for input ", x.shape().str());
  check_dtype(op, index, DType::Int64, "index");
  MMGRAD_CHECK(index.dim() == x.dim(), op, ": index must have the input's rank: got index ",
               index.shape().str(), " for input ", x.shape().str());
  for (int k = 0; k < x.dim(); ++k)
    MMGRAD_CHECK(index.size(k) <= src.size(k), "scatter_add: index ", index.shape().str(),
                 " is larger than src ", src.shape().str(), " in dimension ", k);
  check_gather_index(op, x, d, index);
  Tensor idx = dense_index(index);
  Tensor out = empty_as(x, x.shape());
  if (out.numel() > 0) backend(x.device()).copy(x.desc(), out.desc());
  scatter_add_into(out, d, idx, src);
  if (auto node = make_node<ScatterAddBackward>(out, {x, src})) {
    node->dim = d;
    node->index = idx;
  }
  return out;
}

// ---- embedding
// ----------------------------------------------------------------------------------------
struct EmbeddingBackward : Node {
  SavedTensor indices{this};  // contiguous int64
  int64_t padding_idx = -1;
  const char* name() const override { return "embedding"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Shape& w = input_shapes[0];
    const Tensor& idx = indices.get();
    Tensor gw = Tensor::zeros(w, g.options());
    Tensor gc = g.contiguous();
    if (gc.numel() > 0)
      backend(g.device())
          .index_add(g.dtype(), gc.raw_data(), idx.data_ptr<int64_t>(), gw.raw_data(), 1, w[0],
                     w[1], idx.numel());
    // The padding row is a fixed vector (often zeros): it never learns.
    if (padding_idx >= 0) gw.select(0, padding_idx).zero_();
    return {gw};
  }
};

Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx) {
  const char* op = "embedding";
  check_floating(op, weight, "weight");
  check_dim(op, weight, 2, "weight");
  check_dtype(op, indices, DType::Int64, "indices");
  check_same_device(op, weight, indices);
  const int64_t V = weight.size(0), D = weight.size(1);
  MMGRAD_CHECK(padding_idx < V, "embedding: padding_idx ", padding_idx,
               " is out of range for a weight of shape ", weight.shape().str(),
               " (expected padding_idx < ", V, ", or negative for none)");
  MMGRAD_CHECK(indices.dim() < kMaxDims, "embedding: indices of shape ", indices.shape().str(),
               " would give a result with more than ", kMaxDims, " dimensions");
  check_index_values(op, indices, V, "indices");
  Tensor idx = dense_index(indices);
  Tensor wc = weight.contiguous();
  Shape shape = indices.shape();
  shape.push_back(D);
  Tensor out = empty_as(weight, shape);
  if (out.numel() > 0)
    backend(weight.device())
        .index_select(weight.dtype(), wc.raw_data(), idx.data_ptr<int64_t>(), out.raw_data(), 1, V,
                      D, idx.numel());
  if (auto node = make_node<EmbeddingBackward>(out, {wc})) {
    node->indices = idx;
    node->padding_idx = padding_idx;
  }
  return out;
}

// ---- one_hot (no gradient)
// ----------------------------------------------------------------------------- Compares each index
// with 0..C-1 by broadcasting [..., 1] against [C]: one pass, any device.
Tensor one_hot(const Tensor& indices, int64_t num_classes, DType dtype) {
  const char* op = "one_hot";
  OpScope scope(op);  // allocation errors below (arange, eq) name one_hot
  check_dtype(op, indices, DType::Int64, "indices");
  MMGRAD_CHECK(indices.dim() < kMaxDims, "one_hot: indices of shape ", indices.shape().str(),
               " would give a result with more than ", kMaxDims, " dimensions");
  if (num_classes == -1) {
    MMGRAD_CHECK(indices.numel() > 0,
                 "one_hot: cannot infer num_classes (-1) from an empty indices tensor");
    std::vector<int64_t> v = indices.to_vector<int64_t>();
    const int64_t top = *std::max_element(v.begin(), v.end());
    const int64_t low = *std::min_element(v.begin(), v.end());
    MMGRAD_CHECK(low >= 0, "one_hot: indices value ", low,
                 " is negative: class indices must be >= 0");
    MMGRAD_CHECK(top < std::numeric_limits<int64_t>::max(), "one_hot: indices value ", top,
                 " is too large to infer num_classes = value + 1");
    num_classes = top + 1;
  }
  MMGRAD_CHECK(num_classes > 0, "one_hot: num_classes must be positive (or -1 to infer), got ",
               num_classes);
  check_index_values(op, indices, num_classes, "indices");
  Tensor classes =
      Tensor::arange(num_classes, TensorOptions(DType::Int64).device(indices.device()));
  Tensor hot = eq(indices.detach().unsqueeze(-1), classes);
  return dtype == DType::Bool ? hot : hot.to(dtype);
}

}  // namespace mmgrad
