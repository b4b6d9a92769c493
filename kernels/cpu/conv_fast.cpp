// float32 conv2d at GEMM speed: the convolution's three products run on the GEMM ladder's SIMD
// micro-kernel (kernels/cpu/gemm_ladder.h, rung 5) instead of im2col + Backend::gemm.
//
// The forward is the GEMM of ops/conv.cpp, per image n:
//
//   y[n] (Cout x P) = W (Cout x CK) @ cols[n] (CK x P)        CK = C*KH*KW, P = OH*OW
//   cols[n](k, p) = x[n, c, oh*SH - PH + kh*DH, ow*SW - PW + kw*DW]   (0 outside the image)
//                   with k = (c, kh, kw), p = (oh, ow)
//
// 1. Implicit GEMM (the forward, and the input gradient at stride 1). A packed GEMM copies B into
//    panels anyway (kc rows x NR columns, k-major, see gemm_ladder_packed.cpp). Here the packing
//    routine reads those panels straight from the image with the formula above, so the column
//    matrix, C*KH*KW times the image, is never written to memory: each number is copied once,
//    into a panel that stays in L1/L2 while the micro-kernel uses it Cout times. With stride 1 a
//    row of a panel is a few contiguous runs of one image row (one run when the panel lies in
//    one output row): with AVX-512 a masked load and a store per 16 numbers, the mask putting
//    zeros where the window hangs over the padding, and all the panels of a task packed k row
//    by k row (pack_b_block_avx512 says why). With 64 output channels each packed number feeds
//    only 64 multiply-adds (2 cycles of the FMA units), so the copy must cost well under that.
//    W is packed once per call (it is small next to the work: Cout*CK numbers for N*P*Cout*CK
//    multiply-adds, but not free at 512 channels on 7x7 maps: 8 x 8 transposes in registers),
//    every task reads the same packed W. Threads: column blocks handed out dynamically; few
//    columns (7x7 and 14x14 maps at batch 4): each thread a range of W's rows, no barriers.
//
// 2. The input gradient is a convolution too. At stride 1,
//      dx[n, c, i, j] = sum_{o, kh, kw} gy[n, o, i + PH - kh*DH, j + PW - kw*DW] W[o, c, kh, kw]
//    and with the kernel flipped (kh' = KH-1-kh) this is conv2d(gy, W') with
//      W'[c, o, kh', kw'] = W[o, c, KH-1-kh', KW-1-kw'],  padding DH*(KH-1) - PH,  dilation DH,
//    whose output is exactly H x W: the transposed convolution runs through the same implicit
//    GEMM, and no col2im (scatter-add) pass is needed. (A padding larger than the dilated kernel
//    makes that padding negative, which the packer handles: it only asks whether a pixel is
//    inside the image.) With stride > 1 the input gradient is the GEMM dcols = W^T @ gy[n] on the
//    ladder, then col2im (kernels/cpu/conv.cpp) adds the columns back onto the image.
//
// 3. The weight gradient dW (Cout x CK) = sum_n gy[n] (Cout x P) @ cols[n]^T sums over images and
//    pixels: the GEMM's k dimension is (n, p). Its B operand is cols^T, whose contiguous direction
//    (p) is the one the panel needs transposed. The images go in blocks of nb (the GEMM's k =
//    nb*P per block, blocks added in order). With AVX-512 and C >= 8 (wgrad_block_nhwc) the
//    block's images are copied channels last and zero-padded, and k is ordered (kh, kw, c): a
//    panel row is then one or two contiguous runs of that copy (no transposes), and the result,
//    in (kh, kw, c) column order, is reordered at the end. With fewer channels on long rows
//    (wgrad_block_direct) each panel is built by im2col of its 14 or 32 rows for one k block
//    into an L1 scratch, then 8 x 8 register transposes. Either way the loops and k blocks are
//    the ladder's, so the sums are those of the ladder GEMM on the materialised matrix.
//    Without AVX-512, and where neither pays (first layers: conv2d_fast_backward_weight says
//    why), the columns of a block are materialised as one [CK, nb*P] matrix (a few MiB) and
//    one ladder GEMM covers the block.
//
// 4. Routing, by the shape only (never by timing or the thread count, so the bits of a shape are
//    fixed): where the implicit GEMM measured slower than materialising the columns and running
//    the ladder's own GEMM, that is done instead (the same micro-kernel either way).
//      forward         stride > 1 and C >= MR (14): im2col + ladder GEMM (ResNet's 3x3/2 and
//                      1x1/2 layers); otherwise, the stem (C = 3) included, the implicit GEMM.
//      input gradient  stride 1 and C fills >= 90% of its MR-row tiles (C = 14, 28, 42, 56, 64,
//                      96, 128, ...): the transposed implicit GEMM; otherwise (strided, C < 14,
//                      C = 16, 32, 48, ...) W^T @ gy on the ladder + col2im.
//      weight gradient C >= 16, or C >= 8 on rows under 56 pixels (N P >= 256, not a strided
//                      1x1): the channels-last panels of 3.; else rows of >= 56 output pixels
//                      and C KH KW >= 4 MR: the direct panels of 3.; otherwise the materialised
//                      column blocks.
//    Before all of these, first layers (C <= 3, stride 1, kernels up to 3x3) take the direct
//    convolution of conv_small_cin.cpp for the forward and the weight gradient.
//    conv2d_fast_forward and conv2d_fast_backward_input give the measurements behind each rule.
//
// Determinism: every output number is the sum of its k terms in one order fixed by the shape
// (k blocks of KC in order, k in order within a block; for dW the image blocks in order), whoever
// computes it, so the bits do not depend on the thread count or on which thread ran which task.
// The order differs from the im2col + Eigen path, so the two agree to rounding, not to the bit.
//
// float64 keeps the im2col + Backend::gemm path (it is the gradcheck dtype; speed is not its job).
#include <omp.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/kernels/cpu/gemm_ladder.h"
#include "mmgrad/kernels/cpu/gemm_ladder_packed.h"
#include "mmgrad/kernels/cpu/parallel.h"

