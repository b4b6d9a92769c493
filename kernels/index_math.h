// Index arithmetic shared by the CPU and CUDA backends (host and device inline functions), so it
// is written once and tested on the CPU.
#pragma once

#include <cstdint>

#include "core/strided.h"
#include "kernels/backend.h"

namespace mmgrad::index {

// Offset (in elements) of the element with flat row-major index `flat` in a strided view.
MMGRAD_HD int64_t strided_offset(int64_t flat, int ndim, const int64_t* shape,
                                 const int64_t* strides) {
  int64_t off = 0;
  for (int d = ndim - 1; d >= 0; --d) {
    int64_t i = flat % shape[d];
    flat /= shape[d];
    off += i * strides[d];
  }
  return off;
}

// Output size of a convolution / pooling window along one axis.
MMGRAD_HD int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad,
                                int64_t dilation) {
  return (in + 2 * pad - dilation * (k - 1) - 1) / stride + 1;
}

// Adaptive pooling window [start, end) of output cell i when `in` cells pool into `out`.
MMGRAD_HD int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
MMGRAD_HD int64_t adaptive_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

// im2col: row r = (c*KH + kh)*KW + kw of the column matrix, column p = oh*OW + ow, reads input
// pixel (c, ih, iw) with ih = oh*SH - PH + kh*DH, iw = ow*SW - PW + kw*DW, or zero padding when
// that lies outside the image. Returns -1 for padding, else the offset h*W + w within channel c.
MMGRAD_HD int64_t im2col_source(const Conv2dGeom& g, int64_t kh, int64_t kw, int64_t oh,
                                int64_t ow) {
  int64_t ih = oh * g.SH - g.PH + kh * g.DH;
  int64_t iw = ow * g.SW - g.PW + kw * g.DW;
  if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) return -1;
  return ih * g.W + iw;
}

}  // namespace mmgrad::index
