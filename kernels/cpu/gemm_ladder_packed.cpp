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
// (transposed or not, any leading dimension) runs at the same speed. The micro-kernel holds an
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
#include <cstdlib>
#include <cstring>
#include <new>

namespace mmgrad::cpu::ladder {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A grow-only 64-byte-aligned float buffer. One per thread (thread_local), reused by every call,
// so steady-state GEMMs allocate nothing (a freshly mapped page costs ~10 us to fault in here).
class PackBuffer {
 public:
  ~PackBuffer() { std::free(p_); }
  float* get(int64_t n) {
    if (n > n_) {
      std::free(p_);
      const size_t bytes = (static_cast<size_t>(n) * sizeof(float) + 63) / 64 * 64;
      p_ = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!p_) throw std::bad_alloc();
      n_ = n;
    }
    return p_;
  }

 private:
  float* p_ = nullptr;
  int64_t n_ = 0;
};

PackBuffer& a_buffer() {
  thread_local PackBuffer buf;
  return buf;
}
PackBuffer& b_buffer() {
  thread_local PackBuffer buf;
  return buf;
}

// Pack rows [i0, i0 + mc) x columns [k0, k0 + kc) of op(A) into slivers of MR rows: sliver p
// holds element (i0 + p MR + i, k0 + k) at dst[p MR kc + k MR + i]; rows past mc are zeros.
void pack_a(int MR, bool trans_a, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t k0,
            int64_t kc, float* dst) {
  for (int64_t p = 0; p < mc; p += MR, dst += MR * kc) {
    const int64_t rows = std::min<int64_t>(MR, mc - p);
    if (trans_a) {  // A stored K x M: row k of the sliver is contiguous in memory
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = A + (k0 + k) * lda + i0 + p;
        float* d = dst + k * MR;
        for (int64_t i = 0; i < rows; ++i) d[i] = src[i];
        for (int64_t i = rows; i < MR; ++i) d[i] = 0.0f;
      }
    } else {  // A stored M x K: walk the MR rows side by side, writing the sliver in order
      const float* src[32];  // MR <= 32
      for (int64_t i = 0; i < MR; ++i)
        src[i] = A + (i0 + p + std::min<int64_t>(i, rows - 1)) * lda + k0;
      if (rows == MR) {
        for (int64_t k = 0; k < kc; ++k)
          for (int64_t i = 0; i < MR; ++i) dst[k * MR + i] = src[i][k];
      } else {
        for (int64_t k = 0; k < kc; ++k)
          for (int64_t i = 0; i < MR; ++i) dst[k * MR + i] = i < rows ? src[i][k] : 0.0f;
      }
    }
  }
}

// Pack sliver q (columns [j0 + q NR, j0 + q NR + NR)) of rows [k0, k0 + kc) of op(B): element
// (k0 + k, j0 + q NR + j) at dst[k NR + j]; columns past nc are zeros.
void pack_b_sliver(int NR, bool trans_b, const float* B, int64_t ldb, int64_t k0, int64_t kc,
                   int64_t j0, int64_t nc, int64_t q, float* dst) {
  const int64_t c0 = q * NR, cols = std::min<int64_t>(NR, nc - c0);
  if (trans_b) {  // B stored N x K: a column of op(B) is contiguous in memory
    for (int64_t j = 0; j < cols; ++j) {
      const float* src = B + (j0 + c0 + j) * ldb + k0;
      for (int64_t k = 0; k < kc; ++k) dst[k * NR + j] = src[k];
    }
    for (int64_t j = cols; j < NR; ++j)
      for (int64_t k = 0; k < kc; ++k) dst[k * NR + j] = 0.0f;
  } else {  // B stored K x N: each row of the sliver is a contiguous copy
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = B + (k0 + k) * ldb + j0 + c0;
      float* d = dst + k * NR;
      std::memcpy(d, src, static_cast<size_t>(cols) * sizeof(float));
      for (int64_t j = cols; j < NR; ++j) d[j] = 0.0f;
    }
  }
}

// One MR x NR tile of C. A full tile goes straight to the micro-kernel; a tile cut by the edge
// of C (m < MR or n < NR) is computed into a scratch tile (the packed zeros fill the rest) and
// only its valid part is merged into C.
void run_tile(const MicroKernel& mk, int64_t kc, const float* a, const float* b, float* C,
              int64_t ldc, int64_t m, int64_t n, float alpha, float beta) {
  if (m == mk.MR && n == mk.NR) {
    mk.fn(kc, a, b, C, ldc, alpha, beta);
    return;
  }
  alignas(64) float tile[32 * 64];  // >= MR x NR of every micro-kernel here
  mk.fn(kc, a, b, tile, mk.NR, alpha, 0.0f);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float& c = C[i * ldc + j];
      c = beta == 0.0f ? tile[i * mk.NR + j] : tile[i * mk.NR + j] + beta * c;
    }
}

// C = beta * C (K == 0: the product is empty). beta == 0 writes zeros without reading C.
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  if (beta == 1.0f) return;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

// Below this many multiply-adds a product runs on one thread: starting the team costs more than
// it saves (a 64 x 64 x 64 product takes a few microseconds).
constexpr int64_t kThreadedMacs = int64_t{1} << 20;

