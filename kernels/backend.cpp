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

bool cuda_available() {
#ifdef MMGRAD_WITH_CUDA
  return cuda_device_present();
#else
  return false;
#endif
}

}  // namespace mmgrad
