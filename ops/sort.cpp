// sort and topk along any dimension (no gradient).
//
// The kernel sorts the rows of a contiguous [rows, n] buffer, so the sorted dimension is moved
// last (a transpose view, then one contiguous copy), sorted, and moved back. Sorting is stable:
// equal values keep their input order, so the indices are deterministic. NaN counts as larger
// than every number (last in ascending order, first in descending), as in PyTorch.
#include "mmgrad/ops/sort.h"

#include "mmgrad/ops/common.h"

namespace mmgrad {
namespace {

SortResult sort_along(const char* op, const Tensor& x, int64_t dim, int64_t k_or_all,
                      bool descending) {
  check_defined(op, x, "input");
  const bool scalar = x.dim() == 0;
  Tensor xs = scalar ? x.detach().reshape({1}) : x.detach();
  const int d = wrap_dim(dim, xs.dim(), op);
  const int last = xs.dim() - 1;
  const int64_t n = xs.size(d);
  const int64_t k = k_or_all < 0 ? n : k_or_all;
  MMGRAD_CHECK(k >= 0 && k <= n, op, ": k = ", k_or_all, " is out of range for dimension ", d,
               " of size ", n, " (input ", x.shape().str(), "; expected 0 <= k <= ", n, ")");

  Tensor rows = (d == last ? xs : xs.transpose(d, last)).contiguous();
  Shape out_shape = rows.shape();
  out_shape[last] = k;
  SortResult r;
  r.values = empty_as(x, out_shape);
  r.indices = Tensor::empty(out_shape, TensorOptions(DType::Int64).device(x.device()));
  if (r.values.numel() > 0)
    backend(x.device())
        .sort_rows(x.dtype(), rows.raw_data(), r.values.raw_data(), r.indices.data_ptr<int64_t>(),
                   rows.numel() / n, n, k, descending);
  if (d != last) {
    r.values = r.values.transpose(d, last).contiguous();
    r.indices = r.indices.transpose(d, last).contiguous();
  }
  if (scalar && k == 1) {
    r.values = r.values.reshape({});
    r.indices = r.indices.reshape({});
  }
  return r;
}

}  // namespace

SortResult sort(const Tensor& x, int64_t dim, bool descending) {
  return sort_along("sort", x, dim, -1, descending);
}

SortResult topk(const Tensor& x, int64_t k, int64_t dim, bool largest) {
  MMGRAD_CHECK(k >= 0, "topk: k must be >= 0, got ", k);
  return sort_along("topk", x, dim, k, largest);
}

}  // namespace mmgrad
