// The elementwise ops of both backends: their op codes and their scalar formulas, as host and
// device functions (MMGRAD_HD), each written once.
//
// y = op(x) of the unary maps, out = op(a, b) of the binary ops and the fused gradients
// (ReluGrad, GeluGrad, ...), and dtype conversion. The CPU backend (kernels/cpu/elementwise.cpp)
// inlines them into its vectorisable loops; a CUDA kernel (kernels/cuda/elementwise.cu) is a
// grid-stride loop around one of them; both reach a formula through dispatch_unary /
// dispatch_binary. The only other copy of a formula is the CPU's float32 Eigen fast path for
// exp/log/tanh/sigmoid/gelu (kernels/cpu/elementwise.cpp), which tests/test_reference_kernels.cpp
// compares against these functions.
//
// A new elementwise op is an op code in the enum, its formula in unary_fn / binary_fn and its
// line in the dispatch switch, all in this file (docs/adding_an_op.md walks through one).
// The shared math of the other kernels (reductions, indexing, convolution, softmax, layer norm,
// Adam) is in kernels/kernel_math.h.
//
// This header is plain C++ (no CUDA headers): MMGRAD_HD (core/strided.h) is __host__ __device__
// under nvcc and `inline` otherwise.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "mmgrad/core/error.h"
#include "mmgrad/core/strided.h"

namespace mmgrad {

enum class UnaryOp : uint8_t {
  Neg,
  Exp,
  Log,
  Sqrt,
  Abs,
  Sign,
  Relu,  // x <= 0 ? 0 : x (NaN stays NaN)
  Sigmoid,
  Tanh,
  Gelu,   // exact GELU: x * Phi(x)
  Pow,    // x ^ alpha
  Clamp,  // min(max(x, alpha), beta); NaN in x or in a bound gives NaN
  Square,
  Reciprocal,  // 1 / x
  AddScalar,   // x + alpha
  MulScalar,   // x * alpha
  Cos,
  Sin,
  Silu,      // x * sigmoid(x)
  GeluTanh,  // GELU's tanh approximation: x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
};

enum class BinaryOp : uint8_t {
  Add,
  Sub,
  Mul,
  Div,
  Pow,
  Maximum,  // NaN if either is NaN, else the larger
  Minimum,  // NaN if either is NaN, else the smaller
  // comparisons write a Bool output
  Eq,
  Ne,
  Lt,
  Le,
  Gt,
  Ge,
  // fused backward helpers: (grad, saved) -> grad_input, one pass instead of three
  ReluGrad,      // x <= 0 ? 0 : g (at x = NaN: g, as PyTorch's threshold_backward)
  SigmoidGrad,   // g * y * (1 - y), y = sigmoid(x)
  TanhGrad,      // g * (1 - y^2), y = tanh(x)
  GeluGrad,      // g * (Phi(x) + x * phi(x))
  GeluTanhGrad,  // g * d/dx of the tanh approximation (see gelu_tanh_grad)
  LogicalAnd,    // Bool x Bool -> Bool
  LogicalOr,
};

}  // namespace mmgrad

namespace mmgrad::elem {

template <class T>
MMGRAD_HD bool is_nan(T x) {
  if constexpr (std::is_floating_point_v<T>)
    return std::isnan(x);
  else
    return false;
}

// ---- unary maps ---------------------------------------------------------------------------------

// The standard normal CDF and density, for GELU and its derivative.
template <class T>
MMGRAD_HD T normal_cdf(T x) {
  return T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440)));
}
template <class T>
MMGRAD_HD T normal_pdf(T x) {
  return T(0.39894228040143267794) * std::exp(T(-0.5) * x * x);
}

// GELU's tanh approximation (PyTorch's gelu(x, approximate="tanh"), GPT-2's gelu):
//   y = x/2 (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
// and its derivative, written as PyTorch's GeluBackward writes it:
//   dy/dx = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2).
template <class T>
MMGRAD_HD T gelu_tanh(T x) {
  const T u = T(0.79788456080286535588) * (x + T(0.044715) * x * x * x);
  return T(0.5) * x * (T(1) + std::tanh(u));
}
template <class T>
MMGRAD_HD T gelu_tanh_grad(T x) {
  const T x2 = x * x;
  const T u = T(0.79788456080286535588) * (x + T(0.044715) * x2 * x);
  const T t = std::tanh(u);
  const T du = T(0.79788456080286535588) * (T(1) + T(3) * T(0.044715) * x2);
  return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du;
}

