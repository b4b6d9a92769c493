// float32 conv2d with few input channels (C <= 3: an image's first layer; stride 1, kernels up to
// 3x3, see conv2d_small_cin), forward and weight gradient, as a direct convolution vectorised
// over 16 output pixels of a row times 8 output channels.
//
// With C = 1 and a 3x3 kernel the implicit GEMM of conv_fast.cpp has a depth of CK = C*KH*KW = 9:
// each micro-kernel tile is packed for 9 multiply-adds per output, so packing, not arithmetic,
// dominates (~13% of the FMA peak on lesson 04's first layer). Written directly, with xp the
// image with its zero padding written out (so no tap needs a bounds test),
//   y[n, o, oh, ow] = b[o] + sum over taps (c, kh, kw) of
//                     w[o, c, kh, kw] * xp[c, oh*SH + kh*DH, ow*SW + kw*DW]
// and for 16 neighbouring ow the xp values under one tap are one vector load: each load feeds 8
// multiply-adds (8 output channels, their weights stored side by side), all in registers.
//
// The weight gradient uses the same padded layout:
//   dL/dW[o, c, kh, kw] = sum over (n, oh, ow) of gy[n, o, oh, ow] * xp[c, oh*SH + kh*DH, ...]:
//     per tap, a dot product of gy rows with the shifted input rows, accumulated in 16-lane
//     partial sums, per fixed block of kImagesPerBlock images; the blocks' sums are added in
//     block order at the end, so the result does not depend on how blocks are spread over
//     threads. gy rows are copied into rows rounded up to 16 with zeros (and the input lanes
//     past OW are masked), so every step is a whole vector.
//   dL/dx is not computed here: conv_fast.cpp's routes do it (a scatter written directly ran at
//     1-2 GFLOP/s, against 45-110 for the GEMM routes). A first layer's input rarely needs a
//     gradient anyway: the engine skips it then.
// The sums run in a different order than the im2col reference: the same numbers to float32
// rounding, not the same bits. Each image's outputs are computed by one task in a fixed order,
// so the bits do not depend on the thread count either.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/kernels/cpu/parallel.h"

// fmadd below returns a 16-float GCC vector by value. Built without AVX-512 (no -march=native),
// GCC warns that such values are returned differently than with it (-Wpsabi); the function is
// internal to this file and inlined, so no call crosses a boundary where that could matter.
// (Arguments go by reference, and load16 writes through one, for the same reason.)
#pragma GCC diagnostic ignored "-Wpsabi"

