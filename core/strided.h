// Strided: what a kernel needs to read or write a tensor, and nothing more.
//
// A kernel never sees a Tensor (kernels sit below tensor/ in the dependency order); it gets the
// address of the first element, the dtype, and the shape and strides in elements. Broadcasting is
// expressed by a stride of 0, transposes by swapped strides: the kernel does not care.
#pragma once

#include <cstdint>

#include "mmgrad/core/dtype.h"
#include "mmgrad/core/shape.h"

#if defined(__CUDACC__)
#define MMGRAD_HD __host__ __device__ __forceinline__
#else
#define MMGRAD_HD inline
#endif

namespace mmgrad {

struct Strided {
  void* data = nullptr;
  DType dtype = DType::Float32;
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};

  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
  bool is_contiguous() const {
    if (numel() == 0) return true;  // no elements: nothing to lay out
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; --i) {
      if (shape[i] != 1 && strides[i] != s) return false;
      s *= shape[i];
    }
    return true;
  }
  template <class T>
  T* ptr() const {
    return static_cast<T*>(data);
  }
};

}  // namespace mmgrad
