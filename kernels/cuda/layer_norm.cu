// Layer normalisation over the last D elements of each of N rows.
//
// Forward:  mu = mean(x), rstd = 1 / sqrt(var(x) + eps) (biased variance, two passes),
//           xhat = (x - mu) * rstd,  y = xhat * w + b.
// Backward: with dxhat = dy * w,
//           dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),
//           dw = sum_rows(dy * xhat),  db = sum_rows(dy).
// Row statistics: one block per row, sums in double (as on the CPU). The parameter gradients
// are column sums over N rows; with D often small (64..1024) one thread per column would leave
// the GPU idle, so they run in two deterministic passes: chunks of rows write partial column sums
// (double) to a scratch buffer, then one thread per column adds the chunks in order.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "mmgrad/kernels/cuda/cuda_common.cuh"

namespace mmgrad::cuda {
namespace {

template <class T>
__global__ void layer_norm_forward_kernel(const T* x, const T* w, const T* b, T* y, T* mean,
                                          T* rstd, int64_t N, int64_t D, double eps) {
  for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
    const T* xr = x + row * D;
    T* yr = y + row * D;
    double sum = 0;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) sum += xr[i];
    const double mu = block_reduce(sum, Plus{}) / static_cast<double>(D);
    double sq = 0;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
      const double d = xr[i] - mu;
      sq += d * d;
    }
    const double r = elem::layer_norm_rstd(block_reduce(sq, Plus{}), D, eps);
    if (threadIdx.x == 0) {
      mean[row] = static_cast<T>(mu);
      rstd[row] = static_cast<T>(r);
    }
    const T m = static_cast<T>(mu), rs = static_cast<T>(r);
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x)
      yr[i] = elem::layer_norm_out(xr[i], m, rs, w, b, i);
  }
}

template <class T>
__global__ void layer_norm_backward_kernel(const T* gy, const T* x, const T* mean, const T* rstd,
                                           const T* w, T* gx, int64_t N, int64_t D) {
  for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
    const T* xr = x + row * D;
    const T* gr = gy + row * D;
    T* gxr = gx + row * D;
    const T m = mean[row], rs = rstd[row];
    double a = 0, bsum = 0;  // sum(dxhat), sum(dxhat * xhat)
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
      const T dxh = elem::layer_norm_dxhat(gr, w, i);
      a += dxh;
      bsum += elem::layer_norm_times_xhat(dxh, xr[i], m, rs);
    }
    const T ma = static_cast<T>(block_reduce(a, Plus{}) / static_cast<double>(D));
    const T mb = static_cast<T>(block_reduce(bsum, Plus{}) / static_cast<double>(D));
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x)
      gxr[i] = elem::layer_norm_grad_in(elem::layer_norm_dxhat(gr, w, i), xr[i], m, rs, ma, mb);
  }
}

template <class T>
struct ParamGradPartialF {
  const T *gy, *x, *mean, *rstd;
  double *pw, *pb;
  int64_t N, D, rows_per_chunk;
  __device__ void operator()(int64_t t) const {
    elem::layer_norm_param_partial(gy, x, mean, rstd, N, D, rows_per_chunk, t, pw, pb);
  }
};

template <class T>
struct ParamGradFinalF {
  const double *pw, *pb;
  T *gw, *gb;
  int64_t chunks, D;
  __device__ void operator()(int64_t c) const {
    elem::layer_norm_param_final(pw, pb, chunks, D, c, gw, gb);
  }
};

unsigned row_blocks(int64_t rows) {
  const int64_t cap = static_cast<int64_t>(sm_count()) * 32;
  return static_cast<unsigned>(rows < cap ? rows : cap);
}

}  // namespace

void CudaBackend::layer_norm_forward(const LayerNormArgs& a) {
  const int64_t N = a.N, D = a.D;
  MMGRAD_CHECK(N >= 0 && D >= 1, "layer_norm: need N >= 0 rows of D >= 1 elements, got N ", N,
               ", D ", D);
  if (N == 0) return;
  dispatch_floating(a.dtype, "layer_norm", [&](auto t) {
    using T = decltype(t);
    layer_norm_forward_kernel<T><<<row_blocks(N), threads_for_row(D)>>>(
        static_cast<const T*>(a.x), static_cast<const T*>(a.w), static_cast<const T*>(a.b),
        static_cast<T*>(a.y), static_cast<T*>(a.mean), static_cast<T*>(a.rstd), N, D, a.eps);
    check_launch("layer_norm");
  });
}

void CudaBackend::layer_norm_backward(const LayerNormBackwardArgs& a) {
  const int64_t N = a.N, D = a.D;
  MMGRAD_CHECK(N >= 0 && D >= 1, "layer_norm_backward: need N >= 0 rows of D >= 1 elements, got N ",
               N, ", D ", D);
  dispatch_floating(a.dtype, "layer_norm_backward", [&](auto t) {
    using T = decltype(t);
    const T* gy = static_cast<const T*>(a.gy);
    const T* x = static_cast<const T*>(a.x);
    const T* mean = static_cast<const T*>(a.mean);
    const T* rstd = static_cast<const T*>(a.rstd);
    if (N > 0) {
      layer_norm_backward_kernel<T><<<row_blocks(N), threads_for_row(D)>>>(
          gy, x, mean, rstd, static_cast<const T*>(a.w), static_cast<T*>(a.gx), N, D);
      check_launch("layer_norm_backward");
    }
    if (!a.gw && !a.gb) return;
    const elem::RowChunks rc = elem::layer_norm_row_chunks(N, D, sm_count());
    const size_t partial_bytes = static_cast<size_t>(std::max<int64_t>(rc.chunks * D, 1)) * 8;
    DeviceBuffer pw(*this, partial_bytes), pb(*this, partial_bytes);
    launch_index("layer_norm_backward", rc.chunks * D,
                 ParamGradPartialF<T>{gy, x, mean, rstd, pw.as<double>(), pb.as<double>(), N, D,
                                      rc.rows_per_chunk});
    launch_index("layer_norm_backward", D,
                 ParamGradFinalF<T>{pw.as<double>(), pb.as<double>(), static_cast<T*>(a.gw),
                                    static_cast<T*>(a.gb), rc.chunks, D});
  });
}

}  // namespace mmgrad::cuda
