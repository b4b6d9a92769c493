// conv3d, max_pool3d and adaptive_avg_pool3d (composed from the 2-D ops, ops/conv3d.cpp):
// values against direct loops over the 3-D definitions, the gradient's target in max pooling
// (ties and NaN, PyTorch's rule), float32 against float64, nn::Conv3d / MaxPool3d /
// AdaptiveAvgPool3d, and bad inputs. Their float64 gradchecks over stride / padding / dilation /
// layouts run from the op list (tests/op_list.cpp, group conv3d).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "mmgrad/mmgrad.h"
#include "mmgrad/nn/layers.h"
#include "op_test_util.h"

using namespace mmgrad;
using namespace mmgrad::testing;

namespace {

int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

// The direct definition, nine nested loops:
//   y[n,o,od,oh,ow] = b[o] + sum_{c,kd,kh,kw} x[n, c, od*S - P + kd*D, ...] w[o, c, kd, kh, kw]
std::vector<double> ref_conv3d(const Tensor& xt, const Tensor& wt, const Tensor& bt, Triple3 s,
                               Triple3 p, Triple3 d) {
  auto x = xt.to_vector<double>(), w = wt.to_vector<double>();
  std::vector<double> b = bt.defined() ? bt.to_vector<double>() : std::vector<double>();
  const int64_t N = xt.size(0), C = xt.size(1), D = xt.size(2), H = xt.size(3), W = xt.size(4);
  const int64_t O = wt.size(0), KD = wt.size(2), KH = wt.size(3), KW = wt.size(4);
  const int64_t OD = out_size(D, KD, s.d, p.d, d.d), OH = out_size(H, KH, s.h, p.h, d.h),
                OW = out_size(W, KW, s.w, p.w, d.w);
  std::vector<double> y;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t od = 0; od < OD; ++od)
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow) {
            double acc = b.empty() ? 0.0 : b[static_cast<size_t>(o)];
            for (int64_t c = 0; c < C; ++c)
              for (int64_t kd = 0; kd < KD; ++kd)
                for (int64_t kh = 0; kh < KH; ++kh)
                  for (int64_t kw = 0; kw < KW; ++kw) {
                    const int64_t id = od * s.d - p.d + kd * d.d, ih = oh * s.h - p.h + kh * d.h,
                                  iw = ow * s.w - p.w + kw * d.w;
                    if (id < 0 || id >= D || ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                    acc += x[static_cast<size_t>((((n * C + c) * D + id) * H + ih) * W + iw)] *
                           w[static_cast<size_t>((((o * C + c) * KD + kd) * KH + kh) * KW + kw)];
                  }
            y.push_back(acc);
          }
  return y;
}

// Naive 3-D max pooling: the value and the flat (d, h, w) index of the winner of each window,
// scanning in (d, h, w) order with PyTorch's rule (a larger value or any NaN takes over).
struct MaxRef {
  std::vector<double> y;
  std::vector<int64_t> arg;  // flat index into x
};
MaxRef ref_max_pool3d(const Tensor& xt, Triple3 k, Triple3 s, Triple3 p) {
  if (s.d == 0 && s.h == 0 && s.w == 0) s = k;
  auto x = xt.to_vector<double>();
  const int64_t NC = xt.size(0) * xt.size(1), D = xt.size(2), H = xt.size(3), W = xt.size(4);
  const int64_t OD = out_size(D, k.d, s.d, p.d, 1), OH = out_size(H, k.h, s.h, p.h, 1),
                OW = out_size(W, k.w, s.w, p.w, 1);
  MaxRef r;
  for (int64_t pl = 0; pl < NC; ++pl)
    for (int64_t od = 0; od < OD; ++od)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double best = 0;
          int64_t arg = -1;
          for (int64_t i = 0; i < k.d; ++i)
            for (int64_t j = 0; j < k.h; ++j)
              for (int64_t l = 0; l < k.w; ++l) {
                const int64_t id = od * s.d - p.d + i, ih = oh * s.h - p.h + j,
                              iw = ow * s.w - p.w + l;
                if (id < 0 || id >= D || ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const int64_t src = ((pl * D + id) * H + ih) * W + iw;
                const double v = x[static_cast<size_t>(src)];
                if (arg < 0 || v > best || std::isnan(v)) {
                  best = v;
                  arg = src;
                }
              }
          r.y.push_back(best);
          r.arg.push_back(arg);
        }
  return r;
}

