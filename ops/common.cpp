#include "mmgrad/ops/common.h"

namespace mmgrad {

void check_defined(const char* op, const Tensor& t, const char* arg) {
  MMGRAD_CHECK(t.defined(), op, ": argument '", arg, "' is an undefined tensor");
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  MMGRAD_CHECK(a.device() == b.device(), op, ": expected all tensors on the same device, got ",
               describe(a), " and ", describe(b), " (move one with .to(device))");
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  MMGRAD_CHECK(a.dtype() == b.dtype(), op, ": expected tensors of the same dtype, got ",
               describe(a), " and ", describe(b), " (convert one with .to(dtype))");
}

void check_floating(const char* op, const Tensor& t, const char* arg) {
  check_defined(op, t, arg);
  MMGRAD_CHECK(t.is_floating_point(), op, ": expected a floating-point tensor for '", arg,
               "', got ", describe(t));
}

void check_dtype(const char* op, const Tensor& t, DType want, const char* arg) {
  check_defined(op, t, arg);
  MMGRAD_CHECK(t.dtype() == want, op, ": expected '", arg, "' of dtype ", dtype_name(want),
               ", got ", describe(t));
}

void check_dim(const char* op, const Tensor& t, int want, const char* arg) {
  check_defined(op, t, arg);
  MMGRAD_CHECK(t.dim() == want, op, ": expected '", arg, "' with ", want, " dimensions, got shape ",
               t.shape().str());
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  int n = std::max(a.size(), b.size());
  Shape out;
  out.resize(n);
  for (int i = 0; i < n; ++i) {
    int ia = a.size() - n + i, ib = b.size() - n + i;
    int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    MMGRAD_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", a.str(), " and ", b.str(),
                 " cannot be broadcast together (dimension ", i - n, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Strided broadcast_desc(const Tensor& t, const Shape& shape) {
  Strided d = t.desc();
  Strided r;
  r.data = d.data;
  r.dtype = d.dtype;
  r.ndim = shape.size();
  int lead = shape.size() - d.ndim;
  for (int i = 0; i < r.ndim; ++i) {
    r.shape[i] = shape[i];
    int j = i - lead;
    r.strides[i] = (j >= 0 && d.shape[j] == shape[i]) ? d.strides[j] : 0;
  }
  return r;
}

}  // namespace mmgrad
