// The GEMM kernel ladder (kernels/cpu/gemm_ladder.h): every rung computes the same product.
//
// Each rung is checked against a float64 reference and against the naive rung, and the naive
// rung against the backend's Eigen GEMM (cpu::gemm_eigen_tiles), on odd
// sizes (1, 7, 63, 65, 257: partial micro-tiles and blocks everywhere), all four transpose
// combinations, leading dimensions wider than the rows, alpha and beta, an empty K (C = beta * C)
// and NaN / Inf propagation. Rung 5 runs with every micro-kernel this CPU supports (AVX-512, AVX2,
// scalar); rungs 4 and 5 give the same bits on 1 and 2 threads. The backend's GEMM
// (kernels/cpu/gemm.cpp) is checked against the Eigen reference on batched, strided and shared
// operands, float32 and float64, and to be the top rung bit for bit, with the switch that routes it
// through the ladder on (cpu::set_gemm_ladder; on by default).
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core_test_util.h"
#include "mmgrad/kernels/backend.h"
#include "mmgrad/kernels/cpu/gemm_ladder.h"

using namespace mmgrad;
using namespace mmgrad::cpu::ladder;

namespace {

// One problem: sizes, layouts, scalars and the stored operands (with their padding).
struct Problem {
  bool ta = false, tb = false;
  int64_t M = 0, N = 0, K = 0, lda = 0, ldb = 0, ldc = 0;
  float alpha = 1, beta = 0;
  std::vector<float> A, B, C0;  // C0: C before the call
};

// Random operands in [-1, 1); `pad` extra columns in every leading dimension, filled with a
// value that would show up if a kernel read past a row (1e30).
Problem make_problem(int64_t M, int64_t N, int64_t K, bool ta, bool tb, int64_t pad, float alpha,
                     float beta, unsigned seed) {
  Problem p;
  p.ta = ta, p.tb = tb, p.M = M, p.N = N, p.K = K, p.alpha = alpha, p.beta = beta;
  const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K;
  const int64_t b_rows = tb ? N : K, b_cols = tb ? K : N;
  p.lda = a_cols + pad, p.ldb = b_cols + pad, p.ldc = N + pad;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  auto fill = [&](std::vector<float>& v, int64_t rows, int64_t cols, int64_t ld) {
    v.assign(static_cast<size_t>(std::max<int64_t>(rows * ld, 1)), 1e30f);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) v[i * ld + j] = u(rng);
  };
  fill(p.A, a_rows, a_cols, p.lda);
  fill(p.B, b_rows, b_cols, p.ldb);
  fill(p.C0, M, N, p.ldc);
  return p;
}

std::vector<float> run(const Problem& p, SgemmFn fn) {
  std::vector<float> C = p.C0;
  fn(p.ta, p.tb, p.M, p.N, p.K, p.alpha, p.A.data(), p.lda, p.B.data(), p.ldb, p.beta, C.data(),
     p.ldc);
  return C;
}

std::vector<float> run_isa(const Problem& p, Isa isa) {
  std::vector<float> C = p.C0;
  sgemm_microkernel_isa(isa, p.ta, p.tb, p.M, p.N, p.K, p.alpha, p.A.data(), p.lda, p.B.data(),
                        p.ldb, p.beta, C.data(), p.ldc);
  return C;
}

// The Eigen reference (the backend's GEMM before the ladder) on the same buffers.
std::vector<float> run_eigen(const Problem& p) {
  std::vector<float> C = p.C0;
  cpu::gemm_eigen_tiles(GemmArgs{
      .dtype = DType::Float32, .M = p.M, .N = p.N, .K = p.K, .alpha = p.alpha, .beta = p.beta}
                            .a(p.A.data(), p.lda, p.ta)
                            .b(p.B.data(), p.ldb, p.tb)
                            .c(C.data(), p.ldc));
  return C;
}

// Largest error of C against the float64 product, in units of the error bound a float32 k-sum
// may have: K * eps * sum_k |a_ik b_kj| (+ the rounding of alpha, beta). Below 1 is correct
// whatever the summation order; a wrong element (a missed term, a wrong index) is off by ~1e6.
// The padding of C (columns N..ldc) must be untouched.
double error_units(const Problem& p, const std::vector<float>& C) {
  const auto opa = [&](int64_t i, int64_t k) {
    return static_cast<double>(p.ta ? p.A[k * p.lda + i] : p.A[i * p.lda + k]);
  };
  const auto opb = [&](int64_t k, int64_t j) {
    return static_cast<double>(p.tb ? p.B[j * p.ldb + k] : p.B[k * p.ldb + j]);
  };
  const double eps = std::numeric_limits<float>::epsilon();
  double worst = 0;
  for (int64_t i = 0; i < p.M; ++i)
    for (int64_t j = 0; j < p.ldc; ++j) {
      const double got = C[i * p.ldc + j];
      if (j >= p.N) {  // padding
        if (got != p.C0[i * p.ldc + j]) return INFINITY;
        continue;
      }
      double sum = 0, mag = 0;
      for (int64_t k = 0; k < p.K; ++k) {
        sum += opa(i, k) * opb(k, j);
        mag += std::abs(opa(i, k) * opb(k, j));
      }
      const double c0 = p.C0[i * p.ldc + j];
      const double want = p.alpha * sum + (p.beta == 0 ? 0.0 : p.beta * c0);
      const double bound =
          (static_cast<double>(p.K) + 3) * eps * (std::abs(p.alpha) * mag + std::abs(p.beta * c0)) +
          1e-30;
      if (std::isnan(got)) return INFINITY;
      worst = std::max(worst, std::abs(got - want) / bound);
    }
  return worst;
}

