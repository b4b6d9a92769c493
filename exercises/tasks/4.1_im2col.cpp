// Task 4.1: im2col, a convolution as one matrix product                 (lesson 04_mini_clip)
//
// Lesson 04's image encoder is a stack of 3x3 convolutions. mmgrad (like most frameworks on a
// CPU) computes a convolution as im2col + one matrix multiply: im2col copies every k x k window
// the kernel visits into a column, so that applying the kernel to all windows at once is a
// GEMM. For one image x [C, H, W], kernel size k, stride s and zero padding p:
//
//     OH = (H + 2p - k) / s + 1,   OW = (W + 2p - k) / s + 1      (integer division, floor)
//     cols has shape [C*k*k, OH*OW]
//     column  q = oh*OW + ow           one output pixel (oh, ow), in row-major order
//     row     r = (c*k + kh)*k + kw    one kernel tap: channel c, kernel row kh, kernel column kw
//     cols[r][q] = x[c][oh*s - p + kh][ow*s - p + kw], or 0 where that lies outside the image
//                  (the padding: rows -p..-1 and H..H+p-1, likewise the columns)
//
// The row order (c, kh, kw) is the order of a conv weight [O, C, k, k] flattened per output
// channel, so for a weight w:
//     conv2d(x, w, {}, s, p) == matmul(w.reshape({O, C*k*k}), cols).reshape({O, OH, OW})
// (kernels/index_math.h, im2col_source, documents the same layout.)
//
// Inputs: x [C, H, W] floating (float32 or float64), k >= 1, s >= 1, p >= 0, and k <= H + 2p,
// k <= W + 2p. Return cols [C*k*k, OH*OW] in x's dtype.
// A plain loop is fine: read x with x.to_vector<double>() (row-major: x[c][h][w] is entry
// (c*H + h)*W + w), fill a std::vector<double>, then
// Tensor::from_vector(values, {rows, cols}, x.dtype()).
// Do not call conv2d or the backend's im2col: they are the answer.
//
// Check your work: make exercise TASK=4.1
#include "tasks.h"

namespace mmgrad::exercises {

Tensor im2col(const Tensor& x, int64_t kernel_size, int64_t stride, int64_t padding) {
  (void)x, (void)kernel_size, (void)stride, (void)padding;
  not_done("4.1", "im2col");
}

}  // namespace mmgrad::exercises
