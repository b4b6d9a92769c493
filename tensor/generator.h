// Generator: the seeded source of every random tensor.
//
// It holds a seed and an offset. Drawing n numbers hands out counters [offset, offset + n) to the
// Philox kernel and advances the offset, so a sequence of draws is reproducible from the seed
// alone, and independent of thread count and device.
#pragma once

#include <cstdint>

namespace mmgrad {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  void manual_seed(uint64_t seed) {
    seed_ = seed;
    offset_ = 0;
  }
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  // The whole state, (seed, offset): a generator set to a saved state continues with exactly
  // the numbers the saved one would have drawn next. PyTorch's get_state / set_state (which
  // return and take a byte tensor; here, the two counters themselves). optim::TrainState saves
  // and restores generators with these.
  struct State {
    uint64_t seed = 0;
    uint64_t offset = 0;
  };
  State get_state() const { return {seed_, offset_}; }
  void set_state(const State& state) {
    seed_ = state.seed;
    offset_ = state.offset;
  }
  // Reserves n counters and returns the first.
  uint64_t advance(uint64_t n) {
    uint64_t o = offset_;
    offset_ += n;
    return o;
  }

 private:
  uint64_t seed_ = 0;
  uint64_t offset_ = 0;
};

// The process-wide generator used when an op is not given one.
Generator& default_generator();
// Seeds the default generator (torch.manual_seed).
void manual_seed(uint64_t seed);

}  // namespace mmgrad