namespace mmgrad::cpu {

namespace {

using ladder::PackBuffer;

// On by default. This path sums in another order than im2col + GEMM, so every float32 conv
// result differs in its low bits between the two. The environment variable MMGRAD_CONV_FAST=0
// starts a program with it off (to compare a whole lesson on the two paths without rebuilding
// it); cpu::set_conv2d_fast_path switches it at run time.
std::atomic<bool> g_fast_path{[] {
  const char* e = std::getenv("MMGRAD_CONV_FAST");
  return e == nullptr || e[0] != '0';
}()};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The share of a micro-kernel's tiles that n rows (or columns) fill, cut into tiles of t: n = 64
// in 14-row tiles is 64 / 70 = 0.91, n = 32 is 32 / 42 = 0.76.
double tile_fill(int64_t n, int64_t t) {
  return static_cast<double>(n) / static_cast<double>(ceil_div(n, t) * t);
}

// Depth of one packed panel (as the ladder's Blocking::KC: a kc x 32 panel of B is 32 KiB, L1).
constexpr int64_t kKC = 256;
// Columns (output pixels) per task: a kc x 512 block of B panels is 512 KiB (L2).
constexpr int64_t kNC = 512;
// Below this many multiply-adds a call runs on one thread (starting the team costs more).
constexpr int64_t kThreadedMacs = int64_t{1} << 20;

// Per-thread scratch buffers (kernels/cpu/gemm_ladder_packed.h), reused by every call: steady
// state allocates nothing. Slots 0 and 1 are the ladder GEMM's own packing buffers, which the
// conv calls into while these are live.
PackBuffer& panel_buffer() { return ladder::thread_buffer<2>(); }
PackBuffer& stage_buffer() { return ladder::thread_buffer<3>(); }
PackBuffer& wt_buffer() { return ladder::thread_buffer<5>(); }
PackBuffer& weight_buffer() { return ladder::thread_buffer<6>(); }
PackBuffer& cols_buffer() { return ladder::thread_buffer<7>(); }
PackBuffer& gy_buffer() { return ladder::thread_buffer<8>(); }

const ladder::MicroKernel& micro_kernel() { return ladder::microkernel_for(ladder::best_isa()); }

// Pack A (M x K, element a(i, k)) into the micro-kernel's order, all k blocks at once: block
// pc (k in [pc, pc + kc)) starts at pc * Mp, sliver s of it at + s * MR * kc, element (i, k) of
// the sliver at [k * MR + i]; rows past M are zeros. The slivers are packed in parallel (a
// 512 x 4608 weight is 2.4M numbers: a few ms on one thread, next to ~6 ms of multiply-adds for
// ResNet's 7x7 maps at batch 4). for_each_a_sliver runs pack_sliver(pc, kc, s, d) for every k
// block pc (kc deep) and sliver s, in parallel; d is where that sliver goes.
template <class P>
void for_each_a_sliver(int MR, int64_t M, int64_t K, float* dst, P pack_sliver) {
  const int64_t Mp = ceil_div(M, MR) * MR, slivers = Mp / MR, kblocks = ceil_div(K, kKC);
  parallel_for(kblocks * slivers, std::max<int64_t>(1, kElementwiseGrain / (MR * kKC)),
               [&](int64_t b, int64_t e) {
                 for (int64_t t = b; t < e; ++t) {
                   const int64_t pc = (t / slivers) * kKC, s = t % slivers;
                   const int64_t kc = std::min(kKC, K - pc);
                   pack_sliver(pc, kc, s, dst + pc * Mp + s * MR * kc);
                 }
               });
}

// Element by element, a(i, k) for any layout.
template <class F>
void pack_a_all(int MR, int64_t M, int64_t K, F a, float* dst) {
  for_each_a_sliver(MR, M, K, dst, [&](int64_t pc, int64_t kc, int64_t s, float* d) {
    for (int64_t i = 0; i < MR; ++i) {
      const int64_t row = s * MR + i;
      if (row >= M) {
        for (int64_t k = 0; k < kc; ++k) d[k * MR + i] = 0.0f;
      } else {
        for (int64_t k = 0; k < kc; ++k) d[k * MR + i] = a(row, pc + k);
      }
    }
  });
}

// The same packing for a row-major A (row i at A + i * lda, contiguous along k): a sliver's rows,
// 8 at a time, are loaded as 8 vectors of 8 consecutive k, transposed in registers and stored as
// 8 vectors of 8 rows (as the ladder's pack_a). Element by element, the store of each number
// went to its own place MR floats apart, ~1 cycle per number: packing ResNet's 512 x 4608 weight
// cost ~20% of that layer's forward at batch 4. A copy: the same numbers.
// The 8 x 8 register transpose is the ladder's (ladder::transpose8, gemm_ladder_packed.h).
#if defined(__x86_64__) || defined(__i386__)

// One sliver: rows [row0, row0 + MR) (zeros past M), k in [k0, k0 + kc), into d[k MR + i].
__attribute__((target("avx2,avx512f,avx512vl"))) void pack_a_sliver_avx512(int MR, int64_t M,
                                                                           const float* A,
                                                                           int64_t lda,
                                                                           int64_t row0, int64_t k0,
                                                                           int64_t kc, float* d) {
  const int64_t kc8 = kc / 8 * 8;
  for (int r0 = 0; r0 < MR; r0 += 8) {
    const int rows = std::min(8, MR - r0);  // lanes of this group inside the sliver
    const int valid = static_cast<int>(std::clamp<int64_t>(M - (row0 + r0), 0, rows));
    const __mmask8 store = static_cast<__mmask8>((1u << rows) - 1u);
    const __mmask8 keep = static_cast<__mmask8>((1u << valid) - 1u);  // the rest: zeros
    if (valid == 0) {
      for (int64_t k = 0; k < kc; ++k)
        _mm256_mask_storeu_ps(d + k * MR + r0, store, _mm256_setzero_ps());
      continue;
    }
    const float* src[8];
    for (int r = 0; r < 8; ++r) src[r] = A + (row0 + r0 + std::min(r, valid - 1)) * lda + k0;
    for (int64_t k = 0; k < kc8; k += 8) {
      __m256 v[8];
      for (int r = 0; r < 8; ++r) v[r] = _mm256_loadu_ps(src[r] + k);
      ladder::transpose8(v);
      for (int c = 0; c < 8; ++c)
        _mm256_mask_storeu_ps(d + (k + c) * MR + r0, store, _mm256_maskz_mov_ps(keep, v[c]));
    }
    for (int64_t k = kc8; k < kc; ++k)
      for (int r = 0; r < rows; ++r) d[k * MR + r0 + r] = r < valid ? src[r][k] : 0.0f;
  }
}
#endif

void pack_a_rows(int MR, int64_t M, int64_t K, const float* A, int64_t lda, float* dst) {
#if defined(__x86_64__) || defined(__i386__)
  static const bool simd =
      ladder::isa_supported(ladder::Isa::Avx512) && __builtin_cpu_supports("avx512vl");
  if (simd) {
    for_each_a_sliver(MR, M, K, dst, [&](int64_t pc, int64_t kc, int64_t s, float* d) {
      pack_a_sliver_avx512(MR, M, A, lda, s * MR, pc, kc, d);
    });
    return;
  }
#endif
  pack_a_all(
      MR, M, K, [&](int64_t i, int64_t k) { return A[i * lda + k]; }, dst);
}

// W'[c][o * KHW + tap] = W[o][c][KHW - 1 - tap] (the input gradient's flipped, transposed kernel;
// see conv2d_fast_backward_input). In blocks of 16 channels, o outer: each o reads one contiguous
// stretch of W (16 x KHW numbers). With AVX-512 each reversed group of KHW <= 16 taps is one
// masked load, one permute and one masked store (element by element this copy cost ~20% of the
// 512-channel layer's input gradient). A copy: the same numbers.
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx512f"))) void flip_weight_avx512(const float* w, int64_t Cout, int64_t C,
                                                           int64_t KHW, float* wt, int64_t c0,
                                                           int64_t c1) {
  const int64_t Kt = Cout * KHW;
  const __mmask16 m = static_cast<__mmask16>((1u << KHW) - 1u);
  alignas(64) int32_t idx[16];
  for (int t = 0; t < 16; ++t) idx[t] = t < KHW ? static_cast<int32_t>(KHW - 1 - t) : 0;
  const __m512i rev = _mm512_load_si512(idx);
  for (int64_t o = 0; o < Cout; ++o)
    for (int64_t c = c0; c < c1; ++c) {
      const __m512 v = _mm512_maskz_loadu_ps(m, w + (o * C + c) * KHW);
      _mm512_mask_storeu_ps(wt + c * Kt + o * KHW, m, _mm512_maskz_permutexvar_ps(m, rev, v));
    }
}
#endif

void flip_weight(const float* w, int64_t Cout, int64_t C, int64_t KHW, float* wt) {
  const int64_t Kt = Cout * KHW;
  constexpr int64_t kCB = 16;
#if defined(__x86_64__) || defined(__i386__)
  static const bool avx512 = ladder::isa_supported(ladder::Isa::Avx512);
#else
  constexpr bool avx512 = false;
#endif
  parallel_for(ceil_div(C, kCB), std::max<int64_t>(1, kElementwiseGrain / (kCB * Kt)),
               [&](int64_t b, int64_t e) {
                 for (int64_t cb = b; cb < e; ++cb) {
                   const int64_t c0 = cb * kCB, c1 = std::min(C, c0 + kCB);
#if defined(__x86_64__) || defined(__i386__)
                   if (avx512 && KHW <= 16) {
                     flip_weight_avx512(w, Cout, C, KHW, wt, c0, c1);
                     continue;
                   }
#endif
                   for (int64_t o = 0; o < Cout; ++o)
                     for (int64_t c = c0; c < c1; ++c) {
                       const float* src = w + (o * C + c) * KHW;
                       float* dst = wt + c * Kt + o * KHW;
                       for (int64_t tap = 0; tap < KHW; ++tap) dst[tap] = src[KHW - 1 - tap];
                     }
                 }
               });
}

// dst[i] = src[2 i] for i < n: the packing of a stride-2 convolution (ResNet's stem and
// downsampling convs). Element by element that is a load and a store per number; AVX-512 does 16
// at a time: two loads of 16 consecutive floats, one permute picking the even ones.
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx512f"))) void copy_stride2_avx512(const float* src, float* dst,
                                                            int64_t n) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    // the 16th float of the second load is never used: masked off, so the load never reads
    // past src[2 (n - 1)] (the end of the image may be there)
    const __m512 lo = _mm512_loadu_ps(src + 2 * i);
    const __m512 hi = _mm512_maskz_loadu_ps(0x7FFF, src + 2 * i + 16);
    _mm512_storeu_ps(dst + i, _mm512_permutex2var_ps(lo, even, hi));
  }
  for (; i < n; ++i) dst[i] = src[2 * i];
}
#endif

void copy_stride2(const float* src, float* dst, int64_t n) {
#if defined(__x86_64__) || defined(__i386__)
  static const bool avx512 = ladder::isa_supported(ladder::Isa::Avx512);
  if (avx512 && n >= 16) {
    copy_stride2_avx512(src, dst, n);
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) dst[i] = src[2 * i];
}

// The source of an implicit GEMM's B operand: the images [C, H, W] read through the geometry g
// (kernel, stride, padding, dilation; OH x OW output pixels). Row k = (c, kh, kw); the columns
// are the output pixels of all images in a row, column j = (n, p) = (n, oh, ow) with
// j = n * P + p. Letting a panel run across images keeps the panels full when an image has few
// pixels (ResNet's 7x7 maps: P = 49), and packed A is reused by all the columns of a task.
//
// One run of a panel row: image `img`, output row oh, output columns [ow0, ow0 + len), panel
// column j0.
struct Run {
  const float* img;
  int64_t oh, ow0, len, j0;
};

