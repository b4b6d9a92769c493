// TrainState: model, optimizer, scheduler, generators and counters in one checkpoint, loaded all
// or nothing. The layout and the guarantees are described in optim/train_state.h.
#include "mmgrad/optim/train_state.h"

#include <bit>
#include <cmath>
#include <exception>
#include <set>

#include "mmgrad/autograd/grad_mode.h"
#include "mmgrad/nn/checkpoint.h"
#include "mmgrad/nn/module.h"

namespace mmgrad::optim {
namespace {

constexpr const char* kVersionKey = "train_state.version";
constexpr const char* kStepKey = "train_state.step";
constexpr const char* kEpochKey = "train_state.epoch";

Tensor int64_scalar(int64_t v) { return Tensor::from_vector(std::vector<int64_t>{v}).reshape({}); }

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() > prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// Appends `part` to `out` with every name prefixed.
void append_prefixed(nn::StateDict& out, const std::string& prefix, const nn::StateDict& part) {
  for (const auto& [name, t] : part) out.emplace_back(prefix + name, t);
}

// Independent copies of a state (the optimizer's state_dict hands out its live buffers, which a
// restore would otherwise alias).
nn::StateDict clone_state(const nn::StateDict& sd) {
  NoGradGuard no_grad;
  nn::StateDict out;
  out.reserve(sd.size());
  for (const auto& [name, t] : sd) out.emplace_back(name, t.detach().clone());
  return out;
}

// A 0-d int64 counter >= 0.
int64_t read_counter(const std::string& where, const std::string& key, const Tensor& t) {
  MMGRAD_CHECK(t.dim() == 0 && t.dtype() == DType::Int64, where, ": '", key,
               "' must be a 0-d int64 tensor, got ", t.shape().str(), " ", dtype_name(t.dtype()));
  const int64_t v = t.to_vector<int64_t>()[0];
  MMGRAD_CHECK(v >= 0, where, ": '", key, "' is ", v, " (expected >= 0)");
  return v;
}

// Lists names for messages: 'a', 'b'.
std::string name_list(const std::set<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "'" : ", '") + n + "'";
  return s.empty() ? "none" : s;
}

}  // namespace

TrainState::TrainState(nn::Module& model, Optimizer& optimizer, LRScheduler* scheduler)
    : model_(model), optimizer_(optimizer), scheduler_(scheduler) {
  generators_.emplace_back("default", &default_generator());
}

TrainState& TrainState::add_generator(const std::string& name, Generator& generator) {
  MMGRAD_CHECK(!name.empty() && name.find('.') == std::string::npos,
               "TrainState.add_generator: ", "the name must be non-empty and contain no '.', got '",
               name, "'");
  for (const auto& [n, g] : generators_) {
    MMGRAD_CHECK(n != name, "TrainState.add_generator: a generator named '", name,
                 "' is already registered", name == "default" ? " (the default generator)" : "");
    MMGRAD_CHECK(g != &generator,
                 "TrainState.add_generator: this generator is already "
                 "registered as '",
                 n, "' (cannot also add it as '", name, "')");
  }
  generators_.emplace_back(name, &generator);
  return *this;
}

nn::StateDict TrainState::state_dict() const {
  nn::StateDict out;
  out.emplace_back(kVersionKey, int64_scalar(kTrainStateVersion));
  out.emplace_back(kStepKey, int64_scalar(step));
  out.emplace_back(kEpochKey, int64_scalar(epoch));
  for (const auto& [name, g] : generators_) {
    // uint64 counters in int64 storage, bit for bit (an offset may exceed INT64_MAX).
    const Generator::State s = g->get_state();
    out.emplace_back("rng." + name,
                     Tensor::from_vector(std::vector<int64_t>{std::bit_cast<int64_t>(s.seed),
                                                              std::bit_cast<int64_t>(s.offset)}));
  }
  for (const auto& [name, v] : scalars) {
    MMGRAD_CHECK(!name.empty(), "TrainState.state_dict: a scalar has an empty name");
    out.emplace_back("scalar." + name, Tensor::scalar(v, DType::Float64));
  }
  append_prefixed(out, "model.", model_.state_dict());
  append_prefixed(out, "optim.", optimizer_.state_dict());
  if (scheduler_) append_prefixed(out, "sched.", scheduler_->state_dict());
  return out;
}

