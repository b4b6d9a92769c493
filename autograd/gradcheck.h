// gradcheck: compares the analytic gradient from backward() with central finite differences.
//
// For inputs x (float64) and a function f, it draws a fixed random weight w of f's output shape
// and checks the gradient of L = sum(f(x) * w), which exercises every output element:
//   analytic:  backward with upstream gradient w
//   numeric:   dL/dx_j ~ (L(x + eps e_j) - L(x - eps e_j)) / (2 eps)      (error O(eps^2))
//              (summed as sum_k w_k (f_k(x + eps e_j) - f_k(x - eps e_j)) / (2 eps), so outputs
//              that do not depend on x_j cancel exactly)
// An element passes when |analytic - numeric| <= tol * max(1, |analytic|, |numeric|): relative
// for large gradients, absolute for gradients below 1.
//
// gradcheck copies the inputs into fresh contiguous leaves; to test an op on non-contiguous or
// broadcast inputs, make the view inside fn (e.g. fn = [](auto& x) { return op(x[0].t()); }).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad {

struct GradcheckResult {
  bool ok = true;
  double max_error = 0.0;  // worst |analytic - numeric| / max(1, |analytic|, |numeric|)
  int worst_input = -1;    // which input, and which element (flat index), had it
  int64_t worst_index = -1;
  double worst_analytic = 0.0, worst_numeric = 0.0;
  int64_t elements_checked = 0;
  std::string report;  // one line a learner can read
};

using GradFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Inputs that require grad are checked; the others are passed through unchanged.
GradcheckResult gradcheck(const GradFn& fn, const std::vector<Tensor>& inputs, double eps = 1e-6,
                          double tol = 1e-6);

}  // namespace mmgrad
