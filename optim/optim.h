// Optimizers: SGD (momentum, Nesterov, weight decay), Adam and AdamW, plus clip_grad_norm_.
//
// An optimizer holds handles to the parameters it updates (the same tensors the model owns) and
// the per-parameter state its rule needs (momentum buffers, Adam's moments and step counts).
// The training loop is PyTorch's:
//
//   optim::Adam opt(model.parameters(), {.lr = 1e-3});
//   for (...) {
//     opt.zero_grad();
//     Tensor loss = ...;
//     loss.backward();
//     optim::clip_grad_norm_(model.parameters(), 1.0);  // optional
//     opt.step();
//   }
//
// step() writes the parameters in place under a NoGradGuard (the update is not part of the
// graph); parameters whose .grad() is undefined (not reached by backward) are skipped and keep
// their state. state_dict() / load_state_dict() capture everything needed to continue training
// bit-for-bit (save(optimizer, path) below writes them to disk):
//
//   "num_params"            0-d int64: how many parameters the optimizer was built with
//   "lr", "momentum", ...   0-d float64: the hyperparameters (booleans as 0 / 1)
//   "state.<i>.<name>"      the state of parameter i (0-based, in the order given), present only
//                           once step() has touched it: "step" (0-d int64), "exp_avg",
//                           "exp_avg_sq" (Adam/AdamW), "momentum_buffer" (SGD with momentum),
//                           each of the parameter's shape and dtype.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "mmgrad/nn/state_dict.h"
#include "mmgrad/tensor/tensor.h"

namespace mmgrad::optim {

class Optimizer {
 public:
  // Every parameter must be a defined floating-point leaf that requires grad, each given once;
  // lr must be finite and >= 0. `name` ("SGD", "Adam", ...) prefixes error messages.
  Optimizer(std::vector<Tensor> params, double lr, const char* name);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient.
  virtual void step() = 0;
  // Clears the gradients: set_to_none (PyTorch's default) drops them, which also lets step()
  // skip parameters that the next backward does not reach; otherwise they are zeroed in place.
  void zero_grad(bool set_to_none = true);

  double lr() const { return lr_; }
  void set_lr(double lr);  // what learning-rate schedulers call
  const std::vector<Tensor>& params() const { return params_; }
  const char* name() const { return name_; }

  // The optimizer's state (layout at the top of this file). State tensors are returned as
  // detached handles to the live buffers, not copies: save or clone them before stepping again.
  nn::StateDict state_dict() const;
  // Restores a state_dict() of an optimizer of the same kind over parameters of the same shapes.
  // Everything is validated first (parameter count, hyperparameter names and values, state
  // names, shapes and dtypes; unknown or duplicate names); on any error it throws mmgrad::Error
  // and leaves the optimizer unchanged. State tensors are copied onto the parameters' devices.
  void load_state_dict(const nn::StateDict& state);

 protected:
  // Hyperparameters other than lr, in state_dict order, as (name, value).
  virtual std::vector<std::pair<std::string, double>> hyperparameters() const = 0;
  // Validates a full set of hyperparameters (lr and the others, keyed by name; all present) and
  // returns a function that installs them; throws mmgrad::Error if a value is invalid.
  virtual std::function<void()> prepare_hyperparameters(
      const std::map<std::string, double>& values) = 0;
  // Appends "state.<i>.<name>" entries for every parameter that has state.
  virtual void append_state(nn::StateDict& out) const = 0;
  // Validates the per-parameter entries (keys already stripped of "state.<i>.", grouped by i)
  // and returns a function that installs them (replacing all current state).
  virtual std::function<void()> prepare_state(
      const std::map<size_t, std::map<std::string, Tensor>>& entries) = 0;

  // The parameter's gradient checked against the parameter (shape, dtype, device), or an
  // undefined tensor when it has none.
  Tensor checked_grad(size_t i) const;
  // A loaded state tensor for parameter i: must have the parameter's shape and dtype; returned
  // as a fresh copy on the parameter's device.
  Tensor state_like_param(size_t i, const std::map<std::string, Tensor>& entries,
                          const std::string& key) const;
  // A loaded 0-d int64 state value (e.g. "step"), which must be >= min_value.
  int64_t state_int(size_t i, const std::map<std::string, Tensor>& entries, const std::string& key,
                    int64_t min_value) const;
  // Throws if `entries` holds a key not listed in `allowed`.
  void check_state_keys(size_t i, const std::map<std::string, Tensor>& entries,
                        std::initializer_list<const char*> allowed) const;

