// Rung 5 of the GEMM ladder (kernels/cpu/gemm_ladder.h): register-blocked SIMD micro-kernels.
//
// Rung 4's loops and packing stay; only the innermost kernel changes. The arithmetic budget of
// one core here: two FMA units, each finishing one 16-float AVX-512 fused multiply-add per cycle,
// i.e. 2 x 16 x 2 = 64 flops per cycle. An FMA takes 4 cycles to produce its result, so to
// keep both units busy the kernel needs at least 2 x 4 = 8 independent sums in flight; and since
// a core loads at most 2-3 numbers from L1 per cycle, each load must feed several FMAs.
//
// The AVX-512 kernel holds a 14 x 32 tile of C in 28 of the 32 vector registers (14 rows x two
// 16-float vectors). Per step k it loads the 32 floats of B's row (2 vector loads), and for each
// of the 14 rows broadcasts one float of A to all 16 lanes and does 2 FMAs: 28 FMAs (896 flops)
// for 2 loads + 14 broadcasts. 28 independent accumulators hide the FMA latency with room to
// spare. The AVX2 kernel is the same idea for 16 registers of 8 floats: 6 x 16 (12
// accumulators, 2 loads of B, 6 broadcasts of A per step).
//
// Which kernel runs is decided at run time (__builtin_cpu_supports): the library is built with
// the project's flags (-march=native or not) and each kernel asks for its instruction set with a
// per-function target attribute, so an AVX-512 kernel can sit in a portable build and is only
// called on a CPU that has AVX-512. Other CPUs get rung 4's portable kernel.

#include <utility>

#include "mmgrad/core/error.h"
#include "mmgrad/kernels/cpu/gemm_ladder_packed.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MMGRAD_LADDER_X86 1
#else
#define MMGRAD_LADDER_X86 0
#endif

namespace mmgrad::cpu::ladder {
namespace {

#if MMGRAD_LADDER_X86

// ---- AVX-512: 14 x 32
// ----------------------------------------------------------------------------
// a(i, k) is read at a[k * step + i]: step = 14 for a packed sliver (InPlace false: a constant,
// the code of a kernel without the stride), a_step = lda for a transposed A read in place
// (InPlace true; gemm_ladder_packed.h: MicroKernelT::fn_a).
template <bool InPlace>
__attribute__((target("avx512f"))) void kernel_avx512_14x32(int64_t kc, const float* a,
                                                            int64_t a_step, const float* b,
                                                            float* C, int64_t ldc, float alpha,
                                                            float beta) {
  constexpr int MR = 14;
  // Ask for the tile of C now (28 cache lines, ldc apart: likely not in L1), so that it has
  // arrived by the time the k loop ends and the tile is updated.
#pragma GCC unroll 14
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + 16), _MM_HINT_T0);
  }
  __m512 acc[MR][2];
#pragma GCC unroll 14
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  const int64_t step = InPlace ? a_step : MR;
  for (int64_t k = 0; k < kc; ++k, a += step, b += 32) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 14
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);  // one float of A in all 16 lanes
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 14
  for (int i = 0; i < MR; ++i) {
    float* c = C + i * ldc;
    // alpha == 1 (every matmul): 1 * x == x exactly, so the multiply is skipped (same bits).
    __m512 r0 = acc[i][0], r1 = acc[i][1];
    if (alpha != 1.0f) r0 = _mm512_mul_ps(va, r0), r1 = _mm512_mul_ps(va, r1);
    if (beta != 0.0f) {  // beta == 0: C is not read (a NaN there must not survive)
      r0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(c), r0);
      r1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(c + 16), r1);
    }
    _mm512_storeu_ps(c, r0);
    _mm512_storeu_ps(c + 16, r1);
  }
}

void microkernel_avx512_14x32(int64_t kc, const float* a, const float* b, float* C, int64_t ldc,
                              float alpha, float beta) {
  kernel_avx512_14x32<false>(kc, a, 14, b, C, ldc, alpha, beta);
}

