// Copies and conversions, differentiable: contiguous(), clone(), to(dtype), to(device).
// The gradient of a copy is the gradient itself, converted back to the input's dtype/device.
#include "mmgrad/ops/common.h"

namespace mmgrad {
namespace {

// A contiguous copy of x on `device` with dtype `dtype` (no autograd).
Tensor copy_kernel(const Tensor& x, DType dtype, Device device) {
  Tensor out = Tensor::empty(x.shape(), TensorOptions(dtype).device(device));
  if (x.numel() == 0) return out;
  if (device == x.device()) {
    backend(device).copy(x.desc(), out.desc());
    return out;
  }
  // Across devices: make it dense in the source dtype on the source device, move the bytes,
  // then convert on the destination.
  Tensor dense = x;
  if (!x.is_contiguous()) {
    dense = Tensor::empty(x.shape(), x.options());
    backend(x.device()).copy(x.desc(), dense.desc());
  }
  Tensor moved = Tensor::empty(x.shape(), TensorOptions(x.dtype()).device(device));
  size_t nbytes = static_cast<size_t>(x.numel()) * x.element_size();
  if (device == Device::CPU)
    backend(x.device()).copy_to_host(moved.raw_data(), dense.raw_data(), nbytes);
  else
    backend(device).copy_from_host(moved.raw_data(), dense.raw_data(), nbytes);
  if (dtype == x.dtype()) return moved;
  backend(device).copy(moved.desc(), out.desc());
  return out;
}

}  // namespace

struct CopyBackward : Node {
  Device in_device = Device::CPU;
  const char* op_name = "clone";
  const char* name() const override { return op_name; }
  std::vector<Tensor> backward(const Tensor& g) override {
    if (g.dtype() == input_dtypes[0] && g.device() == in_device) return {g};
    return {copy_kernel(g, input_dtypes[0], in_device)};
  }
};

namespace {
Tensor copy_op(const char* name, const Tensor& x, DType dtype, Device device) {
  Tensor out = copy_kernel(x, dtype, device);
  if (is_floating(dtype)) {  // no gradient flows into integer results
    if (auto node = make_node<CopyBackward>(out, {x})) {
      node->in_device = x.device();
      node->op_name = name;
    }
  }
  return out;
}
}  // namespace

Tensor Tensor::contiguous() const {
  check_defined("contiguous", *this);
  if (is_contiguous()) return *this;
  return copy_op("contiguous", *this, dtype(), device());
}

Tensor Tensor::clone() const {
  check_defined("clone", *this);
  return copy_op("clone", *this, dtype(), device());
}

Tensor Tensor::to(DType dtype) const {
  check_defined("to", *this);
  if (dtype == this->dtype()) return *this;
  return copy_op("to_dtype", *this, dtype, device());
}

Tensor Tensor::to(Device device) const {
  check_defined("to", *this);
  if (device == this->device()) return *this;
  backend(device);  // a clear error when the device is unavailable
  return copy_op("to_device", *this, dtype(), device);
}

}  // namespace mmgrad
