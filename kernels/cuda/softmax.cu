// Softmax, log-softmax and the fused softmax cross-entropy.
//
// Stability as on the CPU: softmax(x) = exp(x - m) / sum(exp(x - m)) with m = max(x);
// log_softmax(x) = (x - m) - log(sum(exp(x - m))). Sums accumulate in double.
// Rows are [outer, dim, inner] with the softmax along dim:
//   - inner == 1 (the usual last-dim softmax): one block per row, block reductions for the max
//     and the sum, every pass reading along the row (coalesced);
//   - inner > 1: one thread per (outer, inner) column, looping along dim exactly like the CPU;
//     adjacent threads read adjacent columns, so reads coalesce too.
#include <cuda_runtime.h>

#include <cmath>
#include <limits>

#include "mmgrad/kernels/cuda/cuda_common.cuh"

namespace mmgrad::cuda {
namespace {

template <class T>
__global__ void softmax_rows_kernel(const T* x, T* y, int64_t rows, int64_t dim, bool log) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * dim;
    T* yr = y + row * dim;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) m = Max{}(m, xr[i]);
    m = elem::softmax_shift(block_reduce(m, Max{}));
    double s = 0;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) s += exp(xr[i] - m);
    s = block_reduce(s, Plus{});
    if (log) {
      const T ls = static_cast<T>(::log(s));
      for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = (xr[i] - m) - ls;
    } else {
      const T inv = static_cast<T>(1.0 / s);
      for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = exp(xr[i] - m) * inv;
    }
  }
}

// One thread per (outer, inner) column: the CPU's row loop, elem::softmax_row.
template <class T>
__global__ void softmax_cols_kernel(const T* x, T* y, int64_t outer, int64_t dim, int64_t inner,
                                    bool log) {
  MMGRAD_KERNEL_LOOP(r, outer * inner) {
    const int64_t base = (r / inner) * dim * inner + r % inner;
    elem::softmax_row(x + base, y + base, dim, inner, log);
  }
}

// softmax:     gx = y * (gy - sum(gy * y))
// log_softmax: gx = gy - exp(y) * sum(gy)
template <class T>
__global__ void softmax_backward_rows_kernel(const T* y, const T* gy, T* gx, int64_t rows,
                                             int64_t dim, bool log) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t base = row * dim;
    double s = 0;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
      s += log ? gy[base + i] : static_cast<T>(gy[base + i] * y[base + i]);
    const T st = static_cast<T>(block_reduce(s, Plus{}));
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
      const int64_t p = base + i;
      gx[p] = log ? gy[p] - exp(y[p]) * st : y[p] * (gy[p] - st);
    }
  }
}

template <class T>
__global__ void softmax_backward_cols_kernel(const T* y, const T* gy, T* gx, int64_t outer,
                                             int64_t dim, int64_t inner, bool log) {
  MMGRAD_KERNEL_LOOP(r, outer * inner) {
    const int64_t base = (r / inner) * dim * inner + r % inner;
    elem::softmax_backward_row(y + base, gy + base, gx + base, dim, inner, log);
  }
}

// Cross-entropy with label smoothing eps over C classes, q = (1 - eps) one_hot + eps / C:
//   loss = -sum_c q_c log p_c = lse - sum_c q_c x_c    (sum_c q_c = 1)
// One block per row n.
template <class T>
__global__ void cross_entropy_kernel(const T* x, const int64_t* target, T* loss, T* lse_out,
                                     int64_t N, int64_t C, int64_t ignore_index, double eps) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const T* xr = x + n * C;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) m = Max{}(m, xr[c]);
    m = block_reduce(m, Max{});
    double s = 0, xsum = 0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      s += ::exp(static_cast<double>(xr[c] - m));
      xsum += xr[c];
    }
    s = block_reduce(s, Plus{});
    xsum = block_reduce(xsum, Plus{});
    if (threadIdx.x == 0) {
      const double lse = static_cast<double>(m) + ::log(s);
      lse_out[n] = static_cast<T>(lse);
      const int64_t t = target[n];
      if (t == ignore_index) {
        loss[n] = T(0);
      } else if (t < 0 || t >= C) {
        loss[n] = std::numeric_limits<T>::quiet_NaN();  // the op validates targets first
      } else {
        loss[n] =
            static_cast<T>(elem::cross_entropy_loss(lse, static_cast<double>(xr[t]), xsum, eps, C));
      }
    }
  }
}

