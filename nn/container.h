// Containers: Sequential (chains single-input forwards) and ModuleList (holds modules that the
// owner calls itself, e.g. the layers of a transformer).
#pragma once

#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "mmgrad/nn/module.h"

namespace mmgrad::nn {

// Children are registered under "0", "1", ... in order, so their parameters are named
// "0.weight", "1.bias", ... as in PyTorch.
class ModuleList : public Module {
 public:
  ModuleList() = default;
  ModuleList(std::initializer_list<std::shared_ptr<Module>> modules);
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
    append(m);
    return m;
  }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  // The i-th module (bounds-checked), and the same cast to its type (checked).
  const std::shared_ptr<Module>& operator[](size_t i) const;
  template <class M>
  std::shared_ptr<M> at(size_t i) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[i]);
    MMGRAD_CHECK(m != nullptr, name(), ".at: module ", i, " is a ", (*this)[i]->name(),
                 ", not the type asked for");
    return m;
  }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  std::string name() const override { return "ModuleList"; }

 protected:
  void append(std::shared_ptr<Module> m);

 private:
  std::vector<std::shared_ptr<Module>> items_;
};

// forward(x) = m_n(...m_2(m_1(x))); an empty Sequential is the identity. An error inside a
// child is rethrown with its position, e.g. "Sequential[2]: Linear(...): input is ...".
class Sequential : public ModuleList {
 public:
  using ModuleList::ModuleList;
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Sequential"; }
};

}  // namespace mmgrad::nn
