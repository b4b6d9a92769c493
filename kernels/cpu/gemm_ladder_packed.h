// The packed GEMM driver shared by rungs 4 and 5 of the GEMM ladder (kernels/cpu/gemm_ladder.h):
// the five loops of BLIS/GotoBLAS around a micro-kernel. Rung 4 plugs in a portable C++
// micro-kernel, rung 5 a SIMD one; the loops and the packing are the same.
#pragma once

#include <cstdint>
#include <cstdlib>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "mmgrad/kernels/cpu/gemm_ladder.h"

namespace mmgrad::cpu::ladder {

// A grow-only 64-byte-aligned buffer (the micro-kernels load packed slivers with aligned loads).
// One per thread and use (thread_buffer below), reused by every call, so steady-state GEMMs and
// convolutions allocate nothing (a freshly mapped page costs ~10 us to fault in here).
class PackBuffer {
 public:
  PackBuffer() = default;
  PackBuffer(const PackBuffer&) = delete;
  PackBuffer& operator=(const PackBuffer&) = delete;
  ~PackBuffer() { std::free(p_); }
  // Room for at least n elements of T (n may be 0), 64-byte aligned; the old contents are lost
  // when it grows.
  template <class T>
  T* get(int64_t n) {
    const size_t bytes = (static_cast<size_t>(n > 1 ? n : 1) * sizeof(T) + 63) / 64 * 64;
    if (bytes > bytes_) grow(bytes);
    return static_cast<T*>(p_);
  }

