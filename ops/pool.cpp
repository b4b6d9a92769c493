// 2-D pooling over NCHW (or CHW) tensors, through the fused pooling kernels.
//
//   max_pool2d:  y = max over the window. The gradient flows only to the element that won:
//                dL/dx[argmax] += gy. The forward records the argmax of every window (flat
//                h*W + w within its channel plane), so the backward is one scatter and x itself
//                need not be kept.
//   avg_pool2d:  y = (1 / (KH*KW)) * sum over the window, padded cells counting as zeros in the
//                sum and in the divisor (PyTorch's count_include_pad=True). dL/dx spreads
//                gy / (KH*KW) over the window.
//   adaptive_avg_pool2d: output cell i averages input rows [floor(i*H/OH), ceil((i+1)*H/OH))
//                (and the same for columns), so any input size maps to the requested output size.
//
// Padding is at most half the kernel (as in PyTorch), so every window holds at least one real
// element; with ceil_mode off a window never reaches past the padding, so KH*KW is always the
// window's padded size.
//
// The backend keeps max_pool2d's record of the winners in its own layout (an int64 index per
// window, or on the CPU one byte per window of a float32 2x2/2 pool, whose dense kernels are
// kernels/cpu/max_pool2x2.cpp); the op only allocates and saves it. An adaptive
// average pool whose output size is the input's is the identity (every window one pixel): a copy
// forward, gy passed through backward (the general kernel computed (0 + x) / 1, the same numbers up
// to the sign of a zero).
#include "mmgrad/kernels/index_math.h"
#include "mmgrad/ops/common.h"
#include "mmgrad/ops/conv.h"

