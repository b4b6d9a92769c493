// 3-D convolution and pooling, composed from the 2-D ops (no kernels of their own).
//
// conv3d. A 3-D kernel [KD, KH, KW] is KD ordinary 2-D kernels, one per frame offset kd:
//
//   y[n, o, od] = bias[o] + sum_kd sum_c conv2d-window( x[n, c, od*SD + kd*DD - PD], w[o, c, kd] )
//
// Gather, for every output frame od, the KD input frames it reads ("unfold" the depth axis) and
// lay them side by side as channels: u[n*OD + od, c*KD + kd] = x_padded[n, c, od*SD + kd*DD].
// The weight [Cout, C, KD, KH, KW] read as [Cout, C*KD, KH, KW] (a free view) then pairs each
// of those channels with its kd slice, and ONE conv2d over N*OD "images" of C*KD channels
// computes every output frame:
//
//   x [N, C, D, H, W] --pad depth, slice KD taps, stack--> u [N*OD, C*KD, H, W]
//                     --conv2d(stride, padding, dilation in H and W)--> [N*OD, Cout, OH, OW]
//                     --view + permute--> y [N, Cout, OD, OH, OW]
//
// Depth padding is zeros concatenated before and after; depth stride and dilation are the step
// and offset of the slices. The backward is that of the parts (conv2d's GEMMs; stack, slice and
// cat scatter the gradient back to the frames). conv2d's im2col of u is exactly a 3-D im2col, so
// the GEMM has the same size a dedicated 3-D im2col + GEMM kernel would run; what the
// composition adds is the copy into u (KD times the input, memory-bound) and the permute of the
// output. Measured (float32, forward + backward, 1 thread, CPU time, 3x3x3 kernel, padding 1):
//
//   layer                                    composed   im2col + GEMM alone   KD conv2d summed
//   [32, 1, 8, 16, 16] -> 16 channels         6.7 ms         6.4 ms               8.8 ms
//   [32, 16, 4, 8, 8]  -> 32 channels        15.9 ms        15.3 ms              15.6 ms
//
// "im2col + GEMM alone" is conv2d on a ready-made u: the work a dedicated 3-D im2col + GEMM
// kernel would do. The composition costs about 5% more than that bound, so no fused kernel
// (and no CUDA kernel to keep). The other composition, a sum of KD conv2d calls on shifted
// frames, runs KD GEMMs with K = C*KH*KW each plus KD-1 additions of the whole output: slower
// for few input channels, where the GEMMs are short.
//
// max_pool3d and adaptive_avg_pool3d are SEPARABLE: a 3-D window is a depth window of 2-D
// windows. Pool each frame in (H, W) with the 2-D op on x viewed as [N, C*D, H, W], then pool
// the depth axis with the 2-D op on [N, C, D, OH*OW] and a (KD x 1) window. Both are exact:
//   - max over a product window = max over frames of the per-frame max. Ties: the 2-D op takes
//     the first maximum of each frame, the depth pass the first frame holding the overall
//     maximum, which is the first maximum in (d, h, w) order, PyTorch's rule. A window holding
//     NaN gives its last NaN the same way. The gradient reaches that one element.
//   - every frame of an adaptive window has the same (H, W) window, so the mean of the window
//     is the mean over its frames of the per-frame means. An adaptive pool along an axis whose
//     output size equals its input size is the identity, which the depth pass uses for OH*OW.
// Cost: the depth pass reads the already pooled frames, so max_pool3d(2) on [32, 16, 8, 16, 16]
// takes 3.2 ms forward + backward against 2.3 ms for ONE 2-D pass over the same tensor: a fused
// kernel could save at most ~30% of a small cost. Global adaptive pooling (output 1) is a mean.
#include "mmgrad/ops/conv3d.h"

#include <vector>

#include "mmgrad/kernels/index_math.h"
#include "mmgrad/ops/common.h"
#include "mmgrad/ops/index.h"
#include "mmgrad/ops/reduce.h"
#include "mmgrad/ops/shape.h"