std::string describe(const Problem& p) {
  return "M=" + std::to_string(p.M) + " N=" + std::to_string(p.N) + " K=" + std::to_string(p.K) +
         (p.ta ? " A^T" : "") + (p.tb ? " B^T" : "") + " lda=" + std::to_string(p.lda) +
         " ldb=" + std::to_string(p.ldb) + " ldc=" + std::to_string(p.ldc) +
         " alpha=" + std::to_string(p.alpha) + " beta=" + std::to_string(p.beta);
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512})
    if (isa_supported(isa)) out.push_back(isa);
  return out;
}

// The problems every rung runs: odd sizes in each dimension, each transpose combination, padded
// leading dimensions, beta 0 / 1 / other, alpha 1 / other.
std::vector<Problem> problems() {
  std::vector<Problem> out;
  unsigned seed = 1;
  const int64_t sizes[] = {1, 7, 63, 65, 257};
  for (int64_t s : sizes)
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      // s in each role in turn, the others moderate; and the cube s x s x s for s < 257.
      out.push_back(make_problem(s, 33, 29, ta, tb, t, 1.0f, 0.0f, seed++));
      out.push_back(make_problem(31, s, 37, ta, tb, 3, 1.0f, 1.0f, seed++));
      out.push_back(make_problem(19, 45, s, ta, tb, 1, 0.75f, 0.5f, seed++));
      if (s < 257) out.push_back(make_problem(s, s, s, ta, tb, 2, -1.5f, 0.0f, seed++));
    }
  // Several k blocks (K > 256, the packed rungs' KC) with every edge case of M and N at once.
  out.push_back(make_problem(257, 65, 800, false, false, 5, 1.0f, 1.0f, seed++));
  out.push_back(make_problem(65, 257, 800, true, true, 0, 1.0f, 0.25f, seed++));
  return out;
}

}  // namespace

TEST_CASE("gemm ladder: every rung matches the float64 product on odd sizes and layouts") {
  int n_rungs = 0;
  const Rung* all = rungs(&n_rungs);
  REQUIRE(n_rungs == 5);
  const std::vector<Problem> ps = problems();
  REQUIRE(ps.size() > 70);
  for (int r = 0; r < n_rungs; ++r)
    for (const Problem& p : ps) {
      const double err = error_units(p, run(p, all[r].fn));
      CHECK_MESSAGE(err < 1.0, all[r].name, ": ", describe(p), ": error ", err, " bounds");
    }
}

TEST_CASE("gemm ladder: every supported micro-kernel matches the naive rung") {
  const std::vector<Isa> isas = supported_isas();
  REQUIRE(!isas.empty());
  CHECK(isas.front() == Isa::Scalar);
  CHECK(best_isa() == isas.back());
#if defined(__x86_64__)
  // On this project's machines (x86-64 with AVX-512) the AVX-512 path must be the one chosen.
  if (__builtin_cpu_supports("avx512f")) CHECK(best_isa() == Isa::Avx512);
#endif
  for (Isa isa : isas) {
    MESSAGE("micro-kernel ", std::string(isa_name(isa)));
    for (const Problem& p : problems()) {
      const std::vector<float> got = run_isa(p, isa), naive = run(p, &sgemm_naive);
      CHECK_MESSAGE(error_units(p, got) < 1.0, isa_name(isa), ": ", describe(p));
      // Against the naive rung: within the same rounding bound (both are float32 k-sums).
      double worst = 0;
      for (int64_t i = 0; i < p.M; ++i)
        for (int64_t j = 0; j < p.N; ++j)
          worst = std::max(
              worst, static_cast<double>(std::abs(got[i * p.ldc + j] - naive[i * p.ldc + j])));
      CHECK_MESSAGE(worst <= 1e-4 * std::max<int64_t>(p.K, 1), isa_name(isa), ": ", describe(p));
    }
  }
}

