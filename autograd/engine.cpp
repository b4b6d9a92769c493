// The backward engine: reverse-mode automatic differentiation over the recorded graph.
//
//   1. Sort the nodes reachable from the output so that every node comes after all nodes that
//      consume its result (reverse post-order of a depth-first search).
//   2. Seed the output's gradient (1 for a scalar loss) and visit the nodes in that order. Each
//      node turns the gradient of its output into gradients of its inputs (the chain rule);
//      these are summed per producer node, or added into a leaf's .grad.
//   3. Free what the nodes saved for backward, unless the graph is retained.
#include <unordered_set>

#include "autograd/node.h"
#include "kernels/backend.h"

namespace mmgrad {

const Tensor& SavedTensor::get() const {
  MMGRAD_CHECK(t_.defined(),
               "backward: a tensor saved for backward was already freed. Trying to backward through "
               "the graph a second time? Pass retain_graph=true to the first backward() call.");
  MMGRAD_CHECK(t_.storage()->version() == version_,
               "backward: a tensor needed for the gradient was modified in place after it was used "
               "(saved at version ",
               version_, ", now ", t_.storage()->version(),
               "). Clone it before the in-place op, or do the in-place op under NoGradGuard "
               "before the forward pass.");
  return t_;
}

namespace detail {

bool any_requires_grad(const Tensor* inputs, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (inputs[i].defined() && inputs[i].requires_grad()) return true;
  return false;
}

void wire_node(Node& node, Tensor& out, const Tensor* inputs, size_t n,
               std::shared_ptr<Node> self) {
  node.next.resize(n);
  node.input_shapes.resize(n);
  node.input_dtypes.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const Tensor& t = inputs[i];
    if (!t.defined()) continue;
    node.input_shapes[i] = t.shape();
    node.input_dtypes[i] = t.dtype();
    if (!t.requires_grad()) continue;
    if (t.grad_fn())
      node.next[i].fn = t.grad_fn();
    else
      node.next[i].leaf = t.impl_ptr();
  }
  node.out_shape = out.shape();
  node.out_dtype = out.dtype();
  TensorImpl* o = out.impl();
  o->grad_fn = std::move(self);
  o->requires_grad = true;
}

}  // namespace detail

namespace {

// Adds g into a leaf's .grad. The first gradient is stored as is when nothing else shares its
// memory (else copied), so later in-place updates of .grad (clip_grad_norm) touch nothing else.
void accumulate_grad(TensorImpl& leaf, const Tensor& g) {
  if (!leaf.grad.defined()) {
    bool exclusive = g.is_contiguous() && g.storage().use_count() == 1 && g.storage_offset() == 0;
    if (exclusive) {
      leaf.grad = g.detach();
    } else {
      Tensor own = Tensor::empty(g.shape(), g.options());
      backend(g.device()).copy(g.desc(), own.desc());
      leaf.grad = own;
    }
    return;
  }
  Strided acc = leaf.grad.desc();
  backend(g.device()).binary(BinaryOp::Add, acc, g.desc(), acc);
}

void check_grad(const Node& node, size_t i, const Tensor& g) {
  MMGRAD_CHECK(g.shape() == node.input_shapes[i] && g.dtype() == node.input_dtypes[i],
               "backward of ", node.name(), ": internal error, gradient for input ", i,
               " has shape ", g.shape().str(), " ", dtype_name(g.dtype()), " but the input was ",
               node.input_shapes[i].str(), " ", dtype_name(node.input_dtypes[i]));
}

}  // namespace