// Naive adaptive average pooling: cell (i, j, l) averages [floor(i D/OD), ceil((i+1) D/OD)) x ...
std::vector<double> ref_adaptive3d(const Tensor& xt, Triple3 o) {
  auto x = xt.to_vector<double>();
  const int64_t NC = xt.size(0) * xt.size(1), D = xt.size(2), H = xt.size(3), W = xt.size(4);
  auto lo = [](int64_t i, int64_t in, int64_t out) { return i * in / out; };
  auto hi = [](int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; };
  std::vector<double> y;
  for (int64_t pl = 0; pl < NC; ++pl)
    for (int64_t i = 0; i < o.d; ++i)
      for (int64_t j = 0; j < o.h; ++j)
        for (int64_t l = 0; l < o.w; ++l) {
          double acc = 0;
          int64_t cnt = 0;
          for (int64_t d = lo(i, D, o.d); d < hi(i, D, o.d); ++d)
            for (int64_t h = lo(j, H, o.h); h < hi(j, H, o.h); ++h)
              for (int64_t w = lo(l, W, o.w); w < hi(l, W, o.w); ++w, ++cnt)
                acc += x[static_cast<size_t>(((pl * D + d) * H + h) * W + w)];
          y.push_back(acc / static_cast<double>(cnt));
        }
  return y;
}

// Small integers in [-2, 2]: equal values in a window are common.
Tensor ties64(const Shape& s, uint64_t seed) {
  Generator g(seed);
  return Tensor::randint(-2, 3, s, kInt64, &g).to(kFloat64);
}

}  // namespace

TEST_CASE("conv3d matches the direct loops over stride, padding and dilation in every axis") {
  struct Case {
    Shape x, w;
    Triple3 s, p, d;
    bool bias;
  };
  const std::vector<Case> cases = {
      {{2, 3, 5, 6, 4}, {4, 3, 3, 3, 3}, 1, 1, 1, true},
      {{1, 2, 7, 5, 6}, {3, 2, 3, 2, 3}, {2, 1, 2}, {1, 0, 2}, {2, 1, 1}, true},
      {{2, 1, 4, 4, 4}, {2, 1, 1, 1, 1}, 1, 0, 1, false},
      {{1, 2, 3, 3, 3}, {2, 2, 3, 3, 3}, 3, 2, 1, true},
      {{1, 1, 6, 3, 3}, {1, 1, 2, 1, 1}, {3, 1, 1}, {2, 0, 0}, {3, 1, 1}, false},
  };
  uint64_t seed = 1;
  for (const Case& c : cases) {
    Tensor x = rnd(c.x, seed++), w = rnd(c.w, seed++);
    Tensor b = c.bias ? rnd({c.w[0]}, seed++) : Tensor();
    Tensor y = conv3d(x, w, b, c.s, c.p, c.d);
    const int64_t OD = out_size(c.x[2], c.w[2], c.s.d, c.p.d, c.d.d);
    const int64_t OH = out_size(c.x[3], c.w[3], c.s.h, c.p.h, c.d.h);
    const int64_t OW = out_size(c.x[4], c.w[4], c.s.w, c.p.w, c.d.w);
    CHECK(y.shape() == Shape{c.x[0], c.w[0], OD, OH, OW});
    CHECK(y.is_contiguous());
    CHECK(max_rel_diff(vals(y), ref_conv3d(x, w, b, c.s, c.p, c.d)) < 1e-12);
    // float32 agrees with float64 to rounding
    Tensor y32 = conv3d(x.to(kFloat32), w.to(kFloat32), b.defined() ? b.to(kFloat32) : Tensor(),
                        c.s, c.p, c.d);
    CHECK(max_rel_diff(vals(y32), vals(y)) < 1e-5);
  }
}

TEST_CASE("conv3d: unbatched input, and a depth-1 kernel equals conv2d on every frame") {
  Tensor x = rnd({2, 3, 4, 5}, 11), w = rnd({3, 2, 2, 3, 2}, 12);
  Tensor y = conv3d(x, w, {}, 1, {1, 1, 0});
  CHECK(y.shape() == Shape{3, 4, 4, 4});
  CHECK(max_rel_diff(vals(y), ref_conv3d(x.unsqueeze(0), w, {}, 1, {1, 1, 0}, 1)) < 1e-12);

  Tensor v = rnd({2, 2, 3, 5, 5}, 13), w1 = rnd({4, 2, 1, 3, 3}, 14);
  Tensor y3 = conv3d(v, w1, {}, 1, {0, 1, 1});
  for (int64_t d = 0; d < 3; ++d) {
    Tensor y2 = conv2d(v.select(2, d), w1.select(2, 0), {}, 1, 1);
    CHECK(max_rel_diff(vals(y3.select(2, d)), vals(y2)) < 1e-12);
  }
}