// ---- AVX-512 edge tiles ---------------------------------------------------------------------
// A tile cut by the edge of C: the first m rows (R, a template parameter, so the row loop is
// unrolled as in the full kernel) and n columns. The packed sliver of A still has 14 rows per k
// (zeros past m): the kernel reads the first R of them and skips the FMAs of the others. With
// n <= 16 the second column vector is skipped too (Two = false). C is read and written with
// masked loads and stores, so nothing past the edge is touched. Every element written gets the
// same operations as in the full kernel above: its FMA chain over k in order from zero, then
// the alpha step, then fma(beta, C, .): the same bits as the full kernel computing the whole tile
// into a scratch tile.
template <int R, bool Two>
__attribute__((target("avx512f"))) void edge_avx512_14x32(int64_t kc, const float* a,
                                                          int64_t a_step, const float* b, float* C,
                                                          int64_t ldc, float alpha, float beta,
                                                          __mmask16 m0, __mmask16 m1) {
#pragma GCC unroll 14
  for (int i = 0; i < R; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T0);
    if (Two) _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + 16), _MM_HINT_T0);
  }
  __m512 acc[R][2];
#pragma GCC unroll 14
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k, a += a_step, b += 32) {
    const __m512 b0 = _mm512_load_ps(b);
    const __m512 b1 = Two ? _mm512_load_ps(b + 16) : b0;
#pragma GCC unroll 14
    for (int i = 0; i < R; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      if (Two) acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 14
  for (int i = 0; i < R; ++i) {
    float* c = C + i * ldc;
    __m512 r0 = acc[i][0], r1 = acc[i][1];
    if (alpha != 1.0f) r0 = _mm512_mul_ps(va, r0), r1 = _mm512_mul_ps(va, r1);
    if (beta != 0.0f) {
      r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, c), r0);
      if (Two) r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, c + 16), r1);
    }
    _mm512_mask_storeu_ps(c, m0, r0);
    if (Two) _mm512_mask_storeu_ps(c + 16, m1, r1);
  }
}

// The edge variant of the 14 x 32 kernel: picks the instance for m rows and n columns.
template <int R>
void edge_avx512_rows(int64_t kc, const float* a, int64_t a_step, const float* b, float* C,
                      int64_t ldc, float alpha, float beta, int n) {
  const auto mask = [](int bits) {
    return static_cast<__mmask16>(bits >= 16 ? 0xFFFFu : (1u << bits) - 1u);
  };
  if (n > 16)
    edge_avx512_14x32<R, true>(kc, a, a_step, b, C, ldc, alpha, beta, mask(16), mask(n - 16));
  else
    edge_avx512_14x32<R, false>(kc, a, a_step, b, C, ldc, alpha, beta, mask(n), 0);
}

template <int... R>
void edge_avx512_dispatch(int64_t kc, const float* a, int64_t a_step, const float* b, float* C,
                          int64_t ldc, float alpha, float beta, int m, int n,
                          std::integer_sequence<int, R...>) {
  using Fn =
      void (*)(int64_t, const float*, int64_t, const float*, float*, int64_t, float, float, int);
  static constexpr Fn table[] = {&edge_avx512_rows<R + 1>...};
  table[m - 1](kc, a, a_step, b, C, ldc, alpha, beta, n);
}

void edge_avx512_14x32_any(int64_t kc, const float* a, const float* b, float* C, int64_t ldc,
                           float alpha, float beta, int m, int n) {
  edge_avx512_dispatch(kc, a, 14, b, C, ldc, alpha, beta, m, n,
                       std::make_integer_sequence<int, 14>{});
}

