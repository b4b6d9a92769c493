// Philox4x32-10 on 16 counters at once with AVX-512, bit for bit the scalar core/philox.h.
//
// The generator is integer arithmetic only (32 x 32 -> 64-bit products, xors, key additions), so
// a vector version gives exactly the scalar words. Per round each of the 16 lanes needs the high
// and low halves of two 32 x 32-bit products; _mm512_mul_epu32 multiplies the even 32-bit lanes
// (into 64-bit results), so the odd lanes are shifted down and multiplied in a second product,
// and the halves are blended back into lane order. The round keys are the same for every lane
// (they depend on the seed only) and are computed once per call.
//
// uniform(): the 53-bit fraction of words 0 and 1 (philox::to_unit) as a double in [0, 1). The
// bits are an integer below 2^53, so converting it is exact and scaling by 2^-53 is exact: the
// same double as the scalar code. Callers then apply the same fma and rounding as
// philox::uniform_sample (one vfmadd per lane, then a round-to-nearest float conversion).
//
// The functions carry target attributes, so including this header is fine in a portable build;
// they may only be called where supported() says so (AVX-512F and, for the integer to double
// conversion, AVX-512DQ). Callers are target functions themselves, so these inline. x86-64 only
// (MMGRAD_HAVE_PHILOX_AVX512 says whether it is there).
#pragma once

#if defined(__x86_64__)
#define MMGRAD_HAVE_PHILOX_AVX512 1
#include <immintrin.h>

#include <cstdint>

namespace mmgrad::cpu::philox_avx512 {

// Round r xors in (k0 + r * 0x9E3779B9, k1 + r * 0xBB67AE85) (mod 2^32), as philox4x32 does.
struct Keys {
  uint32_t k0[10], k1[10];
  explicit Keys(uint64_t seed) {
    uint32_t a = static_cast<uint32_t>(seed), b = static_cast<uint32_t>(seed >> 32);
    for (int r = 0; r < 10; ++r) {
      k0[r] = a;
      k1[r] = b;
      a += 0x9E3779B9u;
      b += 0xBB67AE85u;
    }
  }
};

inline bool supported() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  return ok;
}

#define MMGRAD_PHILOX_TARGET __attribute__((target("avx512f,avx512dq")))

// High and low 32-bit halves of x * m per 32-bit lane (m the same in every lane).
MMGRAD_PHILOX_TARGET inline void mul_hi_lo(__m512i x, __m512i m, __m512i& hi, __m512i& lo) {
  const __m512i even = _mm512_mul_epu32(x, m);                        // lanes 0, 2, 4, ...
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(x, 32), m);  // lanes 1, 3, 5, ...
  hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
  lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
}

// Words 0 and 1 of philox4x32(counter + j, seed) in lane j, j = 0..15.
MMGRAD_PHILOX_TARGET inline void words01(uint64_t counter, const Keys& k, __m512i& w0,
                                         __m512i& w1) {
  // The 64-bit counters split into their low (c0) and high (c1) words.
  const __m512i base = _mm512_set1_epi64(static_cast<long long>(counter));
  const __m512i lo8 = _mm512_add_epi64(base, _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
  const __m512i hi8 = _mm512_add_epi64(base, _mm512_setr_epi64(8, 9, 10, 11, 12, 13, 14, 15));
  __m512i c0 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(lo8)),
                                  _mm512_cvtepi64_epi32(hi8), 1);
  __m512i c1 =
      _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(_mm512_srli_epi64(lo8, 32))),
                         _mm512_cvtepi64_epi32(_mm512_srli_epi64(hi8, 32)), 1);
  __m512i c2 = _mm512_set1_epi32(static_cast<int>(0x243F6A88u));
  __m512i c3 = _mm512_set1_epi32(static_cast<int>(0x85A308D3u));
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(0xD2511F53u));
  const __m512i m1 = _mm512_set1_epi32(static_cast<int>(0xCD9E8D57u));
  for (int r = 0; r < 10; ++r) {
    __m512i hi0, lo0, hi1, lo1;
    mul_hi_lo(c0, m0, hi0, lo0);
    mul_hi_lo(c2, m1, hi1, lo1);
    const __m512i n0 =
        _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32(static_cast<int>(k.k0[r])));
    const __m512i n2 =
        _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32(static_cast<int>(k.k1[r])));
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
  }
  w0 = c0;
  w1 = c1;
}

// philox::to_unit of 8 word pairs (zero-extended to 64 bits): ((w0 << 21) ^ (w1 >> 11)) mod 2^53,
// times 2^-53.
MMGRAD_PHILOX_TARGET inline __m512d to_unit8(__m256i w0, __m256i w1) {
  const __m512i a = _mm512_cvtepu32_epi64(w0), b = _mm512_cvtepu32_epi64(w1);
  const __m512i bits =
      _mm512_and_si512(_mm512_xor_si512(_mm512_slli_epi64(a, 21), _mm512_srli_epi64(b, 11)),
                       _mm512_set1_epi64((1ll << 53) - 1));
  return _mm512_mul_pd(_mm512_cvtepi64_pd(bits), _mm512_set1_pd(1.0 / 9007199254740992.0));
}

// philox::uniform(counter + j, seed) for j = 0..7 (lo) and 8..15 (hi).
MMGRAD_PHILOX_TARGET inline void uniform16(uint64_t counter, const Keys& k, __m512d& lo,
                                           __m512d& hi) {
  __m512i w0, w1;
  words01(counter, k, w0, w1);
  lo = to_unit8(_mm512_castsi512_si256(w0), _mm512_castsi512_si256(w1));
  hi = to_unit8(_mm512_extracti64x4_epi64(w0, 1), _mm512_extracti64x4_epi64(w1, 1));
}

// philox::uniform_sample<float>(counter + j, seed, a, b) for j = 0..15: the double
// fma(b - a, u, a) rounded to float, and float(a) where that rounding reached float(b).
MMGRAD_PHILOX_TARGET inline __m512 uniform_sample16f(uint64_t counter, const Keys& k, double a,
                                                     double b) {
  __m512d u0, u1;
  uniform16(counter, k, u0, u1);
  const __m512d scale = _mm512_set1_pd(b - a), shift = _mm512_set1_pd(a);
  const __m256 v0 = _mm512_cvtpd_ps(_mm512_fmadd_pd(scale, u0, shift));
  const __m256 v1 = _mm512_cvtpd_ps(_mm512_fmadd_pd(scale, u1, shift));
  const __m512 v = _mm512_insertf32x8(_mm512_castps256_ps512(v0), v1, 1);
  const __mmask16 below = _mm512_cmp_ps_mask(v, _mm512_set1_ps(static_cast<float>(b)), _CMP_LT_OQ);
  return _mm512_mask_blend_ps(below, _mm512_set1_ps(static_cast<float>(a)), v);
}

}  // namespace mmgrad::cpu::philox_avx512

#endif  // __x86_64__