// Pack the panel for rows [k0, k0 + kc) and columns [col0, col0 + cols) (cols <= NR) into dst
// (element (k, j) at dst[k * NR + j]; columns past `cols` are zeros). Image n is at
// src + n * img_stride.
void pack_b_image(const float* src, int64_t img_stride, const Conv2dGeom& g, int NR, int64_t k0,
                  int64_t kc, int64_t col0, int64_t cols, float* dst) {
  // The panel's columns split into runs along output rows; the split is the same for every k.
  const int64_t P = g.OH * g.OW;
  Run runs[64];
  int n_runs = 0;
  for (int64_t j = 0; j < cols;) {
    const int64_t col = col0 + j, n = col / P, p = col % P, oh = p / g.OW, ow = p % g.OW;
    const int64_t len = std::min(cols - j, g.OW - ow);
    runs[n_runs++] = {src + n * img_stride, oh, ow, len, j};
    j += len;
  }
  const int64_t KHW = g.KH * g.KW, HW = g.H * g.W;
  for (int64_t kk = 0; kk < kc; ++kk) {
    const int64_t k = k0 + kk, c = k / KHW, kh = (k % KHW) / g.KW, kw = k % g.KW;
    float* d = dst + kk * NR;
    // iw = ow * SW + off lies inside [0, W) for ow in [lo, hi)
    const int64_t off = kw * g.DW - g.PW;
    const int64_t lo = off >= 0 ? 0 : (-off + g.SW - 1) / g.SW;
    const int64_t hi = g.W - 1 - off < 0 ? 0 : (g.W - 1 - off) / g.SW + 1;
    for (int r = 0; r < n_runs; ++r) {
      const Run& run = runs[r];
      float* o = d + run.j0 - run.ow0;  // o[ow]: this run's output column ow
      const int64_t ih = run.oh * g.SH - g.PH + kh * g.DH, end = run.ow0 + run.len;
      if (ih < 0 || ih >= g.H) {
        std::memset(o + run.ow0, 0, static_cast<size_t>(run.len) * sizeof(float));
        continue;
      }
      const int64_t a = std::clamp(lo, run.ow0, end);
      const int64_t b = std::clamp(hi, a, end);
      for (int64_t ow = run.ow0; ow < a; ++ow) o[ow] = 0.0f;
      const float* row = run.img + c * HW + ih * g.W + off;  // row[ow * SW] is pixel iw
      if (g.SW == 1) {
        std::memcpy(o + a, row + a, static_cast<size_t>(b - a) * sizeof(float));
      } else if (g.SW == 2) {
        copy_stride2(row + 2 * a, o + a, b - a);
      } else {
        for (int64_t ow = a; ow < b; ++ow) o[ow] = row[ow * g.SW];
      }
      for (int64_t ow = b; ow < end; ++ow) o[ow] = 0.0f;
    }
    for (int64_t j = cols; j < NR; ++j) d[j] = 0.0f;
  }
}

#if defined(__x86_64__) || defined(__i386__)
// Lanes i of a 16-lane vector with lo <= i < hi (none when hi <= lo).
inline __mmask16 lane_range(int64_t lo, int64_t hi) {
  lo = std::clamp<int64_t>(lo, 0, 16);
  hi = std::clamp<int64_t>(hi, lo, 16);
  return static_cast<__mmask16>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

// The panels of columns [col0, col0 + cols) (ceil(cols / NR) slivers, sliver q at
// dst + q * kc * NR, laid out as pack_b_image's), rows kk in [kk0, kk1) of the k block
// [k0, k0 + kc), with AVX-512, for stride 1 and NR a multiple of 16 (the 14 x 32 kernel's
// panels).
//
// Two things make this copy cheap. (1) The k row is the outer loop and the slivers the inner
// one: for one k = (c, kh, kw) the block's columns read a few consecutive rows of one channel
// plane, a stretch of memory the hardware prefetcher follows, and the next two k (kw + 1) read
// the same stretch again from L1. Sliver by sliver (pack_b_image), each panel row jumped from
// plane to plane, and the packing cost ~40% of the time of a 64-channel layer. (2) Every 16
// columns of a run (a stretch of one output row inside one sliver) are one masked load and one
// store: the load's mask keeps the pixels inside the image (lanes that would read padding load
// zero and touch no memory). Measured (one thread, CPU time): the forward of ResNet-18's 3x3
// 64-channel layer went from 109 to 131 GFLOP/s with (1) and (2). A copy: the same numbers as
// pack_b_image's.
struct BlockRun {
  const float* base;  // the run's image, shifted to its first output column: base[ih W + ow - ow0]
  int64_t ih0;        // input row of kh = 0: oh SH - PH
  float* d;           // where column ow0 of the run goes in panel row 0: d[kk * NR + (ow - ow0)]
  int nv;             // vectors of 16 columns (the last one partial)
  __mmask16 store[4];
};

__attribute__((target("avx512f"))) void pack_b_block_avx512(const float* src, int64_t img_stride,
                                                            const Conv2dGeom& g, int NR, int64_t k0,
                                                            int64_t kc, int64_t col0, int64_t cols,
                                                            float* dst, int64_t kk0, int64_t kk1) {
  const int64_t P = g.OH * g.OW, slivers = ceil_div(cols, NR);
  // runs: cut at output-row (and image) boundaries and at sliver boundaries (so at most NR <= 64
  // columns: 4 vectors). Their load masks, per kernel column kw and vector v, at
  // load[(run KW + kw) 4 + v]: the lanes whose pixel iw = ow + kw DW - PW lies inside the row
  // (the others load zero and touch no memory). Computed once per call: the loop over k below
  // is then a masked load and a masked store per 16 numbers, and a row check per run.
  thread_local std::vector<BlockRun> runs;
  thread_local std::vector<__mmask16> load;
  runs.clear();
  load.clear();
  for (int64_t j = 0; j < cols;) {
    const int64_t col = col0 + j, n = col / P, p = col % P, oh = p / g.OW, ow = p % g.OW;
    const int64_t q = j / NR, jq = j % NR;
    const int64_t len = std::min({cols - j, g.OW - ow, NR - jq});
    BlockRun r{src + n * img_stride + ow,
               oh * g.SH - g.PH,
               dst + q * kc * NR + jq,
               static_cast<int>(ceil_div(len, 16)),
               {}};
    for (int v = 0; v < r.nv; ++v) r.store[v] = lane_range(0, len - 16 * v);
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const int64_t off = kw * g.DW - g.PW;  // pixel iw = ow + off
      for (int v = 0; v < 4; ++v) {
        const int64_t s = ow + 16 * v;  // output column of lane 0
        load.push_back(
            v < r.nv ? static_cast<__mmask16>(lane_range(-off - s, g.W - off - s) & r.store[v])
                     : __mmask16{0});
      }
    }
    runs.push_back(r);
    j += len;
  }
  const int64_t tail = cols - (slivers - 1) * NR;  // valid columns of the last sliver
  float* last = dst + (slivers - 1) * kc * NR;
  const __m512 zero = _mm512_setzero_ps();
  const int64_t HW = g.H * g.W, nruns = static_cast<int64_t>(runs.size());
  // k = (c, kh, kw), stepped without divisions
  const int64_t k = k0 + kk0;
  int64_t c = k / (g.KH * g.KW), kh = (k / g.KW) % g.KH, kw = k % g.KW;
  for (int64_t kk = kk0; kk < kk1; ++kk) {
    const int64_t coff = c * HW + kw * g.DW - g.PW, dh = kh * g.DH;
    for (int64_t r = 0; r < nruns; ++r) {
      const BlockRun& run = runs[static_cast<size_t>(r)];
      float* o = run.d + kk * NR;
      const int64_t ih = run.ih0 + dh;
      if (ih < 0 || ih >= g.H) {
        for (int v = 0; v < run.nv; ++v) _mm512_mask_storeu_ps(o + 16 * v, run.store[v], zero);
        continue;
      }
      // row[ow - ow0 + 16 v]: lane of vector v (read only where the pixel is inside the image)
      const float* row = run.base + coff + ih * g.W;
      const __mmask16* lm = load.data() + (r * g.KW + kw) * 4;
      if (kw == 0) {
        // the same stretch of the next channel: a new page, where the hardware prefetcher stops
        for (int v = 0; v <= run.nv; ++v)
          _mm_prefetch(reinterpret_cast<const char*>(row + HW + 16 * v), _MM_HINT_T0);
      }
      for (int v = 0; v < run.nv; ++v)
        _mm512_mask_storeu_ps(o + 16 * v, run.store[v], _mm512_maskz_loadu_ps(lm[v], row + 16 * v));
    }
    for (int64_t j = tail; j < NR; j += 16)  // zeros past the last column
      _mm512_mask_storeu_ps(last + kk * NR + j, lane_range(0, NR - j), zero);
    if (++kw == g.KW) {
      kw = 0;
      if (++kh == g.KH) kh = 0, ++c;
    }
  }
}
#endif

// The panels of columns [col0, col0 + cols) (sliver q at dst + q * kc * NR), rows kk in
// [kk0, kk1) of the k block [k0, k0 + kc): AVX-512 at stride 1 and 2 with the 14 x 32 kernel's
// panels, the portable packer sliver by sliver otherwise (the same numbers either way).
void pack_b_block(const float* src, int64_t img_stride, const Conv2dGeom& g, int NR, int64_t k0,
                  int64_t kc, int64_t col0, int64_t cols, float* dst, int64_t kk0, int64_t kk1) {
  if (kk0 >= kk1 || cols <= 0) return;
#if defined(__x86_64__) || defined(__i386__)
  static const bool avx512 = ladder::isa_supported(ladder::Isa::Avx512);
  // (At stride 2 the k-row order measured no faster than the sliver-by-sliver packer with
  // copy_stride2, ~10% slower on a 1x1/2 conv: stride 2 keeps that one.)
  if (avx512 && NR % 16 == 0 && NR <= 64 && g.SW == 1) {
    pack_b_block_avx512(src, img_stride, g, NR, k0, kc, col0, cols, dst, kk0, kk1);
    return;
  }
#endif
  for (int64_t q = 0; q * NR < cols; ++q)
    pack_b_image(src, img_stride, g, NR, k0 + kk0, kk1 - kk0, col0 + q * NR,
                 std::min<int64_t>(NR, cols - q * NR), dst + q * kc * NR + kk0 * NR);
}

// A tile whose columns lie in two or more images (no single row stride in y): computed into a
// scratch tile, then each column written to its image. Column j of the tile is global column
// col0 + j; rows [i0, i0 + m).
void run_tile_across_images(const ladder::MicroKernel& mk, int64_t kc, const float* a,
                            const float* b, float* y, int64_t M, int64_t P, int64_t i0, int64_t m,
                            int64_t col0, int64_t n, float beta) {
  alignas(64) float tile[32 * 64];
  mk.fn(kc, a, b, tile, mk.NR, 1.0f, 0.0f);
  for (int64_t j = 0; j < n; ++j) {
    const int64_t img = (col0 + j) / P, p = (col0 + j) % P;
    float* c = y + (img * M + i0) * P + p;
    for (int64_t i = 0; i < m; ++i) {
      float& v = c[i * P];
      v = beta == 0.0f ? tile[i * mk.NR + j] : tile[i * mk.NR + j] + beta * v;
    }
  }
}

