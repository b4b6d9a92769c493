// The CUDA backend against the CPU backend.
//
// Every Backend method runs on the same random inputs on both devices,
// including non-contiguous and broadcast operands, and the results must agree:
// float32 within 1e-5 relative for elementwise ops and reductions and 1e-4 for
// GEMM-based ones, float64 within 1e-12, integers and bools exactly ("relative"
// with a floor of 1, as gradcheck does: |a - b| <= tol max(1,|b|)). The ops
// themselves (forward and gradients of every op case) are compared by the op
// list (tests/test_op_list.cpp); here a steady-state loop must also make no
// cudaMalloc call.
//
// Without a GPU (or in a build without CUDA) the parity tests print
// "[skipped: ...]" and return, and ctest reports them as skipped (not passed);
// the device-selection test then checks the error a learner gets from
// `--device cuda`. The arithmetic inside the CUDA kernels is covered on every
// machine by tests/test_cuda_math.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core_test_util.h"  // have_gpu
#include "mmgrad/kernels/index_math.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/ops/common.h"
#ifdef MMGRAD_WITH_CUDA
#include "mmgrad/kernels/cuda/cuda_backend.h"
#endif

using namespace mmgrad;
using mmgrad::testing::have_gpu;

namespace {

Backend& cpu() { return backend(kCPU); }
Backend& gpu() { return backend(kCUDA); }

// The tolerance for comparing a result of this dtype (gemm: a GEMM-based
// result).
double tol_for(DType dt, bool gemm = false) {
  switch (dt) {
    case DType::Float32:
      return gemm ? 1e-4 : 1e-5;
    case DType::Float64:
      return 1e-12;
    default:
      return 0.0;
  }
}

bool close(double a, double b, double tol) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::abs(a - b) <= tol * std::max(1.0, std::abs(b));
}

// Compares a tensor from the GPU with the CPU's (values, shape); reports the
// first mismatch.
void expect_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  REQUIRE_MESSAGE(got.shape() == want.shape(),
                  what << ": shape " << got.shape().str() << " vs " << want.shape().str());
  std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  for (size_t i = 0; i < g.size(); ++i)
    if (!close(g[i], w[i], tol)) {
      FAIL_CHECK(what << ": element " << i << " is " << g[i] << " on the GPU, " << w[i]
                      << " on the CPU (tolerance " << tol << ")");
      return;
    }
}

// Random values of any dtype; `ties` draws small integers so equal values are
// common.
Tensor random_tensor(const Shape& shape, DType dt, uint64_t seed, bool ties = false) {
  Generator gen(seed);
  if (dt == kBool) return Tensor::rand(shape, kFloat64, &gen).gt(0.5);
  if (dt == kInt64) return Tensor::randint(-5, 6, shape, kInt64, &gen);
  if (ties) return Tensor::randint(-3, 4, shape, kInt64, &gen).to(dt);
  return Tensor::randn(shape, dt, &gen);
}

const DType kAllDtypes[] = {kFloat32, kFloat64, kInt64, kBool};
const DType kFloatDtypes[] = {kFloat32, kFloat64};

// A CPU tensor and its copy on the GPU.
struct Pair {
  Tensor c, g;
  explicit Pair(const Tensor& t) : c(t), g(t.to(kCUDA)) {}
  Pair(const Tensor& tc, const Tensor& tg) : c(tc), g(tg) {}
  Pair t() const { return Pair(c.transpose(0, c.dim() - 1), g.transpose(0, g.dim() - 1)); }
};

Pair empty_pair(const Shape& shape, DType dt) {
  return Pair(Tensor::empty(shape, dt), Tensor::empty(shape, TensorOptions(dt).device(kCUDA)));
}

template <class T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

}  // namespace

// ---- device selection
// ---------------------------------------------------------------------------

TEST_CASE("cuda: device selection") {
  if (cuda_available()) {
    CHECK(backend(kCUDA).device() == kCUDA);
#ifdef MMGRAD_WITH_CUDA
    MESSAGE("CUDA device: " << cuda::device_description());
#endif
    return;
  }
  // No GPU: every way into the device fails with an mmgrad::Error that says
  // why.
  CHECK_THROWS_WITH_AS(backend(kCUDA), doctest::Contains("device cuda"), Error);
  CHECK_THROWS_WITH_AS(Tensor::zeros({2, 3}, kCUDA), doctest::Contains("device cuda"), Error);
  CHECK_THROWS_WITH_AS(Tensor::ones({2}).to(kCUDA), doctest::Contains("device cuda"), Error);
  CHECK_THROWS_WITH_AS(Tensor::ones({2}).cuda(), doctest::Contains("device cuda"), Error);
#ifdef MMGRAD_WITH_CUDA
  CHECK_THROWS_WITH_AS(backend(kCUDA), doctest::Contains("no CUDA GPU is available"), Error);
  CHECK_THROWS_WITH_AS(backend(kCUDA), doctest::Contains("cudaGetDeviceCount"), Error);
  // Asking twice gives the same answer (nothing half-initialised is left
  // behind).
  CHECK_THROWS_AS(backend(kCUDA), Error);
#else
  CHECK_THROWS_WITH_AS(backend(kCUDA), doctest::Contains("built without CUDA"), Error);
#endif
  CHECK_FALSE(cuda_available());
}

