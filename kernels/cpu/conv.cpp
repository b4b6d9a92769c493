// Convolution helpers (im2col / col2im) and pooling, NCHW.
//
// im2col lays every receptive field out as a column, so a convolution becomes one GEMM:
//   out[n] (Cout x OH*OW) = W (Cout x C*KH*KW) @ cols[n] (C*KH*KW x OH*OW).
// col2im is its adjoint: it adds each column entry back onto the pixel it was read from, which
// is exactly the gradient of im2col. The index math is shared with CUDA (kernels/index_math.h).
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/kernels/cpu/parallel.h"
#include "mmgrad/kernels/index_math.h"

namespace mmgrad::cpu {

namespace {

// For kernel column kw, the output columns ow whose input column iw = ow*SW - PW + kw*DW lies
// inside the image form one range [lo, hi); outside it im2col reads padding. Computing the range
// once per row turns the inner loop into a branch-free (for stride 1, contiguous) copy.
struct ColRange {
  int64_t lo, hi, offset;  // iw = ow * SW + offset
};
ColRange valid_cols(const Conv2dGeom& g, int64_t kw) {
  const int64_t off = kw * g.DW - g.PW;
  int64_t lo = off >= 0 ? 0 : (-off + g.SW - 1) / g.SW;             // first ow with iw >= 0
  int64_t hi = g.W - 1 - off < 0 ? 0 : (g.W - 1 - off) / g.SW + 1;  // past the last iw < W
  lo = std::min(lo, g.OW);
  hi = std::max(lo, std::min(hi, g.OW));
  return {lo, hi, off};
}

// dst[2 ow] += src[ow] for ow in [lo, hi): col2im's row at stride 2 (ResNet's downsampling convs
// and its stem), float32. Element by element that is a strided load, add and store per number;
// with AVX-512, 16 numbers of src are spread onto the even lanes of two vectors of dst (a
// permute) and added there (a masked add leaves the odd lanes, other pixels, untouched). Each
// pixel gets the same single addition as in the scalar loop, so the same bits.
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx512f"))) void col2im_row_stride2_avx512(float* dst, const float* src,
                                                                  int64_t lo, int64_t hi) {
  // lane 2i of the result takes src lane i (of the low / high 8)
  const __m512i spread_lo = _mm512_setr_epi32(0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0);
  const __m512i spread_hi = _mm512_setr_epi32(8, 0, 9, 0, 10, 0, 11, 0, 12, 0, 13, 0, 14, 0, 15, 0);
  constexpr __mmask16 even = 0x5555;
  int64_t ow = lo;
  for (; ow + 16 <= hi; ow += 16) {
    const __m512 s = _mm512_loadu_ps(src + ow);
    float* d = dst + 2 * ow;
    // the last pixel touched is d[30]: the second vector's load stops there (lane 15 masked off)
    const __m512 d0 = _mm512_loadu_ps(d), d1 = _mm512_maskz_loadu_ps(0x7FFF, d + 16);
    _mm512_storeu_ps(
        d, _mm512_mask_add_ps(d0, even, d0, _mm512_maskz_permutexvar_ps(even, spread_lo, s)));
    _mm512_mask_storeu_ps(
        d + 16, 0x7FFF,
        _mm512_mask_add_ps(d1, even, d1, _mm512_maskz_permutexvar_ps(even, spread_hi, s)));
  }
  for (; ow < hi; ++ow) dst[2 * ow] += src[ow];
}
#endif

void col2im_row_stride2(float* dst, const float* src, int64_t lo, int64_t hi) {
#if defined(__x86_64__) || defined(__i386__)
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  if (avx512) {
    col2im_row_stride2_avx512(dst, src, lo, hi);
    return;
  }
#endif
  for (int64_t ow = lo; ow < hi; ++ow) dst[2 * ow] += src[ow];
}

}  // namespace