namespace mmgrad::cpu {

namespace {

constexpr int64_t kLanes = 16;          // one AVX-512 vector of float32
constexpr int64_t kImagesPerBlock = 8;  // weight-gradient partial sums per block of images

// The padded-image layout shared by the three passes.
struct Padded {
  int64_t OWr;  // OW rounded up to kLanes
  int64_t Hp;   // padded rows: the image's rows plus padding above and below
  int64_t Wp;   // padded row length: covers the padding and every lane of every rounded row
  explicit Padded(const Conv2dGeom& g) {
    OWr = (g.OW + kLanes - 1) / kLanes * kLanes;
    Hp = std::max(g.H + 2 * g.PH, (g.OH - 1) * g.SH + (g.KH - 1) * g.DH + 1);
    Wp = std::max(g.W + g.PW, (OWr - 1) * g.SW + (g.KW - 1) * g.DW + 1);
  }
  int64_t plane() const { return Hp * Wp; }
};

// xp (C planes of Hp x Wp, zeroed outside the image) from image x [C, H, W].
void pad_image(const float* x, const Conv2dGeom& g, const Padded& p, float* xp) {
  std::fill(xp, xp + g.C * p.plane(), 0.0f);
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t h = 0; h < g.H; ++h)
      std::copy(x + (c * g.H + h) * g.W, x + (c * g.H + h + 1) * g.W,
                xp + c * p.plane() + (h + g.PH) * p.Wp + g.PW);
}

// Eight output channels at a time: the weights of a block laid out [tap][8] (zero for channels
// past Cout), so one x vector feeds eight multiply-adds whose weights sit side by side.
constexpr int64_t kOutBlock = 8;
using v16 = float __attribute__((vector_size(kLanes * sizeof(float))));
using v16i = int32_t __attribute__((vector_size(kLanes * sizeof(int32_t))));

// c + a * b, rounded once (a fused multiply-add), in every build. Written as `c += a * b` the
// product would be fused only where the compiler contracts it (optimised builds with FMA
// instructions): a Debug build, or one without -march=native, gave other bits. One policy per
// instruction set; the kernels below are templates over it, compiled into functions with that
// target (the fmadd of a target's policy is inlined there, where the target matches).
struct FmaPortable {  // 16 std::fma: exact, but libm calls where the CPU has no FMA instruction
  static v16 fmadd(const v16& a, const v16& b, const v16& c) {
    v16 r;
    for (int64_t l = 0; l < kLanes; ++l) r[l] = std::fma(a[l], b[l], c[l]);
    return r;
  }
};
#if defined(__x86_64__) || defined(__i386__)
struct FmaAvx512 {
  __attribute__((target("avx512f"))) static v16 fmadd(const v16& a, const v16& b, const v16& c) {
    return reinterpret_cast<v16>(_mm512_fmadd_ps(
        reinterpret_cast<__m512>(a), reinterpret_cast<__m512>(b), reinterpret_cast<__m512>(c)));
  }
};
struct FmaAvx2 {  // the two halves of 8 lanes
  __attribute__((target("avx2,fma"))) static v16 fmadd(const v16& a, const v16& b, const v16& c) {
    const __m256* pa = reinterpret_cast<const __m256*>(&a);
    const __m256* pb = reinterpret_cast<const __m256*>(&b);
    const __m256* pc = reinterpret_cast<const __m256*>(&c);
    v16 r;
    __m256* pr = reinterpret_cast<__m256*>(&r);
    pr[0] = _mm256_fmadd_ps(pa[0], pb[0], pc[0]);
    pr[1] = _mm256_fmadd_ps(pa[1], pb[1], pc[1]);
    return r;
  }
};
#endif

// v = 16 floats from p, `stride` apart (written through a reference: see the pragma above).
[[gnu::always_inline]] inline void load16(const float* p, int64_t stride, v16& v) {
  if (stride == 1) {
    std::memcpy(&v, p, sizeof(v));
  } else {
    for (int64_t l = 0; l < kLanes; ++l) v[l] = p[l * stride];
  }
}

// wb [ceil(Cout / 8)][C*KH*KW][8]: each block's weights, tap-major.
std::vector<float> block_weights(const float* w, int64_t Cout, int64_t CK) {
  const int64_t blocks = (Cout + kOutBlock - 1) / kOutBlock;
  std::vector<float> wb(static_cast<size_t>(blocks * CK * kOutBlock), 0.0f);
  for (int64_t o = 0; o < Cout; ++o)
    for (int64_t t = 0; t < CK; ++t)
      wb[static_cast<size_t>(((o / kOutBlock) * CK + t) * kOutBlock + o % kOutBlock)] =
          w[o * CK + t];
  return wb;
}

// The kLanes outputs starting at column ow0 of row oh for the 8 channels of one block:
// acc[j] = sum over taps of wb[tap][j] * (the input under that tap).
template <class F>
[[gnu::always_inline]] inline void forward_chunk(const float* xp, const float* wb,
                                                 const Conv2dGeom& g, const Padded& p, int64_t oh,
                                                 int64_t ow0, v16* acc) {
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const float* row = xp + c * p.plane() + (oh * g.SH + kh * g.DH) * p.Wp + ow0 * g.SW;
      for (int64_t kw = 0; kw < g.KW; ++kw, wb += kOutBlock) {
        v16 xv;
        load16(row + kw * g.DW, g.SW, xv);
        for (int64_t j = 0; j < kOutBlock; ++j) acc[j] = F::fmadd(v16{} + wb[j], xv, acc[j]);
      }
    }
}