TEST_CASE("cuda: cuBLAS is loaded on demand and has every entry point we call") {
#ifdef MMGRAD_WITH_CUDA
  // dlopen needs no GPU: this checks the library lookup and the symbol names on
  // any machine.
  CHECK_NOTHROW(cuda::load_cublas());
#else
  MESSAGE("mmgrad built without CUDA: nothing to load");
#endif
}

// ---- elementwise
// --------------------------------------------------------------------------------

TEST_CASE("cuda parity: fill and copy (all dtypes, strided and broadcast sources)") {
  if (!have_gpu("fill/copy parity")) return;
  for (DType dt : kAllDtypes) {
    for (bool strided : {false, true}) {
      Pair out = empty_pair({6, 4}, dt);
      Pair o = strided ? out.t() : out;
      cpu().fill(o.c.desc(), 3.0);
      gpu().fill(o.g.desc(), 3.0);
      expect_close(out.g, out.c, 0, cat_str("fill ", dtype_name(dt), " strided ", strided));
    }
    Pair big = empty_pair({100003}, dt);  // many blocks of the grid-stride loop
    cpu().fill(big.c.desc(), -1.0);
    gpu().fill(big.g.desc(), -1.0);
    expect_close(big.g, big.c, 0, cat_str("fill large ", dtype_name(dt)));
  }
  for (DType from : kAllDtypes)
    for (DType to : kAllDtypes) {
      Pair src(random_tensor({5, 7}, from, 1));
      Pair row(random_tensor({1, 7}, from, 2));
      const std::string what = cat_str("copy ", dtype_name(from), " -> ", dtype_name(to));
      {  // contiguous
        Pair out = empty_pair({5, 7}, to);
        cpu().copy(src.c.desc(), out.c.desc());
        gpu().copy(src.g.desc(), out.g.desc());
        expect_close(out.g, out.c, 0, what + " contiguous");
      }
      {  // transposed source
        Pair out = empty_pair({7, 5}, to);
        cpu().copy(src.t().c.desc(), out.c.desc());
        gpu().copy(src.t().g.desc(), out.g.desc());
        expect_close(out.g, out.c, 0, what + " transposed");
      }
      {  // broadcast source (stride 0) into a strided output
        Pair out = empty_pair({7, 5}, to);
        Shape s{5, 7};
        cpu().copy(broadcast_desc(row.c, s), out.t().c.desc());
        gpu().copy(broadcast_desc(row.g, s), out.t().g.desc());
        expect_close(out.g, out.c, 0, what + " broadcast");
      }
    }
}

TEST_CASE("cuda parity: every unary op") {
  if (!have_gpu("unary parity")) return;
  for (DType dt : {kFloat32, kFloat64, kInt64}) {
    for (int code = 0; code <= static_cast<int>(UnaryOp::Sin); ++code) {
      const UnaryOp op = static_cast<UnaryOp>(code);
      const bool positive = op == UnaryOp::Log || op == UnaryOp::Sqrt || op == UnaryOp::Pow;
      const double alpha = op == UnaryOp::Pow ? 1.7 : (op == UnaryOp::Clamp ? -0.5 : 0.75);
      const double beta = 0.8;
      for (int layout = 0; layout < 3; ++layout) {
        Tensor x = random_tensor(layout == 2 ? Shape{70001} : Shape{9, 13}, dt, 10 + code);
        if (positive && dt != kInt64) x = x.abs() + 0.1;
        Pair in(x);
        if (layout == 1) in = in.t();
        Pair out = empty_pair(in.c.shape(), dt);
        const std::string what =
            cat_str("unary op ", code, " ", dtype_name(dt), " layout ", layout);
        bool cpu_threw = false;
        try {
          cpu().unary(op, in.c.desc(), out.c.desc(), alpha, beta);
        } catch (const Error&) {
          cpu_threw = true;  // an op int64 does not support: the GPU must refuse it too
        }
        if (cpu_threw) {
          CHECK_THROWS_AS(gpu().unary(op, in.g.desc(), out.g.desc(), alpha, beta), Error);
          continue;
        }
        gpu().unary(op, in.g.desc(), out.g.desc(), alpha, beta);
        expect_close(out.g, out.c, tol_for(dt), what);
      }
    }
  }
}

