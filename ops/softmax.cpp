// softmax and log_softmax along one dimension, through the fused kernels.
//
//   softmax:      y_i = exp(x_i - m) / sum_j exp(x_j - m),     m = max_j x_j (stability only)
//   log_softmax:  y_i = x_i - m - log(sum_j exp(x_j - m))
//
// The Jacobian of softmax is dy_i/dx_j = y_i (delta_ij - y_j), so the backward needs only the
// output:
//   softmax:      gx_i = y_i (gy_i - sum_j gy_j y_j)
//   log_softmax:  gx_i = gy_i - exp(y_i) sum_j gy_j
// A contiguous tensor viewed as [outer, dim, inner] has the softmax dimension in the middle, so
// one kernel covers every `dim` without transposing: rows are strided by `inner`.
//
// A row whose entries are all -inf has no defined softmax: the result is NaN, as in PyTorch.
// (Attention, which meets such rows when a query may attend to nothing, handles them itself.)
#include "mmgrad/ops/softmax.h"

#include <algorithm>
#include <cmath>

#include "mmgrad/ops/common.h"

namespace mmgrad {
namespace {

// Sizes of x seen as [outer, dim, inner] around dimension d (a 0-d tensor is one row of 1).
void split_dims(const Tensor& x, int d, int64_t* outer, int64_t* dim, int64_t* inner) {
  *outer = 1;
  *dim = x.dim() == 0 ? 1 : x.size(d);
  *inner = 1;
  for (int i = 0; i < d; ++i) *outer *= x.size(i);
  for (int i = d + 1; i < x.dim(); ++i) *inner *= x.size(i);
}

}  // namespace

struct SoftmaxBackward : Node {
  SavedTensor y{this};  // the output: both backward formulas need only it
  int64_t outer = 1, dim = 1, inner = 1;
  bool log = false;
  const char* name() const override { return log ? "log_softmax" : "softmax"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor& yv = y.get();
    Tensor gc = g.contiguous();
    Tensor gx = empty_as(yv, yv.shape());
    if (gx.numel() > 0)
      backend(yv.device())
          .softmax_backward({.dtype = yv.dtype(),
                             .y = yv.raw_data(),
                             .gy = gc.raw_data(),
                             .gx = gx.raw_data(),
                             .outer = outer,
                             .dim = dim,
                             .inner = inner,
                             .log = log});
    return {gx};
  }
};

namespace {

Tensor softmax_op(const char* op, const Tensor& x, int64_t dim, bool log) {
  check_floating(op, x);
  const int d = wrap_dim(dim, x.dim(), op);
  int64_t outer, n, inner;
  split_dims(x, d, &outer, &n, &inner);
  Tensor xc = x.detach().contiguous();  // the node below records x itself, not the copy
  Tensor out = empty_as(x, x.shape());
  if (out.numel() > 0)
    backend(x.device())
        .softmax_forward({.dtype = x.dtype(),
                          .x = xc.raw_data(),
                          .y = out.raw_data(),
                          .outer = outer,
                          .dim = n,
                          .inner = inner,
                          .log = log});
  if (auto node = make_node<SoftmaxBackward>(out, {x})) {
    node->y = out;
    node->outer = outer;
    node->dim = n;
    node->inner = inner;
    node->log = log;
  }
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_op("softmax", x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_op("log_softmax", x, dim, true); }

Tensor Tensor::softmax(int64_t dim) const { return mmgrad::softmax(*this, dim); }
Tensor Tensor::log_softmax(int64_t dim) const { return mmgrad::log_softmax(*this, dim); }

}  // namespace mmgrad

// ---- reference: softmax and log_softmax as plain loops ------------------------------------------
// The definition of the math, for reading and for testing the kernels against
// (tests/test_reference_kernels.cpp); the op above runs the backend's kernels instead.

namespace mmgrad::reference {

std::vector<double> softmax(const std::vector<double>& x, int64_t R, int64_t D, bool log) {
  std::vector<double> y(static_cast<size_t>(R * D));
  for (int64_t r = 0; r < R; ++r) {
    const double* row = &x[r * D];
    // softmax(x) = softmax(x - m) for any m; with m = max(x) no exp overflows.
    double m = row[0];
    for (int64_t i = 1; i < D; ++i) m = std::max(m, row[i]);
    double sum = 0;
    for (int64_t i = 0; i < D; ++i) sum += std::exp(row[i] - m);
    for (int64_t i = 0; i < D; ++i)
      y[r * D + i] = log ? (row[i] - m) - std::log(sum) : std::exp(row[i] - m) / sum;
  }
  return y;
}

std::vector<double> softmax_backward(const std::vector<double>& x, const std::vector<double>& dy,
                                     int64_t R, int64_t D, bool log) {
  // With p = softmax(x):  softmax:     d y_i / d x_j = p_i ([i == j] - p_j)
  //                       log_softmax: d y_i / d x_j = [i == j] - p_j
  // and dx_j = sum_i dy_i (d y_i / d x_j).
  const std::vector<double> p = softmax(x, R, D, false);
  std::vector<double> dx(static_cast<size_t>(R * D));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t j = 0; j < D; ++j) {
      double s = 0;
      for (int64_t i = 0; i < D; ++i) {
        const double delta = i == j ? 1.0 : 0.0;
        const double jac = log ? delta - p[r * D + j] : p[r * D + i] * (delta - p[r * D + j]);
        s += dy[r * D + i] * jac;
      }
      dx[r * D + j] = s;
    }
  return dx;
}

}  // namespace mmgrad::reference
