// Rung 4 of the GEMM ladder (kernels/cpu/gemm_ladder.h): packed panels, the GotoBLAS / BLIS way.
//
// Rung 3 blocks the loops but still reads A and B where they lie: a block of B is ldb floats
// apart row to row (a new page every few rows: TLB misses), a transposed operand is read across
// its rows, and the innermost loop keeps C in memory. The packed GEMM fixes all three:
//
//   for jc in steps of NC:            (columns of C and B)
//     for pc in steps of KC:          (the k dimension)
//       pack B[pc:pc+KC, jc:jc+NC] into slivers of NR columns      -> lives in L3 / L2
//       for ic in steps of MC:        (rows of C and A)
//         pack A[ic:ic+MC, pc:pc+KC] into slivers of MR rows        -> lives in L2
//         for jr in steps of NR:      (one sliver of B, kc x NR)     -> stays in L1
//           for ir in steps of MR:    (one sliver of A, MR x kc)
//             micro-kernel: C[ir:ir+MR, jr:jr+NR] += A sliver @ B sliver   (in registers)
//
// Packing copies each block once into exactly the order the micro-kernel reads it: contiguous,
// aligned, the transposes already applied, zeros past the matrix edge. The copy costs O(MC KC)
// and is reused by O(MC KC NC) multiply-adds, so it is nearly free, and every layout of A and B
// (transposed or not, any leading dimension) runs at the same speed. One exception: a transposed
// A (stored K x M) is already in the sliver's k-major order, only lda apart instead of MR, so a
// kernel that takes that stride (MicroKernelT::fn_a) reads it in place and A is not packed at all
// (for a weight gradient dW = dY^T X each packed number fed only 64-128 multiply-adds, and the
// copy was the largest cost after the kernel). The micro-kernel holds an
// MR x NR tile of C in registers for the whole kc loop: each loaded number of A feeds NR
// multiply-adds and each of B feeds MR.
//
// The micro-kernel of this rung is portable C++ (the compiler vectorises it as it can); rung 5
// (gemm_ladder_simd.cpp) plugs hand-written SIMD micro-kernels into the same driver.
//
// Threads: C is cut into one rectangle per thread (a grid of row strips x column strips), and
// each thread runs the loops above on its rectangle alone, packing the rows of A and columns of
// B it needs into its own buffers. No thread waits for another until the end (a shared packed
// panel, as in BLIS, would need a barrier per panel; on a machine shared with other programs a
// barrier waits for the slowest, descheduled thread). The price is that the threads pack the
// shared operand twice; the grid is chosen to make that copy small (tall A: row strips, each
// thread packs all of the small B). Every element of C is still the sum of its k terms in the
// order fixed by KC (k blocks in order from k = 0, k in order within a block), whichever thread
// computes it, so the result is bit-identical on any thread count.
#include "mmgrad/kernels/cpu/gemm_ladder_packed.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "mmgrad/core/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace mmgrad::cpu::ladder {
namespace {

// c + a * b for the portable loops below: one fused multiply-add where the build targets FMA
// instructions, written out so that a Debug build fuses it too (GCC contracts `c += a * b` only
// when optimising: Debug and Release gave different bits); where it does not, a multiply and an
// add (std::fma would be a libm call per element there).
template <class T>
inline T madd(T a, T b, T c) {
#if defined(__FMA__)
  return std::fma(a, b, c);
#else
  return c + a * b;
#endif
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

PackBuffer& a_buffer() { return thread_buffer<0>(); }
PackBuffer& b_buffer() { return thread_buffer<1>(); }

// ---- packing ------------------------------------------------------------------------------------
// Both operands need the same transform somewhere: a sliver of A (MR rows, each contiguous along
// k in a row-major A) must be stored k-major, dst[k MR + i], and so must a sliver of a
// transposed B. Element by element that costs ~3 cycles per float, as much as the multiply-adds
// that float later feeds when the other side of the product is narrow (a 4096 x 64 activation
// times a 64 x 128 weight). So 8 rows at a time are loaded as 8 SIMD vectors of 8 consecutive k,
// transposed in registers (8 x 8, the classic unpack / shuffle / permute sequence) and stored as
// 8 vectors of 8 rows.

#if defined(__x86_64__) || defined(__i386__)
// transpose8: gemm_ladder_packed.h (conv_fast.cpp packs its weights with it too).

// dst[k ld + r] = src[r][k] for 8 rows, k < kc8 (a multiple of 8).
__attribute__((target("avx2"))) void transpose_rows8_avx2(const float* const* src, int64_t kc8,
                                                          float* dst, int64_t ld) {
  for (int64_t k = 0; k < kc8; k += 8) {
    __m256 v[8];
    for (int r = 0; r < 8; ++r) v[r] = _mm256_loadu_ps(src[r] + k);
    transpose8(v);
    for (int c = 0; c < 8; ++c) _mm256_storeu_ps(dst + (k + c) * ld, v[c]);
  }
}

// The same for fewer than 8 rows (src[rows..7] repeat a valid row: loaded, never stored):
// AVX-512's masked store writes only the first `rows` lanes.
__attribute__((target("avx2,avx512f,avx512vl"))) void transpose_rows_avx512(const float* const* src,
                                                                            int rows, int64_t kc8,
                                                                            float* dst,
                                                                            int64_t ld) {
  const __mmask8 mask = static_cast<__mmask8>((1u << rows) - 1);
  for (int64_t k = 0; k < kc8; k += 8) {
    __m256 v[8];
    for (int r = 0; r < 8; ++r) v[r] = _mm256_loadu_ps(src[r] + k);
    transpose8(v);
    for (int c = 0; c < 8; ++c) _mm256_mask_storeu_ps(dst + (k + c) * ld, mask, v[c]);
  }
}
#endif

#if defined(__x86_64__) || defined(__i386__)
// The same with AVX-512 for up to 16 rows at a time (a whole 14-row sliver of A at once): 16 rows
// of 16 consecutive k in 16 registers, transposed in four rounds of 16 shuffles (pairs, quads,
// 128-bit lanes, 256-bit halves), stored as 16 vectors of `rows` lanes (masked). Per float this
// is half the shuffles and stores of two 8 x 8 transposes, and a 14-row sliver's 16 stores are
// adjacent (ld = 14: one contiguous run of 16 x 14 floats). src[rows..15] repeat a valid row
// (loaded, never stored). dst[k ld + r] = src[r][k] for r < rows, k < kc16 (a multiple of 16).
// (GCC 12 reports the _mm512_undefined_ps() inside its own shuffle intrinsics as "(may be) used
// uninitialized": a false positive, silenced for this function only.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
__attribute__((target("avx512f"))) void transpose_rows16_avx512(const float* const* src, int rows,
                                                                int64_t kc16, float* dst,
                                                                int64_t ld) {
  const __mmask16 mask = static_cast<__mmask16>(rows >= 16 ? 0xFFFFu : (1u << rows) - 1u);
  for (int64_t k = 0; k < kc16; k += 16) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src[i] + k);
    for (int i = 0; i < 16; i += 2) {  // interleave pairs of rows
      t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {  // groups of four rows within each 128-bit lane
      r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
      r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
      r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
      r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; ++i) {  // 128-bit lanes across groups of eight rows
      t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
      t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
      t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
      t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
    }
    for (int i = 0; i < 8; ++i) {  // the two halves of sixteen rows
      r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
      r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
    }
    for (int c = 0; c < 16; ++c) _mm512_mask_storeu_ps(dst + (k + c) * ld, mask, r[c]);
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

// dst[k ld + r] = src[r][k] for r < rows (<= 8) and k < kc: `rows` contiguous source rows
// stored k-major. SIMD where the CPU has it, element by element otherwise and for the last kc % 8.
void transpose_rows(const float* const* src, int rows, int64_t kc, float* dst, int64_t ld) {
  int64_t done = 0;
#if defined(__x86_64__) || defined(__i386__)
  static const bool avx2 = isa_supported(Isa::Avx2);
  static const bool avx512 = isa_supported(Isa::Avx512) && __builtin_cpu_supports("avx512vl");
  const int64_t kc8 = kc / 8 * 8;
  if (rows == 8 && avx2) {
    transpose_rows8_avx2(src, kc8, dst, ld);
    done = kc8;
  } else if (avx512) {
    const float* s8[8];
    for (int r = 0; r < 8; ++r) s8[r] = src[std::min(r, rows - 1)];
    transpose_rows_avx512(s8, rows, kc8, dst, ld);
    done = kc8;
  }
#endif
  for (int64_t k = done; k < kc; ++k)
    for (int r = 0; r < rows; ++r) dst[k * ld + r] = src[r][k];
}

// dst[k ld + r] = src[r][k] for r < rows (<= 16) and k < kc: 16 rows at a time with AVX-512,
// else (and for the last kc % 16) in groups of 8 as above. A copy: the same bits either way.
void transpose_rows16(const float* const* src, int rows, int64_t kc, float* dst, int64_t ld) {
  int64_t done = 0;
#if defined(__x86_64__) || defined(__i386__)
  static const bool avx512 = isa_supported(Isa::Avx512);
  if (avx512 && rows > 8 && kc >= 16) {
    const float* s16[16];
    for (int r = 0; r < 16; ++r) s16[r] = src[std::min(r, rows - 1)];
    done = kc / 16 * 16;
    transpose_rows16_avx512(s16, rows, done, dst, ld);
  }
#endif
  if (done == kc) return;
  for (int r0 = 0; r0 < rows; r0 += 8) {
    const float* s8[8];
    const int n = std::min(8, rows - r0);
    for (int r = 0; r < n; ++r) s8[r] = src[r0 + r] + done;
    transpose_rows(s8, n, kc - done, dst + done * ld + r0, ld);
  }
}

#if defined(__x86_64__) || defined(__i386__)
// float64: 4 rows at a time, 4 x 4 blocks transposed in registers (4 doubles per AVX2 vector):
// dst[k ld + r] = src[r][k] for r < 4, k < kc4 (a multiple of 4).
__attribute__((target("avx2"))) void transpose_rows4_f64_avx2(const double* const* src, int64_t kc4,
                                                              double* dst, int64_t ld) {
  for (int64_t k = 0; k < kc4; k += 4) {
    const __m256d r0 = _mm256_loadu_pd(src[0] + k), r1 = _mm256_loadu_pd(src[1] + k);
    const __m256d r2 = _mm256_loadu_pd(src[2] + k), r3 = _mm256_loadu_pd(src[3] + k);
    const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);  // k 0,2 | 1,3
    const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    _mm256_storeu_pd(dst + (k + 0) * ld, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(dst + (k + 1) * ld, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(dst + (k + 2) * ld, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(dst + (k + 3) * ld, _mm256_permute2f128_pd(t1, t3, 0x31));
  }
}
#endif

// float64: groups of 4 rows through the 4 x 4 SIMD transpose where the CPU has AVX2, the rest
// (the last rows of a group of 8, the last kc % 4) element by element. A copy: the same bits.
void transpose_rows(const double* const* src, int rows, int64_t kc, double* dst, int64_t ld) {
  int r0 = 0;
#if defined(__x86_64__) || defined(__i386__)
  static const bool avx2 = isa_supported(Isa::Avx2);
  const int64_t kc4 = kc / 4 * 4;
  if (avx2)
    for (; r0 + 4 <= rows; r0 += 4) {
      transpose_rows4_f64_avx2(src + r0, kc4, dst + r0, ld);
      for (int64_t k = kc4; k < kc; ++k)
        for (int r = r0; r < r0 + 4; ++r) dst[k * ld + r] = src[r][k];
    }
#endif
  for (int64_t k = 0; k < kc; ++k)
    for (int r = r0; r < rows; ++r) dst[k * ld + r] = src[r][k];
}

// float64: the 4 x 4 transposes above take any number of rows.
void transpose_rows16(const double* const* src, int rows, int64_t kc, double* dst, int64_t ld) {
  transpose_rows(src, rows, kc, dst, ld);
}

// The other packing, a plain copy: kc rows of n contiguous numbers (a sliver of a transposed A,
// or of a B that is not transposed), row k from src + k ld, stored at dst + k width with zeros
// from n to width (width = MR or NR). One row is 14-32 floats, so a call to memcpy per row costs
// more than the copy; with AVX-512 each row is one or two masked loads and stores (the masks
// keep the loads inside the matrix and write the zeros). Where the other factor of the product
// is narrow (a weight gradient dW = dY^T X: 128 x 64 x 4096), each packed number feeds only 64
// or 128 multiply-adds, and this copy is a large part of the time. Returns false without
// AVX-512 (the caller copies element by element).
#if defined(__x86_64__) || defined(__i386__)
template <class T>
__attribute__((target("avx512f"))) void copy_rows_avx512(const T* src, int64_t ld, int64_t kc,
                                                         int n, T* dst, int width) {
  constexpr int L = 64 / static_cast<int>(sizeof(T));  // numbers per 512-bit register
  const auto mask = [](int bits) {
    return static_cast<unsigned>(bits <= 0 ? 0u : bits >= L ? (1u << L) - 1u : (1u << bits) - 1u);
  };
  const unsigned l0 = mask(n), l1 = mask(n - L), s0 = mask(width), s1 = mask(width - L);
  for (int64_t k = 0; k < kc; ++k, src += ld, dst += width) {
    if constexpr (std::is_same_v<T, float>) {
      _mm512_mask_storeu_ps(dst, static_cast<__mmask16>(s0),
                            _mm512_maskz_loadu_ps(static_cast<__mmask16>(l0), src));
      if (s1)
        _mm512_mask_storeu_ps(dst + L, static_cast<__mmask16>(s1),
                              _mm512_maskz_loadu_ps(static_cast<__mmask16>(l1), src + L));
    } else {
      _mm512_mask_storeu_pd(dst, static_cast<__mmask8>(s0),
                            _mm512_maskz_loadu_pd(static_cast<__mmask8>(l0), src));
      if (s1)
        _mm512_mask_storeu_pd(dst + L, static_cast<__mmask8>(s1),
                              _mm512_maskz_loadu_pd(static_cast<__mmask8>(l1), src + L));
    }
  }
}
#endif

template <class T>
bool copy_rows(const T* src, int64_t ld, int64_t kc, int n, T* dst, int width) {
#if defined(__x86_64__) || defined(__i386__)
  static const bool avx512 = isa_supported(Isa::Avx512);
  if (avx512 && width <= 128 / static_cast<int>(sizeof(T))) {
    copy_rows_avx512(src, ld, kc, n, dst, width);
    return true;
  }
#endif
  (void)src, (void)ld, (void)kc, (void)n, (void)dst, (void)width;
  return false;
}

// Pack rows [i0, i0 + mc) x columns [k0, k0 + kc) of op(A) into slivers of MR rows: sliver p
// holds element (i0 + p MR + i, k0 + k) at dst[p MR kc + k MR + i]; rows past mc are zeros.
template <class T>
void pack_a(int MR, bool trans_a, const T* A, int64_t lda, int64_t i0, int64_t mc, int64_t k0,
            int64_t kc, T* dst) {
  for (int64_t p = 0; p < mc; p += MR, dst += MR * kc) {
    const int64_t rows = std::min<int64_t>(MR, mc - p);
    if (trans_a) {  // A stored K x M: row k of the sliver is contiguous in memory
      if (copy_rows(A + k0 * lda + i0 + p, lda, kc, static_cast<int>(rows), dst, MR)) continue;
      for (int64_t k = 0; k < kc; ++k) {
        const T* src = A + (k0 + k) * lda + i0 + p;
        T* d = dst + k * MR;
        for (int64_t i = 0; i < rows; ++i) d[i] = src[i];
        for (int64_t i = rows; i < MR; ++i) d[i] = T(0);
      }
    } else {  // A stored M x K: the sliver's rows, 16 at a time, transposed into k-major order
      const T* src[16];
      for (int64_t r0 = 0; r0 < rows; r0 += 16) {
        const int n = static_cast<int>(std::min<int64_t>(16, rows - r0));
        for (int r = 0; r < n; ++r) src[r] = A + (i0 + p + r0 + r) * lda + k0;
        transpose_rows16(src, n, kc, dst + r0, int64_t{MR});
      }
      for (int64_t i = rows; i < MR; ++i)
        for (int64_t k = 0; k < kc; ++k) dst[k * MR + i] = T(0);
    }
  }
}

// Pack sliver q (columns [j0 + q NR, j0 + q NR + NR)) of rows [k0, k0 + kc) of op(B): element
// (k0 + k, j0 + q NR + j) at dst[k NR + j]; columns past nc are zeros.
template <class T>
void pack_b_sliver(int NR, bool trans_b, const T* B, int64_t ldb, int64_t k0, int64_t kc,
                   int64_t j0, int64_t nc, int64_t q, T* dst) {
  const int64_t c0 = q * NR, cols = std::min<int64_t>(NR, nc - c0);
  if (trans_b) {  // B stored N x K: a column of op(B) is contiguous: transposed 8 at a time
    const T* src[16];
    for (int64_t c = 0; c < cols; c += 16) {
      const int n = static_cast<int>(std::min<int64_t>(16, cols - c));
      for (int r = 0; r < n; ++r) src[r] = B + (j0 + c0 + c + r) * ldb + k0;
      transpose_rows16(src, n, kc, dst + c, int64_t{NR});
    }
    for (int64_t j = cols; j < NR; ++j)
      for (int64_t k = 0; k < kc; ++k) dst[k * NR + j] = T(0);
  } else {  // B stored K x N: each row of the sliver is a contiguous copy
    if (copy_rows(B + k0 * ldb + j0 + c0, ldb, kc, static_cast<int>(cols), dst, NR)) return;
    for (int64_t k = 0; k < kc; ++k) {
      const T* src = B + (k0 + k) * ldb + j0 + c0;
      T* d = dst + k * NR;
      std::memcpy(d, src, static_cast<size_t>(cols) * sizeof(T));
      for (int64_t j = cols; j < NR; ++j) d[j] = T(0);
    }
  }
}

// Whether the driver reads A in place instead of packing it: a transposed A, with a kernel that
// can (MicroKernelT::fn_a / edge_a).
template <class T>
bool reads_a_in_place(const MicroKernelT<T>& mk, bool trans_a) {
  return trans_a && mk.fn_a && mk.edge_a;
}

// The same for A read in place (a(i, k) at a[k lda + i]: a transposed A, not packed): the
// kernel's in-place variants (MicroKernelT::fn_a / edge_a), which the caller checked exist.
template <class T>
void run_tile_in_place(const MicroKernelT<T>& mk, int64_t kc, const T* a, int64_t lda, const T* b,
                       T* C, int64_t ldc, int64_t m, int64_t n, T alpha, T beta) {
  if (m == mk.MR && n == mk.NR)
    mk.fn_a(kc, a, lda, b, C, ldc, alpha, beta);
  else
    mk.edge_a(kc, a, lda, b, C, ldc, alpha, beta, static_cast<int>(m), static_cast<int>(n));
}

// C = beta * C (K == 0: the product is empty). beta == 0 writes zeros without reading C.
template <class T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  if (beta == T(1)) return;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
}

// Below this many multiply-adds a product runs on one thread: starting the team costs more than
// it saves (a 64 x 64 x 64 product takes a few microseconds).
constexpr int64_t kThreadedMacs = int64_t{1} << 20;

// The five loops on one thread, for C[0:M, 0:N] (a whole product or one thread's rectangle).
template <class T>
void packed_loops(const MicroKernelT<T>& mk, const Blocking& blk, MMGRAD_GEMM_ARGS(T)) {
  const int MR = mk.MR, NR = mk.NR;
  const int64_t KC = blk.KC;
  const int64_t NC = std::max<int64_t>(NR, blk.NC / NR * NR);
  // Rows of A per block: at most blk.MC, a multiple of MR, the blocks of M about equal.
  const int64_t m_blocks = ceil_div(M, std::max<int64_t>(MR, blk.MC / MR * MR));
  const int64_t MC = ceil_div(ceil_div(M, m_blocks), MR) * MR;
  T* bpack = b_buffer().get<T>(std::min(KC, K) * ceil_div(std::min(N, NC), NR) * NR);
  const bool in_place_a = reads_a_in_place(mk, trans_a);
  T* apack = in_place_a ? nullptr : a_buffer().get<T>(MC * std::min(KC, K));
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc), n_slivers = ceil_div(nc, NR);
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      // The first k block applies beta to the old C; later ones add to what is there.
      const T beta_k = pc == 0 ? beta : T(1);
      for (int64_t q = 0; q < n_slivers; ++q)
        pack_b_sliver(NR, trans_b, B, ldb, pc, kc, jc, nc, q, bpack + q * kc * NR);
      for (int64_t ic = 0; ic < M; ic += MC) {
        const int64_t mc = std::min(MC, M - ic);
        if (!in_place_a) pack_a(MR, trans_a, A, lda, ic, mc, pc, kc, apack);
        for (int64_t q = 0; q < n_slivers; ++q) {
          const int64_t jr = q * NR, n = std::min<int64_t>(NR, nc - jr);
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t m = std::min<int64_t>(MR, mc - ir);
            T* c = C + (ic + ir) * ldc + jc + jr;
            if (in_place_a)
              run_tile_in_place(mk, kc, A + pc * lda + ic + ir, lda, bpack + q * kc * NR, c, ldc, m,
                                n, alpha, beta_k);
            else
              run_tile(mk, kc, apack + ir * kc, bpack + q * kc * NR, c, ldc, m, n, alpha, beta_k);
          }
        }
      }
    }
  }
}

