// What makes a tiny op cheap (issue 17 §3), checked for correctness: the inline lists of an
// autograd Node (core/small_vector.h), the backward engine's reused working lists (a backward
// started inside a node's backward, an exception in the middle of a pass), the leaf gradient
// adopted without a fresh handle, the allocator's small size classes, the per-thread block pool
// (core/block_pool.h), the per-thread backward epochs, Shape::resize, and the vectorised
// uniform random kernel giving the same bits as before.
#include <doctest/doctest.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include "core_test_util.h"
#include "mmgrad/autograd/node.h"
#include "mmgrad/core/block_pool.h"
#include "mmgrad/core/small_vector.h"
#include "mmgrad/kernels/backend.h"
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

namespace overhead_test {
struct Blob {
  double v[5];
};
uint64_t fnv1a(const void* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  const auto* c = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) {
    h ^= c[i];
    h *= 1099511628211ull;
  }
  return h;
}
}  // namespace overhead_test

TEST_CASE("block pool: a freed block is reused by the next object of its size") {
  using overhead_test::Blob;
  PoolAllocator<Blob> alloc;
  Blob* p = alloc.allocate(1);
  p->v[0] = 1;
  alloc.deallocate(p, 1);
  Blob* q = alloc.allocate(1);
  if (PoolAllocator<Blob>::kPooled) CHECK(q == p);  // taken back from this thread's free list
  alloc.deallocate(q, 1);
  // Through allocate_shared, as tensors and nodes use it: the object and its reference counts
  // live in one pooled block, and the values are intact.
  auto a = std::allocate_shared<Blob>(PoolAllocator<Blob>(), Blob{{1, 2, 3, 4, 5}});
  std::weak_ptr<Blob> w = a;
  CHECK(a->v[4] == 5);
  a.reset();
  CHECK(w.expired());
  // A block freed on another thread joins that thread's list; the thread's exit returns it.
  auto b = std::allocate_shared<Blob>(PoolAllocator<Blob>(), Blob{{6, 7, 8, 9, 10}});
  double seen_b = 0, seen_c = 0;  // checked after join: asserts stay on the test's thread
  std::thread t([&] {
    seen_b = b->v[0];
    b.reset();
    auto c = std::allocate_shared<Blob>(PoolAllocator<Blob>(), Blob{{0, 0, 0, 0, 11}});
    seen_c = c->v[4];
  });
  t.join();
  CHECK(seen_b == 6);
  CHECK(seen_c == 11);
  CHECK(b == nullptr);
  // Many more objects than a list keeps: the rest go back to the heap.
  std::vector<std::shared_ptr<Blob>> many;
  for (int i = 0; i < 3 * detail::kBlocksPerSize; ++i)
    many.push_back(std::allocate_shared<Blob>(PoolAllocator<Blob>(), Blob{{double(i)}}));
  for (int i = 0; i < 3 * detail::kBlocksPerSize; ++i) CHECK(many[size_t(i)]->v[0] == i);
  many.clear();
  // and the next shared object of that size takes a pooled block again.
  Blob* first = nullptr;
  {
    auto d = std::allocate_shared<Blob>(PoolAllocator<Blob>(), Blob{{1}});
    first = d.get();
  }
  auto e = std::allocate_shared<Blob>(PoolAllocator<Blob>(), Blob{{2}});
  if (PoolAllocator<Blob>::kPooled) CHECK(e.get() == first);
  CHECK(e->v[0] == 2);
}

TEST_CASE("autograd: backward passes on two threads over one retained graph") {
  // Each pass marks the nodes it visits with its epoch; epochs are counted per thread, so two
  // threads must never hand out the same one (the second pass would skip every node as seen).
  Tensor x = leaf({1.5, -2});
  Tensor h = x * x;                // shared by both branches: a diamond
  Tensor y = (h * 3.0 + h).sum();  // dy/dx = 4 * 2x = 8x
  for (int round = 0; round < 3; ++round) {
    std::thread t([&] { y.backward(/*retain_graph=*/true); });
    t.join();
    CHECK(vals(x.grad()) == std::vector<double>{12.0 * (2 * round + 1), -16.0 * (2 * round + 1)});
    y.backward(/*retain_graph=*/true);
    CHECK(vals(x.grad()) == std::vector<double>{12.0 * (2 * round + 2), -16.0 * (2 * round + 2)});
  }
}

TEST_CASE("Shape: resize fills only the new dimensions") {
  Shape s{4, 5, 6};
  s.resize(1);
  CHECK(s == Shape{4});
  s.resize(3, 7);  // the dropped 5 and 6 are not resurrected
  CHECK(s == Shape{4, 7, 7});
  s.resize(kMaxDims, -1);
  CHECK(s == Shape{4, 7, 7, -1, -1, -1, -1, -1});
  s.resize(0);
  CHECK(s.empty());
  s.resize(2);
  CHECK(s == Shape{0, 0});
  CHECK_THROWS_AS(s.resize(kMaxDims + 1), Error);
}

TEST_CASE("random: the CPU uniform kernel gives the same bits as before it was vectorised") {
  // FNV-1a hashes of 100003 uniform samples (seed 1234567, offset 99) from the scalar kernel, at
  // bounds including one whose float32 rounding lands on b (0.5 and 0.50000001 are the same
  // float): the vectorised loop must reproduce every bit, on any thread count.
  struct Case {
    DType dtype;
    double a, b;
    uint64_t hash;
  };
  const Case cases[] = {
      {kFloat32, 0, 1, 0x99fec61b71a62093ull},
      {kFloat32, -2, 3, 0x0284a37254728177ull},
      {kFloat32, 0.5, 0.50000001000000005, 0x6d25592bdad814caull},
      {kFloat32, -0.001, 0.001, 0x4acd04aae99ea3bbull},
      {kFloat64, 0, 1, 0xefd1bbd5c9cd5ea8ull},
      {kFloat64, -2, 3, 0x692d4cdc4bbe19a0ull},
      {kFloat64, 0.5, 0.50000001000000005, 0x05bff883252abe85ull},
      {kFloat64, -0.001, 0.001, 0xe4cccfdeb2f93fcbull},
  };
  for (const Case& c : cases) {
    Tensor t = Tensor::empty({100003}, c.dtype);
    backend(Device::CPU).random(RandomDist::Uniform, t.desc(), 1234567, 99, c.a, c.b);
    CAPTURE(c.a);
    CAPTURE(c.b);
    CHECK(overhead_test::fnv1a(t.raw_data(), size_t(t.numel()) * t.element_size()) == c.hash);
  }
}
