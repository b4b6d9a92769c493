// The 2x2, stride-2, unpadded max pool (every CNN's "halve the map") in float32, vectorised.
//
// The general kernel (kernels/cpu/conv.cpp) finds each window's maximum one window at a time, and
// its backward zeroes dL/dx and then scatters gy to the recorded argmax. For 2x2/2 the windows
// tile the image without overlap, so both passes become dense:
//   forward:  out[oh, ow] over the four pixels a = x[2oh, 2ow], b = x[2oh, 2ow+1],
//             c = x[2oh+1, 2ow], d = x[2oh+1, 2ow+1], in that order, with PyTorch's rule: a later
//             pixel takes over when it is larger or NaN (so the first maximum wins ties, and a
//             window holding NaN gives its last NaN). With AVX-512 16 windows go at once: two
//             rows of 32 pixels are split into their even and odd columns (a, b, c, d as four
//             vectors) and the rule is three compare-and-blend steps.
//   backward: each window's four dL/dx entries are gy at its argmax and 0 elsewhere; they are
//             written (no zeroing pass, no scatter), and only the row and column left over by an
//             odd H or W are zeroed.
// Indices are computed in int64 lanes. Same outputs, argmax and gradient bits as the general
// kernel: the same rule picks the same pixel, and the gradient is stored as 0 + gy (the general
// kernel adds gy onto a zero, which turns -0 into +0).
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/kernels/cpu/parallel.h"

namespace mmgrad::cpu {

namespace {

// One output row oh of one plane, one window at a time (the portable path and the
// vector loop's tail).
void forward_row_scalar(const float* x, int64_t W, int64_t oh, int64_t OW, float* y, int64_t* arg) {
  for (int64_t ow = 0; ow < OW; ++ow) {
    const int64_t first = 2 * oh * W + 2 * ow;
    const int64_t taps[3] = {first + 1, first + W, first + W + 1};
    int64_t a = first;
    float best = x[first];
    for (int64_t t : taps)
      if (x[t] > best || x[t] != x[t]) best = x[t], a = t;
    y[ow] = best;
    arg[ow] = a;
  }
}

void backward_row_scalar(const float* gy, const int64_t* arg, int64_t W, int64_t oh, int64_t OW,
                         float* gx) {
  for (int64_t ow = 0; ow < OW; ++ow) {
    const int64_t first = 2 * oh * W + 2 * ow;
    const int64_t taps[4] = {first, first + 1, first + W, first + W + 1};
    for (int64_t t : taps) gx[t] = t == arg[ow] ? 0.0f + gy[ow] : 0.0f;
  }
}

#if defined(__x86_64__) || defined(__i386__)
// Lanes [0, n) of a 16-lane mask (n may be outside [0, 16]).
inline __mmask16 first_lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// Windows [0, OW) of output row oh, 16 per step (the last step masked).
__attribute__((target("avx512f"))) void forward_row_avx512(const float* x, int64_t W, int64_t oh,
                                                           int64_t OW, float* y, int64_t* arg) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i lane2 = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);  // 2 * lane, int64
  const float* r0 = x + 2 * oh * W;
  const float* r1 = r0 + W;
  for (int64_t ow0 = 0; ow0 < OW; ow0 += 16) {
    const int64_t n = OW - ow0;  // windows left
    const __mmask16 m = first_lanes(n), m_lo = first_lanes(2 * n), m_hi = first_lanes(2 * n - 16);
    const float* p0 = r0 + 2 * ow0;
    const float* p1 = r1 + 2 * ow0;
    const __m512 r0a = _mm512_maskz_loadu_ps(m_lo, p0), r0b = _mm512_maskz_loadu_ps(m_hi, p0 + 16);
    const __m512 r1a = _mm512_maskz_loadu_ps(m_lo, p1), r1b = _mm512_maskz_loadu_ps(m_hi, p1 + 16);
    const __m512 taps[3] = {_mm512_permutex2var_ps(r0a, odd, r0b),
                            _mm512_permutex2var_ps(r1a, even, r1b),
                            _mm512_permutex2var_ps(r1a, odd, r1b)};
    const int64_t offsets[3] = {1, W, W + 1};
    __m512 best = _mm512_permutex2var_ps(r0a, even, r0b);
    // the winner's index, in two vectors of 8 int64 (windows 0-7 and 8-15 of this step)
    const int64_t first = 2 * oh * W + 2 * ow0;
    const __m512i base_lo = _mm512_add_epi64(_mm512_set1_epi64(first), lane2);
    const __m512i base_hi = _mm512_add_epi64(_mm512_set1_epi64(first + 16), lane2);
    __m512i a_lo = base_lo, a_hi = base_hi;
    for (int t = 0; t < 3; ++t) {
      const __mmask16 take = _mm512_cmp_ps_mask(taps[t], best, _CMP_GT_OQ) |
                             _mm512_cmp_ps_mask(taps[t], taps[t], _CMP_UNORD_Q);
      best = _mm512_mask_mov_ps(best, take, taps[t]);
      const __m512i off = _mm512_set1_epi64(offsets[t]);
      a_lo = _mm512_mask_add_epi64(a_lo, __mmask8(take), base_lo, off);
      a_hi = _mm512_mask_add_epi64(a_hi, __mmask8(take >> 8), base_hi, off);
    }
    _mm512_mask_storeu_ps(y + ow0, m, best);
    _mm512_mask_storeu_epi64(arg + ow0, __mmask8(m), a_lo);
    _mm512_mask_storeu_epi64(arg + ow0 + 8, __mmask8(m >> 8), a_hi);
  }
}

