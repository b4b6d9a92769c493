// The backward engine: reverse-mode automatic differentiation over the recorded graph.
//
//   1. Sort the nodes reachable from the output so that every node comes after all nodes that
//      consume its result (reverse post-order of a depth-first search).
//   2. Seed the output's gradient (1 for a scalar loss) and visit the nodes in that order. Each
//      node turns the gradient of its output into gradients of its inputs (the chain rule);
//      these are summed per producer node, or added into a leaf's .grad.
//   3. Free what the nodes saved for backward, unless the graph is retained.
#include <atomic>

#include "mmgrad/autograd/node.h"
#include "mmgrad/kernels/backend.h"

namespace mmgrad {

// Freeing a chain of nodes the default way recurses: ~Node drops its edges, which runs the next
// ~Node, and so on: a loop of 100k ops (an RNN unrolled, `y = y * 2` in a loop) would overflow
// the stack. Instead, every node that only this one keeps alive is moved onto an explicit stack
// and its own edges are unhooked before it dies, so each ~Node is shallow.
Node::~Node() {
  std::vector<std::shared_ptr<Node>> doomed;
  auto take_unique = [&doomed](Node& n) {
    for (Edge& e : n.next)
      if (e.fn && e.fn.use_count() == 1) doomed.push_back(std::move(e.fn));
  };
  take_unique(*this);
  while (!doomed.empty()) {
    std::shared_ptr<Node> n = std::move(doomed.back());
    doomed.pop_back();
    take_unique(*n);
  }  // n is released here with no uniquely owned children left: no recursion
}

SavedTensor::SavedTensor(Node* owner) : next_(owner->saved_) { owner->saved_ = this; }

SavedTensor& SavedTensor::operator=(const Tensor& t) {
  t_ = t.defined() ? t.detach() : Tensor();
  version_ = t.defined() ? t.storage()->version() : 0;
  return *this;
}

void Node::release_saved() {
  for (SavedTensor* s = saved_; s; s = s->next_) s->t_ = Tensor();
}

size_t Node::saved_tensors_held() const {
  size_t n = 0;
  for (const SavedTensor* s = saved_; s; s = s->next_) n += s->defined() ? 1 : 0;
  return n;
}

const Tensor& SavedTensor::get() const {
  MMGRAD_CHECK(
      t_.defined(),
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

const char* node_name(const Node& node) { return node.name(); }

// The inputs as an array of tensors (make_node of a vector) or of references to them (make_node
// of a braced list): one body for both.
inline const Tensor& input_at(const Tensor* inputs, size_t i) { return inputs[i]; }
inline const Tensor& input_at(const InputRef* inputs, size_t i) { return *inputs[i].t; }

template <class In>
bool any_requires_grad_of(const In* inputs, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const Tensor& t = input_at(inputs, i);
    if (t.defined() && t.requires_grad()) return true;
  }
  return false;
}

bool any_requires_grad(const Tensor* inputs, size_t n) { return any_requires_grad_of(inputs, n); }
bool any_requires_grad(const InputRef* inputs, size_t n) { return any_requires_grad_of(inputs, n); }

template <class In>
void wire_node_of(Node& node, Tensor& out, const In* inputs, size_t n,
                  std::shared_ptr<Node>&& self) {
  node.next.resize(n);
  node.input_shapes.resize(n);
  node.input_dtypes.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const Tensor& t = input_at(inputs, i);
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

void wire_node(Node& node, Tensor& out, const Tensor* inputs, size_t n,
               std::shared_ptr<Node> self) {
  wire_node_of(node, out, inputs, n, std::move(self));
}
void wire_node(Node& node, Tensor& out, const InputRef* inputs, size_t n,
               std::shared_ptr<Node> self) {
  wire_node_of(node, out, inputs, n, std::move(self));
}

}  // namespace detail

namespace {

// Only the engine holds this gradient: nothing else (another node's pending gradient, a saved
// tensor, the caller's explicit gradient, a view) shares its handle or its memory, so it can be
// kept or updated in place without changing a tensor someone else can see.
bool exclusive(const Tensor& g) {
  return g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1 && g.is_contiguous() &&
         g.storage_offset() == 0;
}

// Adds g into a leaf's .grad. The first gradient is adopted as is when the engine holds it
// exclusively (else copied), so later in-place updates of .grad (accumulation, clip_grad_norm,
// zero_) touch nothing else. (Adopting a gradient that another pending node still reads, or the
// caller's own gradient tensor, would let those in-place updates corrupt it.)
void accumulate_grad(TensorImpl& leaf, Tensor&& g) {
  if (!leaf.grad.defined()) {
    if (exclusive(g)) {
      // A plain gradient (no history, no flags, no name) is adopted handle and all; anything
      // else through a fresh handle (detach), so .grad never carries autograd state.
      const TensorImpl& gi = *g.impl();
      const bool plain = !gi.requires_grad && !gi.grad_fn && !gi.grad.defined() && gi.name.empty();
      leaf.grad = plain ? std::move(g) : g.detach();
    } else {
      Tensor own = Tensor::empty(g.shape(), g.options());
      backend(g.device()).copy(g.desc(), own.desc());
      leaf.grad = std::move(own);
    }
    g = Tensor();
    return;
  }
  Strided acc = leaf.grad.desc();
  backend(g.device()).binary(BinaryOp::Add, acc, g.desc(), acc);
  g = Tensor();
}

// The working lists of one backward pass. ScratchLease marks them in use and empties them when
// the pass ends (also by an exception), keeping their capacity for the next pass.
struct Scratch {
  std::vector<Node*> post;
  std::vector<std::pair<Node*, size_t>> stack;
  std::vector<Tensor> grads;  // the pending gradient of each node, by topological index
  bool busy = false;
};
struct ScratchLease {
  Scratch& s;
  explicit ScratchLease(Scratch& scratch) : s(scratch) { s.busy = true; }
  ~ScratchLease() {
    s.post.clear();
    s.stack.clear();
    s.grads.clear();  // drops any gradient an exception left behind
    s.busy = false;
  }
  ScratchLease(const ScratchLease&) = delete;
  ScratchLease& operator=(const ScratchLease&) = delete;
};

// A number no other backward pass has used, on any thread: the thread's own range (the high 24
// bits, taken once per thread from a shared counter) and its count of passes (the low 40 bits).
// Counting per thread spares each pass an atomic increment of a counter all threads share.
uint64_t next_epoch() {
  static std::atomic<uint64_t> next_thread{1};
  thread_local uint64_t range = next_thread.fetch_add(1, std::memory_order_relaxed) << 40;
  thread_local uint64_t count = 0;
  return range | (++count & ((uint64_t{1} << 40) - 1));
}

void check_grad(const Node& node, size_t i, const Tensor& g) {
  MMGRAD_CHECK(g.shape() == node.input_shapes[i] && g.dtype() == node.input_dtypes[i],
               "backward of ", node.name(), ": internal error, gradient for input ", i,
               " has shape ", g.shape().str(), " ", dtype_name(g.dtype()), " but the input was ",
               node.input_shapes[i].str(), " ", dtype_name(node.input_dtypes[i]));
}

}  // namespace

// root_grad is taken by value: a gradient made here (backward() of a scalar) arrives as the only
// handle and may be adopted by a leaf; the caller's explicit gradient never is (the caller's
// handle keeps it shared), so backward(g) leaves g untouched.
void run_backward(const Tensor& root, Tensor root_grad, bool retain_graph) {
  NoGradGuard no_grad;
  const std::shared_ptr<Node>& root_fn = root.grad_fn();
  if (!root_fn) {
    accumulate_grad(*root.impl(), std::move(root_grad));  // backward on a leaf: d(x)/dx = 1
    return;
  }

  // The pass's working lists are reused from the previous pass on this thread (a backward of a
  // tiny graph would otherwise spend much of its time allocating them); a backward started
  // from inside a node's backward gets its own.
  thread_local Scratch reusable;
  Scratch own;
  ScratchLease lease(reusable.busy ? own : reusable);
  std::vector<Node*>& post = lease.s.post;
  std::vector<std::pair<Node*, size_t>>& stack = lease.s.stack;
  std::vector<Tensor>& grads = lease.s.grads;

  // 1. Topological order by iterative depth-first search (graphs can be thousands deep). A node
  //    is "seen" when it carries this pass's epoch (cheaper than a hash set per pass).
  const uint64_t epoch = next_epoch();
  stack.push_back({root_fn.get(), 0});
  root_fn->visit_epoch = epoch;
  while (!stack.empty()) {
    auto& [node, next_child] = stack.back();
    if (next_child < node->next.size()) {
      Node* child = node->next[next_child++].fn.get();
      if (child && child->visit_epoch != epoch) {
        child->visit_epoch = epoch;
        stack.push_back({child, 0});
      }
    } else {
      post.push_back(node);
      stack.pop_back();
    }
  }
  // Reverse post-order: order[i] = post[n - 1 - i] (the root first).
  const size_t n = post.size();
  auto order = [&post, n](size_t i) { return post[n - 1 - i]; };
  for (size_t i = 0; i < n; ++i) order(i)->topo_index = static_cast<int64_t>(i);
  for (size_t i = 0; i < n; ++i) {
    const Node* node = order(i);
    MMGRAD_CHECK(!node->released,
                 "backward: trying to backward through the graph a second time (the values saved "
                 "by '",
                 node->name(),
                 "' were freed after the first backward). Pass retain_graph=true to the first "
                 "backward() call if you need to do this.");
  }

  // 2. Propagate.
  grads.resize(n);
  grads[0] = std::move(root_grad);
  for (size_t i = 0; i < n; ++i) {
    Node* node = order(i);
    Tensor g = std::move(grads[i]);
    if (!g.defined()) continue;  // nothing flowed into this node
    if (auto kept = node->retained_output.lock()) accumulate_grad(*kept, Tensor(g));
    std::vector<Tensor> in_grads = node->backward(g);
    g = Tensor();  // drop our handle so that a gradient passed straight through can be adopted
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
          slot = std::move(gi);
        } else if (exclusive(slot)) {
          // A second path into the same node: sum in place when nobody else sees the buffer.
          Strided acc = slot.desc();
          backend(slot.device()).binary(BinaryOp::Add, acc, gi.desc(), acc);
        } else {
          Tensor sum = Tensor::empty(slot.shape(), slot.options());
          backend(sum.device()).binary(BinaryOp::Add, slot.desc(), gi.desc(), sum.desc());
          slot = sum;
        }
      } else {
        accumulate_grad(*e.leaf, std::move(gi));
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
  MMGRAD_CHECK(numel() == 1,
               "backward: a gradient can only be created implicitly for a tensor "
               "with one element, but this tensor has shape ",
               shape().str(),
               ". Call backward(gradient) with a gradient of that shape, or reduce it first "
               "(e.g. .sum() or .mean()).");
  MMGRAD_CHECK(requires_grad(),
               "backward: this tensor does not require grad and has no grad_fn: none of the "
               "tensors it was computed from had requires_grad set (or it was computed under "
               "NoGradGuard)");
  // The seed dL/dL = 1, filled directly (what ones_like does, without its checks: the shape,
  // dtype and device are this tensor's own).
  Tensor seed = Tensor::empty(shape(), options());
  backend(device()).fill(seed.desc(), 1.0);
  run_backward(*this, std::move(seed), retain_graph);
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  MMGRAD_CHECK(defined(), "backward: called on an undefined tensor");
  MMGRAD_CHECK(requires_grad(),
               "backward: this tensor does not require grad and has no grad_fn: none of the "
               "tensors it was computed from had requires_grad set (or it was computed under "
               "NoGradGuard)");
  MMGRAD_CHECK(gradient.defined(), "backward: gradient is undefined");
  MMGRAD_CHECK(gradient.shape() == shape(), "backward: gradient has shape ", gradient.shape().str(),
               " but the tensor has shape ", shape().str());
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