// The grid of rectangles for `threads` threads: rows x cols == threads, each strip at least one
// micro-tile, chosen to pack the least: thread (r, c) packs M/rows rows of A and N/cols columns
// of B, so the total copied is proportional to threads * (M K / rows + K N / cols), or only the
// second term where A is read in place (packs_a false: then column strips, each thread packing
// only its part of B). False when no grid fits (more threads than micro-tiles along both sides).
bool thread_grid(int threads, int64_t M, int64_t N, int MR, int NR, bool packs_a, int& rows,
                 int& cols) {
  double best = -1;
  for (int r = 1; r <= threads; ++r) {
    if (threads % r) continue;
    const int c = threads / r;
    if (r > ceil_div(M, MR) || c > ceil_div(N, NR)) continue;
    const double cost = (packs_a ? static_cast<double>(M) / r : 0.0) + static_cast<double>(N) / c;
    if (best < 0 || cost < best) best = cost, rows = r, cols = c;
  }
  return best >= 0;
}

}  // namespace

template <class T>
void gemm_packed_with(const MicroKernelT<T>& mk, const Blocking& blk, MMGRAD_GEMM_ARGS(T)) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  int threads = M * N * K >= kThreadedMacs && !omp_in_parallel() ? omp_get_max_threads() : 1;
  int rows = 1, cols = 1;
  // The largest team up to `threads` whose grid fits the product (1 always does).
  const bool packs_a = !reads_a_in_place(mk, trans_a);
  while (threads > 1 && !thread_grid(threads, M, N, mk.MR, mk.NR, packs_a, rows, cols)) --threads;
  if (threads == 1) rows = cols = 1;
  if (threads == 1) {
    packed_loops(mk, blk, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // Strip boundaries on whole micro-tiles, so only the last strip has a partial tile.
  const int64_t m_tiles = ceil_div(M, mk.MR), n_tiles = ceil_div(N, mk.NR);
#pragma omp parallel num_threads(threads)
  for (int piece = omp_get_thread_num(); piece < threads; piece += omp_get_num_threads()) {
    const int r = piece / cols, c = piece % cols;
    const int64_t i0 = std::min(M, m_tiles * r / rows * mk.MR);
    const int64_t i1 = std::min(M, m_tiles * (r + 1) / rows * mk.MR);
    const int64_t j0 = std::min(N, n_tiles * c / cols * mk.NR);
    const int64_t j1 = std::min(N, n_tiles * (c + 1) / cols * mk.NR);
    if (i0 >= i1 || j0 >= j1) continue;
    // The rectangle's operands: rows i0..i1 of op(A), columns j0..j1 of op(B) (no copy).
    const T* a = A + (trans_a ? i0 : i0 * lda);
    const T* b = B + (trans_b ? j0 * ldb : j0);
    packed_loops(mk, blk, trans_a, trans_b, i1 - i0, j1 - j0, K, alpha, a, lda, b, ldb, beta,
                 C + i0 * ldc + j0, ldc);
  }
}

// ---- tiny products: no packing ------------------------------------------------------------------
// Packing pays for itself only when each packed number feeds many multiply-adds. A 16 x 16 x 8
// product (one attention head of a small model) is 2048 multiply-adds; packing it into 14 x 32
// tiles of zeros and merging the edge tiles costs about as much again. So the backend sends tiny
// products here: op(B) is copied once into k-major blocks of 16 columns (zeros past N), and each
// row of C is computed 16 columns at a time, the 16 sums in one SIMD register (a fixed-size
// local array the compiler keeps in a register), k = 0, 1, ..., K-1 in order. Four rows go
// together so that four independent sums hide the FMA latency. Each element's k-sum runs in
// order on one thread: the same bits on any thread count.
namespace {
constexpr int kSmallCols = 16;

template <class T, int R>
void small_rows(bool trans_a, int64_t K, T alpha, const T* A, int64_t lda, int64_t i, const T* bp,
                int64_t nb, T beta, T* C, int64_t ldc, int64_t j0) {
  T acc[R][kSmallCols] = {};
  for (int64_t k = 0; k < K; ++k) {
    const T* b = bp + k * kSmallCols;
    for (int r = 0; r < R; ++r) {
      const T a = trans_a ? A[k * lda + i + r] : A[(i + r) * lda + k];
#pragma omp simd
      for (int j = 0; j < kSmallCols; ++j) acc[r][j] = madd(a, b[j], acc[r][j]);
    }
  }
  for (int r = 0; r < R; ++r) {
    T* c = C + (i + r) * ldc + j0;
    if (beta == T(0))  // C is only written (a NaN there must not survive)
      for (int64_t j = 0; j < nb; ++j) c[j] = alpha * acc[r][j];
    else
      for (int64_t j = 0; j < nb; ++j) c[j] = alpha * acc[r][j] + beta * c[j];
  }
}

template <class T>
void gemm_small(MMGRAD_GEMM_ARGS(T)) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  const int64_t blocks = ceil_div(N, kSmallCols);
  T* bp = b_buffer().get<T>(blocks * K * kSmallCols);
  // bp[q][k][j] = op(B)[k][q 16 + j], zeros past column N.
  for (int64_t q = 0; q < blocks; ++q) {
    const int64_t j0 = q * kSmallCols, nb = std::min<int64_t>(kSmallCols, N - j0);
    T* d = bp + q * K * kSmallCols;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < kSmallCols; ++j)
        d[k * kSmallCols + j] = j >= nb   ? T(0)
                                : trans_b ? B[(j0 + j) * ldb + k]
                                          : B[k * ldb + j0 + j];
  }
  for (int64_t q = 0; q < blocks; ++q) {
    const int64_t j0 = q * kSmallCols, nb = std::min<int64_t>(kSmallCols, N - j0);
    const T* b = bp + q * K * kSmallCols;
    int64_t i = 0;
    for (; i + 4 <= M; i += 4)
      small_rows<T, 4>(trans_a, K, alpha, A, lda, i, b, nb, beta, C, ldc, j0);
    for (; i < M; ++i) small_rows<T, 1>(trans_a, K, alpha, A, lda, i, b, nb, beta, C, ldc, j0);
  }
}
}  // namespace

