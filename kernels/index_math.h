// Index arithmetic shared by the CPU and CUDA backends (host and device inline functions), so it
// is written once and tested on the CPU.
#pragma once

#include <cstdint>

#include "mmgrad/core/strided.h"
#include "mmgrad/kernels/backend.h"

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

// The inverse of im2col_source along one axis: the output position o whose window reads input
// position i at kernel offset k (i = o*stride - pad + k*dilation), or -1 when there is none
// (i + pad - k*dilation negative, not a multiple of the stride, or o past the last window).
// col2im and the pooling backward passes use it to gather, per input pixel, every output that
// read it, so each pixel is written by one thread and no atomics are needed.
MMGRAD_HD int64_t conv_window_of(int64_t i, int64_t k, int64_t stride, int64_t pad,
                                 int64_t dilation, int64_t out) {
  int64_t t = i + pad - k * dilation;
  if (t < 0 || t % stride != 0) return -1;
  int64_t o = t / stride;
  return o < out ? o : -1;
}

// The adaptive-pooling windows that contain input cell i form the range [first, last]:
//   start(o) <= i  <=>  o*in < (i+1)*out  <=>  o <= ceil((i+1)*out/in) - 1
//   end(o)   >  i  <=>  (o+1)*in > i*out   <=>  o >= floor(i*out/in)
MMGRAD_HD int64_t adaptive_first_out(int64_t i, int64_t in, int64_t out) { return (i * out) / in; }
MMGRAD_HD int64_t adaptive_last_out(int64_t i, int64_t in, int64_t out) {
  int64_t last = ((i + 1) * out + in - 1) / in - 1;
  return last < out - 1 ? last : out - 1;
}

// ---- elementwise: N operands of one shape walked together ---------------------------------------

// The dimensions of N same-shape operands after coalescing: size-1 dimensions dropped and
// neighbours merged where every operand steps through them as one (stride[d] == stride[d+1] *
// shape[d+1]) -- the rule of the CPU's StridedLoop. A contiguous tensor becomes one dimension, a
// row-broadcast add [rows, cols] with stride 0 on one operand. Never fewer than one dimension.
template <int N>
struct ElementwiseDims {
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};
};

template <int N>
inline ElementwiseDims<N> coalesce(const Strided* const (&ops)[N]) {
  ElementwiseDims<N> r;
  const Strided& ref = *ops[0];
  for (int d = 0; d < ref.ndim; ++d) {
    if (ref.shape[d] == 1) continue;
    bool merge = r.ndim > 0;
    for (int k = 0; k < N && merge; ++k)
      merge = r.strides[k][r.ndim - 1] == ops[k]->strides[d] * ref.shape[d];
    if (merge) {
      r.shape[r.ndim - 1] *= ref.shape[d];
      for (int k = 0; k < N; ++k) r.strides[k][r.ndim - 1] = ops[k]->strides[d];
    } else {
      r.shape[r.ndim] = ref.shape[d];
      for (int k = 0; k < N; ++k) r.strides[k][r.ndim] = ops[k]->strides[d];
      ++r.ndim;
    }
  }
  if (r.ndim == 0) {  // a single element
    r.ndim = 1;
    r.shape[0] = 1;
    for (int k = 0; k < N; ++k) r.strides[k][0] = 0;
  }
  return r;
}

// Offsets (in elements) of the element with flat row-major index `flat` in each operand: one
// division per dimension, shared by all N operands.
template <int N>
MMGRAD_HD void strided_offsets(int64_t flat, const ElementwiseDims<N>& d, int64_t (&off)[N]) {
  for (int k = 0; k < N; ++k) off[k] = 0;
  for (int i = d.ndim - 1; i >= 0; --i) {
    int64_t idx = flat % d.shape[i];
    flat /= d.shape[i];
    for (int k = 0; k < N; ++k) off[k] += idx * d.strides[k][i];
  }
}

