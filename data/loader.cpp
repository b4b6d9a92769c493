#include "mmgrad/data/loader.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "mmgrad/core/error.h"
#include "mmgrad/core/philox.h"

namespace mmgrad::data {

namespace {

void check_loader_args(int64_t n, int64_t batch_size) {
  MMGRAD_CHECK(n >= 0, "DataLoader: number of samples must be >= 0, got ", n);
  MMGRAD_CHECK(batch_size > 0, "DataLoader: batch_size must be positive, got ", batch_size);
}

// A CPU, contiguous, gradient-free handle to the same values (a copy only when needed).
Tensor host_contiguous(const Tensor& t) {
  Tensor d = t.detach();
  if (d.device() != kCPU) d = d.cpu();
  return d.is_contiguous() ? d : d.contiguous();
}

}  // namespace

std::vector<int64_t> permutation(int64_t n, uint64_t seed, uint64_t stream) {
  MMGRAD_CHECK(n >= 0, "permutation: n must be >= 0, got ", n);
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  // Fisher-Yates from the back: swap element i with a uniform pick among [0, i]. Counter
  // stream * n + i makes each (seed, stream) its own reproducible sequence.
  const uint64_t base = stream * static_cast<uint64_t>(n);
  for (int64_t i = n - 1; i > 0; --i) {
    double u = philox::uniform(base + static_cast<uint64_t>(i), seed);
    int64_t j = std::min<int64_t>(static_cast<int64_t>(u * static_cast<double>(i + 1)), i);
    std::swap(p[i], p[j]);
  }
  return p;
}

DataLoader::DataLoader(const Tensor& inputs, const Tensor& targets, int64_t batch_size,
                       bool shuffle, uint64_t seed, LastBatch last)
    : batch_size_(batch_size), shuffle_(shuffle), seed_(seed), last_(last) {
  MMGRAD_CHECK(inputs.defined() && inputs.dim() >= 1, "DataLoader: inputs must be a tensor with ",
               "at least one dimension (samples first), got ",
               inputs.defined() ? describe(inputs) : std::string("an undefined tensor"));
  n_ = inputs.size(0);
  if (targets.defined()) {
    MMGRAD_CHECK(targets.dim() >= 1 && targets.size(0) == n_, "DataLoader: inputs ",
                 describe(inputs), " and targets ", describe(targets),
                 " must have the same number of samples (first dimension)");
    targets_ = host_contiguous(targets);
  }
  check_loader_args(n_, batch_size);
  inputs_ = host_contiguous(inputs);
}

DataLoader::DataLoader(int64_t num_samples, int64_t batch_size, bool shuffle, uint64_t seed,
                       LastBatch last)
    : n_(num_samples), batch_size_(batch_size), shuffle_(shuffle), seed_(seed), last_(last) {
  check_loader_args(num_samples, batch_size);
}

int64_t DataLoader::size() const {
  return last_ == LastBatch::Drop ? n_ / batch_size_ : (n_ + batch_size_ - 1) / batch_size_;
}

void DataLoader::set_epoch(int64_t epoch) {
  MMGRAD_CHECK(epoch >= 0, "DataLoader::set_epoch: epoch must be >= 0, got ", epoch);
  next_epoch_ = epoch;
}

std::vector<int64_t> DataLoader::order(int64_t epoch) const {
  MMGRAD_CHECK(epoch >= 0, "DataLoader::order: epoch must be >= 0, got ", epoch);
  if (shuffle_) return permutation(n_, seed_, static_cast<uint64_t>(epoch));
  std::vector<int64_t> p(static_cast<size_t>(n_));
  for (int64_t i = 0; i < n_; ++i) p[i] = i;
  return p;
}

DataLoader::iterator DataLoader::begin() {
  order_ = order(next_epoch_);
  ++next_epoch_;
  return iterator(this, 0);
}

Batch DataLoader::batch(int64_t b) const {
  MMGRAD_CHECK(static_cast<int64_t>(order_.size()) == n_, "DataLoader::batch: no epoch started ",
               "yet (iterate the loader or call begin() first)");
  MMGRAD_CHECK(b >= 0 && b < size(), "DataLoader::batch: batch ", b, " is out of range [0, ",
               size(), ")");
  int64_t start = b * batch_size_;
  int64_t stop = std::min(start + batch_size_, n_);
  std::vector<int64_t> idx(order_.begin() + start, order_.begin() + stop);
  Batch out;
  out.indices = Tensor::from_vector(idx, {static_cast<int64_t>(idx.size())});
  if (inputs_.defined()) out.inputs = take_rows(inputs_, idx);
  if (targets_.defined()) out.targets = take_rows(targets_, idx);
  return out;
}

Batch DataLoader::iterator::operator*() const {
  MMGRAD_CHECK(b_ < loader_->size(), "DataLoader: dereferencing the end iterator");
  return loader_->batch(b_);
}

TrainValSplit train_val_split(int64_t n, double val_fraction, uint64_t seed) {
  MMGRAD_CHECK(n > 0, "train_val_split: n must be positive, got ", n);
  MMGRAD_CHECK(val_fraction >= 0.0 && val_fraction < 1.0, "train_val_split: val_fraction must be ",
               "in [0, 1), got ", val_fraction);
  int64_t n_val = static_cast<int64_t>(std::llround(static_cast<double>(n) * val_fraction));
  n_val = std::min(n_val, n - 1);  // always leave at least one training sample
  std::vector<int64_t> p = permutation(n, seed, 0);
  std::vector<int64_t> val(p.begin(), p.begin() + n_val), train(p.begin() + n_val, p.end());
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  TrainValSplit s;
  s.train = Tensor::from_vector(train, {static_cast<int64_t>(train.size())});
  s.val = Tensor::from_vector(val, {static_cast<int64_t>(val.size())});
  return s;
}

Tensor take_rows(const Tensor& x, const std::vector<int64_t>& indices) {
  MMGRAD_CHECK(x.defined() && x.dim() >= 1, "take_rows: expects a tensor with at least one ",
               "dimension, got ", x.defined() ? describe(x) : std::string("an undefined tensor"));
  const int64_t n = x.size(0);
  for (size_t i = 0; i < indices.size(); ++i)
    MMGRAD_CHECK(indices[i] >= 0 && indices[i] < n, "take_rows: index ", indices[i], " (position ",
                 i, ") is out of range for ", describe(x), " (rows [0, ", n, "))");
  Tensor src = host_contiguous(x);
  Shape shape = x.shape();
  shape[0] = static_cast<int64_t>(indices.size());
  Tensor out = Tensor::empty(shape, x.dtype());
  const size_t row_bytes = static_cast<size_t>(n > 0 ? src.numel() / n : 0) * x.element_size();
  const auto* s = static_cast<const uint8_t*>(src.raw_data());
  auto* d = static_cast<uint8_t*>(out.raw_data());
  if (row_bytes == 0) return out;
  for (size_t i = 0; i < indices.size(); ++i)
    std::memcpy(d + i * row_bytes, s + static_cast<size_t>(indices[i]) * row_bytes, row_bytes);
  return out;
}

Tensor take_rows(const Tensor& x, const Tensor& indices) {
  MMGRAD_CHECK(indices.defined() && indices.dtype() == kInt64 && indices.dim() == 1,
               "take_rows: indices must be a 1-D int64 tensor, got ",
               indices.defined() ? describe(indices) : std::string("an undefined tensor"));
  return take_rows(x, indices.to_vector<int64_t>());
}

}  // namespace mmgrad::data
