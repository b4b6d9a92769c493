// bench_all --only conv: conv2d float32 on the CPU, forward, input gradient and weight gradient
// measured separately, on the op list's benchmark shape, ResNet-18's conv shapes (batch 4,
// 224x224 input) and lesson 04's CNN (batch 256, 28x28), at 1 and 2 threads, for the fast path
// (kernels/cpu/conv_fast.cpp: implicit GEMM on the GEMM ladder's micro-kernel, or im2col + the
// ladder's GEMM for the shapes its routing rule sends there: strided forwards, input gradients of
// badly tile-filling channel counts) and, in the same run, the reference path (im2col +
// Backend::gemm, cpu::set_conv2d_fast_path(false)). Where the fast path routes a direction to
// im2col + ladder, expect its fast / reference ratio near 1 (the same products).
//
// Every number goes through the op (conv2d and its backward node), as a model calls it:
//   forward      conv2d(x, w) under NoGradGuard
//   input grad   conv2d(x, w).backward(g) with only x requiring a gradient, minus the forward
//   weight grad  the same with only w requiring a gradient, minus the forward
// Each direction does 2 * N * Cout * OH * OW * C * KH * KW flops. Times are medians of repeated
// runs, the fast and reference paths interleaved sample by sample; the % of peak is against the
// FMA loop's peak at the same thread count. --cpu-time (a shared machine): the calling thread's
// CPU time and the 1-thread peak by the same clock, 1-thread rows only (as the ladder's table).
#pragma once

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "bench_gemm_ladder.h"
#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/mmgrad.h"

