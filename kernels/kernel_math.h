// Math shared by the CPU and CUDA kernels beyond the elementwise formulas, as host and device
// functions (MMGRAD_HD): the reductions' tie rule, index arithmetic of indexing, convolution and
// pooling, the softmax and cross-entropy row formulas, one layer-norm element and its parameter
// sums, and the Adam update.
//
// Several sections are the CUDA kernels' gather form of loops the CPU writes as scatters;
// tests/test_cuda_math.cpp runs them on the CPU and compares with the CPU backend, so they are
// checked without a GPU. The elementwise formulas are in kernels/element_ops.h.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "mmgrad/core/error.h"
#include "mmgrad/kernels/backend.h"
#include "mmgrad/kernels/element_ops.h"
#include "mmgrad/kernels/index_math.h"

namespace mmgrad::elem {

// ---- reductions: max / min / argmax / argmin ----------------------------------------------------

// A candidate extreme: value and its flat index over the reduced elements (i < 0: none yet).
template <class T>
struct ValIdx {
  T v;
  int64_t i;
};

// The better of two candidates. This is the CPU's sequential rule -- the first NaN wins, else
// the first occurrence of the extreme -- written as a comparison that does not depend on the
// order candidates meet in, so a parallel tree reduction gives the CPU's answer:
//   NaN beats numbers; between numbers the larger (MAX) / smaller wins; ties go to the smaller
//   index.
template <bool MAX, class T>
MMGRAD_HD ValIdx<T> pick(ValIdx<T> a, ValIdx<T> b) {
  if (a.i < 0) return b;
  if (b.i < 0) return a;
  const bool an = is_nan(a.v), bn = is_nan(b.v);
  if (an != bn) return an ? a : b;
  if (!an) {
    if (MAX ? a.v > b.v : a.v < b.v) return a;
    if (MAX ? b.v > a.v : b.v < a.v) return b;
  }
  return a.i < b.i ? a : b;
}

// ---- random numbers: see core/philox.h (philox::uniform_sample / normal_sample) --------------

// ---- indexing -----------------------------------------------------------------------------------

// index_select / index_add: element t of the [outer, n_idx, inner] side pairs with this offset
// in the [outer, dim, inner] side (slice idx[i] of dim), or -1 when idx[i] is outside [0, dim).
MMGRAD_HD int64_t index_select_offset(const int64_t* idx, int64_t dim, int64_t inner, int64_t n_idx,
                                      int64_t t) {
  const int64_t k = t % inner, row = t / inner;
  const int64_t i = row % n_idx, o = row / n_idx;
  const int64_t j = idx[i];
  return (j >= 0 && j < dim) ? (o * dim + j) * inner + k : -1;
}

// gather / scatter_add: element p of the [outer, idx_dim, inner] side pairs with this offset in
// the [outer, dim, inner] side (idx[p] along dim), or -1 when idx[p] is outside [0, dim).
MMGRAD_HD int64_t gather_offset(const int64_t* idx, int64_t dim, int64_t idx_dim, int64_t inner,
                                int64_t p) {
  const int64_t k = p % inner, o = p / inner / idx_dim;
  const int64_t j = idx[p];
  return (j >= 0 && j < dim) ? (o * dim + j) * inner + k : -1;
}

// Keys for sorting rows (sort.cu): -0.0 becomes +0.0 (the CPU's comparison treats them as
// equal, a radix sort would not) and every NaN the positive quiet NaN (sorted after +inf,
// PyTorch's order; a radix sort would put a negative NaN before -inf).
template <class T>
MMGRAD_HD T sort_key(T x) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(x)) return std::numeric_limits<T>::quiet_NaN();
    if (x == T(0)) return T(0);
  }
  return x;
}

// ---- convolution and pooling (NCHW) -------------------------------------------------------------

// cols[idx], idx over [N, C*KH*KW, OH*OW]: the input pixel under kernel offset (kh, kw) of
// output pixel (oh, ow), or 0 in the padding.
template <class T>
MMGRAD_HD T im2col_value(const Conv2dGeom& g, const T* x, int64_t idx) {
  const int64_t P = g.OH * g.OW, rows = g.C * g.KH * g.KW;
  const int64_t p = idx % P, t = idx / P;
  const int64_t r = t % rows, n = t / rows;
  const int64_t c = r / (g.KH * g.KW), kh = (r / g.KW) % g.KH, kw = r % g.KW;
  const int64_t src = index::im2col_source(g, kh, kw, p / g.OW, p % g.OW);
  return src < 0 ? T(0) : x[(n * g.C + c) * g.H * g.W + src];
}