// y[n] (M x P) = A (M x K, packed by pack_a_all) @ cols(img[n]) (+ bias[i] on row i), for the N
// images of `src` (image n at src + n * img_stride). g is the geometry of the source images and
// of the output (g.OH x g.OW = P); K = g.C * g.KH * g.KW.
void implicit_gemm(const float* apack, int64_t M, const float* bias, const float* src,
                   int64_t img_stride, const Conv2dGeom& g, int64_t N, float* y) {
  const ladder::MicroKernel& mk = micro_kernel();
  const int MR = mk.MR, NR = mk.NR;
  const int64_t K = g.C * g.KH * g.KW, P = g.OH * g.OW, Mp = ceil_div(M, MR) * MR, J = N * P;
  if (N <= 0 || M <= 0 || P <= 0) return;
  const int threads = omp_in_parallel() || J * M * K < kThreadedMacs ? 1 : omp_get_max_threads();
  // Bias: y starts as the bias on columns [j0, j0 + cols); every k block then adds (beta = 1).
  auto fill_bias = [&](int64_t j0, int64_t cols, int64_t i0, int64_t i1) {  // rows [i0, i1)
    for (int64_t j = j0; j < j0 + cols;) {
      const int64_t img = j / P, p = j % P, len = std::min(j0 + cols - j, P - p);
      for (int64_t i = i0; i < i1; ++i) {
        float* c = y + (img * M + i) * P + p;
        std::fill(c, c + len, bias[i]);
      }
      j += len;
    }
  };
  // Tile (q, row block ir) of one k block: sliver q of the panel (global columns from col).
  // Small maps (P < 8 NR pixels, e.g. 7x7 = 49) put most tiles across two images, and a tile
  // across images goes through a scratch tile and a scatter in every k block. There the columns
  // [j0, j0 + cols) are computed into a dense staging block instead (M x cols, every tile a plain
  // one) and scattered to the images once at the end. Same sums, same bits: the micro-kernel
  // adds its k block to what C holds either way.
  const bool staged = P < 8 * NR && N > 1;
  auto stage_in = [&](float* st, int64_t cols, int64_t i0, int64_t i1) {  // bias, rows [i0, i1)
    for (int64_t i = i0; i < i1; ++i) std::fill(st + i * cols, st + (i + 1) * cols, bias[i]);
  };
  auto stage_out = [&](const float* st, int64_t j0, int64_t cols, int64_t i0, int64_t i1) {
    for (int64_t j = j0; j < j0 + cols;) {
      const int64_t img = j / P, p = j % P, len = std::min(j0 + cols - j, P - p);
      for (int64_t i = i0; i < i1; ++i)
        std::memcpy(y + (img * M + i) * P + p, st + i * cols + (j - j0),
                    static_cast<size_t>(len) * sizeof(float));
      j += len;
    }
  };
  auto tile = [&](const float* ablock, const float* bq, int64_t kc, int64_t col, int64_t n,
                  int64_t ir, float beta, float* st = nullptr, int64_t st_j0 = 0,
                  int64_t st_cols = 0) {
    const int64_t img = col / P, p = col % P, m = std::min<int64_t>(MR, M - ir);
    if (st)
      ladder::run_tile(mk, kc, ablock + ir * kc, bq, st + ir * st_cols + (col - st_j0), st_cols, m,
                       n, 1.0f, beta);
    else if (p + n <= P)  // the tile lies in one image: rows of y[img] at stride P
      ladder::run_tile(mk, kc, ablock + ir * kc, bq, y + (img * M + ir) * P + p, P, m, n, 1.0f,
                       beta);
    else
      run_tile_across_images(mk, kc, ablock + ir * kc, bq, y, M, P, ir, m, col, n, beta);
  };
  if (threads > 1 && J <= kNC) {
    // Few columns (small maps: ResNet's 7x7 and 14x14 at batch 4): cutting the columns among
    // threads would leave each a sliver or two, and each thread would stream all of packed A
    // for them. Instead each thread takes a range of rows (of M) for the whole call and packs
    // all the panels itself (J x K numbers, small next to A's M x K). No thread waits for
    // another until the end: a shared panel needed two barriers per k block, and on a loaded
    // machine each barrier waits for a descheduled thread (512 channels at 7x7: 18 k blocks).
    const int64_t slivers = ceil_div(J, NR), tiles_m = ceil_div(M, MR);
    float* st = staged ? stage_buffer().get<float>(M * J) : nullptr;
    const int nt = static_cast<int>(std::min<int64_t>(threads, tiles_m));
#pragma omp parallel num_threads(nt)
    {
      const int64_t t = omp_get_thread_num(), nth = omp_get_num_threads();
      const int64_t i0 = std::min(M, tiles_m * t / nth * MR);
      const int64_t i1 = std::min(M, tiles_m * (t + 1) / nth * MR);
      float* bpack = panel_buffer().get<float>(std::min(kKC, K) * slivers * NR);
      if (bias && i0 < i1) {
        if (st)
          stage_in(st, J, i0, i1);
        else
          fill_bias(0, J, i0, i1);
      }
      for (int64_t pc = 0; pc < K && i0 < i1; pc += kKC) {
        const int64_t kc = std::min(kKC, K - pc);
        const float beta = pc == 0 && !bias ? 0.0f : 1.0f;
        const float* ablock = apack + pc * Mp;
        pack_b_block(src, img_stride, g, NR, pc, kc, 0, J, bpack, 0, kc);
        for (int64_t q = 0; q < slivers; ++q)
          for (int64_t ir = i0; ir < i1; ir += MR)
            tile(ablock, bpack + q * kc * NR, kc, q * NR, std::min<int64_t>(NR, J - q * NR), ir,
                 beta, st, 0, J);
      }
      if (st && i0 < i1) stage_out(st, 0, J, i0, i1);
    }
    return;
  }
  // Tasks: blocks of nc columns (of all images in a row), each packing its own panels; with
  // threads, enough blocks that every thread has a few (they are handed out dynamically).
  int64_t nc = std::min(kNC, ceil_div(J, NR) * NR);
  while (threads > 1 && nc > NR && ceil_div(J, nc) < 4 * threads) nc = ceil_div(nc / 2, NR) * NR;
  const int64_t tasks = ceil_div(J, nc);
  auto task = [&](int64_t t) {
    const int64_t j0 = t * nc, cols = std::min(nc, J - j0), slivers = ceil_div(cols, NR);
    float* bpack = panel_buffer().get<float>(std::min(kKC, K) * slivers * NR);
    float* st = staged ? stage_buffer().get<float>(M * cols) : nullptr;
    if (bias) {
      if (st)
        stage_in(st, cols, 0, M);
      else
        fill_bias(j0, cols, 0, M);
    }
    for (int64_t pc = 0; pc < K; pc += kKC) {
      const int64_t kc = std::min(kKC, K - pc);
      const float beta = pc == 0 && !bias ? 0.0f : 1.0f;
      pack_b_block(src, img_stride, g, NR, pc, kc, j0, cols, bpack, 0, kc);
      const float* ablock = apack + pc * Mp;
      for (int64_t q = 0; q < slivers; ++q)
        for (int64_t ir = 0; ir < M; ir += MR)
          tile(ablock, bpack + q * kc * NR, kc, j0 + q * NR, std::min<int64_t>(NR, cols - q * NR),
               ir, beta, st, j0, cols);
    }
    if (st) stage_out(st, j0, cols, 0, M);
  };
  if (threads == 1) {
    for (int64_t t = 0; t < tasks; ++t) task(t);
    return;
  }
  // Dynamic scheduling: on a shared machine a descheduled thread does not hold up the others,
  // and the result does not depend on which thread ran which task.
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t t = 0; t < tasks; ++t) task(t);
}

#if defined(__x86_64__) || defined(__i386__)
// Row k = (c, kh, kw) of the column matrix of the images at x (image i at x + i C H W, the
// columns of all of them in a row: l = i P + p), columns [l0, l0 + len), into o[0, len).
void im2col_row_range(const float* x, const Conv2dGeom& g, int64_t k, int64_t l0, int64_t len,
                      float* o) {
  const int64_t P = g.OH * g.OW, HW = g.H * g.W;
  const int64_t c = k / (g.KH * g.KW), kh = (k / g.KW) % g.KH, kw = k % g.KW;
  const int64_t off = kw * g.DW - g.PW;
  const int64_t lo = std::min(off >= 0 ? 0 : (-off + g.SW - 1) / g.SW, g.OW);
  const int64_t hi =
      std::max(lo, std::min(g.W - 1 - off < 0 ? 0 : (g.W - 1 - off) / g.SW + 1, g.OW));
  for (int64_t l = l0; l < l0 + len;) {
    const int64_t i = l / P, p = l % P, oh = p / g.OW, ow = p % g.OW;
    const int64_t seg = std::min(g.OW - ow, l0 + len - l);
    float* d = o + (l - l0) - ow;  // d[ow]: output column ow of this output row
    const int64_t ih = oh * g.SH - g.PH + kh * g.DH;
    const int64_t a = std::clamp(lo, ow, ow + seg), b = std::clamp(hi, a, ow + seg);
    if (ih < 0 || ih >= g.H) {
      std::fill(d + ow, d + ow + seg, 0.0f);
    } else {
      const float* src = x + (i * g.C + c) * HW + ih * g.W + off;  // src[ow * SW] is pixel iw
      std::fill(d + ow, d + a, 0.0f);
      if (g.SW == 1)
        std::copy(src + a, src + b, d + a);
      else
        for (int64_t j = a; j < b; ++j) d[j] = src[j * g.SW];
      std::fill(d + b, d + ow + seg, 0.0f);
    }
    l += seg;
  }
}

