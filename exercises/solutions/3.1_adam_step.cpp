// Reference for task 3.1: mmgrad::reference::adam_step (optim/adam.cpp), the float64 loop that
// defines what optim::Adam's fused kernel computes (with decoupled = false: Adam's L2 decay).
#include "mmgrad/optim/optim.h"
#include "tasks.h"

namespace mmgrad::exercises::solution {

AdamStepResult adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                         const Tensor& exp_avg_sq, int64_t step,
                         const optim::AdamOptions& options) {
  std::vector<double> p = param.to_vector<double>();
  std::vector<double> m = exp_avg.to_vector<double>();
  std::vector<double> v = exp_avg_sq.to_vector<double>();
  reference::adam_step(p, grad.to_vector<double>(), m, v, step, options, /*decoupled=*/false);
  auto back = [&](const std::vector<double>& x) {
    // from_vector with no shape gives a 1-D tensor; reshape also covers a 0-d parameter
    return Tensor::from_vector(x, {}, param.dtype()).reshape(param.shape());
  };
  return {back(p), back(m), back(v)};
}

}  // namespace mmgrad::exercises::solution
