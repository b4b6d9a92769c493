// Layer normalisation over the last D elements of each row.
//
// Forward:  mu = mean(x), rstd = 1 / sqrt(var(x) + eps) (biased variance),
//           xhat = (x - mu) * rstd,  y = xhat * w + b.
// Backward: with dxhat = dy * w,
//           dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),
//           dw = sum_rows(dy * xhat),  db = sum_rows(dy).
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/parallel.h"

namespace mmgrad::cpu {

void CpuBackend::layer_norm_forward(DType dtype, const void* xv, const void* wv, const void* bv,
                                    void* yv, void* meanv, void* rstdv, int64_t N, int64_t D,
                                    double eps) {
  dispatch_floating(dtype, "layer_norm", [&](auto t) {
    using T = decltype(t);
    const T* x = static_cast<const T*>(xv);
    const T* w = static_cast<const T*>(wv);
    const T* b = static_cast<const T*>(bv);
    T* y = static_cast<T*>(yv);
    T* mean = static_cast<T*>(meanv);
    T* rstd = static_cast<T*>(rstdv);
    parallel_for(N, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(D, 1)), [&](int64_t s, int64_t e) {
      for (int64_t n = s; n < e; ++n) {
        const T* xr = x + n * D;
        double sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < D; ++i) sum += xr[i];
        double mu = sum / static_cast<double>(D);
        double sq = 0;  // two passes: the centred sum of squares does not cancel catastrophically
#pragma omp simd reduction(+ : sq)
        for (int64_t i = 0; i < D; ++i) {
          double d = xr[i] - mu;
          sq += d * d;
        }
        double r = 1.0 / std::sqrt(sq / static_cast<double>(D) + eps);
        mean[n] = static_cast<T>(mu);
        rstd[n] = static_cast<T>(r);
        T* yr = y + n * D;
        const T m = static_cast<T>(mu), rs = static_cast<T>(r);
        for (int64_t i = 0; i < D; ++i) {
          T v = (xr[i] - m) * rs;
          if (w) v *= w[i];
          if (b) v += b[i];
          yr[i] = v;
        }
      }
    });
  });
}

void CpuBackend::layer_norm_backward(DType dtype, const void* gyv, const void* xv,
                                     const void* meanv, const void* rstdv, const void* wv,
                                     void* gxv, void* gwv, void* gbv, int64_t N, int64_t D) {
  dispatch_floating(dtype, "layer_norm_backward", [&](auto t) {
    using T = decltype(t);
    const T* gy = static_cast<const T*>(gyv);
    const T* x = static_cast<const T*>(xv);
    const T* mean = static_cast<const T*>(meanv);
    const T* rstd = static_cast<const T*>(rstdv);
    const T* w = static_cast<const T*>(wv);
    T* gx = static_cast<T*>(gxv);
    parallel_for(N, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(D, 1)), [&](int64_t s, int64_t e) {
      for (int64_t n = s; n < e; ++n) {
        const T* xr = x + n * D;
        const T* gr = gy + n * D;
        const T m = mean[n], rs = rstd[n];
        double a = 0, bsum = 0;  // mean(dxhat), mean(dxhat * xhat)
        for (int64_t i = 0; i < D; ++i) {
          T dxh = w ? gr[i] * w[i] : gr[i];
          a += dxh;
          bsum += dxh * (xr[i] - m) * rs;
        }
        const T ma = static_cast<T>(a / static_cast<double>(D));
        const T mb = static_cast<T>(bsum / static_cast<double>(D));
        T* gxr = gx + n * D;
        for (int64_t i = 0; i < D; ++i) {
          T dxh = w ? gr[i] * w[i] : gr[i];
          T xh = (xr[i] - m) * rs;
          gxr[i] = rs * (dxh - ma - xh * mb);
        }
      }
    });
    if (!gwv && !gbv) return;
    // Column sums over the rows; each thread owns a block of columns.
    T* gw = static_cast<T*>(gwv);
    T* gb = static_cast<T*>(gbv);
    parallel_for(D, 256, [&](int64_t cb, int64_t ce) {
      std::vector<double> sw(static_cast<size_t>(ce - cb), 0.0), sb(static_cast<size_t>(ce - cb), 0.0);
      for (int64_t n = 0; n < N; ++n) {
        const T* xr = x + n * D;
        const T* gr = gy + n * D;
        const T m = mean[n], rs = rstd[n];
        for (int64_t c = cb; c < ce; ++c) {
          sw[c - cb] += gr[c] * (xr[c] - m) * rs;
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
