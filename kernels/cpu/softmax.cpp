// Softmax, log-softmax and the fused softmax cross-entropy.
//
// Stability: softmax(x) = exp(x - m) / sum(exp(x - m)) with m = max(x), so no exp overflows;
// log_softmax(x) = x - m - log(sum(exp(x - m))). Rows are laid out as [outer, dim, inner]: the
// softmax runs along `dim` with stride `inner`.
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/parallel.h"

namespace mmgrad::cpu {

void CpuBackend::softmax_forward(DType dtype, const void* xv, void* yv, int64_t outer,
                                 int64_t dim, int64_t inner, bool log) {
  dispatch_floating(dtype, "softmax", [&](auto t) {
    using T = decltype(t);
    const T* x = static_cast<const T*>(xv);
    T* y = static_cast<T*>(yv);
    parallel_for(outer * inner, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(dim, 1)),
                 [&](int64_t b, int64_t e) {
                   for (int64_t r = b; r < e; ++r) {
                     int64_t o = r / inner, k = r % inner;
                     const T* xr = x + o * dim * inner + k;
                     T* yr = y + o * dim * inner + k;
                     T m = xr[0];
                     for (int64_t i = 1; i < dim; ++i) m = std::max(m, xr[i * inner]);
                     if (std::isinf(m) && m < 0) m = 0;  // a row of -inf: avoid inf - inf
                     double s = 0;
                     for (int64_t i = 0; i < dim; ++i) {
                       T ev = std::exp(xr[i * inner] - m);
                       s += ev;
                       if (!log) yr[i * inner] = ev;
                     }
                     if (log) {
                       // (x - m) - log(s), not x - (m + log(s)): for large |m| the sum m + log(s)
                       // would round to m's precision (float32: ~1e-4 at |m| = 1000).
                       T ls = static_cast<T>(std::log(s));
                       for (int64_t i = 0; i < dim; ++i) yr[i * inner] = (xr[i * inner] - m) - ls;
                     } else {
                       T inv = static_cast<T>(1.0 / s);
                       for (int64_t i = 0; i < dim; ++i) yr[i * inner] *= inv;
                     }
                   }
                 });
  });
}

void CpuBackend::softmax_backward(DType dtype, const void* yv, const void* gyv, void* gxv,
                                  int64_t outer, int64_t dim, int64_t inner, bool log) {
  dispatch_floating(dtype, "softmax_backward", [&](auto t) {
    using T = decltype(t);
    const T* y = static_cast<const T*>(yv);
    const T* gy = static_cast<const T*>(gyv);
    T* gx = static_cast<T*>(gxv);
    parallel_for(outer * inner, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(dim, 1)),
                 [&](int64_t b, int64_t e) {
                   for (int64_t r = b; r < e; ++r) {
                     int64_t base = (r / inner) * dim * inner + r % inner;
                     double s = 0;
                     if (log) {
                       for (int64_t i = 0; i < dim; ++i) s += gy[base + i * inner];
                       for (int64_t i = 0; i < dim; ++i) {
                         int64_t p = base + i * inner;
                         gx[p] = gy[p] - std::exp(y[p]) * static_cast<T>(s);
                       }
                     } else {
                       for (int64_t i = 0; i < dim; ++i) s += gy[base + i * inner] * y[base + i * inner];
                       for (int64_t i = 0; i < dim; ++i) {
                         int64_t p = base + i * inner;
                         gx[p] = y[p] * (gy[p] - static_cast<T>(s));
                       }
                     }
                   }
                 });
  });
}

// Cross-entropy with label smoothing eps over C classes, target distribution
//   q = (1 - eps) * one_hot(target) + eps / C,
// loss = -sum_c q_c log p_c = lse - sum_c q_c x_c   (since sum_c q_c = 1),
// and d loss / d x_c = p_c - q_c.
void CpuBackend::cross_entropy_forward(DType dtype, const void* logits, const int64_t* target,
                                       void* lossv, void* lsev, int64_t N, int64_t C,
                                       int64_t ignore_index, double eps) {
  dispatch_floating(dtype, "cross_entropy", [&](auto t) {
    using T = decltype(t);
    const T* x = static_cast<const T*>(logits);
    T* loss = static_cast<T*>(lossv);
    T* lse_out = static_cast<T*>(lsev);
    parallel_for(N, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(C, 1)), [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n) {
        const T* xr = x + n * C;
        T m = xr[0];
        for (int64_t c = 1; c < C; ++c) m = std::max(m, xr[c]);
        double s = 0, xsum = 0;
        for (int64_t c = 0; c < C; ++c) {
          s += std::exp(static_cast<double>(xr[c] - m));
          xsum += xr[c];
        }
        double lse = static_cast<double>(m) + std::log(s);
        lse_out[n] = static_cast<T>(lse);
        if (target[n] == ignore_index) {
          loss[n] = 0;
          continue;
        }
        double qx = (1.0 - eps) * static_cast<double>(xr[target[n]]) + eps / static_cast<double>(C) * xsum;
        loss[n] = static_cast<T>(lse - qx);
      }
    });
  });
}

void CpuBackend::cross_entropy_backward(DType dtype, const void* logits, const int64_t* target,
                                        const void* lsev, const void* grad_loss, void* gxv,
                                        int64_t N, int64_t C, int64_t ignore_index, double eps) {
  dispatch_floating(dtype, "cross_entropy_backward", [&](auto t) {
    using T = decltype(t);
    const T* x = static_cast<const T*>(logits);
    const T* lse = static_cast<const T*>(lsev);
    const T* g = static_cast<const T*>(grad_loss);
    T* gx = static_cast<T*>(gxv);
    const T off = static_cast<T>(eps / static_cast<double>(C));
    parallel_for(N, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(C, 1)), [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n) {
        T* gr = gx + n * C;
        if (target[n] == ignore_index) {
          for (int64_t c = 0; c < C; ++c) gr[c] = 0;
          continue;
        }
        const T* xr = x + n * C;
        for (int64_t c = 0; c < C; ++c) gr[c] = g[n] * (std::exp(xr[c] - lse[n]) - off);
        gr[target[n]] -= g[n] * static_cast<T>(1.0 - eps);
      }
    });
  });
}

}  // namespace mmgrad::cpu
