// Indices, sizes and dims near the int64 limits (docs/semantics.md, "Index overflow"): slice
// saturates like Python slicing; narrow, select, the index ops, dims, expand, reshape, cat and
// topk raise an mmgrad::Error naming the op. Never a silently wrong shape.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core_test_util.h"
#include "mmgrad/mmgrad.h"

using namespace mmgrad;
using namespace mmgrad::testing;

namespace {

constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kBig = 1'000'000'000'000'000'000;  // 10**18

const DType kFloatDTypes[] = {kFloat32, kFloat64};

// 0, 1, ..., n - 1 as floats of dtype dt.
Tensor iota(int64_t n, DType dt = kFloat64) { return Tensor::arange(0.0, double(n), 1.0, dt); }

// The indices Python's range(n)[start:end:step] picks (step > 0), enumerated in 128-bit integers
// straight from the language's definition: a negative bound adds n once, then both clamp into
// [0, n]; then start, start + step, ... while below end.
std::vector<double> python_slice(int64_t n, int64_t start, int64_t end, int64_t step) {
  auto fix = [n](__int128 v) {
    if (v < 0) v += n;
    if (v < 0) v = 0;
    if (v > n) v = n;
    return v;
  };
  std::vector<double> out;
  for (__int128 i = fix(start); i < fix(end); i += step) out.push_back(static_cast<double>(i));
  return out;
}

}  // namespace

// ---- slice
// ---------------------------------------------------------------------------------------

TEST_CASE("index overflow: slice with a huge step gives the one element Python gives") {
  for (DType dt : kFloatDTypes) {
    const std::string dtype = dtype_name(dt);
    CAPTURE(dtype);
    Tensor x = iota(7, dt);
    // Values as Python prints them for list(range(7))[start:end:step].
    struct Case {
      int64_t start, end, step;
      std::vector<double> want;
    };
    const std::vector<Case> cases = {
        {0, 5, kBig, {0}},           // x[0:5:10**18]
        {3, 7, kBig, {3}},           // x[3:7:10**18]
        {2, kI64Max, kI64Max, {2}},  // x[2::2**63-1]
        {6, 7, kI64Max, {6}},        // x[6:7:2**63-1]
        {-kBig, kBig, 1, {0, 1, 2, 3, 4, 5, 6}},
        {-1, kI64Max, 1, {6}},             // x[-1:]
        {kMin, kI64Max, 2, {0, 2, 4, 6}},  // x[-2**63:2**63-1:2]
        {kMin, kI64Max, kI64Max, {0}},     // one element from the start
        {kI64Max, kI64Max, 1, {}},         // start past the end
        {kMin, kMin, 1, {}},
        {kI64Max, kMin, 1, {}},
        {5, 2, 1, {}},
        {-3, -1, 1, {4, 5}},
        {-8, 3, 1, {0, 1, 2}},  // start below -n clamps to 0
        {7, kI64Max, 1, {}},
        {0, -7, 1, {}},
        {0, -6, 1, {0}},
        {1, 7, 3, {1, 4}},
        {1, 8, 3, {1, 4}},  // 7 is not an index of range(7)
    };
    for (const Case& c : cases) {
      CAPTURE(c.start);
      CAPTURE(c.end);
      CAPTURE(c.step);
      Tensor y = slice(x, 0, c.start, c.end, c.step);
      CHECK(y.shape() == Shape{static_cast<int64_t>(c.want.size())});
      CHECK(vals(y) == c.want);
      CHECK(vals(y) == python_slice(7, c.start, c.end, c.step));  // the table agrees with Python
    }
  }
}

