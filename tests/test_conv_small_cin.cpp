// The first-layer fast paths of the Fashion-MNIST CNN step:
//  - conv2d with C <= 3 input channels (kernels/cpu/conv_small_cin.cpp): forward, input and
//    weight gradients against the float32 im2col reference and float64, at edge shapes
//    (stride 1 and 2, padding 0/1/2, dilation, odd sizes, rows narrower and wider than a vector,
//    batch 1, C = 1..3, Cout not a multiple of 8 or 16), the same bits on 1, 2 and 3 threads,
//    and non-finite inputs reaching exactly the outputs the reference reaches;
//  - the 2x2/2 max pool (kernels/cpu/max_pool2x2.cpp, which the CPU backend runs for float32
//    2x2/2 pools): the same outputs, argmax and gradient bits as the rule written per element
//    (kernel_math.h), ties and NaN included, odd sizes;
//  - adaptive average pooling to the input's own size: the identity, both ways.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "conv_test_util.h"
#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/kernels/kernel_math.h"
#include "mmgrad/mmgrad.h"
#include "op_test_util.h"

using namespace mmgrad;
using namespace mmgrad::testing;

namespace {

struct Case {
  int64_t N, C, H, W, Cout, K;
  int64_t stride, pad, dil;
};

std::string describe(const Case& c) {
  return "N " + std::to_string(c.N) + " C " + std::to_string(c.C) + " " + std::to_string(c.H) +
         "x" + std::to_string(c.W) + " Cout " + std::to_string(c.Cout) + " k " +
         std::to_string(c.K) + " s " + std::to_string(c.stride) + " p " + std::to_string(c.pad) +
         " d " + std::to_string(c.dil);
}

// The same case in the shared fixture's terms (square kernel, equal strides, with a bias), and
// its forward + backward run (conv_test_util.h).
ConvCase conv_case(const Case& c) {
  return {
      c.N, c.C, c.H, c.W, c.Cout, c.K, c.K, {c.stride, c.stride}, {c.pad, c.pad}, {c.dil, c.dil},
      true};
}
Grads run(const Case& c, DType dt, uint64_t seed) { return run_conv(conv_case(c), dt, seed); }

const std::vector<Case>& edge_cases() {
  static const std::vector<Case> cases = {
      {3, 1, 28, 28, 16, 3, 1, 1, 1},  // lesson 04's first layer (rows of 28: 16 + shifted 16)
      {1, 1, 5, 7, 3, 3, 1, 0, 1},     // batch 1, no padding, rows narrower than a vector
      {2, 3, 17, 19, 5, 3, 1, 1, 1},   // 3 channels, odd sizes
      {2, 2, 13, 33, 17, 3, 2, 1, 1},  // stride 2, Cout past one block of 8 and of 16
      {1, 3, 9, 11, 8, 3, 2, 2, 1},    // padding 2 (past the kernel's half)
      {2, 1, 12, 40, 9, 3, 1, 2, 2},   // dilation 2
      {1, 3, 23, 21, 16, 7, 2, 3, 1},  // ResNet's stem, smaller
      {2, 2, 6, 16, 1, 5, 1, 0, 1},    // one output channel, exactly one vector wide
      {9, 1, 10, 9, 4, 3, 2, 0, 1},    // stride 2, odd width: lanes past OW read real pixels
      {17, 1, 8, 8, 6, 1, 1, 0, 1},    // 1x1 kernel, images in more than two weight blocks
  };
  return cases;
}

}  // namespace

TEST_CASE("conv_small_cin: forward and both gradients match im2col and float64 at edge shapes") {
  uint64_t seed = 300;
  for (const Case& c : edge_cases()) {
    INFO(describe(c));
    Grads got = run(c, kFloat32, seed);
    Grads want64 = run(c, kFloat64, seed);
    Grads want;
    {
      FastPath ref(false);
      want = run(c, kFloat32, seed);
    }
    seed += 10;
    for (const Grads* r : {&want64, &want}) {
      CHECK(scaled_diff(got.y, r->y) < 2e-6);
      CHECK(scaled_diff(got.gx, r->gx) < 2e-6);
      CHECK(scaled_diff(got.gw, r->gw) < 2e-6);
      CHECK(scaled_diff(got.gb, r->gb) < 2e-6);
    }
  }
}

TEST_CASE("conv_small_cin: the same bits on 1, 2 and 3 threads") {
  const std::vector<Case> cases = {
      {40, 1, 28, 28, 16, 3, 1, 1, 1},  // many weight blocks, threaded
      {12, 3, 30, 29, 20, 3, 2, 1, 1},
  };
  expect_same_bits_on_1_2_3_threads(
      cases, [](const Case& c) { return run(c, kFloat32, 11); },
      [](const Case& c) { return describe(c); });
}

TEST_CASE("conv_small_cin: an inf pixel reaches the weights that read it, and no others") {
  // stride 2 and an odd width: column 8 is read by the kernel's last column only. The weight
  // gradient of each tap must be non-finite exactly where the reference's is.
  const Case c{1, 1, 5, 9, 3, 3, 2, 0, 1};
  Tensor x = rnd({c.N, c.C, c.H, c.W}, 5, kFloat32);
  x.data_ptr<float>()[2 * 9 + 8] = std::numeric_limits<float>::infinity();  // row 2, column 8
  auto grads = [&](bool fast) {
    cpu::set_conv2d_fast_path(fast);
    Tensor xx = x.clone(), w = rnd({c.Cout, c.C, c.K, c.K}, 6, kFloat32).requires_grad_();
    conv2d(xx, w, {}, c.stride, c.pad, c.dil).sum().backward();
    return w.grad().to_vector<double>();
  };
  const bool saved = cpu::conv2d_fast_path();
  auto got = grads(true), want = grads(false);
  cpu::set_conv2d_fast_path(saved);
  int non_finite = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    CHECK(std::isfinite(got[i]) == std::isfinite(want[i]));
    non_finite += !std::isfinite(want[i]);
  }
  CHECK(non_finite > 0);
}

