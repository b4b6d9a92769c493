// Iterating over several strided operands of the same shape at once.
//
// Every elementwise kernel (copy, unary, binary, where) walks an output and its inputs in
// step. Dimensions are first coalesced: size-1 dimensions dropped, and neighbours merged when
// every operand steps through them as one (stride[d] == stride[d+1] * shape[d+1]). A contiguous
// tensor becomes a single dimension, a row-broadcast add becomes [rows, cols] with stride 0 on
// one operand. The last dimension is then run as a tight inner loop the compiler can vectorise,
// and the outer rows are split across threads.
#pragma once

#include <cstdint>

#include "mmgrad/core/strided.h"
#include "mmgrad/kernels/cpu/parallel.h"
#include "mmgrad/kernels/index_math.h"

namespace mmgrad::cpu {

template <int N>
struct StridedLoop {
  int ndim = 0;
  int64_t shape[kMaxDims];
  int64_t strides[N][kMaxDims];  // in elements
  char* base[N];
  int64_t elsize[N];

  explicit StridedLoop(const Strided* ops[N]) {
    const Strided& ref = *ops[0];
    for (int k = 0; k < N; ++k) {
      base[k] = static_cast<char*>(ops[k]->data);
      elsize[k] = static_cast<int64_t>(dtype_size(ops[k]->dtype));
    }
    // Drop size-1 dims, then merge mergeable neighbours.
    for (int d = 0; d < ref.ndim; ++d) {
      if (ref.shape[d] == 1) continue;
      bool merge = ndim > 0;
      for (int k = 0; k < N && merge; ++k)
        merge = strides[k][ndim - 1] == ops[k]->strides[d] * ref.shape[d];
      if (merge) {
        shape[ndim - 1] *= ref.shape[d];
        for (int k = 0; k < N; ++k) strides[k][ndim - 1] = ops[k]->strides[d];
      } else {
        shape[ndim] = ref.shape[d];
        for (int k = 0; k < N; ++k) strides[k][ndim] = ops[k]->strides[d];
        ++ndim;
      }
    }
    if (ndim == 0) {  // a single element
      shape[0] = 1;
      for (int k = 0; k < N; ++k) strides[k][0] = 0;
      ndim = 1;
    }
  }

  int64_t inner() const { return shape[ndim - 1]; }
  int64_t rows() const {
    int64_t r = 1;
    for (int d = 0; d < ndim - 1; ++d) r *= shape[d];
    return r;
  }

  // Calls body(ptr[N], inner_stride[N], count) over the whole iteration space, in parallel when
  // it is large. Each call covers a run of the innermost dimension.
  template <class Body>
  void run(Body&& body) const {
    const int64_t n_inner = inner(), n_rows = rows();
    int64_t istride[N];
    for (int k = 0; k < N; ++k) istride[k] = strides[k][ndim - 1];
    if (n_rows == 1) {
      // One long run: split it.
      parallel_for(n_inner, kCheapElementwiseGrain, [&](int64_t b, int64_t e) {
        char* p[N];
        for (int k = 0; k < N; ++k) p[k] = base[k] + b * istride[k] * elsize[k];
        body(p, istride, e - b);
      });
      return;
    }
    int64_t grain_rows = kCheapElementwiseGrain / (n_inner > 0 ? n_inner : 1) + 1;
    parallel_for(n_rows, grain_rows, [&](int64_t rb, int64_t re) {
      // Row rb's index over the outer dims (the only divisions), then an odometer: each next
      // row steps the last outer index and carries into the ones before it, moving every
      // operand's pointer by that dimension's stride. (Runs are often short -- a head of 16
      // floats in attention -- and dividing out each row's index cost more than its copy.)
      const int outer = ndim - 1;
      int64_t idx[kMaxDims];
      char* p[N];
      for (int k = 0; k < N; ++k) p[k] = base[k];
      for (int64_t r = rb, d = outer - 1; d >= 0; --d) {
        idx[d] = r % shape[d];
        r /= shape[d];
        for (int k = 0; k < N; ++k) p[k] += idx[d] * strides[k][d] * elsize[k];
      }
      for (int64_t r = rb; r < re; ++r) {
        char* q[N];
        for (int k = 0; k < N; ++k) q[k] = p[k];
        body(q, istride, n_inner);
        for (int d = outer - 1; d >= 0; --d) {
          if (++idx[d] < shape[d]) {
            for (int k = 0; k < N; ++k) p[k] += strides[k][d] * elsize[k];
            break;
          }
          idx[d] = 0;
          for (int k = 0; k < N; ++k) p[k] -= (shape[d] - 1) * strides[k][d] * elsize[k];
        }
      }
    });
  }
};

}  // namespace mmgrad::cpu