TEST_CASE("conv3d: float32 backward matches float64") {
  Tensor x = rnd({2, 2, 4, 5, 5}, 21), w = rnd({3, 2, 3, 3, 3}, 22), b = rnd({3}, 23);
  auto grads = [&](DType dt) {
    Tensor xl = x.to(dt).detach().requires_grad_(), wl = w.to(dt).detach().requires_grad_(),
           bl = b.to(dt).detach().requires_grad_();
    Tensor y = conv3d(xl, wl, bl, {1, 2, 1}, 1);
    sum(mul(y, y)).backward();
    return std::vector<Tensor>{xl.grad(), wl.grad(), bl.grad()};
  };
  auto g64 = grads(kFloat64), g32 = grads(kFloat32);
  for (size_t i = 0; i < 3; ++i) CHECK(max_rel_diff(vals(g32[i]), vals(g64[i])) < 1e-4);
}

TEST_CASE("max_pool3d matches the direct loop: values, and the gradient reaches the winner") {
  struct Case {
    Shape x;
    Triple3 k, s, p;
  };
  const std::vector<Case> cases = {{{2, 2, 4, 5, 4}, 3, 2, 1},
                                   {{1, 3, 3, 4, 4}, 2, 1, 1},
                                   {{2, 1, 4, 4, 5}, {2, 2, 3}, 0, 0},
                                   {{1, 2, 5, 3, 5}, {3, 1, 3}, {1, 1, 2}, {1, 0, 1}}};
  uint64_t seed = 31;
  for (const Case& c : cases)
    for (bool ties : {false, true}) {
      CAPTURE(ties);
      // with ties the winner must be the FIRST maximum in (d, h, w) order, as in PyTorch
      Tensor x = ties ? ties64(c.x, seed++) : rnd(c.x, seed++);
      MaxRef r = ref_max_pool3d(x, c.k, c.s, c.p);
      Tensor xl = x.clone().requires_grad_();
      Tensor y = max_pool3d(xl, c.k, c.s, c.p);
      CHECK(vals(y) == r.y);
      Tensor gy = rnd(y.shape(), seed++);
      y.backward(gy);
      std::vector<double> want(static_cast<size_t>(x.numel()), 0.0), g = vals(gy);
      for (size_t i = 0; i < r.arg.size(); ++i) want[static_cast<size_t>(r.arg[i])] += g[i];
      CHECK(max_rel_diff(vals(xl.grad()), want) < 1e-12);
    }
}

TEST_CASE("max_pool3d propagates NaN at the window's last NaN, and -inf padding never wins") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = ties64({1, 1, 3, 3, 3}, 41);
  std::vector<double> v = vals(x);
  v[1] = nan;   // (0, 0, 1)
  v[13] = nan;  // (1, 1, 1)
  x = Tensor::from_vector(v, Shape{1, 1, 3, 3, 3});
  MaxRef r = ref_max_pool3d(x, 2, 1, 0);
  Tensor xl = x.clone().requires_grad_();
  Tensor y = max_pool3d(xl, 2, 1, 0);
  std::vector<double> yv = vals(y);
  for (size_t i = 0; i < yv.size(); ++i) CHECK(std::isnan(yv[i]) == std::isnan(r.y[i]));
  CHECK(std::isnan(yv[0]));
  y.backward(ones_like(y));
  std::vector<double> want(27, 0.0);
  for (int64_t a : r.arg) want[static_cast<size_t>(a)] += 1;
  CHECK(vals(xl.grad()) == want);

  // all values below any padding value: the padded cells (-inf) still never win
  Tensor low = add(rnd({1, 1, 2, 2, 2}, 42), -1e6);
  CHECK(max_rel_diff(vals(max_pool3d(low, 3, 1, 1)), ref_max_pool3d(low, 3, 1, 1).y) == 0);
}