namespace {

// The reference max pool of x (float32 [N, C, H, W], 2x2/2): y, argmax, and
// dL/dx for upstream gy.
struct PoolResult {
  std::vector<float> y, gx;
  std::vector<int64_t> arg;
};

Conv2dGeom pool_geom(const Tensor& x) {
  Conv2dGeom g;
  g.N = x.size(0);
  g.C = x.size(1);
  g.H = x.size(2);
  g.W = x.size(3);
  g.KH = g.KW = g.SH = g.SW = 2;
  g.OH = g.H / 2;
  g.OW = g.W / 2;
  return g;
}

// The rule written out per element (kernels/kernel_math.h, the formulas the CUDA kernels run):
// each window's max and argmax in PyTorch's scan order, and each pixel's gradient 0 + gy of the
// window it won (what the general CPU kernel gives, -0 turning into +0 included).
PoolResult reference_pool(const Tensor& x, const Tensor& gy) {
  const Conv2dGeom g = pool_geom(x);
  PoolResult r;
  r.y.resize(static_cast<size_t>(gy.numel()));
  r.arg.resize(r.y.size());
  r.gx.resize(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < gy.numel(); ++i)
    elem::max_pool_value(g, x.data_ptr<float>(), i, &r.y[i], &r.arg[i]);
  for (int64_t i = 0; i < x.numel(); ++i)
    r.gx[i] = elem::max_pool_grad_value(g, gy.data_ptr<float>(), r.arg.data(), 0.0f, i);
  return r;
}

// round(x * scale): values on a coarse grid, so 2x2 windows often hold ties
Tensor rounded(Tensor x, float scale) {
  float* p = x.data_ptr<float>();
  for (int64_t i = 0; i < x.numel(); ++i) p[i] = std::round(p[i] * scale);
  return x;
}

template <class T>
bool same_bits(const std::vector<T>& a, const Tensor& b) {
  return b.numel() == static_cast<int64_t>(a.size()) &&
         std::memcmp(a.data(), b.contiguous().raw_data(), a.size() * sizeof(T)) == 0;
}

}  // namespace

TEST_CASE("max_pool2x2: the same values, argmax and gradient bits as the per-element rule") {
  const std::vector<Shape> shapes = {{2, 3, 28, 28}, {1, 1, 7, 9}, {3, 2, 14, 14},
                                     {1, 2, 5, 67},  {2, 1, 2, 2}, {1, 1, 9, 33}};
  uint64_t seed = 40;
  for (const Shape& s : shapes) {
    INFO(s.str());
    // ties, and a few NaN, -0 and -inf
    Tensor x = rounded(rnd(s, seed++, kFloat32), 3.0f);
    float* xp = x.data_ptr<float>();
    for (int64_t i = 0; i < x.numel(); i += 13) xp[i] = NAN;
    for (int64_t i = 5; i < x.numel(); i += 17) xp[i] = -0.0f;
    for (int64_t i = 7; i < x.numel(); i += 29) xp[i] = -std::numeric_limits<float>::infinity();
    Tensor xg = x.clone().requires_grad_();
    Tensor y = max_pool2d(xg, 2);
    Tensor gy = rnd(y.shape(), seed++, kFloat32);
    gy.data_ptr<float>()[0] = -0.0f;
    y.backward(gy);
    const PoolResult want = reference_pool(x, gy);
    CHECK(same_bits(want.y, y));
    CHECK(same_bits(want.gx, xg.grad()));
  }
}

TEST_CASE("max_pool2x2: the argmax it records is the per-element rule's") {
  // through the autograd node: a gradient of ones lands exactly on the recorded argmax pixels
  Tensor x = rounded(rnd({2, 2, 11, 38}, 9, kFloat32), 2.0f);
  x.data_ptr<float>()[3] = NAN;
  Tensor xg = x.clone().requires_grad_();
  Tensor y = max_pool2d(xg, 2);
  Tensor ones = Tensor::ones(y.shape());
  y.backward(ones);
  const PoolResult want = reference_pool(x, ones);
  CHECK(same_bits(want.gx, xg.grad()));
}

TEST_CASE("adaptive_avg_pool2d to the input's own size is the identity") {
  Tensor x = rnd({3, 4, 7, 5}, 21, kFloat32).requires_grad_();
  Tensor y = adaptive_avg_pool2d(x, {7, 5});
  CHECK(bytes(y) == bytes(x.detach()));
  Tensor gy = rnd(y.shape(), 22, kFloat32);
  y.backward(gy);
  CHECK(bytes(x.grad()) == bytes(gy));
  // a real pooling still averages
  Tensor z = adaptive_avg_pool2d(x.detach(), {1, 1});
  CHECK(scaled_diff(z.view({12}), mean(x.detach().view({12, 35}), Shape{1})) < 1e-6);
}
