// The backend's GEMM (CpuBackend::gemm): through Eigen in tiles (gemm_eigen_tiles below, also
// the reference that tests and the benchmark compare against), or, with the switch below on,
// float32 and float64 through the top rung of the GEMM ladder (kernels/cpu/gemm_ladder.h,
// docs/gemm_ladder.md: packed panels and an AVX-512 / AVX2 micro-kernel).
//
// The Eigen path maps the tensor buffers straight into Eigen (no copies). A row-major M x K
// matrix with leading dimension lda is an Eigen RowMajor map with outer stride lda; its transpose
// (stored K x M) is the same memory read as a ColMajor map. So every combination of transposed
// operands is a zero-copy Eigen expression, and C.noalias() = A * B runs Eigen's blocked,
// vectorised kernel directly into the output buffer. Threads split the work into tiles of C fixed
// by the problem size (below), so the result is the same on any thread count.
#include <Eigen/Core>
#include <atomic>
#include <cstdlib>

#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/kernels/cpu/gemm_ladder.h"
#include "mmgrad/kernels/cpu/parallel.h"

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

// Rows [i0, i0 + m) and columns [j0, j0 + n) of C for matrix bi of the batch: the rows of A
// and the columns of B they need, as zero-copy maps (a transposed operand's block starts at the
// same element, read column-major).
template <class T>
void gemm_tile(const GemmArgs& g, int64_t bi, int64_t i0, int64_t m, int64_t j0, int64_t n) {
  const T* A = static_cast<const T*>(g.A) + bi * g.stride_a + (g.trans_a ? i0 : i0 * g.lda);
  const T* B = static_cast<const T*>(g.B) + bi * g.stride_b + (g.trans_b ? j0 * g.ldb : j0);
  T* C = static_cast<T*>(g.C) + bi * g.stride_c + i0 * g.ldc + j0;
  OutMap<T> c(C, m, n, Eigen::OuterStride<>(g.ldc));
  const T alpha = static_cast<T>(g.alpha), beta = static_cast<T>(g.beta);
  if (g.K == 0) {  // empty inner dimension: C = beta * C
    if (beta == T(0))
      c.setZero();
    else
      c *= beta;
    return;
  }
  if (!g.trans_a && !g.trans_b)
    gemm_one<T>(RowMap<T>(A, m, g.K, Eigen::OuterStride<>(g.lda)),
                RowMap<T>(B, g.K, n, Eigen::OuterStride<>(g.ldb)), c, alpha, beta);
  else if (g.trans_a && !g.trans_b)
    gemm_one<T>(ColMap<T>(A, m, g.K, Eigen::OuterStride<>(g.lda)),
                RowMap<T>(B, g.K, n, Eigen::OuterStride<>(g.ldb)), c, alpha, beta);
  else if (!g.trans_a && g.trans_b)
    gemm_one<T>(RowMap<T>(A, m, g.K, Eigen::OuterStride<>(g.lda)),
                ColMap<T>(B, g.K, n, Eigen::OuterStride<>(g.ldb)), c, alpha, beta);
  else
    gemm_one<T>(ColMap<T>(A, m, g.K, Eigen::OuterStride<>(g.lda)),
                ColMap<T>(B, g.K, n, Eigen::OuterStride<>(g.ldb)), c, alpha, beta);
}

// Results independent of the thread count.
//
// A sum of floats depends on its order, so a GEMM gives the same bits on 1 and 4 threads only if
// every element's k-sum is done in the same order whatever the team size. Eigen's own threading
// does not promise that: with several threads it re-derives its cache blocking (the depth kc of
// each partial sum) from the team size. So Eigen always runs single-threaded here, and we split
// the work ourselves into tiles of C whose sizes come from the problem (M, N, K) alone; each tile
// is one single-threaded Eigen product, and the threads only decide who computes which tile. The
// k-sum of every element is then the same on any number of threads (tested in
// tests/test_thread_determinism.cpp).
//
// Tile sizes: a product below ~2^22 multiply-adds is one tile (splitting it costs more in
// fork/join than it saves: 64 x 64 x 64 takes 3.9 us on one thread and 11 us on two). Larger ones
// are cut into blocks of C of at most kTileM x kTileN, big enough that re-packing the operands per
// tile costs little (each packed element feeds >= 2 * 32 flops), and halved (the longer side
// first, down to kMinTileSide) until there are kMinTiles of them, so that a product with a short
// side still spreads over the threads: the forward of a linear layer [128, 3136] @ [3136, 128]
// is 8 tiles of 32 x 64 instead of one.
constexpr int64_t kTileM = 256, kTileN = 128, kMinTileSide = 32, kMinTiles = 8;
constexpr int64_t kOneTileFlops = int64_t{1} << 22;

struct Tiling {
  int64_t tm, tn, tiles_m, tiles_n;
};

int64_t ceil_div(int64_t a, int64_t b) { return b > 0 ? (a + b - 1) / b : 0; }

Tiling tiling_for(const GemmArgs& g) {
  const int64_t flops = g.M * g.N * std::max<int64_t>(g.K, 1);
  if (flops < kOneTileFlops) return {g.M, g.N, g.M > 0 ? 1 : 0, g.N > 0 ? 1 : 0};
  int64_t tm = std::min(g.M, kTileM), tn = std::min(g.N, kTileN);
  while (ceil_div(g.M, tm) * ceil_div(g.N, tn) < kMinTiles) {
    if (tm >= tn && tm > kMinTileSide)
      tm = ceil_div(tm, 2);
    else if (tn > kMinTileSide)
      tn = ceil_div(tn, 2);
    else
      break;
  }
  return {tm, tn, ceil_div(g.M, tm), ceil_div(g.N, tn)};
}