TEST_CASE("cuda parity: every binary op with broadcasting, and where") {
  if (!have_gpu("binary/where parity")) return;
  const Shape sa{4, 1, 6}, sb{5, 1}, so{4, 5, 6};
  for (DType dt : kAllDtypes) {
    for (int code = 0; code <= static_cast<int>(BinaryOp::LogicalOr); ++code) {
      const BinaryOp op = static_cast<BinaryOp>(code);
      Tensor a = random_tensor(sa, dt, 20 + code), b = random_tensor(sb, dt, 40 + code);
      // Integer division by zero traps on the CPU; int64 powers with negative
      // exponents round 1/0 = inf to an undefined int64.
      if (dt == kBool && op == BinaryOp::Div) continue;
      if (dt == kInt64 && op == BinaryOp::Div) b = b.abs() + 1.0;
      if (dt == kInt64 && op == BinaryOp::Pow) b = b.abs();
      if (is_floating(dt) && op == BinaryOp::Pow) a = a.abs() + 0.1;
      const bool writes_bool = (op >= BinaryOp::Eq && op <= BinaryOp::Ge) ||
                               op == BinaryOp::LogicalAnd || op == BinaryOp::LogicalOr;
      Pair pa(a), pb(b);
      Pair out = empty_pair(so, writes_bool ? kBool : dt);
      const std::string what = cat_str("binary op ", code, " ", dtype_name(dt));
      bool cpu_threw = false;
      try {
        cpu().binary(op, broadcast_desc(pa.c, so), broadcast_desc(pb.c, so), out.c.desc());
      } catch (const Error&) {
        cpu_threw = true;
      }
      if (cpu_threw) {
        CHECK_THROWS_AS(
            gpu().binary(op, broadcast_desc(pa.g, so), broadcast_desc(pb.g, so), out.g.desc()),
            Error);
        continue;
      }
      gpu().binary(op, broadcast_desc(pa.g, so), broadcast_desc(pb.g, so), out.g.desc());
      expect_close(out.g, out.c, tol_for(out.c.dtype()), what);
    }
    // where(cond [4,1,6], a [5,6] transposed view, b scalar) -> [4,5,6]
    Pair cond(random_tensor(sa, kBool, 60));
    Pair a = Pair(random_tensor({6, 5}, dt, 61)).t();
    Pair b(random_tensor({}, dt, 62));
    Pair out = empty_pair(so, dt);
    cpu().where(broadcast_desc(cond.c, so), broadcast_desc(a.c, so), broadcast_desc(b.c, so),
                out.c.desc());
    gpu().where(broadcast_desc(cond.g, so), broadcast_desc(a.g, so), broadcast_desc(b.g, so),
                out.g.desc());
    expect_close(out.g, out.c, 0, cat_str("where ", dtype_name(dt)));
  }
}

// ---- reductions
// ---------------------------------------------------------------------------------

TEST_CASE("cuda parity: reductions over any dims (sum/max/min/argmax/argmin)") {
  if (!have_gpu("reduce parity")) return;
  const std::vector<Shape> shapes = {{1000},     {3, 4, 5},  {64, 300}, {2, 3, 4, 5},
                                     {20000, 3}, {3, 20000}, {1, 7, 1}};
  int seed = 100;
  for (DType dt : {kFloat32, kFloat64, kInt64})
    for (const Shape& shape : shapes)
      for (int view = 0; view < 2; ++view) {
        Tensor x = random_tensor(shape, dt, ++seed, /*ties=*/true);
        if (is_floating(dt) && shape.numel() < 100) {
          // a NaN in some rows: max/min/arg must propagate it like the CPU
          x = x.clone();
          std::vector<double> v = x.to_vector<double>();
          v[v.size() / 2] = std::numeric_limits<double>::quiet_NaN();
          x = Tensor::from_vector(v, shape, dt);
        }
        Pair in(x);
        if (view == 1 && shape.size() > 1) in = in.t();
        const int nd = in.c.dim();
        for (unsigned mask = 1; mask < (1u << nd); ++mask) {
          Shape kept;
          int nred = 0;
          for (int d = 0; d < nd; ++d) {
            const bool red = mask & (1u << d);
            nred += red;
            kept.push_back(red ? 1 : in.c.size(d));
          }
          for (ReduceOp op :
               {ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::ArgMax, ReduceOp::ArgMin}) {
            const bool is_arg = op == ReduceOp::ArgMax || op == ReduceOp::ArgMin;
            if (is_arg && nred != 1) continue;
            Pair out = empty_pair(kept, is_arg ? kInt64 : dt);
            cpu().reduce(op, in.c.desc(), out.c.desc());
            gpu().reduce(op, in.g.desc(), out.g.desc());
            expect_close(out.g, out.c, tol_for(out.c.dtype()),
                         cat_str("reduce op ", static_cast<int>(op), " ", dtype_name(dt), " shape ",
                                 in.c.shape().str(), " mask ", mask, " view ", view));
          }
        }
      }
}

// ---- GEMM
// ---------------------------------------------------------------------------------------

