// The GEMM kernel ladder: five versions of the same float32 matrix product, from the textbook
// triple loop to a BLIS/GotoBLAS-style packed GEMM with a SIMD micro-kernel, kept side by side so
// a learner can read what each step buys (docs/gemm_ladder.md walks up it with measured numbers;
// `bench_all --only gemm-ladder` measures every rung; tests/test_gemm_ladder.cpp checks every rung
// against the naive one).
//
// Every rung computes the same thing, with the BLAS argument order:
//
//   C = alpha * op(A) @ op(B) + beta * C          (row-major; C is M x N)
//
// op(A) is M x K: A is stored M x K with leading dimension lda (row i starts at A + i * lda), or,
// with trans_a, stored K x M and read transposed (no copy). op(B) is K x N likewise (trans_b: B
// stored N x K). lda, ldb and ldc may exceed the row width (a block of a bigger matrix).
//
// Semantics (those of PyTorch's addmm / BLAS):
// - beta == 0: C is only written, never read, so a NaN or Inf already in C does not propagate.
// - K == 0 (an empty inner dimension): the product is a matrix of zeros, so C = beta * C
//   (all zeros when beta == 0).
// - a NaN or Inf in A or B reaches C: no rung skips a block because some factor is zero.
// - alpha multiplies the product as computed: alpha == 0 still propagates a NaN from A or B.
//
// The rungs (each file's header comment explains its step):
//   1. sgemm_naive        C[i][j] = sum_k A[i][k] B[k][j]: the inner loop walks B down a column,
//                         one cache line per multiply-add.                (gemm_ladder_loops.cpp)
//   2. sgemm_reordered    loop order i, k, j: the inner loop runs along a row of B and of C,
//                         contiguous memory the compiler vectorises.      (gemm_ladder_loops.cpp)
//   3. sgemm_blocked      the same loops over cache-sized blocks, so a block of B is reused from
//                         cache by many rows of A.                         (gemm_ladder_loops.cpp)
//   4. sgemm_packed       GotoBLAS: copy ("pack") a KC x NC panel of B and an MC x KC block of A
//                         into the exact order the innermost kernel reads them, then run a small
//                         register-blocked kernel written in portable C++. (gemm_ladder_packed.cpp)
//   5. sgemm_microkernel  the same packed loops with a hand-written SIMD micro-kernel (AVX-512
//                         14 x 32, or AVX2 6 x 16), chosen at run time for this CPU.
//                                                                          (gemm_ladder_simd.cpp)
// float64 has rung 5 only (dgemm_microkernel: the same loops, its own micro-kernels).
// Rungs 4 and 5 run their outer loops on OpenMP threads (rungs 1-3 are single-threaded: they
// are there to be read). The k-sum of every element of C is done in an order fixed by the
// problem, so rungs 4 and 5 give the same bits on any thread count.
//
// These functions do not check their arguments (they are kernels: the caller, e.g. a Backend,
// checks shapes); they need M, N, K >= 0 and lda/ldb/ldc at least the stored row width.
#pragma once

#include <cstdint>

namespace mmgrad::cpu::ladder {

// The argument list shared by every rung (BLAS order, row-major), for element type T.
#define MMGRAD_GEMM_ARGS(T)                                                                      \
  bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T *A, int64_t lda, \
      const T *B, int64_t ldb, T beta, T *C, int64_t ldc
#define MMGRAD_SGEMM_ARGS MMGRAD_GEMM_ARGS(float)
#define MMGRAD_DGEMM_ARGS MMGRAD_GEMM_ARGS(double)

void sgemm_naive(MMGRAD_SGEMM_ARGS);
void sgemm_reordered(MMGRAD_SGEMM_ARGS);
void sgemm_blocked(MMGRAD_SGEMM_ARGS);
void sgemm_packed(MMGRAD_SGEMM_ARGS);
void sgemm_microkernel(MMGRAD_SGEMM_ARGS);  // the best micro-kernel this CPU runs

// The instruction sets a micro-kernel can be written for. Scalar is portable C++ (the compiler
// may still vectorise it); Avx2 needs AVX2 + FMA; Avx512 needs AVX-512F.
enum class Isa { Scalar, Avx2, Avx512 };
const char* isa_name(Isa isa);
// Whether this build and this CPU can run isa (asked of the CPU at run time:
// __builtin_cpu_supports), and the best one that can.
bool isa_supported(Isa isa);
Isa best_isa();
// Rung 5 with a given micro-kernel (tests run every supported one; an unsupported isa throws
// mmgrad::Error).
void sgemm_microkernel_isa(Isa isa, MMGRAD_SGEMM_ARGS);

// float64: rung 5 with its own micro-kernels (AVX-512 14 x 16, AVX2 6 x 8, portable 6 x 8: the
// same tiles of registers, half as many numbers per register), same loops, same semantics.
void dgemm_microkernel(MMGRAD_DGEMM_ARGS);
void dgemm_microkernel_isa(Isa isa, MMGRAD_DGEMM_ARGS);

// Tiny products without packing (gemm_ladder_packed.cpp): loop order i, k, j with the row of C
// summed in a local array, one thread. Any size works; the backend uses it where packing would
// cost more than the product itself: use_small_gemm(M, N, K), i.e. M N K <= kSmallGemmMacs
// (measured: `bench_all --only gemm-small`).
inline constexpr int64_t kSmallGemmMacs = 8192;
bool use_small_gemm(int64_t M, int64_t N, int64_t K);
void sgemm_small(MMGRAD_SGEMM_ARGS);
void dgemm_small(MMGRAD_DGEMM_ARGS);

// One rung by name, for the tests and the benchmark.
using SgemmFn = void (*)(MMGRAD_SGEMM_ARGS);
struct Rung {
  const char* name;
  SgemmFn fn;
  bool threaded;  // runs on OpenMP threads
};
// The five rungs in ladder order.
const Rung* rungs(int* count);

}  // namespace mmgrad::cpu::ladder

namespace mmgrad {
struct GemmArgs;  // kernels/backend.h
namespace cpu {
// The reference beside the ladder: the CPU backend's GEMM as it was before the ladder became
// its float32 / float64 GEMM (kernels/cpu/gemm.cpp: Eigen, single-threaded, in tiles of C fixed
// by the problem size, threads sharing out the tiles). Any floating dtype, batched and strided
// as CpuBackend::gemm; the same bits on any thread count. Tests and the benchmark compare the
// backend against it.
void gemm_eigen_tiles(const GemmArgs& g);

// Whether CpuBackend::gemm runs float32 / float64 products on the ladder (its top rung, and the
// small-product kernel for M N K <= 8192) instead of gemm_eigen_tiles. On by default; the
// environment variable MMGRAD_GEMM_LADDER=0 starts a program with it off (the Eigen path sums in
// another order, so every matmul, linear and conv result then differs in its low bits).
void set_gemm_ladder(bool on);
bool gemm_ladder_enabled();
}  // namespace cpu
}  // namespace mmgrad