bool use_small_gemm(int64_t M, int64_t N, int64_t K) { return M * N * K <= kSmallGemmMacs; }

void sgemm_small(MMGRAD_SGEMM_ARGS) {
  gemm_small(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void dgemm_small(MMGRAD_DGEMM_ARGS) {
  gemm_small(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// ---- rung 4: packed panels with a portable micro-kernel ----------------------------------------
// The MR x NR sums live in a local array; with MR x NR small and fixed at compile time the
// compiler keeps it in registers and vectorises the j loop (here 6 rows x 16 columns: 6 SIMD
// registers of 16 floats with AVX-512, 12 with AVX2). Six independent sums are fewer than the
// eight that two FMA units with a 4-cycle latency need, and the compiler decides the rest:
// rung 5 writes the kernel with intrinsics and a larger tile.
template <class T, int MR, int NR>
void microkernel_portable(int64_t kc, const T* a, const T* b, T* C, int64_t ldc, T alpha, T beta) {
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k, a += MR, b += NR)
    for (int i = 0; i < MR; ++i) {
      // `omp simd` asks for this loop as one SIMD instruction per row (acc[i][0..15] += a[i] *
      // b[0..15]); without it GCC unrolls the 16 iterations first and then (with this project's
      // -fno-tree-slp-vectorize, see CMakeLists.txt) leaves them scalar: 10x slower.
#pragma omp simd
      for (int j = 0; j < NR; ++j) acc[i][j] = madd(a[i], b[j], acc[i][j]);
    }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j)
      C[i * ldc + j] = beta == T(0) ? alpha * acc[i][j] : alpha * acc[i][j] + beta * C[i * ldc + j];
}

const MicroKernel& portable_microkernel() {
  static const MicroKernel mk{6, 16, &microkernel_portable<float, 6, 16>};
  return mk;
}
const MicroKernelT<double>& portable_microkernel_f64() {
  static const MicroKernelT<double> mk{6, 8, &microkernel_portable<double, 6, 8>};
  return mk;
}

template void gemm_packed_with<float>(const MicroKernelT<float>&, const Blocking&,
                                      MMGRAD_GEMM_ARGS(float));
template void gemm_packed_with<double>(const MicroKernelT<double>&, const Blocking&,
                                       MMGRAD_GEMM_ARGS(double));

void sgemm_packed(MMGRAD_SGEMM_ARGS) {
  gemm_packed_with(portable_microkernel(), Blocking{}, trans_a, trans_b, M, N, K, alpha, A, lda, B,
                   ldb, beta, C, ldc);
}

void PackBuffer::grow(size_t bytes) {
  std::free(p_);
  p_ = std::aligned_alloc(64, bytes);
  bytes_ = p_ ? bytes : 0;
  MMGRAD_CHECK(p_ != nullptr, "gemm: could not allocate ", bytes,
               " bytes of packing buffer (out of memory)");
}

}  // namespace mmgrad::cpu::ladder
