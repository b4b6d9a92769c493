// `bench_all --only gemm-ladder`: every rung of the GEMM kernel ladder (kernels/cpu/gemm_ladder.h,
// docs/gemm_ladder.md) on square sizes and on the lesson shapes, at 1 and 2 threads, in GFLOP/s
// and % of the float32 FMA peak measured in the same run, with three more columns: a direct
// Eigen call on the same buffers (Eigen's own threading), the Eigen path the backend ran before
// the ladder became its GEMM (cpu::gemm_eigen_tiles: Eigen in fixed tiles) and the backend's GEMM
// (backend(kCPU).gemm, what matmul runs: the top rung, with its batching).
//
// `bench_all --only gemm-small` (also printed first by gemm-ladder): tiny and batched products
// (attention heads), microseconds per call, the backend against the Eigen tiles it replaced
// (with --cpu-time: 1 thread, thread CPU time).
//
// Each cell is the median of several samples; the implementations are interleaved sample by
// sample so that drift in the machine's load affects them alike. The slow rungs run only where
// they finish in reasonable time (naive up to 512^3 multiply-adds, reordered and blocked up to
// 1024^3); rungs 1-3 are single-threaded, so the 2-thread table leaves them out.
//
// --cpu-time (for a machine shared with other programs): the 1-thread table is timed by the
// thread's own CPU time (CLOCK_THREAD_CPUTIME_ID), which leaves out the time the thread waited
// for the core, and the peak is the FMA loop timed the same way; the 2-thread table is left out
// (its threads wait for each other, and that waiting is the thing a loaded machine distorts).
// Caches are still shared with the other programs: these numbers are a floor of a quiet run.
#pragma once

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "mmgrad/kernels/backend.h"
#include "mmgrad/kernels/cpu/gemm_ladder.h"

