// The Optimizer base: parameter checks, zero_grad, learning rate, state_dict save/restore with
// validation before any change; clip_grad_norm_; and saving / loading an optimizer checkpoint.
#include <cmath>
#include <set>
#include <unordered_set>

#include "mmgrad/autograd/grad_mode.h"
#include "mmgrad/nn/checkpoint.h"
#include "mmgrad/ops/elementwise.h"
#include "mmgrad/ops/reduce.h"
#include "mmgrad/optim/optim.h"

namespace mmgrad::optim {
namespace {

bool is_valid_lr(double lr) { return std::isfinite(lr) && lr >= 0.0; }

// The value of a 0-d floating tensor, or an error naming the entry.
double scalar_value(const char* opt, const std::string& key, const Tensor& t) {
  MMGRAD_CHECK(t.defined(), opt, ".load_state_dict: entry '", key, "' is an undefined tensor");
  MMGRAD_CHECK(t.dim() == 0 && t.is_floating_point(), opt, ".load_state_dict: entry '", key,
               "' must be a 0-d floating-point tensor, got ", describe(t));
  return t.item();
}

}  // namespace

Optimizer::Optimizer(std::vector<Tensor> params, double lr, const char* name)
    : params_(std::move(params)), lr_(lr), name_(name) {
  MMGRAD_CHECK(!params_.empty(), name_, ": got an empty parameter list (pass model.parameters())");
  MMGRAD_CHECK(is_valid_lr(lr), name_, ": invalid learning rate ", lr,
               " (expected a finite lr >= 0)");
  std::unordered_set<const TensorImpl*> seen;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    MMGRAD_CHECK(p.defined(), name_, ": parameter ", i, " is an undefined tensor");
    MMGRAD_CHECK(p.is_floating_point(), name_, ": parameter ", i, " is ", describe(p),
                 "; only floating-point tensors can be optimized");
    MMGRAD_CHECK(p.requires_grad(), name_, ": parameter ", i, " (", describe(p),
                 ") does not require grad; call requires_grad_() on it or leave it out");
    MMGRAD_CHECK(
        p.is_leaf(), name_, ": parameter ", i, " (", describe(p),
        ") is not a leaf tensor (it was computed by an op); optimize the leaf it came from");
    MMGRAD_CHECK(seen.insert(p.impl()).second, name_, ": parameter ", i,
                 " appears more than once in the parameter list");
  }
}

void Optimizer::zero_grad(bool set_to_none) {
  NoGradGuard no_grad;
  for (const Tensor& p : params_) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (set_to_none)
      p.set_grad(Tensor());
    else
      g.zero_();
  }
}

void Optimizer::set_lr(double lr) {
  MMGRAD_CHECK(is_valid_lr(lr), name_, ".set_lr: invalid learning rate ", lr,
               " (expected a finite lr >= 0)");
  lr_ = lr;
}

Tensor Optimizer::checked_grad(size_t i) const {
  const Tensor& p = params_[i];
  Tensor g = p.grad();
  if (!g.defined()) return g;
  MMGRAD_CHECK(g.shape() == p.shape() && g.dtype() == p.dtype() && g.device() == p.device(), name_,
               ".step: the gradient of parameter ", i, " is ", describe(g),
               " but the parameter is ", describe(p));
  return g;
}

nn::StateDict Optimizer::state_dict() const {
  nn::StateDict out;
  out.emplace_back("num_params", Tensor::scalar(static_cast<double>(params_.size()), DType::Int64));
  out.emplace_back("lr", Tensor::scalar(lr_, DType::Float64));
  for (const auto& [key, value] : hyperparameters())
    out.emplace_back(key, Tensor::scalar(value, DType::Float64));
  append_state(out);
  return out;
}

void Optimizer::load_state_dict(const nn::StateDict& state) {
  const std::string op = std::string(name_) + ".load_state_dict";
  // 1. Sort the entries: header, hyperparameters, per-parameter state. Nothing changes yet.
  std::set<std::string> names;
  bool have_count = false;
  std::map<std::string, double> hyper;
  std::map<size_t, std::map<std::string, Tensor>> per_param;
  std::set<std::string> expected_hyper = {"lr"};
  for (const auto& kv : hyperparameters()) expected_hyper.insert(kv.first);

  for (const auto& [key, t] : state) {
    MMGRAD_CHECK(names.insert(key).second, op, ": duplicate entry '", key, "'");
    MMGRAD_CHECK(t.defined(), op, ": entry '", key, "' is an undefined tensor");
    if (key == "num_params") {
      MMGRAD_CHECK(t.dim() == 0 && t.dtype() == DType::Int64, op,
                   ": entry 'num_params' must be a 0-d int64 tensor, got ", describe(t));
      const int64_t n = static_cast<int64_t>(t.item());
      MMGRAD_CHECK(n == static_cast<int64_t>(params_.size()), op, ": the state is for ", n,
                   " parameters but this optimizer has ", params_.size());
      have_count = true;
    } else if (key.rfind("state.", 0) == 0) {
      // "state.<i>.<name>"
      const size_t dot = key.find('.', 6);
      const std::string idx = key.substr(6, dot == std::string::npos ? std::string::npos : dot - 6);
      bool digits =
          !idx.empty() && idx.size() <= 9 && dot != std::string::npos && dot + 1 < key.size();
      for (char c : idx) digits = digits && c >= '0' && c <= '9';
      MMGRAD_CHECK(digits, op, ": malformed state entry '", key,
                   "' (expected 'state.<param index>.<name>')");
      const size_t i = std::stoul(idx);
      MMGRAD_CHECK(i < params_.size(), op, ": entry '", key, "' refers to parameter ", i,
                   " but this optimizer has ", params_.size(), " parameters");
      per_param[i][key.substr(dot + 1)] = t;
    } else {
      MMGRAD_CHECK(expected_hyper.count(key), op, ": unexpected entry '", key, "' (", describe(t),
                   "); is this the state of a different optimizer?");
      hyper[key] = scalar_value(name_, key, t);
    }
  }
  MMGRAD_CHECK(have_count, op, ": missing entry 'num_params'");
  for (const std::string& key : expected_hyper)
    MMGRAD_CHECK(hyper.count(key), op, ": missing hyperparameter '", key, "'");
  MMGRAD_CHECK(is_valid_lr(hyper["lr"]), op, ": invalid learning rate ", hyper["lr"]);

  // 2. Let the optimizer validate its values; both return installers that cannot fail.
  std::function<void()> install_hyper = prepare_hyperparameters(hyper);
  std::function<void()> install_state = prepare_state(per_param);

  // 3. Commit.
  lr_ = hyper["lr"];
  install_hyper();
  install_state();
}

