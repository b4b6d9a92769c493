// Reductions: forward through the reduce kernel, backward by broadcasting the gradient back.
#include "mmgrad/ops/reduce.h"

#include <cmath>
#include <limits>

#include "mmgrad/ops/common.h"
#include "mmgrad/ops/elementwise.h"

namespace mmgrad {
namespace {

// Which dimensions a reduction covers (all when dims is empty), validated and de-duplicated.
std::vector<bool> reduced_mask(const char* op, const Tensor& x, const Shape& dims) {
  std::vector<bool> mask(static_cast<size_t>(x.dim()), dims.empty());
  for (int64_t d : dims) {
    int w = wrap_dim(d, x.dim(), op);
    if (x.dim() == 0) continue;
    MMGRAD_CHECK(!mask[w] || dims.empty(), op, ": dimension ", d, " appears twice in ", dims.str());
    mask[w] = true;
  }
  return mask;
}

// The output shape with keepdim=true (reduced dims become 1) and as requested.
void reduced_shapes(const Tensor& x, const std::vector<bool>& mask, bool keepdim, Shape* kept,
                    Shape* out) {
  *kept = Shape();
  *out = Shape();
  for (int d = 0; d < x.dim(); ++d) {
    kept->push_back(mask[d] ? 1 : x.size(d));
    if (!mask[d] || keepdim) out->push_back(mask[d] ? 1 : x.size(d));
  }
}

Tensor reduce_kernel(const char* op, ReduceOp rop, const Tensor& x, const std::vector<bool>& mask,
                     bool keepdim, DType out_dtype) {
  Shape kept, out_shape;
  reduced_shapes(x, mask, keepdim, &kept, &out_shape);
  for (int d = 0; d < x.dim(); ++d)
    MMGRAD_CHECK(!(mask[d] && x.size(d) == 0) || rop == ReduceOp::Sum, op,
                 ": cannot reduce over dimension ", d, " of size 0 in shape ", x.shape().str());
  Tensor out = Tensor::empty(kept, TensorOptions(out_dtype).device(x.device()));
  if (out.numel() > 0) {
    if (x.numel() == 0)
      backend(x.device()).fill(out.desc(), 0.0);  // an empty sum is 0
    else
      backend(x.device()).reduce(rop, x.desc(), out.desc());
  }
  return keepdim ? out : out.detach().view(out_shape);
}

int64_t count_reduced(const Tensor& x, const std::vector<bool>& mask) {
  int64_t n = 1;
  for (int d = 0; d < x.dim(); ++d)
    if (mask[d]) n *= x.size(d);
  return n;
}

// Reshapes a reduced gradient to keepdim form and stretches it over the input's shape.
Tensor expand_back(const Tensor& g, const Shape& in_shape, const std::vector<bool>& mask) {
  Shape kept;
  for (int d = 0; d < in_shape.size(); ++d) kept.push_back(mask[d] ? 1 : in_shape[d]);
  return g.reshape(kept).expand(in_shape);
}

void check_reducible(const char* op, const Tensor& x) {
  check_defined(op, x);
  MMGRAD_CHECK(x.dtype() != DType::Bool, op,
               ": convert bool tensors first (e.g. .to(kInt64)), got ", describe(x));
}

}  // namespace

// ---- sum: y = sum over dims,  dy/dx = 1 everywhere -------------------------------------------
struct SumBackward : Node {
  std::vector<bool> mask;
  const char* name() const override { return "sum"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {expand_back(g, input_shapes[0], mask)};
  }
};

Tensor sum(const Tensor& x, const Shape& dims, bool keepdim) {
  check_reducible("sum", x);
  auto mask = reduced_mask("sum", x, dims);
  Tensor out = reduce_kernel("sum", ReduceOp::Sum, x, mask, keepdim, x.dtype());
  if (auto node = make_node<SumBackward>(out, {x})) node->mask = mask;
  return out;
}

Tensor sum(const Tensor& x) { return sum(x, Shape{}, false); }

// ---- mean: y = sum / n,  dy/dx = 1/n --------------------------------------------------------
// Over zero elements (n = 0) the mean is 0 / 0 = NaN, as in PyTorch: the output keeps its shape
// (e.g. mean of a [0, 3] tensor over dim 0 is three NaNs) and the gradient, of the input's empty
// shape, has no element to carry a value.
Tensor mean(const Tensor& x, const Shape& dims, bool keepdim) {
  check_floating("mean", x);
  auto mask = reduced_mask("mean", x, dims);
  int64_t n = count_reduced(x, mask);
  const double scale =
      n > 0 ? 1.0 / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
  return mul(sum(x, dims, keepdim), scale);
}

Tensor mean(const Tensor& x) { return mean(x, Shape{}, false); }

// ---- max / min: dy/dx = 1 at the extreme element, 0 elsewhere ----------------------------------
// Which element "the extreme" is follows PyTorch, whose two forms differ:
//   max(x) (everything): the gradient is split evenly among all elements equal to the result
//     (PyTorch's evenly_distribute_backward); when the result is NaN, among the NaN elements.
//   max(x, dim): PyTorch returns (values, indices), and the gradient goes to that index only:
//     the first extreme along dim, or the first NaN (argmax's rule), never split between ties.
// The value itself propagates NaN: a NaN anywhere in the reduced elements gives NaN.
struct ExtremeBackward : Node {
  SavedTensor x{this}, y{this};  // y in keepdim form (max(x) only)
  std::vector<bool> mask;
  int dim = -1;  // max(x, dim) of an input with dimensions: the wrapped dim; -1 for max(x)
  bool is_max = true;
  const char* name() const override { return is_max ? "max" : "min"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Shape& in_shape = input_shapes[0];
    const Tensor& xv = x.get();
    Tensor gx = expand_back(g, in_shape, mask);
    if (dim >= 0) {
      // 1 at the index argmax/argmin picks along dim (a [.., 1, ..] int64 tensor), else 0.
      Tensor idx = is_max ? argmax(xv, dim, true) : argmin(xv, dim, true);
      Shape pos_shape(std::vector<int64_t>(static_cast<size_t>(xv.dim()), 1));
      pos_shape[dim] = xv.size(dim);
      Tensor pos = Tensor::arange(xv.size(dim), TensorOptions(DType::Int64).device(xv.device()))
                       .reshape(pos_shape);
      return {where(eq(pos, idx), gx, 0.0)};
    }
    const Tensor& yv = y.get();
    // 1 where x attains the extreme; a NaN result is attained by the NaN elements (x != x).
    Tensor hit = logical_or(eq(xv, yv), logical_and(ne(xv, xv), ne(yv, yv))).to(g.dtype());
    Tensor ties = sum(hit, mask_dims(), true);  // how many attain it
    return {mul(div(hit, ties), gx)};
  }
  Shape mask_dims() const {
    Shape d;
    for (size_t i = 0; i < mask.size(); ++i)
      if (mask[i]) d.push_back(static_cast<int64_t>(i));
    return d;
  }
};

namespace {
// dims is {} (max(x)) or {dim} (max(x, dim)).
Tensor extreme(const char* op, bool is_max, const Tensor& x, const Shape& dims, bool keepdim) {
  check_reducible(op, x);
  auto mask = reduced_mask(op, x, dims);
  Tensor kept = reduce_kernel(op, is_max ? ReduceOp::Max : ReduceOp::Min, x, mask, true, x.dtype());
  Shape kept_shape, out_shape;
  reduced_shapes(x, mask, keepdim, &kept_shape, &out_shape);
  Tensor out = keepdim ? kept : kept.detach().view(out_shape);
  if (auto node = make_node<ExtremeBackward>(out, {x})) {
    node->x = x;
    node->mask = mask;
    node->is_max = is_max;
    if (!dims.empty() && x.dim() > 0)
      node->dim = wrap_dim(dims[0], x.dim(), op);
    else
      node->y = kept;
  }
  return out;
}
}  // namespace

Tensor max(const Tensor& x) { return extreme("max", true, x, Shape{}, false); }
Tensor max(const Tensor& x, int64_t dim, bool keepdim) {
  return extreme("max", true, x, Shape{dim}, keepdim);
}
Tensor min(const Tensor& x) { return extreme("min", false, x, Shape{}, false); }
Tensor min(const Tensor& x, int64_t dim, bool keepdim) {
  return extreme("min", false, x, Shape{dim}, keepdim);
}

// ---- var: sum((x - mean)^2) / (n - correction) --------------------------------------------------
// Composed from differentiable ops, so its backward, 2 (x - mean) / (n - correction), comes from
// theirs (the mean's own gradient term sums to zero).
// With no degrees of freedom left (n - correction <= 0) the divisor is 0, as in PyTorch (which
// divides by max(0, n - correction)): the result is 0 / 0 = NaN when every value equals the mean
// (always so for n = 0 or n = 1) and inf otherwise; the gradient is NaN (or inf) likewise.
// PyTorch also prints a warning there; mmgrad has no warnings.
Tensor var(const Tensor& x, const Shape& dims, int64_t correction, bool keepdim) {
  check_floating("var", x);
  MMGRAD_CHECK(correction >= 0, "var: correction must be >= 0, got ", correction);
  auto mask = reduced_mask("var", x, dims);
  int64_t n = count_reduced(x, mask);
  const double dof = n > correction ? static_cast<double>(n - correction) : 0.0;
  Tensor centered = sub(x, mean(x, dims, true));
  return mul(sum(mul(centered, centered), dims, keepdim),
             dof > 0 ? 1.0 / dof : std::numeric_limits<double>::infinity());
}

Tensor var(const Tensor& x, int64_t correction) { return var(x, Shape{}, correction, false); }

// ---- logsumexp: m + log(sum(exp(x - m))), m = max (stop-gradient: it cancels) ----------------
// Any finite m gives the same value; the max keeps exp() from overflowing. Where the max is
// infinite (a row of -inf, e.g. fully masked scores) x - m would be -inf - (-inf) = nan, so m
// is replaced by 0 there: the row then gives log(0) = -inf (or +inf), as it should.
// Over an empty dimension there is no max; m = 0 and the empty sum is 0, so the result is
// log(0) = -inf, as in PyTorch (the identity of log-add-exp).
Tensor logsumexp(const Tensor& x, int64_t dim, bool keepdim) {
  check_floating("logsumexp", x);
  const int d = wrap_dim(dim, x.dim(), "logsumexp");  // an out-of-range dim names this op
  Tensor m;
  if (x.dim() > 0 && x.size(d) == 0) {
    Shape kept = x.shape();
    kept[d] = 1;
    m = Tensor::zeros(kept, x.options());
  } else {
    m = max(x.detach(), dim, true);
    m = where(lt(abs(m), INFINITY), m, 0.0);
  }
  Tensor out = add(log(sum(exp(sub(x, m)), Shape{dim}, true)), m);
  return keepdim ? out : out.squeeze(dim);
}

// ---- argmax / argmin ----------------------------------------------------------------------------
namespace {
Tensor arg_extreme(const char* op, ReduceOp rop, const Tensor& x, int64_t dim, bool keepdim) {
  check_reducible(op, x);
  MMGRAD_CHECK(x.dim() > 0, op, ": needs at least one dimension, got a scalar");
  int d = wrap_dim(dim, x.dim(), op);
  std::vector<bool> mask(static_cast<size_t>(x.dim()), false);
  mask[d] = true;
  return reduce_kernel(op, rop, x, mask, keepdim, DType::Int64);
}
}  // namespace

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  return arg_extreme("argmax", ReduceOp::ArgMax, x, dim, keepdim);
}
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  return arg_extreme("argmin", ReduceOp::ArgMin, x, dim, keepdim);
}
Tensor argmax(const Tensor& x) {
  check_defined("argmax", x);
  return argmax(x.reshape({-1}), 0, false);
}

