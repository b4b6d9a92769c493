// The same seed gives the same bits on any thread count.
//
// Floating-point addition is not associative, so a kernel that lets each thread sum its own share
// and then adds the shares gives a result that depends on how many threads there were. mmgrad's
// CPU kernels instead fix every summation order by the problem size: reductions give each output
// element to one thread, which sums it in index order; GEMM cuts C into tiles sized by (M, N, K)
// and each tile's k-sums run in the same order whoever computes it (kernels/cpu/gemm.cpp). These
// tests run the same computation on 1, 2, 3 and 4 threads and compare the raw bytes.
#include <doctest/doctest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core_test_util.h"
#include "mmgrad/kernels/cpu/parallel.h"
#include "mmgrad/metrics/pca.h"
#include "mmgrad/nn/conv.h"
#include "mmgrad/nn/linear.h"
#include "mmgrad/nn/mlp.h"
#include "mmgrad/optim/optim.h"
#include "op_list.h"

using namespace mmgrad;

namespace {

// Raw bytes of each tensor (contiguous CPU copies), so equality means bit-identical.
using Bytes = std::vector<std::vector<unsigned char>>;

Bytes bytes_of(const std::vector<Tensor>& ts) {
  Bytes out;
  for (const Tensor& t : ts) {
    if (!t.defined()) {
      out.emplace_back();
      continue;
    }
    Tensor c = t.detach().cpu().contiguous();
    const auto* p = static_cast<const unsigned char*>(c.raw_data());
    out.emplace_back(p, p + c.numel() * static_cast<int64_t>(c.element_size()));
  }
  return out;
}

// Restores the thread count the suite started with, whatever happens in between.
struct ThreadCountGuard {
  int saved = get_num_threads();
  ~ThreadCountGuard() { set_num_threads(saved); }
};

// Runs fn (which seeds its own randomness) on 1..4 threads and checks every result is bitwise
// equal to the one-thread result. Returns the number of tensors compared (so a test can check
// it compared something).
size_t check_same_on_all_thread_counts(const std::string& what,
                                       const std::function<std::vector<Tensor>()>& fn,
                                       const std::vector<int>& others = {2, 3, 4}) {
  ThreadCountGuard guard;
  set_num_threads(1);
  const Bytes ref = bytes_of(fn());
  for (int threads : others) {
    set_num_threads(threads);
    const Bytes got = bytes_of(fn());
    REQUIRE(got.size() == ref.size());
    for (size_t i = 0; i < ref.size(); ++i)
      CHECK_MESSAGE(got[i] == ref[i], what, ": output ", i, " differs between 1 and ", threads,
                    " threads");
  }
  return ref.size();
}

// Forward output and the gradient of every input for loss = sum(out * w), w fixed.
std::vector<Tensor> forward_and_grads(std::vector<Tensor> inputs,
                                      const std::function<Tensor(const std::vector<Tensor>&)>& f) {
  for (Tensor& t : inputs) t.requires_grad_(true);
  Tensor out = f(inputs);
  Generator g(99);
  Tensor w = Tensor::randn(out.shape(), out.options().requires_grad(false), &g);
  (out * w).sum().backward();
  std::vector<Tensor> r{out};
  for (const Tensor& t : inputs) r.push_back(t.grad());
  return r;
}

Tensor randn_seeded(const Shape& s, uint64_t seed, DType dt = kFloat32) {
  Generator g(seed);
  return Tensor::randn(s, TensorOptions().dtype(dt), &g);
}

}  // namespace

TEST_CASE("thread count: matmul of every size class, transposes and batches, bit-identical") {
  struct Case {
    int64_t b, m, k, n;
  };
  // one tile (small), many tiles (large), tall-skinny, a vector, batches of small and large
  const Case cases[] = {{1, 64, 64, 64},    {1, 300, 500, 400}, {1, 1024, 256, 512},
                        {1, 1, 2000, 3000}, {1, 2000, 64, 1},   {8, 64, 288, 196},
                        {3, 260, 300, 270}, {16, 32, 32, 32}};
  for (const Case& c : cases)
    for (DType dt : {kFloat32, kFloat64}) {
      const std::string what = "matmul [" + std::to_string(c.b) + ", " + std::to_string(c.m) +
                               ", " + std::to_string(c.k) + "] @ [" + std::to_string(c.k) + ", " +
                               std::to_string(c.n) + "]";
      check_same_on_all_thread_counts(what, [&] {
        Tensor a = randn_seeded({c.b, c.m, c.k}, 1, dt), w = randn_seeded({c.b, c.k, c.n}, 2, dt);
        // a plain product, and one through transposed views (the other GEMM variants)
        Tensor at = randn_seeded({c.b, c.k, c.m}, 3, dt).transpose(1, 2);
        return forward_and_grads({a, w}, [&](const std::vector<Tensor>& x) {
          return matmul(x[0], x[1]) + matmul(at, x[1]);
        });
      });
    }
}

