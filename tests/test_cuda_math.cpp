// CPU-side tests of the arithmetic the CUDA kernels run (always run, GPU or not).
//
// Every CUDA kernel is a grid-stride loop around a __host__ __device__ function from
// kernels/index_math.h, kernels/element_ops.h or kernels/kernel_math.h. Here those same functions
// run on the CPU, element by element (and, for the block reductions, in the order a thread block
// combines), and their results are compared with the CPU backend's. What is left untested without a
// GPU is the launch plumbing around them (tests/test_cuda.cpp covers that when a GPU is present).
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "mmgrad/core/philox.h"
#include "mmgrad/kernels/index_math.h"
#include "mmgrad/kernels/kernel_math.h"
#include "mmgrad/mmgrad.h"

using namespace mmgrad;

namespace {

Backend& cpu() { return backend(kCPU); }

// |a - b| <= tol * max(1, |b|), with NaN == NaN and equal infinities.
bool close(double a, double b, double tol) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::abs(a - b) <= tol * std::max(1.0, std::abs(b));
}

// Compares two equally long value lists; reports the first mismatch.
void check_values(const std::vector<double>& got, const std::vector<double>& want, double tol,
                  const std::string& what) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (!close(got[i], want[i], tol)) {
      FAIL_CHECK(what << ": element " << i << " is " << got[i] << ", expected " << want[i]);
      return;
    }
  }
}

template <class T>
std::vector<double> as_doubles(const T* p, int64_t n) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<double>(p[i]);
  return v;
}

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

Strided make_desc(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  Strided s;
  s.ndim = static_cast<int>(shape.size());
  for (int i = 0; i < s.ndim; ++i) {
    s.shape[i] = shape[i];
    s.strides[i] = strides[i];
  }
  return s;
}

std::vector<int64_t> row_major(const std::vector<int64_t>& shape) {
  std::vector<int64_t> st(shape.size());
  int64_t s = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    st[i] = s;
    s *= shape[i];
  }
  return st;
}

}  // namespace

// ---- elementwise walk ---------------------------------------------------------------------------

TEST_CASE("cuda math: coalesced elementwise dims address the same elements as the strides") {
  std::mt19937 rng(7);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  for (int trial = 0; trial < 300; ++trial) {
    const int nd = pick(6);
    std::vector<int64_t> shape(nd);
    for (auto& d : shape) d = 1 + pick(4);
    Strided ops_storage[3];
    for (int k = 0; k < 3; ++k) {
      std::vector<int64_t> st = row_major(shape);
      switch (k == 0 ? 0 : pick(4)) {
        case 0:
          break;   // contiguous
        case 1: {  // a permutation of a contiguous tensor's strides (transposes)
          std::vector<int64_t> perm_shape = shape;
          std::shuffle(perm_shape.begin(), perm_shape.end(), rng);
          std::vector<int> order(nd);
          for (int i = 0; i < nd; ++i) order[i] = i;
          std::shuffle(order.begin(), order.end(), rng);
          std::vector<int64_t> base = row_major([&] {
            std::vector<int64_t> s(nd);
            for (int i = 0; i < nd; ++i) s[order[i]] = shape[i];
            return s;
          }());
          for (int i = 0; i < nd; ++i) st[i] = base[order[i]];
          break;
        }
        case 2:  // broadcast: stride 0 on random dims
          for (int i = 0; i < nd; ++i)
            if (pick(2)) st[i] = 0;
          break;
        case 3:  // a strided slice of a bigger tensor
          for (int i = 0; i < nd; ++i) st[i] *= 1 + pick(3);
          break;
      }
      ops_storage[k] = make_desc(shape, st);
    }
    const Strided* ops[3] = {&ops_storage[0], &ops_storage[1], &ops_storage[2]};
    const index::ElementwiseDims<3> d = index::coalesce<3>(ops);
    CHECK(d.ndim >= 1);
    CHECK(d.ndim <= std::max(nd, 1));
    int64_t n = ops_storage[0].numel();
    bool ok = true;
    for (int64_t i = 0; i < n && ok; ++i) {
      int64_t off[3];
      index::strided_offsets(i, d, off);
      for (int k = 0; k < 3; ++k) {
        const Strided& s = ops_storage[k];
        int64_t want = index::strided_offset(i, s.ndim, s.shape, s.strides);
        if (off[k] != want) {
          ok = false;
          FAIL_CHECK("trial " << trial << " operand " << k << " element " << i << ": offset "
                              << off[k] << ", expected " << want);
        }
      }
      // The 1-d walk the kernel uses when d.ndim == 1 is i * stride.
      if (d.ndim == 1)
        for (int k = 0; k < 3; ++k) CHECK(off[k] == i * d.strides[k][0]);
    }
  }
}

TEST_CASE("cuda math: elementwise walk modes") {
  Strided a = make_desc({4, 5, 6}, {30, 6, 1});
  Strided b = make_desc({4, 5, 6}, {30, 6, 1});
  Strided bcast = make_desc({4, 5, 6}, {0, 0, 0});
  Strided tr = make_desc({4, 5, 6}, {1, 4, 20});
  {
    const Strided* ops[2] = {&a, &b};
    auto d = index::coalesce<2>(ops);
    CHECK(d.ndim == 1);
    CHECK(d.shape[0] == 120);
    CHECK(index::walk_mode(d) == index::WalkMode::Contiguous);
  }
  {
    const Strided* ops[2] = {&a, &bcast};  // x + scalar
    auto d = index::coalesce<2>(ops);
    CHECK(index::walk_mode(d) == index::WalkMode::OneDim);
  }
  {
    const Strided* ops[2] = {&a, &tr};
    CHECK(index::walk_mode(index::coalesce<2>(ops)) == index::WalkMode::General);
  }
  {
    Strided one = make_desc({1, 1}, {7, 3});  // a single element: one dim of size 1
    const Strided* ops[1] = {&one};
    auto d = index::coalesce<1>(ops);
    CHECK(d.ndim == 1);
    CHECK(d.shape[0] == 1);
  }
  // The kernels take these by value: they must stay far below the 4 KiB parameter limit.
  static_assert(sizeof(index::ElementwiseDims<4>) < 1024);
  static_assert(sizeof(index::DimGroup) * 2 + 16 < 1024);
}

// ---- unary / binary / conversion formulas -------------------------------------------------------

