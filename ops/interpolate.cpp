// interpolate: resizing the spatial dims, PyTorch's coordinate convention (see ops/interpolate.h).
//
// Composed, not fused. Every mode is separable: resizing [N, C, H, W] to [N, C, OH, OW] is
// resizing the W axis, then the H axis. Along one axis of input size I and output size O, each
// output index i reads
//   nearest:  y[i] = x[src(i)]                                   -> one index_select
//   linear:   y[i] = x[i0(i)] * l0(i) + x[i1(i)] * l1(i)         -> two index_selects, two muls,
//                                                                    an add
// where the source indices and the weights l0 + l1 = 1 depend only on (i, I, O), so they are
// computed once on the host (O numbers each) and sent to the device as small tensors. The
// backward comes for free: index_select's backward adds each output gradient into the input
// element it read (index_add), and mul's multiplies it by the weight. So interpolate needs no
// kernel of its own and runs on CPU and CUDA alike; a resize costs a few passes over the output
// instead of one, which is cheap next to the convolutions around it in a U-Net.
//
// The formulas follow PyTorch's (aten/src/ATen/native/UpSample.h), including its arithmetic:
// nearest computes its scale in float32 (so indices match PyTorch's exactly), the linear modes
// in the tensor's dtype, floor is floorf, and an axis whose size does not change is copied. The
// 2-D result is h0 * (w0 x00 + w1 x01) + h1 * (w0 x10 + w1 x11), the order of PyTorch's CPU loop.
// One difference: PyTorch also runs an unchanged axis through the weights 1 and 0, so an inf
// there becomes inf * 0 = NaN; here an unchanged axis is copied and the inf stays inf.
#include "mmgrad/ops/interpolate.h"

#include <algorithm>
#include <cmath>

#include "mmgrad/ops/common.h"
#include "mmgrad/ops/elementwise.h"
#include "mmgrad/ops/index.h"

