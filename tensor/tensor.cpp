// Tensor creation, metadata and element access. Nothing here records autograd history.
#include "mmgrad/tensor/tensor.h"

#include <cmath>
#include <cstring>

#include "mmgrad/core/block_pool.h"
#include "mmgrad/core/op_scope.h"
#include "mmgrad/kernels/backend.h"

namespace mmgrad {

// ---- Storage and generator ---------------------------------------------------------------------

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  data_ = backend(device).allocate(nbytes);
}

Storage::~Storage() {
  if (data_) backend(device_).deallocate(data_, nbytes_);
}

Generator& default_generator() {
  static Generator gen(0);
  return gen;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

// ---- metadata ----------------------------------------------------------------------------------

namespace {
const TensorImpl& checked(const std::shared_ptr<TensorImpl>& impl) {
  MMGRAD_CHECK(impl != nullptr, "tensor: use of an undefined tensor (default-constructed Tensor)");
  return *impl;
}
}  // namespace

const Shape& Tensor::shape() const { return checked(impl_).shape; }
const Shape& Tensor::strides() const { return checked(impl_).strides; }
int64_t Tensor::storage_offset() const { return checked(impl_).offset; }
DType Tensor::dtype() const { return checked(impl_).dtype; }
Device Tensor::device() const { return checked(impl_).storage->device(); }
const std::shared_ptr<Storage>& Tensor::storage() const { return checked(impl_).storage; }

int64_t Tensor::size(int64_t dim) const { return shape()[wrap_dim(dim, this->dim(), "size")]; }
int64_t Tensor::stride(int64_t dim) const {
  return strides()[wrap_dim(dim, this->dim(), "stride")];
}

bool Tensor::is_contiguous() const {
  const TensorImpl& t = checked(impl_);
  if (t.shape.numel() == 0)
    return true;  // no elements: any strides describe the same (empty) layout
  int64_t s = 1;
  for (int i = t.shape.size() - 1; i >= 0; --i) {
    if (t.shape[i] != 1 && t.strides[i] != s) return false;
    s *= t.shape[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  const TensorImpl& t = checked(impl_);
  return static_cast<char*>(t.storage->data()) +
         t.offset * static_cast<int64_t>(dtype_size(t.dtype));
}

Strided Tensor::desc() const {
  const TensorImpl& t = checked(impl_);
  Strided d;
  d.data = raw_data();
  d.dtype = t.dtype;
  d.ndim = t.shape.size();
  for (int i = 0; i < d.ndim; ++i) {
    d.shape[i] = t.shape[i];
    d.strides[i] = t.strides[i];
  }
  return d;
}

bool Tensor::requires_grad() const { return checked(impl_).requires_grad; }
const std::shared_ptr<Node>& Tensor::grad_fn() const { return checked(impl_).grad_fn; }
Tensor Tensor::grad() const { return checked(impl_).grad; }
void Tensor::set_grad(const Tensor& g) const {
  if (g.defined()) {
    MMGRAD_CHECK(g.shape() == shape() && g.dtype() == dtype() && g.device() == device(),
                 "set_grad: gradient ", describe(g), " does not match tensor ", describe(*this));
  }
  impl_->grad = g;
}

Tensor& Tensor::requires_grad_(bool on) {
  TensorImpl& t = const_cast<TensorImpl&>(checked(impl_));
  MMGRAD_CHECK(!on || is_floating(t.dtype),
               "requires_grad_: only floating-point tensors can require gradients, got ",
               dtype_name(t.dtype));
  MMGRAD_CHECK(t.grad_fn == nullptr,
               "requires_grad_: can only be set on leaf tensors (this one was produced by an op; "
               "use detach() to make a new leaf)");
  t.requires_grad = on;
  return *this;
}

Tensor Tensor::detach() const {
  const TensorImpl& t = checked(impl_);
  auto impl = std::allocate_shared<TensorImpl>(PoolAllocator<TensorImpl>());
  impl->storage = t.storage;
  impl->shape = t.shape;
  impl->strides = t.strides;
  impl->offset = t.offset;
  impl->dtype = t.dtype;
  return Tensor(std::move(impl));
}

const std::string& Tensor::name() const { return checked(impl_).name; }
Tensor& Tensor::set_name(const std::string& name) {
  const_cast<TensorImpl&>(checked(impl_)).name = name;
  return *this;
}

void Tensor::set_data(const Tensor& src) {
  TensorImpl& t = const_cast<TensorImpl&>(checked(impl_));
  MMGRAD_CHECK(src.defined(), "set_data: the source tensor is undefined");
  MMGRAD_CHECK(!t.requires_grad || is_floating(src.dtype()),
               "set_data: a tensor that requires grad needs floating-point data, got ",
               describe(src));
  if (impl_ == src.impl_) return;
  if (t.grad.defined() &&
      (src.shape() != t.shape || src.dtype() != t.dtype || src.device() != t.storage->device()))
    t.grad = Tensor();
  const TensorImpl& s = *src.impl_;
  t.storage = s.storage;
  t.shape = s.shape;
  t.strides = s.strides;
  t.offset = s.offset;
  t.dtype = s.dtype;
}

std::string describe(const Tensor& t) {
  if (!t.defined()) return "(undefined tensor)";
  return cat_str(t.shape().str(), " ", dtype_name(t.dtype()), " ", device_name(t.device()));
}

// ---- creation ----------------------------------------------------------------------------------

Tensor Tensor::from_storage(std::shared_ptr<Storage> storage, const Shape& shape,
                            const Shape& strides, int64_t offset, DType dtype) {
  auto impl = std::allocate_shared<TensorImpl>(PoolAllocator<TensorImpl>());
  impl->storage = std::move(storage);
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::empty(const Shape& shape, TensorOptions opts) {
  // Every tensor's memory comes from here, so this is where a size taken from a user's argument
  // or from a file is checked: the shape (no negative size, strides that fit in int64, see
  // core/shape.h), then the byte count, then the allocation itself. Each failure is an
  // mmgrad::Error naming the op (the running OpScope, e.g. "one_hot", or "empty"), the shape,
  // the dtype and the bytes: {1 << 40, 1 << 40} must be an error, not a wrapped (small)
  // allocation that later writes run past, nor a std::bad_alloc.
  const char* op = op_name_or("empty");
  check_shape(shape, op);
  int64_t nbytes = 0;
  MMGRAD_CHECK(mul_fits(shape.numel(), static_cast<int64_t>(dtype_size(opts.dtype_)), &nbytes), op,
               ": a tensor of shape ", shape.str(), " and dtype ", dtype_name(opts.dtype_),
               " is too large to allocate: ", shape.numel(), " elements of ",
               dtype_size(opts.dtype_), " bytes exceed 2^63 - 1 bytes");
  std::shared_ptr<Storage> storage;
  try {
    storage = std::allocate_shared<Storage>(PoolAllocator<Storage>(), static_cast<size_t>(nbytes),
                                            opts.device_);
  } catch (const Error& e) {
    fail(cat_str(op, ": cannot allocate a tensor of shape ", shape.str(), " and dtype ",
                 dtype_name(opts.dtype_), " (", nbytes, " bytes) on ", device_name(opts.device_),
                 ": ", e.what()));
  } catch (const std::bad_alloc&) {
    fail(cat_str(op, ": cannot allocate a tensor of shape ", shape.str(), " and dtype ",
                 dtype_name(opts.dtype_), " (", nbytes, " bytes) on ", device_name(opts.device_),
                 ": out of memory"));
  }
  auto impl = std::allocate_shared<TensorImpl>(PoolAllocator<TensorImpl>());
  impl->storage = std::move(storage);
  impl->shape = shape;
  fill_contiguous_strides(shape, impl->strides);  // the shape passed check_shape above
  impl->dtype = opts.dtype_;
  Tensor t(std::move(impl));
  if (opts.requires_grad_) t.requires_grad_(true);
  return t;
}

namespace {
// full / zeros / ones, named for errors.
Tensor full_named(const char* name, const Shape& shape, double value, TensorOptions opts) {
  OpScope scope(name);
  // An int64 tensor cannot hold 0.5 or inf (converting inf to an integer is undefined).
  MMGRAD_CHECK(
      opts.dtype_ != DType::Int64 || (value == std::trunc(value) && std::abs(value) < 9.2e18),
      op_name_or("full"), ": value ", value, " cannot be stored in an int64 tensor");
  bool rg = opts.requires_grad_;
  Tensor t = Tensor::empty(shape, opts.requires_grad(false));
  if (t.numel() > 0) backend(t.device()).fill(t.desc(), value);
  if (rg) t.requires_grad_(true);
  return t;
}
}  // namespace

Tensor Tensor::full(const Shape& shape, double value, TensorOptions opts) {
  return full_named("full", shape, value, opts);
}
Tensor Tensor::zeros(const Shape& shape, TensorOptions opts) {
  return full_named("zeros", shape, 0.0, opts);
}
Tensor Tensor::ones(const Shape& shape, TensorOptions opts) {
  return full_named("ones", shape, 1.0, opts);
}
Tensor Tensor::scalar(double value, TensorOptions opts) { return full(Shape{}, value, opts); }

namespace {
// A float64 CPU tensor [n] filled by f(i), converted to opts (dtype, device) exactly as
// from_vector converts: what arange, linspace and eye build. Allocated through Tensor::empty, so
// a huge n is a named error rather than a std::vector's bad_alloc or length_error.
template <class F>
Tensor filled_f64(int64_t n, const Shape& shape, TensorOptions opts, F f) {
  Tensor v = Tensor::empty(Shape{n}, DType::Float64);
  double* p = static_cast<double*>(v.raw_data());
  for (int64_t i = 0; i < n; ++i) p[i] = f(i);
  return detail::from_host(p, DType::Float64, n, shape, opts);
}
}  // namespace

Tensor Tensor::arange(int64_t end, TensorOptions opts) {
  return arange(0.0, double(end), 1.0, opts);
}

Tensor Tensor::arange(double start, double end, double step, TensorOptions opts) {
  OpScope scope("arange");
  MMGRAD_CHECK(step != 0.0, "arange: step must be nonzero");
  MMGRAD_CHECK((end - start) / step >= 0, "arange: no values from ", start, " to ", end,
               " with step ", step);
  const double count = std::ceil((end - start) / step);
  // 2^63 is exact in double; a count at or above it (or inf) has no int64 value.
  MMGRAD_CHECK(count < 9223372036854775808.0, "arange: ", start, " to ", end, " with step ", step,
               " gives ", count, " values, more than int64 can count");
  const int64_t n = static_cast<int64_t>(count);
  return filled_f64(n, Shape{n}, opts,
                    [&](int64_t i) { return start + step * static_cast<double>(i); });
}

Tensor Tensor::linspace(double start, double end, int64_t steps, TensorOptions opts) {
  OpScope scope("linspace");
  MMGRAD_CHECK(steps >= 1, "linspace: steps must be >= 1, got ", steps);
  return filled_f64(steps, Shape{steps}, opts, [&](int64_t i) {
    return steps == 1 ? start : start + (end - start) * double(i) / double(steps - 1);
  });
}

Tensor Tensor::eye(int64_t n, TensorOptions opts) {
  OpScope scope("eye");
  MMGRAD_CHECK(n >= 0, "eye: size must be >= 0, got ", n);
  int64_t nn = 0;
  MMGRAD_CHECK(mul_fits(n, n, &nn), "eye: size ", n, " gives ", n, " x ", n,
               " elements, more than int64 can count");
  return filled_f64(nn, Shape{n, n}, opts, [&](int64_t i) { return i / n == i % n ? 1.0 : 0.0; });
}

namespace {
Tensor random_tensor(const char* op, RandomDist dist, const Shape& shape, TensorOptions opts,
                     Generator* gen, double a, double b) {
  OpScope scope(op);
  MMGRAD_CHECK(is_floating(opts.dtype_), op, ": needs a floating dtype, got ",
               dtype_name(opts.dtype_));
  bool rg = opts.requires_grad_;
  Tensor t = Tensor::empty(shape, opts.requires_grad(false));
  Generator& g = gen ? *gen : default_generator();
  uint64_t offset = g.advance(static_cast<uint64_t>(t.numel()));
  if (t.numel() > 0) backend(t.device()).random(dist, t.desc(), g.seed(), offset, a, b);
  if (rg) t.requires_grad_(true);
  return t;
}
}  // namespace

Tensor Tensor::randn(const Shape& shape, TensorOptions opts, Generator* gen) {
  return random_tensor("randn", RandomDist::Normal, shape, opts, gen, 0.0, 1.0);
}

Tensor Tensor::rand(const Shape& shape, TensorOptions opts, Generator* gen) {
  return random_tensor("rand", RandomDist::Uniform, shape, opts, gen, 0.0, 1.0);
}

Tensor Tensor::randint(int64_t low, int64_t high, const Shape& shape, TensorOptions opts,
                       Generator* gen) {
  OpScope scope("randint");
  MMGRAD_CHECK(high > low, "randint: empty range [", low, ", ", high, ")");
  MMGRAD_CHECK(static_cast<uint64_t>(high) - static_cast<uint64_t>(low) <= (uint64_t{1} << 53),
               "randint: range [", low, ", ", high, ") is wider than 2^53 values");
  // Uniform doubles in [0, high - low) (the kernel keeps the interval half-open), truncated to
  // int64 (= floor, as they are >= 0), then shifted by low in exact integer arithmetic. Shifting
  // in double instead could round a value up to high - low for wide ranges. Exact for ranges
  // far below 2^53.
  Tensor u = random_tensor("randint", RandomDist::Uniform, shape,
                           TensorOptions(DType::Float64).device(opts.device_), gen, 0.0,
                           static_cast<double>(high - low));
  Tensor out = Tensor::empty(shape, TensorOptions(DType::Int64).device(opts.device_));
  if (out.numel() > 0) {
    Backend& be = backend(out.device());
    be.copy(u.desc(), out.desc());
    if (low != 0)
      be.unary(UnaryOp::AddScalar, out.desc(), out.desc(), static_cast<double>(low), 0.0);
  }
  // Other dtypes (randint(0, 10, shape, kFloat32)) get the same integers, converted.
  if (opts.dtype_ != DType::Int64) {
    Tensor conv = Tensor::empty(shape, TensorOptions(opts.dtype_).device(opts.device_));
    if (out.numel() > 0) backend(out.device()).copy(out.desc(), conv.desc());
    out = conv;
  }
  if (opts.requires_grad_) out.requires_grad_(true);
  return out;
}

namespace detail {

Tensor from_host(const void* data, DType src_dtype, int64_t n, const Shape& shape,
                 TensorOptions opts) {
  MMGRAD_CHECK(shape.numel() == n, "from_vector: ", n, " values do not fill shape ", shape.str(),
               " (", shape.numel(), " elements)");
  bool rg = opts.requires_grad_;
  // Build on the CPU in the source dtype, convert, then move to the device.
  Tensor src = Tensor::empty(shape, TensorOptions(src_dtype));
  if (n > 0) std::memcpy(src.raw_data(), data, static_cast<size_t>(n) * dtype_size(src_dtype));
  Tensor host = src;
  if (opts.dtype_ != src_dtype) {
    host = Tensor::empty(shape, TensorOptions(opts.dtype_));
    if (n > 0) backend(Device::CPU).copy(src.desc(), host.desc());
  }
  Tensor out = host;
  if (opts.device_ != Device::CPU) {
    out = Tensor::empty(shape, TensorOptions(opts.dtype_).device(opts.device_));
    backend(opts.device_)
        .copy_from_host(out.raw_data(), host.raw_data(),
                        static_cast<size_t>(n) * dtype_size(opts.dtype_));
  }
  if (rg) out.requires_grad_(true);
  return out;
}

void to_host(const Tensor& t, void* out, DType out_dtype) {
  // A contiguous CPU copy in out_dtype, then memcpy.
  Tensor src = t;
  if (t.device() != Device::CPU) {
    Tensor dense = Tensor::empty(t.shape(), TensorOptions(t.dtype()).device(t.device()));
    if (t.numel() > 0) backend(t.device()).copy(t.desc(), dense.desc());
    src = Tensor::empty(t.shape(), TensorOptions(t.dtype()));
    backend(t.device())
        .copy_to_host(src.raw_data(), dense.raw_data(),
                      static_cast<size_t>(t.numel()) * t.element_size());
  }
  Tensor host =
      Tensor::from_storage(std::make_shared<Storage>(
                               static_cast<size_t>(t.numel()) * dtype_size(out_dtype), Device::CPU),
                           t.shape(), contiguous_strides(t.shape()), 0, out_dtype);
  if (t.numel() > 0) backend(Device::CPU).copy(src.desc(), host.desc());
  if (t.numel() > 0)
    std::memcpy(out, host.raw_data(), static_cast<size_t>(t.numel()) * dtype_size(out_dtype));
}

}  // namespace detail

// ---- element access ----------------------------------------------------------------------------

double Tensor::item() const {
  MMGRAD_CHECK(numel() == 1, "item: needs a tensor with exactly one element, got shape ",
               shape().str());
  double v = 0;
  detail::to_host(*this, &v, DType::Float64);
  return v;
}

double Tensor::at(std::initializer_list<int64_t> index) const {
  MMGRAD_CHECK(static_cast<int>(index.size()) == dim(), "at: ", index.size(),
               " indices for a tensor of shape ", shape().str());
  int64_t off = storage_offset();
  int d = 0;
  for (int64_t i : index) {
    int64_t n = shape()[d];
    MMGRAD_CHECK(i >= -n && i < n, "at: index ", i, " is out of range for dimension ", d,
                 " of size ", n);
    off += (i < 0 ? i + n : i) * strides()[d];
    ++d;
  }
  Tensor one = from_storage(storage(), Shape{}, Shape{}, off, dtype());
  return one.item();
}

// ---- *_like ------------------------------------------------------------------------------------

Tensor zeros_like(const Tensor& t, TensorOptions opts) { return Tensor::zeros(t.shape(), opts); }
Tensor zeros_like(const Tensor& t) { return Tensor::zeros(t.shape(), t.options()); }
Tensor ones_like(const Tensor& t) { return Tensor::ones(t.shape(), t.options()); }
Tensor empty_like(const Tensor& t) { return Tensor::empty(t.shape(), t.options()); }
Tensor full_like(const Tensor& t, double value) {
  return Tensor::full(t.shape(), value, t.options());
}
Tensor randn_like(const Tensor& t, Generator* gen) {
  return Tensor::randn(t.shape(), t.options(), gen);
}
Tensor rand_like(const Tensor& t, Generator* gen) {
  return Tensor::rand(t.shape(), t.options(), gen);
}

}  // namespace mmgrad
