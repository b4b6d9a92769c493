// Shape ops: each makes a new view (other shape/strides/offset over the same storage). The
// backward of a view maps the gradient back to the input's layout: reshape it back, transpose
// it back, or place it inside zeros of the input's shape (narrow/select).
#include "mmgrad/ops/shape.h"

#include <algorithm>
#include <limits>
#include <string>

#include "mmgrad/ops/common.h"
#include "mmgrad/ops/elementwise.h"

namespace mmgrad {
namespace {

Tensor make_view(const Tensor& x, const Shape& shape, const Shape& strides, int64_t offset) {
  return Tensor::from_storage(x.storage(), shape, strides, offset, x.dtype());
}

// Replaces one -1 by the size that keeps numel; checks the element count. The product of the
// given sizes is overflow-checked: one that wrapped around could match numel by accident.
Shape infer_shape(const char* op, const Shape& want, int64_t numel, const Shape& from) {
  Shape s = want;
  int infer = -1;
  int64_t known = 1;
  bool overflow = false, has_zero = false;
  for (int i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      MMGRAD_CHECK(infer < 0, op, ": only one dimension can be -1, got ", want.str());
      infer = i;
    } else {
      MMGRAD_CHECK(s[i] >= 0, op, ": invalid size ", s[i], " in shape ", want.str());
      has_zero = has_zero || s[i] == 0;
      overflow = overflow || !mul_fits(known, s[i], &known);
    }
  }
  if (has_zero) known = 0, overflow = false;  // exactly 0, whatever the partial products did
  MMGRAD_CHECK(!overflow, op, ": shape ", want.str(), " is invalid for an input of shape ",
               from.str(), " (", numel, " elements): the product of its sizes overflows int64");
  if (infer >= 0) {
    MMGRAD_CHECK(known != 0 && numel % known == 0, op, ": shape ", want.str(),
                 " is invalid for an input of shape ", from.str(), " (", numel, " elements)");
    s[infer] = numel / known;
    known = numel;
  }
  MMGRAD_CHECK(known == numel, op, ": shape ", want.str(), " is invalid for an input of shape ",
               from.str(), " (", numel, " elements)");
  check_shape(s, op);  // strides that fit in int64 (core/shape.h), also for a shape with a 0
  return s;
}

// Strides that let `shape` view memory laid out as (old_shape, old_strides), or false when the
// data would have to move. Dimensions are matched in groups whose element counts agree; inside a
// group the old dims must be contiguous with each other.
bool view_strides(const Shape& old_shape, const Shape& old_strides, const Shape& shape,
                  Shape* out) {
  out->resize(shape.size());
  if (old_shape.numel() == 0 || old_shape.size() == 0 || shape.size() == 0) {
    *out = contiguous_strides(shape);
    return true;
  }
  int view_d = shape.size() - 1;
  int64_t chunk_base_stride = old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int d = old_shape.size() - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    bool boundary =
        d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride);
    if (boundary) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        (*out)[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

}  // namespace

// ---- view / reshape: the gradient is reshaped back --------------------------------------------
struct ReshapeBackward : Node {
  const char* name() const override { return "reshape"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g.reshape(input_shapes[0])}; }
};

Tensor view(const Tensor& x, const Shape& shape) {
  check_defined("view", x);
  Shape s = infer_shape("view", shape, x.numel(), x.shape());
  Shape strides;
  MMGRAD_CHECK(view_strides(x.shape(), x.strides(), s, &strides), "view: shape ", s.str(),
               " is not compatible with the input's strides (shape ", x.shape().str(), ", strides ",
               x.strides().str(), "); use reshape() or contiguous() first");
  Tensor out = make_view(x, s, strides, x.storage_offset());
  make_node<ReshapeBackward>(out, {x});
  return out;
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  check_defined("reshape", x);
  Shape s = infer_shape("reshape", shape, x.numel(), x.shape());
  Shape strides;
  if (view_strides(x.shape(), x.strides(), s, &strides)) return view(x, s);
  return view(x.contiguous(), s);
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  check_defined("flatten", x);
  if (x.dim() == 0) return reshape(x, {1});
  int s = wrap_dim(start_dim, x.dim(), "flatten"), e = wrap_dim(end_dim, x.dim(), "flatten");
  MMGRAD_CHECK(s <= e, "flatten: start_dim ", start_dim, " comes after end_dim ", end_dim);
  Shape shape;
  int64_t n = 1;
  for (int d = 0; d < x.dim(); ++d) {
    if (d < s || d > e) {
      shape.push_back(x.size(d));
    } else {
      n *= x.size(d);
      if (d == e) shape.push_back(n);
    }
  }
  return reshape(x, shape);
}

// ---- permute / transpose: the gradient is permuted back -----------------------------------------
struct PermuteBackward : Node {
  Shape inverse;
  const char* name() const override { return "permute"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g.permute(inverse)}; }
};