// One image: y [Cout, OH, OW] from its padded planes xp. Rows are covered by chunks of kLanes
// columns; the last chunk of a row is shifted left to end at OW (recomputing a few outputs with
// the same bits) so every store is a whole vector. Rows narrower than kLanes go through tmp.
template <class F>
[[gnu::always_inline]] inline void forward_image(const float* xp, const float* wb,
                                                 const float* bias, float* y, const Conv2dGeom& g,
                                                 const Padded& p, int64_t Cout) {
  const int64_t CK = g.C * g.KH * g.KW;
  for (int64_t o0 = 0; o0 < Cout; o0 += kOutBlock) {
    const int64_t ob = std::min(kOutBlock, Cout - o0);
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow0 = 0; ow0 < g.OW; ow0 += kLanes) {
        const int64_t start = g.OW >= kLanes ? std::min(ow0, g.OW - kLanes) : 0;
        v16 acc[kOutBlock];
        for (int64_t j = 0; j < kOutBlock; ++j)
          acc[j] = v16{} + (bias && j < ob ? bias[o0 + j] : 0.0f);
        forward_chunk<F>(xp, wb + (o0 / kOutBlock) * CK * kOutBlock, g, p, oh, start, acc);
        const int64_t n = std::min(kLanes, g.OW - start);
        for (int64_t j = 0; j < ob; ++j) {
          float* yr = y + ((o0 + j) * g.OH + oh) * g.OW + start;
          if (n == kLanes) {
            std::memcpy(yr, &acc[j], sizeof(v16));
          } else {
            float tmp[kLanes];
            std::memcpy(tmp, &acc[j], sizeof(v16));
            std::copy(tmp, tmp + n, yr);
          }
        }
      }
  }
}

// Adds one image's dL/dW into part [ceil(Cout/8)][CK][8][kLanes] (lane-wise partial sums).
// gyp is the image's gy with rows padded to OWr columns and channels to a multiple of 8 (zeros),
// so the rounded-up lanes and missing channels add nothing.
template <class F>
[[gnu::always_inline]] inline void wgrad_image(const float* xp, const float* gyp, float* part,
                                               const Conv2dGeom& g, const Padded& p, int64_t Cout) {
  const int64_t CK = g.C * g.KH * g.KW, plane_gy = g.OH * p.OWr;
  // The lanes past OW read input pixels that belong to no receptive field of those taps. Their
  // gy is zero, but 0 * inf is NaN: those x lanes are zeroed too (an AND with this mask).
  v16i last{};
  for (int64_t l = 0; l < kLanes; ++l) last[l] = p.OWr - kLanes + l < g.OW ? -1 : 0;
  for (int64_t o0 = 0; o0 < Cout; o0 += kOutBlock) {
    const float* gb = gyp + o0 * plane_gy;
    int64_t t = 0;
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t kh = 0; kh < g.KH; ++kh)
        for (int64_t kw = 0; kw < g.KW; ++kw, ++t) {
          v16 acc[kOutBlock] = {};
          for (int64_t oh = 0; oh < g.OH; ++oh) {
            const float* row = xp + c * p.plane() + (oh * g.SH + kh * g.DH) * p.Wp + kw * g.DW;
            for (int64_t ow0 = 0; ow0 < p.OWr; ow0 += kLanes) {
              v16 xv;
              load16(row + ow0 * g.SW, g.SW, xv);
              if (ow0 + kLanes == p.OWr) xv = std::bit_cast<v16>(std::bit_cast<v16i>(xv) & last);
              for (int64_t j = 0; j < kOutBlock; ++j) {
                v16 gv;
                std::memcpy(&gv, gb + j * plane_gy + oh * p.OWr + ow0, sizeof(v16));
                acc[j] = F::fmadd(gv, xv, acc[j]);
              }
            }
          }
          float* dst = part + (((o0 / kOutBlock) * CK + t) * kOutBlock) * kLanes;
          for (int64_t j = 0; j < kOutBlock; ++j) {
            v16 d;
            std::memcpy(&d, dst + j * kLanes, sizeof(v16));
            d += acc[j];
            std::memcpy(dst + j * kLanes, &d, sizeof(v16));
          }
        }
  }
}

