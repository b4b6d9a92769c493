// Module: registration, traversal, state dicts, device/dtype moves and printing.
#include "mmgrad/nn/module.h"

#include <algorithm>
#include <map>
#include <set>

#include "mmgrad/autograd/grad_mode.h"

namespace mmgrad::nn {
namespace {

std::string join_path(const std::string& path, const std::string& name) {
  return path.empty() ? name : path + "." + name;
}

}  // namespace

// ---- registration ------------------------------------------------------------------------------

void Module::check_new_name(const char* what, const std::string& n) const {
  MMGRAD_CHECK(!n.empty(), name(), ".", what, ": the name must not be empty");
  MMGRAD_CHECK(n.find('.') == std::string::npos, name(), ".", what, ": name '", n,
               "' must not contain '.' (dotted paths are built from the module tree)");
  auto taken = [&](const auto& slots) {
    return std::any_of(slots.begin(), slots.end(), [&](const auto& s) { return s.name == n; });
  };
  bool child =
      std::any_of(children_.begin(), children_.end(), [&](const auto& c) { return c.first == n; });
  MMGRAD_CHECK(!taken(params_) && !taken(buffers_) && !child, name(), ".", what, ": name '", n,
               "' is already used by a parameter, buffer or submodule of this module");
}

Tensor& Module::register_parameter(const std::string& n, Tensor t, bool requires_grad) {
  check_new_name("register_parameter", n);
  MMGRAD_CHECK(t.defined(), name(), ".register_parameter: parameter '", n, "' is undefined");
  MMGRAD_CHECK(!requires_grad || t.is_floating_point(), name(), ".register_parameter: parameter '",
               n, "' is ", describe(t), "; only floating-point tensors can require gradients");
  if (!t.is_leaf()) t = t.detach();
  t.requires_grad_(requires_grad);
  t.set_name(prefix_ + n);
  params_.push_back({n, t, true});
  return params_.back().tensor;
}

Tensor& Module::register_buffer(const std::string& n, Tensor t, bool persistent) {
  check_new_name("register_buffer", n);
  MMGRAD_CHECK(t.defined(), name(), ".register_buffer: buffer '", n, "' is undefined");
  if (!t.is_leaf() || t.requires_grad()) t = t.detach();
  t.set_name(prefix_ + n);
  buffers_.push_back({n, t, persistent});
  return buffers_.back().tensor;
}

void Module::add_child(const std::string& n, std::shared_ptr<Module> m) {
  check_new_name("register_module", n);
  MMGRAD_CHECK(m != nullptr, name(), ".register_module: module '", n, "' is null");
  bool cycle = false;
  m->visit("", [&](const std::string&, const Module& sub) { cycle = cycle || &sub == this; });
  MMGRAD_CHECK(!cycle, name(), ".register_module: registering '", n, "' (", m->name(),
               ") would make the module tree a cycle");
  m->set_prefix(prefix_ + n + ".");
  children_.emplace_back(n, std::move(m));
}

void Module::set_prefix(const std::string& prefix) {
  prefix_ = prefix;
  for (auto& s : params_) s.tensor.set_name(prefix_ + s.name);
  for (auto& s : buffers_) s.tensor.set_name(prefix_ + s.name);
  for (auto& [n, c] : children_) c->set_prefix(prefix_ + n + ".");
}

// ---- traversal ---------------------------------------------------------------------------------

void Module::visit(const std::string& path,
                   const std::function<void(const std::string&, const Module&)>& fn) const {
  fn(path, *this);
  for (const auto& [n, c] : children_) c->visit(join_path(path, n), fn);
}

std::vector<std::pair<std::string, Tensor>> Module::named_slots(std::deque<Slot> Module::*slots,
                                                                bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  std::set<const TensorImpl*> seen;  // a tensor shared by two modules is listed once
  auto add = [&](const std::string& path, const Module& m) {
    for (const auto& s : m.*slots)
      if (seen.insert(s.tensor.impl()).second) out.emplace_back(join_path(path, s.name), s.tensor);
  };
  if (recurse)
    visit("", add);
  else
    add("", *this);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(bool recurse) const {
  return named_slots(&Module::params_, recurse);
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(bool recurse) const {
  return named_slots(&Module::buffers_, recurse);
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_buffers(recurse)) out.push_back(t);
  return out;
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& [n, c] : children_) out.push_back(c);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const {
  return children_;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules(
    bool include_self) {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  if (include_self) {
    std::shared_ptr<Module> self = weak_from_this().lock();
    MMGRAD_CHECK(self != nullptr, name(),
                 ".named_modules: the module is not owned by a std::shared_ptr (create it with "
                 "std::make_shared), so it cannot be listed with include_self");
    out.emplace_back("", self);
  }
  std::set<const Module*> seen{this};
  std::function<void(const std::string&, const Module&)> rec = [&](const std::string& path,
                                                                   const Module& m) {
    for (const auto& [n, c] : m.children_) {
      if (!seen.insert(c.get()).second) continue;
      std::string p = join_path(path, n);
      out.emplace_back(p, c);
      rec(p, *c);
    }
  };
  rec("", *this);
  return out;
}

std::vector<std::shared_ptr<Module>> Module::modules(bool include_self) {
  std::vector<std::shared_ptr<Module>> out;
  for (auto& [n, m] : named_modules(include_self)) out.push_back(m);
  return out;
}

void Module::apply(const std::function<void(Module&)>& fn) {
  for (auto& [n, c] : children_) c->apply(fn);
  fn(*this);
}

std::vector<Tensor> Module::unique_tensors(bool params, bool bufs) const {
  std::vector<Tensor> out;
  std::set<const TensorImpl*> seen;
  visit("", [&](const std::string&, const Module& m) {
    if (params)
      for (const auto& s : m.params_)
        if (seen.insert(s.tensor.impl()).second) out.push_back(s.tensor);
    if (bufs)
      for (const auto& s : m.buffers_)
        if (seen.insert(s.tensor.impl()).second) out.push_back(s.tensor);
  });
  return out;
}

// ---- state -------------------------------------------------------------------------------------

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

void Module::to(Device device) {
  NoGradGuard no_grad;
  for (Tensor t : unique_tensors(true, true)) {
    if (t.device() == device) continue;
    Tensor g = t.grad();
    t.set_data(t.to(device));                   // drops the gradient (the device changed) ...
    if (g.defined()) t.set_grad(g.to(device));  // ... which moves along
  }
}

void Module::to(DType dtype) {
  MMGRAD_CHECK(is_floating(dtype), name(), ".to: modules convert to a floating-point dtype, got ",
               dtype_name(dtype));
  NoGradGuard no_grad;
  for (Tensor t : unique_tensors(true, true)) {
    if (!t.is_floating_point() || t.dtype() == dtype) continue;
    Tensor g = t.grad();
    t.set_data(t.to(dtype));
    if (g.defined()) t.set_grad(g.to(dtype));
  }
}

void Module::zero_grad() {
  for (Tensor t : unique_tensors(true, false)) t.set_grad(Tensor());
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Tensor& t : unique_tensors(true, false)) n += t.numel();
  return n;
}

StateDict Module::state_dict() const {
  StateDict sd;
  visit("", [&](const std::string& path, const Module& m) {
    for (const auto& s : m.params_) sd.emplace_back(join_path(path, s.name), s.tensor);
    for (const auto& s : m.buffers_)
      if (s.persistent) sd.emplace_back(join_path(path, s.name), s.tensor);
  });
  return sd;
}

void Module::load_state_dict(const StateDict& sd, bool strict) {
  std::map<std::string, const Tensor*> given;
  std::vector<std::string> problems;
  for (const auto& [n, t] : sd) {
    if (!given.emplace(n, &t).second) problems.push_back(cat_str("'", n, "' appears twice"));
  }
  StateDict own = state_dict();
  std::set<std::string> own_names;
  std::vector<std::pair<Tensor, const Tensor*>> copies;
  for (const auto& [n, dst] : own) {
    own_names.insert(n);
    auto it = given.find(n);
    if (it == given.end()) {
      if (strict) problems.push_back(cat_str("missing '", n, "' (", describe(dst), ")"));
      continue;
    }
    const Tensor& src = *it->second;
    if (!src.defined()) {
      problems.push_back(cat_str("'", n, "' is undefined in the state dict"));
    } else if (src.shape() != dst.shape()) {
      problems.push_back(cat_str("'", n, "' has shape ", src.shape().str(),
                                 " in the state dict but ", dst.shape().str(), " in the module"));
    } else if (src.dtype() != dst.dtype()) {
      problems.push_back(cat_str("'", n, "' has dtype ", dtype_name(src.dtype()),
                                 " in the state dict but ", dtype_name(dst.dtype()),
                                 " in the module"));
    } else {
      copies.emplace_back(dst, &src);
    }
  }
  if (strict) {
    for (const auto& [n, t] : sd)
      if (!own_names.count(n))
        problems.push_back(cat_str("unexpected '", n, "' (", describe(t), ")"));
  }
  if (!problems.empty()) {
    std::string msg =
        cat_str(name(), ".load_state_dict: ", problems.size(), " problem(s), nothing was loaded: ");
    const size_t shown = std::min<size_t>(problems.size(), 12);
    for (size_t i = 0; i < shown; ++i) msg += (i ? "; " : "") + problems[i];
    if (shown < problems.size()) msg += cat_str("; ... and ", problems.size() - shown, " more");
    fail(msg);
  }
  NoGradGuard no_grad;
  for (auto& [dst, src] : copies)
    if (!dst.same(*src)) dst.copy_(*src);
}

// ---- forward and printing ----------------------------------------------------------------------

Tensor Module::forward(const Tensor& /*x*/) {
  fail(cat_str(name(), " has no single-input forward(x); call the forward overload it defines"));
}

std::string format_count(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

namespace {
std::string count_comment(int64_t n) {
  if (n == 0) return "";
  return cat_str("  # ", format_count(n), n == 1 ? " parameter" : " parameters");
}
}  // namespace

void Module::repr_into(std::string& out, int indent) const {
  const std::string pad(static_cast<size_t>(indent), ' ');
  const std::string extra = extra_repr();
  const std::string count = count_comment(num_parameters());
  if (children_.empty()) {
    out += name() + "(" + extra + ")" + count;
    return;
  }
  out += name() + "(" + count + "\n";
  if (!extra.empty()) out += pad + "  " + extra + "\n";
  for (const auto& [n, c] : children_) {
    out += pad + "  (" + n + "): ";
    c->repr_into(out, indent + 2);
    out += "\n";
  }
  out += pad + ")";
}

std::string Module::repr() const {
  std::string out;
  repr_into(out, 0);
  return out;
}

std::ostream& operator<<(std::ostream& os, const Module& m) { return os << m.repr(); }

}  // namespace mmgrad::nn
