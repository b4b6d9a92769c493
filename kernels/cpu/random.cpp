// Random fills from the counter-based Philox generator (kernels/philox.h).
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/parallel.h"
#include "kernels/philox.h"

namespace mmgrad::cpu {

void CpuBackend::random(RandomDist dist, const Strided& out, uint64_t seed, uint64_t offset,
                        double a, double b) {
  MMGRAD_CHECK(out.is_contiguous(), "random: output must be contiguous");
  dispatch_floating(out.dtype, "random", [&](auto t) {
    using T = decltype(t);
    T* o = out.ptr<T>();
    parallel_for(out.numel(), 4096, [&](int64_t s, int64_t e) {
      if (dist == RandomDist::Uniform) {
        for (int64_t i = s; i < e; ++i) {
          T v = static_cast<T>(a + (b - a) * philox::uniform(offset + i, seed));
          // rounding to float32 can land exactly on b; keep the interval half-open
          o[i] = v < static_cast<T>(b) ? v : static_cast<T>(a);
        }
      } else {
        for (int64_t i = s; i < e; ++i) o[i] = static_cast<T>(a + b * philox::normal(offset + i, seed));
      }
    });
  });
}

}  // namespace mmgrad::cpu
