// backend(device): the one place where a device tag becomes a kernel implementation.
#include "mmgrad/kernels/backend.h"

#include "mmgrad/kernels/cpu/cpu_backend.h"

namespace mmgrad {

#ifdef MMGRAD_WITH_CUDA
// Defined in kernels/cuda/ (built when nvcc is found): throws a clear Error without a GPU.
Backend& cuda_backend();
bool cuda_device_present();
#endif

Backend& backend(Device d) {
  if (d == Device::CPU) {
    static cpu::CpuBackend cpu_backend;
    return cpu_backend;
  }
#ifdef MMGRAD_WITH_CUDA
  return cuda_backend();
#else
  fail("device cuda: mmgrad was built without CUDA (nvcc was not found or MMGRAD_CUDA=OFF)");
#endif
}

// The defaults of a backend without a fused dropout: ops/dropout.cpp asks has_fused_dropout first.
void Backend::dropout_forward(DType dtype, const void*, void*, uint8_t*, int64_t, uint64_t,
                              uint64_t, float, float) {
  fail(cat_str("dropout: this backend has no fused dropout for ", dtype_name(dtype)));
}
void Backend::dropout_backward(DType dtype, const void*, const uint8_t*, void*, int64_t, float) {
  fail(cat_str("dropout backward: this backend has no fused dropout for ", dtype_name(dtype)));
}

bool cuda_available() {
#ifdef MMGRAD_WITH_CUDA
  return cuda_device_present();
#else
  return false;
#endif
}

}  // namespace mmgrad