void CpuBackend::im2col(DType dtype, const void* xv, void* colsv, const Conv2dGeom& g) {
  dispatch_floating(dtype, "im2col", [&](auto t) {
    using T = decltype(t);
    const T* x = static_cast<const T*>(xv);
    T* cols = static_cast<T*>(colsv);
    const int64_t rows = g.C * g.KH * g.KW, P = g.OH * g.OW;
    // one task per (image, column-matrix row)
    parallel_for(g.N * rows, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(P, 1)),
                 [&](int64_t b, int64_t e) {
                   for (int64_t task = b; task < e; ++task) {
                     int64_t n = task / rows, r = task % rows;
                     int64_t c = r / (g.KH * g.KW), kh = (r / g.KW) % g.KH, kw = r % g.KW;
                     const T* xc = x + (n * g.C + c) * g.H * g.W;
                     T* out = cols + (n * rows + r) * P;
                     const ColRange cr = valid_cols(g, kw);
                     for (int64_t oh = 0; oh < g.OH; ++oh) {
                       T* o = out + oh * g.OW;
                       const int64_t ih = oh * g.SH - g.PH + kh * g.DH;
                       if (ih < 0 || ih >= g.H) {
                         std::fill(o, o + g.OW, T(0));
                         continue;
                       }
                       const T* xr = xc + ih * g.W + cr.offset;
                       std::fill(o, o + cr.lo, T(0));
                       if (g.SW == 1) {
                         std::copy(xr + cr.lo, xr + cr.hi, o + cr.lo);
                       } else {
                         for (int64_t ow = cr.lo; ow < cr.hi; ++ow) o[ow] = xr[ow * g.SW];
                       }
                       std::fill(o + cr.hi, o + g.OW, T(0));
                     }
                   }
                 });
  });
}

void CpuBackend::col2im(DType dtype, const void* colsv, void* gxv, const Conv2dGeom& g) {
  dispatch_floating(dtype, "col2im", [&](auto t) {
    using T = decltype(t);
    const T* cols = static_cast<const T*>(colsv);
    T* gx = static_cast<T*>(gxv);
    const int64_t rows = g.C * g.KH * g.KW, P = g.OH * g.OW;
    // one task per (image, channel): all writes of a task go to its own channel plane
    parallel_for(g.N * g.C, 1, [&](int64_t b, int64_t e) {
      for (int64_t task = b; task < e; ++task) {
        int64_t n = task / g.C, c = task % g.C;
        T* plane = gx + (n * g.C + c) * g.H * g.W;
        for (int64_t kh = 0; kh < g.KH; ++kh)
          for (int64_t kw = 0; kw < g.KW; ++kw) {
            const T* col = cols + (n * rows + (c * g.KH + kh) * g.KW + kw) * P;
            const ColRange cr = valid_cols(g, kw);
            for (int64_t oh = 0; oh < g.OH; ++oh) {
              const int64_t ih = oh * g.SH - g.PH + kh * g.DH;
              if (ih < 0 || ih >= g.H) continue;  // this row of the column read padding
              T* dst = plane + ih * g.W + cr.offset;
              const T* src = col + oh * g.OW;
              if (g.SW == 1) {
#pragma omp simd
                for (int64_t ow = cr.lo; ow < cr.hi; ++ow) dst[ow] += src[ow];
              } else if (std::is_same_v<T, float> && g.SW == 2) {
                col2im_row_stride2(reinterpret_cast<float*>(dst),
                                   reinterpret_cast<const float*>(src), cr.lo, cr.hi);
              } else {
                for (int64_t ow = cr.lo; ow < cr.hi; ++ow) dst[ow * g.SW] += src[ow];
              }
            }
          }
      }
    });
  });
}

