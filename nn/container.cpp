#include "mmgrad/nn/container.h"

namespace mmgrad::nn {

ModuleList::ModuleList(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& m : modules) append(m);
}

void ModuleList::append(std::shared_ptr<Module> m) {
  MMGRAD_CHECK(m != nullptr, name(), ".push_back: module ", items_.size(), " is null");
  register_module(std::to_string(items_.size()), m);
  items_.push_back(std::move(m));
}

const std::shared_ptr<Module>& ModuleList::operator[](size_t i) const {
  MMGRAD_CHECK(i < items_.size(), name(), ": index ", i, " is out of range for ", items_.size(),
               " module(s)");
  return items_[i];
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  size_t i = 0;
  for (const auto& m : *this) {
    try {
      h = m->forward(h);
    } catch (const Error& e) {
      fail(cat_str(name(), "[", i, "]: ", e.what()));
    }
    ++i;
  }
  return h;
}

}  // namespace mmgrad::nn
