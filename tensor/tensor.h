// Tensor: a cheap handle to shared storage plus shape, strides, offset, dtype, device and
// autograd metadata.
//
// Copying a Tensor copies the handle (both refer to the same data, as in PyTorch). Views
// (transpose, narrow, reshape of a contiguous tensor, expand, ...) make a new handle over the
// same storage with other strides. Methods that compute (sum, exp, matmul, ...) are thin
// forwards to the ops in ops/, where each op's forward, backward and shape rules live together.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

#include "mmgrad/core/dtype.h"
#include "mmgrad/core/error.h"
#include "mmgrad/core/shape.h"
#include "mmgrad/core/strided.h"
#include "mmgrad/tensor/generator.h"
#include "mmgrad/tensor/storage.h"

namespace mmgrad {

class Node;  // autograd/node.h
struct TensorImpl;

// What to create: dtype, device and requires_grad. Converts implicitly from a DType or a Device,
// so Tensor::zeros({2, 3}, kFloat64) and Tensor::zeros({2, 3}, kCUDA) both read naturally.
struct TensorOptions {
  DType dtype_ = DType::Float32;
  Device device_ = Device::CPU;
  bool requires_grad_ = false;

  TensorOptions() = default;
  TensorOptions(DType d) : dtype_(d) {}    // NOLINT(google-explicit-constructor)
  TensorOptions(Device d) : device_(d) {}  // NOLINT(google-explicit-constructor)
  TensorOptions dtype(DType d) const {
    TensorOptions o = *this;
    o.dtype_ = d;
    return o;
  }
  TensorOptions device(Device d) const {
    TensorOptions o = *this;
    o.device_ = d;
    return o;
  }
  TensorOptions requires_grad(bool r = true) const {
    TensorOptions o = *this;
    o.requires_grad_ = r;
    return o;
  }
};

// The exact dtype of a C++ element type (data_ptr<T> insists on it; int is not int64).
template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>)
    return DType::Float32;
  else if constexpr (std::is_same_v<T, double>)
    return DType::Float64;
  else if constexpr (std::is_same_v<T, int64_t>)
    return DType::Int64;
  else if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, uint8_t>)
    return DType::Bool;
  else
    static_assert(sizeof(T) == 0, "unsupported element type");
}

