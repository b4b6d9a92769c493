#include "mmgrad/nn/mlp.h"

#include "mmgrad/nn/dropout.h"
#include "mmgrad/nn/linear.h"

namespace mmgrad::nn {

MLP::MLP(const std::vector<int64_t>& dims, Activation activation, double dropout, bool bias) {
  MMGRAD_CHECK(dims.size() >= 2, "MLP: needs at least {in, out} dims, got ", dims.size());
  for (int64_t d : dims)
    MMGRAD_CHECK(d > 0, "MLP: every dimension must be positive, got ", Shape(dims).str());
  MMGRAD_CHECK(dropout >= 0.0 && dropout < 1.0, "MLP: dropout must be in [0, 1), got ", dropout);
  for (size_t i = 0; i + 1 < dims.size(); ++i) {
    push_back(std::make_shared<Linear>(dims[i], dims[i + 1], bias));
    if (i + 2 < dims.size()) {
      push_back(make_activation(activation));
      if (dropout > 0.0) push_back(std::make_shared<Dropout>(dropout));
    }
  }
}

}  // namespace mmgrad::nn
