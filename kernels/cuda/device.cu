// CUDA device discovery, backend start-up and the error checks every CUDA call goes through.
#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "mmgrad/kernels/cuda/cuda_common.cuh"

namespace mmgrad {
namespace cuda {
namespace {

int g_sm_count = 1;
std::string g_description = "(no CUDA device in use)";

bool sync_after_launch() {
  static const bool on = [] {
    const char* env = std::getenv("MMGRAD_CUDA_SYNC");
    return env && std::strcmp(env, "0") != 0;
  }();
  return on;
}

// Does nothing; launching it proves this build has machine code (or PTX) for the device.
__global__ void probe_kernel(int* out) {
  if (out) *out = 1;
}

}  // namespace

void check_cuda(cudaError_t e, const char* op) {
  if (e == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so that it is not blamed on the next launch
  fail(cat_str(op, ": CUDA error ", cudaGetErrorName(e), ": ", cudaGetErrorString(e)));
}

void check_launch(const char* op) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    fail(cat_str(op, ": CUDA kernel launch failed: ", cudaGetErrorName(e), ": ",
                 cudaGetErrorString(e)));
  if (sync_after_launch()) {
    e = cudaDeviceSynchronize();
    if (e != cudaSuccess)
      fail(cat_str(op, ": CUDA kernel failed: ", cudaGetErrorName(e), ": ", cudaGetErrorString(e)));
  }
}

int sm_count() { return g_sm_count; }

const char* device_description() { return g_description.c_str(); }

namespace {

// Selects device 0, records its properties and checks that our kernels can run on it.
void start_device() {
  check_cuda(cudaSetDevice(0), "device cuda: cudaSetDevice(0)");
  cudaDeviceProp prop;
  check_cuda(cudaGetDeviceProperties(&prop, 0), "device cuda: cudaGetDeviceProperties");
  g_sm_count = prop.multiProcessorCount > 0 ? prop.multiProcessorCount : 1;
  g_description =
      cat_str(prop.name, " (sm_", prop.major, prop.minor, ", ", prop.totalGlobalMem >> 20, " MiB)");
  probe_kernel<<<1, 1>>>(nullptr);
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) e = cudaDeviceSynchronize();
  if (e != cudaSuccess) {
    cudaGetLastError();
    fail(cat_str("device cuda: cannot run kernels on ", g_description, ": ", cudaGetErrorName(e),
                 ": ", cudaGetErrorString(e),
                 " (this build targets CMAKE_CUDA_ARCHITECTURES; add this GPU's architecture)"));
  }
}

}  // namespace
}  // namespace cuda

namespace {

// Whether a GPU is present, and if not, why (asked once).
struct Presence {
  bool ok = false;
  std::string why;
};

const Presence& presence() {
  static const Presence p = [] {
    Presence r;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      cudaGetLastError();
      r.why = cat_str("cudaGetDeviceCount: ", cudaGetErrorString(e));
    } else if (n <= 0) {
      r.why = "cudaGetDeviceCount: found 0 devices";
    } else {
      r.ok = true;
    }
    return r;
  }();
  return p;
}

}  // namespace

bool cuda_device_present() { return presence().ok; }

Backend& cuda_backend() {
  // Started once; if start-up throws, the next call tries again (and throws again).
  static cuda::CudaBackend* be = [] {
    MMGRAD_CHECK(presence().ok, "device cuda: no CUDA GPU is available on this machine (",
                 presence().why, ")");
    cuda::start_device();
    return new cuda::CudaBackend();  // never destroyed: tensors may outlive static destruction
  }();
  return *be;
}

}  // namespace mmgrad