namespace {

template <class T>
std::vector<T> sample_values(bool with_specials) {
  std::vector<T> v;
  std::mt19937 rng(3);
  std::normal_distribution<double> nd(0.0, 2.0);
  for (int i = 0; i < 200; ++i) v.push_back(static_cast<T>(nd(rng)));
  for (double x : {0.0, 1.0, -1.0, 0.5, -0.5, 30.0, -30.0, 700.0, -700.0}) v.push_back(T(x));
  if (with_specials) {
    v.push_back(std::numeric_limits<T>::quiet_NaN());
    v.push_back(std::numeric_limits<T>::infinity());
    v.push_back(-std::numeric_limits<T>::infinity());
    v.push_back(T(-0.0));
  }
  return v;
}

template <UnaryOp OP, class T>
void check_unary(const char* name, double alpha, double beta, double tol) {
  std::vector<T> xs = sample_values<T>(std::is_floating_point_v<T>);
  Tensor x = Tensor::from_vector(xs);
  Tensor y = empty_like(x);
  cpu().unary(OP, x.desc(), y.desc(), alpha, beta);
  std::vector<double> emu(xs.size());
  for (size_t i = 0; i < xs.size(); ++i)
    emu[i] = static_cast<double>(
        elem::unary_fn<OP, T>(xs[i], static_cast<T>(alpha), static_cast<T>(beta)));
  check_values(emu, values(y), tol, std::string("unary ") + name + " " + dtype_name(x.dtype()));
}

template <class T>
void check_all_unary(double tol) {
  check_unary<UnaryOp::Neg, T>("neg", 0, 0, tol);
  check_unary<UnaryOp::Exp, T>("exp", 0, 0, tol);
  check_unary<UnaryOp::Log, T>("log", 0, 0, tol);
  check_unary<UnaryOp::Sqrt, T>("sqrt", 0, 0, tol);
  check_unary<UnaryOp::Abs, T>("abs", 0, 0, tol);
  check_unary<UnaryOp::Sign, T>("sign", 0, 0, tol);
  check_unary<UnaryOp::Relu, T>("relu", 0, 0, tol);
  check_unary<UnaryOp::Sigmoid, T>("sigmoid", 0, 0, tol);
  check_unary<UnaryOp::Tanh, T>("tanh", 0, 0, tol);
  check_unary<UnaryOp::Gelu, T>("gelu", 0, 0, tol);
  check_unary<UnaryOp::GeluTanh, T>("gelu tanh", 0, 0, tol);
  check_unary<UnaryOp::Silu, T>("silu", 0, 0, tol);
  check_unary<UnaryOp::Pow, T>("pow 2.5", 2.5, 0, tol);
  check_unary<UnaryOp::Pow, T>("pow -1", -1.0, 0, tol);
  check_unary<UnaryOp::Clamp, T>("clamp", -0.5, 1.5, tol);
  check_unary<UnaryOp::Square, T>("square", 0, 0, tol);
  check_unary<UnaryOp::Reciprocal, T>("reciprocal", 0, 0, tol);
  check_unary<UnaryOp::AddScalar, T>("add scalar", 0.25, 0, tol);
  check_unary<UnaryOp::MulScalar, T>("mul scalar", -3.0, 0, tol);
  check_unary<UnaryOp::Cos, T>("cos", 0, 0, tol);
  check_unary<UnaryOp::Sin, T>("sin", 0, 0, tol);
}

}  // namespace

TEST_CASE("cuda math: unary formulas match the CPU backend") {
  // float32 allows a few ulps: the CPU loop may use vectorised libm variants.
  check_all_unary<float>(2e-6);
  check_all_unary<double>(1e-13);
  check_unary<UnaryOp::Neg, int64_t>("neg", 0, 0, 0);
  check_unary<UnaryOp::Abs, int64_t>("abs", 0, 0, 0);
  check_unary<UnaryOp::Sign, int64_t>("sign", 0, 0, 0);
  check_unary<UnaryOp::Relu, int64_t>("relu", 0, 0, 0);
  check_unary<UnaryOp::Clamp, int64_t>("clamp", -1, 2, 0);
  check_unary<UnaryOp::Square, int64_t>("square", 0, 0, 0);
  check_unary<UnaryOp::AddScalar, int64_t>("add", 3, 0, 0);
  check_unary<UnaryOp::MulScalar, int64_t>("mul", -2, 0, 0);
  static_assert(elem::unary_supports_int(UnaryOp::Clamp));
  static_assert(!elem::unary_supports_int(UnaryOp::Exp));
}

