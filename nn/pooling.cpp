#include "mmgrad/nn/pooling.h"

namespace mmgrad::nn {
namespace {

std::string pair_str(Pair2 p) { return cat_str("(", p.h, ", ", p.w, ")"); }

void check_pool_args(const char* layer, Pair2 k, Pair2 s, Pair2 p) {
  MMGRAD_CHECK(k.h > 0 && k.w > 0 && s.h >= 0 && s.w >= 0 && p.h >= 0 && p.w >= 0 &&
                   2 * p.h <= k.h && 2 * p.w <= k.w,
               layer, ": got kernel_size ", pair_str(k), ", stride ", pair_str(s), ", padding ",
               pair_str(p),
               "; expected kernel > 0, stride >= 0 (0 = kernel), 0 <= padding <= "
               "kernel / 2");
}

void check_nchw(const Module& m, const Tensor& x) {
  MMGRAD_CHECK(x.defined(), m.label(), ": input is an undefined tensor");
  MMGRAD_CHECK(x.dim() == 4 && x.is_floating_point(), m.label(), ": input is ", describe(x),
               "; expected a floating-point [N, C, H, W] tensor");
}

}  // namespace

MaxPool2d::MaxPool2d(Pair2 kernel_size, Pair2 stride, Pair2 padding)
    : kernel_size(kernel_size), stride(stride), padding(padding) {
  check_pool_args("MaxPool2d", kernel_size, stride, padding);
}

Tensor MaxPool2d::forward(const Tensor& x) {
  check_nchw(*this, x);
  return max_pool2d(x, kernel_size, stride, padding);
}

std::string MaxPool2d::extra_repr() const {
  return cat_str("kernel_size=", pair_str(kernel_size), ", stride=", pair_str(stride),
                 ", padding=", pair_str(padding));
}

AvgPool2d::AvgPool2d(Pair2 kernel_size, Pair2 stride, Pair2 padding)
    : kernel_size(kernel_size), stride(stride), padding(padding) {
  check_pool_args("AvgPool2d", kernel_size, stride, padding);
}

Tensor AvgPool2d::forward(const Tensor& x) {
  check_nchw(*this, x);
  return avg_pool2d(x, kernel_size, stride, padding);
}

std::string AvgPool2d::extra_repr() const {
  return cat_str("kernel_size=", pair_str(kernel_size), ", stride=", pair_str(stride),
                 ", padding=", pair_str(padding));
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Pair2 output_size) : output_size(output_size) {
  MMGRAD_CHECK(output_size.h > 0 && output_size.w > 0,
               "AdaptiveAvgPool2d: output_size must be positive, got ", pair_str(output_size));
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  check_nchw(*this, x);
  return adaptive_avg_pool2d(x, output_size);
}

std::string AdaptiveAvgPool2d::extra_repr() const { return "output_size=" + pair_str(output_size); }

// ---- 3-D pooling (issue 15)
// ----------------------------------------------------------------------

namespace {

std::string triple_str(Triple3 t) { return cat_str("(", t.d, ", ", t.h, ", ", t.w, ")"); }

void check_ncdhw(const Module& m, const Tensor& x) {
  MMGRAD_CHECK(x.defined(), m.label(), ": input is an undefined tensor");
  MMGRAD_CHECK((x.dim() == 5 || x.dim() == 4) && x.is_floating_point(), m.label(), ": input is ",
               describe(x), "; expected a floating-point [N, C, D, H, W] (or [C, D, H, W]) tensor");
}

}  // namespace

MaxPool3d::MaxPool3d(Triple3 kernel_size, Triple3 stride, Triple3 padding)
    : kernel_size(kernel_size), stride(stride), padding(padding) {
  const Triple3 k = kernel_size, s = stride, p = padding;
  MMGRAD_CHECK(k.d > 0 && k.h > 0 && k.w > 0 && s.d >= 0 && s.h >= 0 && s.w >= 0 && p.d >= 0 &&
                   p.h >= 0 && p.w >= 0 && 2 * p.d <= k.d && 2 * p.h <= k.h && 2 * p.w <= k.w,
               "MaxPool3d: got kernel_size ", triple_str(k), ", stride ", triple_str(s),
               ", padding ", triple_str(p),
               "; expected kernel > 0, stride >= 0 (0 = kernel), 0 <= padding <= kernel / 2");
  if (s.d == 0 && s.h == 0 && s.w == 0) this->stride = k;
}

Tensor MaxPool3d::forward(const Tensor& x) {
  check_ncdhw(*this, x);
  return max_pool3d(x, kernel_size, stride, padding);
}

std::string MaxPool3d::extra_repr() const {
  std::string s = cat_str("kernel_size=", triple_str(kernel_size), ", stride=", triple_str(stride));
  if (padding.d || padding.h || padding.w) s += ", padding=" + triple_str(padding);
  return s;
}

AdaptiveAvgPool3d::AdaptiveAvgPool3d(Triple3 output_size) : output_size(output_size) {
  MMGRAD_CHECK(output_size.d > 0 && output_size.h > 0 && output_size.w > 0,
               "AdaptiveAvgPool3d: output_size must be positive, got ", triple_str(output_size));
}

Tensor AdaptiveAvgPool3d::forward(const Tensor& x) {
  check_ncdhw(*this, x);
  return adaptive_avg_pool3d(x, output_size);
}

std::string AdaptiveAvgPool3d::extra_repr() const {
  return "output_size=" + triple_str(output_size);
}

}  // namespace mmgrad::nn