TEST_CASE("cuda parity: gemm (transposes, batch strides, alpha/beta, K = 0)") {
  if (!have_gpu("gemm parity")) return;
  for (DType dt : kFloatDtypes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (int shared_a = 0; shared_a < 2; ++shared_a)
          for (int64_t K : {int64_t{0}, int64_t{1}, int64_t{37}, int64_t{256}}) {
            const int64_t batch = 3, M = 17, N = 23, pad = 2;
            const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K;
            const int64_t b_rows = tb ? N : K, b_cols = tb ? K : N;
            GemmArgs g;
            g.dtype = dt;
            g.batch = batch;
            g.M = M;
            g.N = N;
            g.K = K;
            g.trans_a = ta;
            g.trans_b = tb;
            g.lda = std::max<int64_t>(a_cols, 1) + pad;
            g.ldb = std::max<int64_t>(b_cols, 1) + pad;
            g.ldc = N + pad;
            g.stride_a = shared_a ? 0 : a_rows * g.lda;
            g.stride_b = b_rows * g.ldb;
            g.stride_c = M * g.ldc;
            g.alpha = 1.25;
            g.beta = K == 37 ? 0.5 : 0.0;
            Pair A(random_tensor({std::max<int64_t>(batch * a_rows * g.lda, 1)}, dt, 200 + K));
            Pair B(random_tensor({std::max<int64_t>(batch * b_rows * g.ldb, 1)}, dt, 300 + K));
            Pair C(random_tensor({batch * M * g.ldc}, dt, 400 + K));
            for (int side = 0; side < 2; ++side) {  // 0: CPU, 1: GPU
              GemmArgs h = g;
              h.A = side == 0 ? A.c.raw_data() : A.g.raw_data();
              h.B = side == 0 ? B.c.raw_data() : B.g.raw_data();
              h.C = side == 0 ? C.c.raw_data() : C.g.raw_data();
              (side == 0 ? cpu() : gpu()).gemm(h);
            }
            expect_close(C.g, C.c, tol_for(dt, true),
                         cat_str("gemm ", dtype_name(dt), " trans_a ", ta, " trans_b ", tb,
                                 " shared_a ", shared_a, " K ", K));
          }
#ifdef MMGRAD_WITH_CUDA
  // TF32 only when asked for: results move by ~1e-3 relative at most, and back
  // when switched off.
  Pair a(random_tensor({128, 512}, kFloat32, 500)), b(random_tensor({512, 64}, kFloat32, 501));
  Tensor want = matmul(a.c, b.c);
  cuda::set_allow_tf32(true);
  CHECK(cuda::allow_tf32());
  Tensor tf32 = matmul(a.g, b.g);
  cuda::set_allow_tf32(false);
  expect_close(tf32, want, 2e-2, "matmul with TF32");
  expect_close(matmul(a.g, b.g), want, 1e-4, "matmul exact float32 after TF32 is switched off");
#endif
}

// ---- random numbers
// -----------------------------------------------------------------------------

TEST_CASE("cuda parity: random tensors are the same on both devices") {
  if (!have_gpu("random parity")) return;
  for (DType dt : kFloatDtypes) {
    Pair u = empty_pair({1000, 37}, dt), z = empty_pair({1000, 37}, dt);
    cpu().random(RandomDist::Uniform, u.c.desc(), 99, 12345, -1.0, 2.0);
    gpu().random(RandomDist::Uniform, u.g.desc(), 99, 12345, -1.0, 2.0);
    cpu().random(RandomDist::Normal, z.c.desc(), 99, 12345, 0.5, 3.0);
    gpu().random(RandomDist::Normal, z.g.desc(), 99, 12345, 0.5, 3.0);
    // Uniform: integer mixing and one fused multiply-add, identical bits.
    expect_close(u.g, u.c, 0, cat_str("uniform ", dtype_name(dt)));
    // Normal: log and cos of the two math libraries may differ in the last bit.
    expect_close(z.g, z.c, dt == kFloat32 ? 1e-6 : 1e-13, cat_str("normal ", dtype_name(dt)));
  }
  // Through the tensor API with a generator: the same seed gives the same
  // tensor.
  Generator g1(7), g2(7);
  expect_close(Tensor::randn({33, 5}, TensorOptions(kFloat32).device(kCUDA), &g1),
               Tensor::randn({33, 5}, kFloat32, &g2), 1e-6, "randn with a generator");
}

// ---- indexing
// -----------------------------------------------------------------------------------

TEST_CASE("cuda parity: index_select, index_add, gather, scatter_add") {
  if (!have_gpu("indexing parity")) return;
  const int64_t outer = 3, dim = 11, inner = 5, n_idx = 17, idx_dim = 9;
  Pair idx(Tensor::from_vector(
      std::vector<int64_t>{3, 0, 10, 3, 3, 7, 1, 0, 2, 9, 10, 4, 4, 5, 6, 8, 3}));
  Generator gen(5);
  Pair gidx(Tensor::randint(0, dim, {outer, idx_dim, inner}, kInt64, &gen));
  for (DType dt : kAllDtypes) {
    Pair src(random_tensor({outer, dim, inner}, dt, 600));
    Pair out = empty_pair({outer, n_idx, inner}, dt);
    cpu().index_select(dt, src.c.raw_data(), ptr<int64_t>(idx.c), out.c.raw_data(), outer, dim,
                       inner, n_idx);
    gpu().index_select(dt, src.g.raw_data(), ptr<int64_t>(idx.g), out.g.raw_data(), outer, dim,
                       inner, n_idx);
    expect_close(out.g, out.c, 0, cat_str("index_select ", dtype_name(dt)));
    Pair gout = empty_pair({outer, idx_dim, inner}, dt);
    cpu().gather(dt, src.c.raw_data(), ptr<int64_t>(gidx.c), gout.c.raw_data(), outer, dim, idx_dim,
                 inner);
    gpu().gather(dt, src.g.raw_data(), ptr<int64_t>(gidx.g), gout.g.raw_data(), outer, dim, idx_dim,
                 inner);
    expect_close(gout.g, gout.c, 0, cat_str("gather ", dtype_name(dt)));
    if (!is_floating(dt)) continue;
    // The adjoints add with atomics: repeated indices sum in another order
    // (rounding only).
    Pair vals(random_tensor({outer, n_idx, inner}, dt, 601));
    Pair dst(random_tensor({outer, dim, inner}, dt, 602));
    cpu().index_add(dt, vals.c.raw_data(), ptr<int64_t>(idx.c), dst.c.raw_data(), outer, dim, inner,
                    n_idx);
    gpu().index_add(dt, vals.g.raw_data(), ptr<int64_t>(idx.g), dst.g.raw_data(), outer, dim, inner,
                    n_idx);
    expect_close(dst.g, dst.c, tol_for(dt), cat_str("index_add ", dtype_name(dt)));
    Pair svals(random_tensor({outer, idx_dim, inner}, dt, 603));
    Pair sdst(random_tensor({outer, dim, inner}, dt, 604));
    cpu().scatter_add(dt, svals.c.raw_data(), ptr<int64_t>(gidx.c), sdst.c.raw_data(), outer, dim,
                      idx_dim, inner);
    gpu().scatter_add(dt, svals.g.raw_data(), ptr<int64_t>(gidx.g), sdst.g.raw_data(), outer, dim,
                      idx_dim, inner);
    expect_close(sdst.g, sdst.c, tol_for(dt), cat_str("scatter_add ", dtype_name(dt)));
  }
}

TEST_CASE("cuda parity: sort_rows and top-k (stable ties, signed zeros, NaN)") {
  if (!have_gpu("sort parity")) return;
  for (DType dt : kAllDtypes)
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{100}, int64_t{5000}})
      for (bool descending : {false, true})
        for (int64_t k : {n, std::min<int64_t>(n, 3)}) {
          const int64_t rows = 6;
          Tensor x = random_tensor({rows, n}, dt, 700 + n, /*ties=*/true);
          if (is_floating(dt)) {
            // every other zero becomes -0.0 (equal to +0.0 for the sort), some
            // values NaN (after every number ascending, before them descending)
            std::vector<double> v = x.to_vector<double>();
            for (size_t i = 0; i < v.size(); i += 2)
              if (v[i] == 0.0) v[i] = -0.0;
            for (size_t i = 3; i < v.size(); i += 11)
              v[i] = std::numeric_limits<double>::quiet_NaN();
            x = Tensor::from_vector(v, x.shape(), dt);
          }
          Pair in(x);
          Pair vals = empty_pair({rows, k}, dt), idx = empty_pair({rows, k}, kInt64);
          cpu().sort_rows(dt, in.c.raw_data(), vals.c.raw_data(), ptr<int64_t>(idx.c), rows, n, k,
                          descending);
          gpu().sort_rows(dt, in.g.raw_data(), vals.g.raw_data(), ptr<int64_t>(idx.g), rows, n, k,
                          descending);
          const std::string what =
              cat_str("sort ", dtype_name(dt), " n ", n, " k ", k, " descending ", descending);
          expect_close(idx.g, idx.c, 0, what + " indices");
          expect_close(vals.g, vals.c, 0, what + " values");
        }
}

