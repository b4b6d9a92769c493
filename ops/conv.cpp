// conv2d as im2col + GEMM.
//
// im2col copies every receptive field of image n into a column, giving cols[n] of shape
// [C*KH*KW, OH*OW]. The convolution is then one matrix product per image,
//   y[n] (Cout x OH*OW) = W (Cout x C*KH*KW) @ cols[n] (+ bias[o] on every row o),
// run as a single batched GEMM over the images (W is shared: batch stride 0). Backward:
//   dL/dW    = sum_n gy[n] @ cols[n]^T          (GEMMs accumulating into one buffer, beta = 1)
//   dL/dcols = W^T @ gy[n]                      (one batched GEMM; W^T is a transposed read)
//   dL/dx    = col2im(dL/dcols)                 (the adjoint of im2col: scatter-add back)
//   dL/db    = sum of gy over N, OH, OW
//
// Memory: cols is C*KH*KW times larger than the output, so it is never kept for the backward.
// Images are processed in chunks whose columns fit a fixed workspace (kColsBudget elements), and
// the backward recomputes cols chunk by chunk from the saved input. Recomputing costs one im2col
// pass (memory-bound, O(C*KH*KW*OH*OW) per image), small next to the GEMMs (Cout times more
// arithmetic), and keeps peak memory independent of the batch size.
//
// A 1x1 kernel with stride 1 and no padding needs no im2col at all: cols[n] is x[n] itself, read
// as a [C, H*W] matrix, and dL/dx[n] is dL/dcols[n]; that case skips the workspace.
//
// float32 on the CPU takes a faster route to the same products (kernels/cpu/conv_fast.cpp): the
// GEMMs run on the GEMM ladder's SIMD micro-kernel, and the forward packs the receptive fields
// straight from the image into the micro-kernel's panels ("implicit GEMM": no column matrix in
// memory). It sums in a different order than the path below, so the numbers agree to float32
// rounding, not to the bit. The path below stays for float64 (gradcheck), CUDA, and as the
// reference (cpu::set_conv2d_fast_path(false)) for the benchmark and the tests.
#include "mmgrad/ops/conv.h"

#include <algorithm>

#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/kernels/index_math.h"
#include "mmgrad/ops/common.h"
#include "mmgrad/ops/reduce.h"

