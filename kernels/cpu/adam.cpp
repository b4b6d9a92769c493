// The fused Adam / AdamW update, one pass over parameter, gradient and both moments:
//   g' = g + wd * p                     (Adam: L2 penalty folded into the gradient)
//   m  = b1 m + (1 - b1) g'             v = b2 v + (1 - b2) g'^2
//   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
//   AdamW instead decays the weights directly: p -= lr * wd * p, before the step.
// The scalars and the per-element update are elem::adam_coeffs / elem::adam_update
// (kernels/kernel_math.h, shared with CUDA).
#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/kernels/cpu/parallel.h"
#include "mmgrad/kernels/kernel_math.h"

namespace mmgrad::cpu {

void CpuBackend::adam_step(const AdamStepArgs& a) {
  dispatch_floating(a.dtype, "adam_step", [&](auto t) {
    using T = decltype(t);
    T* p = static_cast<T*>(a.param);
    const T* g = static_cast<const T*>(a.grad);
    T* m = static_cast<T*>(a.exp_avg);
    T* v = static_cast<T*>(a.exp_avg_sq);
    const elem::AdamCoeffs<T> coeffs =
        elem::adam_coeffs<T>(a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, a.step, a.decoupled);
    parallel_for(a.n, kElementwiseGrain, [&](int64_t s, int64_t end) {
      const elem::AdamCoeffs<T> c = coeffs;  // a local copy: the stores below cannot alias it
#pragma omp simd
      for (int64_t i = s; i < end; ++i) elem::adam_update(c, p[i], g[i], m[i], v[i]);
    });
  });
}

}  // namespace mmgrad::cpu