namespace {

template <BinaryOp OP, class T>
void check_binary(const char* name, double tol) {
  std::vector<T> xs, ys;
  if constexpr (std::is_same_v<T, uint8_t>) {
    for (int i = 0; i < 4; ++i) {
      xs.push_back(static_cast<T>(i & 1));
      ys.push_back(static_cast<T>(i >> 1));
    }
  } else if constexpr (std::is_same_v<T, int64_t>) {
    for (int64_t a = -4; a <= 4; ++a)
      for (int64_t b = -3; b <= 3; ++b) {
        if (b == 0 && OP == BinaryOp::Div) continue;  // integer division by zero traps on the CPU
        xs.push_back(a);
        ys.push_back(b);
      }
  } else {
    std::vector<T> a = sample_values<T>(true), b = sample_values<T>(true);
    std::reverse(b.begin(), b.end());
    for (size_t i = 0; i < a.size(); ++i) {
      xs.push_back(a[i]);
      ys.push_back(b[(i * 7) % b.size()]);
    }
    xs.push_back(T(2));  // equal pairs for the comparisons
    ys.push_back(T(2));
  }
  Tensor x = Tensor::from_vector(xs), y = Tensor::from_vector(ys);
  using R = elem::binary_result_t<OP, T>;
  Tensor out = Tensor::empty(x.shape(), TensorOptions(dtype_of<R>()));
  cpu().binary(OP, x.desc(), y.desc(), out.desc());
  std::vector<double> emu(xs.size());
  for (size_t i = 0; i < xs.size(); ++i)
    emu[i] = static_cast<double>(elem::binary_fn<OP, T>(xs[i], ys[i]));
  check_values(emu, values(out), tol, std::string("binary ") + name + " " + dtype_name(x.dtype()));
}

template <class T>
void check_all_binary(double tol) {
  check_binary<BinaryOp::Add, T>("add", tol);
  check_binary<BinaryOp::Sub, T>("sub", tol);
  check_binary<BinaryOp::Mul, T>("mul", tol);
  if constexpr (!std::is_same_v<T, uint8_t>) check_binary<BinaryOp::Div, T>("div", tol);
  check_binary<BinaryOp::Pow, T>("pow", tol);
  check_binary<BinaryOp::Maximum, T>("maximum", tol);
  check_binary<BinaryOp::Minimum, T>("minimum", tol);
  check_binary<BinaryOp::Eq, T>("eq", 0);
  check_binary<BinaryOp::Ne, T>("ne", 0);
  check_binary<BinaryOp::Lt, T>("lt", 0);
  check_binary<BinaryOp::Le, T>("le", 0);
  check_binary<BinaryOp::Gt, T>("gt", 0);
  check_binary<BinaryOp::Ge, T>("ge", 0);
  check_binary<BinaryOp::ReluGrad, T>("relu grad", tol);
  check_binary<BinaryOp::SigmoidGrad, T>("sigmoid grad", tol);
  check_binary<BinaryOp::TanhGrad, T>("tanh grad", tol);
  if constexpr (std::is_floating_point_v<T>) {
    check_binary<BinaryOp::GeluGrad, T>("gelu grad", tol);
    check_binary<BinaryOp::GeluTanhGrad, T>("gelu tanh grad", tol);
  }
  check_binary<BinaryOp::LogicalAnd, T>("and", 0);
  check_binary<BinaryOp::LogicalOr, T>("or", 0);
}

template <class To, class Ti>
void check_convert() {
  std::vector<Ti> xs;
  for (int i = -5; i <= 5; ++i) {
    if constexpr (std::is_same_v<Ti, uint8_t>)
      xs.push_back(static_cast<Ti>(i & 1));
    else if constexpr (std::is_floating_point_v<Ti>)
      xs.push_back(static_cast<Ti>(i * 0.75));
    else
      xs.push_back(static_cast<Ti>(i));
  }
  Tensor x = Tensor::from_vector(xs);
  Tensor out = Tensor::empty(x.shape(), TensorOptions(dtype_of<To>()));
  cpu().copy(x.desc(), out.desc());
  std::vector<double> emu;
  for (Ti v : xs) emu.push_back(static_cast<double>(elem::convert<To, Ti>(v)));
  check_values(emu, values(out), 0,
               std::string("convert ") + dtype_name(x.dtype()) + " -> " + dtype_name(out.dtype()));
}

template <class To>
void check_convert_from_all() {
  check_convert<To, float>();
  check_convert<To, double>();
  check_convert<To, int64_t>();
  check_convert<To, uint8_t>();
}

}  // namespace

TEST_CASE("cuda math: binary formulas and dtype conversions match the CPU backend") {
  check_all_binary<float>(2e-6);
  check_all_binary<double>(1e-13);
  check_all_binary<int64_t>(0);
  check_all_binary<uint8_t>(0);
  check_convert_from_all<float>();
  check_convert_from_all<double>();
  check_convert_from_all<int64_t>();
  check_convert_from_all<uint8_t>();
}

// ---- reductions ---------------------------------------------------------------------------------

namespace {

// What block_reduce computes from the per-thread values v (size a multiple of 32): a shuffle-down
// tree within each warp (a lane past the end reads its own value, as __shfl_down_sync does),
// then the warps' results in order.
template <class V, class Op>
V emulate_block_reduce(const std::vector<V>& v, Op op) {
  const size_t nw = v.size() / 32;
  std::vector<V> warp_result(nw);
  for (size_t w = 0; w < nw; ++w) {
    std::array<V, 32> lane;
    for (int l = 0; l < 32; ++l) lane[l] = v[w * 32 + l];
    for (int off = 16; off > 0; off /= 2) {
      std::array<V, 32> next;
      for (int l = 0; l < 32; ++l) next[l] = op(lane[l], l + off < 32 ? lane[l + off] : lane[l]);
      lane = next;
    }
    warp_result[w] = lane[0];
  }
  V r = warp_result[0];
  for (size_t w = 1; w < nw; ++w) r = op(r, warp_result[w]);
  return r;
}

// The CUDA reduce kernels on the CPU: block (threads > 0: thread t takes r = t, t + threads, ...
// then the block tree) or thread (threads == 0: r in order) per output.
template <class T>
Tensor emulate_reduce(ReduceOp op, const Tensor& x, const Shape& kept_shape, int threads) {
  const bool is_arg = op == ReduceOp::ArgMax || op == ReduceOp::ArgMin;
  const bool is_max = op == ReduceOp::Max || op == ReduceOp::ArgMax;
  Tensor out = Tensor::empty(kept_shape, TensorOptions(is_arg ? kInt64 : x.dtype()));
  const Strided in = x.desc(), od = out.desc();
  const index::ReduceSplit s = index::split_reduce(in, od);
  const int64_t nK = s.kept.numel(), nR = s.reduced.numel();
  const T* xp = in.ptr<T>();
  using A = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
  auto pick = [&](elem::ValIdx<T> a, elem::ValIdx<T> b) {
    return is_max ? elem::pick<true>(a, b) : elem::pick<false>(a, b);
  };
  for (int64_t k = 0; k < nK; ++k) {
    const T* p = xp + index::strided_offset(k, s.kept.n, s.kept.shape, s.kept.in_stride);
    const int64_t o = index::strided_offset(k, s.kept.n, s.kept.shape, s.kept.out_stride);
    auto at = [&](int64_t r) {
      return p[index::strided_offset(r, s.reduced.n, s.reduced.shape, s.reduced.in_stride)];
    };
    const int nt = threads > 0 ? threads : 1;
    std::vector<A> sums(nt, A(0));
    std::vector<elem::ValIdx<T>> best(nt, elem::ValIdx<T>{T(0), -1});
    for (int t = 0; t < nt; ++t)
      for (int64_t r = t; r < nR; r += nt) {
        sums[t] += static_cast<A>(at(r));
        best[t] = pick(best[t], elem::ValIdx<T>{at(r), r});
      }
    A sum = sums[0];
    elem::ValIdx<T> b = best[0];
    if (threads > 0) {
      sum = emulate_block_reduce(sums, [](A u, A v) { return u + v; });
      b = emulate_block_reduce(best, pick);
    }
    if (op == ReduceOp::Sum)
      out.data_ptr<T>()[o] = static_cast<T>(sum);
    else if (is_arg)
      out.data_ptr<int64_t>()[o] = b.i;
    else
      out.data_ptr<T>()[o] = b.v;
  }
  return out;
}

template <class T>
Tensor reduce_input(const Shape& shape, std::mt19937& rng) {
  // Few distinct values, so ties are common; NaNs in a few places for floats.
  std::vector<double> v(static_cast<size_t>(shape.numel()));
  for (auto& e : v) {
    e = static_cast<double>(static_cast<int>(rng() % 7) - 3);
    if (std::is_floating_point_v<T>) {
      if (rng() % 40 == 0) e = std::numeric_limits<double>::quiet_NaN();
      if (rng() % 3 == 0) e += 0.25 * static_cast<double>(rng() % 5);
    }
  }
  return Tensor::from_vector(v, shape, TensorOptions(dtype_of<T>()));
}

template <class T>
void check_reduce_emulation(std::mt19937& rng) {
  const std::vector<Shape> shapes = {{7}, {3, 5}, {4, 1, 6}, {2, 3, 4, 5}, {40, 3}, {3, 70}};
  for (const Shape& shape : shapes) {
    Tensor base = reduce_input<T>(shape, rng);
    for (int view = 0; view < 2; ++view) {
      // view 1: the same values through a transposed (non-contiguous) layout
      Tensor x = view == 0 ? base : base.transpose(0, base.dim() - 1);
      const int nd = x.dim();
      for (unsigned mask = 1; mask < (1u << nd); ++mask) {
        Shape kept;
        int nreduced = 0;
        for (int d = 0; d < nd; ++d) {
          bool red = mask & (1u << d);
          nreduced += red;
          kept.push_back(red ? 1 : x.size(d));
        }
        for (ReduceOp op :
             {ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::ArgMax, ReduceOp::ArgMin}) {
          const bool is_arg = op == ReduceOp::ArgMax || op == ReduceOp::ArgMin;
          if (is_arg && nreduced != 1) continue;
          Tensor want = Tensor::empty(kept, TensorOptions(is_arg ? kInt64 : x.dtype()));
          cpu().reduce(op, x.desc(), want.desc());
          for (int threads : {0, 32, 64, 256}) {
            Tensor got = emulate_reduce<T>(op, x, kept, threads);
            check_values(
                values(got), values(want), op == ReduceOp::Sum ? 1e-12 : 0,
                cat_str("reduce op ", static_cast<int>(op), " ", dtype_name(x.dtype()), " shape ",
                        x.shape().str(), " mask ", mask, " view ", view, " threads ", threads));
          }
        }
      }
    }
  }
}

}  // namespace