namespace mmgrad {
namespace {

enum class PoolKind { Max, Avg, AdaptiveAvg };

const char* pool_name(PoolKind k) {
  switch (k) {
    case PoolKind::Max:
      return "max_pool2d";
    case PoolKind::Avg:
      return "avg_pool2d";
    case PoolKind::AdaptiveAvg:
      return "adaptive_avg_pool2d";
  }
  return "pool";
}

// Input checks shared by all pools; fills the image part of the geometry.
Conv2dGeom pool_input_geom(const char* op, const Tensor& x) {
  check_floating(op, x, "input");
  MMGRAD_CHECK(x.dim() == 4 || x.dim() == 3, op,
               ": expected input of shape [N, C, H, W] (or [C, H, W]), got ", describe(x));
  Conv2dGeom g;
  g.N = x.dim() == 4 ? x.size(0) : 1;
  g.C = x.size(-3);
  g.H = x.size(-2);
  g.W = x.size(-1);
  MMGRAD_CHECK(g.H > 0 && g.W > 0, op, ": input needs at least one pixel, got ", x.shape().str());
  return g;
}

// The output's shape: the input's with H, W replaced by OH, OW.
Shape pooled_shape(const Tensor& x, const Conv2dGeom& g) {
  Shape s = x.shape();
  s[s.size() - 2] = g.OH;
  s[s.size() - 1] = g.OW;
  return s;
}

// Window geometry of max/avg pooling (stride 0 = the kernel size), validated.
Conv2dGeom window_geom(const char* op, const Tensor& x, Pair2 kernel, Pair2 stride, Pair2 padding) {
  Conv2dGeom g = pool_input_geom(op, x);
  MMGRAD_CHECK(kernel.h >= 1 && kernel.w >= 1, op, ": kernel_size must be >= 1, got (", kernel.h,
               ", ", kernel.w, ")");
  if (stride.h == 0 && stride.w == 0) stride = kernel;
  MMGRAD_CHECK(stride.h >= 1 && stride.w >= 1, op, ": stride must be >= 1 (or 0 for the kernel ",
               "size), got (", stride.h, ", ", stride.w, ")");
  MMGRAD_CHECK(
      padding.h >= 0 && padding.w >= 0 && padding.h <= kernel.h / 2 && padding.w <= kernel.w / 2,
      op, ": padding must be between 0 and half the kernel size, got padding (", padding.h, ", ",
      padding.w, ") for kernel (", kernel.h, ", ", kernel.w, ")");
  g.KH = kernel.h;
  g.KW = kernel.w;
  g.SH = stride.h;
  g.SW = stride.w;
  g.PH = padding.h;
  g.PW = padding.w;
  MMGRAD_CHECK(g.KH <= g.H + 2 * g.PH && g.KW <= g.W + 2 * g.PW, op, ": input ", x.shape().str(),
               " padded to ", g.H + 2 * g.PH, "x", g.W + 2 * g.PW, " is smaller than the kernel ",
               g.KH, "x", g.KW);
  g.OH = index::conv_out_size(g.H, g.KH, g.SH, g.PH, 1);
  g.OW = index::conv_out_size(g.W, g.KW, g.SW, g.PW, 1);
  return g;
}

bool is_identity(PoolKind k, const Conv2dGeom& g) {
  return k == PoolKind::AdaptiveAvg && g.OH == g.H && g.OW == g.W;
}

}  // namespace

struct Pool2dBackward : Node {
  PoolKind kind = PoolKind::Max;
  Conv2dGeom g;
  SavedTensor record{this};  // max pooling only: the backend's record of each window's winner
  const char* name() const override { return pool_name(kind); }
  std::vector<Tensor> backward(const Tensor& grad) override {
    Tensor gy = grad.contiguous();
    if (is_identity(kind, g)) return {gy};
    if (gy.numel() == 0) return {Tensor::zeros(input_shapes[0], gy.options())};
    Backend& be = backend(gy.device());
    if (kind == PoolKind::Max) {
      Tensor gx = empty_as(gy, input_shapes[0]);  // written whole by the backend
      be.max_pool2d_backward(gy.dtype(), gy.raw_data(), record.get().raw_data(), gx.raw_data(), g);
      return {gx};
    }
    Tensor gx = Tensor::zeros(input_shapes[0], gy.options());  // the kernels add into it
    if (kind == PoolKind::Avg)
      be.avg_pool2d_backward(gy.dtype(), gy.raw_data(), gx.raw_data(), g);
    else
      be.adaptive_avg_pool2d_backward(gy.dtype(), gy.raw_data(), gx.raw_data(), g);
    return {gx};
  }
};

namespace {

Tensor pool(PoolKind kind, const Tensor& x, const Conv2dGeom& g) {
  Tensor xc = x.detach().contiguous();
  Tensor out = empty_as(x, pooled_shape(x, g));
  Backend& be = backend(x.device());
  Tensor record;
  if (kind == PoolKind::Max && will_record({x})) {
    // Opaque bytes whose layout the backend picks (Backend::max_pool2d_record_bytes), held in an
    // int64 tensor's storage (8-byte aligned, freed with the graph).
    const int64_t bytes = be.max_pool2d_record_bytes(x.dtype(), g);
    record = Tensor::empty({(bytes + 7) / 8}, TensorOptions(DType::Int64).device(x.device()));
  }
  if (out.numel() > 0) {
    switch (kind) {
      case PoolKind::Max:  // without a graph, no record: the backend computes y alone
        be.max_pool2d_forward(x.dtype(), xc.raw_data(), out.raw_data(),
                              record.defined() ? record.raw_data() : nullptr, g);
        break;
      case PoolKind::Avg:
        be.avg_pool2d_forward(x.dtype(), xc.raw_data(), out.raw_data(), g);
        break;
      case PoolKind::AdaptiveAvg:
        if (is_identity(kind, g))
          be.copy(xc.desc(), out.desc());
        else
          be.adaptive_avg_pool2d_forward(x.dtype(), xc.raw_data(), out.raw_data(), g);
        break;
    }
  }
  if (auto node = make_node<Pool2dBackward>(out, {x})) {
    node->kind = kind;
    node->g = g;
    node->record = record;
  }
  return out;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, Pair2 kernel_size, Pair2 stride, Pair2 padding) {
  Conv2dGeom g = window_geom("max_pool2d", x, kernel_size, stride, padding);
  return pool(PoolKind::Max, x, g);
}

Tensor avg_pool2d(const Tensor& x, Pair2 kernel_size, Pair2 stride, Pair2 padding) {
  Conv2dGeom g = window_geom("avg_pool2d", x, kernel_size, stride, padding);
  return pool(PoolKind::Avg, x, g);
}

Tensor adaptive_avg_pool2d(const Tensor& x, Pair2 output_size) {
  const char* op = "adaptive_avg_pool2d";
  Conv2dGeom g = pool_input_geom(op, x);
  MMGRAD_CHECK(output_size.h >= 1 && output_size.w >= 1, op, ": output_size must be >= 1, got (",
               output_size.h, ", ", output_size.w, ")");
  g.OH = output_size.h;
  g.OW = output_size.w;
  return pool(PoolKind::AdaptiveAvg, x, g);
}

}  // namespace mmgrad
