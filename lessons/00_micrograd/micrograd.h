// micrograd: a scalar reverse-mode autograd engine in about 100 lines (after Andrej Karpathy's
// Python micrograd). Every number is a Value node; every operation on Values makes a new node
// that remembers its inputs (children) and how to push a gradient back into them.
//
//   ValuePtr a = value(2.0), b = value(-3.0);
//   ValuePtr y = tanh(a * b + 1.0);
//   backward(y);               // now a->grad = dy/da, b->grad = dy/db
//
// This is exactly what mmgrad's tensor engine (autograd/) does, one number at a time instead of
// one tensor at a time. Lesson 00 puts the two side by side.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace mmgrad::micrograd {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  double data;
  double grad = 0;                 // dL/d(this), filled in by backward()
  std::string op;                  // "" for a leaf, else "+", "*", "tanh", ... (for printing)
  std::vector<ValuePtr> children;  // the inputs of the op that made this node
  // Adds this node's grad times the local derivative d(this)/d(child) into each child's grad:
  // one step of the chain rule. Empty for a leaf. It holds a plain pointer to this node, never
  // a shared_ptr (the node would then own itself: a cycle that leaks the graph), and reaches
  // the children through `children`, which keeps them alive.
  std::function<void()> backward_local;

  explicit Value(double x, std::string op_name = "", std::vector<ValuePtr> inputs = {})
      : data(x), op(std::move(op_name)), children(std::move(inputs)) {}
  Value(const Value&) = delete;
  Value& operator=(const Value&) = delete;
  // Not the default destructor: dropping the last node of a 100k-long chain would destroy its
  // child, which destroys its child, ... one stack frame per node, and overflow the stack. This
  // one frees the chain with an explicit stack instead (mmgrad's Node::~Node does the same).
  ~Value();
};

// A leaf: a number we may want the gradient of (an input or a parameter).
ValuePtr value(double x);

ValuePtr operator+(const ValuePtr& a, const ValuePtr& b);
ValuePtr operator*(const ValuePtr& a, const ValuePtr& b);
ValuePtr pow(const ValuePtr& a, double exponent);  // a^k for a constant k
ValuePtr exp(const ValuePtr& a);
ValuePtr tanh(const ValuePtr& a);
ValuePtr relu(const ValuePtr& a);
// Built from the ops above, so they need no backward of their own:
ValuePtr operator-(const ValuePtr& a);                     // a * -1
ValuePtr operator-(const ValuePtr& a, const ValuePtr& b);  // a + (-b)
ValuePtr operator/(const ValuePtr& a, const ValuePtr& b);  // a * b^-1
ValuePtr operator+(const ValuePtr& a, double b);
ValuePtr operator+(double a, const ValuePtr& b);
ValuePtr operator-(const ValuePtr& a, double b);
ValuePtr operator-(double a, const ValuePtr& b);
ValuePtr operator*(const ValuePtr& a, double b);
ValuePtr operator*(double a, const ValuePtr& b);
ValuePtr operator/(const ValuePtr& a, double b);
ValuePtr operator/(double a, const ValuePtr& b);

// Every node reachable from root exactly once, children before parents (a depth-first search,
// each node listed after all its inputs).
std::vector<Value*> topological_order(const ValuePtr& root);

// Reverse-mode autodiff: sets root->grad = 1 and runs backward_local of every node in reverse
// topological order, so a node's grad is complete (all its uses added in) before it is pushed
// into its children. Gradients ADD UP: zero the parameters' grads before the next backward.
void backward(const ValuePtr& root);

// ---- A small neural network made of Values ------------------------------------------------------
// MLP with tanh hidden layers and a linear output: sizes {2, 16, 16, 1} has two hidden layers of
// 16. Weights start uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)] (PyTorch's nn.Linear range),
// biases 0, drawn from `uniform01` (a function returning numbers in [0, 1)).
struct MLP {
  // weights[l][o][i]: layer l, output o, input i; biases[l][o].
  std::vector<std::vector<std::vector<ValuePtr>>> weights;
  std::vector<std::vector<ValuePtr>> biases;

  MLP(const std::vector<int>& sizes, const std::function<double()>& uniform01);
  std::vector<ValuePtr> operator()(const std::vector<ValuePtr>& x) const;
  std::vector<ValuePtr> parameters() const;  // layer by layer: weights row by row, then biases
};

}  // namespace mmgrad::micrograd