TEST_CASE("cuda math: reduce split and block-order picks give the CPU's results") {
  std::mt19937 rng(11);
  check_reduce_emulation<double>(rng);
  check_reduce_emulation<float>(rng);
  check_reduce_emulation<int64_t>(rng);
}

TEST_CASE("cuda math: pick keeps the first NaN, else the first extreme, in any order") {
  using V = elem::ValIdx<double>;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  V a{2.0, 3}, b{2.0, 1}, c{nan, 5}, d{nan, 4}, none{0.0, -1};
  CHECK(elem::pick<true>(a, b).i == 1);
  CHECK(elem::pick<true>(b, a).i == 1);
  CHECK(elem::pick<true>(a, c).i == 5);
  CHECK(elem::pick<true>(c, d).i == 4);
  CHECK(elem::pick<false>(d, c).i == 4);
  CHECK(elem::pick<true>(none, a).i == 3);
  CHECK(elem::pick<true>(a, none).i == 3);
  CHECK(elem::pick<false>(V{-1.0, 7}, V{3.0, 0}).i == 7);
}

// ---- GEMM mapping -------------------------------------------------------------------------------

TEST_CASE("cuda math: row-major GEMM as a column-major (cuBLAS) call matches the CPU GEMM") {
  std::mt19937 rng(5);
  std::normal_distribution<double> nd;
  for (int trans_a = 0; trans_a < 2; ++trans_a)
    for (int trans_b = 0; trans_b < 2; ++trans_b)
      for (int shared_a = 0; shared_a < 2; ++shared_a)
        for (int64_t pad : {0, 3}) {
          const int64_t batch = 3, M = 4, N = 5, K = 6;
          GemmArgs g;
          g.dtype = kFloat64;
          g.batch = batch;
          g.M = M;
          g.N = N;
          g.K = K;
          g.trans_a = trans_a;
          g.trans_b = trans_b;
          // Stored shapes: A is M x K (or K x M), B is K x N (or N x K); rows padded by pad.
          const int64_t a_rows = trans_a ? K : M, a_cols = trans_a ? M : K;
          const int64_t b_rows = trans_b ? N : K, b_cols = trans_b ? K : N;
          g.lda = a_cols + pad;
          g.ldb = b_cols + pad;
          g.ldc = N + pad;
          g.stride_a = shared_a ? 0 : a_rows * g.lda;
          g.stride_b = b_rows * g.ldb;
          g.stride_c = M * g.ldc;
          g.alpha = 1.5;
          g.beta = 0.5;
          std::vector<double> A(static_cast<size_t>(batch * a_rows * g.lda)),
              B(static_cast<size_t>(batch * b_rows * g.ldb)),
              C0(static_cast<size_t>(batch * M * g.ldc));
          for (auto& v : A) v = nd(rng);
          for (auto& v : B) v = nd(rng);
          for (auto& v : C0) v = nd(rng);
          std::vector<double> C_cpu = C0, C_cm = C0;
          g.A = A.data();
          g.B = B.data();
          g.C = C_cpu.data();
          cpu().gemm(g);

          g.C = C_cm.data();
          const index::ColumnMajorGemm c = index::column_major_gemm(g);
          // cuBLAS's argument rules for the column-major call
          CHECK(c.ld_first >= std::max<int64_t>(1, c.trans_first ? c.k : c.m));
          CHECK(c.ld_second >= std::max<int64_t>(1, c.trans_second ? c.n : c.k));
          CHECK(c.ldc >= std::max<int64_t>(1, c.m));
          // What cublas<t>gemmStridedBatched computes: C = alpha op(F) op(S) + beta C, all
          // column-major (element (r, c) of a matrix at r + c * ld).
          const double* F = static_cast<const double*>(c.first);
          const double* S = static_cast<const double*>(c.second);
          double* Cm = static_cast<double*>(c.C);
          for (int64_t b = 0; b < c.batch; ++b)
            for (int64_t i = 0; i < c.m; ++i)
              for (int64_t j = 0; j < c.n; ++j) {
                double s = 0;
                for (int64_t l = 0; l < c.k; ++l) {
                  const double f = c.trans_first ? F[b * c.stride_first + l + i * c.ld_first]
                                                 : F[b * c.stride_first + i + l * c.ld_first];
                  const double sv = c.trans_second ? S[b * c.stride_second + j + l * c.ld_second]
                                                   : S[b * c.stride_second + l + j * c.ld_second];
                  s += f * sv;
                }
                double& out = Cm[b * c.stride_c + i + j * c.ldc];
                out = g.alpha * s + g.beta * out;
              }
          check_values(C_cm, C_cpu, 1e-12,
                       cat_str("gemm trans_a ", trans_a, " trans_b ", trans_b, " shared_a ",
                               shared_a, " pad ", pad));
        }
}