// The weight gradient of one block of m images, out (+)= gy_block @ cols_block^T (Cout x CK), or
// its transpose (CK x Cout), on the micro-kernel, with both operands packed straight into the
// micro-kernel's panels: a sliver of the column matrix (MR or NR rows k, kc columns l) is written
// by im2col into an L1-sized scratch and transposed into its panel there (8 x 8 in registers),
// so the full column matrix (C KH KW times the block's pixels, several MiB) is never written and
// read back. The loops are the ladder's (gemm_ladder_packed.cpp): k blocks of kKC (the ladder's
// KC) in order, the first with beta, later ones adding; every tile as the ladder computes it. So
// every element is the same sum in the same order as sgemm_microkernel on the materialised
// matrices: the same bits.
void wgrad_block_direct(const float* x, const float* gyb, int64_t ldg, const Conv2dGeom& g,
                        int64_t Cout, int64_t L, bool transposed, float* out, float beta) {
  const ladder::MicroKernel& mk = micro_kernel();
  const int MR = mk.MR, NR = mk.NR;
  const int64_t CK = g.C * g.KH * g.KW;
  const int64_t Ms = transposed ? CK : Cout, Ns = transposed ? Cout : CK, ldc = Ns;
  const int64_t Mp = ceil_div(Ms, MR) * MR, m_slivers = Mp / MR, n_slivers = ceil_div(Ns, NR);
  // Sliver of `width` rows from row0 of one operand (the columns if cols, else gy), columns
  // [pc, pc + kc) (rows past the operand's end: zeros), into dst[l * width + r].
  auto pack = [&](bool cols, int width, int64_t row0, int64_t pc, int64_t kc, float* dst) {
    if (!cols) {
      pack_a_sliver_avx512(width, Cout, gyb, ldg, row0, pc, kc, dst);
      return;
    }
    const int64_t rows = std::clamp<int64_t>(CK - row0, 0, width);
    float* scratch = stage_buffer().get<float>(std::max<int64_t>(rows, 1) * kc);
    for (int64_t r = 0; r < rows; ++r) im2col_row_range(x, g, row0 + r, pc, kc, scratch + r * kc);
    pack_a_sliver_avx512(width, rows, scratch, kc, 0, 0, kc, dst);
  };
  // Threads: the slivers of the column side (the expensive one to pack) are cut into one range
  // per thread; each thread packs all of the gy side itself (Cout x kc numbers: small) and runs
  // every k block on its own part of out, no thread waiting for another until the end (on a
  // shared machine a barrier per k block waits for a descheduled thread every time).
  const int64_t col_slivers = transposed ? m_slivers : n_slivers;
  int threads = !omp_in_parallel() && Ms * Ns * L >= kThreadedMacs ? omp_get_max_threads() : 1;
  threads = static_cast<int>(std::min<int64_t>(threads, col_slivers));
  auto part = [&](int64_t s0, int64_t s1) {  // column-side slivers [s0, s1)
    const int gw = transposed ? NR : MR;     // width of a gy-side sliver
    const int64_t g_slivers = transposed ? n_slivers : m_slivers;
    float* gpack = cols_buffer().get<float>(g_slivers * gw * std::min(L, kKC));
    float* cpack = panel_buffer().get<float>((transposed ? MR : NR) * std::min(L, kKC));
    for (int64_t pc = 0; pc < L; pc += kKC) {
      const int64_t kc = std::min(kKC, L - pc);
      const float beta_k = pc == 0 ? beta : 1.0f;
      for (int64_t t = 0; t < g_slivers; ++t) pack(false, gw, t * gw, pc, kc, gpack + t * gw * kc);
      for (int64_t sc = s0; sc < s1; ++sc) {
        if (!transposed) {  // column side = N: sliver q = sc against every row block of gy
          pack(true, NR, sc * NR, pc, kc, cpack);
          const int64_t n = std::min<int64_t>(NR, Ns - sc * NR);
          for (int64_t ir = 0; ir < Ms; ir += MR)
            ladder::run_tile(mk, kc, gpack + ir * kc, cpack, out + ir * ldc + sc * NR, ldc,
                             std::min<int64_t>(MR, Ms - ir), n, 1.0f, beta_k);
        } else {  // column side = M: row block sc against every sliver of gy
          pack(true, MR, sc * MR, pc, kc, cpack);
          const int64_t ir = sc * MR, m = std::min<int64_t>(MR, Ms - ir);
          for (int64_t q = 0; q < n_slivers; ++q)
            ladder::run_tile(mk, kc, cpack, gpack + q * NR * kc, out + ir * ldc + q * NR, ldc, m,
                             std::min<int64_t>(NR, Ns - q * NR), 1.0f, beta_k);
        }
      }
    }
  };
  if (threads <= 1) {
    part(0, col_slivers);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    part(col_slivers * t / nt, col_slivers * (t + 1) / nt);
  }
}
#endif

#if defined(__x86_64__) || defined(__i386__)
// ---- The weight gradient from a channels-last copy of the images (wgrad_block_nhwc) ----------
//
// In dW = gy @ cols^T the column matrix is the B operand (or A, transposed), and a panel of it
// holds, for each pixel l of the GEMM's k (= (n, p)), NR (or MR) consecutive rows k of cols.
// With k = (c, kh, kw) those are ~3 channels x 9 taps, each a different image row: the panel
// had to be built by im2col into a scratch and 8 x 8 register transposes (and the materialised
// route paid that plus writing and re-reading the whole column matrix), ~1/3 of the time of
// the bench case's weight gradient.
//
// Order k instead as k' = (kh, kw, c) and hold the images channels last, zero-padded:
//   xt[n, ih', iw', c] = x[n, c, ih' - PH, iw' - PW]   (0 in the padding), ih' < H + 2 PH
// Then the panel row of pixel l = (n, oh, ow) for the columns k' in [k0, k0 + 32) is
// consecutive channels of one pixel of xt per tap:
//   cols(k' = (kh, kw, c), l) = xt[n, oh SH + kh DH, ow SW + kw DW, c]
// i.e. one or two contiguous runs of xt (one when C is a multiple of 32): plain vector copies,
// no transposes, no bounds checks (the padding is in xt). xt costs one transpose of the images
// (C H W numbers each: 1/(KH KW) of the panels' volume).
//
// The result comes out with its columns in k' order, dW'[o, (kh, kw, c)], and is put back in
// the (c, kh, kw) order at the end (Cout x CK numbers). Reordering the columns of a GEMM does not
// change any element's sum: each is still the sum over l of gy(o, l) cols(k, l), k blocks of kKC
// in order, as the ladder's GEMM on the materialised matrices: the same bits as that route.

// Channels [c0, c0 + 8) (or the C % 8 last ones) of image i, every row, into xt_i (the image's
// padded channels-last copy; its padding is written by nhwc_padding). Channel group by channel
// group, row after row: 8 input streams (one per channel plane) the prefetcher can follow, 8 x 8
// register transposes; the rows two ahead are prefetched (each plane is its own 4 KiB page or
// more, where the hardware prefetcher stops).
__attribute__((target("avx2,avx512f"))) void nhwc_channels(const float* x, const Conv2dGeom& g,
                                                           int64_t Wp, int64_t c0, float* xt_i) {
  const int64_t C = g.C, HW = g.H * g.W, W8 = g.W / 8 * 8;
  const float* src = x + c0 * HW;  // src[c HW + ih W + iw], c from c0
  if (c0 + 8 > C) {                // the last channels, one by one
    for (int64_t ih = 0; ih < g.H; ++ih) {
      float* d = xt_i + ((ih + g.PH) * Wp + g.PW) * C + c0;
      for (int64_t c = 0; c0 + c < C; ++c)
        for (int64_t iw = 0; iw < g.W; ++iw) d[iw * C + c] = src[c * HW + ih * g.W + iw];
    }
    return;
  }
  for (int64_t ih = 0; ih < g.H; ++ih) {
    const float* s = src + ih * g.W;
    float* d = xt_i + ((ih + g.PH) * Wp + g.PW) * C + c0;  // d[iw C + c]
    if (ih + 2 < g.H)
      for (int r8 = 0; r8 < 8; ++r8)
        for (int64_t w = 0; w < g.W; w += 16)
          _mm_prefetch(reinterpret_cast<const char*>(s + r8 * HW + 2 * g.W + w), _MM_HINT_T0);
    for (int64_t w0 = 0; w0 < W8; w0 += 8) {
      __m256 v[8];
      for (int r8 = 0; r8 < 8; ++r8) v[r8] = _mm256_loadu_ps(s + r8 * HW + w0);
      ladder::transpose8(v);  // v[p] = pixel w0 + p, channels c0 .. c0 + 7
      for (int p = 0; p < 8; ++p) _mm256_storeu_ps(d + (w0 + p) * C, v[p]);
    }
    for (int64_t iw = W8; iw < g.W; ++iw)
      for (int c = 0; c < 8; ++c) d[iw * C + c] = s[c * HW + iw];
  }
}