TEST_CASE("gemm ladder: the naive rung matches the Eigen reference GEMM") {
  for (const Problem& p : problems()) {
    const std::vector<float> naive = run(p, &sgemm_naive), eigen = run_eigen(p);
    CHECK_MESSAGE(error_units(p, eigen) < 1.0, describe(p));
    double worst = 0;
    for (int64_t i = 0; i < p.M; ++i)
      for (int64_t j = 0; j < p.N; ++j)
        worst = std::max(
            worst, static_cast<double>(std::abs(naive[i * p.ldc + j] - eigen[i * p.ldc + j])));
    CHECK_MESSAGE(worst <= 1e-4 * std::max<int64_t>(p.K, 1), describe(p));
  }
}

TEST_CASE("gemm ladder: empty K gives C = beta * C, and beta 0 ignores NaN in C") {
  int n_rungs = 0;
  const Rung* all = rungs(&n_rungs);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int r = 0; r < n_rungs; ++r) {
    for (float beta : {0.0f, 1.0f, 0.5f}) {
      Problem p = make_problem(9, 70, 0, false, false, 2, 1.0f, beta, 7);
      p.C0[0] = nan;  // beta 0: overwritten with 0; otherwise NaN stays (beta * NaN)
      const std::vector<float> C = run(p, all[r].fn);
      for (int64_t i = 0; i < p.M; ++i)
        for (int64_t j = 0; j < p.N; ++j) {
          const float c0 = p.C0[i * p.ldc + j], got = C[i * p.ldc + j];
          if (beta == 0.0f)
            CHECK_MESSAGE(got == 0.0f, all[r].name, " beta 0, K 0, at ", i, ",", j);
          else if (i == 0 && j == 0)
            CHECK_MESSAGE(std::isnan(got), all[r].name);
          else
            CHECK_MESSAGE(got == beta * c0, all[r].name, " beta ", beta, " K 0, at ", i, ",", j);
        }
    }
    // beta 0 with K > 0: a NaN or Inf in the old C must not reach the result.
    Problem p = make_problem(20, 40, 300, true, false, 1, 1.0f, 0.0f, 8);
    p.C0[3] = nan;
    p.C0[5 * p.ldc + 17] = std::numeric_limits<float>::infinity();
    CHECK_MESSAGE(error_units(p, run(p, all[r].fn)) < 1.0, all[r].name);
  }
}

TEST_CASE("gemm ladder: a NaN or Inf in A or B reaches C even where the other factor is zero") {
  int n_rungs = 0;
  const Rung* all = rungs(&n_rungs);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (int r = 0; r < n_rungs; ++r)
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      // Zero B, NaN at A(5, 3): row 5 of C is NaN (NaN * 0 = NaN), every other row is 0.
      // Zero A, Inf at B(400, 40): column 40 of C is NaN (Inf * 0), the rest 0. K = 401 puts
      // the Inf in the second k block of the packed rungs (KC = 256).
      for (int which = 0; which < 2; ++which) {
        Problem p = make_problem(33, 70, 401, ta, tb, 1, 1.0f, 0.0f, 9);
        std::vector<float>& zero = which == 0 ? p.B : p.A;
        for (float& v : zero) v = 0.0f;
        if (which == 0)
          p.A[ta ? 3 * p.lda + 5 : 5 * p.lda + 3] = nan;
        else
          p.B[tb ? 40 * p.ldb + 400 : 400 * p.ldb + 40] = inf;
        const std::vector<float> C = run(p, all[r].fn);
        int64_t nans = 0, wrong = 0;
        for (int64_t i = 0; i < p.M; ++i)
          for (int64_t j = 0; j < p.N; ++j) {
            const bool want_nan = which == 0 ? i == 5 : j == 40;
            const float got = C[i * p.ldc + j];
            nans += std::isnan(got);
            wrong += want_nan ? !std::isnan(got) : got != 0.0f;
          }
        CHECK_MESSAGE(wrong == 0, all[r].name, (which == 0 ? " NaN in A" : " Inf in B"),
                      (ta ? " A^T" : ""), (tb ? " B^T" : ""));
        CHECK(nans == (which == 0 ? p.N : p.M));
      }
    }
}

