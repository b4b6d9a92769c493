// Elementwise kernels: fill, copy (with dtype conversion), unary maps, broadcasting binary ops
// and where. All take arbitrary strides; contiguous runs get a vectorisable inner loop. The
// per-element formulas are those of kernels/element_ops.h (shared with CUDA), inlined into the
// loops; only float32 exp/log/tanh/sigmoid/gelu and GeluGrad have a second, Eigen-vectorised
// version here.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <unsupported/Eigen/SpecialFunctions>

#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/kernels/cpu/strided_loop.h"
#include "mmgrad/kernels/element_ops.h"

namespace mmgrad::cpu {
namespace {

// Applies out[i] = f(a[i]) over a run. Specialised on unit strides so the common case is a
// plain loop the compiler vectorises.
template <class To, class Ta, class F>
inline void run1(char* po, int64_t so, const char* pa, int64_t sa, int64_t n, F f) {
  To* o = reinterpret_cast<To*>(po);
  const Ta* a = reinterpret_cast<const Ta*>(pa);
  if (so == 1 && sa == 1) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) o[i * so] = f(a[i * sa]);
  }
}

template <class To, class T, class F>
inline void run2(char* po, int64_t so, const char* pa, int64_t sa, const char* pb, int64_t sb,
                 int64_t n, F f) {
  To* o = reinterpret_cast<To*>(po);
  const T* a = reinterpret_cast<const T*>(pa);
  const T* b = reinterpret_cast<const T*>(pb);
  if (so == 1 && sa == 1 && sb == 1) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], b[i]);
  } else if (so == 1 && sa == 1 && sb == 0) {
    const T bv = *b;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], bv);
  } else if (so == 1 && sa == 0 && sb == 1) {
    const T av = *a;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) o[i] = f(av, b[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) o[i * so] = f(a[i * sa], b[i * sb]);
  }
}

template <class To, class Ti, class F>
void map1(const Strided& in, const Strided& out, F f) {
  const Strided* ops[2] = {&out, &in};
  StridedLoop<2> loop(ops);
  loop.run(
      [&](char** p, const int64_t* s, int64_t n) { run1<To, Ti>(p[0], s[0], p[1], s[1], n, f); });
}

template <class To, class T, class F>
void map2(const Strided& a, const Strided& b, const Strided& out, F f) {
  const Strided* ops[3] = {&out, &a, &b};
  StridedLoop<3> loop(ops);
  loop.run([&](char** p, const int64_t* s, int64_t n) {
    run2<To, T>(p[0], s[0], p[1], s[1], p[2], s[2], n, f);
  });
}

// ---- float32 transcendentals through Eigen's vectorised functions --------------------------
// std::exp/log/tanh/erf on float are scalar libm calls (measured here per element: tanh ~17 ns,
// erf ~8 ns, exp ~2 ns); Eigen's packet versions run on whole AVX-512 registers at ~0.25 ns
// with a worst relative error (measured against the elem:: formulas in double) of ~3e-7 (exp at
// large |x|, tanh, sigmoid), ~7e-8 (log) and an absolute error of ~2e-7 |x| (gelu), against
// float32's own rounding of 6e-8. float64 keeps libm: gradcheck needs it.
// tests/test_reference_kernels.cpp checks these against the elem:: formulas evaluated in double.
using ArrF = Eigen::Array<float, Eigen::Dynamic, 1>;
using MapF = Eigen::Map<ArrF>;
using CMapF = Eigen::Map<const ArrF>;
constexpr int64_t kVecChunk = 256;

// The same bits wherever an element sits. Eigen evaluates an array expression with its vectorised
// formula on whole, aligned packets (16 floats with AVX-512) and with the scalar formula on the
// unaligned head and the leftover tail; the two round differently (exp differs in the last bit
// for ~1 value in 10). Which elements land in the head or the tail depends on the memory address
// and on where a thread's block starts, so the same input could give different bits on 1 and 3
// threads. So f only ever sees 64-byte-aligned runs whose length is a whole number of packets:
// a run that is already so is used in place; any other is gathered into an aligned buffer, padded
// with zeros to whole packets (the padding is computed and thrown away), and scattered back.
constexpr int64_t kPacketFloats = 16;  // AVX-512; a multiple of every narrower packet

inline bool packet_aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % 64 == 0; }