Tensor permute(const Tensor& x, const Shape& dims) {
  check_defined("permute", x);
  MMGRAD_CHECK(dims.size() == x.dim(), "permute: got ", dims.size(), " dims ", dims.str(),
               " for a tensor of shape ", x.shape().str());
  Shape shape, strides, inverse;
  inverse.resize(x.dim(), -1);
  for (int i = 0; i < x.dim(); ++i) {
    int d = wrap_dim(dims[i], x.dim(), "permute");
    MMGRAD_CHECK(inverse[d] == -1, "permute: dimension ", d, " repeated in ", dims.str());
    inverse[d] = i;
    shape.push_back(x.size(d));
    strides.push_back(x.stride(d));
  }
  Tensor out = make_view(x, shape, strides, x.storage_offset());
  if (auto node = make_node<PermuteBackward>(out, {x})) node->inverse = inverse;
  return out;
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  check_defined("transpose", x);
  if (x.dim() == 0) return x;
  int a = wrap_dim(dim0, x.dim(), "transpose"), b = wrap_dim(dim1, x.dim(), "transpose");
  Shape dims;
  for (int i = 0; i < x.dim(); ++i) dims.push_back(i);
  std::swap(dims[a], dims[b]);
  return permute(x, dims);
}

// ---- slice / narrow / select: the gradient is written into zeros of the input's shape -------
struct SliceBackward : Node {
  int dim = 0;
  int64_t start = 0, end = 0, step = 1;
  bool squeeze = false;  // select: the sliced dim was removed
  const char* name() const override { return squeeze ? "select" : "slice"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor gx = Tensor::zeros(input_shapes[0], g.options());
    Tensor window = gx.slice(dim, start, end, step);
    window.copy_(squeeze ? g.unsqueeze(dim) : g);
    return {gx};
  }
};

// Python's slicing rule for a positive step, free of overflow for any int64 start/end/step: a
// negative bound counts from the end once (start + n cannot overflow: start < 0 <= n), then
// both bounds clamp into [0, n]. The length, ceil((end - start) / step), is computed as
// (end - start - 1) / step + 1 so that a huge step (x[0:5:10**18]) gives the one element Python
// gives rather than overflowing end - start + step - 1.
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  check_defined("slice", x);
  MMGRAD_CHECK(x.dim() > 0, "slice: cannot slice a 0-d tensor");
  int d = wrap_dim(dim, x.dim(), "slice");
  MMGRAD_CHECK(step > 0, "slice: step must be positive, got ", step);
  int64_t n = x.size(d);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  const int64_t length = end > start ? (end - start - 1) / step + 1 : 0;
  Shape shape = x.shape(), strides = x.strides();
  shape[d] = length;
  // With two or more elements step < n, so stride * step stays within the storage's extent;
  // with one or none the stride is never used (and a huge step would overflow it).
  strides[d] = length > 1 ? x.stride(d) * step : x.stride(d);
  Tensor out = make_view(x, shape, strides, x.storage_offset() + start * x.stride(d));
  if (auto node = make_node<SliceBackward>(out, {x})) {
    node->dim = d;
    node->start = start;
    node->end = end;
    node->step = step;
  }
  return out;
}

// PyTorch's rule: start in [-n, n] (a negative start counts from the end), length >= 0 and
// start + length <= n, checked as length <= n - start so that no sum can overflow. Out of range
// is an error, never a silently shorter result.
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  check_defined("narrow", x);
  MMGRAD_CHECK(x.dim() > 0, "narrow: cannot narrow a 0-d tensor");
  int d = wrap_dim(dim, x.dim(), "narrow");
  int64_t n = x.size(d);
  MMGRAD_CHECK(start >= -n && start <= n, "narrow: start ", start,
               " is out of range for dimension ", d, " of size ", n, " (shape ", x.shape().str(),
               "; expected ", -n, " <= start <= ", n, ")");
  if (start < 0) start += n;
  MMGRAD_CHECK(length >= 0, "narrow: length must be >= 0, got ", length);
  if (length > n - start) {
    // The end, printed without computing a sum that could overflow.
    const std::string end = length <= std::numeric_limits<int64_t>::max() - start
                                ? std::to_string(start + length)
                                : cat_str(start, " + ", length);
    fail(cat_str("narrow: range [", start, ", ", end, ") is out of bounds for dimension ", d,
                 " of size ", n, " (shape ", x.shape().str(), "; start + length must be <= ", n,
                 ")"));
  }
  return slice(x, d, start, start + length, 1);
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  check_defined("select", x);
  MMGRAD_CHECK(x.dim() > 0, "select: cannot index a 0-d tensor");
  int d = wrap_dim(dim, x.dim(), "select");
  int64_t n = x.size(d);
  MMGRAD_CHECK(index >= -n && index < n, "select: index ", index, " is out of range for dimension ",
               d, " of size ", n, " (shape ", x.shape().str(), ")");
  if (index < 0) index += n;
  Shape shape = x.shape(), strides = x.strides();
  shape.erase(d);
  strides.erase(d);
  Tensor out = make_view(x, shape, strides, x.storage_offset() + index * x.stride(d));
  if (auto node = make_node<SliceBackward>(out, {x})) {
    node->dim = d;
    node->start = index;
    node->end = index + 1;
    node->squeeze = true;
  }
  return out;
}

