// Checker for task 4.1: the learner's im2col against conv2d itself. A convolution with the
// "identity filter bank" (C*k*k filters, filter r = one-hot at tap r = (c, kh, kw)) outputs
// exactly the column matrix, one output channel per row; then a random weight checks that
// matmul(weight, cols) is conv2d, which is what im2col is for.
#include "checks.h"

namespace mmgrad::exercises {

namespace {

int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p) { return (in + 2 * p - k) / s + 1; }

// cols as conv2d computes it: filters eye(C*k*k) reshaped to [C*k*k, C, k, k].
Tensor cols_by_conv(const Tensor& x, int64_t k, int64_t s, int64_t p) {
  const int64_t rows = x.size(0) * k * k;
  Tensor filters = Tensor::eye(rows, x.dtype()).reshape({rows, x.size(0), k, k});
  Tensor y = conv2d(x, filters, {}, s, p);  // [rows, OH, OW]
  return y.reshape({rows, y.size(1) * y.size(2)});
}

}  // namespace

void check_im2col(Checker& c, decltype(&im2col) f) {
  Generator gen(41);
  struct Case {
    int64_t C, H, W, k, s, p;
    DType dtype;
    std::string hint;
  };
  const std::vector<Case> cases = {
      {1, 4, 4, 3, 1, 0, DType::Float64,
       "no padding, stride 1: column oh*OW + ow is the 3x3 window at (oh, ow); within a channel "
       "row kh*k + kw is the tap at kernel row kh, kernel column kw"},
      {3, 4, 5, 2, 1, 0, DType::Float64,
       "several channels: rows in (c, kh, kw) order, r = (c*k + kh)*k + kw; the channel varies "
       "slowest"},
      {1, 3, 5, 3, 1, 1, DType::Float64,
       "padding 1: window (oh, ow) starts at input (oh*s - p, ow*s - p); taps outside the image "
       "read 0"},
      {2, 5, 6, 2, 2, 0, DType::Float64,
       "stride 2: window (oh, ow) starts at input (oh*s, ow*s), and OH = (H + 2p - k) / s + 1"},
      {3, 5, 4, 3, 2, 1, DType::Float64,
       "channels, stride and padding together: cols[(c*k + kh)*k + kw][oh*OW + ow] = "
       "x[c][oh*s - p + kh][ow*s - p + kw], or 0 outside the image"},
      {2, 3, 4, 1, 1, 0, DType::Float64,
       "a 1x1 kernel: each column is one pixel's C channels, cols = x.reshape({C, H*W})"},
      {2, 6, 5, 3, 1, 2, DType::Float32,
       "float32 input: return float32; padding 2 adds two rows/columns of zeros on each side"},
  };
  for (const Case& k : cases) {
    const std::string what = cat_str("im2col of x [", k.C, ", ", k.H, ", ", k.W, "], k = ", k.k,
                                     ", stride ", k.s, ", padding ", k.p);
    Tensor x = Tensor::randn({k.C, k.H, k.W}, k.dtype, &gen);
    const int64_t oh = out_size(k.H, k.k, k.s, k.p), ow = out_size(k.W, k.k, k.s, k.p);
    Tensor got = f(x, k.k, k.s, k.p);
    c.shape(what, got, {k.C * k.k * k.k, oh * ow},
            cat_str("[C*k*k, OH*OW] with OH = (H + 2p - k) / s + 1 = ", oh,
                    " and OW = (W + 2p - k) / s + 1 = ", ow));
    c.expect(got.dtype() == k.dtype, what + ": dtype",
             cat_str("it is ", dtype_name(got.dtype()), " but x is ", dtype_name(k.dtype)));
    c.close(what, got, cols_by_conv(x, k.k, k.s, k.p), 0, 1e-12, k.hint);
    // What the columns are for: a convolution as one matrix product.
    const int64_t out_ch = 3;
    Tensor w = Tensor::randn({out_ch, k.C, k.k, k.k}, k.dtype, &gen);
    Tensor y = conv2d(x, w, {}, k.s, k.p).reshape({out_ch, oh * ow});
    const double tol = k.dtype == DType::Float64 ? 1e-10 : 1e-4;
    c.close(what + ": matmul(weight.reshape({O, C*k*k}), cols) equals conv2d(x, weight)",
            matmul(w.reshape({out_ch, k.C * k.k * k.k}), got), y, tol, tol, k.hint);
  }
}

namespace {
// A loop with the usual mistakes as switches.
struct Variant {
  bool padding_offset = true;   // subtract p from the window's start
  bool padding_in_size = true;  // OH, OW include 2p
  bool stride = true;           // windows start at oh*s (false: at oh)
  bool channel_first = true;    // rows (c, kh, kw); false: (kh, kw, c)
  bool swap_taps = false;       // rows (c, kw, kh)
};
Tensor variant(const Variant& v, const Tensor& x, int64_t k, int64_t s, int64_t p) {
  const int64_t C = x.size(0), H = x.size(1), W = x.size(2);
  const int64_t pad_size = v.padding_in_size ? p : 0;
  const int64_t OH = out_size(H, k, s, pad_size), OW = out_size(W, k, s, pad_size);
  const int64_t off = v.padding_offset ? p : 0;
  const int64_t step = v.stride ? s : 1;
  std::vector<double> xs = x.to_vector<double>(), cols(static_cast<size_t>(C * k * k * OH * OW));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t kh = 0; kh < k; ++kh)
      for (int64_t kw = 0; kw < k; ++kw) {
        const int64_t a = v.swap_taps ? kw : kh, b = v.swap_taps ? kh : kw;
        const int64_t r = v.channel_first ? (c * k + a) * k + b : (a * k + b) * C + c;
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow) {
            const int64_t ih = oh * step - off + kh, iw = ow * step - off + kw;
            const bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
            cols[static_cast<size_t>(r * OH * OW + oh * OW + ow)] =
                inside ? xs[static_cast<size_t>((c * H + ih) * W + iw)] : 0.0;
          }
      }
  return Tensor::from_vector(cols, {C * k * k, OH * OW}, x.dtype());
}
Tensor ignores_padding(const Tensor& x, int64_t k, int64_t s, int64_t p) {
  return variant({.padding_offset = false, .padding_in_size = false}, x, k, s, p);
}
Tensor forgets_padding_offset(const Tensor& x, int64_t k, int64_t s, int64_t p) {
  return variant({.padding_offset = false}, x, k, s, p);
}
Tensor ignores_stride(const Tensor& x, int64_t k, int64_t s, int64_t p) {
  return variant({.stride = false}, x, k, s, p);
}
Tensor rows_kh_kw_c(const Tensor& x, int64_t k, int64_t s, int64_t p) {
  return variant({.channel_first = false}, x, k, s, p);
}
Tensor rows_c_kw_kh(const Tensor& x, int64_t k, int64_t s, int64_t p) {
  return variant({.swap_taps = true}, x, k, s, p);
}
}  // namespace

std::vector<Mutant> mutants_im2col() {
  return {
      {"ignores padding", [](Checker& c) { check_im2col(c, &ignores_padding); }},
      {"sizes include padding but windows start at (oh*s, ow*s)",
       [](Checker& c) { check_im2col(c, &forgets_padding_offset); }},
      {"ignores stride (windows start at (oh, ow))",
       [](Checker& c) { check_im2col(c, &ignores_stride); }},
      {"rows in (kh, kw, c) order", [](Checker& c) { check_im2col(c, &rows_kh_kw_c); }},
      {"rows in (c, kw, kh) order", [](Checker& c) { check_im2col(c, &rows_c_kw_kh); }},
  };
}

}  // namespace mmgrad::exercises