// The dtype from_vector gives host values of type T: other integer types (int, int32_t, ...)
// are stored as int64.
template <class T>
constexpr DType host_dtype_of() {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, uint8_t>)
    return DType::Int64;
  else
    return dtype_of<T>();
}

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation (tensor/tensor.cpp) -------------------------------------------------------
  static Tensor empty(const Shape& shape, TensorOptions opts = {});
  static Tensor zeros(const Shape& shape, TensorOptions opts = {});
  static Tensor ones(const Shape& shape, TensorOptions opts = {});
  static Tensor full(const Shape& shape, double value, TensorOptions opts = {});
  // A 0-dimensional tensor holding one value.
  static Tensor scalar(double value, TensorOptions opts = {});
  // [0, end), [start, end) with step; int64 unless opts says otherwise.
  static Tensor arange(int64_t end, TensorOptions opts = DType::Int64);
  static Tensor arange(double start, double end, double step = 1.0,
                       TensorOptions opts = DType::Int64);
  static Tensor linspace(double start, double end, int64_t steps, TensorOptions opts = {});
  static Tensor eye(int64_t n, TensorOptions opts = {});
  // Standard normal / uniform [0, 1) / integers in [low, high), from gen (default generator).
  static Tensor randn(const Shape& shape, TensorOptions opts = {}, Generator* gen = nullptr);
  static Tensor rand(const Shape& shape, TensorOptions opts = {}, Generator* gen = nullptr);
  static Tensor randint(int64_t low, int64_t high, const Shape& shape,
                        TensorOptions opts = DType::Int64, Generator* gen = nullptr);
  // Copies values (row-major) into a new tensor of the given shape (1-D when shape is empty).
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape = {},
                            TensorOptions opts = host_dtype_of<T>());
  static Tensor from_vector(std::initializer_list<double> values, const Shape& shape = {},
                            TensorOptions opts = {}) {
    return from_vector(std::vector<double>(values), shape, opts);
  }
  // Wraps existing memory of this device with the given layout (no copy).
  static Tensor from_storage(std::shared_ptr<Storage> storage, const Shape& shape,
                             const Shape& strides, int64_t offset, DType dtype);

  // ---- metadata -------------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& sizes() const { return shape(); }
  int64_t size(int64_t dim) const;
  int dim() const { return shape().size(); }
  int64_t numel() const { return shape().numel(); }
  const Shape& strides() const;
  int64_t stride(int64_t dim) const;
  int64_t storage_offset() const;
  DType dtype() const;
  Device device() const;
  TensorOptions options() const { return TensorOptions(dtype()).device(device()); }
  bool is_cuda() const { return device() == Device::CUDA; }
  bool is_floating_point() const { return is_floating(dtype()); }
  bool is_contiguous() const;
  size_t element_size() const { return dtype_size(dtype()); }
  const std::shared_ptr<Storage>& storage() const;
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }
  // The kernel view of this tensor (data pointer at the first element).
  Strided desc() const;

  // ---- element access (tensor/tensor.cpp) -----------------------------------------------------
  void* raw_data() const;  // address of the first element
  template <class T>
  T* data_ptr() const {
    MMGRAD_CHECK(dtype() == dtype_of<T>(), "data_ptr: tensor has dtype ", dtype_name(dtype()),
                 ", asked for ", dtype_name(dtype_of<T>()));
    return static_cast<T*>(raw_data());
  }
  // The single value of a one-element tensor.
  double item() const;
  template <class T>
  T item() const {
    return static_cast<T>(item());
  }
  // One element by index (negative indices count from the end).
  double at(std::initializer_list<int64_t> index) const;
  // All values, row-major, converted to T (copies from the GPU when needed).
  template <class T>
  std::vector<T> to_vector() const;

  // ---- copies and conversion (ops/copy.cpp; differentiable) ----------------------------------
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  Tensor cpu() const { return to(Device::CPU); }
  Tensor cuda() const { return to(Device::CUDA); }

  // ---- in-place (tensor/tensor.cpp; not recorded by autograd) --------------------------------
  Tensor& copy_(const Tensor& src);  // broadcasts src, converts dtype, crosses devices
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }
  Tensor& add_(const Tensor& other, double alpha = 1.0);  // this += alpha * other
  Tensor& mul_(double factor);
  Tensor& mul_(const Tensor& other);

  // ---- autograd (tensor/tensor.cpp, autograd/engine.cpp) --------------------------------------
  bool requires_grad() const;
  // Marks a leaf tensor as a parameter to differentiate with respect to.
  Tensor& requires_grad_(bool on = true);
  // Accumulated gradient (undefined until a backward pass reaches this tensor).
  Tensor grad() const;
  void set_grad(const Tensor& g) const;
  const std::shared_ptr<Node>& grad_fn() const;
  bool is_leaf() const { return grad_fn() == nullptr; }
  // Keep .grad() for this non-leaf tensor during the next backward pass.
  void retain_grad() const;
  // A new handle to the same data, cut out of the graph.
  Tensor detach() const;
  // Backpropagates from this tensor: one-element tensors need no gradient; others need one
  // of the same shape. The graph is freed afterwards unless retain_graph.
  void backward(bool retain_graph = false) const;
  void backward(const Tensor& gradient, bool retain_graph = false) const;
  // A name shown in graph drawings (modules set "fc1.weight" on their parameters).
  const std::string& name() const;
  Tensor& set_name(const std::string& name);
  // Rebinds this tensor's data to src's (storage, shape, strides, offset, dtype) in place, so
  // every handle to it sees the change (how Module::to moves parameters an optimizer holds).
  // requires_grad and name are kept; .grad is dropped if the shape, dtype or device changes.
  void set_data(const Tensor& src);

  // ---- views (ops/shape.cpp) ------------------------------------------------------------------
  Tensor view(const Shape& shape) const;     // needs compatible strides; -1 infers one dim
  Tensor reshape(const Shape& shape) const;  // a view when possible, else a copy
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor t() const;  // transpose of a 2-D tensor
  Tensor permute(const Shape& dims) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor operator[](int64_t index) const { return select(0, index); }
  Tensor expand(const Shape& shape) const;  // -1 keeps a dim; new leading dims allowed
  Tensor expand_as(const Tensor& other) const { return expand(other.shape()); }
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;

  // ---- math (ops/elementwise.cpp, ops/reduce.cpp, ops/matmul.cpp, ...) -----------------------
  Tensor neg() const;
  Tensor exp() const;
  Tensor log() const;
  Tensor sqrt() const;
  Tensor abs() const;
  Tensor pow(double exponent) const;
  Tensor pow(const Tensor& exponent) const;
  Tensor square() const;
  Tensor clamp(double min, double max) const;
  Tensor relu() const;
  Tensor gelu() const;
  Tensor sigmoid() const;
  Tensor tanh() const;
  Tensor sum() const;
  Tensor sum(const Shape& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const Shape& dims, bool keepdim = false) const;
  Tensor max() const;
  Tensor max(int64_t dim, bool keepdim = false) const;
  Tensor min() const;
  Tensor min(int64_t dim, bool keepdim = false) const;
  Tensor var(const Shape& dims, int64_t correction = 1, bool keepdim = false) const;
  Tensor argmax(int64_t dim, bool keepdim = false) const;
  Tensor argmin(int64_t dim, bool keepdim = false) const;
  Tensor matmul(const Tensor& other) const;
  Tensor softmax(int64_t dim) const;
  Tensor log_softmax(int64_t dim) const;
  Tensor masked_fill(const Tensor& mask, double value) const;
  Tensor eq(const Tensor& other) const;
  Tensor ne(const Tensor& other) const;
  Tensor lt(const Tensor& other) const;
  Tensor le(const Tensor& other) const;
  Tensor gt(const Tensor& other) const;
  Tensor ge(const Tensor& other) const;
  Tensor eq(double v) const;
  Tensor lt(double v) const;
  Tensor gt(double v) const;

  // ---- printing (tensor/print.cpp) ------------------------------------------------------------
  std::string str() const;
  std::string shape_str() const { return shape().str(); }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// The state behind a Tensor handle.
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;
  int64_t offset = 0;  // in elements
  DType dtype = DType::Float32;

  // autograd
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // the op that produced this tensor (null for leaves)
  Tensor grad;                    // accumulated gradient of a leaf (or retained non-leaf)
  std::string name;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// "[2, 3] float32 cpu": how error messages describe a tensor.
