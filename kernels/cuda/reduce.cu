// Reductions: sum, max, min over any set of dimensions, and argmax/argmin over one.
//
// The output has the input's rank with each reduced dimension of size 1. index::split_reduce
// sorts the dimensions into kept (K) and reduced (R) groups, each coalesced; output k (flat over
// K) reduces the elements r (flat over R). Two kernels:
//   - one block per output: the block's threads stride over r and combine with a block
//     reduction. Used when each output reduces many elements, or when the reduced elements are
//     contiguous (reads coalesced along r).
//   - one thread per output, looping over r in order (the CPU's order). Used for short
//     reductions and for many outputs reducing a strided dimension (e.g. column sums: adjacent
//     threads read adjacent columns, so reads coalesce along k).
// Sums accumulate in double for float32 and float64 (as the CPU does) and in int64 for int64, so
// GPU and CPU sums differ only by summation order: ~1e-16 relative to the sum of |x| (float64),
// and after rounding to float32 almost always not at all. Max/min/argmax/argmin pick by the
// order-independent rule of elem::pick, which gives the CPU's answer (first NaN, else first
// extreme) in any combination order.
#include <cuda_runtime.h>

#include "mmgrad/kernels/cuda/cuda_common.cuh"

namespace mmgrad::cuda {
namespace {

struct ReduceGeom {
  index::DimGroup kept, red;
  int64_t nK = 0, nR = 0;
};

__device__ __forceinline__ int64_t red_offset(const ReduceGeom& g, int64_t r) {
  return g.red.n == 1 ? r * g.red.in_stride[0]
                      : index::strided_offset(r, g.red.n, g.red.shape, g.red.in_stride);
}

// Stores output k: the sum / extreme in T, or the index (ArgMax/ArgMin) in int64.
template <ReduceOp OP, class T, class V>
__device__ __forceinline__ void store(const ReduceGeom& g, void* out, int64_t k, V v) {
  const int64_t o = index::strided_offset(k, g.kept.n, g.kept.shape, g.kept.out_stride);
  if constexpr (OP == ReduceOp::Sum)
    static_cast<T*>(out)[o] = static_cast<T>(v);
  else if constexpr (OP == ReduceOp::ArgMax || OP == ReduceOp::ArgMin)
    static_cast<int64_t*>(out)[o] = v.i;
  else
    static_cast<T*>(out)[o] = v.v;
}

template <ReduceOp OP>
constexpr bool is_max_like() {
  return OP == ReduceOp::Max || OP == ReduceOp::ArgMax;
}

template <bool MAX>
struct Pick {
  template <class T>
  __device__ elem::ValIdx<T> operator()(elem::ValIdx<T> a, elem::ValIdx<T> b) const {
    return elem::pick<MAX>(a, b);
  }
};

// One block per output k (grid-stride over outputs; the loop bound is uniform per block, so
// every thread reaches the block reductions). Launched with up to 1024 threads: the launch bound
// keeps the compiler within the registers that allows (a launch would fail otherwise).
template <ReduceOp OP, class T>
__global__ void __launch_bounds__(1024) reduce_block_kernel(const T* x, void* out, ReduceGeom g) {
  for (int64_t k = blockIdx.x; k < g.nK; k += gridDim.x) {
    const T* p = x + index::strided_offset(k, g.kept.n, g.kept.shape, g.kept.in_stride);
    if constexpr (OP == ReduceOp::Sum) {
      acc_t<T> acc = 0;
      for (int64_t r = threadIdx.x; r < g.nR; r += blockDim.x)
        acc += static_cast<acc_t<T>>(p[red_offset(g, r)]);
      acc = block_reduce(acc, Plus{});
      if (threadIdx.x == 0) store<OP, T>(g, out, k, acc);
    } else {
      elem::ValIdx<T> best{T(0), -1};
      for (int64_t r = threadIdx.x; r < g.nR; r += blockDim.x)
        best = elem::pick<is_max_like<OP>()>(best, elem::ValIdx<T>{p[red_offset(g, r)], r});
      best = block_reduce(best, Pick<is_max_like<OP>()>{});
      if (threadIdx.x == 0) store<OP, T>(g, out, k, best);
    }
  }
}

// One thread per output k, reducing in order.
template <ReduceOp OP, class T>
__global__ void reduce_thread_kernel(const T* x, void* out, ReduceGeom g) {
  MMGRAD_KERNEL_LOOP(k, g.nK) {
    const T* p = x + index::strided_offset(k, g.kept.n, g.kept.shape, g.kept.in_stride);
    if constexpr (OP == ReduceOp::Sum) {
      acc_t<T> acc = 0;
      for (int64_t r = 0; r < g.nR; ++r) acc += static_cast<acc_t<T>>(p[red_offset(g, r)]);
      store<OP, T>(g, out, k, acc);
    } else {
      elem::ValIdx<T> best{T(0), -1};
      for (int64_t r = 0; r < g.nR; ++r)
        best = elem::pick<is_max_like<OP>()>(best, elem::ValIdx<T>{p[red_offset(g, r)], r});
      store<OP, T>(g, out, k, best);
    }
  }
}

template <ReduceOp OP, class T>
void run_reduce(const Strided& in, const Strided& out, const ReduceGeom& g) {
  const bool reduced_contiguous = g.red.n >= 1 && g.red.in_stride[g.red.n - 1] == 1;
  bool per_block;
  if (g.nR <= 16)
    per_block = false;  // short: a block would idle
  else if (reduced_contiguous)
    per_block = true;
  else
    per_block = g.nK < 16384;  // too few outputs to keep the GPU busy with one thread each
  if (per_block) {
    // Fewer outputs than multiprocessors: wider blocks pull more bandwidth per output.
    const int threads = threads_for_row(g.nR, g.nK < sm_count() ? 1024 : 256);
    const int64_t cap = static_cast<int64_t>(sm_count()) * 32;
    const unsigned blocks = static_cast<unsigned>(g.nK < cap ? g.nK : cap);
    reduce_block_kernel<OP, T><<<blocks, threads>>>(in.ptr<T>(), out.data, g);
  } else {
    reduce_thread_kernel<OP, T><<<grid_for(g.nK), kThreads>>>(in.ptr<T>(), out.data, g);
  }
  check_launch("reduce");
}

template <class T>
void reduce_typed(ReduceOp op, const Strided& in, const Strided& out) {
  MMGRAD_CHECK(in.ndim == out.ndim, "reduce: output has ", out.ndim,
               " dimensions, expected the input's ", in.ndim);
  for (int d = 0; d < in.ndim; ++d)
    MMGRAD_CHECK(out.shape[d] == in.shape[d] || out.shape[d] == 1, "reduce: output dimension ", d,
                 " has size ", out.shape[d], ", expected ", in.shape[d], " or 1");
  const bool is_arg = op == ReduceOp::ArgMax || op == ReduceOp::ArgMin;
  MMGRAD_CHECK(out.dtype == (is_arg ? DType::Int64 : in.dtype), "reduce: output dtype ",
               dtype_name(out.dtype), " does not match the op");
  const index::ReduceSplit split = index::split_reduce(in, out);
  ReduceGeom g;
  g.kept = split.kept;
  g.red = split.reduced;
  g.nK = g.kept.numel();
  g.nR = g.red.numel();
  if (g.nK == 0) return;
  // An empty reduction: a sum over no elements is 0 (its identity: the one-thread-per-output
  // kernel below stores its zero accumulator); max, min and their indices have no value there
  // (the ops reject it first, naming themselves, as PyTorch does).
  if (g.nR == 0 && op != ReduceOp::Sum)
    fail(
        "reduce: max/min/argmax/argmin over an empty dimension has no value (input has no "
        "elements along the reduced dimensions)");
  switch (op) {
    case ReduceOp::Sum:
      return run_reduce<ReduceOp::Sum, T>(in, out, g);
    case ReduceOp::Max:
      return run_reduce<ReduceOp::Max, T>(in, out, g);
    case ReduceOp::Min:
      return run_reduce<ReduceOp::Min, T>(in, out, g);
    case ReduceOp::ArgMax:
      return run_reduce<ReduceOp::ArgMax, T>(in, out, g);
    case ReduceOp::ArgMin:
      return run_reduce<ReduceOp::ArgMin, T>(in, out, g);
  }
}

}  // namespace

void CudaBackend::reduce(ReduceOp op, const Strided& in, const Strided& out) {
  switch (in.dtype) {
    case DType::Float32:
      return reduce_typed<float>(op, in, out);
    case DType::Float64:
      return reduce_typed<double>(op, in, out);
    case DType::Int64:
      return reduce_typed<int64_t>(op, in, out);
    case DType::Bool:
      fail("reduce: convert bool tensors to int64 or float first");
  }
}

}  // namespace mmgrad::cuda