// forward_image and wgrad_image compiled three times, the one for this CPU picked at run time:
// with AVX-512 + FMA, with AVX2 + FMA, and portable. Every build (native or not, Release or
// Debug) then runs the same fused multiply-adds in the same order: the same bits.
using ForwardImageFn = void (*)(const float*, const float*, const float*, float*, const Conv2dGeom&,
                                const Padded&, int64_t);
using WgradImageFn = void (*)(const float*, const float*, float*, const Conv2dGeom&, const Padded&,
                              int64_t);

void forward_image_portable(const float* xp, const float* wb, const float* bias, float* y,
                            const Conv2dGeom& g, const Padded& p, int64_t Cout) {
  forward_image<FmaPortable>(xp, wb, bias, y, g, p, Cout);
}
void wgrad_image_portable(const float* xp, const float* gyp, float* part, const Conv2dGeom& g,
                          const Padded& p, int64_t Cout) {
  wgrad_image<FmaPortable>(xp, gyp, part, g, p, Cout);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx512f,fma"))) void forward_image_avx512(const float* xp, const float* wb,
                                                                 const float* bias, float* y,
                                                                 const Conv2dGeom& g,
                                                                 const Padded& p, int64_t Cout) {
  forward_image<FmaAvx512>(xp, wb, bias, y, g, p, Cout);
}
__attribute__((target("avx512f,fma"))) void wgrad_image_avx512(const float* xp, const float* gyp,
                                                               float* part, const Conv2dGeom& g,
                                                               const Padded& p, int64_t Cout) {
  wgrad_image<FmaAvx512>(xp, gyp, part, g, p, Cout);
}
__attribute__((target("avx2,fma"))) void forward_image_avx2(const float* xp, const float* wb,
                                                            const float* bias, float* y,
                                                            const Conv2dGeom& g, const Padded& p,
                                                            int64_t Cout) {
  forward_image<FmaAvx2>(xp, wb, bias, y, g, p, Cout);
}
__attribute__((target("avx2,fma"))) void wgrad_image_avx2(const float* xp, const float* gyp,
                                                          float* part, const Conv2dGeom& g,
                                                          const Padded& p, int64_t Cout) {
  wgrad_image<FmaAvx2>(xp, gyp, part, g, p, Cout);
}
#endif

// 2: AVX-512 + FMA, 1: AVX2 + FMA, 0: portable.
int isa_level() {
#if defined(__x86_64__) || defined(__i386__)
  static const int level = __builtin_cpu_supports("fma") ? (__builtin_cpu_supports("avx512f") ? 2
                                                            : __builtin_cpu_supports("avx2")  ? 1
                                                                                              : 0)
                                                         : 0;
  return level;
#else
  return 0;
#endif
}

ForwardImageFn forward_image_fn() {
#if defined(__x86_64__) || defined(__i386__)
  if (isa_level() == 2) return forward_image_avx512;
  if (isa_level() == 1) return forward_image_avx2;
#endif
  return forward_image_portable;
}

WgradImageFn wgrad_image_fn() {
#if defined(__x86_64__) || defined(__i386__)
  if (isa_level() == 2) return wgrad_image_avx512;
  if (isa_level() == 1) return wgrad_image_avx2;
#endif
  return wgrad_image_portable;
}