TEST_CASE("gemm ladder: the threaded rungs give the same bits on 1, 2, 3 and 4 threads") {
  const int saved = omp_get_max_threads();
  int n_rungs = 0;
  const Rung* all = rungs(&n_rungs);
  int compared = 0;
  for (int r = 0; r < n_rungs; ++r) {
    if (!all[r].threaded) continue;
    // Large enough to be threaded; K spans several k blocks; a short M (split into column
    // strips), a narrow N (row strips), and one too small in both to give 4 threads a strip.
    for (const Problem& p : {make_problem(300, 200, 900, false, true, 3, 1.0f, 0.5f, 11),
                             make_problem(20, 1000, 520, true, false, 0, 1.0f, 0.0f, 12),
                             make_problem(2000, 20, 400, false, false, 1, 1.0f, 1.0f, 13),
                             make_problem(20, 40, 3000, false, false, 0, 1.0f, 0.0f, 14)}) {
      omp_set_num_threads(1);
      const std::vector<float> one = run(p, all[r].fn);
      CHECK(error_units(p, one) < 1.0);
      for (int threads : {2, 3, 4}) {
        omp_set_num_threads(threads);
        const std::vector<float> many = run(p, all[r].fn);
        CHECK_MESSAGE(std::memcmp(one.data(), many.data(), one.size() * sizeof(float)) == 0,
                      all[r].name, " on ", threads, " threads: ", describe(p));
        ++compared;
      }
    }
  }
  omp_set_num_threads(saved);
  CHECK(compared == 24);
}

// A transposed A (stored K x M) is read in place by the AVX-512 kernel, not packed
// (MicroKernelT::fn_a): the same product with A stored M x K goes through the packed path, and
// the two must agree bit for bit (same multiply-adds, same order), on every row count of an edge
// tile, several k blocks, padded leading dimensions (a read past a row of A would pick up the
// 1e30 padding), alpha and beta, and 1, 2 and 3 threads.
TEST_CASE("gemm ladder: a transposed A read in place gives the bits of the packed A") {
  const int saved = omp_get_max_threads();
  int compared = 0;
  const int64_t shapes[][3] = {{1, 5, 3},       {13, 32, 256},   {14, 33, 257},  {15, 64, 600},
                               {27, 17, 40},    {128, 64, 4096}, {141, 70, 513}, {300, 90, 260},
                               {20, 1000, 520}, {64, 128, 1000}};
  unsigned seed = 40;
  for (const auto& s : shapes)
    for (bool tb : {false, true}) {
      const float alpha = seed % 3 == 0 ? 1.0f : -0.75f, beta = seed % 2 ? 0.0f : 0.5f;
      const Problem t = make_problem(s[0], s[1], s[2], true, tb, seed % 3, alpha, beta, seed);
      // The same A stored M x K (op(A) unchanged), padded as t's.
      Problem n = t;
      n.ta = false;
      n.lda = t.K + t.lda - t.M;
      n.A.assign(static_cast<size_t>(std::max<int64_t>(t.M * n.lda, 1)), 1e30f);
      for (int64_t i = 0; i < t.M; ++i)
        for (int64_t k = 0; k < t.K; ++k) n.A[i * n.lda + k] = t.A[k * t.lda + i];
      ++seed;
      omp_set_num_threads(1);
      const std::vector<float> packed = run(n, &sgemm_microkernel);
      CHECK(error_units(t, packed) < 1.0);
      for (int threads : {1, 2, 3}) {
        omp_set_num_threads(threads);
        const std::vector<float> in_place = run(t, &sgemm_microkernel);
        CHECK_MESSAGE(std::memcmp(packed.data(), in_place.data(), packed.size() * 4) == 0,
                      describe(t), " on ", threads, " threads");
        ++compared;
      }
    }
  omp_set_num_threads(saved);
  CHECK(compared == 60);
}

// ---- float64 (dgemm_microkernel: the same loops with float64 micro-kernels)
// ----------------------
namespace {

struct ProblemD {
  Problem p;  // sizes, layouts and scalars; the operands below are p's, widened to double
  std::vector<double> A, B, C0;
};

ProblemD widen(const Problem& p) {
  return {p, std::vector<double>(p.A.begin(), p.A.end()),
          std::vector<double>(p.B.begin(), p.B.end()),
          std::vector<double>(p.C0.begin(), p.C0.end())};
}

std::vector<double> run_d(const ProblemD& d, Isa isa) {
  std::vector<double> C = d.C0;
  const Problem& p = d.p;
  dgemm_microkernel_isa(isa, p.ta, p.tb, p.M, p.N, p.K, p.alpha, d.A.data(), p.lda, d.B.data(),
                        p.ldb, p.beta, C.data(), p.ldc);
  return C;
}

// As error_units, for float64: against a long double product, in units of K * eps(double) * sum
// |a b|; NaN where the reference is finite, or a touched padding element, is infinitely wrong.
double error_units_d(const ProblemD& d, const std::vector<double>& C) {
  const Problem& p = d.p;
  const auto opa = [&](int64_t i, int64_t k) {
    return static_cast<long double>(p.ta ? d.A[k * p.lda + i] : d.A[i * p.lda + k]);
  };
  const auto opb = [&](int64_t k, int64_t j) {
    return static_cast<long double>(p.tb ? d.B[j * p.ldb + k] : d.B[k * p.ldb + j]);
  };
  const double eps = std::numeric_limits<double>::epsilon();
  double worst = 0;
  for (int64_t i = 0; i < p.M; ++i)
    for (int64_t j = 0; j < p.ldc; ++j) {
      const double got = C[i * p.ldc + j];
      if (j >= p.N) {
        if (got != d.C0[i * p.ldc + j]) return INFINITY;
        continue;
      }
      long double sum = 0, mag = 0;
      for (int64_t k = 0; k < p.K; ++k) {
        sum += opa(i, k) * opb(k, j);
        mag += std::abs(opa(i, k) * opb(k, j));
      }
      const long double c0 = d.C0[i * p.ldc + j];
      const long double want = p.alpha * sum + (p.beta == 0 ? 0.0L : p.beta * c0);
      const long double bound = (static_cast<long double>(p.K) + 3) * eps *
                                    (std::abs(p.alpha) * mag + std::abs(p.beta * c0)) +
                                1e-300L;
      if (std::isnan(got)) return INFINITY;
      worst = std::max(worst, static_cast<double>(std::abs(got - want) / bound));
    }
  return worst;
}

}  // namespace