// The five loops on one thread, for C[0:M, 0:N] (a whole product or one thread's rectangle).
void packed_loops(const MicroKernel& mk, const Blocking& blk, MMGRAD_SGEMM_ARGS) {
  const int MR = mk.MR, NR = mk.NR;
  const int64_t KC = blk.KC;
  const int64_t NC = std::max<int64_t>(NR, blk.NC / NR * NR);
  // Rows of A per block: at most blk.MC, a multiple of MR, the blocks of M about equal.
  const int64_t m_blocks = ceil_div(M, std::max<int64_t>(MR, blk.MC / MR * MR));
  const int64_t MC = ceil_div(ceil_div(M, m_blocks), MR) * MR;
  float* bpack = b_buffer().get(std::min(KC, K) * ceil_div(std::min(N, NC), NR) * NR);
  float* apack = a_buffer().get(MC * std::min(KC, K));
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc), n_slivers = ceil_div(nc, NR);
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      // The first k block applies beta to the old C; later ones add to what is there.
      const float beta_k = pc == 0 ? beta : 1.0f;
      for (int64_t q = 0; q < n_slivers; ++q)
        pack_b_sliver(NR, trans_b, B, ldb, pc, kc, jc, nc, q, bpack + q * kc * NR);
      for (int64_t ic = 0; ic < M; ic += MC) {
        const int64_t mc = std::min(MC, M - ic);
        pack_a(MR, trans_a, A, lda, ic, mc, pc, kc, apack);
        for (int64_t q = 0; q < n_slivers; ++q) {
          const int64_t jr = q * NR, n = std::min<int64_t>(NR, nc - jr);
          for (int64_t ir = 0; ir < mc; ir += MR)
            run_tile(mk, kc, apack + ir * kc, bpack + q * kc * NR, C + (ic + ir) * ldc + jc + jr,
                     ldc, std::min<int64_t>(MR, mc - ir), n, alpha, beta_k);
        }
      }
    }
  }
}

// The grid of rectangles for `threads` threads: rows x cols == threads, each strip at least one
// micro-tile, chosen to pack the least: thread (r, c) packs M/rows rows of A and N/cols columns
// of B, so the total copied is proportional to threads * (M K / rows + K N / cols).
void thread_grid(int threads, int64_t M, int64_t N, int MR, int NR, int& rows, int& cols) {
  rows = cols = 1;
  double best = -1;
  for (int r = 1; r <= threads; ++r) {
    if (threads % r) continue;
    const int c = threads / r;
    if (r > ceil_div(M, MR) || c > ceil_div(N, NR)) continue;
    const double cost = static_cast<double>(M) / r + static_cast<double>(N) / c;
    if (best < 0 || cost < best) best = cost, rows = r, cols = c;
  }
}

}  // namespace

void sgemm_packed_with(const MicroKernel& mk, const Blocking& blk, MMGRAD_SGEMM_ARGS) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  int threads = M * N * K >= kThreadedMacs && !omp_in_parallel() ? omp_get_max_threads() : 1;
  int rows = 1, cols = 1;
  thread_grid(threads, M, N, mk.MR, mk.NR, rows, cols);
  threads = rows * cols;  // a prime team size that fits no grid runs on fewer threads
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
    const float* a = A + (trans_a ? i0 : i0 * lda);
    const float* b = B + (trans_b ? j0 * ldb : j0);
    packed_loops(mk, blk, trans_a, trans_b, i1 - i0, j1 - j0, K, alpha, a, lda, b, ldb, beta,
                 C + i0 * ldc + j0, ldc);
  }
}

// ---- rung 4: packed panels with a portable micro-kernel ----------------------------------------
// The MR x NR sums live in a local array; with MR x NR small and fixed at compile time the
// compiler keeps it in registers and vectorises the j loop (here 6 rows x 16 columns: 6 SIMD
// registers of 16 floats with AVX-512, 12 with AVX2). Six independent sums are fewer than the
// eight that two FMA units with a 4-cycle latency need, and the compiler decides the rest:
// rung 5 writes the kernel with intrinsics and a larger tile.
template <int MR, int NR>
void microkernel_portable(int64_t kc, const float* a, const float* b, float* C, int64_t ldc,
                          float alpha, float beta) {
  float acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k, a += MR, b += NR)
    for (int i = 0; i < MR; ++i) {
      // `omp simd` asks for this loop as one SIMD instruction per row (acc[i][0..15] += a[i] *
      // b[0..15]); without it GCC unrolls the 16 iterations first and then (with this project's
      // -fno-tree-slp-vectorize, see CMakeLists.txt) leaves them scalar: 10x slower.
#pragma omp simd
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
    }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j)
      C[i * ldc + j] = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * C[i * ldc + j];
}

const MicroKernel& portable_microkernel() {
  static const MicroKernel mk{6, 16, &microkernel_portable<6, 16>};
  return mk;
}

void sgemm_packed(MMGRAD_SGEMM_ARGS) {
  sgemm_packed_with(portable_microkernel(), Blocking{}, trans_a, trans_b, M, N, K, alpha, A, lda, B,
                    ldb, beta, C, ldc);
}

}  // namespace mmgrad::cpu::ladder
