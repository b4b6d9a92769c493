// Joining, indexing and sorting ops: cat, stack, index_select, gather,
// scatter_add, embedding, one_hot, sort, topk. Values by hand, special
// semantics (repeats accumulate, padding_idx, stable ties) and bad inputs.
// Their float64 gradchecks, float32-vs-float64 forward and CPU/CUDA parity run
// from the op list (tests/op_list.cpp).
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "mmgrad/mmgrad.h"
#include "op_test_util.h"

using namespace mmgrad;
using namespace mmgrad::testing;

namespace {

Tensor randidx(int64_t high, const Shape& s, uint64_t seed) {
  Generator g(seed);
  return Tensor::randint(0, high, s, kInt64, &g);
}

std::vector<int64_t> ivals(const Tensor& t) { return t.to_vector<int64_t>(); }

}  // namespace

// ---- cat / stack
// -------------------------------------------------------------------------------

TEST_CASE("cat: values along each dim, negative dim, non-contiguous input") {
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector({7, 8, 9}, {1, 3});
  Tensor c = cat({a, b}, 0);
  CHECK(c.shape() == Shape{3, 3});
  CHECK(vals(c) == std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor d = cat({a, a.narrow(1, 0, 1)}, -1);
  CHECK(d.shape() == Shape{2, 4});
  CHECK(vals(d) == std::vector<double>{1, 2, 3, 1, 4, 5, 6, 4});
  Tensor e = cat({a.t(), b.t()}, 1);  // transposed (non-contiguous) inputs
  CHECK(e.shape() == Shape{3, 3});
  CHECK(vals(e) == std::vector<double>{1, 4, 7, 2, 5, 8, 3, 6, 9});
  // empty pieces are allowed
  Tensor f = cat({a, Tensor::zeros({0, 3})}, 0);
  CHECK(vals(f) == vals(a));
}

TEST_CASE("stack: values, new dim position") {
  Tensor a = Tensor::from_vector({1, 2, 3}, {3});
  Tensor b = Tensor::from_vector({4, 5, 6}, {3});
  Tensor s0 = stack({a, b}, 0), s1 = stack({a, b}, 1), sm = stack({a, b}, -1);
  CHECK(s0.shape() == Shape{2, 3});
  CHECK(vals(s0) == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(s1.shape() == Shape{3, 2});
  CHECK(vals(s1) == std::vector<double>{1, 4, 2, 5, 3, 6});
  CHECK(vals(sm) == vals(s1));
}

TEST_CASE("cat/stack: bad inputs name the op") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({2, 4});
  expect_error([] { cat({}, 0); }, "cat", "non-empty");
  expect_error([&] { cat({a, b}, 0); }, "cat", "[2, 4]");  // mismatched sizes
  expect_error([&] { cat({a, Tensor::zeros({2, 3, 1})}, 0); }, "cat", "rank");
  expect_error([&] { cat({a, a.to(kFloat64)}, 0); }, "cat", "dtype");
  expect_error([&] { cat({a, a}, 2); }, "cat", "out of range");
  expect_error([&] { cat({Tensor::scalar(1.0)}, 0); }, "cat", "zero-dimensional");
  expect_error([&] { cat({a, Tensor()}, 0); }, "cat", "undefined");
  expect_error([&] { stack({a, b}, 0); }, "stack", "equal shape");
  expect_error([&] { stack({a, a}, 3); }, "stack", "out of range");
  expect_error([] { stack({}, 0); }, "stack", "non-empty");
}

// ---- index_select
// ----------------------------------------------------------------------------

TEST_CASE("index_select: values with repeats, any dim, 0-d index") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor r0 = index_select(x, 0, ints({1, 1, 0}));
  CHECK(r0.shape() == Shape{3, 3});
  CHECK(vals(r0) == std::vector<double>{4, 5, 6, 4, 5, 6, 1, 2, 3});
  Tensor r1 = index_select(x, -1, ints({2, 0}));
  CHECK(vals(r1) == std::vector<double>{3, 1, 6, 4});
  Tensor r2 = index_select(x, 1, ints({1}, {1}).reshape({}));
  CHECK(r2.shape() == Shape{2, 1});
  CHECK(vals(r2) == std::vector<double>{2, 5});
  Tensor empty = index_select(x, 1, ints({}, {0}));
  CHECK(empty.shape() == Shape{2, 0});
  Tensor xi = Tensor::from_vector(std::vector<int64_t>{10, 20, 30});  // any dtype
  CHECK(ivals(index_select(xi, 0, ints({2, 0}))) == std::vector<int64_t>{30, 10});
}