TEST_CASE("gemm ladder float64: every supported micro-kernel matches the long double product") {
  const std::vector<Isa> isas = supported_isas();
  int checked = 0;
  for (Isa isa : isas)
    for (const Problem& p : problems()) {
      const ProblemD d = widen(p);
      const double err = error_units_d(d, run_d(d, isa));
      CHECK_MESSAGE(err < 1.0, "float64 ", isa_name(isa), ": ", describe(p), ": error ", err);
      ++checked;
    }
  CHECK(checked > 70);
}

TEST_CASE("gemm ladder float64: empty K, beta 0 over NaN, NaN in A reaches C") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (Isa isa : supported_isas()) {
    // K = 0, beta 0.5: C = 0.5 C exactly; beta 0: zeros even over a NaN.
    for (double beta : {0.0, 0.5}) {
      ProblemD d =
          widen(make_problem(9, 70, 0, false, false, 2, 1.0f, static_cast<float>(beta), 7));
      d.C0[0] = nan;
      const std::vector<double> C = run_d(d, isa);
      for (int64_t i = 0; i < d.p.M; ++i)
        for (int64_t j = 0; j < d.p.N; ++j) {
          const double want = beta == 0 ? 0.0 : beta * d.C0[i * d.p.ldc + j];
          if (beta != 0 && i == 0 && j == 0)
            CHECK(std::isnan(C[0]));
          else
            CHECK_MESSAGE(C[i * d.p.ldc + j] == want, isa_name(isa), " K 0 beta ", beta);
        }
    }
    // Zero B, a NaN at A(5, 3): row 5 of C is NaN, the rest 0 (K spans two k blocks).
    ProblemD d = widen(make_problem(33, 70, 401, false, false, 1, 1.0f, 0.0f, 9));
    for (double& v : d.B) v = 0.0;
    d.A[5 * d.p.lda + 3] = nan;
    d.C0[7] = nan;  // beta 0: never read
    const std::vector<double> C = run_d(d, isa);
    int64_t wrong = 0;
    for (int64_t i = 0; i < d.p.M; ++i)
      for (int64_t j = 0; j < d.p.N; ++j) {
        const double got = C[i * d.p.ldc + j];
        wrong += i == 5 ? !std::isnan(got) : got != 0.0;
      }
    CHECK_MESSAGE(wrong == 0, isa_name(isa));
  }
}

TEST_CASE("gemm ladder float64: the same bits on 1, 2 and 3 threads") {
  const int saved = omp_get_max_threads();
  int compared = 0;
  for (const Problem& p : {make_problem(300, 200, 900, false, true, 3, 1.0f, 0.5f, 21),
                           make_problem(20, 1000, 520, true, false, 0, 1.0f, 0.0f, 22)}) {
    const ProblemD d = widen(p);
    omp_set_num_threads(1);
    std::vector<double> one = d.C0;
    dgemm_microkernel(p.ta, p.tb, p.M, p.N, p.K, p.alpha, d.A.data(), p.lda, d.B.data(), p.ldb,
                      p.beta, one.data(), p.ldc);
    CHECK(error_units_d(d, one) < 1.0);
    for (int threads : {2, 3}) {
      omp_set_num_threads(threads);
      std::vector<double> many = d.C0;
      dgemm_microkernel(p.ta, p.tb, p.M, p.N, p.K, p.alpha, d.A.data(), p.lda, d.B.data(), p.ldb,
                        p.beta, many.data(), p.ldc);
      CHECK_MESSAGE(std::memcmp(one.data(), many.data(), one.size() * sizeof(double)) == 0, threads,
                    " threads: ", describe(p));
      ++compared;
    }
  }
  omp_set_num_threads(saved);
  CHECK(compared == 4);
}

