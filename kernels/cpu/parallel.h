// OpenMP helpers for CPU kernels.
//
// Starting a parallel region costs a few microseconds, so loops run serially below a size
// threshold: tiny tensors stay cheap, large ones use every core. Work is split into one
// contiguous block per thread (static schedule), which keeps results independent of timing.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace mmgrad::cpu {

// Elementwise loops split when they have at least this many elements per thread.
inline constexpr int64_t kElementwiseGrain = 32768;

// The strided elementwise loops (copy, unary and binary maps, where, fill: strided_loop.h) run
// at ~0.3 ns per element and thread (in cache), so they split only at twice kElementwiseGrain:
// each thread then gets >= ~20 us, several times what waking a sleeping OpenMP worker and
// joining it costs. Below that a second thread saves less than it costs, and on a loaded
// machine a worker that is not running when the region starts costs far more: a training step
// of a small model (lesson 04's CLIP, 32 images) is hundreds of such ops. The threshold is a
// size, the same for every team size, so which loops split never depends on the thread count.
inline constexpr int64_t kCheapElementwiseGrain = 2 * kElementwiseGrain;

// Calls fn(begin, end) on disjoint blocks covering [0, n). Serial when n < 2 * grain, when only
// one thread is available, or when already inside a parallel region (no nested pools).
template <class F>
void parallel_for(int64_t n, int64_t grain, F&& fn) {
  if (n <= 0) return;
  // Below 2 grains (n / 2 < grain) one chunk whatever the thread count: the common tiny case
  // skips asking OpenMP. (One serial call site below, so fn's body is inlined only twice.)
  int64_t chunks = 1;
  if (grain <= 0 || n / 2 >= grain) {
    const int max_threads = omp_get_max_threads();
    chunks = grain > 0 ? std::min<int64_t>(max_threads, n / grain) : max_threads;
    if (chunks > 1 && omp_in_parallel()) chunks = 1;
  }
  if (chunks <= 1) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(static_cast <int>(chunks))
  {
    int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    int64_t begin = n * t / nt, end = n * (t + 1) / nt;
    if (begin < end) fn(begin, end);
  }
}

}  // namespace mmgrad::cpu