TEST_CASE("index_select: gradient accumulates over repeated indices (hand check)") {
  Tensor x = Tensor::from_vector({1, 2, 3}, {3}, kFloat64).requires_grad_();
  index_select(x, 0, ints({2, 2, 0, 2})).sum().backward();
  CHECK(vals(x.grad()) == std::vector<double>{1, 0, 3});
}

TEST_CASE("index_select: bad inputs") {
  Tensor x = randn64({3, 4}, 5);
  expect_error([&] { index_select(x, 1, ints({4})); }, "index_select", "out of range");
  expect_error([&] { index_select(x, 1, ints({-1})); }, "index_select", "out of range");
  expect_error([&] { index_select(x, 1, Tensor::from_vector({1.0})); }, "index_select", "int64");
  expect_error([&] { index_select(x, 1, ints({0, 1}, {1, 2})); }, "index_select", "1-D");
  expect_error([&] { index_select(x, 2, ints({0})); }, "index_select", "out of range");
  expect_error([&] { index_select(Tensor::scalar(1.0), 0, ints({0})); }, "index_select", "0-d");
}

// ---- gather / scatter_add
// ----------------------------------------------------------------------

TEST_CASE("gather: values (PyTorch's documented example) and a smaller index") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  Tensor g = gather(x, 1, ints({0, 0, 1, 0}, {2, 2}));
  CHECK(vals(g) == std::vector<double>{1, 1, 4, 3});
  Tensor g0 = gather(x, 0, ints({1, 0}, {1, 2}));  // out[0][j] = x[idx[0][j]][j]
  CHECK(vals(g0) == std::vector<double>{3, 2});
  // index narrower than x outside dim: only the covered columns are read
  Tensor y = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor g1 = gather(y, 0, ints({1, 1, 0, 1}, {2, 2}));
  CHECK(g1.shape() == Shape{2, 2});
  CHECK(vals(g1) == std::vector<double>{4, 5, 1, 5});
  // longer than x along dim is fine (repeats)
  Tensor g2 = gather(y, 1, ints({2, 2, 2, 2, 0, 1, 0, 0}, {2, 4}));
  CHECK(vals(g2) == std::vector<double>{3, 3, 3, 3, 4, 5, 4, 4});
}

TEST_CASE("scatter_add: values, repeated indices accumulate, smaller index") {
  Tensor x = Tensor::zeros({2, 3});
  Tensor src = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  // row i of src goes to columns idx[i]; repeats add up
  Tensor y = scatter_add(x, 1, ints({0, 0, 2, 1, 1, 1}, {2, 3}), src);
  CHECK(vals(y) == std::vector<double>{3, 0, 3, 0, 15, 0});
  // dim 0, index [1, 2] covering only the first two columns and first row of
  // src
  Tensor base = Tensor::ones({2, 3});
  Tensor z = scatter_add(base, 0, ints({1, 0}, {1, 2}), src);
  CHECK(vals(z) == std::vector<double>{1, 3, 1, 2, 1, 1});
  CHECK(vals(base) == std::vector<double>(6, 1.0));  // the input is not modified
}

TEST_CASE("gather/scatter_add: bad inputs") {
  Tensor x = randn64({3, 4}, 6), src = randn64({3, 4}, 7);
  Tensor idx = randidx(4, {3, 4}, 8);
  Tensor bad = ints({0, 4, 0, 0}, {2, 2});
  expect_error([&] { gather(x, 1, bad); }, "gather", "out of range");
  expect_error([&] { gather(x, 1, ints({0, 1})); }, "gather", "rank");
  expect_error([&] { gather(x, 1, ints({0, 0, 0, 0, 0}, {5, 1})); }, "gather", "larger");
  expect_error([&] { gather(x, 1, Tensor::zeros({2, 2})); }, "gather", "int64");
  expect_error([&] { gather(x, -3, idx); }, "gather", "out of range");
  expect_error([&] { scatter_add(x, 1, bad, src); }, "scatter_add", "out of range");
  expect_error([&] { scatter_add(x, 1, idx, src.narrow(1, 0, 2)); }, "scatter_add", "larger");
  expect_error([&] { scatter_add(x, 1, idx, src.reshape({12})); }, "scatter_add", "rank");
  expect_error([&] { scatter_add(x, 1, idx, src.to(kFloat32)); }, "scatter_add", "dtype");
  expect_error([&] { scatter_add(x, 1, idx.to(kFloat64), src); }, "scatter_add", "int64");
  expect_error(
      [&] {
        scatter_add(ints({1, 2}), 0, ints({0}), ints({1}));
      },
      "scatter_add", "floating");
}

// ---- embedding / one_hot
// -----------------------------------------------------------------------

