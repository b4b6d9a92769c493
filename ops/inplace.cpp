// In-place updates: copy_, fill_, add_, mul_. They are not recorded by autograd. Like PyTorch,
// they refuse to modify a tensor that requires grad while grad mode is on (do optimizer updates
// under NoGradGuard), and they bump the storage version so a tensor saved for backward that was
// changed afterwards is detected (autograd/node.h, SavedTensor).
#include "mmgrad/ops/common.h"

namespace mmgrad {
namespace {

void check_writable(const char* op, const Tensor& t) {
  check_defined(op, t, "self");
  MMGRAD_CHECK(!(GradMode::is_enabled() && t.requires_grad()), op,
               ": in-place update of a tensor that requires grad (", describe(t),
               "); wrap the update in a NoGradGuard, as optimizers do");
  // An expanded view has several elements sharing one memory cell: writing is ambiguous.
  for (int d = 0; d < t.dim(); ++d)
    MMGRAD_CHECK(t.stride(d) != 0 || t.size(d) <= 1, op,
                 ": cannot write in place into an expanded (broadcast) view of shape ",
                 t.shape().str());
}

// `src` moved to t's device (dtype kept) and read as broadcast to t's shape.
Strided source_for(const char* op, const Tensor& t, const Tensor& src, Tensor* holder) {
  check_defined(op, src, "src");
  Shape s = broadcast_shapes(op, t.shape(), src.shape());
  MMGRAD_CHECK(s == t.shape(), op, ": source of shape ", src.shape().str(),
               " does not broadcast to the destination's shape ", t.shape().str());
  *holder = src.device() == t.device() ? src : src.detach().to(t.device());
  // Reading and writing the same memory through different layouts (x.copy_(x.t())) would read
  // elements already overwritten: read from a copy instead. (Same layout is a plain in-place map.)
  const Tensor& h = *holder;
  if (h.storage() == t.storage() && !(h.storage_offset() == t.storage_offset() &&
                                      h.shape() == t.shape() && h.strides() == t.strides())) {
    Tensor tmp = Tensor::empty(h.shape(), h.options());
    if (h.numel() > 0) backend(h.device()).copy(h.desc(), tmp.desc());
    *holder = tmp;
  }
  return broadcast_desc(*holder, t.shape());
}

}  // namespace

Tensor& Tensor::copy_(const Tensor& src) {
  check_writable("copy_", *this);
  Tensor holder;
  Strided s = source_for("copy_", *this, src, &holder);
  if (numel() > 0) backend(device()).copy(s, desc());
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::fill_(double value) {
  check_writable("fill_", *this);
  if (numel() > 0) backend(device()).fill(desc(), value);
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  check_writable("add_", *this);
  Tensor holder;
  Strided s = source_for("add_", *this, other, &holder);
  MMGRAD_CHECK(holder.dtype() == dtype(), "add_: dtypes differ: ", describe(*this), " and ",
               describe(other));
  if (numel() > 0) {
    Backend& be = backend(device());
    if (alpha == 1.0) {
      be.binary(BinaryOp::Add, desc(), s, desc());
    } else {
      Tensor scaled = Tensor::empty(shape(), options());
      Strided sd = scaled.desc();
      be.unary(UnaryOp::MulScalar, s, sd, alpha, 0.0);
      be.binary(BinaryOp::Add, desc(), sd, desc());
    }
  }
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::mul_(double factor) {
  check_writable("mul_", *this);
  MMGRAD_CHECK(dtype() != DType::Bool, "mul_: not supported for bool tensors");
  if (numel() > 0) backend(device()).unary(UnaryOp::MulScalar, desc(), desc(), factor, 0.0);
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::mul_(const Tensor& other) {
  check_writable("mul_", *this);
  Tensor holder;
  Strided s = source_for("mul_", *this, other, &holder);
  MMGRAD_CHECK(holder.dtype() == dtype(), "mul_: dtypes differ: ", describe(*this), " and ",
               describe(other));
  if (numel() > 0) backend(device()).binary(BinaryOp::Mul, desc(), s, desc());
  storage()->bump_version();
  return *this;
}

}  // namespace mmgrad
