// GEMM through cuBLAS (strided-batched, float32 and float64).
//
// cuBLAS is column-major; our GemmArgs are row-major. index::column_major_gemm rewrites
// C = op(A) op(B) as C^T = op(B)^T op(A)^T, which reads the same memory with no copies (see
// kernels/index_math.h; tests/test_cuda.cpp checks the mapping on the CPU against Eigen).
// The 64-bit-index cuBLAS entry points (_64, CUDA 12+) take our int64 sizes as they are.
//
// float32 is exact float32 by default (CUBLAS_DEFAULT_MATH never uses TF32); set_allow_tf32(true)
// switches to CUBLAS_TF32_TENSOR_OP_MATH.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <atomic>
#include <string>

#include "kernels/cuda/cuda_common.cuh"

namespace mmgrad::cuda {
namespace {

std::atomic<bool> g_allow_tf32{false};

void check_cublas(cublasStatus_t s, const char* what, const GemmArgs* g = nullptr) {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  std::string sizes =
      g ? cat_str(" (batch ", g->batch, ", M ", g->M, ", N ", g->N, ", K ", g->K, ", lda ", g->lda,
                  ", ldb ", g->ldb, ", ldc ", g->ldc, ", trans_a ", g->trans_a, ", trans_b ",
                  g->trans_b, ")")
        : std::string();
  fail(cat_str("matmul: cuBLAS ", what, " failed: ", cublasGetStatusName(s), ": ",
               cublasGetStatusString(s), sizes));
}

cublasHandle_t handle() {
  static cublasHandle_t h = [] {
    cublasHandle_t created = nullptr;
    check_cublas(cublasCreate(&created), "cublasCreate");
    check_cublas(cublasSetStream(created, 0), "cublasSetStream");  // the legacy default stream
    check_cublas(cublasSetPointerMode(created, CUBLAS_POINTER_MODE_HOST), "cublasSetPointerMode");
    return created;  // never destroyed (the driver may be gone at static destruction)
  }();
  return h;
}

// C[b] = beta * C[b] over an M x N matrix with leading dimension ldc: the whole product when
// K == 0 (an empty sum). beta == 0 writes zeros (BLAS semantics: C is not read).
template <class T>
struct ScaleF {
  T* C;
  int64_t M, N, ldc, stride_c;
  T beta;
  __device__ void operator()(int64_t i) const {
    const int64_t j = i % N, t = i / N;
    const int64_t r = t % M, b = t / M;
    T* c = C + b * stride_c + r * ldc + j;
    *c = beta == T(0) ? T(0) : beta * *c;
  }
};

}  // namespace

void set_allow_tf32(bool allow) { g_allow_tf32 = allow; }
bool allow_tf32() { return g_allow_tf32; }

void CudaBackend::gemm(const GemmArgs& g) {
  dispatch_floating(g.dtype, "matmul", [&](auto t) {
    using T = decltype(t);
    MMGRAD_CHECK(g.batch >= 0 && g.M >= 0 && g.N >= 0 && g.K >= 0, "matmul: negative size (batch ",
                 g.batch, ", M ", g.M, ", N ", g.N, ", K ", g.K, ")");
    if (g.batch == 0 || g.M == 0 || g.N == 0) return;
    if (g.K == 0) {
      launch_index("matmul", g.batch * g.M * g.N,
                   ScaleF<T>{static_cast<T*>(g.C), g.M, g.N, g.ldc, g.stride_c,
                             static_cast<T>(g.beta)});
      return;
    }
    const index::ColumnMajorGemm c = index::column_major_gemm(g);
    const cublasOperation_t op_first = c.trans_first ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_second = c.trans_second ? CUBLAS_OP_T : CUBLAS_OP_N;
    const T alpha = static_cast<T>(g.alpha), beta = static_cast<T>(g.beta);
    cublasHandle_t h = handle();
    if constexpr (std::is_same_v<T, float>) {
      check_cublas(cublasSetMathMode(h, g_allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                                     : CUBLAS_DEFAULT_MATH),
                   "cublasSetMathMode");
      check_cublas(cublasSgemmStridedBatched_64(
                       h, op_first, op_second, c.m, c.n, c.k, &alpha,
                       static_cast<const float*>(c.first), c.ld_first, c.stride_first,
                       static_cast<const float*>(c.second), c.ld_second, c.stride_second, &beta,
                       static_cast<float*>(c.C), c.ldc, c.stride_c, c.batch),
                   "cublasSgemmStridedBatched", &g);
    } else {
      check_cublas(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
      check_cublas(cublasDgemmStridedBatched_64(
                       h, op_first, op_second, c.m, c.n, c.k, &alpha,
                       static_cast<const double*>(c.first), c.ld_first, c.stride_first,
                       static_cast<const double*>(c.second), c.ld_second, c.stride_second, &beta,
                       static_cast<double*>(c.C), c.ldc, c.stride_c, c.batch),
                   "cublasDgemmStridedBatched", &g);
    }
  });
}

}  // namespace mmgrad::cuda