// The zero padding of one image's channels-last copy: PH rows above and below, PW pixels left
// and right of every row.
void nhwc_padding(const Conv2dGeom& g, int64_t Hp, int64_t Wp, float* xt_i) {
  const int64_t C = g.C, right = Wp - g.PW - g.W;
  for (int64_t r = 0; r < Hp; ++r) {
    float* row = xt_i + r * Wp * C;
    if (r < g.PH || r >= g.PH + g.H) {
      std::memset(row, 0, static_cast<size_t>(Wp * C) * sizeof(float));
    } else {
      std::memset(row, 0, static_cast<size_t>(g.PW * C) * sizeof(float));
      std::memset(row + (g.PW + g.W) * C, 0, static_cast<size_t>(right * C) * sizeof(float));
    }
  }
}

// A run of a panel row: `len` columns from column j0 of the sliver, copied from xt at `off`
// (floats past the pixel's own address in xt); off < 0: zeros (columns past CK).
struct NhwcSeg {
  int64_t off;
  int j0, len;
};

// The panel of k' in [r0, r0 + width) for pixels l in [pc, pc + kc) of the block:
// dst[(l - pc) width + j]. segs: the runs of one panel row (the same for every l). Run by run,
// output row by output row: the inner loop is a copy of `len` numbers per pixel with both
// pointers stepping by a constant (SW C floats in xt, width in the panel).
__attribute__((target("avx512f"))) void pack_cols_nhwc(const float* xt, const Conv2dGeom& g,
                                                       int64_t Hp, int64_t Wp, const NhwcSeg* segs,
                                                       int nseg, int width, int64_t pc, int64_t kc,
                                                       float* dst) {
  const int64_t P = g.OH * g.OW, C = g.C, step = g.SW * C;
  const __m512 zero = _mm512_setzero_ps();
  for (int s = 0; s < nseg; ++s) {
    const NhwcSeg& sg = segs[s];
    float* d = dst + sg.j0;
    const int len = sg.len, full = len / 16 * 16;
    const __mmask16 tail = lane_range(0, len - full);
    if (sg.off < 0) {  // columns past CK: zeros
      for (int64_t l = 0; l < kc; ++l, d += width) {
        for (int j = 0; j < full; j += 16) _mm512_storeu_ps(d + j, zero);
        if (tail) _mm512_mask_storeu_ps(d + full, tail, zero);
      }
      continue;
    }
    int64_t i = pc / P, p = pc % P, oh = p / g.OW, ow = p % g.OW;
    for (int64_t l = 0; l < kc;) {
      const int64_t n = std::min(kc - l, g.OW - ow);  // the rest of this output row
      const float* src = xt + ((i * Hp + oh * g.SH) * Wp + ow * g.SW) * C + sg.off;
      if (len == 32) {
        for (int64_t t = 0; t < n; ++t, src += step, d += width) {
          _mm512_storeu_ps(d, _mm512_loadu_ps(src));
          _mm512_storeu_ps(d + 16, _mm512_loadu_ps(src + 16));
        }
      } else {
        for (int64_t t = 0; t < n; ++t, src += step, d += width) {
          for (int j = 0; j < full; j += 16) _mm512_storeu_ps(d + j, _mm512_loadu_ps(src + j));
          if (tail) _mm512_mask_storeu_ps(d + full, tail, _mm512_maskz_loadu_ps(tail, src + full));
        }
      }
      l += n;
      ow = 0;
      if (++oh == g.OH) oh = 0, ++i;
    }
  }
}

// The runs of one panel row for k' in [r0, r0 + width) (k' = (kh KW + kw) C + c).
int nhwc_segments(const Conv2dGeom& g, int64_t Wp, int64_t r0, int width, NhwcSeg* segs) {
  const int64_t C = g.C, CK = C * g.KH * g.KW;
  int n = 0;
  for (int j = 0; j < width;) {
    const int64_t k = r0 + j;
    if (k >= CK) {
      segs[n++] = {-1, j, width - j};
      break;
    }
    const int64_t t = k / C, c = k % C, kh = t / g.KW, kw = t % g.KW;
    const int len = static_cast<int>(std::min<int64_t>({C - c, width - j, CK - k}));
    segs[n++] = {(kh * g.DH * Wp + kw * g.DW) * C + c, j, len};
    j += len;
  }
  return n;
}

// out (+)= dW' of one block of m images (gyb: their gradient as [Cout, m P], rows ldg apart),
// as Cout x CK' (or, transposed, CK' x Cout), k' = (kh, kw, c). The loops are
// wgrad_block_direct's (the ladder's): the same tiles, k blocks of kKC in order.
void wgrad_block_nhwc(const float* x, const float* gyb, int64_t ldg, const Conv2dGeom& g,
                      int64_t Cout, int64_t m, bool transposed, float* out, float beta) {
  const ladder::MicroKernel& mk = micro_kernel();
  const int MR = mk.MR, NR = mk.NR;
  const int64_t CK = g.C * g.KH * g.KW, L = m * g.OH * g.OW;
  const int64_t Ms = transposed ? CK : Cout, Ns = transposed ? Cout : CK, ldc = Ns;
  const int64_t m_slivers = ceil_div(Ms, MR), n_slivers = ceil_div(Ns, NR);
  const int64_t Hp = g.H + 2 * g.PH, Wp = g.W + 2 * g.PW, kblocks = ceil_div(L, kKC);
  // The images channels last (shared by the threads; this thread's buffer).
  float* xt = cols_buffer().get<float>(m * Hp * Wp * g.C);
  // gy's slivers for every k block, packed once (shared): k block pc at pc * gwidth_all, its
  // sliver s at + s * gw * kc.
  const int gw = transposed ? NR : MR, cw = transposed ? MR : NR;
  const int64_t g_slivers = transposed ? n_slivers : m_slivers, gwidth_all = g_slivers * gw;
  float* gpack = stage_buffer().get<float>(gwidth_all * L);
  const int64_t col_slivers = transposed ? m_slivers : n_slivers;
  int threads = !omp_in_parallel() && Ms * Ns * L >= kThreadedMacs ? omp_get_max_threads() : 1;
  threads = static_cast<int>(std::min<int64_t>(threads, col_slivers));
  auto part = [&](int64_t s0, int64_t s1) {  // column-side slivers [s0, s1)
    float* cpack = panel_buffer().get<float>(cw * std::min(L, kKC));
    NhwcSeg segs[40];
    for (int64_t pc = 0; pc < L; pc += kKC) {
      const int64_t kc = std::min(kKC, L - pc);
      const float beta_k = pc == 0 ? beta : 1.0f;
      const float* gp = gpack + pc * gwidth_all;
      for (int64_t sc = s0; sc < s1; ++sc) {
        const int nseg = nhwc_segments(g, Wp, sc * cw, cw, segs);
        pack_cols_nhwc(xt, g, Hp, Wp, segs, nseg, cw, pc, kc, cpack);
        if (!transposed) {  // column side = N: sliver sc against every row block of gy
          const int64_t n = std::min<int64_t>(NR, Ns - sc * NR);
          for (int64_t ir = 0; ir < Ms; ir += MR)
            ladder::run_tile(mk, kc, gp + ir * kc, cpack, out + ir * ldc + sc * NR, ldc,
                             std::min<int64_t>(MR, Ms - ir), n, 1.0f, beta_k);
        } else {  // column side = M: row block sc against every sliver of gy
          const int64_t ir = sc * MR, mm = std::min<int64_t>(MR, Ms - ir);
          for (int64_t q = 0; q < n_slivers; ++q)
            ladder::run_tile(mk, kc, cpack, gp + q * NR * kc, out + ir * ldc + q * NR, ldc, mm,
                             std::min<int64_t>(NR, Ns - q * NR), 1.0f, beta_k);
        }
      }
    }
  };
  // Each thread: a share of xt's rows and of gy's slivers, one barrier, then its own range of
  // the column-side slivers for every k block (no thread waits for another after the barrier).
  auto prepare = [&](int64_t t, int64_t nt) {
    const int64_t groups = ceil_div(g.C, 8), img = Hp * Wp * g.C;
    for (int64_t u = t; u < m * groups; u += nt) {
      const int64_t i = u / groups, c0 = (u % groups) * 8;
      if (c0 == 0) nhwc_padding(g, Hp, Wp, xt + i * img);
      nhwc_channels(x + i * g.C * g.H * g.W, g, Wp, c0, xt + i * img);
    }
    for (int64_t u = t; u < kblocks * g_slivers; u += nt) {
      const int64_t pc = (u / g_slivers) * kKC, s = u % g_slivers, kc = std::min(kKC, L - pc);
      pack_a_sliver_avx512(gw, Cout, gyb, ldg, s * gw, pc, kc,
                           gpack + pc * gwidth_all + s * gw * kc);
    }
  };
  if (threads <= 1) {
    prepare(0, 1);
    part(0, col_slivers);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    prepare(t, nt);
#pragma omp barrier
    part(col_slivers * t / nt, col_slivers * (t + 1) / nt);
  }
}
#endif

// Images per weight-gradient block: about 4096 columns (several KC blocks of the GEMM's k), the
// column buffer at most 4 MiB (1M floats). It is kept per thread: with a 16 MiB cap, lesson 09's
// VLM step at 2 threads peaked at ~89 MB, above the ~84 MB of the im2col path; at 4 MiB, ~81 MB.
int64_t wgrad_images_per_block(int64_t N, int64_t CK, int64_t P) {
  int64_t nb = std::max<int64_t>(1, ceil_div(4096, P));
  nb = std::min(nb, std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(CK * P, 1)));
  return std::clamp<int64_t>(nb, 1, std::max<int64_t>(N, 1));
}

