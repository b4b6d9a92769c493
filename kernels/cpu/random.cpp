// Random fills from the counter-based Philox generator (core/philox.h).
#include "mmgrad/core/philox.h"
#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/kernels/cpu/parallel.h"

namespace mmgrad::cpu {

void CpuBackend::random(RandomDist dist, const Strided& out, uint64_t seed, uint64_t offset,
                        double a, double b) {
  MMGRAD_CHECK(out.is_contiguous(), "random: output must be contiguous");
  dispatch_floating(out.dtype, "random", [&](auto t) {
    using T = decltype(t);
    T* o = out.ptr<T>();
    parallel_for(out.numel(), 4096, [&](int64_t s, int64_t e) {
      // The same per-element formulas as the CUDA backend (core/philox.h).
      if (dist == RandomDist::Uniform) {
        for (int64_t i = s; i < e; ++i) o[i] = philox::uniform_sample<T>(offset + i, seed, a, b);
      } else {
        for (int64_t i = s; i < e; ++i) o[i] = philox::normal_sample<T>(offset + i, seed, a, b);
      }
    });
  });
}

}  // namespace mmgrad::cpu
