// Random fills from the counter-based Philox generator (core/philox.h): element i uses counter
// offset + i and the same per-element formula as the CPU, so a seed gives the same tensor on
// both devices. Uniform samples are bit-identical (integer mixing and one fused multiply-add);
// normal samples go through log and cos, whose CUDA and glibc versions may differ in the last
// bit (relative difference ~1e-16 in float64, almost never visible in float32).
#include <cuda_runtime.h>

#include "mmgrad/core/philox.h"
#include "mmgrad/kernels/cuda/cuda_common.cuh"

namespace mmgrad::cuda {
namespace {

template <class T>
struct RandomF {
  T* o;
  uint64_t seed, offset;
  double a, b;
  bool normal;
  __device__ void operator()(int64_t i) const {
    const uint64_t counter = offset + static_cast<uint64_t>(i);
    o[i] = normal ? philox::normal_sample<T>(counter, seed, a, b)
                  : philox::uniform_sample<T>(counter, seed, a, b);
  }
};

}  // namespace

void CudaBackend::random(RandomDist dist, const Strided& out, uint64_t seed, uint64_t offset,
                         double a, double b) {
  MMGRAD_CHECK(out.is_contiguous(), "random: output must be contiguous");
  dispatch_floating(out.dtype, "random", [&](auto t) {
    using T = decltype(t);
    launch_index("random", out.numel(),
                 RandomF<T>{out.ptr<T>(), seed, offset, a, b, dist == RandomDist::Normal});
  });
}

}  // namespace mmgrad::cuda
