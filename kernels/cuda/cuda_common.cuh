// Shared helpers of the CUDA kernels: error checks, launch sizes, dtype dispatch, block-wide
// reductions and the generic strided elementwise kernel.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "mmgrad/core/error.h"
#include "mmgrad/kernels/cuda/cuda_backend.h"
#include "mmgrad/kernels/index_math.h"
#include "mmgrad/kernels/kernel_math.h"

namespace mmgrad::cuda {

// ---- error checks -------------------------------------------------------------------------------

// Throws mmgrad::Error "<op>: CUDA error <name>: <description>" unless e is cudaSuccess.
void check_cuda(cudaError_t e, const char* op);
// After a kernel launch: reports a bad launch configuration at once, and (with the environment
// variable MMGRAD_CUDA_SYNC=1) waits for the kernel so that a fault is blamed on the right op.
void check_launch(const char* op);

// ---- launch sizes -------------------------------------------------------------------------------

inline constexpr int kThreads = 256;

// Multiprocessors on the device (set when the backend starts, device.cu).
int sm_count();

// Blocks for a grid-stride loop over n items: enough to fill the GPU twice, never more than
// the work needs, at least one.
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  int64_t need = (n + threads - 1) / threads;
  int64_t cap = static_cast<int64_t>(sm_count()) * (2048 / threads) * 2;
  if (need > cap) need = cap;
  return static_cast<unsigned>(need < 1 ? 1 : need);
}

// Grid-stride loop with 64-bit indices: correct for any n and any grid size.
#define MMGRAD_KERNEL_LOOP(i, n)                                                         \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// Threads per block for one block per row of `len` elements: a power of two in [32, max].
inline int threads_for_row(int64_t len, int max_threads = 256) {
  int t = 32;
  while (t < max_threads && t < len) t *= 2;
  return t;
}

// Accumulator type of sums: double for floating types (as on the CPU), int64 otherwise.
template <class T>
using acc_t = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

// ---- block-wide reductions (device) -------------------------------------------------------------

struct Plus {
  template <class T>
  __device__ T operator()(T a, T b) const {
    return a + b;
  }
};
struct Max {
  template <class T>
  __device__ T operator()(T a, T b) const {
    return a < b ? b : a;
  }
};

template <class T>
__device__ __forceinline__ T shfl_down(T v, int offset) {
  return __shfl_down_sync(0xffffffffu, v, offset);
}
template <class T>
__device__ __forceinline__ elem::ValIdx<T> shfl_down(elem::ValIdx<T> v, int offset) {
  return elem::ValIdx<T>{shfl_down(v.v, offset), shfl_down(v.i, offset)};
}

// Reduces v over all threads of the block with op and returns the result to every thread.
// Every thread of the block must call it (blockDim.x a multiple of 32, at most 1024). The
// combination order is fixed (warp tree, then warps in order), so results are deterministic.
// It synchronises before reusing its shared scratch, so calls may follow each other directly.
template <class T, class Op>
__device__ T block_reduce(T v, Op op) {
  __shared__ T scratch[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int nwarps = blockDim.x / 32;
  for (int offset = 16; offset > 0; offset /= 2) v = op(v, shfl_down(v, offset));
  __syncthreads();  // the previous call's readers are done with scratch
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T r = scratch[0];
  for (int w = 1; w < nwarps; ++w) r = op(r, scratch[w]);
  return r;
}

// ---- the generic elementwise kernel -------------------------------------------------------------

// Walks n elements of N same-shape operands (coalesced dims d) and calls f(off) with off[k] the
// element offset in operand k. mode picks the cheapest walk (index::WalkMode); the branch is
// uniform across the grid.
template <int N, class F>
__global__ void elementwise_kernel(F f, index::ElementwiseDims<N> d, int64_t n, int mode) {
  int64_t off[N];
  if (mode == static_cast<int>(index::WalkMode::Contiguous)) {
    MMGRAD_KERNEL_LOOP(i, n) {
      for (int k = 0; k < N; ++k) off[k] = i;
      f(off);
    }
  } else if (mode == static_cast<int>(index::WalkMode::OneDim)) {
    MMGRAD_KERNEL_LOOP(i, n) {
      for (int k = 0; k < N; ++k) off[k] = i * d.strides[k][0];
      f(off);
    }
  } else {
    MMGRAD_KERNEL_LOOP(i, n) {
      index::strided_offsets(i, d, off);
      f(off);
    }
  }
}

// Kernels index every operand with the output's shape: a mismatch would read out of bounds.
template <int N>
void check_same_shapes(const char* op, const Strided* const (&ops)[N]) {
  for (int k = 1; k < N; ++k) {
    bool same = ops[k]->ndim == ops[0]->ndim;
    for (int d = 0; same && d < ops[0]->ndim; ++d) same = ops[k]->shape[d] == ops[0]->shape[d];
    MMGRAD_CHECK(same, op, ": operand ", k, " has a different shape from the output (",
                 ops[k]->ndim, " vs ", ops[0]->ndim, " dims, ", ops[k]->numel(), " vs ",
                 ops[0]->numel(),
                 " elements); the kernel expects operands broadcast to the output's shape");
  }
}

// Runs f over the operands ops[0..N) (ops[0] is the output; all have its shape).
template <int N, class F>
void launch_elementwise(const char* op, const Strided* const (&ops)[N], const F& f) {
  check_same_shapes<N>(op, ops);
  const int64_t n = ops[0]->numel();
  if (n == 0) return;
  const index::ElementwiseDims<N> d = index::coalesce<N>(ops);
  const int mode = static_cast<int>(index::walk_mode(d));
  elementwise_kernel<N><<<grid_for(n), kThreads>>>(f, d, n, mode);
  check_launch(op);
}

// A kernel that runs f(i) for i in [0, n): for "one thread per output element" kernels whose
// body is an element function of element_ops.h.
template <class F>
__global__ void index_kernel(F f, int64_t n) {
  MMGRAD_KERNEL_LOOP(i, n) f(i);
}

template <class F>
void launch_index(const char* op, int64_t n, const F& f) {
  if (n <= 0) return;
  index_kernel<<<grid_for(n), kThreads>>>(f, n);
  check_launch(op);
}

// Temporary device memory from the caching allocator, returned when the scope ends. The
// allocator serves later requests from this block only after the work queued so far (one
// stream), so freeing right after queuing the kernels that use it is safe.
class DeviceBuffer {
 public:
  DeviceBuffer(CudaBackend& be, size_t nbytes) : be_(be), n_(nbytes), p_(be.allocate(nbytes)) {}
  ~DeviceBuffer() { be_.deallocate(p_, n_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }

 private:
  CudaBackend& be_;
  size_t n_;
  void* p_;
};

}  // namespace mmgrad::cuda