namespace mmgrad {
namespace {

std::string triple_str(Triple3 t) { return cat_str("(", t.d, ", ", t.h, ", ", t.w, ")"); }

// [N, C, D, H, W] (or unbatched [C, D, H, W]) with at least one frame and pixel.
void check_volume_input(const char* op, const Tensor& x) {
  check_defined(op, x, "input");
  check_floating(op, x, "input");
  MMGRAD_CHECK(x.dim() == 5 || x.dim() == 4, op,
               ": expected input of shape [N, C, D, H, W] (or [C, D, H, W]), got ", describe(x));
  MMGRAD_CHECK(x.size(-3) > 0 && x.size(-2) > 0 && x.size(-1) > 0, op,
               ": input needs at least one frame and one pixel, got ", x.shape().str());
}

// The window geometry of max_pool3d (stride 0 = the kernel size), validated; returns the stride.
Triple3 check_pool_window(const char* op, const Tensor& x, Triple3 k, Triple3 s, Triple3 p) {
  MMGRAD_CHECK(k.d >= 1 && k.h >= 1 && k.w >= 1, op, ": kernel_size must be >= 1, got ",
               triple_str(k));
  if (s.d == 0 && s.h == 0 && s.w == 0) s = k;
  MMGRAD_CHECK(s.d >= 1 && s.h >= 1 && s.w >= 1, op,
               ": stride must be >= 1 (or 0 for the kernel size), got ", triple_str(s));
  MMGRAD_CHECK(
      p.d >= 0 && p.h >= 0 && p.w >= 0 && p.d <= k.d / 2 && p.h <= k.h / 2 && p.w <= k.w / 2, op,
      ": padding must be between 0 and half the kernel size, got padding ", triple_str(p),
      " for kernel ", triple_str(k));
  const int64_t D = x.size(-3), H = x.size(-2), W = x.size(-1);
  MMGRAD_CHECK(k.d <= D + 2 * p.d && k.h <= H + 2 * p.h && k.w <= W + 2 * p.w, op, ": input ",
               x.shape().str(), " padded to ", D + 2 * p.d, "x", H + 2 * p.h, "x", W + 2 * p.w,
               " is smaller than the kernel ", k.d, "x", k.h, "x", k.w);
  return s;
}

}  // namespace

Tensor conv3d(const Tensor& x, const Tensor& weight, const Tensor& bias, Triple3 stride,
              Triple3 padding, Triple3 dilation) {
  const char* op = "conv3d";
  check_defined(op, x, "input");
  check_defined(op, weight, "weight");
  check_floating(op, x, "input");
  check_floating(op, weight, "weight");
  check_same_device(op, x, weight);
  check_same_dtype(op, x, weight);
  MMGRAD_CHECK(x.dim() == 5 || x.dim() == 4, op,
               ": expected input of shape [N, C, D, H, W] (or [C, D, H, W]), got ", describe(x));
  MMGRAD_CHECK(weight.dim() == 5, op, ": expected weight of shape [Cout, C, KD, KH, KW], got ",
               describe(weight));
  if (x.dim() == 4)
    return conv3d(x.unsqueeze(0), weight, bias, stride, padding, dilation).squeeze(0);
  const int64_t N = x.size(0), C = x.size(1), D = x.size(2), H = x.size(3), W = x.size(4);
  const int64_t Cout = weight.size(0), KD = weight.size(2), KH = weight.size(3),
                KW = weight.size(4);
  MMGRAD_CHECK(weight.size(1) == C, op, ": weight ", weight.shape().str(), " expects ",
               weight.size(1), " input channels, but the input ", x.shape().str(), " has ", C,
               " (groups are not supported)");
  MMGRAD_CHECK(C > 0 && D > 0 && H > 0 && W > 0, op,
               ": input needs at least one channel, frame and pixel, got ", x.shape().str());
  MMGRAD_CHECK(Cout > 0 && KD > 0 && KH > 0 && KW > 0, op,
               ": weight has an empty dimension: ", weight.shape().str());
  if (bias.defined()) {
    check_floating(op, bias, "bias");
    check_same_device(op, x, bias);
    check_same_dtype(op, x, bias);
    MMGRAD_CHECK(bias.dim() == 1 && bias.size(0) == Cout, op, ": expected bias of shape [", Cout,
                 "] (one per output channel), got ", bias.shape().str());
  }
  MMGRAD_CHECK(stride.d >= 1 && stride.h >= 1 && stride.w >= 1, op, ": stride must be >= 1, got ",
               triple_str(stride));
  MMGRAD_CHECK(padding.d >= 0 && padding.h >= 0 && padding.w >= 0, op,
               ": padding must be >= 0, got ", triple_str(padding));
  MMGRAD_CHECK(dilation.d >= 1 && dilation.h >= 1 && dilation.w >= 1, op,
               ": dilation must be >= 1, got ", triple_str(dilation));
  const int64_t ekd = dilation.d * (KD - 1) + 1, ekh = dilation.h * (KH - 1) + 1,
                ekw = dilation.w * (KW - 1) + 1;  // the dilated kernel's extent
  MMGRAD_CHECK(ekd <= D + 2 * padding.d && ekh <= H + 2 * padding.h && ekw <= W + 2 * padding.w, op,
               ": input ", x.shape().str(), " padded to ", D + 2 * padding.d, "x",
               H + 2 * padding.h, "x", W + 2 * padding.w, " is smaller than the (dilated) kernel ",
               ekd, "x", ekh, "x", ekw);
  const int64_t OD = index::conv_out_size(D, KD, stride.d, padding.d, dilation.d);

  // 1. Zero-pad the depth axis (conv2d pads H and W itself).
  Tensor xp = x;
  if (padding.d > 0) {
    Tensor z = Tensor::zeros({N, C, padding.d, H, W}, x.options());
    xp = cat({z, x, z}, 2);
  }
  // 2. Tap kd of output frame od is padded frame od*SD + kd*DD: one strided slice per kd,
  //    [N, C, OD, H, W], permuted to [N, OD, C, H, W] and stacked at dim 3 into
  //    u [N, OD, C, KD, H, W] (contiguous), read as N*OD images of C*KD channels.
  std::vector<Tensor> taps;
  taps.reserve(static_cast<size_t>(KD));
  for (int64_t kd = 0; kd < KD; ++kd) {
    const int64_t first = kd * dilation.d;
    taps.push_back(
        slice(xp, 2, first, first + stride.d * (OD - 1) + 1, stride.d).permute({0, 2, 1, 3, 4}));
  }
  Tensor u = stack(taps, 3).view({N * OD, C * KD, H, W});
  // 3. One conv2d: channel c*KD + kd of u meets weight[:, c, kd] (a free view of the weight).
  Tensor y = conv2d(u, weight.reshape({Cout, C * KD, KH, KW}), bias, {stride.h, stride.w},
                    {padding.h, padding.w}, {dilation.h, dilation.w});
  // 4. [N*OD, Cout, OH, OW] -> [N, Cout, OD, OH, OW], stored contiguously as PyTorch returns it.
  return y.view({N, OD, Cout, y.size(2), y.size(3)}).permute({0, 2, 1, 3, 4}).contiguous();
}

Tensor max_pool3d(const Tensor& x, Triple3 kernel_size, Triple3 stride, Triple3 padding) {
  const char* op = "max_pool3d";
  check_volume_input(op, x);
  const Triple3 s = check_pool_window(op, x, kernel_size, stride, padding);
  if (x.dim() == 4) return max_pool3d(x.unsqueeze(0), kernel_size, s, padding).squeeze(0);
  const int64_t N = x.size(0), C = x.size(1), D = x.size(2), H = x.size(3), W = x.size(4);
  const Triple3 k = kernel_size, p = padding;
  // every frame in (H, W): [N, C*D, OH, OW]
  Tensor a = max_pool2d(x.reshape({N, C * D, H, W}), {k.h, k.w}, {s.h, s.w}, {p.h, p.w});
  const int64_t OH = a.size(2), OW = a.size(3);
  // then across frames: a (KD x 1) window over [N, C, D, OH*OW] -> [N, C, OD, OH*OW]
  Tensor b = max_pool2d(a.view({N, C, D, OH * OW}), {k.d, 1}, {s.d, 1}, {p.d, 0});
  return b.view({N, C, b.size(2), OH, OW});
}

Tensor adaptive_avg_pool3d(const Tensor& x, Triple3 output_size) {
  const char* op = "adaptive_avg_pool3d";
  check_volume_input(op, x);
  const Triple3 o = output_size;
  MMGRAD_CHECK(o.d >= 1 && o.h >= 1 && o.w >= 1, op, ": output_size must be >= 1, got ",
               triple_str(o));
  if (x.dim() == 4) return adaptive_avg_pool3d(x.unsqueeze(0), o).squeeze(0);
  // Global pooling, the common case (a clip's feature vector): one mean over frames and pixels,
  // the same number up to rounding, 7x faster than the two passes on [32, 16, 8, 16, 16].
  if (o.d == 1 && o.h == 1 && o.w == 1) return mean(x, Shape{2, 3, 4}, /*keepdim=*/true);
  const int64_t N = x.size(0), C = x.size(1), D = x.size(2), H = x.size(3), W = x.size(4);
  // every frame in (H, W): [N, C*D, OH, OW]
  Tensor a = adaptive_avg_pool2d(x.reshape({N, C * D, H, W}), {o.h, o.w});
  // then across frames; the second axis (OH*OW -> OH*OW) is the identity
  Tensor b = adaptive_avg_pool2d(a.view({N, C, D, o.h * o.w}), {o.d, o.h * o.w});
  return b.view({N, C, o.d, o.h, o.w});
}

}  // namespace mmgrad
