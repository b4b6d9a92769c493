// Reference for task 4.1: the backend's own im2col kernel, the first half of conv2d
// (ops/conv.cpp; the layout is kernels/index_math.h's im2col_source), run on a batch of one.
#include "mmgrad/kernels/backend.h"
#include "mmgrad/kernels/index_math.h"
#include "tasks.h"

namespace mmgrad::exercises::solution {

Tensor im2col(const Tensor& x, int64_t kernel_size, int64_t stride, int64_t padding) {
  MMGRAD_CHECK(x.defined() && x.dim() == 3, "im2col: expected x [C, H, W]");
  Conv2dGeom g;
  g.N = 1, g.C = x.size(0), g.H = x.size(1), g.W = x.size(2);
  g.KH = g.KW = kernel_size;
  g.SH = g.SW = stride;
  g.PH = g.PW = padding;
  g.OH = index::conv_out_size(g.H, kernel_size, stride, padding, 1);
  g.OW = index::conv_out_size(g.W, kernel_size, stride, padding, 1);
  Tensor xc = x.contiguous();
  Tensor cols = Tensor::empty({g.C * g.KH * g.KW, g.OH * g.OW}, x.options());
  backend(x.device()).im2col(x.dtype(), xc.raw_data(), cols.raw_data(), g);
  return cols;
}

}  // namespace mmgrad::exercises::solution