// The unary ops defined for int64 tensors (the others need floating point, as on the CPU).
constexpr bool unary_supports_int(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg:
    case UnaryOp::Abs:
    case UnaryOp::Sign:
    case UnaryOp::Relu:
    case UnaryOp::Clamp:
    case UnaryOp::Square:
    case UnaryOp::AddScalar:
    case UnaryOp::MulScalar:
      return true;
    default:
      return false;
  }
}

// y = op(x) with scalar parameters a (alpha) and b (beta).
template <UnaryOp OP, class T>
MMGRAD_HD T unary_fn(T x, T a, T b) {
  if constexpr (OP == UnaryOp::Neg) {
    return -x;
  } else if constexpr (OP == UnaryOp::Exp) {
    return std::exp(x);
  } else if constexpr (OP == UnaryOp::Log) {
    return std::log(x);
  } else if constexpr (OP == UnaryOp::Sqrt) {
    return std::sqrt(x);
  } else if constexpr (OP == UnaryOp::Abs) {
    if constexpr (std::is_floating_point_v<T>)
      return std::abs(x);
    else
      return x < 0 ? -x : x;
  } else if constexpr (OP == UnaryOp::Sign) {
    return T((x > T(0)) - (x < T(0)));
  } else if constexpr (OP == UnaryOp::Relu) {
    // Written "x <= 0 ? 0 : x" rather than "x > 0 ? x : 0": every comparison with NaN is false,
    // so NaN falls through to x and stays NaN (PyTorch: relu(nan) = nan). -0.0 still gives +0.
    return x <= T(0) ? T(0) : x;
  } else if constexpr (OP == UnaryOp::Sigmoid) {
    // 1 / (1 + e^-x) for x >= 0; e^x / (1 + e^x) for x < 0: never exp of a large positive.
    if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
    T e = std::exp(x);
    return e / (T(1) + e);
  } else if constexpr (OP == UnaryOp::Tanh) {
    return std::tanh(x);
  } else if constexpr (OP == UnaryOp::Gelu) {
    return x * normal_cdf(x);
  } else if constexpr (OP == UnaryOp::Pow) {
    return std::pow(x, a);
  } else if constexpr (OP == UnaryOp::Clamp) {
    // A NaN bound makes every element NaN (PyTorch's clamp fills the result with NaN); a NaN x
    // fails both comparisons and stays NaN. (x != x is the NaN test that also compiles for
    // int64, where it is always false; the int64 bounds are never NaN, see unary_scalars.)
    if (a != a) return a;
    if (b != b) return b;
    return x < a ? a : (x > b ? b : x);
  } else if constexpr (OP == UnaryOp::Square) {
    return x * x;
  } else if constexpr (OP == UnaryOp::Reciprocal) {
    return T(1) / x;
  } else if constexpr (OP == UnaryOp::AddScalar) {
    return x + a;
  } else if constexpr (OP == UnaryOp::MulScalar) {
    return x * a;
  } else if constexpr (OP == UnaryOp::Cos) {
    return std::cos(x);
  } else if constexpr (OP == UnaryOp::Sin) {
    return std::sin(x);
  } else if constexpr (OP == UnaryOp::Silu) {
    return x * unary_fn<UnaryOp::Sigmoid, T>(x, a, b);  // x sigmoid(x), the stable sigmoid above
  } else {
    static_assert(OP == UnaryOp::GeluTanh, "unhandled unary op");
    return gelu_tanh(x);
  }
}

// The scalar parameters alpha and beta of a unary op (double in Backend::unary) as T, converted
// once per call on the host. Floating T: rounded to T. int64: saturated at the int64 range
// (clamp_min(x, 0) passes beta = +inf, and converting inf or NaN to an integer is undefined
// behaviour), and Clamp's bounds round inwards (x >= 0.5 is x >= 1, x <= 2.5 is x <= 2); the
// other int64 ops take integral scalars (checked by the ops), rounded up here only to stay
// defined.
inline int64_t int_bound(double v, bool lower) {
  if (std::isnan(v)) return lower ? INT64_MIN : INT64_MAX;
  v = lower ? std::ceil(v) : std::floor(v);
  if (v <= -9223372036854775808.0) return INT64_MIN;
  if (v >= 9223372036854775807.0) return INT64_MAX;
  return static_cast<int64_t>(v);
}

