// The autograd graph: one Node per recorded op.
//
// When an op runs on inputs that require gradients, it creates a Node that remembers what its
// backward needs (saved tensors, shapes) and an Edge to where each input's gradient must go:
// the Node that produced that input, or the leaf tensor itself. The output tensor points at its
// Node (grad_fn). loss.backward() walks these edges once, in reverse topological order
// (autograd/engine.cpp). Each op defines its Node subclass next to its forward, in ops/.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mmgrad/autograd/grad_mode.h"
#include "mmgrad/core/block_pool.h"
#include "mmgrad/core/small_vector.h"
#include "mmgrad/tensor/tensor.h"

namespace mmgrad {

class Node;

// Where one input's gradient goes: into the Node that produced it, or into a leaf's .grad.
// Both empty: the input does not need a gradient.
struct Edge {
  std::shared_ptr<Node> fn;
  std::shared_ptr<TensorImpl> leaf;
  bool needed() const { return fn != nullptr || leaf != nullptr; }
};

// A tensor saved for the backward pass, with the storage version it had when saved. In-place
// writes bump the version; using a changed tensor would give a wrong gradient, so get() throws.
//
// The Node owns what it saves: a SavedTensor is declared as a member of its Node with the Node
// as its owner, `SavedTensor y{this};`, which registers it with the Node. After a backward pass
// (unless the graph is retained) the engine releases every registered tensor at once, so no Node
// frees anything by hand, and a SavedTensor that is not registered does not compile (there is
// no default constructor).
class SavedTensor {
 public:
  explicit SavedTensor(Node* owner);
  SavedTensor(const SavedTensor&) = delete;
  SavedTensor& operator=(const SavedTensor&) = delete;
  // Saves t (a detached handle: saving never keeps the graph above t alive) and its version.
  SavedTensor& operator=(const Tensor& t);
  const Tensor& get() const;
  bool defined() const { return t_.defined(); }

 private:
  friend class Node;
  Tensor t_;
  uint32_t version_ = 0;
  SavedTensor* next_ = nullptr;  // the owner's next saved tensor (an intrusive list: no allocation)
};

class Node {
 public:
  Node() = default;
  Node(const Node&) = delete;  // saved tensors register their address with their Node
  Node& operator=(const Node&) = delete;
  // Not defaulted: a long chain of nodes (a loop of thousands of ops) would otherwise be freed
  // by recursion, one stack frame per node, and overflow the stack. See engine.cpp.
  virtual ~Node();
  // The op's name, e.g. "mul", "matmul", "conv2d" (shown in errors and graph drawings).
  virtual const char* name() const = 0;
  // Given dL/d(output), returns dL/d(input i) for each input edge, in order. An entry may be
  // undefined when that input needs no gradient. Runs with grad mode off.
  virtual std::vector<Tensor> backward(const Tensor& grad_output) = 0;
  // Drops every saved tensor (the engine calls it after a backward pass that does not retain
  // the graph). Not virtual: the Node owns what it saves, so there is nothing op-specific to do.
  void release_saved();
  // How many of this Node's saved tensors still hold a tensor (0 after release_saved()).
  size_t saved_tensors_held() const;

  bool needs_grad(size_t i) const { return i < next.size() && next[i].needed(); }

  // One entry per input. Inline for up to kInlineInputs inputs (core/small_vector.h): recording
  // an op then allocates only the Node itself.
  static constexpr size_t kInlineInputs = 3;
  SmallVector<Edge, kInlineInputs> next;
  SmallVector<Shape, kInlineInputs> input_shapes;  // to check the gradients backward returns
  SmallVector<DType, kInlineInputs> input_dtypes;
  Shape out_shape;  // the output's shape and dtype, for checks and drawings
  DType out_dtype = DType::Float32;
  bool released = false;                      // saved tensors freed: a second backward is an error
  std::weak_ptr<TensorImpl> retained_output;  // set by retain_grad()
  int64_t topo_index = -1;                    // scratch space for the engine
  uint64_t visit_epoch = 0;  // the engine's "seen" mark (one epoch per backward pass)

 private:
  friend class SavedTensor;
  SavedTensor* saved_ = nullptr;  // the saved tensors, linked by SavedTensor's constructor
};

// One input in make_node's list: a reference to the caller's tensor, not a copy of its handle.
// A list of Tensors would copy every handle (an atomic reference-count increment, and a
// decrement when the list dies) only to read it; on a tiny op those count. A temporary in the
// list ({x.contiguous()}) lives until the end of the call, so the reference stays valid.
struct InputRef {
  const Tensor* t;
  InputRef(const Tensor& x) : t(&x) {}  // NOLINT(google-explicit-constructor): {a, b} reads best
};

// Creates a node of type N for an op whose result is `out`, when grad mode is on and any input
// requires a gradient; wires its edges and makes it out's grad_fn. Returns nullptr otherwise,
// so an op writes:
//   if (auto node = make_node<MulBackward>(out, {a, b})) { node->a = a; node->b = b; }
// (a and b being the node's SavedTensor members).
template <class N>
std::shared_ptr<N> make_node(Tensor& out, std::initializer_list<InputRef> inputs);

// The same for inputs held in a vector (cat, stack).
template <class N>
std::shared_ptr<N> make_node(Tensor& out, const std::vector<Tensor>& inputs);

// Whether make_node will record a node for these inputs: an op whose forward computes something
// only its backward needs (max_pool2d's winners) skips that work when it will not.
bool will_record(std::initializer_list<InputRef> inputs);

namespace detail {
bool any_requires_grad(const Tensor* inputs, size_t n);
bool any_requires_grad(const InputRef* inputs, size_t n);
void wire_node(Node& node, Tensor& out, const Tensor* inputs, size_t n, std::shared_ptr<Node> self);
void wire_node(Node& node, Tensor& out, const InputRef* inputs, size_t n,
               std::shared_ptr<Node> self);
}  // namespace detail

inline bool will_record(std::initializer_list<InputRef> inputs) {
  return GradMode::is_enabled() && detail::any_requires_grad(inputs.begin(), inputs.size());
}

template <class N>
std::shared_ptr<N> make_node(Tensor& out, std::initializer_list<InputRef> inputs) {
  if (!will_record(inputs)) return nullptr;
  auto node = std::allocate_shared<N>(PoolAllocator<N>());
  detail::wire_node(*node, out, inputs.begin(), inputs.size(), node);
  return node;
}

template <class N>
std::shared_ptr<N> make_node(Tensor& out, const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled() || !detail::any_requires_grad(inputs.data(), inputs.size()))
    return nullptr;
  auto node = std::allocate_shared<N>(PoolAllocator<N>());
  detail::wire_node(*node, out, inputs.data(), inputs.size(), node);
  return node;
}

}  // namespace mmgrad
