// GEMM through cuBLAS (strided-batched, float32 and float64).
//
// cuBLAS is column-major; our GemmArgs are row-major. index::column_major_gemm rewrites
// C = op(A) op(B) as C^T = op(B)^T op(A)^T, which reads the same memory with no copies (see
// kernels/index_math.h; tests/test_cuda.cpp checks the mapping on the CPU against Eigen).
// The 64-bit-index cuBLAS entry points (_64, CUDA 12+) take our int64 sizes as they are.
//
// float32 is exact float32 by default (CUBLAS_DEFAULT_MATH never uses TF32); set_allow_tf32(true)
// switches to CUBLAS_TF32_TENSOR_OP_MATH.
//
// cuBLAS is loaded with dlopen on the first GEMM instead of being linked. libcublas and the
// libcublasLt it pulls in are ~600 MB of shared objects whose load-time relocations cost ~0.4 s
// and ~200 MB of resident memory per process on these VMs: every test, lesson and tool built
// with CUDA would pay that at start-up, GPU or not. Now only a process that runs a GEMM on the
// GPU does. The library is looked up by its soname (LD_LIBRARY_PATH, ldconfig), then at the path
// CMake found at configure time (MMGRAD_CUBLAS_PATH).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <atomic>
#include <string>
#include <type_traits>

#include "mmgrad/kernels/cuda/cuda_common.cuh"

#define MMGRAD_STR_IMPL(x) #x
#define MMGRAD_STR(x) MMGRAD_STR_IMPL(x)

namespace mmgrad::cuda {
namespace {

std::atomic<bool> g_allow_tf32{false};

// The cuBLAS entry points we use (types from cublas_v2.h, addresses from dlsym).
struct Cublas {
  decltype(&cublasCreate) create = nullptr;
  decltype(&cublasSetStream) set_stream = nullptr;
  decltype(&cublasSetPointerMode) set_pointer_mode = nullptr;
  decltype(&cublasSetMathMode) set_math_mode = nullptr;
  decltype(&cublasSgemmStridedBatched_64) sgemm = nullptr;
  decltype(&cublasDgemmStridedBatched_64) dgemm = nullptr;
  decltype(&cublasGetStatusName) status_name = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
};

const Cublas& cublas() {
  // If loading throws, the next call tries again (and reports again).
  static const Cublas api = [] {
    std::string tried;
    void* lib = nullptr;
    const char* names[] = {"libcublas.so." MMGRAD_STR(CUBLAS_VER_MAJOR),
#ifdef MMGRAD_CUBLAS_PATH
                           MMGRAD_CUBLAS_PATH,
#endif
                           "libcublas.so"};
    for (const char* name : names) {
      lib = dlopen(name, RTLD_LAZY | RTLD_LOCAL);  // never closed: used until the process ends
      if (lib) break;
      const char* why = dlerror();
      tried += cat_str(" [", name, ": ", why ? why : "not found", "]");
    }
    MMGRAD_CHECK(lib != nullptr, "matmul: cannot load the cuBLAS library:", tried,
                 " (add the CUDA toolkit's lib64 directory to LD_LIBRARY_PATH)");
    Cublas c;
    auto load = [&](auto& fn, const char* symbol) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, symbol));
      MMGRAD_CHECK(fn != nullptr, "matmul: the cuBLAS library has no ", symbol,
                   " (cuBLAS 12 or newer is needed)");
    };
    load(c.create, "cublasCreate_v2");
    load(c.set_stream, "cublasSetStream_v2");
    load(c.set_pointer_mode, "cublasSetPointerMode_v2");
    load(c.set_math_mode, "cublasSetMathMode");
    load(c.sgemm, "cublasSgemmStridedBatched_64");
    load(c.dgemm, "cublasDgemmStridedBatched_64");
    load(c.status_name, "cublasGetStatusName");
    load(c.status_string, "cublasGetStatusString");
    return c;
  }();
  return api;
}

void check_cublas(cublasStatus_t s, const char* what, const GemmArgs* g = nullptr) {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  std::string sizes = g ? cat_str(" (batch ", g->batch, ", M ", g->M, ", N ", g->N, ", K ", g->K,
                                  ", lda ", g->lda, ", ldb ", g->ldb, ", ldc ", g->ldc,
                                  ", trans_a ", g->trans_a, ", trans_b ", g->trans_b, ")")
                        : std::string();
  fail(cat_str("matmul: cuBLAS ", what, " failed: ", cublas().status_name(s), ": ",
               cublas().status_string(s), sizes));
}

cublasHandle_t handle() {
  static cublasHandle_t h = [] {
    const Cublas& api = cublas();
    cublasHandle_t created = nullptr;
    check_cublas(api.create(&created), "cublasCreate");
    check_cublas(api.set_stream(created, 0), "cublasSetStream");  // the legacy default stream
    check_cublas(api.set_pointer_mode(created, CUBLAS_POINTER_MODE_HOST), "cublasSetPointerMode");
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

void load_cublas() { cublas(); }

void set_allow_tf32(bool allow) { g_allow_tf32 = allow; }
bool allow_tf32() { return g_allow_tf32; }

void CudaBackend::gemm(const GemmArgs& g) {
  dispatch_floating(g.dtype, "matmul", [&](auto t) {
    using T = decltype(t);
    MMGRAD_CHECK(g.batch >= 0 && g.M >= 0 && g.N >= 0 && g.K >= 0, "matmul: negative size (batch ",
                 g.batch, ", M ", g.M, ", N ", g.N, ", K ", g.K, ")");
    if (g.batch == 0 || g.M == 0 || g.N == 0) return;
    if (g.K == 0) {
      launch_index(
          "matmul", g.batch * g.M * g.N,
          ScaleF<T>{static_cast<T*>(g.C), g.M, g.N, g.ldc, g.stride_c, static_cast<T>(g.beta)});
      return;
    }
    const index::ColumnMajorGemm c = index::column_major_gemm(g);
    const cublasOperation_t op_first = c.trans_first ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_second = c.trans_second ? CUBLAS_OP_T : CUBLAS_OP_N;
    const T alpha = static_cast<T>(g.alpha), beta = static_cast<T>(g.beta);
    cublasHandle_t h = handle();
    if constexpr (std::is_same_v<T, float>) {
      check_cublas(cublas().set_math_mode(
                       h, g_allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
                   "cublasSetMathMode");
      check_cublas(cublas().sgemm(h, op_first, op_second, c.m, c.n, c.k, &alpha,
                                  static_cast<const float*>(c.first), c.ld_first, c.stride_first,
                                  static_cast<const float*>(c.second), c.ld_second, c.stride_second,
                                  &beta, static_cast<float*>(c.C), c.ldc, c.stride_c, c.batch),
                   "cublasSgemmStridedBatched", &g);
    } else {
      check_cublas(cublas().set_math_mode(h, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
      check_cublas(
          cublas().dgemm(h, op_first, op_second, c.m, c.n, c.k, &alpha,
                         static_cast<const double*>(c.first), c.ld_first, c.stride_first,
                         static_cast<const double*>(c.second), c.ld_second, c.stride_second, &beta,
                         static_cast<double*>(c.C), c.ldc, c.stride_c, c.batch),
          "cublasDgemmStridedBatched", &g);
    }
  });
}

}  // namespace mmgrad::cuda
