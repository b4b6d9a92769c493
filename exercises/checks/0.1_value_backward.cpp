// Checker for task 0.1: the learner's backward on scalar expressions, against central
// differences of the same expressions.
#include <cmath>

#include "checks.h"

namespace mmgrad::exercises {

namespace {

using micrograd::ValuePtr;

struct Expr {
  std::string what;
  std::vector<double> at;                                       // the leaves' values
  std::function<ValuePtr(const std::vector<ValuePtr>&)> build;  // the expression
  std::string hint;
};

// dE/d(leaf i) by central differences on freshly built graphs.
double numeric(const Expr& e, size_t i) {
  const double h = 1e-6;
  auto eval = [&](double shift) {
    std::vector<ValuePtr> leaves;
    for (size_t j = 0; j < e.at.size(); ++j)
      leaves.push_back(micrograd::value(e.at[j] + (j == i ? shift : 0.0)));
    return e.build(leaves)->data;
  };
  return (eval(h) - eval(-h)) / (2 * h);
}

}  // namespace

void check_value_backward(Checker& c, decltype(&value_backward) backward) {
  const std::vector<Expr> exprs = {
      {"c = a * b",
       {2.0, -3.0},
       [](const auto& v) { return v[0] * v[1]; },
       "set root->grad = 1 first, then call every node's backward_local"},
      {"d = tanh(a * b + c)",
       {0.5, -1.5, 0.25},
       [](const auto& v) { return micrograd::tanh(v[0] * v[1] + v[2]); },
       "call backward_local root first, then down to the leaves (reverse topological order)"},
      {"b = a * a (a used twice)",
       {3.0},
       [](const auto& v) { return v[0] * v[0]; },
       "a node used twice gets both contributions: let backward_local ADD into the grads"},
      {"shared sub-expression: e = (a + b) * exp(a + b) with s = a + b built once",
       {0.3, 0.4},
       [](const auto& v) {
         ValuePtr s = v[0] + v[1];
         return s * micrograd::exp(s);
       },
       "visit every node once: a node reached along two paths must not run backward_local twice, "
       "and it must run only after BOTH of its parents ran theirs"},
      {"a small neuron: tanh(w1 x1 + w2 x2 + b)^2",
       {0.7, -0.2, 1.5, 2.0, -0.4},
       [](const auto& v) {
         ValuePtr n = micrograd::tanh(v[0] * v[2] + v[1] * v[3] + v[4]);
         return micrograd::pow(n, 2.0);
       },
       "reverse topological order: a node's grad must be complete before it is passed on"},
  };
  for (const Expr& e : exprs) {
    std::vector<ValuePtr> leaves;
    for (double x : e.at) leaves.push_back(micrograd::value(x));
    ValuePtr out = e.build(leaves);
    backward(out);
    c.close(e.what + ": the root's grad", out->grad, 1.0, 0, 0,
            "backward starts with root->grad = 1 (dL/dL)");
    for (size_t i = 0; i < leaves.size(); ++i)
      c.close(cat_str(e.what, ": grad of leaf ", i, " (value ", e.at[i], ")"), leaves[i]->grad,
              numeric(e, i), 1e-5, 1e-7, e.hint);
  }
  // A long chain: x -> x * 1.0001 -> ... 100,000 times. Recursion this deep overflows the stack.
  c.note("a chain of 100,000 nodes (a crash here means a recursion too deep for the stack)");
  ValuePtr x = micrograd::value(1.0);
  ValuePtr y = x;
  const int n = 100000;
  for (int i = 0; i < n; ++i) y = y * 1.00001;
  backward(y);
  c.close("a chain of 100,000 multiplications: grad of its input", x->grad, std::pow(1.00001, n),
          1e-9, 0, "use an explicit stack, not recursion, to order the nodes");
}

namespace {

// Calls backward_local in FORWARD order (leaves first): right only for a single node.
void forward_order(const micrograd::ValuePtr& root) {
  std::vector<micrograd::Value*> order = micrograd::topological_order(root);
  root->grad = 1.0;
  for (micrograd::Value* v : order)
    if (v->backward_local) v->backward_local();
}
// Walks the graph as a tree: a node reached along two paths runs backward_local twice, each time
// passing on the grad it has so far.
void tree_walk(const micrograd::ValuePtr& root) {
  root->grad = 1.0;
  std::vector<micrograd::Value*> stack = {root.get()};
  while (!stack.empty()) {
    micrograd::Value* v = stack.back();
    stack.pop_back();
    if (v->backward_local) v->backward_local();
    for (const auto& ch : v->children) stack.push_back(ch.get());
  }
}
// Forgets to seed the root's gradient with 1.
void no_seed(const micrograd::ValuePtr& root) {
  std::vector<micrograd::Value*> order = micrograd::topological_order(root);
  for (auto it = order.rbegin(); it != order.rend(); ++it)
    if ((*it)->backward_local) (*it)->backward_local();
}

}  // namespace

std::vector<Mutant> mutants_value_backward() {
  return {
      {"forgets root->grad = 1", [](Checker& c) { check_value_backward(c, &no_seed); }},
      {"calls backward_local leaves first",
       [](Checker& c) { check_value_backward(c, &forward_order); }},
      {"walks the graph as a tree (shared nodes twice)",
       [](Checker& c) { check_value_backward(c, &tree_walk); }},
  };
}

}  // namespace mmgrad::exercises