TEST_CASE("index overflow: slice agrees with Python on every bound near the int64 limits") {
  const std::vector<int64_t> bounds = {kMin, kMin + 1, -kBig, -9, -8, -7,   -6,          -1,     0,
                                       1,    6,        7,     8,  9,  kBig, kI64Max - 1, kI64Max};
  const std::vector<int64_t> steps = {1, 2, 3, 6, 7, 8, kBig, kI64Max};
  int checked = 0;
  for (int64_t n : {0, 1, 7}) {
    Tensor x = iota(n);
    for (int64_t s : bounds)
      for (int64_t e : bounds)
        for (int64_t st : steps) {
          Tensor y = x.slice(0, s, e, st);
          std::vector<double> want = python_slice(n, s, e, st);
          if (vals(y) != want || y.shape() != Shape{static_cast<int64_t>(want.size())}) {
            FAIL_CHECK("slice(", s, ", ", e, ", ", st, ") of ", n, " elements gave ",
                       y.shape().str());
          }
          ++checked;
        }
  }
  CHECK(checked == 3 * 17 * 17 * 8);
}

TEST_CASE("index overflow: slice with a huge step in 2-D, on views, and its backward") {
  for (DType dt : kFloatDTypes) {
    const std::string dtype = dtype_name(dt);
    CAPTURE(dtype);
    Tensor x = iota(15, dt).reshape({3, 5}).detach().requires_grad_();
    Tensor col = slice(x, 1, 2, kI64Max, kI64Max);  // column 2 only
    CHECK(col.shape() == Shape{3, 1});
    CHECK(vals(col) == std::vector<double>{2, 7, 12});
    Tensor row = x.t().slice(1, -1, kI64Max, kBig);  // of a transposed view: the last row
    CHECK(row.shape() == Shape{5, 1});
    CHECK(vals(row) == std::vector<double>{10, 11, 12, 13, 14});
    // Slicing the one-element result again keeps working (its stride was never overflowed).
    Tensor again = col.slice(0, 1, kI64Max, kI64Max);
    CHECK(vals(again) == std::vector<double>{7});
    add(col.sum(), again.sum()).backward();
    std::vector<double> g(15, 0.0);
    g[2] = 1, g[7] = 2, g[12] = 1;
    CHECK(vals(x.grad()) == g);
  }
  Tensor x = iota(4);
  CHECK_ERROR(slice(x, 0, 0, 4, 0), "slice", "step must be positive", "0");
  CHECK_ERROR(slice(x, 0, 0, 4, kMin), "slice", "step must be positive");
  CHECK_ERROR(slice(Tensor::scalar(1.0), 0, 0, 1), "slice", "0-d");
}

// ---- narrow
// ---------------------------------------------------------------------------------------

TEST_CASE("index overflow: narrow with start or length near the int64 limits is a named error") {
  for (DType dt : kFloatDTypes) {
    const std::string dtype = dtype_name(dt);
    CAPTURE(dtype);
    Tensor x = iota(5, dt);
    // start + length overflowed before and gave a silently empty tensor.
    CHECK_ERROR(narrow(x, 0, 1, kI64Max), "narrow", "out of bounds", "size 5", "1 + ");
    CHECK_ERROR(narrow(x, 0, 2, kI64Max - 1), "narrow", "out of bounds");
    CHECK_ERROR(x.narrow(0, 0, kI64Max), "narrow", "out of bounds", "[0, 9223372036854775807)");
    CHECK_ERROR(narrow(x, 0, kI64Max, 1), "narrow", "start", "out of range", "size 5");
    CHECK_ERROR(narrow(x, 0, kMin, 1), "narrow", "start", "-5 <= start <= 5");
    CHECK_ERROR(narrow(x, 0, kMin, kI64Max), "narrow", "start");
    CHECK_ERROR(narrow(x, 0, -6, 1), "narrow", "start");
    CHECK_ERROR(narrow(x, 0, 6, 0), "narrow", "start");
    CHECK_ERROR(narrow(x, 0, 0, -1), "narrow", "length", "-1");
    CHECK_ERROR(narrow(x, 0, 0, kMin), "narrow", "length");
    CHECK_ERROR(narrow(x, 0, 4, 2), "narrow", "[4, 6)", "size 5");
    CHECK_ERROR(narrow(x, 0, -1, 2), "narrow", "[4, 6)");
    CHECK_ERROR(narrow(x, kMin, 0, 1), "narrow", "out of range");
    // In range, including the edges PyTorch allows.
    CHECK(vals(narrow(x, 0, -5, 5)) == std::vector<double>{0, 1, 2, 3, 4});
    CHECK(narrow(x, 0, 5, 0).shape() == Shape{0});
    CHECK(narrow(x, 0, -5, 0).shape() == Shape{0});
    CHECK(vals(narrow(x, 0, -1, 1)) == std::vector<double>{4});
    CHECK(vals(narrow(x, 0, 1, 4)) == std::vector<double>{1, 2, 3, 4});
    Tensor m = iota(12, dt).reshape({3, 4}).detach().requires_grad_();
    Tensor n = narrow(m, -1, -3, 2);
    CHECK(vals(n) == std::vector<double>{1, 2, 5, 6, 9, 10});
    n.sum().backward();
    CHECK(vals(m.grad()) == std::vector<double>{0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0});
  }
}

