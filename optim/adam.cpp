// Adam and AdamW: per-parameter moments and step counts, updated by the fused adam_step kernel
// (kernels/cpu/adam.cpp holds the formula; one pass over p, g, m and v).
#include <cmath>

#include "mmgrad/autograd/grad_mode.h"
#include "mmgrad/kernels/backend.h"
#include "mmgrad/optim/optim.h"

namespace mmgrad::optim {
namespace {

void check_adam_options(const char* op, const AdamOptions& o) {
  MMGRAD_CHECK(std::isfinite(o.lr) && o.lr >= 0.0, op, ": invalid learning rate ", o.lr,
               " (expected a finite lr >= 0)");
  MMGRAD_CHECK(o.beta1 >= 0.0 && o.beta1 < 1.0, op, ": invalid beta1 ", o.beta1,
               " (expected 0 <= beta1 < 1)");
  MMGRAD_CHECK(o.beta2 >= 0.0 && o.beta2 < 1.0, op, ": invalid beta2 ", o.beta2,
               " (expected 0 <= beta2 < 1)");
  MMGRAD_CHECK(std::isfinite(o.eps) && o.eps >= 0.0, op, ": invalid eps ", o.eps,
               " (expected a finite eps >= 0)");
  MMGRAD_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0.0, op,
               ": invalid weight_decay ", o.weight_decay, " (expected >= 0)");
}

AdamOptions from_adamw(const AdamWOptions& o) {
  return AdamOptions{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay};
}

}  // namespace

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options)
    : Adam(std::move(params), options, false, "Adam") {}

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options, bool decoupled, const char* name)
    : Optimizer(std::move(params), options.lr, name),
      options_{options.beta1, options.beta2, options.eps, options.weight_decay},
      decoupled_(decoupled) {
  check_adam_options(name, options);
  state_.resize(params_.size());
}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& options)
    : Adam(std::move(params), from_adamw(options), true, "AdamW") {}

void Adam::step() {
  NoGradGuard no_grad;
  // Check every gradient before touching any parameter: an error leaves everything unchanged.
  std::vector<Tensor> grads(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) grads[i] = checked_grad(i);

  for (size_t i = 0; i < params_.size(); ++i) {
    if (!grads[i].defined()) continue;
    Tensor& p = params_[i];
    State& s = state_[i];
    if (s.step == 0) {
      s.exp_avg = Tensor::zeros(p.shape(), p.options());
      s.exp_avg_sq = Tensor::zeros(p.shape(), p.options());
    }
    ++s.step;
    if (p.numel() == 0) continue;
    // The kernel wants dense buffers; parameters and gradients almost always are, so these
    // calls normally return the same tensors (no copy).
    Tensor g = grads[i].contiguous();
    Tensor work = p.is_contiguous() ? p : p.contiguous();
    backend(p.device())
        .adam_step({.dtype = p.dtype(),
                    .param = work.raw_data(),
                    .grad = g.raw_data(),
                    .exp_avg = s.exp_avg.raw_data(),
                    .exp_avg_sq = s.exp_avg_sq.raw_data(),
                    .n = p.numel(),
                    .lr = lr_,
                    .beta1 = options_.beta1,
                    .beta2 = options_.beta2,
                    .eps = options_.eps,
                    .weight_decay = options_.weight_decay,
                    .step = s.step,
                    .decoupled = decoupled_});
    if (!work.same(p)) p.copy_(work);
    // Raw writes bypass copy_/add_: bump the versions so autograd sees the change.
    p.storage()->bump_version();
    s.exp_avg.storage()->bump_version();
    s.exp_avg_sq.storage()->bump_version();
  }
}

std::vector<std::pair<std::string, double>> Adam::hyperparameters() const {
  return {{"beta1", options_.beta1},
          {"beta2", options_.beta2},
          {"eps", options_.eps},
          {"weight_decay", options_.weight_decay},
          {"decoupled_weight_decay", decoupled_ ? 1.0 : 0.0}};
}

std::function<void()> Adam::prepare_hyperparameters(const std::map<std::string, double>& v) {
  const double decoupled = v.at("decoupled_weight_decay");
  MMGRAD_CHECK(decoupled == (decoupled_ ? 1.0 : 0.0), name_, ".load_state_dict: the state is from ",
               decoupled == 1.0 ? "AdamW" : "Adam", " (decoupled_weight_decay = ", decoupled,
               ") but this optimizer is ", name_);
  AdamOptions o{v.at("lr"), v.at("beta1"), v.at("beta2"), v.at("eps"), v.at("weight_decay")};
  check_adam_options((std::string(name_) + ".load_state_dict").c_str(), o);
  // lr is installed by Optimizer::load_state_dict, into its one home.
  return [this, o] { options_ = {o.beta1, o.beta2, o.eps, o.weight_decay}; };
}

void Adam::append_state(nn::StateDict& out) const {
  for (size_t i = 0; i < params_.size(); ++i) {
    const State& s = state_[i];
    if (s.step == 0) continue;
    const std::string prefix = "state." + std::to_string(i) + ".";
    out.emplace_back(prefix + "step", Tensor::scalar(static_cast<double>(s.step), DType::Int64));
    out.emplace_back(prefix + "exp_avg", s.exp_avg.detach());
    out.emplace_back(prefix + "exp_avg_sq", s.exp_avg_sq.detach());
  }
}

std::function<void()> Adam::prepare_state(
    const std::map<size_t, std::map<std::string, Tensor>>& entries) {
  std::vector<State> state(params_.size());
  for (const auto& [i, e] : entries) {
    check_state_keys(i, e, {"step", "exp_avg", "exp_avg_sq"});
    state[i].step = state_int(i, e, "step", 1);
    state[i].exp_avg = state_like_param(i, e, "exp_avg");
    state[i].exp_avg_sq = state_like_param(i, e, "exp_avg_sq");
  }
  return [this, state = std::move(state)]() mutable { state_ = std::move(state); };
}

}  // namespace mmgrad::optim

// ---- reference: the Adam / AdamW step as a plain loop -------------------------------------------
// The definition of the update, for reading and for testing the fused kernel against
// (tests/test_reference_kernels.cpp); Adam::step above runs backend(device).adam_step instead.

namespace mmgrad::reference {

void adam_step(std::vector<double>& p, const std::vector<double>& grad, std::vector<double>& m,
               std::vector<double>& v, int64_t step, const optim::AdamOptions& options,
               bool decoupled) {
  const double t = static_cast<double>(step);
  for (size_t i = 0; i < p.size(); ++i) {
    double g = grad[i];
    if (decoupled)
      p[i] -= options.lr * options.weight_decay * p[i];  // AdamW: shrink the weight itself
    else
      g += options.weight_decay * p[i];  // Adam: L2 penalty folded into the gradient
    m[i] = options.beta1 * m[i] + (1.0 - options.beta1) * g;         // running mean of g
    v[i] = options.beta2 * v[i] + (1.0 - options.beta2) * g * g;     // running mean of g^2
    const double m_hat = m[i] / (1.0 - std::pow(options.beta1, t));  // bias corrections: m, v
    const double v_hat = v[i] / (1.0 - std::pow(options.beta2, t));  // start at 0
    p[i] -= options.lr * m_hat / (std::sqrt(v_hat) + options.eps);
  }
}

}  // namespace mmgrad::reference
