// The fused Adam / AdamW update, one pass over parameter, gradient and both moments:
//   g' = g + wd * p                     (Adam: L2 penalty folded into the gradient)
//   m  = b1 m + (1 - b1) g'             v = b2 v + (1 - b2) g'^2
//   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
//   AdamW instead decays the weights directly: p -= lr * wd * p, before the step.
#include <cmath>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/parallel.h"

namespace mmgrad::cpu {

void CpuBackend::adam_step(DType dtype, void* param, const void* grad, void* exp_avg,
                           void* exp_avg_sq, int64_t n, double lr, double beta1, double beta2,
                           double eps, double weight_decay, int64_t step, bool decoupled) {
  dispatch_floating(dtype, "adam_step", [&](auto t) {
    using T = decltype(t);
    T* p = static_cast<T*>(param);
    const T* g = static_cast<const T*>(grad);
    T* m = static_cast<T*>(exp_avg);
    T* v = static_cast<T*>(exp_avg_sq);
    const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
    const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(step));
    const T b1 = static_cast<T>(beta1), b2 = static_cast<T>(beta2);
    const T step_size = static_cast<T>(lr / bc1), inv_sqrt_bc2 = static_cast<T>(1.0 / std::sqrt(bc2));
    const T wd = static_cast<T>(weight_decay), decay = static_cast<T>(1.0 - lr * weight_decay);
    const T e = static_cast<T>(eps);
    parallel_for(n, kElementwiseGrain, [&](int64_t s, int64_t end) {
#pragma omp simd
      for (int64_t i = s; i < end; ++i) {
        T gi = g[i];
        if (decoupled)
          p[i] *= decay;
        else
          gi += wd * p[i];
        m[i] = b1 * m[i] + (T(1) - b1) * gi;
        v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
        p[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + e);
      }
    });
  });
}

}  // namespace mmgrad::cpu