template <class T>
struct UnaryScalars {
  T a, b;
};

template <class T>
inline UnaryScalars<T> unary_scalars(UnaryOp op, double alpha, double beta) {
  if constexpr (std::is_floating_point_v<T>) {
    return {static_cast<T>(alpha), static_cast<T>(beta)};
  } else {
    static_assert(std::is_same_v<T, int64_t>, "unary ops take float32, float64 or int64");
    return {int_bound(alpha, true), int_bound(beta, op != UnaryOp::Clamp)};
  }
}

// ---- runtime op -> compile-time op --------------------------------------------------------------

// The backends get the op as a value; their loops are instantiated per op so that the formula is
// inlined into the loop. dispatch_unary(op, f) calls f(UnaryOpC<OP>{}) for the op's OP (read it
// back as decltype(c)::value); likewise dispatch_binary. Host only.
template <UnaryOp OP>
using UnaryOpC = std::integral_constant<UnaryOp, OP>;
template <BinaryOp OP>
using BinaryOpC = std::integral_constant<BinaryOp, OP>;

#define MMGRAD_UNARY_CASE(NAME) \
  case UnaryOp::NAME:           \
    return f(UnaryOpC<UnaryOp::NAME>{});
template <class F>
void dispatch_unary(UnaryOp op, F&& f) {
  switch (op) {
    MMGRAD_UNARY_CASE(Neg)
    MMGRAD_UNARY_CASE(Exp)
    MMGRAD_UNARY_CASE(Log)
    MMGRAD_UNARY_CASE(Sqrt)
    MMGRAD_UNARY_CASE(Abs)
    MMGRAD_UNARY_CASE(Sign)
    MMGRAD_UNARY_CASE(Relu)
    MMGRAD_UNARY_CASE(Sigmoid)
    MMGRAD_UNARY_CASE(Tanh)
    MMGRAD_UNARY_CASE(Gelu)
    MMGRAD_UNARY_CASE(Pow)
    MMGRAD_UNARY_CASE(Clamp)
    MMGRAD_UNARY_CASE(Square)
    MMGRAD_UNARY_CASE(Reciprocal)
    MMGRAD_UNARY_CASE(AddScalar)
    MMGRAD_UNARY_CASE(MulScalar)
    MMGRAD_UNARY_CASE(Cos)
    MMGRAD_UNARY_CASE(Sin)
    MMGRAD_UNARY_CASE(Silu)
    MMGRAD_UNARY_CASE(GeluTanh)
  }
  fail(cat_str("unary op: unknown op code ", static_cast<int>(op)));
}
#undef MMGRAD_UNARY_CASE

// ---- binary maps --------------------------------------------------------------------------------

// Comparisons and logical ops write Bool (one byte, 0 or 1).
constexpr bool binary_writes_bool(BinaryOp op) {
  switch (op) {
    case BinaryOp::Eq:
    case BinaryOp::Ne:
    case BinaryOp::Lt:
    case BinaryOp::Le:
    case BinaryOp::Gt:
    case BinaryOp::Ge:
    case BinaryOp::LogicalAnd:
    case BinaryOp::LogicalOr:
      return true;
    default:
      return false;
  }
}

template <BinaryOp OP, class T>
using binary_result_t = std::conditional_t<binary_writes_bool(OP), uint8_t, T>;