namespace {

// The float32 2x2/2 unpadded pool (every CNN's "halve the map") has its own dense kernels,
// kernels/cpu/max_pool2x2.cpp, whose record is one byte per window instead of an int64 index.
bool is_max_pool2x2(DType dtype, const Conv2dGeom& g) {
  return dtype == DType::Float32 && g.KH == 2 && g.KW == 2 && g.SH == 2 && g.SW == 2 && g.PH == 0 &&
         g.PW == 0 && g.DH == 1 && g.DW == 1;
}

// Kernel taps [lo, hi) with 0 <= o * S - P + k * D < n at output position o.
std::pair<int64_t, int64_t> taps_inside(int64_t o, int64_t S, int64_t P, int64_t D, int64_t K,
                                        int64_t n) {
  const int64_t i0 = o * S - P;
  int64_t lo = 0, hi = 0;
  while (lo < K && i0 + lo * D < 0) ++lo;
  hi = lo;
  while (hi < K && i0 + hi * D < n) ++hi;
  return {lo, hi};
}

// PyTorch's scan step: a larger value or a NaN takes over (so ties keep the first maximum and a
// window holding NaN ends on its last NaN). Written without branches or short-circuits, so the
// loops below vectorise over output columns.
template <class T>
inline T scan_max(T m, T v) {
  return (static_cast<int>(v > m) | static_cast<int>(v != v)) ? v : m;
}

// max_pool2d values only, for a forward no graph will differentiate (inference): no winner is
// recorded, so one pass suffices. Each window is scanned in (kh, kw) order from -inf, which
// gives the bits of the recording kernels (which start from the window's first pixel: -inf is
// overtaken by anything larger or NaN, and a first pixel of -inf leaves -inf). The loops run
// tap by tap with the output column innermost: for every output row, each in-image kernel row
// and column of taps is one strided sweep over the row's windows (vectorised), the windows at
// the left and right edges, whose taps leave the image, checked one by one.
template <class T>
void max_pool_values(const T* x, T* y, const Conv2dGeom& g) {
  const int64_t W = g.W, HW = g.H * g.W, OH = g.OH, OW = g.OW, SW = g.SW, PW = g.PW, DW = g.DW;
  // output columns [c0, c1) whose every tap lies inside the image
  int64_t c0 = 0, c1 = OW;
  while (c0 < OW && c0 * SW - PW < 0) ++c0;
  while (c1 > c0 && (c1 - 1) * SW - PW + (g.KW - 1) * DW >= W) --c1;
  parallel_for(g.N * g.C, 1, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      const T* xc = x + p * HW;
      for (int64_t oh = 0; oh < OH; ++oh) {
        T* yr = y + (p * OH + oh) * OW;
        std::fill(yr, yr + OW, -std::numeric_limits<T>::infinity());
        const auto [h0, h1] = taps_inside(oh, g.SH, g.PH, g.DH, g.KH, g.H);
        for (int64_t kh = h0; kh < h1; ++kh) {
          const T* row = xc + (oh * g.SH - g.PH + kh * g.DH) * W;
          for (int64_t kw = 0; kw < g.KW; ++kw) {
            const T* tap = row - PW + kw * DW;  // tap[ow * SW] is tap kw of window ow
            for (int64_t ow = c0; ow < c1; ++ow) yr[ow] = scan_max(yr[ow], tap[ow * SW]);
            auto edge = [&](int64_t ow) {
              const int64_t iw = ow * SW - PW + kw * DW;
              if (iw >= 0 && iw < W) yr[ow] = scan_max(yr[ow], row[iw]);
            };
            for (int64_t ow = 0; ow < c0; ++ow) edge(ow);
            for (int64_t ow = c1; ow < OW; ++ow) edge(ow);
          }
        }
      }
    }
  });
}

}  // namespace

int64_t CpuBackend::max_pool2d_record_bytes(DType dtype, const Conv2dGeom& g) {
  const int64_t windows = g.N * g.C * g.OH * g.OW;
  if (is_max_pool2x2(dtype, g)) return windows + kWhichSlack;
  return windows * static_cast<int64_t>(sizeof(int64_t));
}