// ---- softmax, cross-entropy, layer norm
// ---------------------------------------------------------

TEST_CASE("cuda parity: softmax / log_softmax forward and backward") {
  if (!have_gpu("softmax parity")) return;
  struct Case {
    int64_t outer, dim, inner;
  };
  for (DType dt : kFloatDtypes)
    for (Case cs : {Case{4, 10, 1}, Case{3, 1000, 1}, Case{2, 5, 7}, Case{1, 3000, 1},
                    Case{3, 1, 1}, Case{2, 300, 3}})
      for (bool log : {false, true}) {
        const Shape s{cs.outer, cs.dim, cs.inner};
        Tensor x = random_tensor(s, dt, 800 + cs.dim) * 3.0;
        if (cs.outer > 1 && cs.inner == 1) {  // a row of -inf gives NaN / -inf on both
          std::vector<double> v = x.to_vector<double>();
          for (int64_t i = 0; i < cs.dim; ++i) v[i] = -std::numeric_limits<double>::infinity();
          x = Tensor::from_vector(v, s, dt);
        }
        Pair in(x), y = empty_pair(s, dt);
        for (bool on_gpu : {false, true})
          (on_gpu ? gpu() : cpu())
              .softmax_forward({.dtype = dt,
                                .x = (on_gpu ? in.g : in.c).raw_data(),
                                .y = (on_gpu ? y.g : y.c).raw_data(),
                                .outer = cs.outer,
                                .dim = cs.dim,
                                .inner = cs.inner,
                                .log = log});
        const std::string what =
            cat_str(log ? "log_softmax " : "softmax ", dtype_name(dt), " ", s.str());
        expect_close(y.g, y.c, tol_for(dt), what);
        // backward from the CPU's y on both sides (the -inf row is left out:
        // NaN in, NaN out)
        Tensor yc = log ? Tensor(y.c).clamp(-50.0, 0.0) : Tensor(y.c).clamp(0.0, 1.0);
        Pair yy(yc), gy(random_tensor(s, dt, 900 + cs.dim)), gx = empty_pair(s, dt);
        for (bool on_gpu : {false, true})
          (on_gpu ? gpu() : cpu())
              .softmax_backward({.dtype = dt,
                                 .y = (on_gpu ? yy.g : yy.c).raw_data(),
                                 .gy = (on_gpu ? gy.g : gy.c).raw_data(),
                                 .gx = (on_gpu ? gx.g : gx.c).raw_data(),
                                 .outer = cs.outer,
                                 .dim = cs.dim,
                                 .inner = cs.inner,
                                 .log = log});
        expect_close(gx.g, gx.c, tol_for(dt), what + " backward");
      }
}