// ---- select and dims
// ------------------------------------------------------------------------------

TEST_CASE("index overflow: select with an index near the int64 limits is a named error") {
  Tensor x = iota(12).reshape({3, 4});
  for (int64_t i : {kMin, kMin + 1, int64_t{-4}, int64_t{3}, kI64Max, -kBig, kBig})
    CHECK_ERROR(select(x, 0, i), "select", "out of range", "size 3");
  CHECK_ERROR(x[kMin], "select", "out of range");
  CHECK_ERROR(x.select(1, kI64Max), "select", "size 4");
  CHECK(vals(select(x, 0, -3)) == std::vector<double>{0, 1, 2, 3});
  CHECK(vals(select(x, 1, -1)) == std::vector<double>{3, 7, 11});
}

TEST_CASE("index overflow: dims near the int64 limits are named errors in every op") {
  Tensor x = Tensor::zeros({2, 3});
  Tensor idx = Tensor::zeros({2, 3}, kInt64);
  for (int64_t d : {kMin, kI64Max, int64_t{-3}, int64_t{2}}) {
    CAPTURE(d);
    CHECK_ERROR(transpose(x, d, 0), "transpose", "out of range");
    CHECK_ERROR(transpose(x, 0, d), "transpose", "out of range");
    CHECK_ERROR(permute(x, {d, 0}), "permute", "out of range");
    CHECK_ERROR(sum(x, {d}), "sum", "out of range");
    CHECK_ERROR(mean(x, {d}), "mean", "out of range");
    CHECK_ERROR(var(x, Shape{d}), "var", "out of range");
    CHECK_ERROR(max(x, d), "max", "out of range");
    CHECK_ERROR(argmax(x, d), "argmax", "out of range");
    CHECK_ERROR(logsumexp(x, d), "logsumexp", "out of range");
    CHECK_ERROR(softmax(x, d), "softmax", "out of range");
    CHECK_ERROR(log_softmax(x, d), "log_softmax", "out of range");
    CHECK_ERROR(squeeze(x, d), "squeeze", "out of range");
    CHECK_ERROR(flatten(x, d), "flatten", "out of range");
    CHECK_ERROR(slice(x, d, 0, 1), "slice", "out of range");
    CHECK_ERROR(narrow(x, d, 0, 1), "narrow", "out of range");
    CHECK_ERROR(select(x, d, 0), "select", "out of range");
    CHECK_ERROR(index_select(x, d, Tensor::zeros({1}, kInt64)), "index_select", "out of range");
    CHECK_ERROR(gather(x, d, idx), "gather", "out of range");
    CHECK_ERROR(cat({x, x}, d), "cat", "out of range");
    CHECK_ERROR(topk(x, 1, d), "topk", "out of range");
    CHECK_ERROR(sort(x, d), "sort", "out of range");
    CHECK_ERROR(normalize(x, d), "normalize", "out of range");
  }
  for (int64_t d : {kMin, kI64Max, int64_t{-4}, int64_t{3}}) {
    CAPTURE(d);
    CHECK_ERROR(unsqueeze(x, d), "unsqueeze", "out of range");
    CHECK_ERROR(stack({x, x}, d), "stack", "out of range");
  }
}