// Runs one_image(i) for the N images i: in parallel with several images, each image's work then
// on one thread (its result is the same whichever thread computes it: the ladder GEMM gives the
// same bits on any thread count); a single image runs on the ladder's threads. An image's
// columns go to a buffer of the thread running it (one image's [CK, P] at a time), so the
// memory held is (threads x CK x P), whatever the batch.
template <class F>
void for_each_image(int64_t N, F one_image) {
  if (N >= 2 && !omp_in_parallel() && omp_get_max_threads() > 1) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < N; ++i) one_image(i);
  } else {
    for (int64_t i = 0; i < N; ++i) one_image(i);
  }
}

// The forward as im2col + the ladder's GEMM, image by image: cols = im2col(x[n]) (CK x P), then
// y[n] = W @ cols (+ bias) through the ladder, which packs W and cols itself and threads the
// product (im2col is threaded too). conv2d_fast_forward says when this route is taken. The
// columns go to the buffer the implicit GEMM packs W into (this route does not use it), one
// image at a time: a model mixing the two routes holds one buffer, the larger. (A separate
// block of up to 16 MiB of columns, images in parallel, measured ResNet-18's inference at batch
// 4 with a peak RSS ~9 MiB above the implicit GEMM's; per-thread buffers still ~4 MiB above
// at 2 threads.)
void im2col_forward(const float* x, const float* w, const float* bias, float* y,
                    const Conv2dGeom& g, int64_t Cout) {
  const int64_t CK = g.C * g.KH * g.KW, P = g.OH * g.OW, CHW = g.C * g.H * g.W;
  CpuBackend cpu;
  float* cols = weight_buffer().get<float>(CK * P);
  for (int64_t n = 0; n < g.N; ++n) {
    float* yn = y + n * Cout * P;
    Conv2dGeom gn = g;
    gn.N = 1;
    cpu.im2col(DType::Float32, x + n * CHW, cols, gn);
    if (bias)  // y starts as the bias; the GEMM adds onto it (beta = 1)
      for (int64_t o = 0; o < Cout; ++o) std::fill(yn + o * P, yn + (o + 1) * P, bias[o]);
    const auto gemm =
        ladder::use_small_gemm(Cout, P, CK) ? &ladder::sgemm_small : &ladder::sgemm_microkernel;
    gemm(false, false, Cout, P, CK, 1.0f, w, CK, cols, P, bias ? 1.0f : 0.0f, yn, P);
  }
}

}  // namespace

void set_conv2d_fast_path(bool on) { g_fast_path.store(on); }
bool conv2d_fast_path() { return g_fast_path.load(); }

void conv2d_fast_forward(const float* x, const float* w, const float* bias, float* y,
                         const Conv2dGeom& g, int64_t Cout) {
  if (conv2d_small_cin(g)) return conv2d_small_cin_forward(x, w, bias, y, g, Cout);
  const int64_t CK = g.C * g.KH * g.KW;
  const int MR = micro_kernel().MR;
  // Route, by the shape only (never by timing or the thread count, so the bits are fixed by the
  // shape): a strided convolution with at least MR input channels runs as im2col + the ladder's
  // GEMM. At stride 2 the implicit GEMM packs its panels sliver by sliver (pack_b_block), and
  // measured slower than im2col followed by the ladder's own packing: ResNet-18's 3x3/2 64->128 and
  // 1x1/2 64->128 layers at 56x56 (batch 4, one thread, CPU time, two runs of bench_all --only
  // conv) ran their forward at 0.89-0.96x and 0.73-0.88x of im2col + ladder. Few channels (the
  // 7x7/2 stem, C = 3) stay on the implicit GEMM, which measured 1.17x there (its columns are few
  // and long).
  if ((g.SH > 1 || g.SW > 1) && g.C >= MR) {
    im2col_forward(x, w, bias, y, g, Cout);
    return;
  }
  float* apack = weight_buffer().get<float>(ceil_div(Cout, MR) * MR * CK);
  pack_a_rows(MR, Cout, CK, w, CK, apack);
  implicit_gemm(apack, Cout, bias, x, g.C * g.H * g.W, g, g.N, y);
}

void conv2d_fast_backward_input(const float* gy, const float* w, float* gx, const Conv2dGeom& g,
                                int64_t Cout) {
  const int64_t C = g.C, KH = g.KH, KW = g.KW, CK = C * KH * KW, P = g.OH * g.OW;
  if (g.N <= 0) return;
  const int MR = micro_kernel().MR;
  // Which route (by the shape only; measured one thread, CPU time, bench_all --only conv, four
  // runs, the route below against the transposed implicit GEMM):
  // - The transposed convolution's GEMM has M = C rows: with fewer input channels than the
  //   micro-kernel's MR rows (an image's first layer, C = 1 or 3) most of each tile would be
  //   zeros, and the route below (M = C*KH*KW) is faster. The same holds, less so, where C
  //   fills its 14-row tiles badly: C = 32 fills 32 of 42 rows (0.76), and lesson 04's 32->64
  //   layer at 14x14 (batch 256) took 1/0.75-1/0.70 of the time of the route below.
  // - Its packer copies image rows (W pixels) into 32-column slivers: where W is a multiple of
  //   NR each sliver row is one run of whole vectors, else runs are cut at sliver edges into
  //   partial, masked vectors (more work per packed number). There the route below wins where
  //   its own tiles are at least as full (its M = C KH KW, N = H W): ResNet-18's 3x3 layers
  //   64@56 and 128@28 ran the transposed GEMM at 0.90-0.97x and 0.86-0.95x of it. Where the
  //   route below fills its tiles worse (7x7 and 14x14 maps: P = 49 or 196 in 32-column
  //   slivers: 0.77, 0.88) the transposed GEMM measured even or faster (256@14: 1.00-1.04x,
  //   512@7: 1.06-1.21x), and the bench case (64@32, rows of exactly one sliver) 0.98-1.40x.
  const bool aligned_rows = g.W % micro_kernel().NR == 0;
  const bool implicit =
      g.SH == 1 && g.SW == 1 && C >= MR && tile_fill(C, MR) >= 0.9 &&
      (aligned_rows ||
       tile_fill(CK, MR) * tile_fill(g.H * g.W, micro_kernel().NR) < tile_fill(C, MR));
  if (implicit) {
    // The transposed convolution: conv2d(gy, W') with the flipped, transposed kernel (see the
    // top of this file). Its source images are gy[n] (Cout x OH x OW); its output, H x W.
    Conv2dGeom t;
    t.N = g.N;
    t.C = Cout;
    t.H = g.OH;
    t.W = g.OW;
    t.KH = KH;
    t.KW = KW;
    t.SH = t.SW = 1;
    t.DH = g.DH;
    t.DW = g.DW;
    t.PH = g.DH * (KH - 1) - g.PH;
    t.PW = g.DW * (KW - 1) - g.PW;
    t.OH = g.H;
    t.OW = g.W;
    const int64_t Kt = Cout * KH * KW, KHW = KH * KW;
    // W'[c, o, kh', kw'] = W[o, c, KH-1-kh', KW-1-kw']: flipping both kernel axes reverses the
    // flattened KH*KW taps. Written out once as a plain [C, Cout*KH*KW] matrix (a division per
    // element in the packing loop cost more than the 512-channel product itself).
    float* wt = wt_buffer().get<float>(C * Kt);
    flip_weight(w, Cout, C, KHW, wt);
    float* apack = weight_buffer().get<float>(ceil_div(C, MR) * MR * Kt);
    pack_a_rows(MR, C, Kt, wt, Kt, apack);
    implicit_gemm(apack, C, nullptr, gy, Cout * P, t, g.N, gx);
    return;
  }
  // Stride > 1 (or the shapes above): dcols (CK x P) = W^T @ gy[n] on the ladder, then col2im
  // adds the columns onto dx[n] (zeroed first), image by image (for_each_image: in parallel,
  // one image's columns per thread).
  const int64_t HW = g.H * g.W;
  CpuBackend cpu;
  for_each_image(g.N, [&](int64_t n) {
    float* dcols = cols_buffer().get<float>(CK * P);
    ladder::sgemm_microkernel(/*trans_a=*/true, false, CK, P, Cout, 1.0f, w, CK, gy + n * Cout * P,
                              P, 0.0f, dcols, P);
    float* gxn = gx + n * C * HW;
    std::fill(gxn, gxn + C * HW, 0.0f);
    Conv2dGeom gc = g;
    gc.N = 1;
    cpu.col2im(DType::Float32, dcols, gxn, gc);
  });
}