namespace mmgrad {
namespace {

enum class Mode { Nearest, NearestExact, Linear };

// PyTorch's compute_scales_value: how far apart in the input two neighbouring outputs lie.
template <class T>
T coordinate_scale(std::optional<double> scale_factor, int64_t in, int64_t out) {
  return scale_factor ? static_cast<T>(1.0 / *scale_factor)
                      : static_cast<T>(in) / static_cast<T>(out);
}

// The input index output index i reads in the nearest modes.
int64_t nearest_source(Mode mode, int64_t i, int64_t in, int64_t out,
                       std::optional<double> scale_factor) {
  if (mode == Mode::Nearest) {
    if (out == in) return i;
    if (out == 2 * in) return i >> 1;  // PyTorch's shortcut; floor(i * 0.5) is the same
  }
  const float scale = coordinate_scale<float>(scale_factor, in, out);
  const float src = mode == Mode::Nearest
                        ? static_cast<float>(i) * scale
                        : static_cast<float>((static_cast<double>(i) + 0.5) * scale);
  return std::min(static_cast<int64_t>(std::floor(src)), in - 1);
}

// Source indices and weights of the linear modes along one axis, computed in T (PyTorch's
// compute_source_index_and_lambda).
template <class T>
void linear_sources(int64_t in, int64_t out, bool align_corners, std::optional<double> scale_factor,
                    std::vector<int64_t>& i0, std::vector<int64_t>& i1, std::vector<T>& l0,
                    std::vector<T>& l1) {
  // align_corners: the first and last pixel centres of input and output coincide, so the step
  // is (I - 1) / (O - 1). Otherwise the pixel *edges* coincide: output centre i + 0.5 sits at
  // input coordinate (i + 0.5) * scale, i.e. at centre (i + 0.5) * scale - 0.5.
  const T scale = align_corners
                      ? (out > 1 ? static_cast<T>(in - 1) / static_cast<T>(out - 1) : T(0))
                      : coordinate_scale<T>(scale_factor, in, out);
  for (int64_t i = 0; i < out; ++i) {
    T src = align_corners ? scale * static_cast<T>(i)
                          : scale * (static_cast<T>(i) + static_cast<T>(0.5)) - static_cast<T>(0.5);
    if (src < T(0)) src = T(0);  // the first half pixel reads the edge (clamped, not mirrored)
    const int64_t lo = std::min(static_cast<int64_t>(floorf(static_cast<float>(src))), in - 1);
    const T w = std::min(std::max(src - static_cast<T>(lo), T(0)), T(1));
    i0.push_back(lo);
    i1.push_back(lo < in - 1 ? lo + 1 : lo);  // the last pixel has no right neighbour
    l1.push_back(w);
    l0.push_back(T(1) - w);
  }
}

// A 1-D tensor of host values on x's device, shaped to broadcast along dim d of x.
template <class V>
Tensor host_vector(const std::vector<V>& v, const Tensor& x, int d, DType dtype) {
  Shape shape{static_cast<int64_t>(v.size())};
  for (int k = d + 1; k < x.dim(); ++k) shape.push_back(1);
  return Tensor::from_vector(v, shape, TensorOptions(dtype).device(x.device()));
}

// Resizes dim d of y from in to out.
Tensor resize_axis(const Tensor& y, int d, int64_t in, int64_t out, Mode mode, bool align_corners,
                   std::optional<double> scale_factor) {
  if (mode != Mode::Linear) {
    std::vector<int64_t> src(static_cast<size_t>(out));
    for (int64_t i = 0; i < out; ++i) src[i] = nearest_source(mode, i, in, out, scale_factor);
    return index_select(y, d, host_vector(src, y, d, kInt64).reshape({out}));
  }
  std::vector<int64_t> i0, i1;
  Tensor w0, w1;
  if (y.dtype() == kFloat32) {
    std::vector<float> l0, l1;
    linear_sources<float>(in, out, align_corners, scale_factor, i0, i1, l0, l1);
    w0 = host_vector(l0, y, d, kFloat32);
    w1 = host_vector(l1, y, d, kFloat32);
  } else {
    std::vector<double> l0, l1;
    linear_sources<double>(in, out, align_corners, scale_factor, i0, i1, l0, l1);
    w0 = host_vector(l0, y, d, y.dtype());
    w1 = host_vector(l1, y, d, y.dtype());
  }
  Tensor a = index_select(y, d, host_vector(i0, y, d, kInt64).reshape({out}));
  Tensor b = index_select(y, d, host_vector(i1, y, d, kInt64).reshape({out}));
  return add(mul(w0, a), mul(w1, b));
}

}  // namespace

Tensor interpolate(const Tensor& x, const InterpolateOptions& o) {
  const char* op = "interpolate";
  check_floating(op, x, "input");
  MMGRAD_CHECK(x.dim() >= 3 && x.dim() <= 5, op,
               ": expected input [N, C, L], [N, C, H, W] or [N, C, D, H, W], got ", describe(x));
  const int spatial = x.dim() - 2;

  Mode mode = Mode::Linear;
  int linear_rank = 0;  // the input rank a linear mode needs
  if (o.mode == "nearest") {
    mode = Mode::Nearest;
  } else if (o.mode == "nearest-exact") {
    mode = Mode::NearestExact;
  } else if (o.mode == "linear") {
    linear_rank = 3;
  } else if (o.mode == "bilinear") {
    linear_rank = 4;
  } else if (o.mode == "trilinear") {
    linear_rank = 5;
  } else {
    fail(cat_str("interpolate: unknown mode \"", o.mode,
                 "\" (expected nearest, nearest-exact, linear, bilinear or trilinear)"));
  }
  MMGRAD_CHECK(linear_rank == 0 || x.dim() == linear_rank, "interpolate: mode \"", o.mode,
               "\" needs a ", linear_rank, "-D input, got ", describe(x));
  MMGRAD_CHECK(mode == Mode::Linear || !o.align_corners.has_value(),
               "interpolate: align_corners can only be set with the linear modes (linear, "
               "bilinear, trilinear), got mode \"",
               o.mode, "\"");
  const bool align = o.align_corners.value_or(false);

  // Exactly one of size and scale_factor, one value per spatial dim (or one for all).
  const bool has_size = !o.size.empty(), has_scale = !o.scale_factor.empty();
  MMGRAD_CHECK(has_size != has_scale,
               "interpolate: give exactly one of size and scale_factor, got ",
               has_size ? "both" : "neither");
  const size_t given = has_size ? o.size.size() : o.scale_factor.size();
  MMGRAD_CHECK(given == 1 || given == static_cast<size_t>(spatial),
               "interpolate: ", has_size ? "size" : "scale_factor", " has ", given,
               " values; expected 1 or ", spatial, " (one per spatial dim) for input ",
               describe(x));
  // PyTorch accepts an empty batch, but not zero channels or an empty spatial dim.
  MMGRAD_CHECK(x.size(1) > 0, "interpolate: expected at least one channel, got input ",
               describe(x));
  std::vector<int64_t> out(static_cast<size_t>(spatial));
  std::vector<std::optional<double>> scales(static_cast<size_t>(spatial));
  for (int k = 0; k < spatial; ++k) {
    const int64_t in = x.size(2 + k);
    MMGRAD_CHECK(in > 0, "interpolate: input sizes must be greater than 0, got input ",
                 x.shape().str());
    if (has_size) {
      out[k] = o.size[given == 1 ? 0 : k];
    } else {
      const double s = o.scale_factor[given == 1 ? 0 : k];
      MMGRAD_CHECK(s > 0 && std::isfinite(s),
                   "interpolate: scale_factor must be positive and finite, got ", s);
      const double size = std::floor(static_cast<double>(in) * s);
      MMGRAD_CHECK(size < 9.0e15, "interpolate: scale_factor ", s, " gives an output too large");
      out[k] = static_cast<int64_t>(size);
      if (!o.recompute_scale_factor) scales[k] = s;
    }
    MMGRAD_CHECK(out[k] > 0, "interpolate: output sizes must be greater than 0, got ", out[k],
                 " for spatial dim ", k, " of input ", x.shape().str());
  }

  // The innermost axis first, so that bilinear is h-weights * (w-weighted rows), as PyTorch.
  Tensor y = x;
  bool resized = false;
  for (int k = spatial - 1; k >= 0; --k) {
    const int64_t in = x.size(2 + k);
    if (out[k] == in) continue;  // an unchanged axis is a copy in every mode (see the top)
    y = resize_axis(y, 2 + k, in, out[k], mode, align, scales[k]);
    resized = true;
  }
  // Always a new tensor, as PyTorch (a resize to the same size is a copy, not a view).
  return resized ? y : x.clone();
}

}  // namespace mmgrad
