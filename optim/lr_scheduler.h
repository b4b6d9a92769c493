// Learning-rate schedules: StepLR, cosine decay with linear warm-up, LambdaLR.
//
// A scheduler reads the optimizer's learning rate when it is built (the base lr), sets the rate
// for step 0 right away, and sets the next one each time step() is called, after the optimizer's
// step, as in PyTorch:
//
//   optim::AdamW opt(params, {.lr = 3e-4});
//   optim::CosineWithWarmup sched(opt, /*warmup_steps=*/100, /*total_steps=*/1000);
//   for (int it = 0; it < 1000; ++it) { ...; opt.step(); sched.step(); }
//
// The scheduler keeps a reference to the optimizer: the optimizer must outlive it.
#pragma once

#include <cstdint>
#include <functional>

#include "mmgrad/optim/optim.h"

namespace mmgrad::optim {

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // Advances one step and sets the optimizer's lr to lr_at(last_step()).
  void step();
  // The lr the scheduler last set, lr_at(last_step()) (PyTorch's meaning: if you call
  // opt.set_lr() yourself between steps, this still returns the scheduler's value; opt.lr()
  // returns yours). Computed, not stored: the optimizer's lr has one home, Optimizer::lr_.
  double get_last_lr() const { return lr_at(last_step_); }
  // How many times step() has been called (the index the current lr belongs to).
  int64_t last_step() const { return last_step_; }
  double base_lr() const { return base_lr_; }
  // The learning rate of step k >= 0 (pure: changes nothing).
  virtual double lr_at(int64_t k) const = 0;

  // {"base_lr": 0-d float64, "last_step": 0-d int64}, to resume a schedule after a checkpoint.
  nn::StateDict state_dict() const;
  // Validates, then restores the step counter and base lr and sets the optimizer's lr to match.
  void load_state_dict(const nn::StateDict& state);

 protected:
  LRScheduler(Optimizer& optimizer, const char* name);
  // Sets the lr for step 0; derived constructors call it once their parameters are checked.
  void init();

  Optimizer& optimizer_;
  const char* name_;
  double base_lr_;
  int64_t last_step_ = 0;
};

// lr = base_lr * gamma^floor(k / step_size).
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);
  double lr_at(int64_t k) const override;

 private:
  int64_t step_size_;
  double gamma_;
};

// Linear warm-up, then half a cosine down to min_lr:
//   k <  warmup_steps:          lr = base_lr * (k + 1) / warmup_steps      (base/W, ..., base)
//   warmup_steps <= k < total:  lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * t)) / 2,
//                               t = (k - warmup_steps) / (total_steps - warmup_steps)
//   k >= total_steps:           lr = min_lr
// The first step already learns a little (base/W rather than 0) and the last warm-up step
// reaches base_lr. Needs 0 <= warmup_steps <= total_steps, total_steps > 0 and
// 0 <= min_lr <= base_lr.
class CosineWithWarmup : public LRScheduler {
 public:
  CosineWithWarmup(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps,
                   double min_lr = 0.0);
  double lr_at(int64_t k) const override;

 private:
  int64_t warmup_steps_, total_steps_;
  double min_lr_;
};

// lr = base_lr * factor(k), with any function of the step (it must return a finite value >= 0).
class LambdaLR : public LRScheduler {
 public:
  LambdaLR(Optimizer& optimizer, std::function<double(int64_t)> factor);
  double lr_at(int64_t k) const override;

 private:
  std::function<double(int64_t)> factor_;
};

}  // namespace mmgrad::optim