void conv2d_fast_backward_weight(const float* x, const float* gy, float* gw, const Conv2dGeom& g,
                                 int64_t Cout) {
  if (conv2d_small_cin(g)) return conv2d_small_cin_backward_weight(x, gy, gw, g, Cout);
  const int64_t C = g.C, CK = C * g.KH * g.KW, P = g.OH * g.OW, HW = g.H * g.W;
  if (g.N <= 0 || P <= 0) {
    std::fill(gw, gw + Cout * CK, 0.0f);
    return;
  }
  const int64_t nb = wgrad_images_per_block(g.N, CK, P), blocks = ceil_div(g.N, nb);
  const ladder::MicroKernel& mk = micro_kernel();
  // Orientation: dW (Cout x CK) = gy @ cols^T, or its transpose dW^T (CK x Cout) = cols @ gy^T,
  // whichever fills the micro-kernel's MR x NR tiles better (a first layer has CK = 9 or 27:
  // as the N side of the product it would fill 9 of 32 columns; as the M side, 9 of 14 rows).
  // The transposed result costs a transposing copy of dW at the end (9 MiB for 512 x 4608,
  // strided: ~1/3 of that layer's product), so it is taken only when it fills the tiles 10% better.
  // (Either way every element is the same sum in the same k order: the same bits.)
  const bool transposed = tile_fill(CK, mk.MR) * tile_fill(Cout, mk.NR) >
                          1.1 * tile_fill(Cout, mk.MR) * tile_fill(CK, mk.NR);
  // Parallel over image blocks: when dW is small (the ladder cannot cut a 32 x 9 product among
  // threads) and there are several blocks, each block's product goes into its own partial sum
  // and the partials are added in block order at the end. Chosen by the shape only, so the
  // order of the sums, and the bits, do not depend on the thread count.
  const bool partials = blocks >= 2 && Cout * CK <= (int64_t{1} << 16);
#if defined(__x86_64__) || defined(__i386__)
  static const bool direct =
      ladder::isa_supported(ladder::Isa::Avx512) && __builtin_cpu_supports("avx512vl");
#else
  constexpr bool direct = false;
#endif
  // Channels-last panels (wgrad_block_nhwc) wherever AVX-512 runs and a panel row is a few long
  // runs of channels; the result then has its columns in (kh, kw, c) order and is reordered into
  // gw at the end. Measured (one thread, CPU time, medians of 3 interleaved runs against the
  // routes below, loaded machine): bench case 64@32 1.52x, ResNet-18's 3x3 64@56 1.44x, 128@28
  // 1.25x, 256@14 1.50x; lesson 04's 16->32@14 1.99x, 32->64@7 2.18x (batch 256). With 8
  // channels a panel row is 4 runs of 8 numbers: still +10% on 14-pixel rows, but -10% against
  // the direct panels below on 60-pixel rows (even at 16 channels, before the run-by-run copy);
  // with 3 or 5 channels -25 to -35%.
  // The reorder is one more pass over dW (Cout x CK): where each element sums few products
  // (ResNet-18's 512@7 at batch 4: N P = 196), it costs more than the panels save (there each
  // packed number feeds 512 multiply-adds: packing is cheap anyway); measured 0.8-1.0x.
  // A strided 1x1 convolution reads 1 pixel in SH SW: the channels-last copy of the whole image
  // moves that many times what its panels use. ResNet-18's 1x1/2 64->128 @56, weight gradient,
  // two interleaved runs of bench_all --only conv each: 111 / 90 GFLOP/s at 1 thread and
  // 183 / 111 at 2 on this route, 124 / 96 and 205 / 217 on the materialised columns.
  const bool long_rows = CK >= 4 * mk.MR && g.OW >= 56;  // where the direct panels pay
  const bool strided_1x1 = g.KH * g.KW == 1 && (g.SH > 1 || g.SW > 1);
  const bool nhwc = direct && !strided_1x1 && (C >= 16 || (C >= 8 && !long_rows)) && g.N * P >= 256;
  float* acc =
      transposed || partials ? weight_buffer().get<float>((partials ? blocks : 1) * Cout * CK) : gw;
  // One block of images: its columns as one [CK, L] matrix (image i in columns [i P, (i+1) P))
  // and its gradient as [Cout, L], then one GEMM with k = L into out (beta: add to it or not).
  auto block = [&](int64_t bi, float* out, float beta) {
    const int64_t n0 = bi * nb, m = std::min(nb, g.N - n0), L = m * P;
#if defined(__x86_64__) || defined(__i386__)
    // gy of the block as [Cout, L]: gy itself for one image, else copied (image i's P columns of
    // row o at o L + i P)
    auto gy_block = [&]() -> const float* {
      if (m == 1) return gy + n0 * Cout * P;
      float* copy = gy_buffer().get<float>(Cout * L);
      for (int64_t o = 0; o < Cout; ++o)
        for (int64_t i = 0; i < m; ++i)
          std::memcpy(copy + o * L + i * P, gy + ((n0 + i) * Cout + o) * P,
                      static_cast<size_t>(P) * sizeof(float));
      return copy;
    };
    if (nhwc) {
      wgrad_block_nhwc(x + n0 * C * HW, gy_block(), m > 1 ? L : P, g, Cout, m, transposed, out,
                       beta);
      return;
    }
    // Where the direct panels measured faster (one thread, CPU time, medians of 5 runs on a
    // loaded 2-core machine, ResNet-18 and lesson 04 shapes): long output rows, ResNet's
    // 56-pixel 3x3 layer (+5%, up to +30% in quieter runs) and its 112-pixel stem (+5%). Their
    // im2col works k block by k block and pays per output-row segment: at 28 pixels it broke
    // even, at 14 and 7 (ResNet's deep layers, lesson 04's CNN, the strided 1x1 convs) it lost
    // 5-10%, and first layers (C KH KW = 9 or 27 rows) pack too little per row. There the
    // columns are materialised as before. Either way the same sums, the same bits.
    if (direct && long_rows) {
      wgrad_block_direct(x + n0 * C * HW, gy_block(), m > 1 ? L : P, g, Cout, L, transposed, out,
                         beta);
      return;
    }
#endif
    float* cols = cols_buffer().get<float>(CK * L);
    float* gyb = gy_buffer().get<float>(Cout * L);
    parallel_for(CK * m, std::max<int64_t>(1, kElementwiseGrain / P), [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        // Row k of image i's column matrix (im2col's loop for one row; kernels/cpu/conv.cpp).
        const int64_t k = t / m, i = t % m;
        const int64_t c = k / (g.KH * g.KW), kh = (k / g.KW) % g.KH, kw = k % g.KW;
        const float* plane = x + (n0 + i) * C * HW + c * HW;
        float* o = cols + k * L + i * P;
        const int64_t off = kw * g.DW - g.PW;
        const int64_t lo = std::min(off >= 0 ? 0 : (-off + g.SW - 1) / g.SW, g.OW);
        const int64_t hi =
            std::max(lo, std::min(g.W - 1 - off < 0 ? 0 : (g.W - 1 - off) / g.SW + 1, g.OW));
        for (int64_t oh = 0; oh < g.OH; ++oh, o += g.OW) {
          const int64_t ih = oh * g.SH - g.PH + kh * g.DH;
          if (ih < 0 || ih >= g.H) {
            std::fill(o, o + g.OW, 0.0f);
            continue;
          }
          const float* src = plane + ih * g.W + off;
          std::fill(o, o + lo, 0.0f);
          if (g.SW == 1)
            std::copy(src + lo, src + hi, o + lo);
          else
            for (int64_t ow = lo; ow < hi; ++ow) o[ow] = src[ow * g.SW];
          std::fill(o + hi, o + g.OW, 0.0f);
        }
      }
    });
    for (int64_t o = 0; o < Cout; ++o)
      for (int64_t i = 0; i < m; ++i)
        std::memcpy(gyb + o * L + i * P, gy + ((n0 + i) * Cout + o) * P,
                    static_cast<size_t>(P) * sizeof(float));
    if (transposed)  // dW^T (CK x Cout) (+)= cols (CK x L) @ gy^T (L x Cout)
      ladder::sgemm_microkernel(false, /*trans_b=*/true, CK, Cout, L, 1.0f, cols, L, gyb, L, beta,
                                out, Cout);
    else  // dW (Cout x CK) (+)= gy (Cout x L) @ cols^T (L x CK)
      ladder::sgemm_microkernel(false, /*trans_b=*/true, Cout, CK, L, 1.0f, gyb, L, cols, L, beta,
                                out, CK);
  };
  if (partials) {
    if (!omp_in_parallel() && omp_get_max_threads() > 1) {
#pragma omp parallel for schedule(dynamic, 1)
      for (int64_t bi = 0; bi < blocks; ++bi) block(bi, acc + bi * Cout * CK, 0.0f);
    } else {
      for (int64_t bi = 0; bi < blocks; ++bi) block(bi, acc + bi * Cout * CK, 0.0f);
    }
    for (int64_t bi = 1; bi < blocks; ++bi) {
      const float* part = acc + bi * Cout * CK;
      for (int64_t i = 0; i < Cout * CK; ++i) acc[i] += part[i];
    }
  } else {
    for (int64_t bi = 0; bi < blocks; ++bi) block(bi, acc, bi == 0 ? 0.0f : 1.0f);
  }
  if (nhwc) {
    // acc holds dW' (or dW'^T), columns k' = (kh, kw, c) = t C + c. Not transposed, without
    // partials, acc is gw itself: each row is reordered in place through an L1 scratch (one
    // pass over dW, 9 MiB for 512 x 4608: a separate buffer read and gw written cost ~1/4 of that
    // layer's weight gradient). Rows in parallel where dW is large.
    const int64_t KHW = g.KH * g.KW;
    parallel_for(Cout, std::max<int64_t>(1, kElementwiseGrain / CK), [&](int64_t o0, int64_t o1) {
      float* row = stage_buffer().get<float>(CK);  // this thread's scratch
      for (int64_t o = o0; o < o1; ++o) {
        if (transposed)
          for (int64_t kp = 0; kp < CK; ++kp) row[kp] = acc[kp * Cout + o];
        else
          std::copy(acc + o * CK, acc + (o + 1) * CK, row);
        float* d = gw + o * CK;
        for (int64_t c = 0; c < C; ++c)
          for (int64_t t = 0; t < KHW; ++t) d[c * KHW + t] = row[t * C + c];
      }
    });
  } else if (transposed) {  // acc holds dW^T
    for (int64_t o = 0; o < Cout; ++o)
      for (int64_t k = 0; k < CK; ++k) gw[o * CK + k] = acc[k * Cout + o];
  } else if (acc != gw) {
    std::copy(acc, acc + Cout * CK, gw);
  }
}

}  // namespace mmgrad::cpu