// The kernels above with A read in place (MicroKernelT::fn_a / edge_a): only the first m floats
// of each step of A are read, so a transposed A is never read past its last column.
void edge_avx512_14x32_in_place(int64_t kc, const float* a, int64_t lda, const float* b, float* C,
                                int64_t ldc, float alpha, float beta, int m, int n) {
  edge_avx512_dispatch(kc, a, lda, b, C, ldc, alpha, beta, m, n,
                       std::make_integer_sequence<int, 14>{});
}

// ---- AVX2 + FMA: 6 x 16
// --------------------------------------------------------------------------
__attribute__((target("avx2,fma"))) void microkernel_avx2_6x16(int64_t kc, const float* a,
                                                               const float* b, float* C,
                                                               int64_t ldc, float alpha,
                                                               float beta) {
  constexpr int MR = 6;
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k, a += MR, b += 16) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    float* c = C + i * ldc;
    __m256 r0 = _mm256_mul_ps(va, acc[i][0]), r1 = _mm256_mul_ps(va, acc[i][1]);
    if (beta != 0.0f) {
      r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), r0);
      r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), r1);
    }
    _mm256_storeu_ps(c, r0);
    _mm256_storeu_ps(c + 8, r1);
  }
}

// ---- float64: the same kernels with 8 doubles per AVX-512 register (4 per AVX2 one) ------------
// The tile keeps its shape in registers (14 rows x 2 vectors), so it covers half as many
// columns: 14 x 16 (AVX-512), 6 x 8 (AVX2). Half the numbers per FMA: the float64 peak is half
// the float32 one.
__attribute__((target("avx512f"))) void microkernel_avx512_f64_14x16(int64_t kc, const double* a,
                                                                     const double* b, double* C,
                                                                     int64_t ldc, double alpha,
                                                                     double beta) {
  constexpr int MR = 14;
#pragma GCC unroll 14
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + 8), _MM_HINT_T0);
  }
  __m512d acc[MR][2];
#pragma GCC unroll 14
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_pd();
  for (int64_t k = 0; k < kc; ++k, a += MR, b += 16) {
    const __m512d b0 = _mm512_load_pd(b), b1 = _mm512_load_pd(b + 8);
#pragma GCC unroll 14
    for (int i = 0; i < MR; ++i) {
      const __m512d ai = _mm512_set1_pd(a[i]);
      acc[i][0] = _mm512_fmadd_pd(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_pd(ai, b1, acc[i][1]);
    }
  }
  const __m512d va = _mm512_set1_pd(alpha), vb = _mm512_set1_pd(beta);
#pragma GCC unroll 14
  for (int i = 0; i < MR; ++i) {
    double* c = C + i * ldc;
    __m512d r0 = acc[i][0], r1 = acc[i][1];
    if (alpha != 1.0) r0 = _mm512_mul_pd(va, r0), r1 = _mm512_mul_pd(va, r1);
    if (beta != 0.0) {
      r0 = _mm512_fmadd_pd(vb, _mm512_loadu_pd(c), r0);
      r1 = _mm512_fmadd_pd(vb, _mm512_loadu_pd(c + 8), r1);
    }
    _mm512_storeu_pd(c, r0);
    _mm512_storeu_pd(c + 8, r1);
  }
}

// The float64 edge tiles, as the float32 ones above (14 rows x two vectors of 8 doubles).
template <int R, bool Two>
__attribute__((target("avx512f"))) void edge_avx512_f64_14x16(int64_t kc, const double* a,
                                                              const double* b, double* C,
                                                              int64_t ldc, double alpha,
                                                              double beta, __mmask8 m0,
                                                              __mmask8 m1) {
  constexpr int MR = 14;
#pragma GCC unroll 14
  for (int i = 0; i < R; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T0);
    if (Two) _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + 8), _MM_HINT_T0);
  }
  __m512d acc[R][2];
