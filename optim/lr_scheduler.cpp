// Learning-rate schedules (formulas in optim/lr_scheduler.h).
#include "mmgrad/optim/lr_scheduler.h"

#include <cmath>
#include <numbers>

namespace mmgrad::optim {

LRScheduler::LRScheduler(Optimizer& optimizer, const char* name)
    : optimizer_(optimizer), name_(name), base_lr_(optimizer.lr()) {}

void LRScheduler::init() {
  last_step_ = 0;
  optimizer_.set_lr(lr_at(0));
}

void LRScheduler::step() {
  optimizer_.set_lr(lr_at(last_step_ + 1));  // validates lr before anything changes
  ++last_step_;
}

nn::StateDict LRScheduler::state_dict() const {
  return {{"base_lr", Tensor::scalar(base_lr_, DType::Float64)},
          {"last_step", Tensor::scalar(static_cast<double>(last_step_), DType::Int64)}};
}

void LRScheduler::load_state_dict(const nn::StateDict& state) {
  const std::string op = std::string(name_) + ".load_state_dict";
  Tensor base, last;
  for (const auto& [key, t] : state) {
    MMGRAD_CHECK(key == "base_lr" || key == "last_step", op, ": unexpected entry '", key, "'");
    Tensor& slot = key == "base_lr" ? base : last;
    MMGRAD_CHECK(!slot.defined(), op, ": duplicate entry '", key, "'");
    MMGRAD_CHECK(t.defined() && t.dim() == 0, op, ": entry '", key, "' must be a 0-d tensor");
    slot = t;
  }
  MMGRAD_CHECK(base.defined() && base.dtype() == DType::Float64, op,
               ": needs 'base_lr' as a 0-d float64 tensor");
  MMGRAD_CHECK(last.defined() && last.dtype() == DType::Int64, op,
               ": needs 'last_step' as a 0-d int64 tensor");
  const double b = base.item();
  const int64_t k = last.to_vector<int64_t>()[0];
  MMGRAD_CHECK(std::isfinite(b) && b >= 0.0, op, ": invalid base_lr ", b);
  MMGRAD_CHECK(k >= 0, op, ": invalid last_step ", k);
  // Compute the lr with the new base before committing, so a failure changes nothing.
  const double saved_base = base_lr_;
  base_lr_ = b;
  try {
    optimizer_.set_lr(lr_at(k));
  } catch (...) {
    base_lr_ = saved_base;
    throw;
  }
  last_step_ = k;
}

// ---- StepLR -------------------------------------------------------------------------------------
StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer, "StepLR"), step_size_(step_size), gamma_(gamma) {
  MMGRAD_CHECK(step_size > 0, "StepLR: step_size must be > 0, got ", step_size);
  MMGRAD_CHECK(std::isfinite(gamma) && gamma >= 0.0,
               "StepLR: gamma must be a finite number >= 0, "
               "got ",
               gamma);
  init();
}

double StepLR::lr_at(int64_t k) const {
  return base_lr_ * std::pow(gamma_, static_cast<double>(k / step_size_));
}

// ---- CosineWithWarmup ---------------------------------------------------------------------------
CosineWithWarmup::CosineWithWarmup(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps,
                                   double min_lr)
    : LRScheduler(optimizer, "CosineWithWarmup"),
      warmup_steps_(warmup_steps),
      total_steps_(total_steps),
      min_lr_(min_lr) {
  MMGRAD_CHECK(total_steps > 0, "CosineWithWarmup: total_steps must be > 0, got ", total_steps);
  MMGRAD_CHECK(warmup_steps >= 0 && warmup_steps <= total_steps,
               "CosineWithWarmup: warmup_steps must be in [0, total_steps = ", total_steps,
               "], got ", warmup_steps);
  MMGRAD_CHECK(std::isfinite(min_lr) && min_lr >= 0.0 && min_lr <= base_lr_,
               "CosineWithWarmup: min_lr must be in [0, base lr = ", base_lr_, "], got ", min_lr);
  init();
}

double CosineWithWarmup::lr_at(int64_t k) const {
  if (k < warmup_steps_)
    return base_lr_ * static_cast<double>(k + 1) / static_cast<double>(warmup_steps_);
  if (k >= total_steps_) return min_lr_;
  const double t =
      static_cast<double>(k - warmup_steps_) / static_cast<double>(total_steps_ - warmup_steps_);
  return min_lr_ + (base_lr_ - min_lr_) * 0.5 * (1.0 + std::cos(std::numbers::pi * t));
}

// ---- LambdaLR -----------------------------------------------------------------------------------
LambdaLR::LambdaLR(Optimizer& optimizer, std::function<double(int64_t)> factor)
    : LRScheduler(optimizer, "LambdaLR"), factor_(std::move(factor)) {
  MMGRAD_CHECK(static_cast<bool>(factor_), "LambdaLR: the factor function is empty");
  init();
}

double LambdaLR::lr_at(int64_t k) const {
  const double f = factor_(k);
  MMGRAD_CHECK(std::isfinite(f) && f >= 0.0, "LambdaLR: factor(", k, ") = ", f,
               "; expected a finite value >= 0");
  return base_lr_ * f;
}

}  // namespace mmgrad::optim
