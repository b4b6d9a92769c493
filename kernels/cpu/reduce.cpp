// Reductions: sum, max, min over any set of dimensions, and argmax/argmin over one.
//
// The output has the input's rank with each reduced dimension of size 1. The dimensions are
// split into kept (K) and reduced (R) groups, each coalesced. Two layouts get fast paths:
//   - R innermost and contiguous (sum over the last dim): one vectorised reduction per output;
//   - K innermost and contiguous (sum over the batch dim): accumulate whole rows into the
//     output, also vectorised.
// Anything else walks the reduced elements with index arithmetic.
// Float sums accumulate in double, so a float32 sum of millions of numbers stays accurate.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/kernels/cpu/parallel.h"
#include "mmgrad/kernels/index_math.h"

namespace mmgrad::cpu {
namespace {

// Kept and reduced dimension groups, coalesced (kernels/index_math.h, shared with CUDA).
using Dims = index::DimGroup;

template <class T>
struct Acc {
  using type = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
};

// max / min / argmax / argmin: v replaces best when it is more extreme; NaN propagates (as in
// PyTorch) and the first NaN, like the first of equal extremes, is kept.
template <class T>
inline bool more_extreme(T v, T best, bool want_max) {
  if constexpr (std::is_floating_point_v<T>) {
    if (v != v) return best == best;  // v is NaN: it wins unless best already is
  }
  return want_max ? v > best : v < best;
}

template <class T>
void reduce_typed(ReduceOp op, const Strided& in, const Strided& out) {
  using A = typename Acc<T>::type;
  const index::ReduceSplit split = index::split_reduce(in, out);
  const Dims &K = split.kept, &R = split.reduced;
  const T* x = in.ptr<T>();
  const int64_t nK = K.numel(), nR = R.numel();
  const bool is_arg = op == ReduceOp::ArgMax || op == ReduceOp::ArgMin;
  const bool want_max = op == ReduceOp::Max || op == ReduceOp::ArgMax;

  // Output element k (flat over K) lives at this offset.
  auto out_off = [&](int64_t k) { return index::strided_offset(k, K.n, K.shape, K.out_stride); };
  auto in_off = [&](int64_t k) { return index::strided_offset(k, K.n, K.shape, K.in_stride); };

  auto store = [&](int64_t k, A acc, int64_t arg) {
    if (is_arg)
      out.ptr<int64_t>()[out_off(k)] = arg;
    else
      out.ptr<T>()[out_off(k)] = static_cast<T>(acc);
  };

  // An empty reduction: a sum over no elements is 0 (its identity); max, min and their indices
  // have no value there (the ops reject it first, naming themselves, as PyTorch does).
  if (nR == 0) {
    if (op != ReduceOp::Sum)
      fail(
          "reduce: max/min/argmax/argmin over an empty dimension has no value (input has no "
          "elements along the reduced dimensions)");
    for (int64_t k = 0; k < nK; ++k) store(k, A(0), 0);
    return;
  }

  // Fast path 1: the innermost reduced dim is contiguous, so each output sums a few contiguous
  // runs (sum over the last dim: one run; the bias gradient of a conv, sum over {0, 2, 3} of
  // NCHW: N runs of H*W). Each run is a vectorised reduction.
  if (op == ReduceOp::Sum && R.n >= 1 && R.in_stride[R.n - 1] == 1) {
    const int64_t run = R.shape[R.n - 1], nruns = nR / run;
    Dims RO = R;  // the reduced dims other than the innermost
    RO.n = R.n - 1;
    parallel_for(nK, std::max<int64_t>(1, kElementwiseGrain / nR), [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        const T* p = x + in_off(k);
        A acc = 0;
        for (int64_t ro = 0; ro < nruns; ++ro) {
          const T* q = p + index::strided_offset(ro, RO.n, RO.shape, RO.in_stride);
#pragma omp simd reduction(+ : acc)
          for (int64_t r = 0; r < run; ++r) acc += static_cast<A>(q[r]);
        }
        store(k, acc, 0);
      }
    });
    return;
  }

  // Fast path 2: kept elements innermost and contiguous in input and output (e.g. column sums).
  if (op == ReduceOp::Sum && K.n >= 1 && K.in_stride[K.n - 1] == 1 && K.out_stride[K.n - 1] == 1) {
    const int64_t inner = K.shape[K.n - 1];
    int64_t outer_k = nK / inner;
    Dims KO = K;  // the kept dims other than the innermost
    KO.n = K.n - 1;
    parallel_for(inner, 1024, [&](int64_t cb, int64_t ce) {
      std::vector<A> acc(static_cast<size_t>(ce - cb));
      for (int64_t ko = 0; ko < outer_k; ++ko) {
        std::fill(acc.begin(), acc.end(), A(0));
        int64_t base_in = index::strided_offset(ko, KO.n, KO.shape, KO.in_stride);
        for (int64_t r = 0; r < nR; ++r) {
          const T* p = x + base_in + index::strided_offset(r, R.n, R.shape, R.in_stride) + cb;
          A* a = acc.data();
#pragma omp simd
          for (int64_t c = 0; c < ce - cb; ++c) a[c] += static_cast<A>(p[c]);
        }
        T* o = out.ptr<T>() + index::strided_offset(ko, KO.n, KO.shape, KO.out_stride) + cb;
        for (int64_t c = 0; c < ce - cb; ++c) o[c] = static_cast<T>(acc[c]);
      }
    });
    return;
  }

