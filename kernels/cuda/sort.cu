// Row sorting (sort, top-k) with CUB's stable segmented sort, one segment per row.
//
// The CPU sorts each row by value and keeps equal values in their original order (a stable sort
// or, for top-k, a partial sort that breaks ties by index). A stable sort of (key, position)
// pairs gives exactly that order. Two details make the keys agree with the CPU's comparison
// (elem::sort_key): -0.0 and +0.0 compare equal there but differ as radix-sort bit patterns, so
// keys use +0.0 for both; and NaN sorts after every number (before them, descending), which the
// radix order gives only for NaNs without the sign bit, so every NaN becomes the positive quiet
// NaN. The sorted values are then read back from the input by position, so they keep their
// exact bits (-0.0 stays -0.0).
#include <cuda_runtime.h>

#include <cub/device/device_segmented_sort.cuh>

#include "mmgrad/kernels/cuda/cuda_common.cuh"

namespace mmgrad::cuda {
namespace {

// keys[t] = sort_key(in[t]), pos[t] = position of t within its row.
template <class T>
struct PrepareF {
  const T* in;
  T* keys;
  int64_t* pos;
  int64_t n;
  __device__ void operator()(int64_t t) const {
    keys[t] = elem::sort_key(in[t]);
    pos[t] = t % n;
  }
};

// Row r is the segment [r * n, (r + 1) * n).
struct OffsetsF {
  int64_t* offsets;
  int64_t n;
  __device__ void operator()(int64_t r) const { offsets[r] = r * n; }
};

// The first k of each sorted row: values[r, i] = in[r, pos], indices[r, i] = pos.
template <class T>
struct TakeF {
  const T* in;
  const int64_t* sorted_pos;
  T* values;
  int64_t* indices;
  int64_t n, k;
  __device__ void operator()(int64_t t) const {
    const int64_t r = t / k, i = t % k;
    const int64_t p = sorted_pos[r * n + i];
    values[t] = in[r * n + p];
    indices[t] = p;
  }
};

void check_cub(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  cudaGetLastError();
  fail(cat_str("sort: CUB ", what, " failed: ", cudaGetErrorName(e), ": ", cudaGetErrorString(e)));
}

}  // namespace

void CudaBackend::sort_rows(DType dtype, const void* in, void* values, int64_t* indices,
                            int64_t rows, int64_t n, int64_t k, bool descending) {
  MMGRAD_CHECK(rows >= 0 && n >= 0 && k >= 0 && k <= n, "sort: bad sizes: rows ", rows, ", n ", n,
               ", k ", k, " (need 0 <= k <= n)");
  if (rows == 0 || k == 0) return;
  dispatch_all(dtype, [&](auto t) {
    using T = decltype(t);
    const int64_t total = rows * n;
    DeviceBuffer keys_in(*this, total * sizeof(T)), keys_out(*this, total * sizeof(T));
    DeviceBuffer pos_in(*this, total * sizeof(int64_t)), pos_out(*this, total * sizeof(int64_t));
    DeviceBuffer offsets(*this, (rows + 1) * sizeof(int64_t));
    launch_index("sort", total,
                 PrepareF<T>{static_cast<const T*>(in), keys_in.as<T>(), pos_in.as<int64_t>(), n});
    launch_index("sort", rows + 1, OffsetsF{offsets.as<int64_t>(), n});

    const int64_t* begin = offsets.as<int64_t>();
    const int64_t* end = offsets.as<int64_t>() + 1;
    auto run = [&](void* temp, size_t& temp_bytes) {
      if (descending)
        return cub::DeviceSegmentedSort::StableSortPairsDescending(
            temp, temp_bytes, keys_in.as<T>(), keys_out.as<T>(), pos_in.as<int64_t>(),
            pos_out.as<int64_t>(), total, rows, begin, end, cudaStream_t{0});
      return cub::DeviceSegmentedSort::StableSortPairs(
          temp, temp_bytes, keys_in.as<T>(), keys_out.as<T>(), pos_in.as<int64_t>(),
          pos_out.as<int64_t>(), total, rows, begin, end, cudaStream_t{0});
    };
    size_t temp_bytes = 0;
    check_cub(run(nullptr, temp_bytes), "DeviceSegmentedSort (temporary storage query)");
    DeviceBuffer temp(*this, temp_bytes);
    check_cub(run(temp.as<void>(), temp_bytes), "DeviceSegmentedSort::StableSortPairs");
    check_launch("sort");

    launch_index("sort", rows * k,
                 TakeF<T>{static_cast<const T*>(in), pos_out.as<int64_t>(), static_cast<T*>(values),
                          indices, n, k});
  });
}

}  // namespace mmgrad::cuda