void TrainState::load_state_dict(const nn::StateDict& state, const std::string& source) {
  const std::string where = "TrainState.load: " + source;

  // ---- 1. Sort the entries into their parts and check everything that is ours to check. -------
  nn::StateDict model_sd, optim_sd, sched_sd;
  std::map<std::string, Generator::State> rng;
  std::map<std::string, double> new_scalars;
  const Tensor *version = nullptr, *step_t = nullptr, *epoch_t = nullptr;
  // First: is this a TrainState at all? (A model or optimizer checkpoint is not.)
  bool has_version = false;
  for (const auto& kv : state) has_version = has_version || kv.first == kVersionKey;
  MMGRAD_CHECK(has_version, where,
               ": not a TrainState checkpoint (it has no 'train_state.version' entry; a file "
               "written by save(module, path) or save(optimizer, path) is read with load())");
  std::set<std::string> seen;
  for (const auto& [key, t] : state) {
    MMGRAD_CHECK(seen.insert(key).second, where, ": duplicate entry '", key, "'");
    MMGRAD_CHECK(t.defined(), where, ": entry '", key, "' is an undefined tensor");
    if (key == kVersionKey) {
      version = &t;
    } else if (key == kStepKey) {
      step_t = &t;
    } else if (key == kEpochKey) {
      epoch_t = &t;
    } else if (starts_with(key, "model.")) {
      model_sd.emplace_back(key.substr(6), t);
    } else if (starts_with(key, "optim.")) {
      optim_sd.emplace_back(key.substr(6), t);
    } else if (starts_with(key, "sched.")) {
      sched_sd.emplace_back(key.substr(6), t);
    } else if (starts_with(key, "rng.")) {
      MMGRAD_CHECK(t.dim() == 1 && t.numel() == 2 && t.dtype() == DType::Int64, where, ": '", key,
                   "' must be an int64 tensor of shape [2] (seed, offset), got ", t.shape().str(),
                   " ", dtype_name(t.dtype()));
      const std::vector<int64_t> v = t.to_vector<int64_t>();
      rng[key.substr(4)] = {std::bit_cast<uint64_t>(v[0]), std::bit_cast<uint64_t>(v[1])};
    } else if (starts_with(key, "scalar.")) {
      MMGRAD_CHECK(t.dim() == 0 && t.dtype() == DType::Float64, where, ": '", key,
                   "' must be a 0-d float64 tensor, got ", t.shape().str(), " ",
                   dtype_name(t.dtype()));
      new_scalars[key.substr(7)] = t.item();
    } else {
      fail(cat_str(where, ": unexpected entry '", key,
                   "' (a TrainState holds train_state.*, rng.*, scalar.*, model.*, optim.* and "
                   "sched.* entries)"));
    }
  }
  const int64_t v = read_counter(where, kVersionKey, *version);
  MMGRAD_CHECK(v == kTrainStateVersion, where, ": TrainState version ", v,
               " is not supported (this build reads version ", kTrainStateVersion, ")");
  MMGRAD_CHECK(step_t && epoch_t, where, ": the '", step_t ? kEpochKey : kStepKey,
               "' entry is missing");
  const int64_t new_step = read_counter(where, kStepKey, *step_t);
  const int64_t new_epoch = read_counter(where, kEpochKey, *epoch_t);

  // The generators saved must be exactly the ones registered: a missing one would silently keep
  // its current position, an extra one would silently be ignored; both break an exact resume.
  std::set<std::string> registered, saved;
  for (const auto& [name, g] : generators_) registered.insert(name);
  for (const auto& [name, s] : rng) saved.insert(name);
  for (const auto& name : registered) {
    MMGRAD_CHECK(saved.count(name), where, ": no state saved for generator '", name,
                 "' (generators in the checkpoint: ", name_list(saved), ")");
  }
  for (const auto& name : saved) {
    MMGRAD_CHECK(registered.count(name), where, ": the checkpoint holds generator '", name,
                 "', which is not registered here: call add_generator(\"", name,
                 "\", gen) before load (registered: ", name_list(registered), ")");
  }
  MMGRAD_CHECK(!model_sd.empty() || model_.state_dict().empty(), where,
               ": the checkpoint holds no model state ('model.*' entries)");
  MMGRAD_CHECK(!optim_sd.empty(), where,
               ": the checkpoint holds no optimizer state ('optim.*' entries)");
  MMGRAD_CHECK(scheduler_ == nullptr || !sched_sd.empty(), where,
               ": the checkpoint holds no learning-rate scheduler state ('sched.*' entries), "
               "but this TrainState has a scheduler");
  MMGRAD_CHECK(scheduler_ != nullptr || sched_sd.empty(), where,
               ": the checkpoint holds a learning-rate scheduler state ('sched.*' entries), but "
               "this TrainState has no scheduler: pass it to the TrainState constructor");

  // ---- 2. Load the parts that validate themselves, undoing on a refusal. ----------------------
  // Module::load_state_dict changes nothing when it throws; neither do the optimizer's and the
  // scheduler's (the last part, so it never needs undoing). Only a later part failing after an
  // earlier one succeeded needs undoing, from copies taken now.
  const nn::StateDict model_before = clone_state(model_.state_dict());
  const nn::StateDict optim_before = clone_state(optimizer_.state_dict());
  int loaded = 0;  // parts loaded so far, in order: model, optimizer, scheduler
  const char* part = "model";
  try {
    model_.load_state_dict(model_sd, /*strict=*/true);
    ++loaded;
    part = "optimizer";
    optimizer_.load_state_dict(optim_sd);
    ++loaded;
    part = "scheduler";
    if (scheduler_) scheduler_->load_state_dict(sched_sd);
  } catch (const Error& e) {
    // Put back what was already loaded (the saved copies fit by construction).
    if (loaded >= 2) optimizer_.load_state_dict(optim_before);
    if (loaded >= 1) model_.load_state_dict(model_before, /*strict=*/true);
    fail(cat_str(where, ": the ", part, " state does not fit (nothing was changed): ", e.what()));
  }

  // ---- 3. What cannot fail any more. ---------------------------------------------------------
  for (const auto& [name, g] : generators_) g->set_state(rng.at(name));
  step = new_step;
  epoch = new_epoch;
  scalars = std::move(new_scalars);
}

void TrainState::save(const std::string& path) const {
  mmgrad::save(state_dict(), path);  // validates names, writes atomically
}

void TrainState::load(const std::string& path) {
  nn::StateDict state = mmgrad::load_state_dict(path);  // validates the file itself
  load_state_dict(state, "checkpoint '" + path + "'");
}

}  // namespace mmgrad::optim