// ---- the backend's GEMM (CpuBackend::gemm: the top rung for float32 and float64) ---------------
namespace {

// A batched problem: `batch` matrices of op(A) M x K and op(B) K x N, each stored with its
// padding, `stride` elements apart (0: one matrix shared by the whole batch, as a weight is).
template <class T>
struct Batched {
  GemmArgs g;
  std::vector<T> A, B, C0;
};

template <class T>
Batched<T> make_batched(int64_t batch, const Problem& p, bool share_a, bool share_b) {
  Batched<T> out;
  const int64_t a_size = static_cast<int64_t>(p.A.size()),
                b_size = static_cast<int64_t>(p.B.size());
  const int64_t c_size = static_cast<int64_t>(p.C0.size());
  std::mt19937 rng(static_cast<unsigned>(batch * 1000 + p.M));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  // Each matrix of the batch: the problem's values, changed by a random factor per matrix.
  auto stack = [&](const std::vector<float>& one, int64_t copies, std::vector<T>& dst) {
    for (int64_t b = 0; b < copies; ++b) {
      const float f = u(rng);
      for (float v : one) dst.push_back(static_cast<T>(v == 1e30f ? v : v * f));
    }
  };
  stack(p.A, share_a ? 1 : batch, out.A);
  stack(p.B, share_b ? 1 : batch, out.B);
  stack(p.C0, batch, out.C0);
  out.g = GemmArgs{.dtype = std::is_same_v<T, float> ? DType::Float32 : DType::Float64,
                   .batch = batch,
                   .M = p.M,
                   .N = p.N,
                   .K = p.K,
                   .alpha = p.alpha,
                   .beta = p.beta}
              .batch_strides(share_a ? 0 : a_size, share_b ? 0 : b_size, c_size);
  out.g.lda = p.lda, out.g.ldb = p.ldb, out.g.ldc = p.ldc;
  out.g.trans_a = p.ta, out.g.trans_b = p.tb;
  return out;
}

template <class T>
std::vector<T> run_backend(Batched<T>& bp, bool reference) {
  std::vector<T> C = bp.C0;
  GemmArgs g = bp.g;
  g.A = bp.A.data(), g.B = bp.B.data(), g.C = C.data();
  if (reference)
    cpu::gemm_eigen_tiles(g);
  else
    backend(kCPU).gemm(g);
  return C;
}

}  // namespace

// Routes the backend's GEMM through the ladder for a scope, and back to what it was after.
struct LadderOn {
  bool saved = cpu::gemm_ladder_enabled();
  LadderOn() { cpu::set_gemm_ladder(true); }
  ~LadderOn() { cpu::set_gemm_ladder(saved); }
  LadderOn(const LadderOn&) = delete;
  LadderOn& operator=(const LadderOn&) = delete;
};

TEST_CASE("backend gemm: batched, strided and shared operands match the Eigen reference") {
  LadderOn ladder;
  // Sizes from 1 x 1 x 1 up, attention-head shapes (many small matrices, shared out matrix by
  // matrix over threads) and one large enough to be threaded inside each matrix.
  struct Case {
    int64_t batch, M, N, K;
    bool ta, tb, share_a, share_b;
    float alpha, beta;
  };
  const Case cases[] = {{1, 1, 1, 1, false, false, false, false, 1, 0},
                        {3, 4, 8, 16, false, true, false, false, 1, 0},
                        {64, 16, 16, 8, false, true, false, false, 0.125f, 0},
                        {64, 16, 8, 16, false, false, false, false, 1, 1},
                        {5, 33, 17, 40, true, false, true, false, 1, 0.5f},
                        {4, 70, 45, 300, false, false, false, true, -2, 0},
                        {2, 130, 140, 120, true, true, false, false, 1, 0}};
  int checked = 0;
  unsigned seed = 100;
  for (const Case& c : cases) {
    const Problem p = make_problem(c.M, c.N, c.K, c.ta, c.tb, 2, c.alpha, c.beta, seed++);
    const std::string what = describe(p) + " batch=" + std::to_string(c.batch) +
                             (c.share_a ? " shared A" : "") + (c.share_b ? " shared B" : "");
    // float32: against the Eigen reference, elementwise, within the k-sum's error bound.
    Batched<float> bf = make_batched<float>(c.batch, p, c.share_a, c.share_b);
    const std::vector<float> ours = run_backend(bf, false), ref = run_backend(bf, true);
    double worst = 0;
    for (size_t i = 0; i < ours.size(); ++i) {
      const double tol = 1e-5 * (static_cast<double>(c.K) + 3) * (1 + std::abs(ref[i]));
      worst = std::max(worst, std::abs(static_cast<double>(ours[i]) - ref[i]) / tol);
    }
    CHECK_MESSAGE(worst < 1.0, "float32 ", what);
    // Each matrix of the batch is exactly the top rung (or, for a tiny product, the small-product
    // kernel) on that matrix alone.
    const SgemmFn top = use_small_gemm(p.M, p.N, p.K) ? &sgemm_small : &sgemm_microkernel;
    const int64_t sa = bf.g.stride_a, sb = bf.g.stride_b, sc = bf.g.stride_c;
    bool same = true;
    for (int64_t b = 0; b < c.batch; ++b) {
      std::vector<float> one(bf.C0.begin() + b * sc, bf.C0.begin() + (b + 1) * sc);
      top(p.ta, p.tb, p.M, p.N, p.K, p.alpha, bf.A.data() + b * sa, p.lda, bf.B.data() + b * sb,
          p.ldb, p.beta, one.data(), p.ldc);
      same = same && std::memcmp(one.data(), ours.data() + b * sc, one.size() * sizeof(float)) == 0;
    }
    CHECK_MESSAGE(same, "float32 backend = the ladder kernel per matrix: ", what);
    // float64 likewise (a tighter tolerance: 2^-52 instead of 2^-23).
    Batched<double> bd = make_batched<double>(c.batch, p, c.share_a, c.share_b);
    const std::vector<double> ours_d = run_backend(bd, false), ref_d = run_backend(bd, true);
    double worst_d = 0;
    for (size_t i = 0; i < ours_d.size(); ++i) {
      const double tol = 1e-14 * (static_cast<double>(c.K) + 3) * (1 + std::abs(ref_d[i]));
      worst_d = std::max(worst_d, std::abs(ours_d[i] - ref_d[i]) / tol);
    }
    CHECK_MESSAGE(worst_d < 1.0, "float64 ", what);
    ++checked;
  }
  CHECK(checked == 7);
}

