// Rungs 1-3 of the GEMM ladder (kernels/cpu/gemm_ladder.h): plain loops.
//
// A matrix product does 2 M N K floating-point operations on only M K + K N + M N numbers, so it
// can run at the speed of the arithmetic units rather than of memory, but only if each number
// fetched from memory is used many times while it is close to the core (in a register or the L1
// cache). The three rungs here change nothing but the order of the same multiply-adds, and each
// order reuses data better than the one before.
#include <algorithm>

#include "mmgrad/kernels/cpu/gemm_ladder.h"

namespace mmgrad::cpu::ladder {
namespace {

// Element (i, k) of op(A) and (k, j) of op(B), for either storage.
inline float at_a(bool trans_a, const float* A, int64_t lda, int64_t i, int64_t k) {
  return trans_a ? A[k * lda + i] : A[i * lda + k];
}
inline float at_b(bool trans_b, const float* B, int64_t ldb, int64_t k, int64_t j) {
  return trans_b ? B[j * ldb + k] : B[k * ldb + j];
}

// C = beta * C, for the rungs that then add the product into C. beta == 0 writes zeros without
// reading C, so a NaN in the old C does not survive (BLAS / PyTorch semantics).
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  if (beta == 1.0f) return;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

}  // namespace

// ---- rung 1: naive ------------------------------------------------------------------------------
// The definition, C[i][j] = sum_k A[i][k] B[k][j], one dot product per element. The inner loop
// walks down a column of B: consecutive k are ldb floats apart, so every multiply-add touches a
// new 64-byte cache line and uses 4 bytes of it. For n >= 512 a column of B no longer stays in
// cache between one i and the next, and the loop runs at the speed of memory: ~1-2 GFLOP/s.
void sgemm_naive(MMGRAD_SGEMM_ARGS) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      float sum = 0.0f;
      for (int64_t k = 0; k < K; ++k)
        sum += at_a(trans_a, A, lda, i, k) * at_b(trans_b, B, ldb, k, j);
      // beta == 0: do not read C (it may hold NaN); K == 0 gives sum = 0, so C = beta * C.
      C[i * ldc + j] = beta == 0.0f ? alpha * sum : alpha * sum + beta * C[i * ldc + j];
    }
}

// ---- rung 2: loop-reordered (i, k, j) -----------------------------------------------------------
// The same multiply-adds with the j loop innermost: C[i][:] += A[i][k] * B[k][:]. Now the inner
// loop reads a row of B and updates a row of C, both contiguous, so each cache line serves 16
// floats and the compiler turns the loop into SIMD instructions (16 floats per AVX-512 FMA). The
// price: a row of C is loaded and stored K times instead of once. (With trans_b, B's row is
// strided again: the packing of rung 4 is what makes every layout equally fast.)
void sgemm_reordered(MMGRAD_SGEMM_ARGS) {
  scale_c(M, N, beta, C, ldc);
  for (int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    for (int64_t k = 0; k < K; ++k) {
      const float a = alpha * at_a(trans_a, A, lda, i, k);
      if (trans_b)
        for (int64_t j = 0; j < N; ++j) c[j] += a * B[j * ldb + k];
      else {
        const float* b = B + k * ldb;
        for (int64_t j = 0; j < N; ++j) c[j] += a * b[j];
      }
    }
  }
}

// ---- rung 3: cache-blocked ----------------------------------------------------------------------
// Rung 2 streams all of B (K x N) through the cache once per row of A; for large matrices B does
// not fit, so it comes from memory M times. Cutting the loops into blocks fixes that: a
// kBlockK x kBlockN block of B (here 128 x 256 floats = 128 KiB, sized for the 1 MiB L2 cache)
// is loaded once and then used by kBlockM rows of A, and a kBlockM x kBlockN block of C stays in
// cache while the k loop adds into it. Inside a block the loops are rung 2's.
// The k blocks run in order, so each C element still sums its k terms in order 0..K-1.
void sgemm_blocked(MMGRAD_SGEMM_ARGS) {
  constexpr int64_t kBlockM = 64, kBlockN = 256, kBlockK = 128;
  scale_c(M, N, beta, C, ldc);
  for (int64_t j0 = 0; j0 < N; j0 += kBlockN) {
    const int64_t j1 = std::min(N, j0 + kBlockN);
    for (int64_t k0 = 0; k0 < K; k0 += kBlockK) {
      const int64_t k1 = std::min(K, k0 + kBlockK);
      for (int64_t i0 = 0; i0 < M; i0 += kBlockM) {
        const int64_t i1 = std::min(M, i0 + kBlockM);
        for (int64_t i = i0; i < i1; ++i) {
          float* c = C + i * ldc;
          for (int64_t k = k0; k < k1; ++k) {
            const float a = alpha * at_a(trans_a, A, lda, i, k);
            if (trans_b)
              for (int64_t j = j0; j < j1; ++j) c[j] += a * B[j * ldb + k];
            else {
              const float* b = B + k * ldb;
              for (int64_t j = j0; j < j1; ++j) c[j] += a * b[j];
            }
          }
        }
      }
    }
  }
}

}  // namespace mmgrad::cpu::ladder