TEST_CASE("embedding: lookup values, any index shape, padding row gets no gradient") {
  Tensor w = Tensor::from_vector({0, 0, 1, 2, 3, 4, 5, 6}, {4, 2}, kFloat64).requires_grad_();
  Tensor idx = ints({1, 3, 1, 0, 2, 0}, {2, 3});
  Tensor e = embedding(w, idx, /*padding_idx=*/0);
  CHECK(e.shape() == Shape{2, 3, 2});
  CHECK(vals(e) == std::vector<double>{1, 2, 5, 6, 1, 2, 0, 0, 3, 4, 0, 0});
  Tensor up = Tensor::arange(1.0, 13.0, 1.0, kFloat64).reshape({2, 3, 2});
  e.backward(up);
  // row 1 is used at positions 0 and 2: (1,2) + (5,6); row 0 (padding) gets
  // nothing
  CHECK(vals(w.grad()) == std::vector<double>{0, 0, 6, 8, 9, 10, 3, 4});
  Tensor one = embedding(w.detach(), ints({2}, {1}).reshape({}));
  CHECK(one.shape() == Shape{2});
  CHECK(vals(one) == std::vector<double>{3, 4});
}

TEST_CASE("embedding: padding_idx zeroes only that row of the gradient") {
  Tensor w5 = randn64({3, 5}, 90);  // used transposed: [5, 3]
  Tensor idx = randidx(5, {2, 3, 2}, 400);
  // padding_idx only zeroes that row of the gradient: everything else equals
  // the plain one
  Tensor wa = w5.detach().t().contiguous().requires_grad_();
  Tensor wb = w5.detach().t().contiguous().requires_grad_();
  Tensor up = randn64({2, 3, 2, 3}, 92, false);
  embedding(wa, idx).backward(up);
  embedding(wb, idx, 2).backward(up);
  Tensor expect = wa.grad().clone();
  {
    NoGradGuard ng;
    expect.select(0, 2).zero_();
  }
  CHECK(vals(wb.grad()) == vals(expect));
}

TEST_CASE("embedding: bad inputs name the op") {
  Tensor w = Tensor::zeros({4, 2});
  expect_error([&] { embedding(w, ints({4})); }, "embedding", "out of range");
  expect_error([&] { embedding(w, ints({-2})); }, "embedding", "out of range");
  expect_error([&] { embedding(w, Tensor::zeros({2})); }, "embedding", "int64");
  expect_error([&] { embedding(Tensor::zeros({4}), ints({0})); }, "embedding", "2 dimensions");
  expect_error([&] { embedding(w, ints({0}), 4); }, "embedding", "padding_idx");
  expect_error([&] { embedding(w.to(kInt64), ints({0})); }, "embedding", "floating");
}

TEST_CASE("one_hot: values, dtype, inferred classes, errors") {
  Tensor h = one_hot(ints({2, 0, 1, 2}, {2, 2}), 3);
  CHECK(h.shape() == Shape{2, 2, 3});
  CHECK(h.dtype() == kFloat32);
  CHECK(vals(h) == std::vector<double>{0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1});
  Tensor hi = one_hot(ints({1, 3}), -1, kInt64);
  CHECK(hi.shape() == Shape{2, 4});
  CHECK(ivals(hi) == std::vector<int64_t>{0, 1, 0, 0, 0, 0, 0, 1});
  Tensor h0 = one_hot(ints({1}, {1}).reshape({}), 2, kFloat64);
  CHECK(h0.shape() == Shape{2});
  CHECK(vals(h0) == std::vector<double>{0, 1});
  expect_error([] { one_hot(ints({3}), 3); }, "one_hot", "out of range");
  expect_error([] { one_hot(ints({0}), 0); }, "one_hot", "num_classes");
  expect_error([] { one_hot(Tensor::zeros({2}), 3); }, "one_hot", "int64");
  expect_error([] { one_hot(ints({}, {0}), -1); }, "one_hot", "infer");
}

// ---- sort / topk
// ---------------------------------------------------------------------------------

TEST_CASE("sort: values and indices, ties keep input order (stable)") {
  Tensor x = Tensor::from_vector({3, 1, 2, 1, 3}, {5});
  SortResult a = sort(x);
  CHECK(vals(a.values) == std::vector<double>{1, 1, 2, 3, 3});
  CHECK(ivals(a.indices) == std::vector<int64_t>{1, 3, 2, 0, 4});
  SortResult d = sort(x, 0, /*descending=*/true);
  CHECK(vals(d.values) == std::vector<double>{3, 3, 2, 1, 1});
  CHECK(ivals(d.indices) == std::vector<int64_t>{0, 4, 2, 1, 3});
  CHECK(a.indices.dtype() == kInt64);
  CHECK_FALSE(sort(x.to(kFloat64).requires_grad_()).values.requires_grad());
}

