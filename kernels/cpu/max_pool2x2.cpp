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
// The argmax is kept as one byte per window, the winner's position in it (0 = a, 1 = b, 2 = c,
// 3 = d), not as an int64 pixel index: the pool is memory-bound, and the index was 8 of the
// ~20 bytes moved per window. Same outputs and gradient bits as the general kernel: the same
// rule picks the same pixel, and the gradient is stored as 0 + gy (the general kernel adds gy
// onto a zero, which turns -0 into +0).
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/kernels/cpu/parallel.h"

namespace mmgrad::cpu {

namespace {

// The pixel at window position k (0..3) of the window whose top-left pixel is first.
inline int64_t window_pixel(int64_t first, int64_t W, int k) {
  return first + (k & 1) + (k >> 1) * W;
}

// One output row oh of one plane, one window at a time (the portable path).
void forward_row_scalar(const float* x, int64_t W, int64_t oh, int64_t OW, float* y,
                        uint8_t* which) {
  for (int64_t ow = 0; ow < OW; ++ow) {
    const int64_t first = 2 * oh * W + 2 * ow;
    int k = 0;
    float best = x[first];
    for (int t = 1; t < 4; ++t) {
      const float v = x[window_pixel(first, W, t)];
      if (v > best || v != v) best = v, k = t;
    }
    y[ow] = best;
    if (which) which[ow] = static_cast<uint8_t>(k);
  }
}

void backward_row_scalar(const float* gy, const uint8_t* which, int64_t W, int64_t oh, int64_t OW,
                         float* gx) {
  for (int64_t ow = 0; ow < OW; ++ow) {
    const int64_t first = 2 * oh * W + 2 * ow;
    for (int t = 0; t < 4; ++t)
      gx[window_pixel(first, W, t)] = t == which[ow] ? 0.0f + gy[ow] : 0.0f;
  }
}

#if defined(__x86_64__) || defined(__i386__)
// Lanes [0, n) of a 16-lane mask (n may be outside [0, 16]).
inline __mmask16 first_lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// Windows [0, OW) of output row oh, 16 per step (the last step masked).
__attribute__((target("avx512f"))) void forward_row_avx512(const float* x, int64_t W, int64_t oh,
                                                           int64_t OW, float* y, uint8_t* which) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
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
    __m512 best = _mm512_permutex2var_ps(r0a, even, r0b);
    __m512i k = _mm512_setzero_si512();  // the winner's position in its window
    for (int t = 0; t < 3; ++t) {
      const __mmask16 take = _mm512_cmp_ps_mask(taps[t], best, _CMP_GT_OQ) |
                             _mm512_cmp_ps_mask(taps[t], taps[t], _CMP_UNORD_Q);
      best = _mm512_mask_mov_ps(best, take, taps[t]);
      k = _mm512_mask_mov_epi32(k, take, _mm512_set1_epi32(t + 1));
    }
    _mm512_mask_storeu_ps(y + ow0, m, best);
    if (which) _mm512_mask_cvtepi32_storeu_epi8(which + ow0, m, k);  // each lane's low byte
  }
}

// g in the lanes (of the m valid ones) whose window's winner is at position pos, else 0. (A
// function, not a lambda: a lambda does not inherit the target attribute of the function it is
// in, and in a build without -mavx512f its intrinsics would not compile.)
__attribute__((target("avx512f"))) inline __m512 winner_at(int pos, __m512i k, __mmask16 m,
                                                           __m512 g) {
  return _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(pos)) & m, g);
}

__attribute__((target("avx512f"))) void backward_row_avx512(const float* gy, const uint8_t* which,
                                                            int64_t W, int64_t oh, int64_t OW,
                                                            float* gx) {
  // lane 2i of the low result takes lane i of the first source, lane 2i+1 lane i of the second
  const __m512i mix_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i mix_hi =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  float* r0 = gx + 2 * oh * W;
  float* r1 = r0 + W;
  for (int64_t ow0 = 0; ow0 < OW; ow0 += 16) {
    const int64_t n = OW - ow0;
    const __mmask16 m = first_lanes(n), m_lo = first_lanes(2 * n), m_hi = first_lanes(2 * n - 16);
    const __m512 g = _mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(m, gy + ow0));
    // the 16 windows' positions (the buffer has kWhichSlack bytes past its end for this load)
    const __m512i k = _mm512_maskz_cvtepu8_epi32(
        0xFFFF, _mm_loadu_si128(reinterpret_cast<const __m128i*>(which + ow0)));
    const __m512 a = winner_at(0, k, m, g), b = winner_at(1, k, m, g), c = winner_at(2, k, m, g),
                 d = winner_at(3, k, m, g);
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

void max_pool2x2_forward(const float* x, float* y, uint8_t* which, const Conv2dGeom& g) {
  const int64_t W = g.W, HW = g.H * g.W, OH = g.OH, OW = g.OW;
  const bool vec = use_avx512();
  parallel_for(g.N * g.C, 1, [=](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p)
      for (int64_t oh = 0; oh < OH; ++oh) {
        float* yr = y + (p * OH + oh) * OW;
        uint8_t* ar = which ? which + (p * OH + oh) * OW : nullptr;
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

void max_pool2x2_backward(const float* gy, const uint8_t* which, float* gx, const Conv2dGeom& g) {
  const int64_t H = g.H, W = g.W, HW = g.H * g.W, OH = g.OH, OW = g.OW;
  const bool vec = use_avx512();
  parallel_for(g.N * g.C, 1, [=](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      float* gxp = gx + p * HW;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const float* gr = gy + (p * OH + oh) * OW;
        const uint8_t* ar = which + (p * OH + oh) * OW;
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
