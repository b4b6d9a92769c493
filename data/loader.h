// DataLoader: mini-batches over (inputs, targets) tensors or over sample indices, with seeded
// shuffling and a last-batch policy; plus train/validation splitting and a row gather.
//
//   data::DataLoader loader(ds.images, ds.labels, /*batch_size=*/128, /*shuffle=*/true, seed);
//   for (int epoch = 0; epoch < 3; ++epoch)
//     for (const data::Batch& b : loader) { ... b.inputs, b.targets, b.indices ... }
//
// Reproducibility: the order of epoch e is a function of (seed, e) alone, computed with the
// counter-based Philox generator (core/philox.h), so stopping an epoch early or resuming at
// set_epoch(e) gives the same batches as an uninterrupted run. Each range-for (each begin())
// starts the next epoch.
//
// Batches are gathered on the CPU from contiguous copies of the tensors (made once, in the
// constructor); move a batch with .to(device) where needed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad::data {

struct Batch {
  Tensor inputs;   // rows of the inputs tensor (undefined for an index-only loader)
  Tensor targets;  // rows of the targets tensor (undefined when none was given)
  Tensor indices;  // int64 [B]: which samples these are
  int64_t size() const { return indices.numel(); }
};

// What to do with the final, smaller batch when batch_size does not divide the sample count.
enum class LastBatch { Keep, Drop };

class DataLoader {
 public:
  // inputs and targets share their first dimension (targets may be undefined).
  DataLoader(const Tensor& inputs, const Tensor& targets, int64_t batch_size, bool shuffle = false,
             uint64_t seed = 0, LastBatch last = LastBatch::Keep);
  // Index-only: batches carry just `indices` (for data that is not one tensor).
  DataLoader(int64_t num_samples, int64_t batch_size, bool shuffle = false, uint64_t seed = 0,
             LastBatch last = LastBatch::Keep);

  int64_t num_samples() const { return n_; }
  int64_t batch_size() const { return batch_size_; }
  // Batches per epoch (len(loader) in PyTorch).
  int64_t size() const;
  // The epoch the next begin() starts (0 at first).
  int64_t epoch() const { return next_epoch_; }
  void set_epoch(int64_t epoch);
  // The sample order of an epoch (identity when not shuffling).
  std::vector<int64_t> order(int64_t epoch) const;
  // Batch b of the epoch begin() last started.
  Batch batch(int64_t b) const;

  // Yields batches by value (a Batch is three tensor handles: cheap to copy), so a batch stays
  // valid however long it is kept. Use `for (const Batch& b : loader)` or `for (auto b : ...)`.
  class iterator {
   public:
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    iterator(const DataLoader* loader, int64_t b) : loader_(loader), b_(b) {}
    Batch operator*() const;
    iterator& operator++() {
      ++b_;
      return *this;
    }
    bool operator==(const iterator& o) const { return b_ == o.b_ && loader_ == o.loader_; }
    bool operator!=(const iterator& o) const { return !(*this == o); }

   private:
    const DataLoader* loader_;
    int64_t b_;
  };
  // Starts the next epoch (computes its order) and returns its first batch.
  iterator begin();
  iterator end() const { return iterator(this, size()); }

 private:
  Tensor inputs_, targets_;
  int64_t n_ = 0;
  int64_t batch_size_ = 1;
  bool shuffle_ = false;
  uint64_t seed_ = 0;
  LastBatch last_ = LastBatch::Keep;
  int64_t next_epoch_ = 0;
  std::vector<int64_t> order_;  // the current epoch's order
};

// A seeded random permutation of [0, n) (Fisher-Yates on Philox uniforms); `stream` selects an
// independent permutation for the same seed (the loader uses the epoch number).
std::vector<int64_t> permutation(int64_t n, uint64_t seed, uint64_t stream = 0);

struct TrainValSplit {
  Tensor train;  // int64 indices, ascending
  Tensor val;    // int64 indices, ascending
};
// Splits [0, n) at random into round(n * val_fraction) validation indices and the rest.
TrainValSplit train_val_split(int64_t n, double val_fraction, uint64_t seed);

// x[indices] along dimension 0 (a plain CPU copy, no gradient): [k, ...rest of x].
Tensor take_rows(const Tensor& x, const std::vector<int64_t>& indices);
Tensor take_rows(const Tensor& x, const Tensor& indices);

}  // namespace mmgrad::data
