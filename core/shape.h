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

#include "mmgrad/core/error.h"
#include "mmgrad/core/op_scope.h"

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
    // A loop over all kMaxDims slots, not `for (i = n_; i < n; ++i)`: the compiler turns that
    // variable-length loop into a memset (a `rep stos`, whose start-up cost was a tenth of a
    // tiny op's Tensor::empty), while this fixed-length one becomes a few masked stores.
    for (int i = 0; i < kMaxDims; ++i)
      if (i >= n_ && i < n) d_[i] = fill;
    n_ = n;
  }

  // The number of elements, the product of the sizes. Exact for every shape: a 0 anywhere makes
  // it 0 (even when the other sizes multiply past int64, as in a corrupt file's [7.2e17, 0,
  // 589824, 0]), and a product that does not fit in int64 throws instead of wrapping around.
  int64_t numel() const {
    int64_t p = 1;
    bool overflow = false;
    for (int i = 0; i < n_; ++i) {
      if (d_[i] == 0) return 0;
      overflow |= __builtin_mul_overflow(p, d_[i], &p);
    }
    if (overflow) numel_overflow();
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

  // The multi-index of element `flat` of a row-major tensor of this shape: {1, 2} for flat 5 of
  // [2, 3] (print it with .str(): "[1, 2]").
  Shape unravel(int64_t flat) const {
    Shape idx;
    idx.resize(n_);
    for (int d = n_ - 1; d >= 0; --d) {
      idx[d] = d_[d] ? flat % d_[d] : 0;
      flat = d_[d] ? flat / d_[d] : 0;
    }
    return idx;
  }

 private:
  [[noreturn]] void numel_overflow() const {
    fail(cat_str(op_name_or("numel"), ": shape ", str(),
                 " has more elements than int64 can count (2^63 - 1)"));
  }
  template <class It>
  void assign(It first, It last) {
    n_ = 0;
    for (; first != last; ++first) push_back(static_cast<int64_t>(*first));
  }
  int64_t d_[kMaxDims] = {};
  int n_ = 0;
};

// ---- size arithmetic that cannot overflow
// -------------------------------------------------------- Sizes come from users and from files, so
// every product of them is checked: signed overflow is undefined behaviour in C++, and a wrapped
// size is worse than a crash (a small allocation that later writes run past).
// __builtin_mul_overflow (GCC, Clang) multiplies and reports overflow.

// a * b, or false when the product does not fit in int64.
inline bool mul_fits(int64_t a, int64_t b, int64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

// The span of a contiguous layout of `shape`: the product of its sizes with each 0 counted as 1.
// It is what the largest row-major stride (times that dimension's size) reaches, so when it fits
// in int64 every stride and every offset computed from them does too. A shape with a 0 has no
// elements, yet its strides are still products of the other sizes: [7.2e17, 0, 589824, 0] has
// numel 0 and a stride 589824 * 7.2e17 that does not fit. Returns false when the span overflows
// (or a size is negative).
inline bool layout_fits(const Shape& shape, int64_t* span = nullptr) {
  int64_t s = 1;
  for (int i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0 || !mul_fits(s, shape[i] > 0 ? shape[i] : 1, &s)) return false;
  }
  if (span) *span = s;
  return true;
}

// Throws an mmgrad::Error naming `op` unless every size is >= 0 and the contiguous layout of the
// shape fits in int64 (layout_fits). The shape layer's one check: Tensor::empty, reshape/view,
// contiguous_strides and the file readers all go through it.
inline void check_shape(const Shape& shape, const char* op) {
  for (int i = 0; i < shape.size(); ++i)
    MMGRAD_CHECK(shape[i] >= 0, op, ": negative size ", shape[i], " at dimension ", i, " in shape ",
                 shape.str());
  MMGRAD_CHECK(layout_fits(shape), op, ": shape ", shape.str(),
               " is too large: the product of its sizes (a 0 counted as 1, as in its strides) "
               "exceeds int64 (2^63 - 1)");
}

// Writes the row-major strides of `shape` into st, for a shape check_shape has already passed.
// Computed in place in the destination: building them in a temporary Shape and copying that
// made the copy wait on the temporary's just-written elements (a store-forwarding stall that
// was a tenth of a tiny op's whole cost).
inline void fill_contiguous_strides(const Shape& shape, Shape& st) {
  st.resize(shape.size());
  int64_t s = 1;
  for (int i = shape.size() - 1; i >= 0; --i) {
    st[i] = s;
    s *= shape[i] > 0 ? shape[i] : 1;  // cannot overflow: check_shape bounded the product
  }
}

// Row-major (C order) strides of a contiguous tensor of this shape. Throws (naming `op`, or the
// running op's OpScope) for a shape whose strides would overflow int64 (check_shape); never wraps.
inline Shape contiguous_strides(const Shape& shape, const char* op = nullptr) {
  check_shape(shape, op ? op : op_name_or("contiguous_strides"));
  Shape st;
  st.resize(shape.size());
  int64_t s = 1;
  for (int i = shape.size() - 1; i >= 0; --i) {
    st[i] = s;
    s *= shape[i] > 0 ? shape[i] : 1;  // cannot overflow: check_shape bounded the product
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
