// Fused float32 dropout (Backend::dropout_forward / dropout_backward; ops/dropout.cpp): one pass
// draws the Philox uniforms, writes the keep bytes and the output. With AVX-512 16 samples come
// from one vectorised Philox (kernels/cpu/philox_avx512.h, the scalar generator's bits); the rest,
// and machines without AVX-512, use the scalar generator. Every element depends on its counter
// alone, so the result does not depend on how the elements are split over threads.
#include "mmgrad/core/error.h"
#include "mmgrad/core/philox.h"
#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/kernels/cpu/parallel.h"
#include "mmgrad/kernels/cpu/philox_avx512.h"

namespace mmgrad::cpu {
namespace {

// Elements per thread before a second thread joins: the vectorised Philox costs ~1 ns per
// element, so a thread's share is then >= ~16 us, several times a fork/join.
constexpr int64_t kDropoutGrain = 16384;

void forward_scalar(const float* x, float* y, uint8_t* keep, int64_t b, int64_t e, uint64_t seed,
                    uint64_t offset, float p, float scale) {
  for (int64_t i = b; i < e; ++i) {
    const float u =
        philox::uniform_sample<float>(offset + static_cast<uint64_t>(i), seed, 0.0, 1.0);
    const bool k = u >= p;
    keep[i] = k;
    y[i] = x[i] * (k ? scale : 0.0f);
  }
}

#if defined(MMGRAD_HAVE_PHILOX_AVX512)
// (GCC 12 reports the undefined vectors inside its own conversion intrinsics as "(may be) used
// uninitialized": a false positive, silenced for this function only.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
MMGRAD_PHILOX_TARGET void forward_avx512(const float* x, float* y, uint8_t* keep, int64_t b,
                                         int64_t e, uint64_t seed, uint64_t offset, float p,
                                         float scale) {
  const philox_avx512::Keys keys(seed);
  const __m512 pv = _mm512_set1_ps(p), sv = _mm512_set1_ps(scale), zero = _mm512_setzero_ps();
  int64_t i = b;
  for (; i + 16 <= e; i += 16) {
    const __m512 u =
        philox_avx512::uniform_sample16f(offset + static_cast<uint64_t>(i), keys, 0.0, 1.0);
    const __mmask16 k = _mm512_cmp_ps_mask(u, pv, _CMP_GE_OQ);  // u >= p (u is never NaN)
    const __m512 m = _mm512_mask_blend_ps(k, zero, sv);
    _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), m));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(keep + i),
                     _mm512_cvtepi32_epi8(_mm512_maskz_set1_epi32(k, 1)));
  }
  forward_scalar(x, y, keep, i, e, seed, offset, p, scale);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

}  // namespace

void CpuBackend::dropout_forward(DType dtype, const void* xv, void* yv, uint8_t* keep, int64_t n,
                                 uint64_t seed, uint64_t offset, float p, float scale) {
  if (dtype != DType::Float32)
    fail(cat_str("dropout: the CPU's fused dropout is float32, got ", dtype_name(dtype)));
  const float* x = static_cast<const float*>(xv);
  float* y = static_cast<float*>(yv);
#if defined(MMGRAD_HAVE_PHILOX_AVX512)
  const bool vec = philox_avx512::supported();
#else
  const bool vec = false;
#endif
  parallel_for(n, kDropoutGrain, [&](int64_t b, int64_t e) {
#if defined(MMGRAD_HAVE_PHILOX_AVX512)
    if (vec) return forward_avx512(x, y, keep, b, e, seed, offset, p, scale);
#endif
    (void)vec;
    forward_scalar(x, y, keep, b, e, seed, offset, p, scale);
  });
}

void CpuBackend::dropout_backward(DType dtype, const void* gv, const uint8_t* keep, void* gxv,
                                  int64_t n, float scale) {
  if (dtype != DType::Float32)
    fail(cat_str("dropout backward: the CPU's fused dropout is float32, got ", dtype_name(dtype)));
  const float* g = static_cast<const float*>(gv);
  float* gx = static_cast<float*>(gxv);
  // Memory-bound: ~0.3 ns per element in cache (parallel.h: kCheapElementwiseGrain). keep is 0 or
  // 1, so float(keep) * scale is exactly keep ? scale : 0 (scale is finite and positive), without a
  // branch: the loop vectorises (a branch on random keep bytes mispredicts every few elements).
  parallel_for(n, kCheapElementwiseGrain, [=](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) gx[i] = g[i] * (static_cast<float>(keep[i]) * scale);
  });
}

}  // namespace mmgrad::cpu