// ---- convolution and pooling --------------------------------------------------------------------

TEST_CASE("cuda math: conv_window_of inverts the im2col window arithmetic") {
  int checked = 0;
  for (int64_t H = 1; H <= 9; ++H)
    for (int64_t K = 1; K <= 4; ++K)
      for (int64_t S = 1; S <= 3; ++S)
        for (int64_t P = 0; P <= 2; ++P)
          for (int64_t D = 1; D <= 2; ++D) {
            const int64_t O = index::conv_out_size(H, K, S, P, D);
            if (O <= 0) continue;
            for (int64_t i = 0; i < H; ++i)
              for (int64_t k = 0; k < K; ++k) {
                int64_t want = -1;
                for (int64_t o = 0; o < O; ++o)
                  if (o * S - P + k * D == i) want = o;
                const int64_t got = index::conv_window_of(i, k, S, P, D, O);
                if (got != want)
                  FAIL_CHECK("H " << H << " K " << K << " S " << S << " P " << P << " D " << D
                                  << " i " << i << " k " << k << ": " << got << " != " << want);
                ++checked;
              }
          }
  CHECK(checked > 1000);
}

TEST_CASE("cuda math: adaptive pooling windows containing a cell") {
  for (int64_t in = 1; in <= 13; ++in)
    for (int64_t out = 1; out <= 13; ++out)
      for (int64_t i = 0; i < in; ++i) {
        int64_t first = -1, last = -1;
        for (int64_t o = 0; o < out; ++o)
          if (index::adaptive_start(o, in, out) <= i && i < index::adaptive_end(o, in, out)) {
            if (first < 0) first = o;
            last = o;
          }
        CHECK(first >= 0);
        CHECK(index::adaptive_first_out(i, in, out) == first);
        CHECK(index::adaptive_last_out(i, in, out) == last);
        // the windows containing i are contiguous
        for (int64_t o = first; o <= last; ++o) CHECK(index::adaptive_start(o, in, out) <= i);
      }
}

namespace {

Conv2dGeom geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t S,
                int64_t P, int64_t D) {
  Conv2dGeom g;
  g.N = N;
  g.C = C;
  g.H = H;
  g.W = W;
  g.KH = KH;
  g.KW = KW;
  g.SH = S;
  g.SW = S + (W > H ? 1 : 0);  // unequal strides in some cases
  g.PH = P;
  g.PW = P;
  g.DH = D;
  g.DW = D;
  g.OH = index::conv_out_size(H, KH, g.SH, P, D);
  g.OW = index::conv_out_size(W, KW, g.SW, P, D);
  return g;
}

template <class T>
void check_conv_pool(const Conv2dGeom& g, double tol) {
  const std::string where =
      cat_str(dtype_name(dtype_of<T>()), " N", g.N, " C", g.C, " ", g.H, "x", g.W, " k", g.KH, "x",
              g.KW, " s", g.SH, "x", g.SW, " p", g.PH, " d", g.DH);
  Generator gen(17);
  const TensorOptions opt(dtype_of<T>());
  Tensor x = Tensor::randn({g.N, g.C, g.H, g.W}, opt, &gen);
  // Integer-valued copies make max-pool ties likely.
  Tensor xi = (x * 2.0).to(kInt64).to(dtype_of<T>());
  const int64_t rows = g.C * g.KH * g.KW, P = g.OH * g.OW;
  const T* xp = x.data_ptr<T>();

  // im2col
  Tensor cols = Tensor::empty({g.N, rows, P}, opt);
  cpu().im2col(dtype_of<T>(), xp, cols.raw_data(), g);
  std::vector<double> emu(static_cast<size_t>(cols.numel()));
  for (int64_t i = 0; i < cols.numel(); ++i) emu[i] = elem::im2col_value(g, xp, i);
  check_values(emu, values(cols), 0, "im2col " + where);

  // col2im onto a non-zero gradient (the kernel adds)
  Tensor gx0 = Tensor::randn({g.N, g.C, g.H, g.W}, opt, &gen);
  Tensor gx = gx0.clone();
  cpu().col2im(dtype_of<T>(), cols.raw_data(), gx.raw_data(), g);
  emu.assign(static_cast<size_t>(gx.numel()), 0);
  for (int64_t i = 0; i < gx.numel(); ++i)
    emu[i] = elem::col2im_value(g, cols.data_ptr<T>(), gx0.data_ptr<T>()[i], i);
  check_values(emu, values(gx), tol, "col2im " + where);

  // max pool forward and backward
  // The CPU keeps its own record layout for some shapes (one byte per window of a float32
  // 2x2/2 pool), so the record is checked through the gradient it routes: the emulation's
  // argmax decides where each gy lands.
  Tensor y = Tensor::empty({g.N, g.C, g.OH, g.OW}, opt);
  Tensor rec = Tensor::empty({(cpu().max_pool2d_record_bytes(dtype_of<T>(), g) + 7) / 8}, kInt64);
  cpu().max_pool2d_forward(dtype_of<T>(), xi.raw_data(), y.raw_data(), rec.raw_data(), g);
  std::vector<double> ey(static_cast<size_t>(y.numel()));
  std::vector<int64_t> ea(ey.size());
  for (int64_t i = 0; i < y.numel(); ++i) {
    T v;
    elem::max_pool_value(g, xi.data_ptr<T>(), i, &v, &ea[i]);
    ey[i] = v;
  }
  check_values(ey, values(y), 0, "max_pool2d values " + where);
  Tensor gy = Tensor::randn({g.N, g.C, g.OH, g.OW}, opt, &gen);
  gx = gx0.clone();  // written whole: the starting values must not show through
  cpu().max_pool2d_backward(dtype_of<T>(), gy.raw_data(), rec.raw_data(), gx.raw_data(), g);
  for (int64_t i = 0; i < gx.numel(); ++i)
    emu[i] = elem::max_pool_grad_value(g, gy.data_ptr<T>(), ea.data(), T(0), i);
  check_values(emu, values(gx), tol, "max_pool2d backward " + where);

  // average pool forward and backward
  cpu().avg_pool2d_forward(dtype_of<T>(), xp, y.raw_data(), g);
  for (int64_t i = 0; i < y.numel(); ++i) ey[i] = elem::avg_pool_value(g, xp, i);
  check_values(ey, values(y), tol, "avg_pool2d " + where);
  gx = gx0.clone();
  cpu().avg_pool2d_backward(dtype_of<T>(), gy.raw_data(), gx.raw_data(), g);
  for (int64_t i = 0; i < gx.numel(); ++i)
    emu[i] = elem::avg_pool_grad_value(g, gy.data_ptr<T>(), gx0.data_ptr<T>()[i], i);
  check_values(emu, values(gx), tol, "avg_pool2d backward " + where);
}