// ---- expand, reshape, cat -----------------------------------------------------------------------

TEST_CASE("index overflow: expand to sizes whose product overflows int64 is a named error") {
  Tensor one = Tensor::zeros({1});
  const int64_t two32 = int64_t{1} << 32;
  CHECK_ERROR(one.expand({two32, two32}), "expand", "exceeds int64");
  CHECK_ERROR(Tensor::zeros({3, 1}).expand({3, kI64Max}), "expand", "exceeds int64");
  CHECK_ERROR(one.expand({kI64Max, 2}), "expand", "exceeds int64");
  CHECK_ERROR(one.expand({kMin}), "expand", "invalid size");
  CHECK_ERROR(one.expand({-2}), "expand", "invalid size");
  CHECK_ERROR(one.expand({-1, 1}), "expand", "new leading dimension");
  CHECK_ERROR(Tensor::zeros({2}).expand({kI64Max}), "expand", "cannot expand");
  // Large but representable views are fine: stride 0, nothing allocated.
  Tensor big = Tensor::zeros({1, 1}).expand({int64_t{1} << 31, int64_t{1} << 31});
  CHECK(big.shape() == Shape{int64_t{1} << 31, int64_t{1} << 31});
  CHECK(big.numel() == int64_t{1} << 62);
  CHECK(one.expand({kI64Max}).numel() == kI64Max);
  // A zero makes numel 0, but the other sizes must still have strides.
  CHECK_ERROR(one.expand({two32, 0, two32}), "expand", "exceeds int64");
  CHECK(one.expand({kI64Max, 0}).numel() == 0);
}

TEST_CASE("index overflow: reshape and view with sizes whose product wraps around") {
  Tensor x = iota(6);
  // 9 * 6148914691236517206 = 6 modulo 2^64: a wrapping product matched numel and reshape gave
  // this impossible shape silently.
  CHECK_ERROR(x.reshape({9, 6148914691236517206}), "reshape", "[9, 6148914691236517206]",
              "overflows int64");
  CHECK_ERROR(x.view({9, 6148914691236517206}), "view", "overflows int64");
  CHECK_ERROR(x.reshape({-1, 9, 6148914691236517206}), "reshape", "overflows int64");
  CHECK_ERROR(x.reshape({kI64Max, -1}), "reshape", "invalid for an input of shape [6]");
  CHECK_ERROR(x.reshape({-1, kI64Max}), "reshape", "invalid");
  CHECK_ERROR(x.reshape({kI64Max, kI64Max}), "reshape", "overflows int64");
  CHECK_ERROR(x.reshape({kMin, -1}), "reshape", "invalid size");
  CHECK_ERROR(x.reshape({-1, 0}), "reshape", "invalid");
  CHECK(x.reshape({-1, 3}).shape() == Shape{2, 3});
  // Empty tensors: any sizes with a 0 hold no element, but their strides must exist.
  Tensor e = Tensor::zeros({0});
  CHECK(e.reshape({kI64Max, 0}).shape() == Shape{kI64Max, 0});
  CHECK(e.reshape({kI64Max, -1}).shape() == Shape{kI64Max, 0});
  CHECK_ERROR(e.reshape({int64_t{1} << 62, int64_t{1} << 62, 0}), "reshape", "too large");
  CHECK_ERROR(e.reshape({-1, 0}), "reshape", "invalid");
  CHECK_ERROR(e.reshape({-1}).reshape({0, -1}), "reshape", "invalid");
}

TEST_CASE("index overflow: cat whose total size overflows int64 is a named error") {
  Tensor half = Tensor::zeros({1}).expand({kI64Max / 2 + 1});
  CHECK_ERROR(cat({half, half}, 0), "cat", "int64", "dimension 0");
  Tensor col = Tensor::zeros({1, 1}).expand({1, kI64Max});
  CHECK_ERROR(cat({col, Tensor::zeros({1, 1})}, 1), "cat", "int64", "dimension 1");
}