// ---- sum_to: the backward of broadcasting ------------------------------------------------------
Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  int lead = grad.dim() - shape.size();
  MMGRAD_CHECK(lead >= 0, "sum_to: cannot sum shape ", grad.shape().str(), " to ", shape.str());
  Shape dims;
  for (int d = 0; d < grad.dim(); ++d) {
    int j = d - lead;
    if (j < 0 || (shape[j] == 1 && grad.size(d) != 1)) dims.push_back(d);
  }
  Tensor s = dims.empty() ? grad : sum(grad, dims, true);
  return s.reshape(shape);
}

// ---- Tensor methods ---------------------------------------------------------------------------
Tensor Tensor::sum() const { return mmgrad::sum(*this); }
Tensor Tensor::sum(const Shape& dims, bool keepdim) const {
  return mmgrad::sum(*this, dims, keepdim);
}
Tensor Tensor::mean() const { return mmgrad::mean(*this); }
Tensor Tensor::mean(const Shape& dims, bool keepdim) const {
  return mmgrad::mean(*this, dims, keepdim);
}
Tensor Tensor::max() const { return mmgrad::max(*this); }
Tensor Tensor::max(int64_t dim, bool keepdim) const { return mmgrad::max(*this, dim, keepdim); }
Tensor Tensor::min() const { return mmgrad::min(*this); }
Tensor Tensor::min(int64_t dim, bool keepdim) const { return mmgrad::min(*this, dim, keepdim); }
Tensor Tensor::var(const Shape& dims, int64_t correction, bool keepdim) const {
  return mmgrad::var(*this, dims, correction, keepdim);
}
Tensor Tensor::argmax(int64_t dim, bool keepdim) const {
  return mmgrad::argmax(*this, dim, keepdim);
}
Tensor Tensor::argmin(int64_t dim, bool keepdim) const {
  return mmgrad::argmin(*this, dim, keepdim);
}

}  // namespace mmgrad