namespace gemm_ladder_bench {

struct Shape {
  int64_t M, N, K;
  const char* what;
  bool trans_a = false;  // A stored K x M and read transposed (a weight gradient: dY^T X)
};

// Seconds per call: fn repeated for at least `budget` seconds per sample, median of samples.
// The samples of all implementations are interleaved by the caller.
inline double now(bool cpu_time) {
  if (cpu_time) {
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Calls too short for the clock (reading the thread CPU clock costs ~1 us here) run in groups
// between two readings: `reps` calls of about 20 us together.
inline double seconds_per_call(const std::function<void()>& fn, double budget, bool cpu_time) {
  double t0 = now(cpu_time);
  fn();
  const double first = now(cpu_time) - t0;
  const int64_t reps =
      std::clamp<int64_t>(static_cast<int64_t>(2e-5 / std::max(first, 1e-9)), 1, 1000);
  int64_t calls = 0;
  t0 = now(cpu_time);
  double elapsed = 0;
  do {
    for (int64_t r = 0; r < reps; ++r) fn();
    calls += reps;
    elapsed = now(cpu_time) - t0;
  } while (elapsed < budget);
  return elapsed / static_cast<double>(calls);
}

// The 1-thread FMA peak in CPU time: fma_loop(iters) runs iters iterations of bench_all's FMA
// loop and returns its flops per iteration.
inline double cpu_time_peak(double (*fma_loop)(int64_t), bool quick) {
  const int64_t iters = quick ? 2000000 : 20000000;
  double best = 1e30, flops = 0;
  for (int i = 0; i < 5; ++i) {
    const double t0 = now(true);
    flops = fma_loop(iters);
    best = std::min(best, now(true) - t0);
  }
  return flops * static_cast<double>(iters) / best / 1e9;
}

inline mmgrad::GemmArgs f64_args(const Shape& s, const double* A, const double* B, double* C) {
  return mmgrad::GemmArgs{.dtype = mmgrad::DType::Float64, .M = s.M, .N = s.N, .K = s.K}
      .a(A, s.K)
      .b(B, s.N)
      .c(C, s.N);
}

// Tiny and batched products, microseconds per call (median), at 1 and 2 threads: the backend's
// GEMM against the Eigen tiles it replaced (cpu::gemm_eigen_tiles), float32. The batched rows are
// attention: batch x heads matrices, Q K^T (K read transposed) and P V.
inline void run_small(bool quick, bool cpu_time) {
  struct Small {
    int64_t batch, M, N, K;
    bool trans_b;
    const char* what;
  };
  const std::vector<Small> shapes = {{1, 1, 1, 1, false, "1 x 1 x 1"},
                                     {1, 4, 8, 16, false, "4 x 8 x 16"},
                                     {1, 32, 32, 32, false, "32 x 32 x 32"},
                                     {1, 64, 64, 64, false, "64 x 64 x 64"},
                                     {64, 16, 16, 8, true, "64 heads of 16 x 16 x 8, Q K^T"},
                                     {64, 16, 8, 16, false, "64 heads of 16 x 8 x 16, P V"},
                                     {128, 64, 64, 32, true, "128 heads of 64 x 64 x 32, Q K^T"},
                                     {128, 64, 32, 64, false, "128 heads of 64 x 32 x 64, P V"}};
  const int samples = quick ? 3 : 9;
  const double budget = quick ? 0.01 : 0.05;
  const int saved_threads = omp_get_max_threads();
  for (int threads : {1, 2}) {
    if (threads > saved_threads || (cpu_time && threads > 1)) continue;
    omp_set_num_threads(threads);
    std::printf(
        "\n## Small and batched GEMMs, float32, %d thread%s (microseconds per call, median%s)\n\n"
        "| product | Eigen tiles (before) | mmgrad backend | before / now "
        "|\n|---|---:|---:|---:|\n",
        threads, threads == 1 ? "" : "s", cpu_time ? ", thread CPU time" : "");
    for (const Small& s : shapes) {
      std::vector<float> A(s.batch * s.M * s.K), B(s.batch * s.K * s.N), C(s.batch * s.M * s.N);
      for (size_t i = 0; i < A.size(); ++i) A[i] = static_cast<float>((i * 7 + 3) % 17) / 17 - 0.5f;
      for (size_t i = 0; i < B.size(); ++i) B[i] = static_cast<float>((i * 5 + 1) % 13) / 13 - 0.5f;
      const mmgrad::GemmArgs g = mmgrad::GemmArgs{.batch = s.batch, .M = s.M, .N = s.N, .K = s.K}
                                     .a(A.data(), s.K)
                                     .b(B.data(), s.trans_b ? s.K : s.N, s.trans_b)
                                     .c(C.data(), s.N)
                                     .batch_strides(s.M * s.K, s.K * s.N, s.M * s.N);
      const std::vector<std::function<void()>> impls = {
          [&] { mmgrad::cpu::gemm_eigen_tiles(g); },
          [&] { mmgrad::backend(mmgrad::kCPU).gemm(g); }};
      std::vector<std::vector<double>> t(impls.size());
      for (auto& f : impls) f();
      for (int smp = 0; smp < samples; ++smp)
        for (size_t i = 0; i < impls.size(); ++i)
          t[i].push_back(seconds_per_call(impls[i], budget, cpu_time));
      double us[2];
      for (size_t i = 0; i < impls.size(); ++i) {
        std::sort(t[i].begin(), t[i].end());
        us[i] = 1e6 * t[i][t[i].size() / 2];
      }
      std::printf("| %s | %.2f | %.2f | %.2f |\n", s.what, us[0], us[1], us[0] / us[1]);
      std::fflush(stdout);
    }
  }
  omp_set_num_threads(saved_threads);
}

// float64: the top rung (dgemm_microkernel) against Eigen and the backend, % of the float64
// peak (half the float32 one: 8 doubles per register instead of 16 floats).
inline void run_f64(bool quick, bool cpu_time, double peak1, double peak2) {
  using namespace mmgrad::cpu::ladder;
  std::vector<Shape> shapes = {{256, 256, 256, "square"},
                               {1024, 1024, 1024, "square"},
                               {4096, 128, 64, "tall-skinny (linear, K=64)"},
                               {256, 512, 128, "attention / MLP block"}};
  if (quick) shapes.resize(1);
  const int samples = quick ? 3 : 7;
  const double budget = quick ? 0.01 : 0.05;
  const int saved_threads = omp_get_max_threads();
  for (int threads : {1, 2}) {
    if (threads > saved_threads || (cpu_time && threads > 1)) continue;
    const double peak = (threads == 1 ? peak1 : peak2) / 2;
    std::printf(
        "\n## GEMM ladder float64, %d thread%s (GFLOP/s and %% of the %.0f GFLOP/s float64 peak)"
        "\n\n| M x N x K | shape | 5. microkernel (f64) | Eigen direct | Eigen tiles (before) | "
        "mmgrad backend | microkernel / Eigen |\n|---|---|---:|---:|---:|---:|---:|\n",
        threads, threads == 1 ? "" : "s", peak);
    omp_set_num_threads(threads);
    for (const Shape& s : shapes) {
      std::vector<double> A(s.M * s.K), B(s.K * s.N), C(s.M * s.N, 0.0);
      for (size_t i = 0; i < A.size(); ++i) A[i] = static_cast<double>((i * 7 + 3) % 17) / 17 - 0.5;
      for (size_t i = 0; i < B.size(); ++i) B[i] = static_cast<double>((i * 5 + 1) % 13) / 13 - 0.5;
      using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
      Eigen::Map<const RowMat> ma(A.data(), s.M, s.K), mb(B.data(), s.K, s.N);
      Eigen::Map<RowMat> mc(C.data(), s.M, s.N);
      std::vector<std::function<void()>> impls = {
          [&] {
            dgemm_microkernel(false, false, s.M, s.N, s.K, 1.0, A.data(), s.K, B.data(), s.N, 0.0,
                              C.data(), s.N);
          },
          [&] { mc.noalias() = ma * mb; },
          [&] { mmgrad::cpu::gemm_eigen_tiles(f64_args(s, A.data(), B.data(), C.data())); },
          [&] { mmgrad::backend(mmgrad::kCPU).gemm(f64_args(s, A.data(), B.data(), C.data())); }};
      std::vector<std::vector<double>> t(impls.size());
      for (auto& f : impls) f();
      for (int smp = 0; smp < samples; ++smp)
        for (size_t i = 0; i < impls.size(); ++i)
          t[i].push_back(seconds_per_call(impls[i], budget, cpu_time));
      const double flops = 2.0 * static_cast<double>(s.M) * s.N * s.K;
      std::printf("| %lld x %lld x %lld | %s |", static_cast<long long>(s.M),
                  static_cast<long long>(s.N), static_cast<long long>(s.K), s.what);
      std::vector<double> g(impls.size());
      for (size_t i = 0; i < impls.size(); ++i) {
        std::sort(t[i].begin(), t[i].end());
        g[i] = flops / t[i][t[i].size() / 2] / 1e9;
        std::printf(" %.1f (%.0f%%) |", g[i], 100 * g[i] / peak);
      }
      std::printf(" %.2f |\n", g[0] / g[1]);
      std::fflush(stdout);
    }
  }
  omp_set_num_threads(saved_threads);
}

inline void run(bool quick, bool cpu_time, double peak1, double peak2,
                double (*fma_loop)(int64_t)) {
  using namespace mmgrad::cpu::ladder;
  run_small(quick, cpu_time);
  std::vector<Shape> shapes = {{64, 64, 64, "square"},
                               {256, 256, 256, "square"},
                               {512, 512, 512, "square"},
                               {1024, 1024, 1024, "square"},
                               {2048, 2048, 2048, "square"},
                               {4096, 128, 64, "tall-skinny (linear, K=64)"},
                               {4096, 256, 32, "tall-skinny (K=32)"},
                               {1024, 128, 512, "K=512, narrow N"},
                               {256, 512, 128, "attention / MLP block"},
                               {128, 64, 4096, "weight gradient dY^T X (A^T)", true}};
  if (quick) shapes = {{64, 64, 64, "square"}, {256, 256, 256, "square"}, {256, 512, 128, "block"}};
  const int samples = quick ? 3 : 7;
  const double budget = quick ? 0.01 : 0.05;
  int n_rungs = 0;
  const Rung* rung = rungs(&n_rungs);
  const int saved_threads = omp_get_max_threads();
  if (cpu_time) {
    peak1 = cpu_time_peak(fma_loop, quick);
    std::printf(
        "\n(--cpu-time: timed by each call's thread CPU time; 1-thread FMA peak %.1f "
        "GFLOP/s by the same clock)\n",
        peak1);
  }

  for (int threads : {1, 2}) {
    if (threads > saved_threads || (cpu_time && threads > 1)) continue;
    const double peak = threads == 1 ? peak1 : peak2;
    std::printf(
        "\n## GEMM ladder float32, %d thread%s (GFLOP/s and %% of the %.0f GFLOP/s FMA peak; "
        "micro-kernel: %s)\n\n",
        threads, threads == 1 ? "" : "s", peak, isa_name(best_isa()));
    std::printf("| M x N x K | shape |");
    for (int r = 0; r < n_rungs; ++r)
      if (threads == 1 || rung[r].threaded) std::printf(" %d. %s |", r + 1, rung[r].name);
    std::printf(
        " Eigen direct | Eigen tiles (before) | mmgrad backend | microkernel / Eigen |\n|---|---|");
    for (int r = 0; r < n_rungs; ++r)
      if (threads == 1 || rung[r].threaded) std::printf("---:|");
    std::printf("---:|---:|---:|---:|\n");
    omp_set_num_threads(threads);

    for (const Shape& s : shapes) {
      std::vector<float> A(s.M * s.K), B(s.K * s.N), C(s.M * s.N, 0.0f);
      for (size_t i = 0; i < A.size(); ++i) A[i] = static_cast<float>((i * 7 + 3) % 17) / 17 - 0.5f;
      for (size_t i = 0; i < B.size(); ++i) B[i] = static_cast<float>((i * 5 + 1) % 13) / 13 - 0.5f;
      using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
      const int64_t lda = s.trans_a ? s.M : s.K;  // A stored M x K, or K x M when transposed
      Eigen::Map<const RowMat> ma(A.data(), s.trans_a ? s.K : s.M, lda), mb(B.data(), s.K, s.N);
      Eigen::Map<RowMat> mc(C.data(), s.M, s.N);

      // The implementations timed for this shape and thread count.
      std::vector<std::function<void()>> impls;
      std::vector<bool> present;
      const double macs = static_cast<double>(s.M) * s.N * s.K;
      for (int r = 0; r < n_rungs; ++r) {
        if (threads > 1 && !rung[r].threaded) continue;
        const double limit = r == 0 ? 512.0 * 512 * 512 : r < 3 ? 1024.0 * 1024 * 1024 : 1e30;
        present.push_back(macs <= limit);
        const SgemmFn fn = rung[r].fn;
        impls.push_back([&, fn] {
          fn(s.trans_a, false, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), s.N, 0.0f, C.data(),
             s.N);
        });
      }
      present.push_back(true);
      impls.push_back([&] {
        if (s.trans_a)
          mc.noalias() = ma.transpose() * mb;
        else
          mc.noalias() = ma * mb;
      });
      const mmgrad::GemmArgs g = mmgrad::GemmArgs{.M = s.M, .N = s.N, .K = s.K}
                                     .a(A.data(), lda, s.trans_a)
                                     .b(B.data(), s.N)
                                     .c(C.data(), s.N);
      present.push_back(true);
      impls.push_back([&] { mmgrad::cpu::gemm_eigen_tiles(g); });
      present.push_back(true);
      impls.push_back([&] { mmgrad::backend(mmgrad::kCPU).gemm(g); });

      std::vector<std::vector<double>> t(impls.size());
      for (size_t i = 0; i < impls.size(); ++i)
        if (present[i]) impls[i]();  // warm-up: page faults, packing buffers
      for (int smp = 0; smp < samples; ++smp)
        for (size_t i = 0; i < impls.size(); ++i)
          if (present[i]) t[i].push_back(seconds_per_call(impls[i], budget, cpu_time));
      std::printf("| %lld x %lld x %lld | %s |", static_cast<long long>(s.M),
                  static_cast<long long>(s.N), static_cast<long long>(s.K), s.what);
      std::vector<double> gflops(impls.size(), 0);
      for (size_t i = 0; i < impls.size(); ++i) {
        if (!present[i]) {
          std::printf(" - |");
          continue;
        }
        std::sort(t[i].begin(), t[i].end());
        gflops[i] = 2 * macs / t[i][t[i].size() / 2] / 1e9;
        std::printf(" %.1f (%.0f%%) |", gflops[i], 100 * gflops[i] / peak);
      }
      // The micro-kernel rung is the last rung column; Eigen direct follows it.
      const size_t micro = impls.size() - 4, eigen = impls.size() - 3;
      std::printf(" %.2f |\n", gflops[micro] / gflops[eigen]);
      std::fflush(stdout);
    }
  }
  omp_set_num_threads(saved_threads);
  run_f64(quick, cpu_time, peak1, peak2);
}

}  // namespace gemm_ladder_bench