TEST_CASE("adaptive_avg_pool3d matches the direct loop, upsampling and global pooling included") {
  uint64_t seed = 51;
  for (auto [shape, out] : std::vector<std::pair<Shape, Triple3>>{{{2, 2, 5, 4, 7}, {2, 3, 4}},
                                                                  {{1, 1, 2, 3, 2}, {3, 4, 5}},
                                                                  {{2, 3, 4, 4, 4}, 1},
                                                                  {{1, 2, 7, 6, 5}, {3, 6, 2}}}) {
    Tensor x = rnd(shape, seed++);
    Tensor y = adaptive_avg_pool3d(x, out);
    CHECK(y.shape() == Shape{shape[0], shape[1], out.d, out.h, out.w});
    CHECK(max_rel_diff(vals(y), ref_adaptive3d(x, out)) < 1e-12);
  }
  Tensor x = rnd({3, 4, 5, 6}, 59);  // unbatched
  CHECK(max_rel_diff(vals(adaptive_avg_pool3d(x, 1)), vals(mean(x, Shape{1, 2, 3}))) < 1e-12);
}

TEST_CASE("nn::Conv3d, MaxPool3d and AdaptiveAvgPool3d") {
  nn::Conv3d conv(2, 4, 3, {1, 2, 2}, 1);
  CHECK(conv.weight.shape() == Shape{4, 2, 3, 3, 3});
  CHECK(conv.bias.shape() == Shape{4});
  // PyTorch's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = 2 * 27
  const double bound = 1.0 / std::sqrt(54.0);
  for (double v : vals(conv.weight)) CHECK(std::abs(v) <= bound);
  for (double v : vals(conv.bias)) CHECK(std::abs(v) <= bound);
  std::vector<std::string> names;
  for (auto& [name, t] : conv.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"weight", "bias"});
  CHECK(conv.label() == "Conv3d(2, 4, kernel_size=(3, 3, 3), stride=(1, 2, 2), padding=(1, 1, 1))");

  Tensor x = Tensor::randn({2, 2, 4, 8, 8});
  Tensor y = conv.forward(x);
  CHECK(y.shape() == Shape{2, 4, 4, 4, 4});
  CHECK(max_rel_diff(vals(y), vals(conv3d(x, conv.weight, conv.bias, {1, 2, 2}, 1))) == 0);
  CHECK(conv.forward(x.select(0, 1)).shape() == Shape{4, 4, 4, 4});

  nn::MaxPool3d mp(Triple3{1, 2, 2});
  CHECK(mp.forward(y).shape() == Shape{2, 4, 4, 2, 2});
  CHECK(mp.label() == "MaxPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2))");
  CHECK(nn::MaxPool3d(3, 1, 1).label() ==
        "MaxPool3d(kernel_size=(3, 3, 3), stride=(1, 1, 1), padding=(1, 1, 1))");
  nn::AdaptiveAvgPool3d ap(1);
  CHECK(ap.forward(y).shape() == Shape{2, 4, 1, 1, 1});
  CHECK(ap.label() == "AdaptiveAvgPool3d(output_size=(1, 1, 1))");

  auto throws_with = [](auto&& f, const char* text) {
    CHECK_THROWS_WITH_AS(f(), doctest::Contains(text), Error);
  };
  throws_with([&] { conv.forward(Tensor::randn({2, 3, 4, 8, 8})); }, "Conv3d(2, 4");
  throws_with([&] { conv.forward(Tensor::randn({2, 8, 8})); }, "expected [N, 2, D, H, W]");
  throws_with([&] { nn::Conv3d(0, 4, 3); }, "Conv3d: channels must be positive");
  throws_with([&] { nn::Conv3d(2, 4, {3, 0, 3}); }, "Conv3d: got kernel_size (3, 0, 3)");
}