TEST_CASE("sort: along a non-last dim, on a non-contiguous input, int64, NaN last") {
  Tensor x = Tensor::from_vector({3, 0, 1, 5, 2, 4}, {3, 2});
  SortResult s = sort(x, 0);
  CHECK(s.values.shape() == Shape{3, 2});
  CHECK(vals(s.values) == std::vector<double>{1, 0, 2, 4, 3, 5});
  CHECK(ivals(s.indices) == std::vector<int64_t>{1, 0, 2, 2, 0, 1});
  SortResult t = sort(x.t(), 1, true);  // rows of the transpose: [3, 1, 2] and [0, 5, 4]
  CHECK(vals(t.values) == std::vector<double>{3, 2, 1, 5, 4, 0});
  CHECK(ivals(t.indices) == std::vector<int64_t>{0, 2, 1, 1, 2, 0});
  SortResult i = sort(ints({5, -1, 3}));
  CHECK(ivals(i.values) == std::vector<int64_t>{-1, 3, 5});
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor xn = Tensor::from_vector(std::vector<double>{1, nan, 0, nan});
  SortResult an = sort(xn), dn = sort(xn, -1, true);
  CHECK(ivals(an.indices) == std::vector<int64_t>{2, 0, 1, 3});
  CHECK(ivals(dn.indices) == std::vector<int64_t>{1, 3, 0, 2});
  CHECK(std::isnan(vals(dn.values)[0]));
  CHECK(ivals(topk(xn, 1).indices) == std::vector<int64_t>{1});
  SortResult sc = sort(Tensor::scalar(2.0));
  CHECK(sc.values.dim() == 0);
  CHECK(sc.indices.item() == 0);
}

TEST_CASE(
    "sort: random 3-D input, every dim: ordered, a permutation, "
    "consistent with gather") {
  Tensor x = randn64({3, 4, 5}, 123, false);
  for (int dim = 0; dim < 3; ++dim) {
    for (bool desc : {false, true}) {
      CAPTURE(dim);
      CAPTURE(desc);
      SortResult s = sort(x, dim, desc);
      CHECK(s.values.shape() == x.shape());
      CHECK(vals(gather(x, dim, s.indices)) == vals(s.values));
      // ordered along dim
      Tensor lo = s.values.narrow(dim, 0, x.size(dim) - 1);
      Tensor hi = s.values.narrow(dim, 1, x.size(dim) - 1);
      Tensor ok = desc ? ge(lo, hi) : le(lo, hi);
      for (bool b : ok.to_vector<bool>()) CHECK(b);
      // indices along dim are a permutation: their sum is 0 + 1 + ... + n-1
      Tensor isum = sum(s.indices, Shape{dim});
      int64_t n = x.size(dim);
      for (int64_t v : ivals(isum)) CHECK(v == n * (n - 1) / 2);
    }
  }
}

TEST_CASE("topk: largest and smallest, ties by position, any dim, k bounds") {
  Tensor x = Tensor::from_vector({3, 1, 2, 1, 3}, {5});
  SortResult l = topk(x, 2);
  CHECK(vals(l.values) == std::vector<double>{3, 3});
  CHECK(ivals(l.indices) == std::vector<int64_t>{0, 4});
  SortResult s = topk(x, 3, 0, /*largest=*/false);
  CHECK(vals(s.values) == std::vector<double>{1, 1, 2});
  CHECK(ivals(s.indices) == std::vector<int64_t>{1, 3, 2});
  CHECK(topk(x, 0).values.shape() == Shape{0});
  CHECK(ivals(topk(x, 5).indices) == ivals(sort(x, 0, true).indices));
  Tensor m = Tensor::from_vector({1, 9, 4, 7, 3, 8}, {2, 3});
  SortResult c = topk(m, 1, 0);  // per column
  CHECK(c.values.shape() == Shape{1, 3});
  CHECK(vals(c.values) == std::vector<double>{7, 9, 8});
  CHECK(ivals(c.indices) == std::vector<int64_t>{1, 0, 1});
  SortResult r = topk(m, 2, -1);  // per row
  CHECK(vals(r.values) == std::vector<double>{9, 4, 8, 7});
  CHECK(ivals(r.indices) == std::vector<int64_t>{1, 2, 2, 0});
  expect_error([&] { topk(x, 6); }, "topk", "out of range");
  expect_error([&] { topk(x, -1); }, "topk", "k");
  expect_error([&] { topk(x, 1, 1); }, "topk", "out of range");
  expect_error([&] { sort(x, 2); }, "sort", "out of range");
  expect_error([&] { sort(Tensor()); }, "sort", "undefined");
}