TEST_CASE("backend gemm: batched products give the same bits on 1 and 2 threads") {
  LadderOn ladder;
  const int saved = omp_get_max_threads();
  // A batch of small matrices (shared out over threads) and a batch of large ones (each threaded
  // inside the ladder).
  const Problem small = make_problem(16, 16, 8, false, true, 0, 1.0f, 0.0f, 31);
  const Problem large = make_problem(200, 150, 300, true, false, 1, 1.0f, 0.5f, 32);
  int compared = 0;
  for (const auto& [p, batch] : {std::pair{small, int64_t{64}}, std::pair{large, int64_t{3}}}) {
    Batched<float> bf = make_batched<float>(batch, p, false, false);
    Batched<double> bd = make_batched<double>(batch, p, false, false);
    omp_set_num_threads(1);
    const std::vector<float> one = run_backend(bf, false);
    const std::vector<double> one_d = run_backend(bd, false);
    omp_set_num_threads(2);
    const std::vector<float> two = run_backend(bf, false);
    const std::vector<double> two_d = run_backend(bd, false);
    CHECK_MESSAGE(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)) == 0, describe(p),
                  " batch ", batch);
    CHECK_MESSAGE(std::memcmp(one_d.data(), two_d.data(), one_d.size() * sizeof(double)) == 0,
                  "float64 ", describe(p), " batch ", batch);
    ++compared;
  }
  omp_set_num_threads(saved);
  CHECK(compared == 2);
}

TEST_CASE("small-product kernel: matches the float64 product on every size and layout") {
  // The backend uses it only below kSmallGemmMacs, but it is correct at any size: every problem
  // of the rung tests (odd sizes, transposes, padding, alpha, beta), float32 and float64.
  int checked = 0;
  for (const Problem& p : problems()) {
    CHECK_MESSAGE(error_units(p, run(p, &sgemm_small)) < 1.0, describe(p));
    const ProblemD d = widen(p);
    std::vector<double> c = d.C0;
    dgemm_small(p.ta, p.tb, p.M, p.N, p.K, p.alpha, d.A.data(), p.lda, d.B.data(), p.ldb, p.beta,
                c.data(), p.ldc);
    CHECK_MESSAGE(error_units_d(d, c) < 1.0, "float64 ", describe(p));
    ++checked;
  }
  CHECK(checked > 70);
  CHECK(use_small_gemm(16, 16, 8));
  CHECK_FALSE(use_small_gemm(64, 64, 64));
}