TEST_CASE("thread count: conv2d, reductions, softmax, layer norm and attention, bit-identical") {
  check_same_on_all_thread_counts("conv2d", [] {
    return forward_and_grads(
        {randn_seeded({6, 8, 20, 20}, 4), randn_seeded({16, 8, 3, 3}, 5), randn_seeded({16}, 6)},
        [](const std::vector<Tensor>& x) { return conv2d(x[0], x[1], x[2], 1, 1); });
  });
  check_same_on_all_thread_counts("sum / mean / max over 2^20 elements", [] {
    return forward_and_grads({randn_seeded({1024, 1024}, 7)}, [](const std::vector<Tensor>& x) {
      return x[0].sum() + x[0].mean({0}).sum() + x[0].sum({1}).mean() + max(x[0], 1).sum();
    });
  });
  check_same_on_all_thread_counts("softmax / log_softmax / cross_entropy", [] {
    Generator g(8);
    Tensor target = Tensor::randint(0, 1000, {512}, TensorOptions().dtype(kInt64), &g);
    return forward_and_grads({randn_seeded({512, 1000}, 9)}, [&](const std::vector<Tensor>& x) {
      return softmax(x[0], 1).sum({0}) + log_softmax(x[0], 0).sum({0}) +
             cross_entropy(x[0], target).reshape({1});
    });
  });
  check_same_on_all_thread_counts("layer_norm", [] {
    return forward_and_grads(
        {randn_seeded({4096, 256}, 10), randn_seeded({256}, 11), randn_seeded({256}, 12)},
        [](const std::vector<Tensor>& x) { return layer_norm(x[0], {256}, x[1], x[2]); });
  });
  check_same_on_all_thread_counts("scaled dot-product attention", [] {
    return forward_and_grads({randn_seeded({4, 4, 128, 32}, 13), randn_seeded({4, 4, 128, 32}, 14),
                              randn_seeded({4, 4, 128, 32}, 15)},
                             [](const std::vector<Tensor>& x) {
                               return scaled_dot_product_attention(x[0], x[1], x[2]);
                             });
  });
  check_same_on_all_thread_counts("embedding backward (scatter-add) and dropout", [] {
    Generator g(16);
    Tensor idx = Tensor::randint(0, 500, {64, 100}, TensorOptions().dtype(kInt64), &g);
    return forward_and_grads({randn_seeded({500, 64}, 17)}, [&](const std::vector<Tensor>& x) {
      Generator gd(18);
      return dropout(embedding(x[0], idx), 0.3, true, &gd);
    });
  });
}

TEST_CASE("thread count: every op of the op list, forward and gradients, bit-identical") {
  size_t compared = 0;
  for (const oplist::OpCase& c : oplist::op_cases()) {
    compared += check_same_on_all_thread_counts(c.name, [&] {
      oplist::Inputs leaves = oplist::make_inputs(c, kFloat32);
      Tensor out = oplist::call(c, leaves);
      std::vector<Tensor> r{out};
      if (c.has_grad() && out.requires_grad()) {
        Tensor w = Tensor::ones(out.shape(), out.options().requires_grad(false));
        (out * w).sum().backward();
        for (const Tensor& t : leaves) r.push_back(t.grad());
      }
      return r;
    });
  }
  CHECK(compared > 100);
}

namespace {

// The benchmark inputs of case c, cut to a quarter along dim 0 when they are 1M elements or more
// (elementwise ops, reductions, pooling, convolutions at [64, 64, 32, 32], ...): a quarter is
// still 256K elements, 8 times the per-thread grain (kElementwiseGrain = 32768), so every
// parallel kernel still splits the work into 3 blocks on 3 threads, at a quarter of the cost. The
// inputs cut are those shaped like input 0 (a [1024] bias of a [1024, 1024] input stays as it
// is); a case with index or fixed inputs (embedding: indices into the rows) keeps its sizes.
oplist::OpCase threshold_size_case(const oplist::OpCase& c) {
  oplist::OpCase small = c;
  const Shape first = c.bench.front().shape;
  if (first.empty() || first.numel() < (int64_t{1} << 20) || first[0] % 4 != 0) return small;
  for (const oplist::Arg& a : c.bench)
    if (a.kind == oplist::Arg::Kind::Index || a.kind == oplist::Arg::Kind::Fixed) return small;
  for (oplist::Arg& a : small.bench)
    if (a.shape == first) a.shape[0] /= 4;
  // Still far above the threshold: at least 8 grains, so parallel_for hands 3 threads 3 blocks.
  CHECK_MESSAGE(small.bench.front().shape.numel() >= 8 * cpu::kElementwiseGrain, c.name);
  return small;
}

}  // namespace

