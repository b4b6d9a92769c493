// The fused Adam / AdamW update: one pass over parameter, gradient and both moments, with the
// per-element formula of kernels/kernel_math.h (shared with the CPU backend).
#include <cuda_runtime.h>

#include "mmgrad/kernels/cuda/cuda_common.cuh"

namespace mmgrad::cuda {
namespace {

template <class T>
struct AdamF {
  elem::AdamCoeffs<T> c;
  T* p;
  const T* g;
  T* m;
  T* v;
  __device__ void operator()(int64_t i) const { elem::adam_update(c, p[i], g[i], m[i], v[i]); }
};

}  // namespace

void CudaBackend::adam_step(const AdamStepArgs& a) {
  MMGRAD_CHECK(a.step >= 1, "adam_step: step is 1-based, got ", a.step);
  dispatch_floating(a.dtype, "adam_step", [&](auto t) {
    using T = decltype(t);
    const elem::AdamCoeffs<T> c =
        elem::adam_coeffs<T>(a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, a.step, a.decoupled);
    launch_index("adam_step", a.n,
                 AdamF<T>{c, static_cast<T*>(a.param), static_cast<const T*>(a.grad),
                          static_cast<T*>(a.exp_avg), static_cast<T*>(a.exp_avg_sq)});
  });
}

}  // namespace mmgrad::cuda
