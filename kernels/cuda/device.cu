// CUDA device discovery. (The CUDA backend's kernels live beside this file.)
#include <cuda_runtime.h>

#include "kernels/backend.h"

namespace mmgrad {

bool cuda_device_present() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

Backend& cuda_backend() {
  MMGRAD_CHECK(cuda_device_present(), "device cuda: no CUDA GPU is available on this machine");
  fail("device cuda: the CUDA backend is not part of this build yet");
}

}  // namespace mmgrad