// Eigen splits a product across threads only when it runs outside a parallel region and
// omp_get_max_threads() > 1. Inside our parallel_for it already stays serial; when parallel_for
// runs the tiles on the calling thread, this guard sets the calling thread's team size to 1 for
// the duration (omp_set_num_threads changes only this thread's setting) and restores it.
class EigenSerial {
 public:
  EigenSerial() : saved_(omp_in_parallel() ? 0 : omp_get_max_threads()) {
    if (saved_ > 1) omp_set_num_threads(1);
  }
  ~EigenSerial() {
    if (saved_ > 1) omp_set_num_threads(saved_);
  }
  EigenSerial(const EigenSerial&) = delete;
  EigenSerial& operator=(const EigenSerial&) = delete;

 private:
  int saved_;
};

// The switch (gemm_ladder.h: set_gemm_ladder): float32 and float64 GEMMs through the top rung of
// the GEMM ladder (kernels/cpu/gemm_ladder.h, docs/gemm_ladder.md: packed panels and an AVX-512 /
// AVX2 micro-kernel) instead of Eigen. Measured (bench_all --only gemm-ladder, docs/gemm_ladder.md)
// it is faster than the Eigen path on every bench shape, 1 and 2 threads, and not slower on
// tiny products; it gives the same bits on any thread count. It is on by default. The two paths
// sum in different orders: the low bits of every matmul, linear and conv differ between them, so
// a lesson's numbers move a little when it is switched off (MMGRAD_GEMM_LADDER=0).
std::atomic<bool> g_gemm_ladder{[] {
  const char* e = std::getenv("MMGRAD_GEMM_LADDER");
  return e == nullptr || e[0] != '0';
}()};

// One matrix: tiny products without packing (ladder::use_small_gemm), the others through the
// top rung.
void ladder_gemm_one(const float* A, const float* B, float* C, const GemmArgs& g) {
  const auto fn =
      ladder::use_small_gemm(g.M, g.N, g.K) ? &ladder::sgemm_small : &ladder::sgemm_microkernel;
  fn(g.trans_a, g.trans_b, g.M, g.N, g.K, static_cast<float>(g.alpha), A, g.lda, B, g.ldb,
     static_cast<float>(g.beta), C, g.ldc);
}
void ladder_gemm_one(const double* A, const double* B, double* C, const GemmArgs& g) {
  const auto fn =
      ladder::use_small_gemm(g.M, g.N, g.K) ? &ladder::dgemm_small : &ladder::dgemm_microkernel;
  fn(g.trans_a, g.trans_b, g.M, g.N, g.K, g.alpha, A, g.lda, B, g.ldb, g.beta, C, g.ldc);
}

// One GEMM per matrix of the batch. A large matrix is threaded inside the ladder; a batch of
// small ones (attention heads) is shared out matrix by matrix (each then runs on one thread).
// Either way each matrix is computed the same way on any thread count.
template <class T>
void gemm_ladder(const GemmArgs& g) {
  const auto* A = static_cast<const T*>(g.A);
  const auto* B = static_cast<const T*>(g.B);
  auto* C = static_cast<T*>(g.C);
  const auto one = [&](int64_t b) {
    ladder_gemm_one(A + b * g.stride_a, B + b * g.stride_b, C + b * g.stride_c, g);
  };
  const int64_t macs = g.M * g.N * std::max<int64_t>(g.K, 1);
  if (g.batch == 1 || macs >= (int64_t{1} << 20)) {
    for (int64_t b = 0; b < g.batch; ++b) one(b);
    return;
  }
  parallel_for(g.batch, std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(macs, 1)),
               [&](int64_t b0, int64_t b1) {
                 for (int64_t b = b0; b < b1; ++b) one(b);
               });
}

}  // namespace

void gemm_eigen_tiles(const GemmArgs& g) {
  dispatch_floating(g.dtype, "matmul", [&](auto t) {
    using T = decltype(t);
    const Tiling tl = tiling_for(g);
    const int64_t per_matrix = tl.tiles_m * tl.tiles_n, total = g.batch * per_matrix;
    if (total == 0) return;
    // Work items are (matrix, tile) pairs; the grain keeps >= ~2^16 multiply-adds per thread.
    const int64_t flops_per_tile = tl.tm * tl.tn * std::max<int64_t>(g.K, 1);
    parallel_for(total, std::max<int64_t>(1, (int64_t{1} << 16) / flops_per_tile),
                 [&](int64_t w0, int64_t w1) {
                   EigenSerial serial;
                   for (int64_t w = w0; w < w1; ++w) {
                     const int64_t b = w / per_matrix, tile = w % per_matrix;
                     const int64_t i0 = (tile / tl.tiles_n) * tl.tm;
                     const int64_t j0 = (tile % tl.tiles_n) * tl.tn;
                     gemm_tile<T>(g, b, i0, std::min(tl.tm, g.M - i0), j0,
                                  std::min(tl.tn, g.N - j0));
                   }
                 });
  });
}

void CpuBackend::gemm(const GemmArgs& g) {
  if (g_gemm_ladder.load(std::memory_order_relaxed) &&
      (g.dtype == DType::Float32 || g.dtype == DType::Float64)) {
    if (g.dtype == DType::Float32)
      gemm_ladder<float>(g);
    else
      gemm_ladder<double>(g);
    return;
  }
  gemm_eigen_tiles(g);
}

void set_gemm_ladder(bool on) { g_gemm_ladder.store(on); }
bool gemm_ladder_enabled() { return g_gemm_ladder.load(); }

}  // namespace mmgrad::cpu
