#include "mmgrad/nn/conv.h"

#include <cmath>

#include "mmgrad/nn/checks.h"
#include "mmgrad/nn/init.h"

namespace mmgrad::nn {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Pair2 kernel_size, Pair2 stride,
               Pair2 padding, bool with_bias, Pair2 dilation)
    : in_channels(in_channels),
      out_channels(out_channels),
      kernel_size(kernel_size),
      stride(stride),
      padding(padding),
      dilation(dilation) {
  MMGRAD_CHECK(in_channels > 0 && out_channels > 0, "Conv2d: channels must be positive, got in ",
               in_channels, ", out ", out_channels);
  MMGRAD_CHECK(kernel_size.h > 0 && kernel_size.w > 0 && stride.h > 0 && stride.w > 0 &&
                   dilation.h > 0 && dilation.w > 0 && padding.h >= 0 && padding.w >= 0,
               "Conv2d: got kernel_size (", kernel_size.h, ", ", kernel_size.w, "), stride (",
               stride.h, ", ", stride.w, "), padding (", padding.h, ", ", padding.w,
               "), dilation (", dilation.h, ", ", dilation.w,
               "); kernel, stride and dilation must be positive and padding >= 0");
  weight = register_parameter(
      "weight", Tensor::empty({out_channels, in_channels, kernel_size.h, kernel_size.w}));
  if (with_bias) bias = register_parameter("bias", Tensor::empty({out_channels}));
  reset_parameters();
}

namespace {

// PyTorch's convolution init, for any number of spatial dims: kaiming_uniform_ with a = sqrt(5)
// gives the weight U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the bias gets the same bound, where
// fan_in = in_channels * (product of the kernel size) = weight.numel() / out_channels.
void reset_conv_parameters(Tensor& weight, Tensor& bias) {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    double fan_in = static_cast<double>(weight.numel() / weight.size(0));
    init::uniform_(bias, -1.0 / std::sqrt(fan_in), 1.0 / std::sqrt(fan_in));
  }
}

}  // namespace

void Conv2d::reset_parameters() { reset_conv_parameters(weight, bias); }

Tensor Conv2d::forward(const Tensor& x) {
  detail::check_input(*this, x, weight);
  MMGRAD_CHECK(
      (x.dim() == 4 && x.size(1) == in_channels) || (x.dim() == 3 && x.size(0) == in_channels),
      label(), ": input is ", describe(x), "; expected [N, ", in_channels, ", H, W] or [",
      in_channels, ", H, W]");
  if (x.dim() == 3) return forward(x.unsqueeze(0)).squeeze(0);
  const int64_t H = x.size(2), W = x.size(3);
  const int64_t eff_h = dilation.h * (kernel_size.h - 1) + 1;
  const int64_t eff_w = dilation.w * (kernel_size.w - 1) + 1;
  MMGRAD_CHECK(H + 2 * padding.h >= eff_h && W + 2 * padding.w >= eff_w, label(), ": input ",
               describe(x), " (padded to ", H + 2 * padding.h, "x", W + 2 * padding.w,
               ") is smaller than the kernel's extent ", eff_h, "x", eff_w);
  return conv2d(x, weight, bias, stride, padding, dilation);
}

std::string Conv2d::extra_repr() const {
  auto pair = [](Pair2 p) { return cat_str("(", p.h, ", ", p.w, ")"); };
  std::string s = cat_str(in_channels, ", ", out_channels, ", kernel_size=", pair(kernel_size),
                          ", stride=", pair(stride));
  if (padding.h || padding.w) s += ", padding=" + pair(padding);
  if (dilation.h != 1 || dilation.w != 1) s += ", dilation=" + pair(dilation);
  if (!bias.defined()) s += ", bias=false";
  return s;
}

// ---- Conv3d (issue 15)
// ---------------------------------------------------------------------------

namespace {
std::string triple_str(Triple3 t) { return cat_str("(", t.d, ", ", t.h, ", ", t.w, ")"); }
}  // namespace

Conv3d::Conv3d(int64_t in_channels, int64_t out_channels, Triple3 kernel_size, Triple3 stride,
               Triple3 padding, bool with_bias, Triple3 dilation)
    : in_channels(in_channels),
      out_channels(out_channels),
      kernel_size(kernel_size),
      stride(stride),
      padding(padding),
      dilation(dilation) {
  MMGRAD_CHECK(in_channels > 0 && out_channels > 0, "Conv3d: channels must be positive, got in ",
               in_channels, ", out ", out_channels);
  const Triple3 k = kernel_size, s = stride, p = padding, d = dilation;
  MMGRAD_CHECK(k.d > 0 && k.h > 0 && k.w > 0 && s.d > 0 && s.h > 0 && s.w > 0 && d.d > 0 &&
                   d.h > 0 && d.w > 0 && p.d >= 0 && p.h >= 0 && p.w >= 0,
               "Conv3d: got kernel_size ", triple_str(k), ", stride ", triple_str(s), ", padding ",
               triple_str(p), ", dilation ", triple_str(d),
               "; kernel, stride and dilation must be positive and padding >= 0");
  weight = register_parameter("weight", Tensor::empty({out_channels, in_channels, k.d, k.h, k.w}));
  if (with_bias) bias = register_parameter("bias", Tensor::empty({out_channels}));
  reset_parameters();
}

void Conv3d::reset_parameters() { reset_conv_parameters(weight, bias); }

Tensor Conv3d::forward(const Tensor& x) {
  detail::check_input(*this, x, weight);
  MMGRAD_CHECK(
      (x.dim() == 5 && x.size(1) == in_channels) || (x.dim() == 4 && x.size(0) == in_channels),
      label(), ": input is ", describe(x), "; expected [N, ", in_channels, ", D, H, W] or [",
      in_channels, ", D, H, W]");
  return conv3d(x, weight, bias, stride, padding, dilation);  // checks the sizes, names conv3d
}

std::string Conv3d::extra_repr() const {
  std::string s =
      cat_str(in_channels, ", ", out_channels, ", kernel_size=", triple_str(kernel_size),
              ", stride=", triple_str(stride));
  if (padding.d || padding.h || padding.w) s += ", padding=" + triple_str(padding);
  if (dilation.d != 1 || dilation.h != 1 || dilation.w != 1)
    s += ", dilation=" + triple_str(dilation);
  if (!bias.defined()) s += ", bias=false";
  return s;
}

}  // namespace mmgrad::nn
