// Dropout (inverted): in training y = x * m with m = keep / (1 - p), keep ~ Bernoulli(1 - p)
// drawn per element; dividing by 1 - p keeps E[y] = x, so eval needs no rescaling and is the
// identity. The backward is dy/dx = m: the same mask, saved from the forward.
#include "mmgrad/ops/dropout.h"

#include "mmgrad/ops/common.h"
#include "mmgrad/ops/elementwise.h"

namespace mmgrad {

struct DropoutBackward : Node {
  SavedTensor mask{this};  // 1 / (1 - p) where kept, 0 where dropped; x's shape and dtype
  const char* name() const override { return "dropout"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {mul(g, mask.get())}; }
};

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  check_floating("dropout", x, "input");
  MMGRAD_CHECK(p >= 0.0 && p <= 1.0, "dropout: probability p must be in [0, 1], got ", p);
  if (!training || p == 0.0) return x;
  Tensor mask, out;
  if (p == 1.0) {  // everything dropped; 1 / (1 - p) would be inf (and inf * 0 = NaN)
    mask = zeros_like(x);
    out = zeros_like(x);
  } else {
    // u ~ U[0, 1) is >= p with probability 1 - p: those elements are kept.
    Tensor u = Tensor::rand(x.shape(), x.options(), gen);
    mask = where(ge(u, p), Tensor::scalar(1.0 / (1.0 - p), x.options()), 0.0);
    out = mul(x.detach(), mask);
  }
  if (auto node = make_node<DropoutBackward>(out, {x})) node->mask = mask;
  return out;
}

}  // namespace mmgrad