namespace mmgrad {
namespace {

// Elements of im2col workspace per chunk of images (16 MiB in float32).
constexpr int64_t kColsBudget = int64_t{1} << 22;

// Address of element `offset` of a contiguous tensor.
void* element_ptr(const Tensor& t, int64_t offset) {
  return static_cast<char*>(t.raw_data()) + offset * static_cast<int64_t>(t.element_size());
}

// A contiguous [a, b, c] block at p, as a kernel view.
Strided dense3(void* p, DType dtype, int64_t a, int64_t b, int64_t c) {
  Strided s;
  s.data = p;
  s.dtype = dtype;
  s.ndim = 3;
  s.shape[0] = a;
  s.shape[1] = b;
  s.shape[2] = c;
  s.strides[0] = b * c;
  s.strides[1] = c;
  s.strides[2] = 1;
  return s;
}

struct ConvShape {
  Conv2dGeom g;  // g.N is the whole batch; chunks override it
  int64_t Cout = 0;
  int64_t CK = 0;              // C*KH*KW: rows of a column matrix
  int64_t P = 0;               // OH*OW: columns of a column matrix
  int64_t chunk = 1;           // images per im2col workspace
  bool identity_cols = false;  // 1x1, stride 1, no padding: cols[n] == x[n]
  bool fast = false;           // float32 on the CPU: kernels/cpu/conv_fast.cpp
};

// Whether this conv2d takes the float32 CPU path of kernels/cpu/conv_fast.cpp.
bool use_fast_path(const Tensor& x) {
  return x.device() == Device::CPU && x.dtype() == DType::Float32 && cpu::conv2d_fast_path();
}

}  // namespace

struct Conv2dBackward : Node {
  SavedTensor x{this},
      weight{this};  // contiguous; x only when dL/dW is needed, weight only for dL/dx
  ConvShape s;
  const char* name() const override { return "conv2d"; }
  std::vector<Tensor> backward(const Tensor& g) override;
};

std::vector<Tensor> Conv2dBackward::backward(const Tensor& grad) {
  const Conv2dGeom& geo = s.g;
  const int64_t N = geo.N, C = geo.C, HW = geo.H * geo.W, CK = s.CK, P = s.P, Cout = s.Cout;
  Tensor gy = grad.contiguous();
  Backend& be = backend(gy.device());
  const DType dt = gy.dtype();
  const bool need_x = needs_grad(0), need_w = needs_grad(1), need_b = needs_grad(2);
  Tensor gx, gw, gb;
  if (need_b) {
    // Sum over pixels first (contiguous runs), then over images: two fast reduction passes,
    // where one reduction over (N, OH, OW) at once would take the reduce kernel's slow strided
    // path (measured ~100x slower, 17.7 ms vs 0.12 ms, for [64, 32, 28, 28] float32).
    gb = sum(gy.view({N, Cout, P}), Shape{2});
    gb = sum(gb, Shape{0});
  }
  if (s.fast && (need_x || need_w)) {
    if (need_x) {
      Tensor ws = weight.get();
      gx = empty_as(gy, input_shapes[0]);
      cpu::conv2d_fast_backward_input(gy.data_ptr<float>(), ws.data_ptr<float>(),
                                      gx.data_ptr<float>(), geo, Cout);
    }
    if (need_w) {
      Tensor xs = x.get();
      gw = empty_as(gy, input_shapes[1]);
      cpu::conv2d_fast_backward_weight(xs.data_ptr<float>(), gy.data_ptr<float>(),
                                       gw.data_ptr<float>(), geo, Cout);
    }
    return {gx, gw, gb};
  }
  if (need_x)  // col2im adds into dL/dx, so it starts at zero; the 1x1 GEMM overwrites it
    gx = s.identity_cols ? empty_as(gy, input_shapes[0])
                         : Tensor::zeros(input_shapes[0], gy.options());
  if (need_w) gw = empty_as(gy, input_shapes[1]);
  if (!need_x && !need_w) return {gx, gw, gb};

  Tensor xs = need_w ? x.get() : Tensor();
  Tensor ws = need_x ? weight.get() : Tensor();
  Tensor work;
  if (!s.identity_cols) work = Tensor::empty({s.chunk, CK, P}, gy.options());

  for (int64_t n0 = 0; n0 < N; n0 += s.chunk) {
    const int64_t nb = std::min(s.chunk, N - n0);
    Conv2dGeom gc = geo;
    gc.N = nb;
    if (need_w) {
      // cols for these images: the input itself, or recomputed into the workspace
      const void* cols = s.identity_cols ? element_ptr(xs, n0 * C * HW) : work.raw_data();
      if (!s.identity_cols) be.im2col(dt, element_ptr(xs, n0 * C * HW), work.raw_data(), gc);
      // dW (Cout x CK) += gy[n] (Cout x P) @ cols[n]^T (P x CK), one image at a time; the
      // first image overwrites (beta = 0) so dW needs no zeroing pass.
      for (int64_t i = 0; i < nb; ++i) {
        const void* cols_i =
            static_cast<const char*>(cols) + i * CK * P * static_cast<int64_t>(gy.element_size());
        const double beta = (n0 + i == 0) ? 0.0 : 1.0;
        be.gemm(GemmArgs{.dtype = dt, .M = Cout, .N = CK, .K = P, .beta = beta}
                    .a(element_ptr(gy, (n0 + i) * Cout * P), P)
                    .b(cols_i, P, /*transposed=*/true)
                    .c(gw.raw_data(), CK));
      }
    }
    if (need_x) {
      // dcols[n] (CK x P) = W^T (CK x Cout) @ gy[n] (Cout x P), batched over the chunk
      be.gemm(GemmArgs{.dtype = dt, .batch = nb, .M = CK, .N = P, .K = Cout}
                  .a(ws.raw_data(), CK, /*transposed=*/true)  // W is stored Cout x CK
                  .b(element_ptr(gy, n0 * Cout * P), P)
                  .c(s.identity_cols ? element_ptr(gx, n0 * C * HW) : work.raw_data(), P)
                  .batch_strides(0, Cout * P, CK * P));
      if (!s.identity_cols) be.col2im(dt, work.raw_data(), element_ptr(gx, n0 * C * HW), gc);
    }
  }
  if (N == 0 && need_w) gw.zero_();
  return {gx, gw, gb};
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair2 stride,
              Pair2 padding, Pair2 dilation) {
  const char* op = "conv2d";
  check_floating(op, x, "input");
  check_floating(op, weight, "weight");
  check_same_device(op, x, weight);
  check_same_dtype(op, x, weight);
  MMGRAD_CHECK(x.dim() == 4 || x.dim() == 3, op,
               ": expected input of shape [N, C, H, W] (or [C, H, W]), got ", describe(x));
  MMGRAD_CHECK(weight.dim() == 4, op, ": expected weight of shape [Cout, C, KH, KW], got ",
               describe(weight));
  const bool batched = x.dim() == 4;
  ConvShape s;
  Conv2dGeom& g = s.g;
  g.N = batched ? x.size(0) : 1;
  g.C = x.size(-3);
  g.H = x.size(-2);
  g.W = x.size(-1);
  s.Cout = weight.size(0);
  g.KH = weight.size(2);
  g.KW = weight.size(3);
  MMGRAD_CHECK(weight.size(1) == g.C, op, ": weight ", weight.shape().str(), " expects ",
               weight.size(1), " input channels, but the input ", x.shape().str(), " has ", g.C);
  MMGRAD_CHECK(g.C > 0 && g.H > 0 && g.W > 0, op,
               ": input needs at least one channel and one pixel, got ", x.shape().str());
  MMGRAD_CHECK(s.Cout > 0 && g.KH > 0 && g.KW > 0, op,
               ": weight has an empty dimension: ", weight.shape().str());
  if (bias.defined()) {
    check_floating(op, bias, "bias");
    check_same_device(op, x, bias);
    check_same_dtype(op, x, bias);
    MMGRAD_CHECK(bias.dim() == 1 && bias.size(0) == s.Cout, op, ": expected bias of shape [",
                 s.Cout, "] (one per output channel), got ", bias.shape().str());
  }
  MMGRAD_CHECK(stride.h >= 1 && stride.w >= 1, op, ": stride must be >= 1, got (", stride.h, ", ",
               stride.w, ")");
  MMGRAD_CHECK(padding.h >= 0 && padding.w >= 0, op, ": padding must be >= 0, got (", padding.h,
               ", ", padding.w, ")");
  MMGRAD_CHECK(dilation.h >= 1 && dilation.w >= 1, op, ": dilation must be >= 1, got (", dilation.h,
               ", ", dilation.w, ")");
  g.SH = stride.h;
  g.SW = stride.w;
  g.PH = padding.h;
  g.PW = padding.w;
  g.DH = dilation.h;
  g.DW = dilation.w;
  const int64_t ekh = g.DH * (g.KH - 1) + 1, ekw = g.DW * (g.KW - 1) + 1;  // dilated kernel
  MMGRAD_CHECK(ekh <= g.H + 2 * g.PH && ekw <= g.W + 2 * g.PW, op, ": input ", x.shape().str(),
               " padded to ", g.H + 2 * g.PH, "x", g.W + 2 * g.PW,
               " is smaller than the (dilated) kernel ", ekh, "x", ekw);
  g.OH = index::conv_out_size(g.H, g.KH, g.SH, g.PH, g.DH);
  g.OW = index::conv_out_size(g.W, g.KW, g.SW, g.PW, g.DW);
  s.CK = g.C * g.KH * g.KW;
  s.P = g.OH * g.OW;
  s.identity_cols = g.KH == 1 && g.KW == 1 && g.SH == 1 && g.SW == 1 && g.PH == 0 && g.PW == 0;
  s.chunk = std::clamp<int64_t>(kColsBudget / (s.CK * s.P), 1, std::max<int64_t>(g.N, 1));

  Shape out_shape = batched ? Shape{g.N, s.Cout, g.OH, g.OW} : Shape{s.Cout, g.OH, g.OW};
  Tensor out = empty_as(x, out_shape);
  Tensor xc = x.detach().contiguous();
  Tensor wc = weight.detach().contiguous();
  Backend& be = backend(x.device());
  const DType dt = x.dtype();
  s.fast = use_fast_path(x);
  if (s.fast) {
    Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
    cpu::conv2d_fast_forward(xc.data_ptr<float>(), wc.data_ptr<float>(),
                             bc.defined() ? bc.data_ptr<float>() : nullptr, out.data_ptr<float>(),
                             g, s.Cout);
  } else if (g.N > 0) {
    Tensor work;
    if (!s.identity_cols) work = Tensor::empty({s.chunk, s.CK, s.P}, x.options());
    for (int64_t n0 = 0; n0 < g.N; n0 += s.chunk) {
      const int64_t nb = std::min(s.chunk, g.N - n0);
      Conv2dGeom gc = g;
      gc.N = nb;
      const void* xin = element_ptr(xc, n0 * g.C * g.H * g.W);
      void* y = element_ptr(out, n0 * s.Cout * s.P);
      if (!s.identity_cols) be.im2col(dt, xin, work.raw_data(), gc);
      if (bias.defined()) {
        // y starts as the bias broadcast over images and pixels; the GEMM adds onto it (beta=1),
        // which saves a separate pass over the output.
        Strided b = bias.desc();
        Strided bb = dense3(b.data, dt, nb, s.Cout, s.P);
        bb.strides[0] = 0;
        bb.strides[1] = b.strides[0];
        bb.strides[2] = 0;
        be.copy(bb, dense3(y, dt, nb, s.Cout, s.P));
      }
      const double beta = bias.defined() ? 1.0 : 0.0;
      be.gemm(GemmArgs{.dtype = dt, .batch = nb, .M = s.Cout, .N = s.P, .K = s.CK, .beta = beta}
                  .a(wc.raw_data(), s.CK)
                  .b(s.identity_cols ? xin : work.raw_data(), s.P)
                  .c(y, s.P)
                  .batch_strides(0, s.CK * s.P, s.Cout * s.P));  // one weight for every image
    }
  }
  if (auto node = make_node<Conv2dBackward>(out, {x, weight, bias})) {
    node->s = s;
    if (node->needs_grad(1)) node->x = xc;
    if (node->needs_grad(0)) node->weight = wc;
  }
  return out;
}

}  // namespace mmgrad