#pragma GCC unroll 14
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_pd();
  for (int64_t k = 0; k < kc; ++k, a += MR, b += 16) {
    const __m512d b0 = _mm512_load_pd(b);
    const __m512d b1 = Two ? _mm512_load_pd(b + 8) : b0;
#pragma GCC unroll 14
    for (int i = 0; i < R; ++i) {
      const __m512d ai = _mm512_set1_pd(a[i]);
      acc[i][0] = _mm512_fmadd_pd(ai, b0, acc[i][0]);
      if (Two) acc[i][1] = _mm512_fmadd_pd(ai, b1, acc[i][1]);
    }
  }
  const __m512d va = _mm512_set1_pd(alpha), vb = _mm512_set1_pd(beta);
#pragma GCC unroll 14
  for (int i = 0; i < R; ++i) {
    double* c = C + i * ldc;
    __m512d r0 = acc[i][0], r1 = acc[i][1];
    if (alpha != 1.0) r0 = _mm512_mul_pd(va, r0), r1 = _mm512_mul_pd(va, r1);
    if (beta != 0.0) {
      r0 = _mm512_fmadd_pd(vb, _mm512_maskz_loadu_pd(m0, c), r0);
      if (Two) r1 = _mm512_fmadd_pd(vb, _mm512_maskz_loadu_pd(m1, c + 8), r1);
    }
    _mm512_mask_storeu_pd(c, m0, r0);
    if (Two) _mm512_mask_storeu_pd(c + 8, m1, r1);
  }
}

template <int R>
void edge_avx512_f64_rows(int64_t kc, const double* a, const double* b, double* C, int64_t ldc,
                          double alpha, double beta, int n) {
  const auto mask = [](int bits) {
    return static_cast<__mmask8>(bits >= 8 ? 0xFFu : (1u << bits) - 1u);
  };
  if (n > 8)
    edge_avx512_f64_14x16<R, true>(kc, a, b, C, ldc, alpha, beta, mask(8), mask(n - 8));
  else
    edge_avx512_f64_14x16<R, false>(kc, a, b, C, ldc, alpha, beta, mask(n), 0);
}

template <int... R>
void edge_avx512_f64_dispatch(int64_t kc, const double* a, const double* b, double* C, int64_t ldc,
                              double alpha, double beta, int m, int n,
                              std::integer_sequence<int, R...>) {
  using Fn = void (*)(int64_t, const double*, const double*, double*, int64_t, double, double, int);
  static constexpr Fn table[] = {&edge_avx512_f64_rows<R + 1>...};
  table[m - 1](kc, a, b, C, ldc, alpha, beta, n);
}

void edge_avx512_f64_14x16_any(int64_t kc, const double* a, const double* b, double* C, int64_t ldc,
                               double alpha, double beta, int m, int n) {
  edge_avx512_f64_dispatch(kc, a, b, C, ldc, alpha, beta, m, n,
                           std::make_integer_sequence<int, 14>{});
}

__attribute__((target("avx2,fma"))) void microkernel_avx2_f64_6x8(int64_t kc, const double* a,
                                                                  const double* b, double* C,
                                                                  int64_t ldc, double alpha,
                                                                  double beta) {
  constexpr int MR = 6;
  __m256d acc[MR][2];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_pd();
  for (int64_t k = 0; k < kc; ++k, a += MR, b += 8) {
    const __m256d b0 = _mm256_load_pd(b), b1 = _mm256_load_pd(b + 4);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256d ai = _mm256_broadcast_sd(a + i);
      acc[i][0] = _mm256_fmadd_pd(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_pd(ai, b1, acc[i][1]);
    }
  }
  const __m256d va = _mm256_set1_pd(alpha), vb = _mm256_set1_pd(beta);
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    double* c = C + i * ldc;
    __m256d r0 = _mm256_mul_pd(va, acc[i][0]), r1 = _mm256_mul_pd(va, acc[i][1]);
    if (beta != 0.0) {
      r0 = _mm256_fmadd_pd(vb, _mm256_loadu_pd(c), r0);
      r1 = _mm256_fmadd_pd(vb, _mm256_loadu_pd(c + 4), r1);
    }
    _mm256_storeu_pd(c, r0);
    _mm256_storeu_pd(c + 4, r1);
  }
}

