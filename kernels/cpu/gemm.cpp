// GEMM through Eigen, mapped straight onto the tensor buffers (no copies).
//
// A row-major M x K matrix with leading dimension lda is an Eigen RowMajor map with outer stride
// lda; its transpose (stored K x M) is the same memory read as a ColMajor map. So every
// combination of transposed operands is a zero-copy Eigen expression, and
// C.noalias() = A * B runs Eigen's blocked, vectorised kernel directly into the output buffer.
// Batches of small matrices run in parallel over the batch (Eigen then stays single-threaded
// inside, since it does not nest OpenMP regions); large matrices let Eigen use every thread.
#include <Eigen/Core>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/parallel.h"

namespace mmgrad::cpu {
namespace {

template <class T>
using RowMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>,
                          0, Eigen::OuterStride<>>;
template <class T>
using ColMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>,
                          0, Eigen::OuterStride<>>;
template <class T>
using OutMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0,
                          Eigen::OuterStride<>>;

template <class T, class MA, class MB>
void gemm_one(const MA& a, const MB& b, OutMap<T>& c, T alpha, T beta) {
  if (beta == T(0)) {
    if (alpha == T(1))
      c.noalias() = a * b;
    else
      c.noalias() = alpha * (a * b);
  } else {
    if (beta != T(1)) c *= beta;
    if (alpha == T(1))
      c.noalias() += a * b;
    else
      c.noalias() += alpha * (a * b);
  }
}

template <class T>
void gemm_batch(const GemmArgs& g, int64_t bi) {
  const T* A = static_cast<const T*>(g.A) + bi * g.stride_a;
  const T* B = static_cast<const T*>(g.B) + bi * g.stride_b;
  T* C = static_cast<T*>(g.C) + bi * g.stride_c;
  OutMap<T> c(C, g.M, g.N, Eigen::OuterStride<>(g.ldc));
  const T alpha = static_cast<T>(g.alpha), beta = static_cast<T>(g.beta);
  if (g.K == 0) {  // empty inner dimension: C = beta * C
    if (beta == T(0))
      c.setZero();
    else
      c *= beta;
    return;
  }
  if (!g.trans_a && !g.trans_b)
    gemm_one<T>(RowMap<T>(A, g.M, g.K, Eigen::OuterStride<>(g.lda)),
                RowMap<T>(B, g.K, g.N, Eigen::OuterStride<>(g.ldb)), c, alpha, beta);
  else if (g.trans_a && !g.trans_b)
    gemm_one<T>(ColMap<T>(A, g.M, g.K, Eigen::OuterStride<>(g.lda)),
                RowMap<T>(B, g.K, g.N, Eigen::OuterStride<>(g.ldb)), c, alpha, beta);
  else if (!g.trans_a && g.trans_b)
    gemm_one<T>(RowMap<T>(A, g.M, g.K, Eigen::OuterStride<>(g.lda)),
                ColMap<T>(B, g.K, g.N, Eigen::OuterStride<>(g.ldb)), c, alpha, beta);
  else
    gemm_one<T>(ColMap<T>(A, g.M, g.K, Eigen::OuterStride<>(g.lda)),
                ColMap<T>(B, g.K, g.N, Eigen::OuterStride<>(g.ldb)), c, alpha, beta);
}

}  // namespace

void CpuBackend::gemm(const GemmArgs& g) {
  dispatch_floating(g.dtype, "matmul", [&](auto t) {
    using T = decltype(t);
    const int64_t flops_per = g.M * g.N * std::max<int64_t>(g.K, 1);
    // A batch of at least two matrices per thread (e.g. the images of a convolution) runs in
    // parallel over the batch, one single-threaded GEMM per matrix: letting Eigen split every
    // one of many mid-sized products across the threads instead costs a fork/join per product,
    // and those barriers stall badly when the cores are shared (measured on [64 x 288] @
    // [288 x 196], 128 images, 2 threads on a loaded 2-core machine: 0.15-3 s instead of 0.02 s).
    const bool many = g.batch >= 2 * static_cast<int64_t>(omp_get_max_threads());
    // One small product (M N K below ~160^3) runs on one thread: Eigen would split it across
    // the team, and the fork/join costs more than it saves (64 x 64 x 64 on this machine:
    // 3.9 us on one thread, 11 us on two). Eigen reads the team size from omp_get_max_threads(),
    // which omp_set_num_threads sets for this thread only; it is restored right after.
    if (g.batch == 1 && flops_per < (int64_t{1} << 22) && omp_get_max_threads() > 1) {
      const int threads = omp_get_max_threads();
      omp_set_num_threads(1);
      gemm_batch<T>(g, 0);
      omp_set_num_threads(threads);
    } else if (g.batch == 1 || (flops_per >= (int64_t{1} << 21) && !many)) {
      for (int64_t b = 0; b < g.batch; ++b) gemm_batch<T>(g, b);
    } else {
      parallel_for(g.batch, std::max<int64_t>(1, (int64_t{1} << 16) / flops_per),
                   [&](int64_t b0, int64_t b1) {
                     for (int64_t b = b0; b < b1; ++b) gemm_batch<T>(g, b);
                   });
    }
  });
}

}  // namespace mmgrad::cpu
