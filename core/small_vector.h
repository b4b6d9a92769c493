// SmallVector<T, N>: a vector that keeps its first N elements inside the object.
//
// An autograd Node records, per input, where the gradient goes, the input's shape and its dtype.
// Almost every op has 1 to 3 inputs, so keeping those lists inline saves three heap allocations
// (and frees) per recorded op: on a tiny tensor that is a good part of an op's whole cost. Ops
// with more inputs (cat, stack of many tensors) spill to an ordinary std::vector.
//
// Only what the Node lists need: size/empty, operator[], begin/end, resize, push_back, clear.
#pragma once

#include <cstddef>
#include <vector>

namespace mmgrad {

template <class T, size_t N>
class SmallVector {
 public:
  SmallVector() = default;

  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  T* data() { return n_ <= N ? inline_ : heap_.data(); }
  const T* data() const { return n_ <= N ? inline_ : heap_.data(); }
  T& operator[](size_t i) { return data()[i]; }
  const T& operator[](size_t i) const { return data()[i]; }
  T* begin() { return data(); }
  T* end() { return data() + n_; }
  const T* begin() const { return data(); }
  const T* end() const { return data() + n_; }
  T& back() { return data()[n_ - 1]; }
  const T& back() const { return data()[n_ - 1]; }

  // New elements are value-initialised (T{}), dropped ones are reset, as std::vector does.
  void resize(size_t n) {
    if (n <= N && n_ <= N) {
      for (size_t i = n; i < n_; ++i) inline_[i] = T{};
    } else if (n > N && n_ <= N) {  // inline -> heap
      heap_.clear();
      heap_.reserve(n);
      for (size_t i = 0; i < n_; ++i) heap_.push_back(std::move(inline_[i]));
      for (size_t i = 0; i < n_; ++i) inline_[i] = T{};
      heap_.resize(n);
    } else if (n > N) {  // heap -> heap
      heap_.resize(n);
    } else {  // heap -> inline
      for (size_t i = 0; i < n; ++i) inline_[i] = std::move(heap_[i]);
      heap_.clear();
    }
    n_ = n;
  }
  void push_back(T v) {
    resize(n_ + 1);
    back() = std::move(v);
  }
  void clear() { resize(0); }

 private:
  T inline_[N] = {};
  std::vector<T> heap_;  // used (and sized n_) only when n_ > N
  size_t n_ = 0;
};

}  // namespace mmgrad