#endif  // MMGRAD_LADDER_X86

}  // namespace

const MicroKernel& microkernel_for(Isa isa) {
#if MMGRAD_LADDER_X86
  static const MicroKernel avx512{14,
                                  32,
                                  &microkernel_avx512_14x32,
                                  &edge_avx512_14x32_any,
                                  &kernel_avx512_14x32<true>,
                                  &edge_avx512_14x32_in_place};
  static const MicroKernel avx2{6, 16, &microkernel_avx2_6x16};
  if (isa == Isa::Avx512) return avx512;
  if (isa == Isa::Avx2) return avx2;
#endif
  return portable_microkernel();
}

const MicroKernelT<double>& microkernel_f64_for(Isa isa) {
#if MMGRAD_LADDER_X86
  static const MicroKernelT<double> avx512{14, 16, &microkernel_avx512_f64_14x16,
                                           &edge_avx512_f64_14x16_any};
  static const MicroKernelT<double> avx2{6, 8, &microkernel_avx2_f64_6x8};
  if (isa == Isa::Avx512) return avx512;
  if (isa == Isa::Avx2) return avx2;
#endif
  return portable_microkernel_f64();
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512:
      return "avx512";
    case Isa::Avx2:
      return "avx2";
    default:
      return "scalar";
  }
}

bool isa_supported(Isa isa) {
#if MMGRAD_LADDER_X86
  if (isa == Isa::Avx512) return __builtin_cpu_supports("avx512f");
  if (isa == Isa::Avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return isa == Isa::Scalar;
}

Isa best_isa() {
  static const Isa best = isa_supported(Isa::Avx512) ? Isa::Avx512
                          : isa_supported(Isa::Avx2) ? Isa::Avx2
                                                     : Isa::Scalar;
  return best;
}

void sgemm_microkernel_isa(Isa isa, MMGRAD_SGEMM_ARGS) {
  MMGRAD_CHECK(
      isa_supported(isa), "sgemm_microkernel: this CPU (or build) cannot run the ", isa_name(isa),
      " micro-kernel; expected one of the supported ones (best here: ", isa_name(best_isa()), ")");
  gemm_packed_with(microkernel_for(isa), Blocking{}, trans_a, trans_b, M, N, K, alpha, A, lda, B,
                   ldb, beta, C, ldc);
}

void sgemm_microkernel(MMGRAD_SGEMM_ARGS) {
  gemm_packed_with(microkernel_for(best_isa()), Blocking{}, trans_a, trans_b, M, N, K, alpha, A,
                   lda, B, ldb, beta, C, ldc);
}

void dgemm_microkernel_isa(Isa isa, MMGRAD_DGEMM_ARGS) {
  MMGRAD_CHECK(
      isa_supported(isa), "dgemm_microkernel: this CPU (or build) cannot run the ", isa_name(isa),
      " micro-kernel; expected one of the supported ones (best here: ", isa_name(best_isa()), ")");
  gemm_packed_with(microkernel_f64_for(isa), Blocking{}, trans_a, trans_b, M, N, K, alpha, A, lda,
                   B, ldb, beta, C, ldc);
}

void dgemm_microkernel(MMGRAD_DGEMM_ARGS) {
  gemm_packed_with(microkernel_f64_for(best_isa()), Blocking{}, trans_a, trans_b, M, N, K, alpha, A,
                   lda, B, ldb, beta, C, ldc);
}

const Rung* rungs(int* count) {
  static const Rung all[] = {{"naive", &sgemm_naive, false},
                             {"reordered", &sgemm_reordered, false},
                             {"blocked", &sgemm_blocked, false},
                             {"packed", &sgemm_packed, true},
                             {"microkernel", &sgemm_microkernel, true}};
  *count = 5;
  return all;
}

}  // namespace mmgrad::cpu::ladder
