// Convolution helpers (im2col / col2im) and pooling, NCHW, one thread per element.
//
// Forward kernels run one thread per output element. The backward kernels (col2im and the
// pooling gradients) run one thread per *input* pixel and gather every output that read it
// (index::conv_window_of inverts the window arithmetic), so each pixel is written by exactly one
// thread: no atomics, a deterministic order, and the same order of additions as the CPU's
// scatter loops. The per-element bodies are in kernel_math.h and tested on the CPU.
#include <cuda_runtime.h>

#include "mmgrad/kernels/cuda/cuda_common.cuh"

namespace mmgrad::cuda {
namespace {

template <class T>
struct Im2colF {
  Conv2dGeom g;
  const T* x;
  T* cols;
  __device__ void operator()(int64_t i) const { cols[i] = elem::im2col_value(g, x, i); }
};

template <class T>
struct Col2imF {
  Conv2dGeom g;
  const T* cols;
  T* gx;
  __device__ void operator()(int64_t i) const { gx[i] = elem::col2im_value(g, cols, gx[i], i); }
};

template <class T>
struct MaxPoolF {
  Conv2dGeom g;
  const T* x;
  T* y;
  int64_t* argmax;
  __device__ void operator()(int64_t i) const { elem::max_pool_value(g, x, i, y + i, argmax + i); }
};

template <class T>
struct MaxPoolGradF {
  Conv2dGeom g;
  const T* gy;
  const int64_t* argmax;
  T* gx;
  __device__ void operator()(int64_t i) const {
    gx[i] = elem::max_pool_grad_value(g, gy, argmax, T(0), i);  // gx is written whole
  }
};

template <class T>
struct AvgPoolF {
  Conv2dGeom g;
  const T* x;
  T* y;
  __device__ void operator()(int64_t i) const { y[i] = elem::avg_pool_value(g, x, i); }
};

template <class T>
struct AvgPoolGradF {
  Conv2dGeom g;
  const T* gy;
  T* gx;
  __device__ void operator()(int64_t i) const {
    gx[i] = elem::avg_pool_grad_value(g, gy, gx[i], i);
  }
};

template <class T>
struct AdaptiveAvgF {
  Conv2dGeom g;
  const T* x;
  T* y;
  __device__ void operator()(int64_t i) const { y[i] = elem::adaptive_avg_value(g, x, i); }
};

template <class T>
struct AdaptiveAvgGradF {
  Conv2dGeom g;
  const T* gy;
  T* gx;
  __device__ void operator()(int64_t i) const {
    gx[i] = elem::adaptive_avg_grad_value(g, gy, gx[i], i);
  }
};

// Sizes the kernels divide by or loop over must be sane; the ops compute them, this guards
// against a caller's mistake turning into a division by zero or an endless loop on the GPU.
void check_geom(const char* op, const Conv2dGeom& g, bool adaptive = false) {
  MMGRAD_CHECK(g.N >= 0 && g.C >= 0 && g.H >= 0 && g.W >= 0 && g.OH >= 0 && g.OW >= 0, op,
               ": negative size in geometry (N ", g.N, ", C ", g.C, ", H ", g.H, ", W ", g.W,
               ", OH ", g.OH, ", OW ", g.OW, ")");
  if (adaptive) {
    MMGRAD_CHECK((g.H > 0 && g.W > 0) || g.OH * g.OW == 0, op,
                 ": adaptive pooling needs a non-empty input, got ", g.H, "x", g.W);
    return;
  }
  MMGRAD_CHECK(g.KH >= 1 && g.KW >= 1 && g.SH >= 1 && g.SW >= 1 && g.DH >= 1 && g.DW >= 1 &&
                   g.PH >= 0 && g.PW >= 0,
               op, ": bad window (kernel ", g.KH, "x", g.KW, ", stride ", g.SH, "x", g.SW,
               ", padding ", g.PH, "x", g.PW, ", dilation ", g.DH, "x", g.DW, ")");
}

}  // namespace

void CudaBackend::im2col(DType dtype, const void* x, void* cols, const Conv2dGeom& g) {
  check_geom("im2col", g);
  dispatch_floating(dtype, "im2col", [&](auto t) {
    using T = decltype(t);
    launch_index("im2col", g.N * g.C * g.KH * g.KW * g.OH * g.OW,
                 Im2colF<T>{g, static_cast<const T*>(x), static_cast<T*>(cols)});
  });
}

void CudaBackend::col2im(DType dtype, const void* cols, void* gx, const Conv2dGeom& g) {
  check_geom("col2im", g);
  dispatch_floating(dtype, "col2im", [&](auto t) {
    using T = decltype(t);
    launch_index("col2im", g.N * g.C * g.H * g.W,
                 Col2imF<T>{g, static_cast<const T*>(cols), static_cast<T*>(gx)});
  });
}

// The record is the default layout (Backend::max_pool2d_record_bytes): int64 argmax per window.
void CudaBackend::max_pool2d_forward(DType dtype, const void* x, void* y, void* record,
                                     const Conv2dGeom& g) {
  check_geom("max_pool2d", g);
  int64_t* argmax = static_cast<int64_t*>(record);
  dispatch_floating(dtype, "max_pool2d", [&](auto t) {
    using T = decltype(t);
    launch_index("max_pool2d", g.N * g.C * g.OH * g.OW,
                 MaxPoolF<T>{g, static_cast<const T*>(x), static_cast<T*>(y), argmax});
  });
}

void CudaBackend::max_pool2d_backward(DType dtype, const void* gy, const void* record, void* gx,
                                      const Conv2dGeom& g) {
  check_geom("max_pool2d_backward", g);
  const int64_t* argmax = static_cast<const int64_t*>(record);
  dispatch_floating(dtype, "max_pool2d_backward", [&](auto t) {
    using T = decltype(t);
    launch_index("max_pool2d_backward", g.N * g.C * g.H * g.W,
                 MaxPoolGradF<T>{g, static_cast<const T*>(gy), argmax, static_cast<T*>(gx)});
  });
}

void CudaBackend::avg_pool2d_forward(DType dtype, const void* x, void* y, const Conv2dGeom& g) {
  check_geom("avg_pool2d", g);
  dispatch_floating(dtype, "avg_pool2d", [&](auto t) {
    using T = decltype(t);
    launch_index("avg_pool2d", g.N * g.C * g.OH * g.OW,
                 AvgPoolF<T>{g, static_cast<const T*>(x), static_cast<T*>(y)});
  });
}

void CudaBackend::avg_pool2d_backward(DType dtype, const void* gy, void* gx, const Conv2dGeom& g) {
  check_geom("avg_pool2d_backward", g);
  dispatch_floating(dtype, "avg_pool2d_backward", [&](auto t) {
    using T = decltype(t);
    launch_index("avg_pool2d_backward", g.N * g.C * g.H * g.W,
                 AvgPoolGradF<T>{g, static_cast<const T*>(gy), static_cast<T*>(gx)});
  });
}

void CudaBackend::adaptive_avg_pool2d_forward(DType dtype, const void* x, void* y,
                                              const Conv2dGeom& g) {
  check_geom("adaptive_avg_pool2d", g, true);
  dispatch_floating(dtype, "adaptive_avg_pool2d", [&](auto t) {
    using T = decltype(t);
    launch_index("adaptive_avg_pool2d", g.N * g.C * g.OH * g.OW,
                 AdaptiveAvgF<T>{g, static_cast<const T*>(x), static_cast<T*>(y)});
  });
}

void CudaBackend::adaptive_avg_pool2d_backward(DType dtype, const void* gy, void* gx,
                                               const Conv2dGeom& g) {
  check_geom("adaptive_avg_pool2d_backward", g, true);
  dispatch_floating(dtype, "adaptive_avg_pool2d_backward", [&](auto t) {
    using T = decltype(t);
    // With OH == 0 or OW == 0 no window covers any pixel: the gradient stays as it is.
    if (g.OH == 0 || g.OW == 0) return;
    launch_index("adaptive_avg_pool2d_backward", g.N * g.C * g.H * g.W,
                 AdaptiveAvgGradF<T>{g, static_cast<const T*>(gy), static_cast<T*>(gx)});
  });
}

}  // namespace mmgrad::cuda