TEST_CASE("thread count: every op of the op list at its benchmark size, bit-identical") {
  // The benchmark sizes (1M elements for elementwise ops, 512 x 512 products, ...) are large
  // enough that every parallel kernel splits its work across the threads; inputs of 1M elements
  // or more are cut to a quarter (threshold_size_case), which still splits. 1 against 3 threads
  // (3 does not divide the sizes evenly, so the blocks start at odd places). About 4 s of CPU in
  // a Release build; the unoptimised sanitizer build skips it (the Release suite runs it).
#ifndef NDEBUG
  mmgrad::testing::skip_test("benchmark sizes are run by the Release suite only");
  return;
#endif
  size_t compared = 0, cut = 0;
  for (const oplist::OpCase& full : oplist::op_cases()) {
    if (full.bench.empty()) continue;
    const oplist::OpCase c = threshold_size_case(full);
    if (c.bench.front().shape.numel() != full.bench.front().shape.numel()) ++cut;
    compared += check_same_on_all_thread_counts(c.name + " (benchmark size)",
                                                [&] {
                                                  oplist::Inputs leaves = oplist::make_inputs(
                                                      c, kFloat32, kCPU, /*bench=*/true);
                                                  Tensor out = oplist::call(c, leaves);
                                                  std::vector<Tensor> r{out};
                                                  if (c.has_grad() && out.requires_grad()) {
                                                    out.sum().backward();
                                                    for (const Tensor& t : leaves)
                                                      r.push_back(t.grad());
                                                  }
                                                  return r;
                                                },
                                                {3});
  }
  CHECK(compared > 20);
  CHECK(cut > 20);  // the elementwise ops, reductions and pools were cut
}

TEST_CASE("thread count: float32 transcendentals on unaligned views, bit-identical") {
  // Vectorised exp/log/tanh/sigmoid/gelu must give each element the same bits wherever a
  // thread's block starts and however the view is aligned in memory.
  for (int64_t offset : {0, 1, 3, 7}) {
    check_same_on_all_thread_counts("unary ops at offset " + std::to_string(offset), [&] {
      Tensor base = randn_seeded({(1 << 20) + 17}, 20);
      Tensor x = base.narrow(0, offset, 1 << 20);
      return std::vector<Tensor>{exp(x), log(abs(x) + 0.5), tanh(x), sigmoid(x), gelu(x)};
    });
  }
}

TEST_CASE("thread count: an MLP and a CNN trained with Adam and dropout, bit-identical weights") {
  // The example at a test's size: 10 Adam steps of a 128-512-512-10 MLP with dropout
  // (the 512 x 512 layer's products are large enough to be cut into tiles).
  check_same_on_all_thread_counts("MLP training", [] {
    manual_seed(5);
    nn::MLP mlp({128, 512, 512, 10}, nn::Activation::ReLU, 0.1);
    optim::Adam opt(mlp.parameters(), {.lr = 1e-3});
    Generator g(6);
    Tensor x = Tensor::randn({64, 128}, {}, &g);
    Tensor y = Tensor::randint(0, 10, {64}, TensorOptions().dtype(kInt64), &g);
    for (int step = 0; step < 10; ++step) {
      opt.zero_grad();
      cross_entropy(mlp.forward(x), y).backward();
      opt.step();
    }
    return mlp.parameters();
  });
  check_same_on_all_thread_counts("CNN training", [] {
    manual_seed(7);
    nn::Conv2d c1(3, 16, 3, 1, 1), c2(16, 32, 3, 2, 1);
    nn::Linear fc(32 * 8 * 8, 10);
    std::vector<Tensor> params;
    for (nn::Module* m : std::vector<nn::Module*>{&c1, &c2, &fc})
      for (const Tensor& p : m->parameters()) params.push_back(p);
    optim::Adam opt(params, {.lr = 1e-3});
    Generator g(8);
    Tensor x = Tensor::randn({32, 3, 16, 16}, {}, &g);
    Tensor y = Tensor::randint(0, 10, {32}, TensorOptions().dtype(kInt64), &g);
    for (int step = 0; step < 5; ++step) {
      opt.zero_grad();
      Tensor h = relu(c2.forward(relu(c1.forward(x))));
      cross_entropy(fc.forward(h.reshape({32, -1})), y).backward();
      opt.step();
    }
    return params;
  });
}

TEST_CASE("thread count: PCA of 4000 points, bit-identical") {
  check_same_on_all_thread_counts("pca", [] {
    metrics::PCAResult r = metrics::pca(randn_seeded({4000, 96}, 19, kFloat64), 3);
    return std::vector<Tensor>{r.projected, r.components, r.explained_variance};
  });
}
