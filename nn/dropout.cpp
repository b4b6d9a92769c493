#include "mmgrad/nn/dropout.h"

#include "mmgrad/ops/dropout.h"
#include "mmgrad/ops/elementwise.h"

namespace mmgrad::nn {

Dropout::Dropout(double p) : p(p) {
  MMGRAD_CHECK(p >= 0.0 && p <= 1.0, "Dropout: probability p must be in [0, 1], got ", p);
}

Tensor Dropout::forward(const Tensor& x) {
  MMGRAD_CHECK(x.defined(), label(), ": input is an undefined tensor");
  if (!is_training() || p == 0.0) return x;
  if (p == 1.0) return x * 0.0;  // every element dropped (1 / (1 - p) would be infinite)
  return dropout(x, p, true);
}

std::string Dropout::extra_repr() const { return cat_str("p=", p); }

}  // namespace mmgrad::nn
