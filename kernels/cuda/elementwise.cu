// Elementwise kernels: fill, copy (with dtype conversion), unary maps, broadcasting binary ops
// and where. One generic strided kernel (cuda_common.cuh) walks every operand; a functor holds
// the typed pointers and applies the per-element formula of element_ops.h.
#include <cuda_runtime.h>

#include "mmgrad/kernels/cuda/cuda_common.cuh"

namespace mmgrad::cuda {
namespace {

template <class T>
struct FillF {
  T* o;
  T v;
  __device__ void operator()(const int64_t* off) const { o[off[0]] = v; }
};

template <class To, class Ti>
struct CopyF {
  To* o;
  const Ti* a;
  __device__ void operator()(const int64_t* off) const {
    o[off[0]] = elem::convert<To, Ti>(a[off[1]]);
  }
};

template <UnaryOp OP, class T>
struct UnaryF {
  T* o;
  const T* x;
  T a, b;
  __device__ void operator()(const int64_t* off) const {
    o[off[0]] = elem::unary_fn<OP, T>(x[off[1]], a, b);
  }
};

template <BinaryOp OP, class T>
struct BinaryF {
  elem::binary_result_t<OP, T>* o;
  const T* x;
  const T* y;
  __device__ void operator()(const int64_t* off) const {
    o[off[0]] = elem::binary_fn<OP, T>(x[off[1]], y[off[2]]);
  }
};

template <class T>
struct WhereF {
  T* o;
  const uint8_t* c;
  const T* x;
  const T* y;
  __device__ void operator()(const int64_t* off) const {
    o[off[0]] = c[off[1]] ? x[off[2]] : y[off[3]];
  }
};

// y = op(x) for float32, float64 and int64; the scalars and the formula are elem::'s, as on the
// CPU.
template <class T>
void unary_typed(UnaryOp op, const Strided& in, const Strided& out, double alpha, double beta) {
  const elem::UnaryScalars<T> s = elem::unary_scalars<T>(op, alpha, beta);
  elem::dispatch_unary(op, [&](auto c) {
    constexpr UnaryOp OP = decltype(c)::value;
    if constexpr (std::is_floating_point_v<T> || elem::unary_supports_int(OP)) {
      const Strided* ops[2] = {&out, &in};
      launch_elementwise<2>("unary op", ops, UnaryF<OP, T>{out.ptr<T>(), in.ptr<T>(), s.a, s.b});
    } else {
      fail("unary op: this operation needs a floating-point tensor, got int64");
    }
  });
}

template <class T>
void binary_typed(BinaryOp op, const Strided& a, const Strided& b, const Strided& out) {
  elem::dispatch_binary(op, [&](auto c) {
    constexpr BinaryOp OP = decltype(c)::value;
    if constexpr (elem::binary_supported<OP, T>()) {
      using To = elem::binary_result_t<OP, T>;
      const Strided* ops[3] = {&out, &a, &b};
      launch_elementwise<3>("binary op", ops,
                            BinaryF<OP, T>{out.ptr<To>(), a.ptr<T>(), b.ptr<T>()});
    } else {
      fail(cat_str("binary op: not supported for dtype ", dtype_name(a.dtype)));
    }
  });
}

}  // namespace

void CudaBackend::fill(const Strided& out, double value) {
  dispatch_all(out.dtype, [&](auto t) {
    using T = decltype(t);
    const Strided* ops[1] = {&out};
    // elem::convert: bool stores 1 for every nonzero value, as on the CPU
    launch_elementwise<1>("fill", ops, FillF<T>{out.ptr<T>(), elem::convert<T, double>(value)});
  });
}

void CudaBackend::copy(const Strided& src, const Strided& out) {
  check_same_shapes<2>("copy", {&out, &src});
  if (src.dtype == out.dtype && src.is_contiguous() && out.is_contiguous()) {
    // Same layout: one device-to-device copy.
    const size_t nbytes = static_cast<size_t>(src.numel()) * dtype_size(src.dtype);
    if (nbytes)
      check_cuda(cudaMemcpyAsync(out.data, src.data, nbytes, cudaMemcpyDeviceToDevice, 0),
                 "copy (cudaMemcpyAsync device -> device)");
    return;
  }
  dispatch_all(out.dtype, [&](auto to) {
    using To = decltype(to);
    dispatch_all(src.dtype, [&](auto ti) {
      using Ti = decltype(ti);
      const Strided* ops[2] = {&out, &src};
      launch_elementwise<2>("copy", ops, CopyF<To, Ti>{out.ptr<To>(), src.ptr<Ti>()});
    });
  });
}

void CudaBackend::unary(UnaryOp op, const Strided& in, const Strided& out, double alpha,
                        double beta) {
  MMGRAD_CHECK(in.dtype == out.dtype, "unary op: input dtype ", dtype_name(in.dtype),
               " differs from the output's ", dtype_name(out.dtype));
  switch (in.dtype) {
    case DType::Float32:
      return unary_typed<float>(op, in, out, alpha, beta);
    case DType::Float64:
      return unary_typed<double>(op, in, out, alpha, beta);
    case DType::Int64:
      return unary_typed<int64_t>(op, in, out, alpha, beta);
    case DType::Bool:
      fail("unary op: not supported for bool tensors");
  }
}

void CudaBackend::binary(BinaryOp op, const Strided& a, const Strided& b, const Strided& out) {
  // The kernel reads and writes with the C++ types these imply: a mismatch would corrupt memory.
  const DType want = elem::binary_writes_bool(op) ? DType::Bool : a.dtype;
  MMGRAD_CHECK(a.dtype == b.dtype && out.dtype == want, "binary op: dtypes ", dtype_name(a.dtype),
               ", ", dtype_name(b.dtype), " -> ", dtype_name(out.dtype), " do not fit the op");
  switch (a.dtype) {
    case DType::Float32:
      return binary_typed<float>(op, a, b, out);
    case DType::Float64:
      return binary_typed<double>(op, a, b, out);
    case DType::Int64:
      return binary_typed<int64_t>(op, a, b, out);
    case DType::Bool:
      return binary_typed<uint8_t>(op, a, b, out);
  }
}

void CudaBackend::where(const Strided& cond, const Strided& a, const Strided& b,
                        const Strided& out) {
  MMGRAD_CHECK(cond.dtype == DType::Bool && a.dtype == out.dtype && b.dtype == out.dtype,
               "where: expected a bool condition and values of the output's dtype, got ",
               dtype_name(cond.dtype), ", ", dtype_name(a.dtype), ", ", dtype_name(b.dtype), " -> ",
               dtype_name(out.dtype));
  dispatch_all(out.dtype, [&](auto t) {
    using T = decltype(t);
    const Strided* ops[4] = {&out, &cond, &a, &b};
    launch_elementwise<4>("where", ops,
                          WhereF<T>{out.ptr<T>(), cond.ptr<uint8_t>(), a.ptr<T>(), b.ptr<T>()});
  });
}

}  // namespace mmgrad::cuda