// Splits a flat index over [N*C, H, W] into (plane, h, w).
MMGRAD_HD void split_pixel(const Conv2dGeom& g, int64_t idx, int64_t* plane, int64_t* h,
                           int64_t* w) {
  *w = idx % g.W;
  const int64_t t = idx / g.W;
  *h = t % g.H;
  *plane = t / g.H;
}

// col2im as a gather: gx[idx] (given as acc) plus every column entry that im2col read from input
// pixel idx ([N, C, H, W]). (kh, kw) ascending is the order in which the CPU adds them.
template <class T>
MMGRAD_HD T col2im_value(const Conv2dGeom& g, const T* cols, T acc, int64_t idx) {
  int64_t plane, ih, iw;
  split_pixel(g, idx, &plane, &ih, &iw);
  const int64_t n = plane / g.C, c = plane % g.C;
  const int64_t P = g.OH * g.OW, rows = g.C * g.KH * g.KW;
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    const int64_t oh = index::conv_window_of(ih, kh, g.SH, g.PH, g.DH, g.OH);
    if (oh < 0) continue;
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const int64_t ow = index::conv_window_of(iw, kw, g.SW, g.PW, g.DW, g.OW);
      if (ow < 0) continue;
      acc += cols[(n * rows + (c * g.KH + kh) * g.KW + kw) * P + oh * g.OW + ow];
    }
  }
  return acc;
}

// Max pooling of output element idx ([N, C, OH, OW]): the window's largest value and its flat
// h*W+w index. Padding never wins; the first maximum wins ties; a window holding NaN gives NaN
// at its last NaN (PyTorch's scan: v > best || isnan(v) takes over; as on the CPU).
template <class T>
MMGRAD_HD void max_pool_value(const Conv2dGeom& g, const T* x, int64_t idx, T* y, int64_t* arg) {
  const int64_t ow = idx % g.OW, t = idx / g.OW;
  const int64_t oh = t % g.OH, plane = t / g.OH;
  const T* xc = x + plane * g.H * g.W;
  T best = -std::numeric_limits<T>::infinity();
  int64_t a = -1;
  // The CPU's loop exactly: after a NaN only another NaN takes over (v > NaN is false).
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const int64_t src = index::im2col_source(g, kh, kw, oh, ow);
      if (src < 0) continue;
      const T v = xc[src];
      if (a < 0 || v > best || is_nan(v)) {
        best = v;
        a = src;
      }
    }
  }
  *y = best;
  *arg = a;
}

// The gradient of max pooling at input pixel idx: gx[idx] (acc) plus gy of every window whose
// argmax is this pixel, in increasing output order (kh, kw descending) like the CPU's scatter.
template <class T>
MMGRAD_HD T max_pool_grad_value(const Conv2dGeom& g, const T* gy, const int64_t* argmax, T acc,
                                int64_t idx) {
  int64_t plane, ih, iw;
  split_pixel(g, idx, &plane, &ih, &iw);
  const int64_t src = ih * g.W + iw;
  for (int64_t kh = g.KH - 1; kh >= 0; --kh) {
    const int64_t oh = index::conv_window_of(ih, kh, g.SH, g.PH, g.DH, g.OH);
    if (oh < 0) continue;
    for (int64_t kw = g.KW - 1; kw >= 0; --kw) {
      const int64_t ow = index::conv_window_of(iw, kw, g.SW, g.PW, g.DW, g.OW);
      if (ow < 0) continue;
      const int64_t o = (plane * g.OH + oh) * g.OW + ow;
      if (argmax[o] == src) acc += gy[o];
    }
  }
  return acc;
}

// Average pooling of output element idx; padded cells count towards the divisor.
template <class T>
MMGRAD_HD T avg_pool_value(const Conv2dGeom& g, const T* x, int64_t idx) {
  const int64_t ow = idx % g.OW, t = idx / g.OW;
  const int64_t oh = t % g.OH, plane = t / g.OH;
  const T* xc = x + plane * g.H * g.W;
  const T inv = T(1) / static_cast<T>(g.KH * g.KW);
  T s = 0;
  for (int64_t kh = 0; kh < g.KH; ++kh)
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const int64_t src = index::im2col_source(g, kh, kw, oh, ow);
      if (src >= 0) s += xc[src];
    }
  return s * inv;
}