// out = op(x, y); for the fused *Grad ops x is the incoming gradient and y the saved tensor.
template <BinaryOp OP, class T>
MMGRAD_HD binary_result_t<OP, T> binary_fn(T x, T y) {
  using B = uint8_t;
  if constexpr (OP == BinaryOp::Add) {
    return T(x + y);
  } else if constexpr (OP == BinaryOp::Sub) {
    return T(x - y);
  } else if constexpr (OP == BinaryOp::Mul) {
    return T(x * y);
  } else if constexpr (OP == BinaryOp::Div) {
    return T(x / y);
  } else if constexpr (OP == BinaryOp::Pow) {
    // integers go through double, as std::pow(int64, int64) does on the CPU
    if constexpr (std::is_floating_point_v<T>)
      return std::pow(x, y);
    else
      return T(std::pow(static_cast<double>(x), static_cast<double>(y)));
  } else if constexpr (OP == BinaryOp::Maximum) {
    // NaN propagates (PyTorch's maximum): a NaN operand is the result, whichever side it is on.
    // (x != x is false for integers.)
    if (x != x) return x;
    if (y != y) return y;
    return x > y ? x : y;
  } else if constexpr (OP == BinaryOp::Minimum) {
    if (x != x) return x;
    if (y != y) return y;
    return x < y ? x : y;
  } else if constexpr (OP == BinaryOp::Eq) {
    return B(x == y);
  } else if constexpr (OP == BinaryOp::Ne) {
    return B(x != y);
  } else if constexpr (OP == BinaryOp::Lt) {
    return B(x < y);
  } else if constexpr (OP == BinaryOp::Le) {
    return B(x <= y);
  } else if constexpr (OP == BinaryOp::Gt) {
    return B(x > y);
  } else if constexpr (OP == BinaryOp::Ge) {
    return B(x >= y);
  } else if constexpr (OP == BinaryOp::ReluGrad) {
    // PyTorch's threshold_backward: zero where the input is <= 0, the gradient elsewhere --
    // including at NaN, where relu passed its input through.
    return y <= T(0) ? T(0) : x;
  } else if constexpr (OP == BinaryOp::SigmoidGrad) {
    return T(x * y * (T(1) - y));
  } else if constexpr (OP == BinaryOp::TanhGrad) {
    return T(x * (T(1) - y * y));
  } else if constexpr (OP == BinaryOp::GeluGrad) {
    static_assert(std::is_floating_point_v<T>, "GeluGrad needs floating point");
    // d/dx [x Phi(x)] = Phi(x) + x phi(x)
    return x * (normal_cdf(y) + y * normal_pdf(y));
  } else if constexpr (OP == BinaryOp::GeluTanhGrad) {
    static_assert(std::is_floating_point_v<T>, "GeluTanhGrad needs floating point");
    return x * gelu_tanh_grad(y);
  } else if constexpr (OP == BinaryOp::LogicalAnd) {
    return B(x && y);
  } else {
    static_assert(OP == BinaryOp::LogicalOr, "unhandled binary op");
    return B(x || y);
  }
}

// GeluGrad and GeluTanhGrad need floating point; every other binary op takes every dtype.
template <BinaryOp OP, class T>
constexpr bool binary_supported() {
  return (OP != BinaryOp::GeluGrad && OP != BinaryOp::GeluTanhGrad) || std::is_floating_point_v<T>;
}

#define MMGRAD_BINARY_CASE(NAME) \
  case BinaryOp::NAME:           \
    return f(BinaryOpC<BinaryOp::NAME>{});
template <class F>
void dispatch_binary(BinaryOp op, F&& f) {
  switch (op) {
    MMGRAD_BINARY_CASE(Add)
    MMGRAD_BINARY_CASE(Sub)
    MMGRAD_BINARY_CASE(Mul)
    MMGRAD_BINARY_CASE(Div)
    MMGRAD_BINARY_CASE(Pow)
    MMGRAD_BINARY_CASE(Maximum)
    MMGRAD_BINARY_CASE(Minimum)
    MMGRAD_BINARY_CASE(Eq)
    MMGRAD_BINARY_CASE(Ne)
    MMGRAD_BINARY_CASE(Lt)
    MMGRAD_BINARY_CASE(Le)
    MMGRAD_BINARY_CASE(Gt)
    MMGRAD_BINARY_CASE(Ge)
    MMGRAD_BINARY_CASE(ReluGrad)
    MMGRAD_BINARY_CASE(SigmoidGrad)
    MMGRAD_BINARY_CASE(TanhGrad)
    MMGRAD_BINARY_CASE(GeluGrad)
    MMGRAD_BINARY_CASE(GeluTanhGrad)
    MMGRAD_BINARY_CASE(LogicalAnd)
    MMGRAD_BINARY_CASE(LogicalOr)
  }
  fail(cat_str("binary op: unknown op code ", static_cast<int>(op)));
}
#undef MMGRAD_BINARY_CASE

// ---- dtype conversion (copy) --------------------------------------------------------------------

// static_cast, except that converting to Bool maps every nonzero value to 1 (copy and fill: a
// bool is one byte that must hold 0 or 1, or it would compare unequal to true).
template <class To, class Ti>
MMGRAD_HD To convert(Ti x) {
  if constexpr (std::is_same_v<To, uint8_t> && !std::is_same_v<Ti, uint8_t>)
    return static_cast<To>(x != Ti(0));
  else
    return static_cast<To>(x);
}

}  // namespace mmgrad::elem
