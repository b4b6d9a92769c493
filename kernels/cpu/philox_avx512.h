// Philox4x32-10 on 8 or 16 counters at once with AVX-512, bit for bit the scalar core/philox.h.
//
// The generator is integer arithmetic only (32 x 32 -> 64-bit products, xors, key additions), so
// a vector version gives exactly the scalar words. Each element gets a 64-bit lane whose low
// half holds its 32-bit state words; _mm512_mul_epu32 multiplies exactly those low halves into
// whole 64-bit products (the high and low words Philox needs). The round keys are the same for
// every lane (they depend on the seed only) and are computed once per call. ~1 ns per sample
// on this machine (the compiler-vectorised scalar loop: ~3.9 ns).//
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

// philox::uniform(counter + j, seed) for j = 0..7, one element per 64-bit lane. Each 32-bit
// word of the state sits in the low half of its lane; _mm512_mul_epu32 reads only those low
// halves and gives the whole 64-bit product, so a round is two products, two shifts (their high
// words) and two three-way xors. The high halves of the lanes collect garbage (the previous
// product's high word), which no product reads and the final conversion masks off.
MMGRAD_PHILOX_TARGET inline __m512d uniform8(uint64_t counter, const Keys& k) {
  const __m512i ctr = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(counter)),
                                       _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
  __m512i c0 = ctr;                         // low word of the counter (low half of the lane)
  __m512i c1 = _mm512_srli_epi64(ctr, 32);  // its high word
  __m512i c2 = _mm512_set1_epi64(0x243F6A88);
  __m512i c3 = _mm512_set1_epi64(0x85A308D3);
  const __m512i m0 = _mm512_set1_epi64(0xD2511F53), m1 = _mm512_set1_epi64(0xCD9E8D57);
  for (int r = 0; r < 10; ++r) {
    const __m512i p0 = _mm512_mul_epu32(c0, m0), p1 = _mm512_mul_epu32(c2, m1);
    // 0x96: a ^ b ^ c
    const __m512i n0 =
        _mm512_ternarylogic_epi64(_mm512_srli_epi64(p1, 32), c1, _mm512_set1_epi64(k.k0[r]), 0x96);
    const __m512i n2 =
        _mm512_ternarylogic_epi64(_mm512_srli_epi64(p0, 32), c3, _mm512_set1_epi64(k.k1[r]), 0x96);
    c0 = n0;
    c1 = p1;  // low word: the product's low half
    c2 = n2;
    c3 = p0;
  }
  // philox::to_unit(w0 = c0, w1 = c1): ((w0 << 21) ^ (w1 >> 11)) mod 2^53 (w1's garbage high
  // half masked off first; w0's shifts past bit 53), times 2^-53: exact.
  const __m512i w1 = _mm512_and_si512(c1, _mm512_set1_epi64(0xFFFFFFFF));
  const __m512i bits =
      _mm512_and_si512(_mm512_xor_si512(_mm512_slli_epi64(c0, 21), _mm512_srli_epi64(w1, 11)),
                       _mm512_set1_epi64((1ll << 53) - 1));
  return _mm512_mul_pd(_mm512_cvtepi64_pd(bits), _mm512_set1_pd(1.0 / 9007199254740992.0));
}

// philox::uniform(counter + j, seed) for j = 0..7 (lo) and 8..15 (hi).
MMGRAD_PHILOX_TARGET inline void uniform16(uint64_t counter, const Keys& k, __m512d& lo,
                                           __m512d& hi) {
  lo = uniform8(counter, k);
  hi = uniform8(counter + 8, k);
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
