// Softmax, log-softmax and the fused softmax cross-entropy.
//
// Stability: softmax(x) = exp(x - m) / sum(exp(x - m)) with m = max(x), so no exp overflows;
// log_softmax(x) = x - m - log(sum(exp(x - m))). Rows are laid out as [outer, dim, inner]: the
// softmax runs along `dim` with stride `inner`, one row at a time through elem::softmax_row
// (kernels/kernel_math.h, shared with CUDA).
#include <cmath>
#include <vector>

#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/kernels/cpu/parallel.h"
#include "mmgrad/kernels/kernel_math.h"

namespace mmgrad::cpu {

void CpuBackend::softmax_forward(const SoftmaxArgs& a) {
  dispatch_floating(a.dtype, "softmax", [&](auto t) {
    using T = decltype(t);
    const T* x = static_cast<const T*>(a.x);
    T* y = static_cast<T*>(a.y);
    const int64_t dim = a.dim, inner = a.inner;
    parallel_for(a.outer * inner,
                 std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(dim, 1)),
                 [&](int64_t b, int64_t e) {
                   for (int64_t r = b; r < e; ++r) {
                     const int64_t base = (r / inner) * dim * inner + r % inner;
                     elem::softmax_row(x + base, y + base, dim, inner, a.log);
                   }
                 });
  });
}

void CpuBackend::softmax_backward(const SoftmaxBackwardArgs& a) {
  dispatch_floating(a.dtype, "softmax_backward", [&](auto t) {
    using T = decltype(t);
    const T* y = static_cast<const T*>(a.y);
    const T* gy = static_cast<const T*>(a.gy);
    T* gx = static_cast<T*>(a.gx);
    const int64_t dim = a.dim, inner = a.inner;
    parallel_for(a.outer * inner,
                 std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(dim, 1)),
                 [&](int64_t b, int64_t e) {
                   for (int64_t r = b; r < e; ++r) {
                     const int64_t base = (r / inner) * dim * inner + r % inner;
                     elem::softmax_backward_row(y + base, gy + base, gx + base, dim, inner, a.log);
                   }
                 });
  });
}

// Cross-entropy with label smoothing eps over C classes, target distribution
//   q = (1 - eps) * one_hot(target) + eps / C,
// loss = -sum_c q_c log p_c = lse - sum_c q_c x_c   (since sum_c q_c = 1),
// and d loss / d x_c = p_c - q_c (elem::cross_entropy_loss / cross_entropy_grad).
void CpuBackend::cross_entropy_forward(const CrossEntropyArgs& a) {
  dispatch_floating(a.dtype, "cross_entropy", [&](auto t) {
    using T = decltype(t);
    const T* x = static_cast<const T*>(a.logits);
    const int64_t* target = a.target;
    T* loss = static_cast<T*>(a.loss);
    T* lse_out = static_cast<T*>(a.lse);
    const int64_t C = a.C;
    parallel_for(a.N, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(C, 1)),
                 [&](int64_t b, int64_t e) {
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
                     if (target[n] == a.ignore_index) {
                       loss[n] = 0;
                       continue;
                     }
                     loss[n] = static_cast<T>(elem::cross_entropy_loss(
                         lse, static_cast<double>(xr[target[n]]), xsum, a.label_smoothing, C));
                   }
                 });
  });
}

void CpuBackend::cross_entropy_backward(const CrossEntropyBackwardArgs& a) {
  dispatch_floating(a.dtype, "cross_entropy_backward", [&](auto t) {
    using T = decltype(t);
    const T* x = static_cast<const T*>(a.logits);
    const int64_t* target = a.target;
    const T* lse = static_cast<const T*>(a.lse);
    const T* g = static_cast<const T*>(a.grad_loss);
    T* gx = static_cast<T*>(a.gx);
    const int64_t C = a.C;
    const T off = static_cast<T>(a.label_smoothing / static_cast<double>(C));
    const T keep = static_cast<T>(1.0 - a.label_smoothing);
    parallel_for(a.N, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(C, 1)),
                 [&](int64_t b, int64_t e) {
                   for (int64_t n = b; n < e; ++n) {
                     T* gr = gx + n * C;
                     const int64_t tn = target[n];
                     if (tn == a.ignore_index) {
                       for (int64_t c = 0; c < C; ++c) gr[c] = 0;
                       continue;
                     }
                     const T* xr = x + n * C;
                     for (int64_t c = 0; c < C; ++c)
                       gr[c] = elem::cross_entropy_grad(xr[c], lse[n], g[n], off, keep, c == tn);
                   }
                 });
  });
}

}  // namespace mmgrad::cpu
