// The fused Adam / AdamW update: one pass over parameter, gradient and both moments, with the
// per-element formula and the host-side scalars of element_ops.h (shared with the CPU tests).
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_common.cuh"

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

void CudaBackend::adam_step(DType dtype, void* param, const void* grad, void* exp_avg,
                            void* exp_avg_sq, int64_t n, double lr, double beta1, double beta2,
                            double eps, double weight_decay, int64_t step, bool decoupled) {
  MMGRAD_CHECK(step >= 1, "adam_step: step is 1-based, got ", step);
  dispatch_floating(dtype, "adam_step", [&](auto t) {
    using T = decltype(t);
    const elem::AdamCoeffs<T> c =
        elem::adam_coeffs<T>(lr, beta1, beta2, eps, weight_decay, step, decoupled);
    launch_index("adam_step", n,
                 AdamF<T>{c, static_cast<T*>(param), static_cast<const T*>(grad),
                          static_cast<T*>(exp_avg), static_cast<T*>(exp_avg_sq)});
  });
}

}  // namespace mmgrad::cuda