// ---- index tensors
// ----------------------------------------------------------------------------------

TEST_CASE("index overflow: index_select, gather, scatter_add, embedding reject bad indices") {
  for (DType dt : kFloatDTypes) {
    const std::string dtype = dtype_name(dt);
    CAPTURE(dtype);
    Tensor x = Tensor::zeros({3, 4}, dt);
    for (int64_t bad : {kMin, int64_t{-1}, int64_t{3}, kI64Max}) {
      CAPTURE(bad);
      const std::string v = std::to_string(bad);
      Tensor i1 = Tensor::from_vector(std::vector<int64_t>{0, bad}, {2});
      CHECK_ERROR(index_select(x, 0, i1), "index_select", v.c_str(), "out of range", "< 3");
      CHECK_ERROR(embedding(x, i1), "embedding", v.c_str(), "out of range");
      Tensor i2 = Tensor::from_vector(std::vector<int64_t>{0, 1, 2, bad}, {1, 4});
      CHECK_ERROR(gather(x, 0, i2), "gather", v.c_str(), "position [0, 3]");
      CHECK_ERROR(scatter_add(x, 0, i2, Tensor::ones({1, 4}, dt)), "scatter_add", v.c_str());
      CHECK_ERROR(cross_entropy(x.narrow(1, 0, 3),
                                Tensor::from_vector(std::vector<int64_t>{0, 1, bad}, {3})),
                  "cross_entropy", v.c_str());
    }
    // index_select along dim 1 (size 4): 4 is out of range, 3 is not.
    CHECK_ERROR(index_select(x, 1, Tensor::from_vector(std::vector<int64_t>{4}, {1})),
                "index_select", "< 4");
    CHECK(index_select(x, 1, Tensor::from_vector(std::vector<int64_t>{3}, {1})).shape() ==
          Shape{3, 1});
  }
}

TEST_CASE("index overflow: one_hot rejects negative and huge indices") {
  Tensor neg = Tensor::from_vector(std::vector<int64_t>{0, -1, 2}, {3});
  CHECK_ERROR(one_hot(neg, 4), "one_hot", "-1", "out of range");
  CHECK_ERROR(one_hot(neg, -1), "one_hot", "-1", "negative");
  Tensor all_neg = Tensor::from_vector(std::vector<int64_t>{-5, kMin}, {2});
  CHECK_ERROR(one_hot(all_neg, -1), "one_hot", "negative");
  Tensor huge = Tensor::from_vector(std::vector<int64_t>{kI64Max}, {1});
  CHECK_ERROR(one_hot(huge, -1), "one_hot", "too large");
  CHECK_ERROR(one_hot(huge, 4), "one_hot", "9223372036854775807", "out of range");
  CHECK_ERROR(one_hot(neg, kMin), "one_hot", "num_classes");
  CHECK_ERROR(one_hot(neg, 0), "one_hot", "num_classes");
  CHECK(one_hot(Tensor::from_vector(std::vector<int64_t>{2, 0}, {2}), -1).shape() == Shape{2, 3});
}

TEST_CASE("index overflow: topk with k beyond the dimension is a named error") {
  Tensor x = iota(5);
  CHECK_ERROR(topk(x, 6), "topk", "k = 6", "size 5");
  CHECK_ERROR(topk(x, kI64Max), "topk", "out of range");
  CHECK_ERROR(topk(x, -1), "topk", "k must be >= 0");
  CHECK_ERROR(topk(x, kMin), "topk", "k must be >= 0");
  CHECK(vals(topk(x, 5).values) == std::vector<double>{4, 3, 2, 1, 0});
  CHECK(topk(x, 0).values.shape() == Shape{0});
  CHECK_ERROR(topk(Tensor::zeros({2, 3}), 4, 1), "topk", "size 3");
}