TEST_CASE("cuda parity: cross_entropy forward and backward") {
  if (!have_gpu("cross-entropy parity")) return;
  const int64_t ignore = -100;
  for (DType dt : kFloatDtypes)
    for (int64_t C : {int64_t{3}, int64_t{1000}})
      for (double eps : {0.0, 0.1}) {
        const int64_t N = 7;
        Pair x(random_tensor({N, C}, dt, 1000 + C) * 2.0);
        Pair target(
            Tensor::from_vector(std::vector<int64_t>{0, C - 1, ignore, 1, 2 % C, ignore, 0}));
        Pair loss = empty_pair({N}, dt), lse = empty_pair({N}, dt);
        for (bool on_gpu : {false, true})
          (on_gpu ? gpu() : cpu())
              .cross_entropy_forward({.dtype = dt,
                                      .logits = (on_gpu ? x.g : x.c).raw_data(),
                                      .target = ptr<int64_t>(on_gpu ? target.g : target.c),
                                      .loss = (on_gpu ? loss.g : loss.c).raw_data(),
                                      .lse = (on_gpu ? lse.g : lse.c).raw_data(),
                                      .N = N,
                                      .C = C,
                                      .ignore_index = ignore,
                                      .label_smoothing = eps});
        const std::string what = cat_str("cross_entropy ", dtype_name(dt), " C ", C, " eps ", eps);
        expect_close(loss.g, loss.c, tol_for(dt), what + " loss");
        expect_close(lse.g, lse.c, tol_for(dt), what + " lse");
        Pair g(random_tensor({N}, dt, 1100)), gx = empty_pair({N, C}, dt);
        Pair lse_c(lse.c);  // the CPU's lse on both sides
        for (bool on_gpu : {false, true})
          (on_gpu ? gpu() : cpu())
              .cross_entropy_backward({.dtype = dt,
                                       .logits = (on_gpu ? x.g : x.c).raw_data(),
                                       .target = ptr<int64_t>(on_gpu ? target.g : target.c),
                                       .lse = (on_gpu ? lse_c.g : lse_c.c).raw_data(),
                                       .grad_loss = (on_gpu ? g.g : g.c).raw_data(),
                                       .gx = (on_gpu ? gx.g : gx.c).raw_data(),
                                       .N = N,
                                       .C = C,
                                       .ignore_index = ignore,
                                       .label_smoothing = eps});
        expect_close(gx.g, gx.c, tol_for(dt), what + " backward");
      }
}

TEST_CASE("cuda parity: layer_norm forward and backward") {
  if (!have_gpu("layer-norm parity")) return;
  for (DType dt : kFloatDtypes)
    for (auto [N, D] :
         std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {5, 7}, {300, 64}, {9, 1000}})
      for (int affine = 0; affine < 2; ++affine) {
        Pair x(random_tensor({N, D}, dt, 1200 + D) * 2.0 + 1.0);
        Pair w(random_tensor({D}, dt, 1201)), b(random_tensor({D}, dt, 1202));
        Pair y = empty_pair({N, D}, dt), mean = empty_pair({N}, dt), rstd = empty_pair({N}, dt);
        const void* wc = affine ? w.c.raw_data() : nullptr;
        const void* bc = affine ? b.c.raw_data() : nullptr;
        const void* wg = affine ? w.g.raw_data() : nullptr;
        const void* bg = affine ? b.g.raw_data() : nullptr;
        for (bool on_gpu : {false, true})
          (on_gpu ? gpu() : cpu())
              .layer_norm_forward({.dtype = dt,
                                   .x = (on_gpu ? x.g : x.c).raw_data(),
                                   .w = on_gpu ? wg : wc,
                                   .b = on_gpu ? bg : bc,
                                   .y = (on_gpu ? y.g : y.c).raw_data(),
                                   .mean = (on_gpu ? mean.g : mean.c).raw_data(),
                                   .rstd = (on_gpu ? rstd.g : rstd.c).raw_data(),
                                   .N = N,
                                   .D = D,
                                   .eps = 1e-5});
        const std::string what =
            cat_str("layer_norm ", dtype_name(dt), " N ", N, " D ", D, " affine ", affine);
        expect_close(y.g, y.c, tol_for(dt), what);
        expect_close(mean.g, mean.c, tol_for(dt), what + " mean");
        expect_close(rstd.g, rstd.c, tol_for(dt), what + " rstd");
        Pair gy(random_tensor({N, D}, dt, 1203)), gx = empty_pair({N, D}, dt);
        Pair gw = empty_pair({D}, dt), gb = empty_pair({D}, dt);
        Pair m(mean.c), r(rstd.c);
        for (bool on_gpu : {false, true})
          (on_gpu ? gpu() : cpu())
              .layer_norm_backward({.dtype = dt,
                                    .gy = (on_gpu ? gy.g : gy.c).raw_data(),
                                    .x = (on_gpu ? x.g : x.c).raw_data(),
                                    .mean = (on_gpu ? m.g : m.c).raw_data(),
                                    .rstd = (on_gpu ? r.g : r.c).raw_data(),
                                    .w = on_gpu ? wg : wc,
                                    .gx = (on_gpu ? gx.g : gx.c).raw_data(),
                                    .gw = (on_gpu ? gw.g : gw.c).raw_data(),
                                    .gb = affine ? (on_gpu ? gb.g : gb.c).raw_data() : nullptr,
                                    .N = N,
                                    .D = D});
        expect_close(gx.g, gx.c, tol_for(dt), what + " gx");
        expect_close(gw.g, gw.c, tol_for(dt), what + " gw");
        if (affine) expect_close(gb.g, gb.c, tol_for(dt), what + " gb");
      }
}