 private:
  void grow(size_t bytes);  // gemm_ladder_packed.cpp: an mmgrad::Error naming the size on failure
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

// This thread's buffer number Slot (each use of scratch memory that must not overlap another
// live one takes its own slot).
template <int Slot>
PackBuffer& thread_buffer() {
  thread_local PackBuffer b;
  return b;
}

// A micro-kernel computes one MR x NR tile of C from a packed sliver of A (kc columns of MR
// rows: element (i, k) at a[k * MR + i]) and a packed sliver of B (kc rows of NR columns:
// element (k, j) at b[k * NR + j]):
//
//   C[i][j] = alpha * sum_k a(i, k) b(k, j) + beta * C[i][j]      (beta == 0: C is not read)
//
// It keeps the MR x NR sums in registers for the whole k loop, so C is read and written once
// per kc terms, and every number loaded from a or b feeds NR or MR multiply-adds.
//
// `edge`, where a kernel has one, computes a tile cut by the edge of C: only its first m rows and
// n columns (1 <= m <= MR, 1 <= n <= NR) are computed and written, with masked loads and stores,
// and rows past m are skipped, not computed. Each element it writes is the result of exactly the
// operations `fn` would do for it (the same multiply-adds in the same order, the same alpha and
// beta step), so the bits are those of computing the whole tile into a scratch tile and copying
// the valid part (what the driver does where `edge` is null).
template <class T>
struct MicroKernelT {
  int MR, NR;
  void (*fn)(int64_t kc, const T* a, const T* b, T* C, int64_t ldc, T alpha, T beta);
  void (*edge)(int64_t kc, const T* a, const T* b, T* C, int64_t ldc, T alpha, T beta, int m,
               int n) = nullptr;
  // `fn` and `edge` with A read in place instead of from a packed sliver: a(i, k) at
  // a[k * lda + i], i.e. a transposed A (stored K x M), which is already k-major with its rows of
  // MR numbers contiguous, so it needs no packing (the driver skips it: in a weight gradient
  // dW = dY^T X, 128 x 64 x 4096, packing A was ~2/3 of the packing and ~13% of the time). The
  // same multiply-adds in the same order as `fn` / `edge` on the packed sliver: the same bits.
  // fn_a computes a full tile (it reads MR numbers per step), edge_a the first m rows (it reads
  // only m). Null where a kernel has none (the driver then packs A).
  void (*fn_a)(int64_t kc, const T* a, int64_t lda, const T* b, T* C, int64_t ldc, T alpha,
               T beta) = nullptr;
  void (*edge_a)(int64_t kc, const T* a, int64_t lda, const T* b, T* C, int64_t ldc, T alpha,
                 T beta, int m, int n) = nullptr;
};
using MicroKernel = MicroKernelT<float>;

// The blocking of the loops around the micro-kernel (in elements), from the cache sizes of the
// AMD EPYC (Zen 5) machines this project runs on: 48 KiB L1 data cache and 1 MiB L2 per core,
// 32 MiB L3.
// - KC, the depth of one packed panel: the micro-kernel updates its tile of C once per KC terms,
//   so a larger KC means fewer loads and stores of C; a kc x NR sliver of B (256 x 32 floats =
//   32 KiB) is reused by every sliver of A in the ir loop and stays in L1 beside the sliver of A
//   it meets (14 x 256 floats = 14 KiB).
// - MC, rows of A packed at a time: MC x KC floats (168 x 256 = 168 KiB) stay in L2 while the
//   jr loop sweeps all of B's panel past them.
// - NC, columns of B packed at a time: KC x NC (256 x 2048 = 2 MiB) in L3.
// MC and NC are rounded down to multiples of MR and NR. Measured (loaded machine, CPU time, 1
// thread): KC 160 to 384 and MC 112 to 336 are within the noise (+-8%) of each other at n =
// 256-2048 and on the lesson shapes; KC 128 loses ~10% at n >= 1024.
struct Blocking {
  int64_t MC = 168, KC = 256, NC = 2048;
};

// Rung 4's micro-kernel: portable C++, 6 x 16 (also rung 5's fallback on CPUs without AVX2);
// and the float64 one, 6 x 8.
const MicroKernel& portable_microkernel();
const MicroKernelT<double>& portable_microkernel_f64();

// Rung 5's micro-kernel for an instruction set (gemm_ladder_simd.cpp); Scalar gives rung 4's.
const MicroKernel& microkernel_for(Isa isa);
const MicroKernelT<double>& microkernel_f64_for(Isa isa);

// C = alpha * op(A) op(B) + beta * C through packed panels and the given micro-kernel, on up to
// omp_get_max_threads() threads (one for small products). Bit-identical on any thread count.
// (T = float or double.)
template <class T>
void gemm_packed_with(const MicroKernelT<T>& mk, const Blocking& blk, MMGRAD_GEMM_ARGS(T));

// One MR x NR tile of C (the packed driver's and conv_fast.cpp's). A full tile goes straight to
// the micro-kernel. A tile cut by the edge
// of C (m < MR or n < NR) goes to the kernel's edge variant where it has one (masked loads and
// stores, the missing rows skipped); otherwise it is computed whole into a scratch tile (the
// packed zeros fill the rest) and only its valid part is merged into C. Both give the same bits.
//
// The scratch tile lives in its own function: as a local of run_tile it gave every call, the
// full tiles too, an 8 KiB stack frame to set up (realigned, probed page by page), ~8% of a
// 4096 x 256 x 32 product, whose tiles are only 32 steps of k.
template <class T>
__attribute__((noinline)) void run_tile_scratch(const MicroKernelT<T>& mk, int64_t kc, const T* a,
                                                const T* b, T* C, int64_t ldc, int64_t m, int64_t n,
                                                T alpha, T beta) {
  alignas(64) T tile[32 * 64];  // >= MR x NR of every micro-kernel here
  mk.fn(kc, a, b, tile, mk.NR, alpha, T(0));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      T& c = C[i * ldc + j];
      c = beta == T(0) ? tile[i * mk.NR + j] : tile[i * mk.NR + j] + beta * c;
    }
}

template <class T>
inline void run_tile(const MicroKernelT<T>& mk, int64_t kc, const T* a, const T* b, T* C,
                     int64_t ldc, int64_t m, int64_t n, T alpha, T beta) {
  if (m == mk.MR && n == mk.NR)
    mk.fn(kc, a, b, C, ldc, alpha, beta);
  else if (mk.edge)
    mk.edge(kc, a, b, C, ldc, alpha, beta, static_cast<int>(m), static_cast<int>(n));
  else
    run_tile_scratch(mk, kc, a, b, C, ldc, m, n, alpha, beta);
}

#if defined(__x86_64__) || defined(__i386__)
// r[c] becomes (r[0][c], r[1][c], ..., r[7][c]): an 8 x 8 transpose in registers.
__attribute__((target("avx2"))) inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}
#endif

}  // namespace mmgrad::cpu::ladder
