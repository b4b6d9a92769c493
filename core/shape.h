// Shape: a small inline vector of dimension sizes (also used for strides).
//
// Tensors have at most kMaxDims dimensions; keeping shapes inline (no heap allocation) is what
// makes creating a tensor cheap enough for tiny ops to cost a microsecond or two.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <vector>

#include "core/error.h"

namespace mmgrad {

inline constexpr int kMaxDims = 8;

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) { assign(dims.begin(), dims.end()); }
  Shape(const std::vector<int64_t>& dims) { assign(dims.begin(), dims.end()); }  // NOLINT
  template <class It>
  Shape(It first, It last) {
    assign(first, last);
  }

  int size() const { return n_; }
  bool empty() const { return n_ == 0; }
  int64_t& operator[](int i) { return d_[i]; }
  int64_t operator[](int i) const { return d_[i]; }
  int64_t* begin() { return d_; }
  int64_t* end() { return d_ + n_; }
  const int64_t* begin() const { return d_; }
  const int64_t* end() const { return d_ + n_; }
  const int64_t* data() const { return d_; }
  int64_t back() const { return d_[n_ - 1]; }

  void push_back(int64_t v) {
    MMGRAD_CHECK(n_ < kMaxDims, "tensors have at most ", kMaxDims, " dimensions");
    d_[n_++] = v;
  }
  void insert(int pos, int64_t v) {
    MMGRAD_CHECK(n_ < kMaxDims, "tensors have at most ", kMaxDims, " dimensions");
    for (int i = n_; i > pos; --i) d_[i] = d_[i - 1];
    d_[pos] = v;
    ++n_;
  }
  void erase(int pos) {
    for (int i = pos; i + 1 < n_; ++i) d_[i] = d_[i + 1];
    --n_;
  }
  void resize(int n, int64_t fill = 0) {
    MMGRAD_CHECK(n >= 0 && n <= kMaxDims, "tensors have at most ", kMaxDims, " dimensions");
    for (int i = n_; i < n; ++i) d_[i] = fill;
    n_ = n;
  }

  int64_t numel() const {
    int64_t p = 1;
    for (int i = 0; i < n_; ++i) p *= d_[i];
    return p;
  }
  std::vector<int64_t> vec() const { return std::vector<int64_t>(begin(), end()); }

  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.n_ != b.n_) return false;
    for (int i = 0; i < a.n_; ++i)
      if (a.d_[i] != b.d_[i]) return false;
    return true;
  }
  friend bool operator!=(const Shape& a, const Shape& b) { return !(a == b); }

  // "[2, 3, 4]"
  std::string str() const {
    std::string s = "[";
    for (int i = 0; i < n_; ++i) {
      if (i) s += ", ";
      s += std::to_string(d_[i]);
    }
    return s + "]";
  }
  friend std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

 private:
  template <class It>
  void assign(It first, It last) {
    n_ = 0;
    for (; first != last; ++first) push_back(static_cast<int64_t>(*first));
  }
  int64_t d_[kMaxDims] = {};
  int n_ = 0;
};

// Row-major (C order) strides of a contiguous tensor of this shape.
inline Shape contiguous_strides(const Shape& shape) {
  Shape st;
  st.resize(shape.size());
  int64_t s = 1;
  for (int i = shape.size() - 1; i >= 0; --i) {
    st[i] = s;
    s *= shape[i] > 0 ? shape[i] : 1;
  }
  return st;
}

// Maps a possibly negative dimension index into [0, ndim); names the op on error.
inline int wrap_dim(int64_t dim, int ndim, const char* op) {
  int64_t n = ndim == 0 ? 1 : ndim;  // a 0-d tensor accepts dim 0 / -1 like PyTorch
  MMGRAD_CHECK(dim >= -n && dim < n, op, ": dimension ", dim, " is out of range for a tensor with ",
               ndim, " dimension(s)");
  return static_cast<int>(dim < 0 ? dim + n : dim);
}

}  // namespace mmgrad
