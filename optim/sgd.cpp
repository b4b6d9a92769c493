// SGD with momentum, dampening, Nesterov momentum and (L2) weight decay: PyTorch's rule.
#include <cmath>

#include "mmgrad/autograd/grad_mode.h"
#include "mmgrad/ops/elementwise.h"
#include "mmgrad/optim/optim.h"

namespace mmgrad::optim {
namespace {

void check_sgd_options(const char* op, const SGDOptions& o) {
  MMGRAD_CHECK(std::isfinite(o.lr) && o.lr >= 0.0, op, ": invalid learning rate ", o.lr,
               " (expected a finite lr >= 0)");
  MMGRAD_CHECK(std::isfinite(o.momentum) && o.momentum >= 0.0, op, ": invalid momentum ",
               o.momentum, " (expected >= 0)");
  MMGRAD_CHECK(std::isfinite(o.dampening), op, ": invalid dampening ", o.dampening);
  MMGRAD_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0.0, op,
               ": invalid weight_decay ", o.weight_decay, " (expected >= 0)");
  MMGRAD_CHECK(!o.nesterov || (o.momentum > 0.0 && o.dampening == 0.0), op,
               ": Nesterov momentum needs momentum > 0 and dampening = 0, got momentum ",
               o.momentum, " and dampening ", o.dampening);
}

}  // namespace

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options)
    : Optimizer(std::move(params), options.lr, "SGD"),
      options_{options.momentum, options.dampening, options.weight_decay, options.nesterov} {
  check_sgd_options("SGD", options);
  momentum_buffer_.resize(params_.size());
}

void SGD::step() {
  NoGradGuard no_grad;
  // Check every gradient before touching any parameter: an error leaves everything unchanged.
  std::vector<Tensor> grads(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) grads[i] = checked_grad(i);

  const double momentum = options_.momentum, wd = options_.weight_decay;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!grads[i].defined()) continue;
    Tensor& p = params_[i];
    // d = grad + wd * p  (a new tensor: the gradient itself is never modified)
    Tensor d = grads[i];
    if (wd != 0.0) {
      d = mul(p, wd);
      d.add_(grads[i]);
    }
    if (momentum != 0.0) {
      Tensor& buf = momentum_buffer_[i];
      if (!buf.defined()) {
        buf = d.clone();  // first step: the buffer starts at d, undampened
      } else {
        buf.mul_(momentum);
        buf.add_(d, 1.0 - options_.dampening);
      }
      // Nesterov looks ahead along the momentum: d + momentum * b.
      d = options_.nesterov ? add(d, mul(buf, momentum)) : buf;
    }
    p.add_(d, -lr_);
  }
}

std::vector<std::pair<std::string, double>> SGD::hyperparameters() const {
  return {{"momentum", options_.momentum},
          {"dampening", options_.dampening},
          {"weight_decay", options_.weight_decay},
          {"nesterov", options_.nesterov ? 1.0 : 0.0}};
}

std::function<void()> SGD::prepare_hyperparameters(const std::map<std::string, double>& v) {
  const double nesterov = v.at("nesterov");
  MMGRAD_CHECK(nesterov == 0.0 || nesterov == 1.0,
               "SGD.load_state_dict: 'nesterov' must be 0 or 1, got ", nesterov);
  SGDOptions o{v.at("lr"), v.at("momentum"), v.at("dampening"), v.at("weight_decay"),
               nesterov == 1.0};
  check_sgd_options("SGD.load_state_dict", o);
  // lr is installed by Optimizer::load_state_dict, into its one home.
  return [this, o] { options_ = {o.momentum, o.dampening, o.weight_decay, o.nesterov}; };
}

void SGD::append_state(nn::StateDict& out) const {
  for (size_t i = 0; i < params_.size(); ++i) {
    if (momentum_buffer_[i].defined())
      out.emplace_back("state." + std::to_string(i) + ".momentum_buffer",
                       momentum_buffer_[i].detach());
  }
}

std::function<void()> SGD::prepare_state(
    const std::map<size_t, std::map<std::string, Tensor>>& entries) {
  std::vector<Tensor> buffers(params_.size());
  for (const auto& [i, e] : entries) {
    check_state_keys(i, e, {"momentum_buffer"});
    buffers[i] = state_like_param(i, e, "momentum_buffer");
  }
  return [this, buffers = std::move(buffers)]() mutable { momentum_buffer_ = std::move(buffers); };
}

}  // namespace mmgrad::optim