template <class T>
void check_adaptive(int64_t H, int64_t W, int64_t OH, int64_t OW, double tol) {
  Conv2dGeom g;
  g.N = 2;
  g.C = 3;
  g.H = H;
  g.W = W;
  g.OH = OH;
  g.OW = OW;
  const std::string where = cat_str(dtype_name(dtype_of<T>()), " ", H, "x", W, " -> ", OH, "x", OW);
  Generator gen(23);
  const TensorOptions opt(dtype_of<T>());
  Tensor x = Tensor::randn({g.N, g.C, H, W}, opt, &gen);
  Tensor y = Tensor::empty({g.N, g.C, OH, OW}, opt);
  cpu().adaptive_avg_pool2d_forward(dtype_of<T>(), x.raw_data(), y.raw_data(), g);
  std::vector<double> ey(static_cast<size_t>(y.numel()));
  for (int64_t i = 0; i < y.numel(); ++i) ey[i] = elem::adaptive_avg_value(g, x.data_ptr<T>(), i);
  check_values(ey, values(y), tol, "adaptive_avg_pool2d " + where);
  Tensor gy = Tensor::randn({g.N, g.C, OH, OW}, opt, &gen);
  Tensor gx0 = Tensor::randn({g.N, g.C, H, W}, opt, &gen);
  Tensor gx = gx0.clone();
  cpu().adaptive_avg_pool2d_backward(dtype_of<T>(), gy.raw_data(), gx.raw_data(), g);
  std::vector<double> emu(static_cast<size_t>(gx.numel()));
  for (int64_t i = 0; i < gx.numel(); ++i)
    emu[i] = elem::adaptive_avg_grad_value(g, gy.data_ptr<T>(), gx0.data_ptr<T>()[i], i);
  check_values(emu, values(gx), tol, "adaptive_avg_pool2d backward " + where);
}

}  // namespace

TEST_CASE("cuda math: im2col, col2im and pooling element bodies match the CPU backend") {
  // The same additions in the same order as the CPU. Not always bit-identical: GCC may fuse a
  // multiply into a following add (FMA contraction) in one compilation and not the other (as
  // nvcc may on the GPU), hence a tolerance of a few ulps for the arithmetic; selections
  // (im2col, max pooling) are exact.
  const std::vector<Conv2dGeom> geoms = {
      geom(2, 3, 5, 5, 3, 3, 1, 1, 1),  // the common 3x3 "same" convolution
      geom(1, 2, 7, 6, 3, 2, 2, 1, 1),  // stride 2 (and 3 along W), rectangular kernel
      geom(2, 1, 8, 8, 2, 2, 2, 0, 1),  // 2x2 pooling
      geom(1, 2, 9, 7, 3, 3, 1, 2, 2),  // dilation 2, padding 2
      geom(1, 1, 4, 4, 1, 1, 1, 0, 1),  // 1x1
      geom(1, 2, 5, 4, 3, 3, 3, 1, 1),  // windows that skip pixels (stride > kernel step)
  };
  for (const Conv2dGeom& g : geoms) {
    REQUIRE(g.OH > 0);
    REQUIRE(g.OW > 0);
    check_conv_pool<double>(g, 1e-14);
    check_conv_pool<float>(g, 1e-6);
  }
  for (auto [H, W, OH, OW] : std::vector<std::array<int64_t, 4>>{
           {7, 5, 3, 2}, {4, 4, 4, 4}, {5, 6, 1, 1}, {3, 2, 5, 4}, {10, 9, 4, 3}}) {
    check_adaptive<double>(H, W, OH, OW, 1e-14);
    check_adaptive<float>(H, W, OH, OW, 1e-6);
  }
}

// ---- indexing -----------------------------------------------------------------------------------

TEST_CASE("cuda math: index_select / index_add / gather / scatter_add offsets") {
  Generator gen(29);
  const int64_t outer = 3, dim = 5, inner = 4, n_idx = 7, idx_dim = 6;
  Tensor src = Tensor::randn({outer, dim, inner}, kFloat64, &gen);
  std::vector<int64_t> idx = {4, 0, 0, 2, 4, 1, 4};  // repeats: the adds accumulate
  // index_select
  Tensor out = Tensor::empty({outer, n_idx, inner}, kFloat64);
  cpu().index_select(kFloat64, src.raw_data(), idx.data(), out.raw_data(), outer, dim, inner,
                     n_idx);
  std::vector<double> emu(static_cast<size_t>(out.numel()));
  for (int64_t t = 0; t < out.numel(); ++t) {
    int64_t s = elem::index_select_offset(idx.data(), dim, inner, n_idx, t);
    REQUIRE(s >= 0);
    emu[t] = src.data_ptr<double>()[s];
  }
  check_values(emu, values(out), 0, "index_select");
  // index_add (sequential adds in t order, which is the CPU's order per destination)
  Tensor dst = Tensor::randn({outer, dim, inner}, kFloat64, &gen);
  Tensor dst_cpu = dst.clone();
  cpu().index_add(kFloat64, out.raw_data(), idx.data(), dst_cpu.raw_data(), outer, dim, inner,
                  n_idx);
  std::vector<double> acc = values(dst);
  for (int64_t t = 0; t < out.numel(); ++t)
    acc[elem::index_select_offset(idx.data(), dim, inner, n_idx, t)] += out.data_ptr<double>()[t];
  check_values(acc, values(dst_cpu), 1e-15, "index_add");
  // gather / scatter_add
  std::vector<int64_t> gidx(static_cast<size_t>(outer * idx_dim * inner));
  for (size_t i = 0; i < gidx.size(); ++i) gidx[i] = static_cast<int64_t>((i * 7 + i / 3) % dim);
  Tensor g_out = Tensor::empty({outer, idx_dim, inner}, kFloat64);
  cpu().gather(kFloat64, src.raw_data(), gidx.data(), g_out.raw_data(), outer, dim, idx_dim, inner);
  emu.assign(static_cast<size_t>(g_out.numel()), 0);
  for (int64_t p = 0; p < g_out.numel(); ++p)
    emu[p] = src.data_ptr<double>()[elem::gather_offset(gidx.data(), dim, idx_dim, inner, p)];
  check_values(emu, values(g_out), 0, "gather");
  Tensor s_cpu = dst.clone();
  cpu().scatter_add(kFloat64, g_out.raw_data(), gidx.data(), s_cpu.raw_data(), outer, dim, idx_dim,
                    inner);
  acc = values(dst);
  for (int64_t p = 0; p < g_out.numel(); ++p)
    acc[elem::gather_offset(gidx.data(), dim, idx_dim, inner, p)] += g_out.data_ptr<double>()[p];
  check_values(acc, values(s_cpu), 1e-15, "scatter_add");
  // out-of-range indices are refused by the offset functions (the kernels then skip them)
  std::vector<int64_t> bad = {-1, 5};
  CHECK(elem::index_select_offset(bad.data(), dim, inner, 2, 0) == -1);
  CHECK(elem::index_select_offset(bad.data(), dim, inner, 2, inner) == -1);
  CHECK(elem::gather_offset(bad.data(), dim, 2, 1, 0) == -1);
}