// Calls f(m, out, in) on chunks of at most kVecChunk elements, out and in[1..N-1] pointing at
// m contiguous, 64-byte-aligned floats, m a multiple of kPacketFloats (see above).
template <int N, class F>
void map_float_chunks(const Strided* ops[N], F f) {
  StridedLoop<N> loop(ops);
  loop.run([&](char** p, const int64_t* s, int64_t n) {
    alignas(64) float buf[N][kVecChunk];
    for (int64_t start = 0; start < n; start += kVecChunk) {
      const int64_t m = std::min(kVecChunk, n - start);
      const int64_t padded = (m + kPacketFloats - 1) / kPacketFloats * kPacketFloats;
      const float* in[N] = {};
      float* dst = reinterpret_cast<float*>(p[0]) + start * s[0];
      bool in_place = m == padded && s[0] == 1 && packet_aligned(dst);
      for (int k = 1; k < N; ++k) {
        const float* src = reinterpret_cast<const float*>(p[k]) + start * s[k];
        in_place = in_place && s[k] == 1 && packet_aligned(src);
        in[k] = src;
      }
      if (in_place) {
        f(m, dst, in);
        continue;
      }
      for (int k = 1; k < N; ++k) {
        const float* src = in[k];
        for (int64_t i = 0; i < m; ++i) buf[k][i] = src[i * s[k]];
        std::fill(buf[k] + m, buf[k] + padded, 0.0f);
        in[k] = buf[k];
      }
      f(padded, buf[0], in);
      for (int64_t i = 0; i < m; ++i) dst[i * s[0]] = buf[0][i];
    }
  });
}

// exp(t) = 0 for t < -103.972 (ln 2^-150 = -103.97208: below it the true value rounds to 0 in
// float32). Eigen's packet exp without AVX-512 (a build without -march=native, or an AVX2 CPU)
// clamps t at -88.38 and so gives 2.9e-39 for every t below it, exp(-inf) included, where PyTorch
// gives 0. (Between -103.97 and -88.38 it still gives ~2.9e-39 instead of the true subnormal: an
// error under FLT_MIN, as flushing would be.) The ops below set those elements after Eigen's pass,
// so Eigen's expressions, and with AVX-512 (which gives 0 there already) every bit, stay as they
// were. (A select inside the expression would make Eigen evaluate exp element by element with
// its scalar formula: other bits, and slower.)
constexpr float kExpUnderflow = -103.972f;

// True when op has a vectorised float32 version here (and ran it).
bool unary_float32_vectorised(UnaryOp op, const Strided& in, const Strided& out) {
  const Strided* ops[2] = {&out, &in};
  switch (op) {
    case UnaryOp::Exp:
      map_float_chunks<2>(ops, [](int64_t m, float* o, const float* const* x) {
        MapF(o, m) = CMapF(x[1], m).exp();
        for (int64_t i = 0; i < m; ++i) o[i] = x[1][i] < kExpUnderflow ? 0.0f : o[i];
      });
      return true;
    case UnaryOp::Log:
      map_float_chunks<2>(ops, [](int64_t m, float* o, const float* const* x) {
        MapF(o, m) = CMapF(x[1], m).log();
      });
      return true;
    case UnaryOp::Tanh:
      map_float_chunks<2>(ops, [](int64_t m, float* o, const float* const* x) {
        MapF(o, m) = CMapF(x[1], m).tanh();
      });
      return true;
    case UnaryOp::Sigmoid:
      // e = exp(-|x|) <= 1 never overflows: sigmoid = 1 / (1 + e) for x >= 0, e / (1 + e) else.
      map_float_chunks<2>(ops, [](int64_t m, float* o, const float* const* x) {
        CMapF a(x[1], m);
        ArrF e = (-a.abs()).exp();
        ArrF r = (e + 1.0f).inverse();
        MapF(o, m) = (a >= 0.0f).select(r, e * r);
        for (int64_t i = 0; i < m; ++i) o[i] = x[1][i] < kExpUnderflow ? 0.0f : o[i];  // e = 0
      });
      return true;
    case UnaryOp::Gelu:  // x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2
      map_float_chunks<2>(ops, [](int64_t m, float* o, const float* const* x) {
        CMapF a(x[1], m);
        MapF(o, m) = a * 0.5f * ((a * 0.70710678118654752f).erf() + 1.0f);
      });
      return true;
    default:
      return false;
  }
}

// y = op(x) for float32, float64 and int64 through elem::unary_fn.
template <class T>
void unary_typed(UnaryOp op, const Strided& in, const Strided& out, double alpha, double beta) {
  if constexpr (std::is_same_v<T, float>) {
    if (unary_float32_vectorised(op, in, out)) return;
  }
  const elem::UnaryScalars<T> s = elem::unary_scalars<T>(op, alpha, beta);
  elem::dispatch_unary(op, [&](auto c) {
    constexpr UnaryOp OP = decltype(c)::value;
    if constexpr (std::is_floating_point_v<T> || elem::unary_supports_int(OP)) {
      const T a = s.a, b = s.b;
      map1<T, T>(in, out, [a, b](T x) { return elem::unary_fn<OP, T>(x, a, b); });
    } else {
      fail("unary op: this operation needs a floating-point tensor, got int64");
    }
  });
}

