// Indexing kernels: index_select / index_add (embedding rows and their gradient), gather /
// scatter_add along one dimension of tensors viewed as [outer, dim, inner].
//
// One thread per element of the indexed side. The adjoints (index_add, scatter_add) add with
// atomicAdd, because repeated indices send several source elements to one destination; float
// atomics add in an unspecified order, so with repeated indices the sums match the CPU's to
// rounding (float32 ~1e-7 relative per addition), not bit for bit.
//
// Indices are validated by the ops (ops/index.cpp) before they reach a kernel; the kernels only
// guard memory: an index outside [0, dim) reads as 0 (select, gather) or is skipped (adds).
#include <cuda_runtime.h>

#include "mmgrad/kernels/cuda/cuda_common.cuh"

namespace mmgrad::cuda {
namespace {

// out[o, i, k] = src[o, idx[i], k]; t is the flat index over [outer, n_idx, inner].
template <class T>
struct IndexSelectF {
  const T* src;
  const int64_t* idx;
  T* out;
  int64_t src_dim, inner, n_idx;
  __device__ void operator()(int64_t t) const {
    const int64_t s = elem::index_select_offset(idx, src_dim, inner, n_idx, t);
    out[t] = s >= 0 ? src[s] : T(0);
  }
};

// dst[o, idx[i], k] += src[o, i, k]
template <class T>
struct IndexAddF {
  const T* src;
  const int64_t* idx;
  T* dst;
  int64_t dst_dim, inner, n_idx;
  __device__ void operator()(int64_t t) const {
    const int64_t d = elem::index_select_offset(idx, dst_dim, inner, n_idx, t);
    if (d >= 0) atomicAdd(dst + d, src[t]);
  }
};

// out[o, j, k] = src[o, idx[o, j, k], k]; p is the flat index over [outer, idx_dim, inner].
template <class T>
struct GatherF {
  const T* src;
  const int64_t* idx;
  T* out;
  int64_t src_dim, idx_dim, inner;
  __device__ void operator()(int64_t p) const {
    const int64_t s = elem::gather_offset(idx, src_dim, idx_dim, inner, p);
    out[p] = s >= 0 ? src[s] : T(0);
  }
};

// dst[o, idx[o, j, k], k] += src[o, j, k]
template <class T>
struct ScatterAddF {
  const T* src;
  const int64_t* idx;
  T* dst;
  int64_t dst_dim, idx_dim, inner;
  __device__ void operator()(int64_t p) const {
    const int64_t d = elem::gather_offset(idx, dst_dim, idx_dim, inner, p);
    if (d >= 0) atomicAdd(dst + d, src[p]);
  }
};

void check_sizes(const char* op, int64_t a, int64_t b, int64_t c, int64_t d) {
  MMGRAD_CHECK(a >= 0 && b >= 0 && c >= 0 && d >= 0, op, ": negative size (", a, ", ", b, ", ", c,
               ", ", d, ")");
}

}  // namespace

void CudaBackend::index_select(DType dtype, const void* src, const int64_t* idx, void* out,
                               int64_t outer, int64_t src_dim, int64_t inner, int64_t n_idx) {
  check_sizes("index_select", outer, src_dim, inner, n_idx);
  dispatch_all(dtype, [&](auto t) {
    using T = decltype(t);
    launch_index("index_select", outer * n_idx * inner,
                 IndexSelectF<T>{static_cast<const T*>(src), idx, static_cast<T*>(out), src_dim,
                                 inner, n_idx});
  });
}

void CudaBackend::index_add(DType dtype, const void* src, const int64_t* idx, void* dst,
                            int64_t outer, int64_t dst_dim, int64_t inner, int64_t n_idx) {
  check_sizes("index_add", outer, dst_dim, inner, n_idx);
  dispatch_floating(dtype, "index_add", [&](auto t) {
    using T = decltype(t);
    launch_index(
        "index_add", outer * n_idx * inner,
        IndexAddF<T>{static_cast<const T*>(src), idx, static_cast<T*>(dst), dst_dim, inner, n_idx});
  });
}

void CudaBackend::gather(DType dtype, const void* src, const int64_t* idx, void* out, int64_t outer,
                         int64_t src_dim, int64_t idx_dim, int64_t inner) {
  check_sizes("gather", outer, src_dim, idx_dim, inner);
  dispatch_all(dtype, [&](auto t) {
    using T = decltype(t);
    launch_index(
        "gather", outer * idx_dim * inner,
        GatherF<T>{static_cast<const T*>(src), idx, static_cast<T*>(out), src_dim, idx_dim, inner});
  });
}

void CudaBackend::scatter_add(DType dtype, const void* src, const int64_t* idx, void* dst,
                              int64_t outer, int64_t dst_dim, int64_t idx_dim, int64_t inner) {
  check_sizes("scatter_add", outer, dst_dim, idx_dim, inner);
  dispatch_floating(dtype, "scatter_add", [&](auto t) {
    using T = decltype(t);
    launch_index("scatter_add", outer * idx_dim * inner,
                 ScatterAddF<T>{static_cast<const T*>(src), idx, static_cast<T*>(dst), dst_dim,
                                idx_dim, inner});
  });
}

}  // namespace mmgrad::cuda