  // Fast path 3 (max, min, argmax, argmin): kept elements innermost and contiguous (max over
  // the batch dim): keep the running extreme of a block of columns and sweep the rows.
  if (op != ReduceOp::Sum && K.n >= 1 && K.in_stride[K.n - 1] == 1 && K.out_stride[K.n - 1] == 1) {
    const int64_t inner = K.shape[K.n - 1];
    int64_t outer_k = nK / inner;
    Dims KO = K;
    KO.n = K.n - 1;
    parallel_for(inner, 1024, [&](int64_t cb, int64_t ce) {
      const int64_t w = ce - cb;
      std::vector<T> best(static_cast<size_t>(w));
      std::vector<int64_t> arg(static_cast<size_t>(w));
      for (int64_t ko = 0; ko < outer_k; ++ko) {
        int64_t base_in = index::strided_offset(ko, KO.n, KO.shape, KO.in_stride) + cb;
        const T* first = x + base_in + index::strided_offset(0, R.n, R.shape, R.in_stride);
        std::copy(first, first + w, best.begin());
        std::fill(arg.begin(), arg.end(), int64_t{0});
        for (int64_t r = 1; r < nR; ++r) {
          const T* p = x + base_in + index::strided_offset(r, R.n, R.shape, R.in_stride);
          for (int64_t c = 0; c < w; ++c) {
            if (more_extreme(p[c], best[c], want_max)) {
              best[c] = p[c];
              arg[c] = r;
            }
          }
        }
        int64_t base_out = index::strided_offset(ko, KO.n, KO.shape, KO.out_stride) + cb;
        if (is_arg) {
          std::copy(arg.begin(), arg.end(), out.ptr<int64_t>() + base_out);
        } else {
          std::copy(best.begin(), best.end(), out.ptr<T>() + base_out);
        }
      }
    });
    return;
  }

  // Fast path 4 (max, min, argmax, argmin): the reduced elements form one strided run per
  // output (max over the last dim, or over all of a contiguous tensor). Walks it with a pointer
  // instead of index arithmetic (a division per element made max ~20x slower than sum); plain
  // max/min over a contiguous run is a vectorised reduction with NaN tracked on the side.
  if (op != ReduceOp::Sum && R.n <= 1) {
    const int64_t rs = R.n == 1 ? R.in_stride[0] : 0;
    parallel_for(nK, std::max<int64_t>(1, kElementwiseGrain / nR), [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        const T* p = x + in_off(k);
        if (!is_arg && rs == 1) {
          T m = p[0];
          int nan = 0;
          if (want_max) {
#pragma omp simd reduction(max : m) reduction(| : nan)
            for (int64_t r = 0; r < nR; ++r) {
              m = p[r] > m ? p[r] : m;
              nan |= p[r] != p[r];
            }
          } else {
#pragma omp simd reduction(min : m) reduction(| : nan)
            for (int64_t r = 0; r < nR; ++r) {
              m = p[r] < m ? p[r] : m;
              nan |= p[r] != p[r];
            }
          }
          if constexpr (std::is_floating_point_v<T>)
            if (nan) m = std::numeric_limits<T>::quiet_NaN();
          store(k, static_cast<A>(m), 0);
          continue;
        }
        T best = p[0];
        int64_t arg = 0;
        for (int64_t r = 1; r < nR; ++r) {
          T v = p[r * rs];
          if (more_extreme(v, best, want_max)) {
            best = v;
            arg = r;
          }
        }
        store(k, static_cast<A>(best), arg);
      }
    });
    return;
  }

  // General path.
  parallel_for(nK, std::max<int64_t>(1, kElementwiseGrain / nR), [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      const T* p = x + in_off(k);
      if (op == ReduceOp::Sum) {
        A acc = 0;
        for (int64_t r = 0; r < nR; ++r)
          acc += static_cast<A>(p[index::strided_offset(r, R.n, R.shape, R.in_stride)]);
        store(k, acc, 0);
        continue;
      }
      // max / min / argmax / argmin: the first extreme wins ties; NaN propagates (as PyTorch).
      T best = p[index::strided_offset(0, R.n, R.shape, R.in_stride)];
      int64_t arg = 0;
      for (int64_t r = 1; r < nR; ++r) {
        T v = p[index::strided_offset(r, R.n, R.shape, R.in_stride)];
        bool better = want_max ? (v > best) : (v < best);
        if constexpr (std::is_floating_point_v<T>) {
          if (std::isnan(best)) break;
          better = better || std::isnan(v);
        }
        if (better) {
          best = v;
          arg = r;
        }
      }
      store(k, static_cast<A>(best), arg);
    }
  });
}

}  // namespace

void CpuBackend::reduce(ReduceOp op, const Strided& in, const Strided& out) {
  switch (in.dtype) {
    case DType::Float32:
      return reduce_typed<float>(op, in, out);
    case DType::Float64:
      return reduce_typed<double>(op, in, out);
    case DType::Int64:
      return reduce_typed<int64_t>(op, in, out);
    case DType::Bool:
      fail("reduce: convert bool tensors to int64 or float first");
  }
}

}  // namespace mmgrad::cpu