// gyp (see wgrad_image) from one image's gy [Cout, OH, OW].
void pad_gy(const float* gy, const Conv2dGeom& g, const Padded& p, int64_t Cout, float* gyp) {
  const int64_t Cout8 = (Cout + kOutBlock - 1) / kOutBlock * kOutBlock;
  std::fill(gyp, gyp + Cout8 * g.OH * p.OWr, 0.0f);
  for (int64_t r = 0; r < Cout * g.OH; ++r)
    std::copy(gy + r * g.OW, gy + (r + 1) * g.OW, gyp + r * p.OWr);
}

}  // namespace

// Where this kernel beats the implicit GEMM: few input channels, stride 1 and kernels up to 3x3
// (lesson 04's first layer 1->32 @28: forward 47 GFLOP/s here, ~30 on the implicit GEMM; weight
// gradient 36 against 19 for im2col; one thread, bench_all --only conv). ResNet-18's 7x7/2 stem
// (3->64 @224) ran at 47 (forward) and 32 (weight gradient) here against 100 and 89 for im2col +
// the ladder GEMM, and the implicit GEMM does better still: larger and strided kernels stay there.
bool conv2d_small_cin(const Conv2dGeom& g) {
  return g.C <= 3 && g.SH == 1 && g.SW == 1 && g.KH <= 3 && g.KW <= 3;
}

void conv2d_small_cin_forward(const float* x, const float* w, const float* bias, float* y,
                              const Conv2dGeom& g, int64_t Cout) {
  const Padded p(g);
  const std::vector<float> wb = block_weights(w, Cout, g.C * g.KH * g.KW);
  const ForwardImageFn forward_fn = forward_image_fn();
  parallel_for(g.N, 1, [&](int64_t b, int64_t e) {
    std::vector<float> xp(static_cast<size_t>(g.C * p.plane()));
    for (int64_t n = b; n < e; ++n) {
      pad_image(x + n * g.C * g.H * g.W, g, p, xp.data());
      forward_fn(xp.data(), wb.data(), bias, y + n * Cout * g.OH * g.OW, g, p, Cout);
    }
  });
}

void conv2d_small_cin_backward_weight(const float* x, const float* gy, float* gw,
                                      const Conv2dGeom& g, int64_t Cout) {
  const Padded p(g);
  const int64_t CK = g.C * g.KH * g.KW, blocks = (g.N + kImagesPerBlock - 1) / kImagesPerBlock;
  const int64_t Cout8 = (Cout + kOutBlock - 1) / kOutBlock * kOutBlock;
  const int64_t part_size = Cout8 * CK * kLanes;  // [Cout/8][CK][8][kLanes]
  std::vector<float> parts(static_cast<size_t>(std::max<int64_t>(blocks, 1) * part_size), 0.0f);
  const WgradImageFn wgrad_fn = wgrad_image_fn();
  parallel_for(blocks, 1, [&](int64_t b, int64_t e) {
    std::vector<float> xp(static_cast<size_t>(g.C * p.plane())),
        gyp(static_cast<size_t>(Cout8 * g.OH * p.OWr));
    for (int64_t blk = b; blk < e; ++blk)
      for (int64_t n = blk * kImagesPerBlock; n < std::min(g.N, (blk + 1) * kImagesPerBlock); ++n) {
        pad_image(x + n * g.C * g.H * g.W, g, p, xp.data());
        pad_gy(gy + n * Cout * g.OH * g.OW, g, p, Cout, gyp.data());
        wgrad_fn(xp.data(), gyp.data(), parts.data() + blk * part_size, g, p, Cout);
      }
  });
  // blocks in order, then the lanes of each weight in order: a fixed summation tree
  for (int64_t o = 0; o < Cout; ++o)
    for (int64_t t = 0; t < CK; ++t) {
      const int64_t at = (((o / kOutBlock) * CK + t) * kOutBlock + o % kOutBlock) * kLanes;
      float s = 0.0f;
      for (int64_t l = 0; l < kLanes; ++l) {
        float lane = 0.0f;
        for (int64_t blk = 0; blk < blocks; ++blk) lane += parts[blk * part_size + at + l];
        s += lane;
      }
      gw[o * CK + t] = s;
    }
}

}  // namespace mmgrad::cpu