  std::vector<Tensor> params_;
  // The learning rate's one home. set_lr (and so every scheduler), state_dict and
  // load_state_dict read and write it here; the options structs below only carry the initial
  // value in, and options() reads it back from here.
  double lr_;
  const char* name_;
};

// ---- SGD ----------------------------------------------------------------------------------------
struct SGDOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

// PyTorch's SGD, exactly:
//   g = grad + weight_decay * p
//   with momentum:  b = g on the first step, then b = momentum * b + (1 - dampening) * g;
//                   g = g + momentum * b (Nesterov)  or  g = b
//   p = p - lr * g
// Nesterov needs momentum > 0 and dampening = 0.
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, const SGDOptions& options);
  void step() override;
  // The options in use (lr is the current learning rate, after any schedule).
  SGDOptions options() const {
    return {lr_, options_.momentum, options_.dampening, options_.weight_decay, options_.nesterov};
  }

 protected:
  std::vector<std::pair<std::string, double>> hyperparameters() const override;
  std::function<void()> prepare_hyperparameters(
      const std::map<std::string, double>& values) override;
  void append_state(nn::StateDict& out) const override;
  std::function<void()> prepare_state(
      const std::map<size_t, std::map<std::string, Tensor>>& entries) override;

 private:
  // Every option except lr, which lives in Optimizer::lr_ only.
  struct OtherOptions {
    double momentum, dampening, weight_decay;
    bool nesterov;
  };
  OtherOptions options_;
  std::vector<Tensor> momentum_buffer_;  // per parameter; undefined until its first step
};

// ---- Adam / AdamW -------------------------------------------------------------------------------
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // L2 penalty added to the gradient
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;  // decoupled: p -= lr * weight_decay * p
};

// Adam (Kingma & Ba) with bias correction, per parameter with its own step count t:
//   g = grad (+ weight_decay * p for Adam;  AdamW instead first does p = p * (1 - lr * wd))
//   m = beta1 m + (1 - beta1) g          v = beta2 v + (1 - beta2) g^2
//   p = p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
// The update runs as one fused kernel per parameter (backend(device).adam_step).
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, const AdamOptions& options = {});
  void step() override;
  // The options in use (lr is the current learning rate, after any schedule).
  AdamOptions options() const {
    return {lr_, options_.beta1, options_.beta2, options_.eps, options_.weight_decay};
  }
  bool decoupled_weight_decay() const { return decoupled_; }

 protected:
  Adam(std::vector<Tensor> params, const AdamOptions& options, bool decoupled, const char* name);
  std::vector<std::pair<std::string, double>> hyperparameters() const override;
  std::function<void()> prepare_hyperparameters(
      const std::map<std::string, double>& values) override;
  void append_state(nn::StateDict& out) const override;
  std::function<void()> prepare_state(
      const std::map<size_t, std::map<std::string, Tensor>>& entries) override;

 private:
  struct State {
    int64_t step = 0;   // updates applied to this parameter (bias correction uses it)
    Tensor exp_avg;     // m: running mean of the gradient
    Tensor exp_avg_sq;  // v: running mean of the squared gradient
  };
  // Every option except lr, which lives in Optimizer::lr_ only.
  struct OtherOptions {
    double beta1, beta2, eps, weight_decay;
  };
  OtherOptions options_;
  bool decoupled_;
  std::vector<State> state_;  // per parameter; step == 0 means no state yet
};

// Adam with decoupled weight decay (Loshchilov & Hutter): the decay shrinks the weights directly
// instead of passing through the adaptive denominator.
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, const AdamWOptions& options = {});
};

// ---- gradient clipping --------------------------------------------------------------------------
// Total L2 norm of all gradients (as if concatenated into one vector); when it exceeds max_norm,
// every gradient is scaled in place by max_norm / (norm + 1e-6) (PyTorch's epsilon, which keeps
// the division safe for a zero norm). Parameters without a gradient are ignored. Returns the
// norm before clipping (a NaN or infinite norm is returned as is; the gradients are then scaled
// by NaN or 0, as in PyTorch, so check the return value if that can happen).
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm);

}  // namespace mmgrad::optim

namespace mmgrad {

// An optimizer's state (moments, step counts, hyperparameters) in a checkpoint file (the format
// of nn/checkpoint.h, beside the model's save(module, path)); load() validates everything
// against the optimizer before changing it (Optimizer::load_state_dict).
void save(const optim::Optimizer& optimizer, const std::string& path);
void load(optim::Optimizer& optimizer, const std::string& path);

}  // namespace mmgrad

// ---- the definition of the Adam / AdamW step, in plain float64 loops ----------------------------
// What the fused adam_step kernel computes, written to be read (defined at the end of
// optim/adam.cpp; tests/test_reference_kernels.cpp checks Adam and AdamW against it).
namespace mmgrad::reference {

// One step on a parameter p with gradient grad and state m, v (updated in place); step is the
// 1-based count of updates including this one. decoupled: AdamW's weight decay, else Adam's L2.
void adam_step(std::vector<double>& p, const std::vector<double>& grad, std::vector<double>& m,
               std::vector<double>& v, int64_t step, const optim::AdamOptions& options,
               bool decoupled);

}  // namespace mmgrad::reference
