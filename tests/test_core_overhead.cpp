// What makes a tiny op cheap (issue 17 §3), checked for correctness: the inline lists of an
// autograd Node (core/small_vector.h), the backward engine's reused working lists (a backward
// started inside a node's backward, an exception in the middle of a pass), the leaf gradient
// adopted without a fresh handle, and the allocator's small size classes.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "core_test_util.h"
#include "mmgrad/autograd/node.h"
#include "mmgrad/core/small_vector.h"
#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/mmgrad.h"

using namespace mmgrad;
using mmgrad::testing::vals;

namespace {

Tensor leaf(std::vector<double> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from_vector(v, {n}, kFloat64).requires_grad_();
}

// y = 2 x, whose backward first runs a whole other backward pass (on its own small graph) and
// checks its result: the engine must not hand the inner pass the outer pass's working lists.
struct NestedBackward : Node {
  Tensor inner_leaf;
  double inner_grad = 0;
  const char* name() const override { return "nested"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor z;
    {
      EnableGradGuard eg;  // backward runs with grad mode off; the inner graph needs it on
      z = (inner_leaf * inner_leaf).sum();  // dz/dw = 2w
    }
    z.backward();
    inner_grad = vals(inner_leaf.grad())[1];
    return {mul(g, 2.0)};
  }
};

Tensor nested_double(const Tensor& x, const Tensor& inner, std::shared_ptr<NestedBackward>* out) {
  Tensor y;
  {
    NoGradGuard ng;
    y = mul(x, 2.0);
  }
  if (auto node = make_node<NestedBackward>(y, {x})) {
    node->inner_leaf = inner;
    *out = node;
  }
  return y;
}

// A node whose backward throws, to stop a pass in the middle.
struct ThrowingBackward : Node {
  const char* name() const override { return "throwing"; }
  std::vector<Tensor> backward(const Tensor&) override {
    throw Error("throwing: backward refuses (test)");
  }
};

}  // namespace

TEST_CASE("SmallVector: inline, spilled to the heap and back, values kept") {
  SmallVector<Shape, 3> v;
  CHECK(v.empty());
  for (int64_t i = 0; i < 5; ++i) v.push_back(Shape{i, i + 1});
  REQUIRE(v.size() == 5);  // two past the inline capacity
  for (int64_t i = 0; i < 5; ++i) CHECK(v[static_cast<size_t>(i)] == Shape{i, i + 1});
  v.resize(2);  // back inline
  REQUIRE(v.size() == 2);
  CHECK(v[0] == Shape{0, 1});
  CHECK(v[1] == Shape{1, 2});
  v.resize(3);  // a new element is value-initialised, not the old third one
  CHECK(v[2] == Shape{});
  v.resize(4);  // inline -> heap keeps what was there
  CHECK(v[1] == Shape{1, 2});
  CHECK(v[3] == Shape{});
  int64_t count = 0;
  for (const Shape& s : v) count += s.size();
  CHECK(count == 4);
  v.clear();
  CHECK(v.size() == 0);
}

TEST_CASE("autograd: ops with more inputs than a node keeps inline") {
  // cat of 5 inputs: the node's per-input lists spill past their 3 inline entries.
  std::vector<Tensor> xs;
  for (int i = 0; i < 5; ++i) xs.push_back(leaf({1.0 + i, 2.0 * i}));
  Tensor y = cat(xs, 0);
  REQUIRE(y.grad_fn() != nullptr);
  CHECK(y.grad_fn()->next.size() == 5);
  CHECK(y.grad_fn()->input_shapes[4] == Shape{2});
  Tensor w =
      Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {10}, kFloat64);
  (y * w).sum().backward();
  for (int i = 0; i < 5; ++i)
    CHECK(vals(xs[static_cast<size_t>(i)].grad()) == std::vector<double>{1.0 + 2 * i, 2.0 + 2 * i});
}

TEST_CASE("autograd: a backward inside a node's backward") {
  Tensor x = leaf({1, 2, 3});
  Tensor inner = leaf({5, 7});
  std::shared_ptr<NestedBackward> node;
  Tensor y = nested_double(x, inner, &node);
  REQUIRE(node != nullptr);
  Tensor loss = (y * y).sum();  // d/dx (2x)^2 = 8x
  loss.backward();
  CHECK(vals(x.grad()) == std::vector<double>{8, 16, 24});
  CHECK(node->inner_grad == 14.0);  // the inner pass: 2 * 7
  CHECK(vals(inner.grad()) == std::vector<double>{10, 14});
  // The engine still works normally afterwards.
  x.set_grad(Tensor());
  (x * 3.0).sum().backward();
  CHECK(vals(x.grad()) == std::vector<double>{3, 3, 3});
}

TEST_CASE("autograd: an exception in the middle of backward leaves the engine usable") {
  Tensor x = leaf({1, 2});
  Tensor y = mul(x, 2.0);
  Tensor bad;
  {
    NoGradGuard ng;
    bad = mul(y, 1.0);
  }
  make_node<ThrowingBackward>(bad, {y});
  Tensor loss = (bad + y).sum();
  CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("refuses"), Error);
  Tensor z = leaf({3, 4});
  (z * z).sum().backward();
  CHECK(vals(z.grad()) == std::vector<double>{6, 8});
}

TEST_CASE("autograd: a leaf's first gradient is its own plain tensor") {
  Tensor a = leaf({1, 2}), b = leaf({3, 4});
  Tensor c = add(a, b);  // both inputs get the same incoming gradient
  c.backward(Tensor::ones({2}, kFloat64));
  Tensor ga = a.grad(), gb = b.grad();
  CHECK(vals(ga) == std::vector<double>{1, 1});
  CHECK(vals(gb) == std::vector<double>{1, 1});
  for (const Tensor& g : {ga, gb}) {
    CHECK_FALSE(g.requires_grad());
    CHECK(g.grad_fn() == nullptr);
    CHECK(g.name().empty());
  }
  CHECK(ga.storage() != gb.storage());  // never one buffer for two leaves
  ga.add_(Tensor::ones({2}, kFloat64));
  CHECK(vals(gb) == std::vector<double>{1, 1});
  // A second backward accumulates into each leaf's own buffer.
  add(a, b).sum().backward();
  CHECK(vals(a.grad()) == std::vector<double>{3, 3});
  CHECK(vals(b.grad()) == std::vector<double>{2, 2});
}

TEST_CASE("allocator: small size classes are reused and counted") {
  { Tensor warm = Tensor::empty({3}); }
  const cpu::AllocatorStats s0 = cpu::allocator_stats();
  for (int i = 0; i < 100; ++i) {
    Tensor t = Tensor::empty({3});     // 12 bytes: the 64-byte class
    Tensor u = Tensor::empty({1000});  // 4000 bytes: the largest small class (4096)
    Tensor v = Tensor::empty({1025});  // 4100 bytes: the first class above the small ones
    CHECK(reinterpret_cast<uintptr_t>(u.raw_data()) % 64 == 0);
  }
  const cpu::AllocatorStats s1 = cpu::allocator_stats();
  CHECK(s1.os_allocations <= s0.os_allocations + 2);  // the first 4096 and 6144 blocks at most
  CHECK(s1.cache_hits >= s0.cache_hits + 3 * 100 - 2);
  CHECK(s1.bytes_in_use == s0.bytes_in_use);
  cpu::empty_cache();
  CHECK(cpu::allocator_stats().bytes_cached == 0);
}
