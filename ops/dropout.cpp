// Dropout (inverted): in training y = x * m with m = keep / (1 - p), keep ~ Bernoulli(1 - p)
// drawn per element; dividing by 1 - p keeps E[y] = x, so eval needs no rescaling and is the
// identity. The backward is dy/dx = m: the same mask, saved from the forward.
//
// keep is u >= p for u ~ U[0, 1) from Tensor::rand (so a given generator state drops the same
// elements on every device and thread count). Two ways to compute it, with the same bits:
//  - composed (every device and dtype): u = rand, mask = where(u >= p, 1 / (1 - p), 0),
//    y = x * mask; the float mask is saved and the backward is g * mask;
//  - fused (where the backend has it, Backend::has_fused_dropout: float32 on the CPU): one pass
//  draws u at the same Philox
//    counters and writes y and one keep byte per element; the backward multiplies g by the same
//    float (keep ? 1 / (1 - p) : 0). A quarter of the saved memory and one pass instead of four.
#include "mmgrad/ops/dropout.h"

#include "mmgrad/ops/common.h"
#include "mmgrad/ops/elementwise.h"
#include "mmgrad/tensor/generator.h"

namespace mmgrad {

struct DropoutBackward : Node {
  // Composed path: the float mask, 1 / (1 - p) where kept and 0 where dropped (x's shape and
  // dtype). Fused path: the bool keep mask, with the float32 scale 1 / (1 - p).
  SavedTensor mask{this};
  float scale = 0.0f;
  const char* name() const override { return "dropout"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor& m = mask.get();
    if (m.dtype() != DType::Bool) return {mul(g, m)};
    Tensor gc = g.contiguous();
    Tensor gx = Tensor::empty(g.shape(), g.options());
    if (gx.numel() > 0)
      backend(gc.device())
          .dropout_backward(gc.dtype(), gc.raw_data(), m.data_ptr<uint8_t>(), gx.raw_data(),
                            gx.numel(), scale);
    return {gx};
  }
};

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  check_floating("dropout", x, "input");
  MMGRAD_CHECK(p >= 0.0 && p <= 1.0, "dropout: probability p must be in [0, 1], got ", p);
  if (!training || p == 0.0) return x;
  Tensor mask, out;
  float scale = 0.0f;
  if (p == 1.0) {  // everything dropped; 1 / (1 - p) would be inf (and inf * 0 = NaN)
    mask = zeros_like(x);
    out = zeros_like(x);
  } else if (backend(x.device()).has_fused_dropout(x.dtype())) {
    // Fused: the counters Tensor::rand(x.shape()) would take, the float32 scalars ge(u, p) and
    // where(.., 1 / (1 - p), ..) would compare with and write.
    Generator& g = gen ? *gen : default_generator();
    const uint64_t offset = g.advance(static_cast<uint64_t>(x.numel()));
    scale = static_cast<float>(1.0 / (1.0 - p));
    Tensor xc = x.contiguous();
    out = Tensor::empty(x.shape(), x.options());
    mask = Tensor::empty(x.shape(), TensorOptions(DType::Bool).device(x.device()));
    if (x.numel() > 0)
      backend(x.device())
          .dropout_forward(x.dtype(), xc.raw_data(), out.raw_data(), mask.data_ptr<uint8_t>(),
                           x.numel(), g.seed(), offset, static_cast<float>(p), scale);
  } else {
    // u ~ U[0, 1) is >= p with probability 1 - p: those elements are kept.
    Tensor u = Tensor::rand(x.shape(), x.options(), gen);
    mask = where(ge(u, p), Tensor::scalar(1.0 / (1.0 - p), x.options()), 0.0);
    out = mul(x.detach(), mask);
  }
  if (auto node = make_node<DropoutBackward>(out, {x})) {
    node->mask = mask;
    node->scale = scale;
  }
  return out;
}

}  // namespace mmgrad