Tensor Optimizer::state_like_param(size_t i, const std::map<std::string, Tensor>& entries,
                                   const std::string& key) const {
  auto it = entries.find(key);
  MMGRAD_CHECK(it != entries.end(), name_, ".load_state_dict: parameter ", i,
               " has state but no 'state.", i, ".", key, "'");
  const Tensor& t = it->second;
  const Tensor& p = params_[i];
  MMGRAD_CHECK(t.shape() == p.shape() && t.dtype() == p.dtype(), name_, ".load_state_dict: 'state.",
               i, ".", key, "' is ", describe(t), " but parameter ", i, " is ", describe(p));
  // A fresh buffer on the parameter's device: the optimizer updates it in place, and must not
  // write into the caller's tensors.
  NoGradGuard no_grad;
  Tensor copy = Tensor::empty(p.shape(), p.options());
  copy.copy_(t);
  return copy;
}

int64_t Optimizer::state_int(size_t i, const std::map<std::string, Tensor>& entries,
                             const std::string& key, int64_t min_value) const {
  auto it = entries.find(key);
  MMGRAD_CHECK(it != entries.end(), name_, ".load_state_dict: parameter ", i,
               " has state but no 'state.", i, ".", key, "'");
  const Tensor& t = it->second;
  MMGRAD_CHECK(t.dim() == 0 && t.dtype() == DType::Int64, name_, ".load_state_dict: 'state.", i,
               ".", key, "' must be a 0-d int64 tensor, got ", describe(t));
  const int64_t v = t.to_vector<int64_t>()[0];
  MMGRAD_CHECK(v >= min_value, name_, ".load_state_dict: 'state.", i, ".", key, "' is ", v,
               ", expected >= ", min_value);
  return v;
}

void Optimizer::check_state_keys(size_t i, const std::map<std::string, Tensor>& entries,
                                 std::initializer_list<const char*> allowed) const {
  for (const auto& kv : entries) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || kv.first == a;
    MMGRAD_CHECK(ok, name_, ".load_state_dict: unexpected entry 'state.", i, ".", kv.first, "'");
  }
}

// ---- clip_grad_norm_ --------------------------------------------------------------------------
// ||g||_2 over all gradients = sqrt(sum_p sum(g_p^2)). Each parameter's sum of squares stays on
// its device and is accumulated in float64; one transfer to the host at the end.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm) {
  MMGRAD_CHECK(std::isfinite(max_norm) && max_norm >= 0.0,
               "clip_grad_norm_: max_norm must be a "
               "finite number >= 0, got ",
               max_norm);
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    MMGRAD_CHECK(p.defined(), "clip_grad_norm_: parameter ", i, " is an undefined tensor");
    Tensor g = p.grad();
    if (!g.defined()) continue;
    MMGRAD_CHECK(g.is_floating_point(), "clip_grad_norm_: gradient of parameter ", i, " is ",
                 describe(g));
    grads.push_back(g);
  }
  if (grads.empty()) return 0.0;
  // Sums of squares per device (parameters may live on different devices).
  Tensor total_cpu, total_cuda;
  for (const Tensor& g : grads) {
    Tensor sq = sum(square(g)).to(DType::Float64);
    Tensor& acc = g.device() == Device::CPU ? total_cpu : total_cuda;
    acc = acc.defined() ? add(acc, sq) : sq;
  }
  double total_sq = 0.0;
  if (total_cpu.defined()) total_sq += total_cpu.item();
  if (total_cuda.defined()) total_sq += total_cuda.item();
  const double total_norm = std::sqrt(total_sq);
  const double coef = max_norm / (total_norm + 1e-6);
  // coef < 1 is false for NaN: PyTorch would multiply by NaN; we do the same explicitly.
  if (coef < 1.0 || std::isnan(coef)) {
    for (Tensor& g : grads) g.mul_(coef);
  }
  return total_norm;
}

}  // namespace mmgrad::optim

namespace mmgrad {

// ---- checkpoints --------------------------------------------------------------------------------
void save(const optim::Optimizer& optimizer, const std::string& path) {
  save(optimizer.state_dict(), path);
}

void load(optim::Optimizer& optimizer, const std::string& path) {
  nn::StateDict state = load_state_dict(path);
  try {
    optimizer.load_state_dict(state);
  } catch (const Error& e) {
    fail(cat_str("load: checkpoint '", path, "': ", e.what()));
  }
}

}  // namespace mmgrad