// out = op(a, b) through elem::binary_fn (Bool output for comparisons and logical ops).
template <class T>
void binary_typed(BinaryOp op, const Strided& a, const Strided& b, const Strided& out) {
  if constexpr (std::is_same_v<T, float>) {
    if (op == BinaryOp::GeluGrad) {
      // g (Phi(x) + x phi(x)), vectorised as the float32 forward is.
      const Strided* ops[3] = {&out, &a, &b};
      map_float_chunks<3>(ops, [](int64_t m, float* o, const float* const* in) {
        CMapF g(in[1], m), x(in[2], m);
        MapF(o, m) = g * (((x * 0.70710678118654752f).erf() + 1.0f) * 0.5f +
                          x * 0.39894228040143267794f * (x.square() * -0.5f).exp());
        // Where -x^2 / 2 < kExpUnderflow the density is 0 and Phi(x) exactly 0 or 1 (|x| > 14.4):
        // the value with exp = 0 (NaN at x = +-inf, as the formula gives: inf * 0).
        for (int64_t i = 0; i < m; ++i)
          if (in[2][i] * in[2][i] * -0.5f < kExpUnderflow)
            o[i] = in[1][i] *
                   ((in[2][i] > 0.0f ? 1.0f : 0.0f) + in[2][i] * 0.39894228040143267794f * 0.0f);
      });
      return;
    }
  }
  elem::dispatch_binary(op, [&](auto c) {
    constexpr BinaryOp OP = decltype(c)::value;
    if constexpr (elem::binary_supported<OP, T>()) {
      map2<elem::binary_result_t<OP, T>, T>(a, b, out,
                                            [](T x, T y) { return elem::binary_fn<OP, T>(x, y); });
    } else {
      fail(cat_str("binary op: not supported for dtype ", dtype_name(a.dtype)));
    }
  });
}

// out[i] = c[i] ? x[i] : y[i] over a contiguous run whose x and y are contiguous (stride 1) or
// one broadcast value (stride 0) -- a where's usual layouts, e.g. where(mask, t, 0.0). Both
// values are read and one is selected, without a branch: the loop vectorises to a masked blend,
// where a branch on a random mask (dropout's) mispredicted every few elements.
template <class T>
void where_run(T* o, const uint8_t* c, const T* x, int64_t sx, const T* y, int64_t sy, int64_t n) {
  auto run = [&](auto xs, auto ys) {
    constexpr int64_t kx = decltype(xs)::value, ky = decltype(ys)::value;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const T a = x[i * kx], b = y[i * ky];
      o[i] = c[i] ? a : b;
    }
  };
  using One = std::integral_constant<int64_t, 1>;
  using Zero = std::integral_constant<int64_t, 0>;
  if (sx == 1 && sy == 1) return run(One{}, One{});
  if (sx == 1) return run(One{}, Zero{});
  if (sy == 1) return run(Zero{}, One{});
  run(Zero{}, Zero{});
}

}  // namespace

void CpuBackend::fill(const Strided& out, double value) {
  dispatch_all(out.dtype, [&](auto t) {
    using T = decltype(t);
    const T v = elem::convert<T, double>(value);  // bool: nonzero -> 1
    const Strided* ops[1] = {&out};
    StridedLoop<1> loop(ops);
    loop.run([&](char** p, const int64_t* s, int64_t n) {
      T* o = reinterpret_cast<T*>(p[0]);
      if (s[0] == 1) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) o[i] = v;
      } else {
        for (int64_t i = 0; i < n; ++i) o[i * s[0]] = v;
      }
    });
  });
}

void CpuBackend::copy(const Strided& src, const Strided& out) {
  if (src.dtype == out.dtype && src.is_contiguous() && out.is_contiguous()) {
    // Same layout: one memcpy per thread block.
    const size_t es = dtype_size(src.dtype);
    const char* s = static_cast<const char*>(src.data);
    char* o = static_cast<char*>(out.data);
    parallel_for(src.numel(), 4 * kElementwiseGrain,
                 [&](int64_t b, int64_t e) { std::memcpy(o + b * es, s + b * es, (e - b) * es); });
    return;
  }
  dispatch_all(out.dtype, [&](auto to) {
    using To = decltype(to);
    dispatch_all(src.dtype, [&](auto ti) {
      using Ti = decltype(ti);
      map1<To, Ti>(src, out, [](Ti x) { return elem::convert<To, Ti>(x); });
    });
  });
}

void CpuBackend::unary(UnaryOp op, const Strided& in, const Strided& out, double alpha,
                       double beta) {
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

void CpuBackend::binary(BinaryOp op, const Strided& a, const Strided& b, const Strided& out) {
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

void CpuBackend::where(const Strided& cond, const Strided& a, const Strided& b,
                       const Strided& out) {
  dispatch_all(out.dtype, [&](auto t) {
    using T = decltype(t);
    const Strided* ops[4] = {&out, &cond, &a, &b};
    StridedLoop<4> loop(ops);
    loop.run([&](char** p, const int64_t* s, int64_t n) {
      T* o = reinterpret_cast<T*>(p[0]);
      const uint8_t* c = reinterpret_cast<const uint8_t*>(p[1]);
      const T* x = reinterpret_cast<const T*>(p[2]);
      const T* y = reinterpret_cast<const T*>(p[3]);
      if (s[0] == 1 && s[1] == 1 && (s[2] == 0 || s[2] == 1) && (s[3] == 0 || s[3] == 1))
        return where_run(o, c, x, s[2], y, s[3], n);
      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = c[i * s[1]] ? x[i * s[2]] : y[i * s[3]];
    });
  });
}

}  // namespace mmgrad::cpu
