// Task 0.1: backward() of the scalar engine                           (lesson 00_micrograd)
//
// Lesson 00 builds every number of a computation as a Value node: its data, its grad, the
// children it was computed from, and backward_local, a function that adds this node's grad
// times the local derivative into each child's grad (for c = a * b: a.grad += b.data * c.grad and
// b.grad += a.data * c.grad). Each node knows only its own step of the chain rule. backward()
// runs the whole chain:
//
//   1. order the nodes so that every node comes after all the nodes it was computed from
//      (a topological order: children before parents);
//   2. set root->grad = 1 (dL/dL);
//   3. walk that order BACKWARDS (from the root down to the leaves) calling each node's
//      backward_local, so a node's grad is complete (every parent has added its share) before
//      it is passed on.
//
// A node used twice (b = a * a, or a shared sub-expression) must be visited once; its grad then
// collects both contributions. Leaves have an empty backward_local (check before calling it: an
// empty std::function throws). The grads start at 0: do not reset them here.
//
// Useful: micrograd::Value (lessons/00_micrograd/micrograd.h): v->children, v->backward_local.
// A recursive depth-first search is the textbook way to order the nodes; a graph of 100,000
// chained nodes overflows the stack with it, and the checker builds one: use an explicit stack
// (std::vector) instead. Do not call micrograd::backward or micrograd::topological_order: they
// are the answer.
//
// Check your work: make exercise TASK=0.1
#include "tasks.h"

namespace mmgrad::exercises {

void value_backward(const micrograd::ValuePtr& root) {
  (void)root;
  not_done("0.1", "value_backward");
}

}  // namespace mmgrad::exercises