// How an elementwise kernel walks its operands: dense (every stride 1), one strided dimension
// (offset = i * stride), or the general N-d walk above.
enum class WalkMode : int { Contiguous = 0, OneDim = 1, General = 2 };

template <int N>
inline WalkMode walk_mode(const ElementwiseDims<N>& d) {
  if (d.ndim != 1) return WalkMode::General;
  for (int k = 0; k < N; ++k)
    if (d.strides[k][0] != 1) return WalkMode::OneDim;
  return WalkMode::Contiguous;
}

// ---- reductions: which dimensions are kept and which are reduced --------------------------------

// A group of dimensions (kept or reduced) with the input's and the output's strides, coalesced
// like ElementwiseDims. Flat index k over the group -> offset strided_offset(k, n, shape, stride).
struct DimGroup {
  int n = 0;
  int64_t shape[kMaxDims] = {};
  int64_t in_stride[kMaxDims] = {};
  int64_t out_stride[kMaxDims] = {};

  MMGRAD_HD int64_t numel() const {
    int64_t p = 1;
    for (int i = 0; i < n; ++i) p *= shape[i];
    return p;
  }
  void add(int64_t size, int64_t is, int64_t os) {
    if (size == 1) return;
    if (n > 0 && in_stride[n - 1] == is * size && out_stride[n - 1] == os * size) {
      shape[n - 1] *= size;
      in_stride[n - 1] = is;
      out_stride[n - 1] = os;
      return;
    }
    shape[n] = size;
    in_stride[n] = is;
    out_stride[n] = os;
    ++n;
  }
};

// `out` has `in`'s rank; a dimension is reduced where out has size 1 and in does not. Flat index
// r over `reduced` runs through the reduced elements in row-major order, so for a single reduced
// dimension it is the position along that dimension (what argmax returns).
struct ReduceSplit {
  DimGroup kept, reduced;
};

inline ReduceSplit split_reduce(const Strided& in, const Strided& out) {
  ReduceSplit s;
  for (int d = 0; d < in.ndim; ++d) {
    if (out.shape[d] == 1 && in.shape[d] != 1)
      s.reduced.add(in.shape[d], in.strides[d], 0);
    else
      s.kept.add(in.shape[d], in.strides[d], out.strides[d]);
  }
  return s;
}

// ---- GEMM: row-major GemmArgs as a column-major (BLAS / cuBLAS) call ----------------------------

// A row-major matrix with leading dimension ld is, read column-major, its own transpose. So the
// row-major product C = op(A) op(B) (M x N) is the column-major product
//   C^T (N x M) = op(B)^T (N x K) * op(A)^T (K x M),
// with B as the first operand and A as the second. Row-major B stored K x N (no trans_b) is
// column-major N x K = op(B)^T: no transpose; stored N x K (trans_b) it reads as K x N and must be
// transposed. The same holds for A. Leading dimensions and batch strides carry over unchanged.
struct ColumnMajorGemm {
  bool trans_first = false, trans_second = false;  // CUBLAS_OP_T when true
  int64_t m = 0, n = 0, k = 0;                     // first is m x k, second k x n (after op)
  const void* first = nullptr;
  int64_t ld_first = 0, stride_first = 0;
  const void* second = nullptr;
  int64_t ld_second = 0, stride_second = 0;
  void* C = nullptr;
  int64_t ldc = 0, stride_c = 0;
  int64_t batch = 1;
};

inline ColumnMajorGemm column_major_gemm(const GemmArgs& g) {
  ColumnMajorGemm c;
  c.trans_first = g.trans_b;
  c.trans_second = g.trans_a;
  c.m = g.N;
  c.n = g.M;
  c.k = g.K;
  c.first = g.B;
  c.ld_first = g.ldb;
  c.stride_first = g.stride_b;
  c.second = g.A;
  c.ld_second = g.lda;
  c.stride_second = g.stride_a;
  c.C = g.C;
  c.ldc = g.ldc;
  c.stride_c = g.stride_c;
  c.batch = g.batch;
  return c;
}

}  // namespace mmgrad::index