// ---- convolution and pooling
// --------------------------------------------------------------------

TEST_CASE("cuda parity: im2col, col2im, max/avg/adaptive pooling") {
  if (!have_gpu("conv/pool parity")) return;
  auto geom = [](int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t S, int64_t P,
                 int64_t D) {
    Conv2dGeom g;
    g.N = N;
    g.C = C;
    g.H = H;
    g.W = W;
    g.KH = K;
    g.KW = K;
    g.SH = g.SW = S;
    g.PH = g.PW = P;
    g.DH = g.DW = D;
    g.OH = index::conv_out_size(H, K, S, P, D);
    g.OW = index::conv_out_size(W, K, S, P, D);
    return g;
  };
  for (DType dt : kFloatDtypes)
    for (const Conv2dGeom& g : {geom(2, 3, 9, 8, 3, 1, 1, 1), geom(3, 4, 16, 16, 2, 2, 0, 1),
                                geom(1, 2, 11, 13, 3, 2, 2, 2), geom(2, 3, 32, 32, 5, 1, 2, 1)}) {
      const std::string where = cat_str(dtype_name(dt), " ", g.H, "x", g.W, " k", g.KH, " s", g.SH,
                                        " p", g.PH, " d", g.DH);
      const int64_t rows = g.C * g.KH * g.KW, P = g.OH * g.OW;
      Pair x(random_tensor({g.N, g.C, g.H, g.W}, dt, 1300));
      Pair xt(random_tensor({g.N, g.C, g.H, g.W}, dt, 1301, /*ties=*/true));
      Pair cols = empty_pair({g.N, rows, P}, dt);
      cpu().im2col(dt, x.c.raw_data(), cols.c.raw_data(), g);
      gpu().im2col(dt, x.g.raw_data(), cols.g.raw_data(), g);
      expect_close(cols.g, cols.c, 0, "im2col " + where);
      Pair gx0(random_tensor({g.N, g.C, g.H, g.W}, dt, 1302));
      Pair c(cols.c);
      {
        Pair gx(gx0.c.clone());
        cpu().col2im(dt, c.c.raw_data(), gx.c.raw_data(), g);
        gpu().col2im(dt, c.g.raw_data(), gx.g.raw_data(), g);
        expect_close(gx.g, gx.c, tol_for(dt), "col2im " + where);
      }
      // Each backend keeps the winners in its own record layout (max_pool2d_record_bytes), so
      // the records are not compared: the gradient routed through them is.
      auto record_words = [&](Backend& be) {
        return Shape{(be.max_pool2d_record_bytes(dt, g) + 7) / 8};
      };
      Pair y = empty_pair({g.N, g.C, g.OH, g.OW}, dt);
      Pair rec(Tensor::empty(record_words(cpu()), kInt64),
               Tensor::empty(record_words(gpu()), TensorOptions(kInt64).device(kCUDA)));
      cpu().max_pool2d_forward(dt, xt.c.raw_data(), y.c.raw_data(), rec.c.raw_data(), g);
      gpu().max_pool2d_forward(dt, xt.g.raw_data(), y.g.raw_data(), rec.g.raw_data(), g);
      expect_close(y.g, y.c, 0, "max_pool2d " + where);
      Pair gy(random_tensor({g.N, g.C, g.OH, g.OW}, dt, 1303));
      {
        Pair gx(gx0.c.clone());  // written whole: the starting values must not show through
        cpu().max_pool2d_backward(dt, gy.c.raw_data(), rec.c.raw_data(), gx.c.raw_data(), g);
        gpu().max_pool2d_backward(dt, gy.g.raw_data(), rec.g.raw_data(), gx.g.raw_data(), g);
        expect_close(gx.g, gx.c, tol_for(dt), "max_pool2d backward " + where);
      }
      cpu().avg_pool2d_forward(dt, x.c.raw_data(), y.c.raw_data(), g);
      gpu().avg_pool2d_forward(dt, x.g.raw_data(), y.g.raw_data(), g);
      expect_close(y.g, y.c, tol_for(dt), "avg_pool2d " + where);
      {
        Pair gx(gx0.c.clone());
        cpu().avg_pool2d_backward(dt, gy.c.raw_data(), gx.c.raw_data(), g);
        gpu().avg_pool2d_backward(dt, gy.g.raw_data(), gx.g.raw_data(), g);
        expect_close(gx.g, gx.c, tol_for(dt), "avg_pool2d backward " + where);
      }
      // adaptive: the input to (3, 2)
      Conv2dGeom ga;
      ga.N = g.N;
      ga.C = g.C;
      ga.H = g.H;
      ga.W = g.W;
      ga.OH = 3;
      ga.OW = 2;
      Pair ya = empty_pair({g.N, g.C, 3, 2}, dt);
      cpu().adaptive_avg_pool2d_forward(dt, x.c.raw_data(), ya.c.raw_data(), ga);
      gpu().adaptive_avg_pool2d_forward(dt, x.g.raw_data(), ya.g.raw_data(), ga);
      expect_close(ya.g, ya.c, tol_for(dt), "adaptive_avg_pool2d " + where);
      Pair gya(random_tensor({g.N, g.C, 3, 2}, dt, 1304));
      Pair gx(gx0.c.clone());
      cpu().adaptive_avg_pool2d_backward(dt, gya.c.raw_data(), gx.c.raw_data(), ga);
      gpu().adaptive_avg_pool2d_backward(dt, gya.g.raw_data(), gx.g.raw_data(), ga);
      expect_close(gx.g, gx.c, tol_for(dt), "adaptive_avg_pool2d backward " + where);
    }
}

