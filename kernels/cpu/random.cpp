// Random fills from the counter-based Philox generator (core/philox.h).
//
// Uniform float32 and float64 fills run 16 counters at a time through the AVX-512 Philox
// (kernels/cpu/philox_avx512.h) where the CPU has it: the same integer words, the same exact
// conversion to [0, 1), the same fma and rounding, so the same bits as the scalar samples (a
// test compares them). Normal samples, the leftover elements and other CPUs use the scalar code.
#include "mmgrad/core/philox.h"
#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/kernels/cpu/parallel.h"
#include "mmgrad/kernels/cpu/philox_avx512.h"

namespace mmgrad::cpu {
namespace {

// Elements per thread before a second thread joins (a uniform sample costs ~1 ns vectorised,
// several scalar; a normal one more): each thread then has >= ~16 us of work.
constexpr int64_t kRandomGrain = 16384;

template <class T>
void uniform_scalar(T* o, int64_t b, int64_t e, uint64_t seed, uint64_t offset, double a,
                    double bound) {
  for (int64_t i = b; i < e; ++i) o[i] = philox::uniform_sample<T>(offset + i, seed, a, bound);
}

#if defined(MMGRAD_HAVE_PHILOX_AVX512)
// (GCC 12 reports the undefined vectors inside its own conversion intrinsics as "(may be) used
// uninitialized": a false positive, silenced for these functions only.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
MMGRAD_PHILOX_TARGET void uniform_avx512(float* o, int64_t b, int64_t e, uint64_t seed,
                                         uint64_t offset, double a, double bound) {
  const philox_avx512::Keys keys(seed);
  int64_t i = b;
  for (; i + 16 <= e; i += 16)
    _mm512_storeu_ps(o + i, philox_avx512::uniform_sample16f(offset + i, keys, a, bound));
  uniform_scalar(o, i, e, seed, offset, a, bound);
}

// float64: v = fma(b - a, u, a), and a where v reached b (philox::uniform_sample<double>).
MMGRAD_PHILOX_TARGET void uniform_avx512(double* o, int64_t b, int64_t e, uint64_t seed,
                                         uint64_t offset, double a, double bound) {
  const philox_avx512::Keys keys(seed);
  const __m512d scale = _mm512_set1_pd(bound - a), lo = _mm512_set1_pd(a),
                hi = _mm512_set1_pd(bound);
  int64_t i = b;
  for (; i + 16 <= e; i += 16) {
    __m512d u[2];
    philox_avx512::uniform16(offset + i, keys, u[0], u[1]);
    for (int h = 0; h < 2; ++h) {
      const __m512d v = _mm512_fmadd_pd(scale, u[h], lo);
      _mm512_storeu_pd(o + i + 8 * h,
                       _mm512_mask_blend_pd(_mm512_cmp_pd_mask(v, hi, _CMP_LT_OQ), lo, v));
    }
  }
  uniform_scalar(o, i, e, seed, offset, a, bound);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

}  // namespace

void CpuBackend::random(RandomDist dist, const Strided& out, uint64_t seed, uint64_t offset,
                        double a, double b) {
  MMGRAD_CHECK(out.is_contiguous(), "random: output must be contiguous");
#if defined(MMGRAD_HAVE_PHILOX_AVX512)
  const bool vec = philox_avx512::supported();
#else
  const bool vec = false;
#endif
  dispatch_floating(out.dtype, "random", [&](auto t) {
    using T = decltype(t);
    T* o = out.ptr<T>();
    parallel_for(out.numel(), kRandomGrain, [&](int64_t s, int64_t e) {
      // The same per-element formulas as the CUDA backend (core/philox.h).
      if (dist == RandomDist::Uniform) {
#if defined(MMGRAD_HAVE_PHILOX_AVX512)
        if (vec) return uniform_avx512(o, s, e, seed, offset, a, b);
#endif
        (void)vec;
        uniform_scalar(o, s, e, seed, offset, a, b);
      } else {
        for (int64_t i = s; i < e; ++i) o[i] = philox::normal_sample<T>(offset + i, seed, a, b);
      }
    });
  });
}

}  // namespace mmgrad::cpu
