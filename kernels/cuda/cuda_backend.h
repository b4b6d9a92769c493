// The CUDA backend: kernels in kernels/cuda/*.cu, GEMM through cuBLAS, and a caching allocator.
//
// This header is plain C++ (no CUDA headers), so host code and tests can include it; everything
// CUDA-specific stays in the .cu files. Each group of methods lives in its own file:
//   memory.cu (allocator, copies), elementwise.cu, reduce.cu, gemm.cu, random.cu, index.cu,
//   sort.cu, softmax.cu, layer_norm.cu, conv.cu, adam.cu, device.cu (device discovery).
// The per-element arithmetic of the kernels lives in kernels/element_ops.h and
// kernels/kernel_math.h (shared with the CPU backend) and the index math in kernels/index_math.h,
// all __host__ __device__, so the CPU tests cover them.
//
// Everything runs on the legacy default stream, in order: a kernel sees the results of every
// earlier kernel and copy, and a block returned to the allocator's cache can be handed out again
// at once (later work on the same stream runs after the work that still reads it).
#pragma once

#include <cstdint>

#include "mmgrad/kernels/backend.h"

namespace mmgrad {

// Defined in kernels/cuda/device.cu (declared again in kernels/backend.cpp).
bool cuda_device_present();
// The CUDA backend; throws mmgrad::Error naming the reason when no usable GPU is present.
Backend& cuda_backend();

namespace cuda {

// Statistics of the CUDA caching allocator (memory.cu). A steady-state training step allocates
// only from the cache: cuda_malloc_calls stops growing after the first step.
struct AllocatorStats {
  int64_t cuda_malloc_calls = 0;  // blocks obtained with cudaMalloc
  int64_t cuda_free_calls = 0;    // blocks given back with cudaFree (empty_cache, out of memory)
  int64_t cache_hits = 0;         // allocations served from the cache
  int64_t bytes_cached = 0;       // bytes held in the cache, ready for reuse
  int64_t bytes_in_use = 0;       // bytes handed out to live tensors
};
AllocatorStats allocator_stats();
// Gives every cached block back to the driver (cudaFree).
void empty_cache();

// float32 GEMMs are exact float32 by default (CUBLAS_DEFAULT_MATH). set_allow_tf32(true) lets
// cuBLAS use TF32 tensor cores (10-bit mantissa inputs, float32 accumulation): several times
// faster on Ampere and newer, with relative errors around 1e-3 instead of 1e-6.
void set_allow_tf32(bool allow);
bool allow_tf32();

// Loads cuBLAS (dlopen; the first GPU GEMM does it anyway). Needs no GPU; throws mmgrad::Error
// naming the library paths tried when cuBLAS cannot be found.
void load_cublas();

// Name and compute capability of the GPU in use, e.g. "NVIDIA H100 80GB HBM3 (sm_90)".
const char* device_description();

class CudaBackend final : public Backend {
 public:
  Device device() const override { return Device::CUDA; }

  void* allocate(size_t nbytes) override;
  void deallocate(void* ptr, size_t nbytes) override;
  void copy_to_host(void* host_dst, const void* src, size_t nbytes) override;
  void copy_from_host(void* dst, const void* host_src, size_t nbytes) override;
  void synchronize() override;

  void fill(const Strided& out, double value) override;
  void copy(const Strided& src, const Strided& out) override;
  void unary(UnaryOp op, const Strided& in, const Strided& out, double alpha, double beta) override;
  void binary(BinaryOp op, const Strided& a, const Strided& b, const Strided& out) override;
  void where(const Strided& cond, const Strided& a, const Strided& b, const Strided& out) override;
  void reduce(ReduceOp op, const Strided& in, const Strided& out) override;
  void gemm(const GemmArgs& g) override;
  void random(RandomDist dist, const Strided& out, uint64_t seed, uint64_t offset, double a,
              double b) override;

  void index_select(DType dtype, const void* src, const int64_t* idx, void* out, int64_t outer,
                    int64_t src_dim, int64_t inner, int64_t n_idx) override;
  void index_add(DType dtype, const void* src, const int64_t* idx, void* dst, int64_t outer,
                 int64_t dst_dim, int64_t inner, int64_t n_idx) override;
  void gather(DType dtype, const void* src, const int64_t* idx, void* out, int64_t outer,
              int64_t src_dim, int64_t idx_dim, int64_t inner) override;
  void scatter_add(DType dtype, const void* src, const int64_t* idx, void* dst, int64_t outer,
                   int64_t dst_dim, int64_t idx_dim, int64_t inner) override;
  void sort_rows(DType dtype, const void* in, void* values, int64_t* indices, int64_t rows,
                 int64_t n, int64_t k, bool descending) override;

  void softmax_forward(const SoftmaxArgs& a) override;
  void softmax_backward(const SoftmaxBackwardArgs& a) override;
  void cross_entropy_forward(const CrossEntropyArgs& a) override;
  void cross_entropy_backward(const CrossEntropyBackwardArgs& a) override;

  void layer_norm_forward(const LayerNormArgs& a) override;
  void layer_norm_backward(const LayerNormBackwardArgs& a) override;

  void im2col(DType dtype, const void* x, void* cols, const Conv2dGeom& g) override;
  void col2im(DType dtype, const void* cols, void* gx, const Conv2dGeom& g) override;
  void max_pool2d_forward(DType dtype, const void* x, void* y, void* record,
                          const Conv2dGeom& g) override;
  void max_pool2d_backward(DType dtype, const void* gy, const void* record, void* gx,
                           const Conv2dGeom& g) override;
  void avg_pool2d_forward(DType dtype, const void* x, void* y, const Conv2dGeom& g) override;
  void avg_pool2d_backward(DType dtype, const void* gy, void* gx, const Conv2dGeom& g) override;
  void adaptive_avg_pool2d_forward(DType dtype, const void* x, void* y,
                                   const Conv2dGeom& g) override;
  void adaptive_avg_pool2d_backward(DType dtype, const void* gy, void* gx,
                                    const Conv2dGeom& g) override;

  void adam_step(const AdamStepArgs& a) override;
};

}  // namespace cuda
}  // namespace mmgrad