std::string describe(const Tensor& t);

// ---- creation helpers (PyTorch names) ----------------------------------------------------------
Tensor zeros_like(const Tensor& t, TensorOptions opts);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor empty_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor randn_like(const Tensor& t, Generator* gen = nullptr);
Tensor rand_like(const Tensor& t, Generator* gen = nullptr);

// ---- template definitions ----------------------------------------------------------------------
namespace detail {
// The name of the op a Node stands for ("mul", "matmul"), for printing grad_fn=<mul>. Defined in
// autograd/engine.cpp: Node is only declared here, so the tensor layer never includes autograd/
// (dependencies point one way, from autograd down to tensor).
const char* node_name(const Node& node);
Tensor from_host(const void* data, DType src_dtype, int64_t n, const Shape& shape,
                 TensorOptions opts);
void to_host(const Tensor& t, void* out, DType out_dtype);
}  // namespace detail

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, TensorOptions opts) {
  Shape s = shape.empty() ? Shape{static_cast<int64_t>(values.size())} : shape;
  if constexpr (std::is_same_v<T, bool>) {
    std::vector<uint8_t> b(values.begin(), values.end());
    return detail::from_host(b.data(), DType::Bool, static_cast<int64_t>(b.size()), s, opts);
  } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, int64_t> &&
                       !std::is_same_v<T, uint8_t>) {
    std::vector<int64_t> b(values.begin(), values.end());
    return detail::from_host(b.data(), DType::Int64, static_cast<int64_t>(b.size()), s, opts);
  } else {
    return detail::from_host(values.data(), dtype_of<T>(), static_cast<int64_t>(values.size()), s,
                             opts);
  }
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  std::vector<T> out(static_cast<size_t>(numel()));
  if constexpr (std::is_same_v<T, bool>) {
    std::vector<uint8_t> b(out.size());
    detail::to_host(*this, b.data(), DType::Bool);
    for (size_t i = 0; i < b.size(); ++i) out[i] = b[i] != 0;
  } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, int64_t> &&
                       !std::is_same_v<T, uint8_t>) {
    std::vector<int64_t> b(out.size());
    detail::to_host(*this, b.data(), DType::Int64);
    for (size_t i = 0; i < b.size(); ++i) out[i] = static_cast<T>(b[i]);
  } else {
    detail::to_host(*this, out.data(), dtype_of<T>());
  }
  return out;
}

}  // namespace mmgrad