// ---- optimizer
// ----------------------------------------------------------------------------------

TEST_CASE("cuda parity: adam_step (Adam and AdamW)") {
  if (!have_gpu("adam parity")) return;
  for (DType dt : kFloatDtypes)
    for (bool decoupled : {false, true}) {
      const int64_t n = 10007;
      Pair p(random_tensor({n}, dt, 1400)), g(random_tensor({n}, dt, 1401));
      Pair m(random_tensor({n}, dt, 1402) * 0.1), v(random_tensor({n}, dt, 1403).abs() * 0.01);
      for (int64_t step = 1; step <= 3; ++step) {
        for (bool on_gpu : {false, true})
          (on_gpu ? gpu() : cpu())
              .adam_step({.dtype = dt,
                          .param = (on_gpu ? p.g : p.c).raw_data(),
                          .grad = (on_gpu ? g.g : g.c).raw_data(),
                          .exp_avg = (on_gpu ? m.g : m.c).raw_data(),
                          .exp_avg_sq = (on_gpu ? v.g : v.c).raw_data(),
                          .n = n,
                          .lr = 1e-3,
                          .beta1 = 0.9,
                          .beta2 = 0.999,
                          .eps = 1e-8,
                          .weight_decay = 0.01,
                          .step = step,
                          .decoupled = decoupled});
      }
      const std::string what = cat_str("adam ", dtype_name(dt), " decoupled ", decoupled);
      expect_close(p.g, p.c, tol_for(dt), what + " param");
      expect_close(m.g, m.c, tol_for(dt), what + " exp_avg");
      expect_close(v.g, v.c, tol_for(dt), what + " exp_avg_sq");
    }
}

// ---- ops and autograd on the GPU
// ---------------------------------------------------------------- Every op
// case (forward and input gradients, float32 and float64, CPU against CUDA)
// runs from the op list: tests/test_op_list.cpp, "op list cuda parity". Here:
// what the list cannot express.

TEST_CASE("cuda: the gradient crosses devices back to a CPU leaf") {
  if (!have_gpu("cross-device autograd")) return;
  Tensor x = Tensor::randn({3, 4}, kFloat64).requires_grad_();
  Tensor y = (x.to(kCUDA) * 3.0).sum();
  y.backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().device() == kCPU);
  expect_close(x.grad(), Tensor::full({3, 4}, 3.0, kFloat64), 0, "gradient across devices");
}

TEST_CASE("cuda: mixing devices in one op is a clear error") {
  if (!have_gpu("device-mixing errors")) return;
  Tensor a = Tensor::ones({2, 3}), b = Tensor::ones({2, 3}, kCUDA);
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("same device"), Error);
  CHECK_THROWS_WITH_AS(matmul(a, b.t()), doctest::Contains("device"), Error);
  CHECK_THROWS_WITH_AS(gpu().unary(UnaryOp::Exp, b.to(kInt64).desc(), b.to(kInt64).desc(), 0, 0),
                       doctest::Contains("floating"), Error);
}

// ---- memory
// -------------------------------------------------------------------------------------

TEST_CASE("cuda: a steady-state training loop makes no cudaMalloc call") {
  if (!have_gpu("allocator test")) return;
#ifdef MMGRAD_WITH_CUDA
  const TensorOptions o = TensorOptions(kFloat32).device(kCUDA);
  Generator gen(9);
  Tensor w1 = (Tensor::randn({64, 128}, o, &gen) * 0.1).detach().requires_grad_();
  Tensor w2 = (Tensor::randn({128, 10}, o, &gen) * 0.1).detach().requires_grad_();
  Tensor x = Tensor::randn({32, 64}, o, &gen), t = Tensor::randn({32, 10}, o, &gen);
  auto step = [&] {
    Tensor loss = (matmul(matmul(x, w1).relu(), w2) - t).square().mean();
    loss.backward();
    NoGradGuard ng;
    w1.add_(w1.grad(), -0.01);
    w2.add_(w2.grad(), -0.01);
    w1.grad().zero_();
    w2.grad().zero_();
    return loss.item();
  };
  step();
  step();  // warm-up: every size the step needs is now in the cache
  const cuda::AllocatorStats before = cuda::allocator_stats();
  double first = 0, last = 0;
  for (int i = 0; i < 10; ++i) {
    double l = step();
    if (i == 0) first = l;
    last = l;
  }
  const cuda::AllocatorStats after = cuda::allocator_stats();
  CHECK(after.cuda_malloc_calls == before.cuda_malloc_calls);
  CHECK(after.cache_hits > before.cache_hits);
  CHECK(last < first);  // and it is actually training
  // empty_cache gives the cached blocks back with cudaFree.
  cuda::empty_cache();
  const cuda::AllocatorStats emptied = cuda::allocator_stats();
  CHECK(emptied.bytes_cached == 0);
  CHECK(emptied.cuda_free_calls > after.cuda_free_calls);
#endif
}