namespace conv_bench {

struct Shape4 {
  const char* name;
  int64_t N, C, H, W, Cout, K, stride, pad;
};

inline std::vector<Shape4> shapes(bool quick) {
  std::vector<Shape4> s = {
      {"bench case 64->64 @32", 64, 64, 32, 32, 64, 3, 1, 1},
      {"ResNet-18 stem 7x7/2 3->64 @224", 4, 3, 224, 224, 64, 7, 2, 3},
      {"ResNet-18 3x3 64->64 @56", 4, 64, 56, 56, 64, 3, 1, 1},
      {"ResNet-18 3x3 128->128 @28", 4, 128, 28, 28, 128, 3, 1, 1},
      {"ResNet-18 3x3 256->256 @14", 4, 256, 14, 14, 256, 3, 1, 1},
      {"ResNet-18 3x3 512->512 @7", 4, 512, 7, 7, 512, 3, 1, 1},
      {"ResNet-18 3x3/2 64->128 @56", 4, 64, 56, 56, 128, 3, 2, 1},
      {"ResNet-18 1x1/2 64->128 @56", 4, 64, 56, 56, 128, 1, 2, 0},
      {"ResNet-18 1x1/2 256->512 @14", 4, 256, 14, 14, 512, 1, 2, 0},
      {"lesson 04 conv1 1->32 @28", 256, 1, 28, 28, 32, 3, 1, 1},
      {"lesson 04 conv2 32->64 @14", 256, 32, 14, 14, 64, 3, 1, 1},
      {"lesson 04 conv3 64->128 @7", 256, 64, 7, 7, 128, 3, 1, 1},
  };
  if (quick) s.resize(2);
  return s;
}

struct Times {
  double fwd, bwd_in, bwd_w;  // seconds
};

// Seconds per call of fn: repeated for `budget` seconds, by the wall clock or the thread's CPU
// time (gemm_ladder_bench::now).
using Timer = std::function<double(const std::function<void()>&)>;

// One sample of the three directions of shape s (on the current path: cpu::conv2d_fast_path()).
inline Times time_shape(const Shape4& s, const Timer& median_per_call) {
  using namespace mmgrad;
  Generator gen(1);
  Tensor x = Tensor::randn({s.N, s.C, s.H, s.W}, kFloat32, &gen);
  Tensor w = Tensor::randn({s.Cout, s.C, s.K, s.K}, kFloat32, &gen);
  Tensor y0;
  {
    NoGradGuard ng;
    y0 = conv2d(x, w, {}, s.stride, s.pad);
  }
  Tensor g = Tensor::randn(y0.shape(), kFloat32, &gen);
  Times t;
  t.fwd = median_per_call([&] {
    NoGradGuard ng;
    Tensor y = conv2d(x, w, {}, s.stride, s.pad);
  });
  auto fwd_bwd = [&](bool grad_x) {
    Tensor xi = grad_x ? x.detach().requires_grad_() : x.detach();
    Tensor wi = grad_x ? w.detach() : w.detach().requires_grad_();
    return median_per_call([&] {
      Tensor y = conv2d(xi, wi, {}, s.stride, s.pad);
      y.backward(g);
      if (grad_x)
        xi.set_grad(Tensor());
      else
        wi.set_grad(Tensor());
    });
  };
  t.bwd_in = std::max(1e-9, fwd_bwd(true) - t.fwd);
  t.bwd_w = std::max(1e-9, fwd_bwd(false) - t.fwd);
  return t;
}

inline void run(bool quick, bool cpu_time, double peak1, double peak2, int max_threads,
                double (*fma_loop)(int64_t)) {
  using namespace mmgrad;
  const bool saved_path = cpu::conv2d_fast_path();  // restored at the end of each shape
  if (cpu_time) peak1 = gemm_ladder_bench::cpu_time_peak(fma_loop, quick);
  std::printf(
      "\n## conv2d float32 by direction: fast path (implicit GEMM on the ladder's micro-kernel, "
      "routed by shape: conv_fast.cpp) vs the reference path (im2col + Backend::gemm), same "
      "run\n\n");
  std::printf(
      "GFLOP/s (%% of the FMA peak at that thread count); input/weight gradient = (forward + "
      "backward) - forward. Peak: %.1f GFLOP/s (1 thread), %.1f (2 threads)%s.\n\n",
      peak1, peak2, cpu_time ? "; --cpu-time: thread CPU time, 1-thread rows only" : "");
  std::printf(
      "| shape (N, C, HxW -> Cout, kernel/stride) | threads | forward | input grad | weight grad "
      "| reference fwd | reference in | reference w | fast / reference (fwd+bwd) | ladder GEMM "
      "of the forward's size |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  const int saved = get_num_threads();
  const int samples = quick ? 3 : 5;
  const double budget = quick ? 0.01 : 0.05;
  const Timer timer = [&](const std::function<void()>& fn) {
    fn();  // warm: buffers allocated, caches filled
    return gemm_ladder_bench::seconds_per_call(fn, budget, cpu_time);
  };
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  for (const Shape4& s : shapes(quick)) {
    const int64_t OH = (s.H + 2 * s.pad - s.K) / s.stride + 1;
    const int64_t OW = (s.W + 2 * s.pad - s.K) / s.stride + 1;
    const double flops = 2.0 * s.N * s.Cout * OH * OW * s.C * s.K * s.K;
    for (int threads : {1, 2}) {
      if (threads > max_threads || (cpu_time && threads > 1)) continue;
      set_num_threads(threads);
      const double peak = threads == 1 ? peak1 : peak2;
      // samples of the two paths interleaved, so drift in the machine's load hits both alike
      std::vector<double> ff, fi, fw, rf, ri, rw;
      for (int k = 0; k < samples; ++k) {
        cpu::set_conv2d_fast_path(true);
        const Times a = time_shape(s, timer);
        cpu::set_conv2d_fast_path(false);
        const Times b = time_shape(s, timer);
        ff.push_back(a.fwd), fi.push_back(a.bwd_in), fw.push_back(a.bwd_w);
        rf.push_back(b.fwd), ri.push_back(b.bwd_in), rw.push_back(b.bwd_w);
      }
      cpu::set_conv2d_fast_path(saved_path);
      // The ceiling: the ladder's GEMM on plain matrices of the forward's size, M = Cout,
      // K = C*KH*KW, N = N*OH*OW (at most 8192 columns: the rate does not grow past that).
      const int64_t gm = s.Cout, gk = s.C * s.K * s.K, gn = std::min<int64_t>(s.N * OH * OW, 8192);
      std::vector<float> ga(static_cast<size_t>(gm * gk), 0.5f),
          gb(static_cast<size_t>(gk * gn), 0.25f), gc(static_cast<size_t>(gm * gn));
      std::vector<double> gt;
      for (int k = 0; k < samples; ++k)
        gt.push_back(timer([&] {
          cpu::ladder::sgemm_microkernel(false, false, gm, gn, gk, 1.0f, ga.data(), gk, gb.data(),
                                         gn, 0.0f, gc.data(), gn);
        }));
      const double gemm_secs =
          median(gt) * static_cast<double>(s.N * OH * OW) / static_cast<double>(gn);
      const Times f{median(ff), median(fi), median(fw)}, r{median(rf), median(ri), median(rw)};
      auto cell = [&](double secs) {
        char b[48];
        const double gf = flops / secs / 1e9;
        std::snprintf(b, sizeof b, "%.1f (%.0f%%)", gf, peak > 0 ? 100 * gf / peak : 0.0);
        return std::string(b);
      };
      std::printf("| %s | %d | %s | %s | %s | %s | %s | %s | %.2fx | %s |\n", s.name, threads,
                  cell(f.fwd).c_str(), cell(f.bwd_in).c_str(), cell(f.bwd_w).c_str(),
                  cell(r.fwd).c_str(), cell(r.bwd_in).c_str(), cell(r.bwd_w).c_str(),
                  (r.fwd + r.bwd_in + r.bwd_w) / (f.fwd + f.bwd_in + f.bwd_w),
                  cell(gemm_secs).c_str());
      std::fflush(stdout);
    }
  }
  set_num_threads(saved);
}

}  // namespace conv_bench
