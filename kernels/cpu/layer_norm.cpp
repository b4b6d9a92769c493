// Layer normalisation over the last D elements of each row.
//
// Forward:  mu = mean(x), rstd = 1 / sqrt(var(x) + eps) (biased variance),
//           xhat = (x - mu) * rstd,  y = xhat * w + b.
// Backward: with dxhat = dy * w,
//           dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),
//           dw = sum_rows(dy * xhat),  db = sum_rows(dy).
// The per-element pieces are elem::layer_norm_* (kernels/kernel_math.h, shared with CUDA).
#include <cmath>
#include <vector>

#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/kernels/cpu/parallel.h"
#include "mmgrad/kernels/kernel_math.h"

namespace mmgrad::cpu {

void CpuBackend::layer_norm_forward(const LayerNormArgs& a) {
  dispatch_floating(a.dtype, "layer_norm", [&](auto t) {
    using T = decltype(t);
    const T* x = static_cast<const T*>(a.x);
    const T* w = static_cast<const T*>(a.w);
    const T* b = static_cast<const T*>(a.b);
    T* y = static_cast<T*>(a.y);
    T* mean = static_cast<T*>(a.mean);
    T* rstd = static_cast<T*>(a.rstd);
    const int64_t D = a.D;
    parallel_for(
        a.N, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(D, 1)),
        [&](int64_t s, int64_t e) {
          for (int64_t n = s; n < e; ++n) {
            const T* xr = x + n * D;
            double sum = 0;
#pragma omp simd reduction(+ : sum)
            for (int64_t i = 0; i < D; ++i) sum += xr[i];
            double mu = sum / static_cast<double>(D);
            double sq =
                0;  // two passes: the centred sum of squares does not cancel catastrophically
#pragma omp simd reduction(+ : sq)
            for (int64_t i = 0; i < D; ++i) {
              double d = xr[i] - mu;
              sq += d * d;
            }
            double r = elem::layer_norm_rstd(sq, D, a.eps);
            mean[n] = static_cast<T>(mu);
            rstd[n] = static_cast<T>(r);
            T* yr = y + n * D;
            const T m = static_cast<T>(mu), rs = static_cast<T>(r);
            for (int64_t i = 0; i < D; ++i) yr[i] = elem::layer_norm_out(xr[i], m, rs, w, b, i);
          }
        });
  });
}

void CpuBackend::layer_norm_backward(const LayerNormBackwardArgs& a) {
  dispatch_floating(a.dtype, "layer_norm_backward", [&](auto t) {
    using T = decltype(t);
    const T* gy = static_cast<const T*>(a.gy);
    const T* x = static_cast<const T*>(a.x);
    const T* mean = static_cast<const T*>(a.mean);
    const T* rstd = static_cast<const T*>(a.rstd);
    const T* w = static_cast<const T*>(a.w);
    T* gx = static_cast<T*>(a.gx);
    const int64_t N = a.N, D = a.D;
    parallel_for(N, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(D, 1)),
                 [&](int64_t s, int64_t e) {
                   for (int64_t n = s; n < e; ++n) {
                     const T* xr = x + n * D;
                     const T* gr = gy + n * D;
                     const T m = mean[n], rs = rstd[n];
                     double sa = 0, sb = 0;  // sums of dxhat and dxhat * xhat
                     for (int64_t i = 0; i < D; ++i) {
                       const T dxh = elem::layer_norm_dxhat(gr, w, i);
                       sa += dxh;
                       sb += elem::layer_norm_times_xhat(dxh, xr[i], m, rs);
                     }
                     const T ma = static_cast<T>(sa / static_cast<double>(D));
                     const T mb = static_cast<T>(sb / static_cast<double>(D));
                     T* gxr = gx + n * D;
                     for (int64_t i = 0; i < D; ++i)
                       gxr[i] = elem::layer_norm_grad_in(elem::layer_norm_dxhat(gr, w, i), xr[i], m,
                                                         rs, ma, mb);
                   }
                 });
    if (!a.gw && !a.gb) return;
    // Column sums over the rows; each thread owns a block of columns.
    T* gw = static_cast<T*>(a.gw);
    T* gb = static_cast<T*>(a.gb);
    parallel_for(D, 256, [&](int64_t cb, int64_t ce) {
      std::vector<double> sw(static_cast<size_t>(ce - cb), 0.0),
          sb(static_cast<size_t>(ce - cb), 0.0);
      for (int64_t n = 0; n < N; ++n) {
        const T* xr = x + n * D;
        const T* gr = gy + n * D;
        const T m = mean[n], rs = rstd[n];
        for (int64_t c = cb; c < ce; ++c) {
          sw[c - cb] += elem::layer_norm_times_xhat(gr[c], xr[c], m, rs);
          sb[c - cb] += gr[c];
        }
      }
      for (int64_t c = cb; c < ce; ++c) {
        if (gw) gw[c] = static_cast<T>(sw[c - cb]);
        if (gb) gb[c] = static_cast<T>(sb[c - cb]);
      }
    });
  });
}

}  // namespace mmgrad::cpu