// The gradient of average pooling at input pixel idx: acc plus gy/(KH*KW) of every window that
// covers it, in increasing output order.
template <class T>
MMGRAD_HD T avg_pool_grad_value(const Conv2dGeom& g, const T* gy, T acc, int64_t idx) {
  int64_t plane, ih, iw;
  split_pixel(g, idx, &plane, &ih, &iw);
  const T inv = T(1) / static_cast<T>(g.KH * g.KW);
  for (int64_t kh = g.KH - 1; kh >= 0; --kh) {
    const int64_t oh = index::conv_window_of(ih, kh, g.SH, g.PH, g.DH, g.OH);
    if (oh < 0) continue;
    for (int64_t kw = g.KW - 1; kw >= 0; --kw) {
      const int64_t ow = index::conv_window_of(iw, kw, g.SW, g.PW, g.DW, g.OW);
      if (ow < 0) continue;
      const T v = gy[(plane * g.OH + oh) * g.OW + ow] * inv;
      acc += v;
    }
  }
  return acc;
}

// Adaptive average pooling of output element idx: window [start, end) per axis.
template <class T>
MMGRAD_HD T adaptive_avg_value(const Conv2dGeom& g, const T* x, int64_t idx) {
  const int64_t ow = idx % g.OW, t = idx / g.OW;
  const int64_t oh = t % g.OH, plane = t / g.OH;
  const T* xc = x + plane * g.H * g.W;
  const int64_t h0 = index::adaptive_start(oh, g.H, g.OH), h1 = index::adaptive_end(oh, g.H, g.OH);
  const int64_t w0 = index::adaptive_start(ow, g.W, g.OW), w1 = index::adaptive_end(ow, g.W, g.OW);
  T s = 0;
  for (int64_t h = h0; h < h1; ++h)
    for (int64_t w = w0; w < w1; ++w) s += xc[h * g.W + w];
  return s / static_cast<T>((h1 - h0) * (w1 - w0));
}

// Its gradient at input pixel idx: acc plus gy/area of every window containing the pixel.
template <class T>
MMGRAD_HD T adaptive_avg_grad_value(const Conv2dGeom& g, const T* gy, T acc, int64_t idx) {
  int64_t plane, ih, iw;
  split_pixel(g, idx, &plane, &ih, &iw);
  const int64_t oh0 = index::adaptive_first_out(ih, g.H, g.OH);
  const int64_t oh1 = index::adaptive_last_out(ih, g.H, g.OH);
  const int64_t ow0 = index::adaptive_first_out(iw, g.W, g.OW);
  const int64_t ow1 = index::adaptive_last_out(iw, g.W, g.OW);
  for (int64_t oh = oh0; oh <= oh1; ++oh) {
    const int64_t h0 = index::adaptive_start(oh, g.H, g.OH);
    const int64_t h1 = index::adaptive_end(oh, g.H, g.OH);
    for (int64_t ow = ow0; ow <= ow1; ++ow) {
      const int64_t w0 = index::adaptive_start(ow, g.W, g.OW);
      const int64_t w1 = index::adaptive_end(ow, g.W, g.OW);
      const T v = gy[(plane * g.OH + oh) * g.OW + ow] / static_cast<T>((h1 - h0) * (w1 - w0));
      acc += v;
    }
  }
  return acc;
}

// ---- softmax along one row ----------------------------------------------------------------------

// softmax (log = false) or log_softmax (log = true) of the dim elements x[0], x[inner],
// x[2 inner], ... into y (same stride). Stable: m = max(x), so no exp overflows (softmax_shift);
// s = sum exp(x - m) in double; then y = exp(x - m) / s, or
// y = (x - m) - log(s) -- not x - (m + log(s)): for large |m| the sum m + log(s) would round to
// m's precision (float32: ~1e-4 at |m| = 1000). The CPU runs it per row; CUDA per thread when
// inner > 1 (its inner == 1 kernel splits a row over a block, in another summation order).
// The shift m of a row whose maximum is m: the maximum itself, but 0 for a row of -inf (the row
// then gives NaN from 0/0, or -inf from log 0, instead of inf - inf).
template <class T>
MMGRAD_HD T softmax_shift(T m) {
  return (std::isinf(m) && m < T(0)) ? T(0) : m;
}

template <class T>
MMGRAD_HD void softmax_row(const T* x, T* y, int64_t dim, int64_t inner, bool log) {
  T m = x[0];
  for (int64_t i = 1; i < dim; ++i) m = m < x[i * inner] ? x[i * inner] : m;  // std::max
  m = softmax_shift(m);
  double s = 0;
  for (int64_t i = 0; i < dim; ++i) {
    const T ev = std::exp(x[i * inner] - m);
    s += ev;
    if (!log) y[i * inner] = ev;
  }
  if (log) {
    const T ls = static_cast<T>(std::log(s));
    for (int64_t i = 0; i < dim; ++i) y[i * inner] = (x[i * inner] - m) - ls;
  } else {
    const T inv = static_cast<T>(1.0 / s);
    for (int64_t i = 0; i < dim; ++i) y[i * inner] *= inv;
  }
}

