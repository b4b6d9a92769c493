// Reference for task 1b.1: lesson 01b's own backward (lessons/01b_write_your_own_op/softplus.cpp).
#include "01b_write_your_own_op/softplus.h"
#include "tasks.h"

namespace mmgrad::exercises::solution {

Tensor softplus_backward(const Tensor& x, const Tensor& grad_out, double beta, double threshold) {
  return lesson::softplus_backward(x, grad_out, beta, threshold);
}

}  // namespace mmgrad::exercises::solution
