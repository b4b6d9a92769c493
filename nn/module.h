// Module: the base class of every layer and model, as in PyTorch.
//
// A module owns named parameters (trainable tensors), named buffers (state that is saved but not
// trained, e.g. batch norm's running statistics) and named child modules. From these it derives
// everything a training loop needs: the recursive list of parameters for an optimizer, the
// state dict for checkpoints, train/eval switching, moving to a device or dtype, zero_grad and a
// printable tree with parameter counts.
//
//   struct Net : nn::Module {
//     std::shared_ptr<nn::Linear> fc1, fc2;
//     Net() {
//       fc1 = register_module("fc1", std::make_shared<nn::Linear>(4, 8));
//       fc2 = register_module("fc2", std::make_shared<nn::Linear>(8, 2));
//     }
//     std::string name() const override { return "Net"; }
//     Tensor forward(const Tensor& x) override { return fc2->forward(fc1->forward(x).relu()); }
//   };
//
// Tensor handles share their data, so a layer keeps a copy of the handle register_parameter
// returns (`weight = register_parameter("weight", ...)`): the member, the module's registry and
// an optimizer's list all refer to the same tensor. That is why to(Device)/to(DType) change
// tensors in place (Tensor::set_data) instead of replacing them.
//
// Names: every parameter and buffer carries its dotted path from the root module in
// Tensor::name() ("encoder.layers.0.self_attn.in_proj_weight"), the name graph drawings show.
// Registering a child renames its whole subtree, so the names are right once the model is built.
//
// Modules are made with std::make_shared and registered as std::shared_ptr, so a layer can be
// shared (weight tying): parameters() and named_parameters() list a shared tensor once.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "mmgrad/nn/state_dict.h"
#include "mmgrad/tensor/tensor.h"

namespace mmgrad::nn {

class Module : public std::enable_shared_from_this<Module> {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // ---- registration --------------------------------------------------------------------------
  // Adds a parameter (a leaf tensor; detached first if it came out of an op) and returns a
  // reference to the registered handle. Names are plain identifiers (no '.') unique among this
  // module's parameters, buffers and children.
  Tensor& register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
  // Adds a buffer: saved in the state dict and moved by to(), never trained. A non-persistent
  // buffer is moved by to() but left out of the state dict.
  Tensor& register_buffer(const std::string& name, Tensor t, bool persistent = true);
  // Adds a child module and gives its parameters their dotted names under this module.
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    static_assert(std::is_base_of_v<Module, M>, "register_module: M must derive from nn::Module");
    add_child(name, m);
    return m;
  }

  // ---- traversal -----------------------------------------------------------------------------
  // Parameters of this module and (recurse) its descendants, depth first in registration order;
  // a tensor shared by several modules appears once (under its first name).
  std::vector<Tensor> parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const;
  // Direct children, in registration order.
  std::vector<std::shared_ptr<Module>> children() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  // Every descendant with its dotted path, depth first, pre-order, each module once (a shared
  // one under its first path); the module itself comes first under "" when include_self (it
  // must then be owned by a std::shared_ptr).
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules(
      bool include_self = true);
  std::vector<std::shared_ptr<Module>> modules(bool include_self = true);
  // Calls fn on every module of the tree, children before parents (like torch's Module.apply),
  // e.g. to re-initialise all Linear layers.
  void apply(const std::function<void(Module&)>& fn);

  // ---- state ---------------------------------------------------------------------------------
  // Training mode (dropout active, batch norm uses and updates batch statistics) for this module
  // and all descendants. Modules start in training mode.
  // Virtual so a module can react (e.g. keep a frozen part in eval mode); overrides must call
  // Module::train.
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Moves (converts) every parameter and buffer in place: existing handles, e.g. those an
  // optimizer holds, see the new device or dtype. Gradients move with them. to(DType) changes
  // only floating-point tensors (an int64 step counter stays int64) and needs a floating dtype.
  void to(Device device);
  void to(DType dtype);

  // Drops every parameter's gradient (sets it undefined, PyTorch's set_to_none=True).
  void zero_grad();
  // Number of scalars in parameters() (shared tensors counted once).
  int64_t num_parameters() const;

  // Every parameter then every persistent buffer of each module, depth first in registration
  // order, under dotted names: the tensors themselves (not copies).
  StateDict state_dict() const;
  // Copies values from sd into this module's tensors. Everything is validated first: names that
  // are missing or unexpected (both only when strict), and shape or dtype mismatches (always);
  // any problem throws mmgrad::Error listing the offending names and leaves the module
  // unchanged. Values may come from another device.
  void load_state_dict(const StateDict& sd, bool strict = true);

  // ---- forward and printing ------------------------------------------------------------------
  // The single-input forward that Sequential chains. Modules with other signatures (attention,
  // decoder layers) add their own overloads; the default throws.
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }
  // The type name, e.g. "Linear".
  virtual std::string name() const { return "Module"; }
  // The configuration shown inside the parentheses when printing, e.g.
  // "in_features=4, out_features=8, bias=true".
  virtual std::string extra_repr() const { return ""; }
  // The module tree, one line per module with its parameter count, e.g.
  //   MLP(  # 58 parameters
  //     (0): Linear(in_features=4, out_features=8, bias=true)  # 40 parameters
  //     (1): ReLU()
  //     (2): Linear(in_features=8, out_features=2, bias=true)  # 18 parameters
  //   )
  std::string repr() const;
  // The one-line description error messages start with, e.g.
  // "Linear(in_features=4, out_features=8, bias=true)".
  std::string label() const { return name() + "(" + extra_repr() + ")"; }

 protected:
  // The dotted path of this module from the root ("" for the root), with a trailing '.'.
  const std::string& prefix() const { return prefix_; }

 private:
  struct Slot {
    std::string name;
    Tensor tensor;
    bool persistent = true;
  };

  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void check_new_name(const char* what, const std::string& name) const;
  void set_prefix(const std::string& prefix);
  // Visits (path, module) depth first, pre-order.
  void visit(const std::string& path,
             const std::function<void(const std::string&, const Module&)>& fn) const;
  void repr_into(std::string& out, int indent) const;
  // (dotted name, tensor) for every slot of params_ or buffers_ (this module's, or the tree's),
  // each tensor once.
  std::vector<std::pair<std::string, Tensor>> named_slots(std::deque<Slot> Module::*slots,
                                                          bool recurse) const;
  // Handles to every parameter and/or buffer of the tree, each tensor once.
  std::vector<Tensor> unique_tensors(bool params, bool bufs) const;

  // std::deque: references returned by register_* stay valid as more are added.
  std::deque<Slot> params_;
  std::deque<Slot> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  std::string prefix_;
  bool training_ = true;
};

std::ostream& operator<<(std::ostream& os, const Module& m);

// Formats a count with thousands separators: 11176512 -> "11,176,512".
std::string format_count(int64_t n);

}  // namespace mmgrad::nn