// The backward of softmax_row from its output y and the incoming gradient gy:
//   softmax:     gx = y * (gy - sum(gy * y))
//   log_softmax: gx = gy - exp(y) * sum(gy)
// (the sums in double, each product gy * y rounded to T first).
template <class T>
MMGRAD_HD void softmax_backward_row(const T* y, const T* gy, T* gx, int64_t dim, int64_t inner,
                                    bool log) {
  double s = 0;
  if (log) {
    for (int64_t i = 0; i < dim; ++i) s += gy[i * inner];
    const T st = static_cast<T>(s);
    for (int64_t i = 0; i < dim; ++i) gx[i * inner] = gy[i * inner] - std::exp(y[i * inner]) * st;
  } else {
    for (int64_t i = 0; i < dim; ++i) s += gy[i * inner] * y[i * inner];
    const T st = static_cast<T>(s);
    for (int64_t i = 0; i < dim; ++i) gx[i * inner] = y[i * inner] * (gy[i * inner] - st);
  }
}

// ---- softmax cross-entropy ----------------------------------------------------------------------

// With label smoothing eps over C classes the target distribution is
//   q = (1 - eps) one_hot(target) + eps / C,
// so (since sum_c q_c = 1) loss = -sum_c q_c log p_c = lse - sum_c q_c x_c, with lse the row's
// logsumexp and sum_c q_c x_c = (1 - eps) x_target + eps / C * sum_c x_c. In double.
MMGRAD_HD double cross_entropy_loss(double lse, double x_target, double xsum, double eps,
                                    int64_t C) {
  return lse - ((1.0 - eps) * x_target + eps / static_cast<double>(C) * xsum);
}

// d loss / d x_c = p_c - q_c, times the row's incoming gradient g:
//   g * (exp(x_c - lse) - eps / C) - g * (1 - eps) [c == target],
// with off = eps / C and keep = 1 - eps rounded to T.
template <class T>
MMGRAD_HD T cross_entropy_grad(T x, T lse, T g, T off, T keep, bool is_target) {
  T v = g * (std::exp(x - lse) - off);
  if (is_target) v -= g * keep;
  return v;
}

// Element idx of the [N, C] gradient; 0 for ignored rows. A target outside [0, C) (the op
// validates targets; this only guards memory) gives NaN.
template <class T>
MMGRAD_HD T cross_entropy_grad_value(const T* x, const int64_t* target, const T* lse, const T* g,
                                     int64_t C, int64_t ignore_index, T off, T keep, int64_t idx) {
  const int64_t n = idx / C, c = idx % C;
  const int64_t t = target[n];
  if (t == ignore_index) return T(0);
  if (t < 0 || t >= C) return std::numeric_limits<T>::quiet_NaN();
  return cross_entropy_grad(x[idx], lse[n], g[n], off, keep, c == t);
}

// ---- layer norm: one element --------------------------------------------------------------------

// rstd = 1 / sqrt(var + eps) from the centred sum of squares sq of a row of D (biased variance).
MMGRAD_HD double layer_norm_rstd(double sq, int64_t D, double eps) {
  return 1.0 / std::sqrt(sq / static_cast<double>(D) + eps);
}

// y_i = xhat_i * w_i + b_i with xhat = (x - mean) * rstd; w and b may be null (no affine).
template <class T>
MMGRAD_HD T layer_norm_out(T x, T mean, T rstd, const T* w, const T* b, int64_t i) {
  T v = (x - mean) * rstd;
  if (w) v *= w[i];
  if (b) v += b[i];
  return v;
}

// dxhat_i = dy_i * w_i (dy_i without affine).
template <class T>
MMGRAD_HD T layer_norm_dxhat(const T* gy, const T* w, int64_t i) {
  return w ? gy[i] * w[i] : gy[i];
}

// d * xhat for the sums mean(dxhat * xhat) and dw = sum_rows(dy * xhat), as d * (x - mean) * rstd
// (left to right: xhat itself is not rounded first).
template <class T>
MMGRAD_HD T layer_norm_times_xhat(T d, T x, T mean, T rstd) {
  return d * (x - mean) * rstd;
}

// dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)).
template <class T>
MMGRAD_HD T layer_norm_grad_in(T dxhat, T x, T mean, T rstd, T mean_dxhat, T mean_dxhat_xhat) {
  const T xhat = (x - mean) * rstd;
  return rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
}

// ---- layer norm: parameter gradients as chunked column sums -------------------------------------

// Rows [N] split into `chunks` chunks of rows_per_chunk (the last may be shorter).
struct RowChunks {
  int64_t chunks = 0, rows_per_chunk = 1;
};

// Enough (chunk, column) pairs to fill the GPU (about 1024 per multiprocessor), at least 8 rows
// per chunk; no chunks when N == 0.
inline RowChunks layer_norm_row_chunks(int64_t N, int64_t D, int sms) {
  RowChunks rc;
  if (N <= 0 || D <= 0) return rc;
  int64_t want = static_cast<int64_t>(sms) * 1024 / D;
  if (want < 1) want = 1;
  int64_t chunks = (N + 7) / 8 < want ? (N + 7) / 8 : want;
  if (chunks < 1) chunks = 1;
  rc.rows_per_chunk = (N + chunks - 1) / chunks;
  rc.chunks = (N + rc.rows_per_chunk - 1) / rc.rows_per_chunk;
  return rc;
}

// Pass 1, element t = (chunk, c) of [chunks, D]: column c's sums over the chunk's rows of
// dy * xhat (into pw) and dy (into pb), each term rounded to T before the double sum as on the
// CPU.
template <class T>
MMGRAD_HD void layer_norm_param_partial(const T* gy, const T* x, const T* mean, const T* rstd,
                                        int64_t N, int64_t D, int64_t rows_per_chunk, int64_t t,
                                        double* pw, double* pb) {
  const int64_t chunk = t / D, c = t % D;
  const int64_t r0 = chunk * rows_per_chunk;
  const int64_t r1 = r0 + rows_per_chunk < N ? r0 + rows_per_chunk : N;
  double sw = 0, sb = 0;
  for (int64_t n = r0; n < r1; ++n) {
    const T g = gy[n * D + c];
    sw += layer_norm_times_xhat(g, x[n * D + c], mean[n], rstd[n]);
    sb += g;
  }
  pw[t] = sw;
  pb[t] = sb;
}

// Pass 2: column c adds its chunks in order; gw / gb may be null.
template <class T>
MMGRAD_HD void layer_norm_param_final(const double* pw, const double* pb, int64_t chunks, int64_t D,
                                      int64_t c, T* gw, T* gb) {
  double sw = 0, sb = 0;
  for (int64_t k = 0; k < chunks; ++k) {
    sw += pw[k * D + c];
    sb += pb[k * D + c];
  }
  if (gw) gw[c] = static_cast<T>(sw);
  if (gb) gb[c] = static_cast<T>(sb);
}

// ---- Adam / AdamW -------------------------------------------------------------------------------

// The step's scalars, computed in double and rounded to T exactly as the CPU does.
template <class T>
struct AdamCoeffs {
  T b1, b2, step_size, inv_sqrt_bc2, wd, decay, eps;
  bool decoupled;
};

template <class T>
inline AdamCoeffs<T> adam_coeffs(double lr, double beta1, double beta2, double eps,
                                 double weight_decay, int64_t step, bool decoupled) {
  const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  AdamCoeffs<T> c;
  c.b1 = static_cast<T>(beta1);
  c.b2 = static_cast<T>(beta2);
  c.step_size = static_cast<T>(lr / bc1);
  c.inv_sqrt_bc2 = static_cast<T>(1.0 / std::sqrt(bc2));
  c.wd = static_cast<T>(weight_decay);
  c.decay = static_cast<T>(1.0 - lr * weight_decay);
  c.eps = static_cast<T>(eps);
  c.decoupled = decoupled;
  return c;
}

//   g' = g + wd p (Adam) or p *= 1 - lr wd first (AdamW)
//   m = b1 m + (1 - b1) g',  v = b2 v + (1 - b2) g'^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
template <class T>
MMGRAD_HD void adam_update(const AdamCoeffs<T>& c, T& p, T g, T& m, T& v) {
  if (c.decoupled)
    p *= c.decay;
  else
    g += c.wd * p;
  m = c.b1 * m + (T(1) - c.b1) * g;
  v = c.b2 * v + (T(1) - c.b2) * g * g;
  p -= c.step_size * m / (std::sqrt(v) * c.inv_sqrt_bc2 + c.eps);
}

}  // namespace mmgrad::elem