TEST_CASE("cuda math: sort keys give the CPU's stable order (ties, -0.0, NaN, top-k)") {
  CHECK_FALSE(std::signbit(elem::sort_key(-0.0)));
  CHECK_FALSE(std::signbit(elem::sort_key(-0.0f)));
  CHECK(std::isnan(elem::sort_key(-std::numeric_limits<double>::quiet_NaN())));
  CHECK_FALSE(std::signbit(elem::sort_key(-std::numeric_limits<double>::quiet_NaN())));
  CHECK(elem::sort_key(-2.5) == -2.5);
  CHECK(elem::sort_key(int64_t{-3}) == -3);
  // What the stable segmented (radix) sort of (sort_key(x), position) produces, against the
  // CPU's sort_rows, on rows full of ties and signed zeros.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const int64_t rows = 5, n = 9;
  std::vector<double> x = {1, -0.0, 0.0, 2, 1, -1, 0.0, -0.0, 2,    3,  3,    3,   1, 1,    1,
                           2, 2,    2,   5, 4, 3,  2,   1,    0,    -1, -2,   -3,  0, 0,    0,
                           0, 0,    0,   0, 0, 0,  nan, 1,    -nan, 0,  -1.0, nan, 2, -0.0, 1};
  Tensor in = Tensor::from_vector(x, {rows, n}, kFloat64);
  for (bool descending : {false, true})
    for (int64_t k : {n, int64_t{4}}) {
      Tensor vals = Tensor::empty({rows, k}, kFloat64);
      Tensor idx = Tensor::empty({rows, k}, kInt64);
      cpu().sort_rows(kFloat64, in.raw_data(), vals.raw_data(), idx.data_ptr<int64_t>(), rows, n, k,
                      descending);
      std::vector<double> ev, ei;
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<int64_t> pos(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) pos[i] = i;
        auto key = [&](int64_t i) { return elem::sort_key(x[r * n + i]); };
        // The radix order of the keys: numbers ascending, then the (positive) NaN.
        auto radix_less = [](double a, double b) {
          if (std::isnan(a)) return false;
          return std::isnan(b) || a < b;
        };
        std::stable_sort(pos.begin(), pos.end(), [&](int64_t a, int64_t b) {
          return descending ? radix_less(key(b), key(a)) : radix_less(key(a), key(b));
        });
        for (int64_t i = 0; i < k; ++i) {
          ev.push_back(x[r * n + pos[i]]);
          ei.push_back(static_cast<double>(pos[i]));
        }
      }
      check_values(ei, values(idx), 0, cat_str("sort indices descending ", descending, " k ", k));
      check_values(ev, values(vals), 0, cat_str("sort values descending ", descending, " k ", k));
    }
}

// ---- fused kernels ------------------------------------------------------------------------------

TEST_CASE("cuda math: cross-entropy gradient element matches the CPU backend") {
  Generator gen(31);
  const int64_t N = 6, C = 5, ignore = -100;
  for (double eps : {0.0, 0.1}) {
    Tensor x = Tensor::randn({N, C}, kFloat64, &gen);
    std::vector<int64_t> target = {0, 4, ignore, 2, 2, 1};
    Tensor loss = Tensor::empty({N}, kFloat64), lse = Tensor::empty({N}, kFloat64);
    cpu().cross_entropy_forward({.dtype = kFloat64,
                                 .logits = x.raw_data(),
                                 .target = target.data(),
                                 .loss = loss.raw_data(),
                                 .lse = lse.raw_data(),
                                 .N = N,
                                 .C = C,
                                 .ignore_index = ignore,
                                 .label_smoothing = eps});
    Tensor g = Tensor::randn({N}, kFloat64, &gen);
    Tensor gx = Tensor::empty({N, C}, kFloat64);
    cpu().cross_entropy_backward({.dtype = kFloat64,
                                  .logits = x.raw_data(),
                                  .target = target.data(),
                                  .lse = lse.raw_data(),
                                  .grad_loss = g.raw_data(),
                                  .gx = gx.raw_data(),
                                  .N = N,
                                  .C = C,
                                  .ignore_index = ignore,
                                  .label_smoothing = eps});
    std::vector<double> emu(static_cast<size_t>(N * C));
    for (int64_t i = 0; i < N * C; ++i)
      emu[i] = elem::cross_entropy_grad_value(x.data_ptr<double>(), target.data(),
                                              lse.data_ptr<double>(), g.data_ptr<double>(), C,
                                              ignore, eps / C, 1.0 - eps, i);
    check_values(emu, values(gx), 1e-14, cat_str("cross_entropy_backward eps ", eps));
  }
  // A target outside [0, C) gives NaN instead of reading out of bounds.
  std::vector<double> x1 = {0, 1};
  std::vector<int64_t> t1 = {7};
  double lse1 = 1.3, g1 = 1;
  CHECK(std::isnan(
      elem::cross_entropy_grad_value(x1.data(), t1.data(), &lse1, &g1, 2, -100, 0.0, 1.0, 0)));
}

