// The scalar engine (see micrograd.h). Each op computes its value and installs backward_local,
// the chain rule for that one op: child.grad += out.grad * d(out)/d(child). The "+=" matters: a
// value used twice (x * x, or a weight used by every sample) collects a gradient from each use.
#include "00_micrograd/micrograd.h"

#include <cmath>
#include <unordered_set>
#include <utility>

namespace mmgrad::micrograd {

Value::~Value() {
  // Take the children; a child we hold the last reference to would die here and recursively
  // free its own children, so instead its children are moved onto the stack before it dies.
  std::vector<ValuePtr> stack = std::move(children);
  while (!stack.empty()) {
    ValuePtr v = std::move(stack.back());
    stack.pop_back();
    if (v && v.use_count() == 1)  // the last owner: v dies at the end of this iteration
      for (ValuePtr& c : v->children) stack.push_back(std::move(c));
  }
}

ValuePtr value(double x) { return std::make_shared<Value>(x); }

ValuePtr operator+(const ValuePtr& a, const ValuePtr& b) {
  auto out = std::make_shared<Value>(a->data + b->data, "+", std::vector<ValuePtr>{a, b});
  Value* o = out.get();
  out->backward_local = [o] {  // d(a+b)/da = 1, d(a+b)/db = 1
    Value &a = *o->children[0], &b = *o->children[1];
    a.grad += o->grad;
    b.grad += o->grad;
  };
  return out;
}

ValuePtr operator*(const ValuePtr& a, const ValuePtr& b) {
  auto out = std::make_shared<Value>(a->data * b->data, "*", std::vector<ValuePtr>{a, b});
  Value* o = out.get();
  out->backward_local = [o] {  // d(ab)/da = b, d(ab)/db = a
    Value &a = *o->children[0], &b = *o->children[1];
    a.grad += b.data * o->grad;
    b.grad += a.data * o->grad;
  };
  return out;
}

ValuePtr pow(const ValuePtr& a, double k) {
  auto out = std::make_shared<Value>(std::pow(a->data, k), "pow", std::vector<ValuePtr>{a});
  Value* o = out.get();
  out->backward_local = [o, k] {  // d(a^k)/da = k a^(k-1)
    Value& a = *o->children[0];
    a.grad += k * std::pow(a.data, k - 1) * o->grad;
  };
  return out;
}

ValuePtr exp(const ValuePtr& a) {
  auto out = std::make_shared<Value>(std::exp(a->data), "exp", std::vector<ValuePtr>{a});
  Value* o = out.get();
  out->backward_local = [o] { o->children[0]->grad += o->data * o->grad; };  // (e^a)' = e^a
  return out;
}

ValuePtr tanh(const ValuePtr& a) {
  auto out = std::make_shared<Value>(std::tanh(a->data), "tanh", std::vector<ValuePtr>{a});
  Value* o = out.get();
  out->backward_local = [o] {  // tanh'(a) = 1 - tanh(a)^2
    o->children[0]->grad += (1 - o->data * o->data) * o->grad;
  };
  return out;
}

ValuePtr relu(const ValuePtr& a) {
  auto out = std::make_shared<Value>(a->data > 0 ? a->data : 0.0, "relu", std::vector<ValuePtr>{a});
  Value* o = out.get();
  out->backward_local = [o] {  // 1 where a > 0, else 0
    Value& a = *o->children[0];
    a.grad += (a.data > 0 ? 1.0 : 0.0) * o->grad;
  };
  return out;
}

ValuePtr operator-(const ValuePtr& a) { return a * -1.0; }
ValuePtr operator-(const ValuePtr& a, const ValuePtr& b) { return a + (-b); }
ValuePtr operator/(const ValuePtr& a, const ValuePtr& b) { return a * pow(b, -1.0); }
ValuePtr operator+(const ValuePtr& a, double b) { return a + value(b); }
ValuePtr operator+(double a, const ValuePtr& b) { return value(a) + b; }
ValuePtr operator-(const ValuePtr& a, double b) { return a + value(-b); }
ValuePtr operator-(double a, const ValuePtr& b) { return value(a) + (-b); }
ValuePtr operator*(const ValuePtr& a, double b) { return a * value(b); }
ValuePtr operator*(double a, const ValuePtr& b) { return value(a) * b; }
ValuePtr operator/(const ValuePtr& a, double b) { return a * value(1.0 / b); }
ValuePtr operator/(double a, const ValuePtr& b) { return value(a) * pow(b, -1.0); }

std::vector<Value*> topological_order(const ValuePtr& root) {
  // Depth-first search with an explicit stack instead of recursion: a recursive visit would use
  // one stack frame per node on the longest path, and a chain of 100k ops (a long loop) would
  // overflow the stack. (mmgrad's engine, autograd/engine.cpp, sorts the same way.)
  // Each stack entry is (node, index of the next child to visit); a node is appended to the
  // order once all its children have been, so children come before parents.
  std::vector<Value*> order;
  std::unordered_set<Value*> seen{root.get()};
  std::vector<std::pair<Value*, size_t>> stack{{root.get(), 0}};
  while (!stack.empty()) {
    auto& [v, next] = stack.back();
    if (next < v->children.size()) {
      Value* c = v->children[next++].get();
      if (seen.insert(c).second)
        stack.push_back({c, 0});  // (may move `v` and `next`: no use after)
    } else {
      order.push_back(v);
      stack.pop_back();
    }
  }
  return order;
}

void backward(const ValuePtr& root) {
  std::vector<Value*> order = topological_order(root);
  root->grad = 1.0;  // dL/dL
  for (auto it = order.rbegin(); it != order.rend(); ++it)
    if ((*it)->backward_local) (*it)->backward_local();
}

// ---- MLP ----------------------------------------------------------------------------------------

MLP::MLP(const std::vector<int>& sizes, const std::function<double()>& uniform01) {
  for (size_t l = 0; l + 1 < sizes.size(); ++l) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(sizes[l]));
    weights.emplace_back();
    biases.emplace_back();
    for (int o = 0; o < sizes[l + 1]; ++o) {
      weights[l].emplace_back();
      for (int i = 0; i < sizes[l]; ++i)
        weights[l][o].push_back(value((2 * uniform01() - 1) * bound));
      biases[l].push_back(value(0.0));
    }
  }
}

std::vector<ValuePtr> MLP::operator()(const std::vector<ValuePtr>& x) const {
  std::vector<ValuePtr> h = x;
  for (size_t l = 0; l < weights.size(); ++l) {
    std::vector<ValuePtr> next;
    for (size_t o = 0; o < weights[l].size(); ++o) {
      ValuePtr z = biases[l][o];  // z = b + sum_i w_i h_i
      for (size_t i = 0; i < h.size(); ++i) z = z + weights[l][o][i] * h[i];
      next.push_back(l + 1 < weights.size() ? tanh(z) : z);  // the last layer stays linear
    }
    h = std::move(next);
  }
  return h;
}

std::vector<ValuePtr> MLP::parameters() const {
  std::vector<ValuePtr> p;
  for (size_t l = 0; l < weights.size(); ++l) {
    for (const auto& row : weights[l]) p.insert(p.end(), row.begin(), row.end());
    p.insert(p.end(), biases[l].begin(), biases[l].end());
  }
  return p;
}

}  // namespace mmgrad::micrograd