void CpuBackend::max_pool2d_forward(DType dtype, const void* xv, void* yv, void* record,
                                    const Conv2dGeom& geom) {
  if (is_max_pool2x2(dtype, geom)) {
    max_pool2x2_forward(static_cast<const float*>(xv), static_cast<float*>(yv),
                        static_cast<uint8_t*>(record), geom);
    return;
  }
  if (!record) {
    dispatch_floating(dtype, "max_pool2d", [&](auto t) {
      using T = decltype(t);
      max_pool_values(static_cast<const T*>(xv), static_cast<T*>(yv), geom);
    });
    return;
  }
  int64_t* argmax = static_cast<int64_t*>(record);
  // A local copy: stores through argmax (int64) cannot alias it, so it stays in registers.
  const Conv2dGeom g = geom;
  dispatch_floating(dtype, "max_pool2d", [&](auto t) {
    using T = decltype(t);
    const T* x = static_cast<const T*>(xv);
    T* y = static_cast<T*>(yv);
    if (g.PH == 0 && g.PW == 0) {
      // No padding (the usual 2x2, stride 2 pool): every window lies inside the image and is
      // read by direct offsets. The general loop below decides "v > best" with a branch per
      // element, a coin flip on real activations that the branch predictor loses; here the
      // maximum is a chain of max instructions (v > m ? v : m compiles to one), and the argmax is
      // found in a second, branch-free pass as the first element equal to it. Windows holding a
      // NaN (rare) take the exact general rule. Same result as the loop below: the first maximum
      // wins ties, and a window holding NaN gives its last NaN (PyTorch's rule). Measured on
      // [256, 32, 28, 28] float32, one thread: 45 ms -> 8 ms.
      // (The sizes are copied into locals: the int64 argmax stores could otherwise alias them.)
      const int64_t W = g.W, HW = g.H * g.W, OH = g.OH, OW = g.OW, KH = g.KH, KW = g.KW;
      const int64_t SH = g.SH, SW = g.SW;
      parallel_for(g.N * g.C, 1, [=](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p) {
          const T* xc = x + p * HW;
          T* yp = y + p * OH * OW;
          int64_t* ap = argmax + p * OH * OW;
          for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow) {
              const int64_t first = oh * SH * W + ow * SW;
              T m = xc[first];
              bool nan = false;
              for (int64_t kh = 0; kh < KH; ++kh)
                for (int64_t kw = 0; kw < KW; ++kw) {
                  const T v = xc[first + kh * W + kw];
                  m = v > m ? v : m;
                  nan |= v != v;
                }
              int64_t arg = first;
              if (!nan) {
                // the first window element equal to the max: scan backwards, keep the last hit
                for (int64_t kh = KH - 1; kh >= 0; --kh)
                  for (int64_t kw = KW - 1; kw >= 0; --kw) {
                    const int64_t src = first + kh * W + kw;
                    arg ^= (arg ^ src) & -static_cast<int64_t>(xc[src] == m);
                  }
              } else {
                // the last NaN of the window, as PyTorch's scan (v > max || isnan(v)) finds it
                for (int64_t kh = 0; kh < KH; ++kh)
                  for (int64_t kw = 0; kw < KW; ++kw) {
                    const int64_t src = first + kh * W + kw;
                    if (xc[src] != xc[src]) arg = src;
                  }
              }
              yp[oh * OW + ow] = xc[arg];
              ap[oh * OW + ow] = arg;
            }
        }
      });
      return;
    }
    // With padding (ResNet's 3x3/2 stem pool, padding 1): the same two passes over the part of
    // each window inside the image, its rows [h0, h1) and columns [w0, w1) of the kernel found
    // once per output row and column (padding never wins, so it is left out). PyTorch's rule as
    // above: over the window in order, a larger value or a NaN takes over, so the first maximum
    // wins ties and a window holding NaN gives its last NaN; a window with no pixel inside the
    // image gives -inf and index -1. The loop this replaces decided "v > best" with a branch per
    // element and checked every tap's bounds: ResNet-18's pool took ~15% of its batch-4
    // inference (now ~1/4 of that; the same outputs and indices, hashed against it).
    {
      const int64_t W = g.W, HW = g.H * g.W, OH = g.OH, OW = g.OW, DH = g.DH, DW = g.DW;
      std::vector<std::pair<int64_t, int64_t>> kh_of(static_cast<size_t>(OH)),
          kw_of(static_cast<size_t>(OW));
      for (int64_t oh = 0; oh < OH; ++oh)
        kh_of[static_cast<size_t>(oh)] = taps_inside(oh, g.SH, g.PH, DH, g.KH, g.H);
      for (int64_t ow = 0; ow < OW; ++ow)
        kw_of[static_cast<size_t>(ow)] = taps_inside(ow, g.SW, g.PW, DW, g.KW, g.W);
      const int64_t SH = g.SH, SW = g.SW, PH = g.PH, PW = g.PW;
      parallel_for(g.N * g.C, 1, [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p) {
          const T* xc = x + p * HW;
          T* yp = y + p * OH * OW;
          int64_t* ap = argmax + p * OH * OW;
          for (int64_t oh = 0; oh < OH; ++oh) {
            const auto [h0, h1] = kh_of[static_cast<size_t>(oh)];
            const int64_t ih0 = oh * SH - PH;
            for (int64_t ow = 0; ow < OW; ++ow) {
              const auto [w0, w1] = kw_of[static_cast<size_t>(ow)];
              const int64_t iw0 = ow * SW - PW;
              int64_t arg = -1;
              T best = -std::numeric_limits<T>::infinity();
              if (h0 < h1 && w0 < w1) {
                arg = (ih0 + h0 * DH) * W + iw0 + w0 * DW;  // the window's first pixel
                T m = xc[arg];
                bool nan = false;
                for (int64_t kh = h0; kh < h1; ++kh)
                  for (int64_t kw = w0; kw < w1; ++kw) {
                    const T v = xc[(ih0 + kh * DH) * W + iw0 + kw * DW];
                    m = v > m ? v : m;
                    nan |= v != v;
                  }
                if (!nan) {
                  // the first window pixel equal to the max: scan backwards, keep the last hit
                  for (int64_t kh = h1 - 1; kh >= h0; --kh)
                    for (int64_t kw = w1 - 1; kw >= w0; --kw) {
                      const int64_t src = (ih0 + kh * DH) * W + iw0 + kw * DW;
                      arg ^= (arg ^ src) & -static_cast<int64_t>(xc[src] == m);
                    }
                } else {
                  // the last NaN of the window (PyTorch's scan: v > max || isnan(v) takes over)
                  for (int64_t kh = h0; kh < h1; ++kh)
                    for (int64_t kw = w0; kw < w1; ++kw) {
                      const int64_t src = (ih0 + kh * DH) * W + iw0 + kw * DW;
                      if (xc[src] != xc[src]) arg = src;
                    }
                }
                best = xc[arg];
              }
              yp[oh * OW + ow] = best;
              ap[oh * OW + ow] = arg;
            }
          }
        }
      });
    }
  });
}