template <class T>
struct CrossEntropyGradF {
  const T* x;
  const int64_t* target;
  const T* lse;
  const T* g;
  T* gx;
  int64_t C, ignore_index;
  T off, keep;
  __device__ void operator()(int64_t i) const {
    gx[i] = elem::cross_entropy_grad_value(x, target, lse, g, C, ignore_index, off, keep, i);
  }
};

void check_rows(const char* op, int64_t outer, int64_t dim, int64_t inner) {
  MMGRAD_CHECK(outer >= 0 && dim >= 0 && inner >= 0, op, ": negative size (outer ", outer, ", dim ",
               dim, ", inner ", inner, ")");
}

// Blocks for one block per row.
unsigned row_blocks(int64_t rows) {
  const int64_t cap = static_cast<int64_t>(sm_count()) * 32;
  return static_cast<unsigned>(rows < cap ? rows : cap);
}

}  // namespace

void CudaBackend::softmax_forward(const SoftmaxArgs& a) {
  const int64_t outer = a.outer, dim = a.dim, inner = a.inner;
  check_rows("softmax", outer, dim, inner);
  if (outer == 0 || dim == 0 || inner == 0) return;
  dispatch_floating(a.dtype, "softmax", [&](auto t) {
    using T = decltype(t);
    const T* x = static_cast<const T*>(a.x);
    T* y = static_cast<T*>(a.y);
    if (inner == 1)
      softmax_rows_kernel<T><<<row_blocks(outer), threads_for_row(dim)>>>(x, y, outer, dim, a.log);
    else
      softmax_cols_kernel<T><<<grid_for(outer * inner), kThreads>>>(x, y, outer, dim, inner, a.log);
    check_launch("softmax");
  });
}

void CudaBackend::softmax_backward(const SoftmaxBackwardArgs& a) {
  const int64_t outer = a.outer, dim = a.dim, inner = a.inner;
  check_rows("softmax_backward", outer, dim, inner);
  if (outer == 0 || dim == 0 || inner == 0) return;
  dispatch_floating(a.dtype, "softmax_backward", [&](auto t) {
    using T = decltype(t);
    const T* y = static_cast<const T*>(a.y);
    const T* gy = static_cast<const T*>(a.gy);
    T* gx = static_cast<T*>(a.gx);
    if (inner == 1)
      softmax_backward_rows_kernel<T>
          <<<row_blocks(outer), threads_for_row(dim)>>>(y, gy, gx, outer, dim, a.log);
    else
      softmax_backward_cols_kernel<T>
          <<<grid_for(outer * inner), kThreads>>>(y, gy, gx, outer, dim, inner, a.log);
    check_launch("softmax_backward");
  });
}

void CudaBackend::cross_entropy_forward(const CrossEntropyArgs& a) {
  const int64_t N = a.N, C = a.C;
  MMGRAD_CHECK(N >= 0 && C >= 1, "cross_entropy: need N >= 0 rows and C >= 1 classes, got N ", N,
               ", C ", C);
  if (N == 0) return;
  dispatch_floating(a.dtype, "cross_entropy", [&](auto t) {
    using T = decltype(t);
    cross_entropy_kernel<T><<<row_blocks(N), threads_for_row(C)>>>(
        static_cast<const T*>(a.logits), a.target, static_cast<T*>(a.loss), static_cast<T*>(a.lse),
        N, C, a.ignore_index, a.label_smoothing);
    check_launch("cross_entropy");
  });
}

void CudaBackend::cross_entropy_backward(const CrossEntropyBackwardArgs& a) {
  const int64_t N = a.N, C = a.C;
  MMGRAD_CHECK(N >= 0 && C >= 1,
               "cross_entropy_backward: need N >= 0 rows and C >= 1 classes, got N ", N, ", C ", C);
  const double eps = a.label_smoothing;
  dispatch_floating(a.dtype, "cross_entropy_backward", [&](auto t) {
    using T = decltype(t);
    launch_index("cross_entropy_backward", N * C,
                 CrossEntropyGradF<T>{
                     static_cast<const T*>(a.logits), a.target, static_cast<const T*>(a.lse),
                     static_cast<const T*>(a.grad_loss), static_cast<T*>(a.gx), C, a.ignore_index,
                     static_cast<T>(eps / static_cast<double>(C)), static_cast<T>(1.0 - eps)});
  });
}

}  // namespace mmgrad::cuda
