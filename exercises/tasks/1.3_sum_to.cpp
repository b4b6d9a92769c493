// Task 1.3: sum_to, the backward of broadcasting                   (lesson 01_autograd_tour)
//
// Broadcasting lets x + b add a bias b of shape [3] to every row of x of shape [2, 3]: b is
// used once per row, as if copied along a new leading dimension. In the backward pass every
// copy sends back its gradient, and the copies' gradients add up:
//
//     x: [2, 3], b: [3], y = x + b        dL/db_j = sum_i dL/dy_ij
//
// In general (PyTorch's rule): shapes are aligned at the right; a dimension the input did not
// have (a missing leading one) or had with size 1 was stretched. sum_to(grad, shape) sums grad
// over every stretched dimension and returns a tensor of exactly `shape`:
//   - dimensions grad has in front of shape's dimensions are summed away;
//   - a dimension where shape has 1 and grad has n > 1 is summed, keeping the 1;
//   - when grad already has `shape`, it is returned as is.
// Examples: [2, 3] -> [3] sums dim 0;  [2, 3] -> [2, 1] sums dim 1 keeping it;
//           [4, 2, 3] -> [2, 1] sums dim 0 and dim 2;  [2, 3] -> [] (a 0-d tensor) sums all.
//
// Useful: sum(t, {dims...}, keepdim), t.reshape(shape), t.shape(), t.dim().
// Do not call mmgrad's own sum_to (ops/common.h): that is the answer.
//
// Check your work: make exercise TASK=1.3
#include "tasks.h"

namespace mmgrad::exercises {

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  (void)grad, (void)shape;
  not_done("1.3", "sum_to");
}

}  // namespace mmgrad::exercises