void CpuBackend::max_pool2d_backward(DType dtype, const void* gyv, const void* record, void* gxv,
                                     const Conv2dGeom& g) {
  if (is_max_pool2x2(dtype, g)) {
    max_pool2x2_backward(static_cast<const float*>(gyv), static_cast<const uint8_t*>(record),
                         static_cast<float*>(gxv), g);
    return;
  }
  const int64_t* argmax = static_cast<const int64_t*>(record);
  dispatch_floating(dtype, "max_pool2d_backward", [&](auto t) {
    using T = decltype(t);
    const T* gy = static_cast<const T*>(gyv);
    T* gx = static_cast<T*>(gxv);
    parallel_for(g.N * g.C, 1, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        // zero this plane, then scatter (0 + gy: a gy of -0 lands as +0, as it always has)
        T* gxc = gx + p * g.H * g.W;
        std::fill(gxc, gxc + g.H * g.W, T(0));
        for (int64_t o = p * g.OH * g.OW; o < (p + 1) * g.OH * g.OW; ++o)
          if (argmax[o] >= 0) gxc[argmax[o]] += gy[o];
      }
    });
  });
}

void CpuBackend::avg_pool2d_forward(DType dtype, const void* xv, void* yv, const Conv2dGeom& g) {
  dispatch_floating(dtype, "avg_pool2d", [&](auto t) {
    using T = decltype(t);
    const T* x = static_cast<const T*>(xv);
    T* y = static_cast<T*>(yv);
    const T inv = T(1) / static_cast<T>(g.KH * g.KW);
    parallel_for(g.N * g.C, 1, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        const T* xc = x + p * g.H * g.W;
        for (int64_t oh = 0; oh < g.OH; ++oh)
          for (int64_t ow = 0; ow < g.OW; ++ow) {
            T s = 0;
            for (int64_t kh = 0; kh < g.KH; ++kh)
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                int64_t src = index::im2col_source(g, kh, kw, oh, ow);
                if (src >= 0) s += xc[src];
              }
            y[(p * g.OH + oh) * g.OW + ow] = s * inv;
          }
      }
    });
  });
}

