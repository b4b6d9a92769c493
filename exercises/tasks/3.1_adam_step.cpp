// Task 3.1: one Adam step                                       (lesson 03_siamese_embeddings)
//
// Adam (Kingma & Ba) gives every entry of a parameter its own step size. It keeps two running
// means per entry, the "moments" lesson 03 saves in its checkpoints:
//
//     g = grad + weight_decay * p            (L2 weight decay: the penalty's gradient, added)
//     m = beta1 * m + (1 - beta1) * g         running mean of the gradient      (exp_avg)
//     v = beta2 * v + (1 - beta2) * g * g     running mean of its square        (exp_avg_sq)
//
// m and v start at 0, so early on they are too small (after one step m = (1 - beta1) g, a
// tenth of g). Bias correction divides that out, with t = `step` = the number of this update
// (1 on the first update, 2 on the second, ...):
//
//     m_hat = m / (1 - beta1^t)               v_hat = v / (1 - beta2^t)
//     p = p - lr * m_hat / (sqrt(v_hat) + eps)
//
// m_hat / sqrt(v_hat) is about +-1 where the gradient keeps its sign, so each entry moves by
// about lr whatever the gradient's scale; eps only matters where v_hat is tiny.
// Everything is elementwise: p, grad, m and v all have one shape.
//
// Inputs: param, grad, exp_avg (m), exp_avg_sq (v): floating tensors of one shape and dtype (m
// and v are zeros before the first step); step >= 1; options: lr, beta1, beta2, eps,
// weight_decay (optim::AdamOptions, optim/optim.h). Return the updated {param, exp_avg,
// exp_avg_sq} as new tensors (an AdamStepResult, exercises/tasks.h), in param's dtype, and leave
// the inputs unchanged. The checker runs several steps, feeding your results back in, and
// compares every step with optim::Adam training a real parameter.
// Useful: tensor arithmetic with numbers (m * beta1, 1.0 - beta1, ...), sqrt(t), std::pow.
// Do not call optim::Adam or mmgrad::reference::adam_step: they are the answer.
//
// Check your work: make exercise TASK=3.1
#include "tasks.h"

namespace mmgrad::exercises {

AdamStepResult adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                         const Tensor& exp_avg_sq, int64_t step,
                         const optim::AdamOptions& options) {
  (void)param, (void)grad, (void)exp_avg, (void)exp_avg_sq, (void)step, (void)options;
  not_done("3.1", "adam_step");
}

}  // namespace mmgrad::exercises