void run_backward(const Tensor& root, const Tensor& root_grad, bool retain_graph) {
  NoGradGuard no_grad;
  const std::shared_ptr<Node>& root_fn = root.grad_fn();
  if (!root_fn) {
    accumulate_grad(*root.impl(), root_grad);  // backward on a leaf: d(x)/dx = 1
    return;
  }

  // 1. Topological order by iterative depth-first search (graphs can be thousands deep).
  std::vector<Node*> post;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<Node*, size_t>> stack{{root_fn.get(), 0}};
  seen.insert(root_fn.get());
  while (!stack.empty()) {
    auto& [node, next_child] = stack.back();
    if (next_child < node->next.size()) {
      Node* child = node->next[next_child++].fn.get();
      if (child && seen.insert(child).second) stack.push_back({child, 0});
    } else {
      post.push_back(node);
      stack.pop_back();
    }
  }
  const size_t n = post.size();
  std::vector<Node*> order(post.rbegin(), post.rend());
  for (size_t i = 0; i < n; ++i) order[i]->topo_index = static_cast<int64_t>(i);
  for (Node* node : order)
    MMGRAD_CHECK(!node->released,
                 "backward: trying to backward through the graph a second time (the values saved "
                 "by '",
                 node->name(),
                 "' were freed after the first backward). Pass retain_graph=true to the first "
                 "backward() call if you need to do this.");

  // 2. Propagate.
  std::vector<Tensor> grads(n);
  grads[0] = root_grad;
  for (size_t i = 0; i < n; ++i) {
    Node* node = order[i];
    Tensor g = std::move(grads[i]);
    if (!g.defined()) continue;  // nothing flowed into this node
    if (auto kept = node->retained_output.lock()) accumulate_grad(*kept, g);
    std::vector<Tensor> in_grads = node->backward(g);
    MMGRAD_CHECK(in_grads.size() == node->next.size(), "backward of ", node->name(),
                 ": internal error, returned ", in_grads.size(), " gradients for ",
                 node->next.size(), " inputs");
    for (size_t k = 0; k < in_grads.size(); ++k) {
      const Edge& e = node->next[k];
      Tensor& gi = in_grads[k];
      if (!e.needed() || !gi.defined()) continue;
      check_grad(*node, k, gi);
      if (e.fn) {
        Tensor& slot = grads[static_cast<size_t>(e.fn->topo_index)];
        if (!slot.defined()) {
          slot = gi;
        } else {
          Tensor sum = Tensor::empty(slot.shape(), slot.options());
          backend(sum.device()).binary(BinaryOp::Add, slot.desc(), gi.desc(), sum.desc());
          slot = sum;
        }
      } else {
        accumulate_grad(*e.leaf, gi);
      }
    }
    // 3. Free saved tensors as soon as this node is done.
    if (!retain_graph) {
      node->release_saved();
      node->released = true;
    }
  }
}

void Tensor::backward(bool retain_graph) const {
  MMGRAD_CHECK(defined(), "backward: called on an undefined tensor");
  MMGRAD_CHECK(numel() == 1, "backward: a gradient can only be created implicitly for a tensor "
               "with one element, but this tensor has shape ", shape().str(),
               ". Call backward(gradient) with a gradient of that shape, or reduce it first "
               "(e.g. .sum() or .mean()).");
  backward(ones_like(*this), retain_graph);
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  MMGRAD_CHECK(defined(), "backward: called on an undefined tensor");
  MMGRAD_CHECK(requires_grad(),
               "backward: this tensor does not require grad and has no grad_fn: none of the "
               "tensors it was computed from had requires_grad set (or it was computed under "
               "NoGradGuard)");
  MMGRAD_CHECK(gradient.defined(), "backward: gradient is undefined");
  MMGRAD_CHECK(gradient.shape() == shape(), "backward: gradient has shape ",
               gradient.shape().str(), " but the tensor has shape ", shape().str());
  MMGRAD_CHECK(gradient.dtype() == dtype() && gradient.device() == device(),
               "backward: gradient is ", describe(gradient), " but the tensor is ",
               describe(*this));
  run_backward(*this, gradient, retain_graph);
}

void Tensor::retain_grad() const {
  MMGRAD_CHECK(requires_grad(), "retain_grad: tensor does not require grad");
  if (grad_fn()) grad_fn()->retained_output = impl_ptr();
}

}  // namespace mmgrad