__attribute__((target("avx512f"))) void backward_row_avx512(const float* gy, const int64_t* arg,
                                                            int64_t W, int64_t oh, int64_t OW,
                                                            float* gx) {
  // lane 2i of the low result takes lane i of the first source, lane 2i+1 lane i of the second
  const __m512i mix_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i mix_hi =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512i lane2 = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);  // 2 * lane, int64
  float* r0 = gx + 2 * oh * W;
  float* r1 = r0 + W;
  for (int64_t ow0 = 0; ow0 < OW; ow0 += 16) {
    const int64_t n = OW - ow0;
    const __mmask16 m = first_lanes(n), m_lo = first_lanes(2 * n), m_hi = first_lanes(2 * n - 16);
    const __m512 g = _mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(m, gy + ow0));
    // the winner's offset within its window, in two vectors of 8 int64
    const int64_t first = 2 * oh * W + 2 * ow0;
    const __m512i k_lo = _mm512_sub_epi64(_mm512_maskz_loadu_epi64(__mmask8(m), arg + ow0),
                                          _mm512_add_epi64(_mm512_set1_epi64(first), lane2));
    const __m512i k_hi = _mm512_sub_epi64(_mm512_maskz_loadu_epi64(__mmask8(m >> 8), arg + ow0 + 8),
                                          _mm512_add_epi64(_mm512_set1_epi64(first + 16), lane2));
    auto at = [&](int64_t off) {  // g where the winner is at offset off, else 0
      const __m512i o = _mm512_set1_epi64(off);
      const __mmask16 hit = __mmask16(_mm512_cmpeq_epi64_mask(k_lo, o)) |
                            __mmask16(_mm512_cmpeq_epi64_mask(k_hi, o) << 8);
      return _mm512_maskz_mov_ps(hit & m, g);
    };
    const __m512 a = at(0), b = at(1), c = at(W), d = at(W + 1);
    float* p0 = r0 + 2 * ow0;
    float* p1 = r1 + 2 * ow0;
    _mm512_mask_storeu_ps(p0, m_lo, _mm512_permutex2var_ps(a, mix_lo, b));
    _mm512_mask_storeu_ps(p0 + 16, m_hi, _mm512_permutex2var_ps(a, mix_hi, b));
    _mm512_mask_storeu_ps(p1, m_lo, _mm512_permutex2var_ps(c, mix_lo, d));
    _mm512_mask_storeu_ps(p1 + 16, m_hi, _mm512_permutex2var_ps(c, mix_hi, d));
  }
}

bool use_avx512() {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  return avx512;
}
#else
bool use_avx512() { return false; }
#endif

}  // namespace

void max_pool2x2_forward(const float* x, float* y, int64_t* argmax, const Conv2dGeom& g) {
  const int64_t W = g.W, HW = g.H * g.W, OH = g.OH, OW = g.OW;
  const bool vec = use_avx512();
  parallel_for(g.N * g.C, 1, [=](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p)
      for (int64_t oh = 0; oh < OH; ++oh) {
        float* yr = y + (p * OH + oh) * OW;
        int64_t* ar = argmax + (p * OH + oh) * OW;
#if defined(__x86_64__) || defined(__i386__)
        if (vec) {
          forward_row_avx512(x + p * HW, W, oh, OW, yr, ar);
          continue;
        }
#endif
        forward_row_scalar(x + p * HW, W, oh, OW, yr, ar);
      }
  });
}

void max_pool2x2_backward(const float* gy, const int64_t* argmax, float* gx, const Conv2dGeom& g) {
  const int64_t H = g.H, W = g.W, HW = g.H * g.W, OH = g.OH, OW = g.OW;
  const bool vec = use_avx512();
  parallel_for(g.N * g.C, 1, [=](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      float* gxp = gx + p * HW;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const float* gr = gy + (p * OH + oh) * OW;
        const int64_t* ar = argmax + (p * OH + oh) * OW;
#if defined(__x86_64__) || defined(__i386__)
        if (vec) {
          backward_row_avx512(gr, ar, W, oh, OW, gxp);
        } else
#endif
          backward_row_scalar(gr, ar, W, oh, OW, gxp);
        if (W > 2 * OW)  // an odd width leaves a last column no window reads
          gxp[2 * oh * W + W - 1] = gxp[(2 * oh + 1) * W + W - 1] = 0.0f;
      }
      if (H > 2 * OH) std::memset(gxp + 2 * OH * W, 0, sizeof(float) * (H - 2 * OH) * W);
    }
  });
}

}  // namespace mmgrad::cpu
