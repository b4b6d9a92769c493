// TrainState: everything a training run needs to continue exactly where it stopped, saved and
// loaded as one checkpoint file.
//
// Saving the model and the optimizer is not enough to resume a run bit for bit. Dropout (and any
// other op that draws random numbers) takes them from a generator whose position moves on with
// every draw; a resumed process starts it at its seed again, so it draws different masks from
// the uninterrupted run and the weights drift apart from the first step on (measured in
// tests/test_train_state.cpp: resumed at step 11 of 30 from model, optimizer and schedule files,
// 3,128 of 3,172 weights of a small MLP with dropout end up different; with a TrainState, none).
// A TrainState holds the model, the optimizer, the learning-rate scheduler, the random
// generators (the default one always, plus any you register) and the loop's counters:
//
//   auto model = std::make_shared<Net>();
//   optim::Adam opt(model->parameters(), {.lr = 1e-3});
//   optim::CosineWithWarmup sched(opt, /*warmup_steps=*/100, /*total_steps=*/1000);
//   Generator aug_gen(7);                     // e.g. your data augmentation's generator
//   optim::TrainState state(*model, opt, &sched);
//   state.add_generator("augment", aug_gen);
//   if (std::filesystem::exists("run.ckpt")) state.load("run.ckpt");  // resume, if stopped
//
//   data::DataLoader loader(x, y, /*batch_size=*/64, /*shuffle=*/true, /*seed=*/0);
//   const int64_t nb = loader.size();
//   for (bool first = true; state.step < 1000; first = false) {
//     // Where we are: epoch step / nb, batch step % nb (the same after a resume).
//     if (first || state.step % nb == 0) { loader.set_epoch(state.step / nb); loader.begin(); }
//     data::Batch batch = loader.batch(state.step % nb);
//     ... opt.zero_grad(); loss = ...(batch); loss.backward(); opt.step(); sched.step(); ...
//     ++state.step;                                        // steps done
//     state.epoch = state.step / nb;                       // epochs done
//     if (state.step % 100 == 0) state.save("run.ckpt");    // one file, written atomically
//   }
// (tests/test_train_state.cpp runs this loop in full.) The DataLoader needs no state of its own:
// its shuffled order is a function of (seed, epoch) alone (data/loader.h), so the step counter
// tells which epoch and batch come next.
//
// What makes the resume exact is that every source of change between two steps is in the file:
// the weights and buffers, Adam's moments and per-parameter step counts, the scheduler's step
// (which sets the lr), each generator's (seed, offset), and the counters. Restoring all of them
// puts the process in the same state as the uninterrupted run at that step, so the next steps
// compute the same numbers, bit for bit (on the same build, thread count and device).
//
// ---- The file ----------------------------------------------------------------------------------
// One ordinary checkpoint (the format of nn/checkpoint.h, written atomically, with its CRCs and
// truncation checks), with the parts under prefixes:
//   "train_state.version"   0-d int64, 1
//   "train_state.step"      0-d int64, `step`
//   "train_state.epoch"     0-d int64, `epoch`
//   "rng.<name>"            int64 [2]: the generator's seed and offset (the uint64 bits)
//   "scalar.<name>"         0-d float64: each entry of `scalars`
//   "model.<name>"          the model's state_dict()
//   "optim.<name>"          the optimizer's state_dict() (optim/optim.h), step counts included
//   "sched.<name>"          the scheduler's state_dict(), when there is a scheduler
// load_state_dict(path) of nn/checkpoint.h reads it like any checkpoint.
//
// ---- Loading is all or nothing -----------------------------------------------------------------
// load() checks the whole file first (format, counters, that the generators saved are exactly
// the ones registered, that a scheduler is saved exactly when there is one), then loads the
// model, the optimizer and the scheduler, each of which validates before it changes anything
// (names, shapes, dtypes, hyperparameters). If one of them refuses, the ones already loaded are
// put back as they were, so on any error, mmgrad::Error names the file and the part, and the
// model, optimizer, scheduler, generators and counters are all unchanged.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mmgrad/nn/state_dict.h"
#include "mmgrad/optim/lr_scheduler.h"
#include "mmgrad/optim/optim.h"
#include "mmgrad/tensor/generator.h"

namespace mmgrad::nn {
class Module;
}

namespace mmgrad::optim {

inline constexpr int64_t kTrainStateVersion = 1;

class TrainState {
 public:
  // The model, optimizer and (optional) scheduler are held by reference: they must outlive the
  // TrainState. The default generator is always part of the state, under the name "default".
  TrainState(nn::Module& model, Optimizer& optimizer, LRScheduler* scheduler = nullptr);

  // The loop's counters, saved and restored with everything else; yours to advance.
  int64_t step = 0;   // e.g. optimizer steps taken
  int64_t epoch = 0;  // e.g. epochs finished
  // Any other numbers worth keeping (best validation loss, ...). Loading replaces the whole map
  // with the file's.
  std::map<std::string, double> scalars;

  // Adds a generator of your own (data order, augmentation, sampling) to the state. The name is
  // non-empty, without '.', not "default", and unique; the generator must outlive the TrainState.
  TrainState& add_generator(const std::string& name, Generator& generator);

  // The state as named tensors (layout at the top of this file). The model's and optimizer's
  // tensors are handles to the live ones (as their own state_dict()s), not copies.
  nn::StateDict state_dict() const;
  // Restores a state_dict(): all or nothing (see the top of this file). `source` names where it
  // came from in error messages.
  void load_state_dict(const nn::StateDict& state, const std::string& source = "state_dict");

  // One checkpoint file, written atomically (a crash mid-save leaves the previous file intact).
  void save(const std::string& path) const;
  // Reads and validates the file (corruption and truncation are errors naming the file), then
  // load_state_dict.
  void load(const std::string& path);

 private:
  nn::Module& model_;
  Optimizer& optimizer_;
  LRScheduler* scheduler_;
  std::vector<std::pair<std::string, Generator*>> generators_;  // "default" first
};

}  // namespace mmgrad::optim
