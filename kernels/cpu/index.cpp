// Indexing kernels: index_select / index_add (embedding rows and their gradient), gather /
// scatter_add along a dimension, and row sorting (sort, top-k).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <vector>

#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/kernels/cpu/parallel.h"

namespace mmgrad::cpu {

void CpuBackend::index_select(DType dtype, const void* src, const int64_t* idx, void* out,
                              int64_t outer, int64_t src_dim, int64_t inner, int64_t n_idx) {
  const size_t es = dtype_size(dtype);
  const char* s = static_cast<const char*>(src);
  char* o = static_cast<char*>(out);
  const size_t row = static_cast<size_t>(inner) * es;
  parallel_for(outer * n_idx, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(inner, 1)),
               [&](int64_t b, int64_t e) {
                 for (int64_t t = b; t < e; ++t) {
                   int64_t oi = t / n_idx, i = t % n_idx;
                   std::memcpy(o + static_cast<size_t>(t) * row,
                               s + static_cast<size_t>(oi * src_dim + idx[i]) * row, row);
                 }
               });
}

void CpuBackend::index_add(DType dtype, const void* src, const int64_t* idx, void* dst,
                           int64_t outer, int64_t dst_dim, int64_t inner, int64_t n_idx) {
  dispatch_floating(dtype, "index_add", [&](auto t) {
    using T = decltype(t);
    const T* s = static_cast<const T*>(src);
    T* d = static_cast<T*>(dst);
    // Repeated indices write the same row, so parallelise over the inner (column) range only.
    parallel_for(inner, 1024, [&](int64_t cb, int64_t ce) {
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < n_idx; ++i) {
          const T* sr = s + (o * n_idx + i) * inner;
          T* dr = d + (o * dst_dim + idx[i]) * inner;
#pragma omp simd
          for (int64_t c = cb; c < ce; ++c) dr[c] += sr[c];
        }
    });
  });
}

void CpuBackend::gather(DType dtype, const void* src, const int64_t* idx, void* out, int64_t outer,
                        int64_t src_dim, int64_t idx_dim, int64_t inner) {
  dispatch_all(dtype, [&](auto t) {
    using T = decltype(t);
    const T* s = static_cast<const T*>(src);
    T* o = static_cast<T*>(out);
    parallel_for(outer * idx_dim * inner, kElementwiseGrain, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        int64_t k = p % inner, oj = p / inner, oi = oj / idx_dim;
        o[p] = s[(oi * src_dim + idx[p]) * inner + k];
      }
    });
  });
}

void CpuBackend::scatter_add(DType dtype, const void* src, const int64_t* idx, void* dst,
                             int64_t outer, int64_t dst_dim, int64_t idx_dim, int64_t inner) {
  dispatch_floating(dtype, "scatter_add", [&](auto t) {
    using T = decltype(t);
    const T* s = static_cast<const T*>(src);
    T* d = static_cast<T*>(dst);
    // Each (outer, inner) column is independent; indices only collide within a column.
    parallel_for(outer * inner, kElementwiseGrain / std::max<int64_t>(idx_dim, 1) + 1,
                 [&](int64_t b, int64_t e) {
                   for (int64_t c = b; c < e; ++c) {
                     int64_t oi = c / inner, k = c % inner;
                     for (int64_t j = 0; j < idx_dim; ++j) {
                       int64_t p = (oi * idx_dim + j) * inner + k;
                       d[(oi * dst_dim + idx[p]) * inner + k] += s[p];
                     }
                   }
                 });
  });
}

void CpuBackend::sort_rows(DType dtype, const void* in, void* values, int64_t* indices,
                           int64_t rows, int64_t n, int64_t k, bool descending) {
  dispatch_all(dtype, [&](auto t) {
    using T = decltype(t);
    const T* x = static_cast<const T*>(in);
    T* v = static_cast<T*>(values);
    parallel_for(
        rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)), [&](int64_t b, int64_t e) {
          std::vector<int64_t> order(static_cast<size_t>(n));
          for (int64_t r = b; r < e; ++r) {
            const T* row = x + r * n;
            std::iota(order.begin(), order.end(), 0);
            // Stable, so equal values keep their original order (deterministic indices). NaN
            // sorts as larger than every number (PyTorch's order); plain < on NaN would break the
            // strict weak ordering the std algorithms rely on.
            auto cmp = [&](int64_t i, int64_t j) {
              const T a = row[i], b = row[j];
              if constexpr (std::is_floating_point_v<T>) {
                if (std::isnan(a) || std::isnan(b))
                  return descending ? (std::isnan(a) && !std::isnan(b))
                                    : (!std::isnan(a) && std::isnan(b));
              }
              return descending ? a > b : a < b;
            };
            if (k < n) {
              std::partial_sort(
                  order.begin(), order.begin() + k, order.end(),
                  [&](int64_t i, int64_t j) { return cmp(i, j) || (!cmp(j, i) && i < j); });
            } else {
              std::stable_sort(order.begin(), order.end(), cmp);
            }
            for (int64_t i = 0; i < k; ++i) {
              v[r * k + i] = row[order[i]];
              indices[r * k + i] = order[i];
            }
          }
        });
  });
}

}  // namespace mmgrad::cpu
