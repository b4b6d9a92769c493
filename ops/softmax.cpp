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
#include "ops/softmax.h"

#include "ops/common.h"

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
          .softmax_backward(yv.dtype(), yv.raw_data(), gc.raw_data(), gx.raw_data(), outer, dim,
                            inner, log);
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
        .softmax_forward(x.dtype(), xc.raw_data(), out.raw_data(), outer, n, inner, log);
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