void CpuBackend::avg_pool2d_backward(DType dtype, const void* gyv, void* gxv, const Conv2dGeom& g) {
  dispatch_floating(dtype, "avg_pool2d_backward", [&](auto t) {
    using T = decltype(t);
    const T* gy = static_cast<const T*>(gyv);
    T* gx = static_cast<T*>(gxv);
    const T inv = T(1) / static_cast<T>(g.KH * g.KW);
    parallel_for(g.N * g.C, 1, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        T* gxc = gx + p * g.H * g.W;
        for (int64_t oh = 0; oh < g.OH; ++oh)
          for (int64_t ow = 0; ow < g.OW; ++ow) {
            T v = gy[(p * g.OH + oh) * g.OW + ow] * inv;
            for (int64_t kh = 0; kh < g.KH; ++kh)
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                int64_t dst = index::im2col_source(g, kh, kw, oh, ow);
                if (dst >= 0) gxc[dst] += v;
              }
          }
      }
    });
  });
}

void CpuBackend::adaptive_avg_pool2d_forward(DType dtype, const void* xv, void* yv,
                                             const Conv2dGeom& g) {
  dispatch_floating(dtype, "adaptive_avg_pool2d", [&](auto t) {
    using T = decltype(t);
    const T* x = static_cast<const T*>(xv);
    T* y = static_cast<T*>(yv);
    parallel_for(g.N * g.C, 1, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        const T* xc = x + p * g.H * g.W;
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          int64_t h0 = index::adaptive_start(oh, g.H, g.OH),
                  h1 = index::adaptive_end(oh, g.H, g.OH);
          for (int64_t ow = 0; ow < g.OW; ++ow) {
            int64_t w0 = index::adaptive_start(ow, g.W, g.OW),
                    w1 = index::adaptive_end(ow, g.W, g.OW);
            T s = 0;
            for (int64_t h = h0; h < h1; ++h)
              for (int64_t w = w0; w < w1; ++w) s += xc[h * g.W + w];
            y[(p * g.OH + oh) * g.OW + ow] = s / static_cast<T>((h1 - h0) * (w1 - w0));
          }
        }
      }
    });
  });
}

void CpuBackend::adaptive_avg_pool2d_backward(DType dtype, const void* gyv, void* gxv,
                                              const Conv2dGeom& g) {
  dispatch_floating(dtype, "adaptive_avg_pool2d_backward", [&](auto t) {
    using T = decltype(t);
    const T* gy = static_cast<const T*>(gyv);
    T* gx = static_cast<T*>(gxv);
    parallel_for(g.N * g.C, 1, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        T* gxc = gx + p * g.H * g.W;
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          int64_t h0 = index::adaptive_start(oh, g.H, g.OH),
                  h1 = index::adaptive_end(oh, g.H, g.OH);
          for (int64_t ow = 0; ow < g.OW; ++ow) {
            int64_t w0 = index::adaptive_start(ow, g.W, g.OW),
                    w1 = index::adaptive_end(ow, g.W, g.OW);
            T v = gy[(p * g.OH + oh) * g.OW + ow] / static_cast<T>((h1 - h0) * (w1 - w0));
            for (int64_t h = h0; h < h1; ++h)
              for (int64_t w = w0; w < w1; ++w) gxc[h * g.W + w] += v;
          }
        }
      }
    });
  });
}

}  // namespace mmgrad::cpu