TEST_CASE("conv3d and the 3-D pools reject bad input with an error naming the op") {
  auto throws_with = [](auto&& f, const char* text) {
    CHECK_THROWS_WITH_AS(f(), doctest::Contains(text), Error);
  };
  Tensor x = Tensor::zeros({2, 3, 4, 5, 5}), w = Tensor::zeros({2, 3, 3, 3, 3});
  // conv3d
  throws_with([&] { conv3d(Tensor::zeros({3, 5, 5}), w); }, "conv3d: expected input of shape");
  throws_with(
      [&] {
        conv3d(Tensor::zeros({1, 2, 3, 4, 5, 6}), w);
      },
      "conv3d: expected input of shape");
  throws_with([&] { conv3d(x, Tensor::zeros({2, 3, 3, 3})); }, "conv3d: expected weight of shape");
  throws_with([&] { conv3d(x, Tensor::zeros({2, 4, 3, 3, 3})); }, "expects 4 input channels");
  throws_with([&] { conv3d(x, w, Tensor::zeros({3})); }, "conv3d: expected bias of shape [2]");
  throws_with(
      [&] {
        conv3d(x, Tensor::zeros({2, 3, 5, 3, 3}));
      },
      "conv3d: input [2, 3, 4, 5, 5] padded to 4x5x5 is smaller than the (dilated) kernel "
      "5x3x3");
  throws_with(
      [&] {
        conv3d(x, w, {}, 1, 0, {2, 1, 1});
      },
      "smaller than the (dilated) kernel 5x3x3");
  throws_with(
      [&] {
        conv3d(Tensor::zeros({2, 3, 0, 5, 5}), w, {}, 1, 2);
      },
      "conv3d: input needs at least one channel, frame and pixel");
  throws_with([&] { conv3d(x, Tensor::zeros({0, 3, 3, 3, 3})); }, "conv3d: weight has an empty");
  throws_with([&] { conv3d(x, w, {}, {1, 0, 1}); }, "conv3d: stride must be >= 1, got (1, 0, 1)");
  throws_with([&] { conv3d(x, w, {}, 1, {-1, 0, 0}); }, "conv3d: padding must be >= 0");
  throws_with([&] { conv3d(x, w, {}, 1, 0, 0); }, "conv3d: dilation must be >= 1");
  throws_with([&] { conv3d(x, w.to(kFloat64)); }, "conv3d");
  throws_with([&] { conv3d(x.to(kInt64), w); }, "conv3d");
  throws_with([&] { conv3d(Tensor(), w); }, "conv3d");
  // max_pool3d
  throws_with(
      [&] {
        max_pool3d(Tensor::zeros({4, 5, 5}), 2);
      },
      "max_pool3d: expected input of shape [N, C, D, H, W]");
  throws_with([&] { max_pool3d(x, 5); },
              "max_pool3d: input [2, 3, 4, 5, 5] padded to 4x5x5 is smaller than the kernel 5x5x5");
  throws_with([&] { max_pool3d(x, {2, 0, 2}); }, "max_pool3d: kernel_size must be >= 1");
  throws_with([&] { max_pool3d(x, 2, {1, 0, 1}); }, "max_pool3d: stride must be >= 1");
  throws_with(
      [&] {
        max_pool3d(x, 2, 0, {2, 0, 0});
      },
      "max_pool3d: padding must be between 0 and half the kernel size");
  throws_with(
      [&] {
        max_pool3d(Tensor::zeros({1, 1, 0, 3, 3}), 1);
      },
      "max_pool3d: input needs at least one frame and one pixel");
  throws_with([&] { max_pool3d(x.to(kInt64), 2); }, "max_pool3d");
  // adaptive_avg_pool3d
  throws_with(
      [&] {
        adaptive_avg_pool3d(Tensor::zeros({5, 5}), 1);
      },
      "adaptive_avg_pool3d: expected input of shape");
  throws_with(
      [&] {
        adaptive_avg_pool3d(x, {1, 0, 1});
      },
      "adaptive_avg_pool3d: output_size must be >= 1, got (1, 0, 1)");
  throws_with(
      [&] {
        adaptive_avg_pool3d(Tensor::zeros({1, 1, 3, 0, 3}), 1);
      },
      "adaptive_avg_pool3d: input needs at least one frame and one pixel");
}

TEST_CASE("conv3d and the 3-D pools: empty batch and empty channels give empty outputs") {
  Tensor w = rnd({2, 3, 2, 2, 2}, 61);
  Tensor x = Tensor::zeros({0, 3, 3, 3, 3}, TensorOptions(kFloat64)).requires_grad_();
  Tensor wl = w.clone().requires_grad_();
  Tensor y = conv3d(x, wl, {}, 1, 1);
  CHECK(y.shape() == Shape{0, 2, 4, 4, 4});
  sum(y).backward();
  CHECK(x.grad().shape() == x.shape());
  CHECK(vals(wl.grad()) == std::vector<double>(static_cast<size_t>(w.numel()), 0.0));
  CHECK(max_pool3d(Tensor::zeros({2, 0, 4, 4, 4}), 2).shape() == Shape{2, 0, 2, 2, 2});
  CHECK(adaptive_avg_pool3d(Tensor::zeros({0, 2, 4, 4, 4}), 2).shape() == Shape{0, 2, 2, 2, 2});
}