// ---- The summation order, pinned down ----
// The lessons' numbers depend on the exact bits of every GEMM, so a faster kernel must not
// change the order in which any element's k-sum is done. This model states that order in scalar
// code: for each element, k blocks of KC = 256 terms from k = 0; within a block a chain of fused
// multiply-adds in order of k starting from +0; then r = alpha * sum (exact when alpha == 1) and
// C = fma(beta_k, C, r), where beta_k is beta for the first block and 1 after it (beta_k == 0:
// C = r, C is not read). The SIMD micro-kernels (AVX-512, AVX2: intrinsics fix every operation)
// must match it bit for bit, on full tiles and on every kind of edge tile (1-14 rows, fewer than
// 16 or than 32 columns), on 1 and 2 threads. (Rung 4's portable kernel is left out: there the
// compiler decides whether `acc += a * b` is one fused operation.) MC, NC, the loop order, the
// tile shape (AVX2's 6 x 16 gives the same bits as AVX-512's 14 x 32), the packing, prefetching
// and threading may change freely; KC may not, nor anything else in this model.
namespace gemm_order_model {

template <class T>
std::vector<T> model(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                     int64_t lda, const T* B, int64_t ldb, T beta, std::vector<T> C, int64_t ldc) {
  constexpr int64_t KC = 256;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      T c = C[i * ldc + j];
      for (int64_t pc = 0; pc < K; pc += KC) {
        T acc = T(0);
        for (int64_t k = pc; k < std::min(K, pc + KC); ++k)
          acc = std::fma(ta ? A[k * lda + i] : A[i * lda + k], tb ? B[j * ldb + k] : B[k * ldb + j],
                         acc);
        const T r = alpha * acc;
        const T beta_k = pc == 0 ? beta : T(1);
        c = beta_k == T(0) ? r : std::fma(beta_k, c, r);
      }
      C[i * ldc + j] = c;
    }
  return C;
}

template <class T>
int check_all() {
  struct Case {
    int64_t M, N, K;
  };
  // Every row count of a 14-row tile at the edge (M % 14 = 1..13, and 0), columns cut below 8,
  // 16 and 32, one and several k blocks, and sizes that are threaded (> 2^20 multiply-adds).
  const Case cases[] = {{1, 1, 1},     {13, 7, 5},      {14, 32, 256},  {15, 33, 257},
                        {16, 40, 300}, {17, 9, 64},     {18, 17, 513},  {19, 31, 100},
                        {20, 48, 260}, {21, 3, 40},     {22, 64, 30},   {23, 65, 129},
                        {24, 15, 512}, {25, 16, 8},     {26, 47, 255},  {27, 100, 33},
                        {28, 63, 270}, {160, 150, 520}, {300, 70, 260}, {40, 700, 100}};
  const T alphas[] = {T(1), T(0.75), T(-1.5)};
  const T betas[] = {T(0), T(1), T(0.5)};
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  const int saved = omp_get_max_threads();
  int compared = 0;
  for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
    if (!isa_supported(isa)) continue;
    int v = 0;
    for (const Case& s : cases)
      for (int t = 0; t < 4; ++t, ++v) {
        const bool ta = t & 1, tb = t & 2;
        const int64_t pad = v % 3;
        const int64_t lda = (ta ? s.M : s.K) + pad, ldb = (tb ? s.K : s.N) + pad, ldc = s.N + pad;
        std::vector<T> A(static_cast<size_t>((ta ? s.K : s.M) * lda)),
            B(static_cast<size_t>((tb ? s.N : s.K) * ldb)), C0(static_cast<size_t>(s.M * ldc));
        for (auto* vec : {&A, &B, &C0})
          for (T& x : *vec) x = static_cast<T>(u(rng));
        const T alpha = alphas[v % 3], beta = betas[(v / 3) % 3];
        const std::vector<T> want =
            model<T>(ta, tb, s.M, s.N, s.K, alpha, A.data(), lda, B.data(), ldb, beta, C0, ldc);
        for (int threads : {1, 2}) {
          omp_set_num_threads(threads);
          std::vector<T> got = C0;
          if constexpr (std::is_same_v<T, float>)
            sgemm_microkernel_isa(isa, ta, tb, s.M, s.N, s.K, alpha, A.data(), lda, B.data(), ldb,
                                  beta, got.data(), ldc);
          else
            dgemm_microkernel_isa(isa, ta, tb, s.M, s.N, s.K, alpha, A.data(), lda, B.data(), ldb,
                                  beta, got.data(), ldc);
          CHECK_MESSAGE(std::memcmp(got.data(), want.data(), got.size() * sizeof(T)) == 0,
                        isa_name(isa), " ", sizeof(T) == 4 ? "float32" : "float64", " M=", s.M,
                        " N=", s.N, " K=", s.K, " ta=", ta, " tb=", tb, " alpha=", alpha,
                        " beta=", beta, " threads=", threads);
          ++compared;
        }
      }
  }
  omp_set_num_threads(saved);
  return compared;
}

}  // namespace gemm_order_model

TEST_CASE("gemm ladder: the SIMD micro-kernels sum every element in the documented order") {
  const int n32 = gemm_order_model::check_all<float>();
  const int n64 = gemm_order_model::check_all<double>();
  // 20 shapes x 4 layouts x 2 thread counts per supported SIMD kernel (none on other CPUs).
  const int per_isa = 20 * 4 * 2;
  const int isas = int{isa_supported(Isa::Avx2)} + int{isa_supported(Isa::Avx512)};
  CHECK(n32 == per_isa * isas);
  CHECK(n64 == per_isa * isas);
}