// ---- expand: stride 0 on broadcast dims; the gradient sums over them (sum_to) ------------------
struct ExpandBackward : Node {
  const char* name() const override { return "expand"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {sum_to(g, input_shapes[0])}; }
};

Tensor expand(const Tensor& x, const Shape& shape) {
  check_defined("expand", x);
  MMGRAD_CHECK(shape.size() >= x.dim(), "expand: target ", shape.str(),
               " has fewer dimensions than ", x.shape().str());
  int lead = shape.size() - x.dim();
  Shape out_shape, strides;
  for (int i = 0; i < shape.size(); ++i) {
    int j = i - lead;
    int64_t want = shape[i];
    if (j < 0) {
      MMGRAD_CHECK(want >= 0, "expand: size ", want,
                   " is not allowed for a new leading dimension in ", shape.str());
      out_shape.push_back(want);
      strides.push_back(0);
      continue;
    }
    int64_t have = x.size(j);
    if (want == -1) want = have;
    MMGRAD_CHECK(want >= 0, "expand: invalid size ", shape[i], " in target ", shape.str(),
                 " (sizes are >= 0, or -1 to keep a dimension)");
    MMGRAD_CHECK(want == have || have == 1, "expand: cannot expand ", x.shape().str(), " to ",
                 shape.str(), " (dimension ", i, ": ", have, " -> ", want,
                 "; only size-1 dims expand)");
    out_shape.push_back(want);
    strides.push_back(want == have ? x.stride(j) : 0);
  }
  check_shape(out_shape, "expand");  // its numel and any contiguous copy must fit in int64
  if (out_shape == x.shape()) return x;
  Tensor out = make_view(x, out_shape, strides, x.storage_offset());
  make_node<ExpandBackward>(out, {x});
  return out;
}

// ---- squeeze / unsqueeze: views whose backward is a reshape
// --------------------------------------
Tensor squeeze(const Tensor& x) {
  check_defined("squeeze", x);
  Shape s;
  for (int64_t d : x.shape())
    if (d != 1) s.push_back(d);
  return view(x, s);
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  check_defined("squeeze", x);
  if (x.dim() == 0) return x;
  int d = wrap_dim(dim, x.dim(), "squeeze");
  if (x.size(d) != 1) return x;
  Shape s = x.shape(), st = x.strides();
  s.erase(d);
  st.erase(d);
  Tensor out = make_view(x, s, st, x.storage_offset());
  make_node<ReshapeBackward>(out, {x});
  return out;
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  check_defined("unsqueeze", x);
  int d = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape s = x.shape(), st = x.strides();
  int64_t stride = d < x.dim() ? x.stride(d) * x.size(d) : 1;
  s.insert(d, 1);
  st.insert(d, stride);
  Tensor out = make_view(x, s, st, x.storage_offset());
  make_node<ReshapeBackward>(out, {x});
  return out;
}

// ---- Tensor methods ---------------------------------------------------------------------------
Tensor Tensor::view(const Shape& s) const { return mmgrad::view(*this, s); }
Tensor Tensor::reshape(const Shape& s) const { return mmgrad::reshape(*this, s); }
Tensor Tensor::flatten(int64_t s, int64_t e) const { return mmgrad::flatten(*this, s, e); }
Tensor Tensor::transpose(int64_t a, int64_t b) const { return mmgrad::transpose(*this, a, b); }
Tensor Tensor::t() const {
  MMGRAD_CHECK(dim() <= 2, "t: expects a tensor with <= 2 dimensions, got shape ", shape().str(),
               " (use transpose(dim0, dim1))");
  return mmgrad::transpose(*this, 0, dim() == 2 ? 1 : 0);
}
Tensor Tensor::permute(const Shape& d) const { return mmgrad::permute(*this, d); }
Tensor Tensor::narrow(int64_t d, int64_t s, int64_t l) const {
  return mmgrad::narrow(*this, d, s, l);
}
Tensor Tensor::slice(int64_t d, int64_t s, int64_t e, int64_t st) const {
  return mmgrad::slice(*this, d, s, e, st);
}
Tensor Tensor::select(int64_t d, int64_t i) const { return mmgrad::select(*this, d, i); }
Tensor Tensor::expand(const Shape& s) const { return mmgrad::expand(*this, s); }
Tensor Tensor::squeeze() const { return mmgrad::squeeze(*this); }
Tensor Tensor::squeeze(int64_t d) const { return mmgrad::squeeze(*this, d); }
Tensor Tensor::unsqueeze(int64_t d) const { return mmgrad::unsqueeze(*this, d); }

}  // namespace mmgrad