TEST_CASE("cuda math: Adam / AdamW element update matches the CPU backend") {
  Generator gen(37);
  for (bool decoupled : {false, true})
    for (int64_t step : {1, 7}) {
      const int64_t n = 50;
      Tensor p = Tensor::randn({n}, kFloat64, &gen), g = Tensor::randn({n}, kFloat64, &gen);
      Tensor m = Tensor::randn({n}, kFloat64, &gen) * 0.1;
      Tensor v = Tensor::rand({n}, kFloat64, &gen) * 0.01;
      Tensor p1 = p.clone(), m1 = m.clone(), v1 = v.clone();
      cpu().adam_step({.dtype = kFloat64,
                       .param = p1.raw_data(),
                       .grad = g.raw_data(),
                       .exp_avg = m1.raw_data(),
                       .exp_avg_sq = v1.raw_data(),
                       .n = n,
                       .lr = 1e-2,
                       .beta1 = 0.9,
                       .beta2 = 0.999,
                       .eps = 1e-8,
                       .weight_decay = 0.05,
                       .step = step,
                       .decoupled = decoupled});
      auto c = elem::adam_coeffs<double>(1e-2, 0.9, 0.999, 1e-8, 0.05, step, decoupled);
      std::vector<double> pe = values(p), me = values(m), ve = values(v), ge = values(g);
      for (int64_t i = 0; i < n; ++i) elem::adam_update(c, pe[i], ge[i], me[i], ve[i]);
      const std::string what = cat_str("adam decoupled ", decoupled, " step ", step);
      check_values(pe, values(p1), 1e-14, what + " param");
      check_values(me, values(m1), 1e-14, what + " exp_avg");
      check_values(ve, values(v1), 1e-14, what + " exp_avg_sq");
    }
}

TEST_CASE("cuda math: layer-norm parameter gradients in row chunks match the CPU backend") {
  for (auto [N, D] : std::vector<std::array<int64_t, 2>>{{1, 3}, {37, 5}, {300, 8}, {64, 64}}) {
    for (int sms : {1, 4, 132}) {
      const elem::RowChunks rc = elem::layer_norm_row_chunks(N, D, sms);
      REQUIRE(rc.chunks >= 1);
      CHECK(rc.chunks * rc.rows_per_chunk >= N);
      CHECK((rc.chunks - 1) * rc.rows_per_chunk < N);  // no empty chunk
    }
    Generator gen(41);
    Tensor x = Tensor::randn({N, D}, kFloat64, &gen), gy = Tensor::randn({N, D}, kFloat64, &gen);
    Tensor w = Tensor::randn({D}, kFloat64, &gen), b = Tensor::randn({D}, kFloat64, &gen);
    Tensor y = empty_like(x), mean = Tensor::empty({N}, kFloat64),
           rstd = Tensor::empty({N}, kFloat64);
    cpu().layer_norm_forward({.dtype = kFloat64,
                              .x = x.raw_data(),
                              .w = w.raw_data(),
                              .b = b.raw_data(),
                              .y = y.raw_data(),
                              .mean = mean.raw_data(),
                              .rstd = rstd.raw_data(),
                              .N = N,
                              .D = D,
                              .eps = 1e-5});
    Tensor gx = empty_like(x), gw = empty_like(w), gb = empty_like(b);
    cpu().layer_norm_backward({.dtype = kFloat64,
                               .gy = gy.raw_data(),
                               .x = x.raw_data(),
                               .mean = mean.raw_data(),
                               .rstd = rstd.raw_data(),
                               .w = w.raw_data(),
                               .gx = gx.raw_data(),
                               .gw = gw.raw_data(),
                               .gb = gb.raw_data(),
                               .N = N,
                               .D = D});
    for (int sms : {1, 132}) {
      const elem::RowChunks rc = elem::layer_norm_row_chunks(N, D, sms);
      std::vector<double> pw(static_cast<size_t>(rc.chunks * D)), pb(pw.size());
      for (int64_t t = 0; t < rc.chunks * D; ++t)
        elem::layer_norm_param_partial(gy.data_ptr<double>(), x.data_ptr<double>(),
                                       mean.data_ptr<double>(), rstd.data_ptr<double>(), N, D,
                                       rc.rows_per_chunk, t, pw.data(), pb.data());
      std::vector<double> ew(static_cast<size_t>(D)), eb(static_cast<size_t>(D));
      for (int64_t c = 0; c < D; ++c)
        elem::layer_norm_param_final(pw.data(), pb.data(), rc.chunks, D, c, ew.data(), eb.data());
      const std::string what = cat_str("layer_norm N ", N, " D ", D, " sms ", sms);
      check_values(ew, values(gw), 1e-12, what + " gw");
      check_values(eb, values(gb), 1e-12, what + " gb");
    }
  }
  CHECK(elem::layer_norm_row_chunks(0, 8, 4).chunks == 0);
}

TEST_CASE("cuda math: random samples are the shared Philox formulas") {
  Generator gen(43);
  for (DType dt : {kFloat32, kFloat64}) {
    const uint64_t seed = 12345, offset = 1000;
    Tensor u = Tensor::empty({257}, dt), z = Tensor::empty({257}, dt);
    cpu().random(RandomDist::Uniform, u.desc(), seed, offset, -2.0, 3.0);
    cpu().random(RandomDist::Normal, z.desc(), seed, offset, 0.5, 2.0);
    std::vector<double> eu, ez;
    for (int64_t i = 0; i < 257; ++i) {
      if (dt == kFloat32) {
        eu.push_back(philox::uniform_sample<float>(offset + i, seed, -2.0, 3.0));
        ez.push_back(philox::normal_sample<float>(offset + i, seed, 0.5, 2.0));
      } else {
        eu.push_back(philox::uniform_sample<double>(offset + i, seed, -2.0, 3.0));
        ez.push_back(philox::normal_sample<double>(offset + i, seed, 0.5, 2.0));
      }
    }
    check_values(eu, values(u), 0, std::string("uniform ") + dtype_name(dt));
    check_values(ez, values(z), 0, std::string("normal ") + dtype_name(dt));
    for (double v : values(u)) {
      CHECK(v >= -2.0);
      CHECK(v < 3.0);
    }
  }
}
