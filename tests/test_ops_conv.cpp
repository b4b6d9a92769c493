// conv2d and the 2-D pools: values against naive loops, float32 backward, the
// chunked (large batch) path, ties and NaN in max pooling, and bad inputs.
// Their float64 gradchecks over stride / padding / dilation / layouts, float32
// forward and CPU/CUDA parity run from the op list (tests/op_list.cpp).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "mmgrad/mmgrad.h"
#include "op_test_util.h"

using namespace mmgrad;
using namespace mmgrad::testing;

namespace {

// The direct definition, seven nested loops:
//   y[n,o,oh,ow] = b[o] + sum_{c,kh,kw} x[n, c, oh*S - P + kh*D, ow*S - P +
//   kw*D] w[o,c,kh,kw]
std::vector<double> ref_conv(const Tensor& xt, const Tensor& wt, const Tensor& bt, Pair2 s, Pair2 p,
                             Pair2 d) {
  auto x = xt.to_vector<double>(), w = wt.to_vector<double>();
  std::vector<double> b = bt.defined() ? bt.to_vector<double>() : std::vector<double>();
  int64_t N = xt.size(0), C = xt.size(1), H = xt.size(2), W = xt.size(3);
  int64_t O = wt.size(0), KH = wt.size(2), KW = wt.size(3);
  int64_t OH = (H + 2 * p.h - d.h * (KH - 1) - 1) / s.h + 1;
  int64_t OW = (W + 2 * p.w - d.w * (KW - 1) - 1) / s.w + 1;
  std::vector<double> y(static_cast<size_t>(N * O * OH * OW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = b.empty() ? 0.0 : b[o];
          for (int64_t c = 0; c < C; ++c)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                int64_t ih = oh * s.h - p.h + kh * d.h, iw = ow * s.w - p.w + kw * d.w;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += x[((n * C + c) * H + ih) * W + iw] * w[((o * C + c) * KH + kh) * KW + kw];
              }
          y[((n * O + o) * OH + oh) * OW + ow] = acc;
        }
  return y;
}

// Naive pooling over [N, C, H, W]: max (padding never wins) or average (divisor
// KH*KW).
std::vector<double> ref_pool(const Tensor& xt, bool is_max, Pair2 k, Pair2 s, Pair2 p) {
  auto x = xt.to_vector<double>();
  int64_t NC = xt.size(0) * xt.size(1), H = xt.size(2), W = xt.size(3);
  int64_t OH = (H + 2 * p.h - k.h) / s.h + 1, OW = (W + 2 * p.w - k.w) / s.w + 1;
  std::vector<double> y;
  for (int64_t pl = 0; pl < NC; ++pl)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        double acc = is_max ? -INFINITY : 0.0;
        for (int64_t i = 0; i < k.h; ++i)
          for (int64_t j = 0; j < k.w; ++j) {
            int64_t ih = oh * s.h - p.h + i, iw = ow * s.w - p.w + j;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            double v = x[(pl * H + ih) * W + iw];
            acc = is_max ? std::max(acc, v) : acc + v;
          }
        y.push_back(is_max ? acc : acc / static_cast<double>(k.h * k.w));
      }
  return y;
}

// Naive adaptive average pooling: cell i covers [floor(i*H/OH),
// ceil((i+1)*H/OH)).
std::vector<double> ref_adaptive(const Tensor& xt, int64_t OH, int64_t OW) {
  auto x = xt.to_vector<double>();
  int64_t NC = xt.size(0) * xt.size(1), H = xt.size(2), W = xt.size(3);
  std::vector<double> y;
  for (int64_t pl = 0; pl < NC; ++pl)
    for (int64_t i = 0; i < OH; ++i)
      for (int64_t j = 0; j < OW; ++j) {
        int64_t h0 = static_cast<int64_t>(std::floor(double(i) * H / OH));
        int64_t h1 = static_cast<int64_t>(std::ceil(double(i + 1) * H / OH));
        int64_t w0 = static_cast<int64_t>(std::floor(double(j) * W / OW));
        int64_t w1 = static_cast<int64_t>(std::ceil(double(j + 1) * W / OW));
        double acc = 0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) acc += x[(pl * H + h) * W + w];
        y.push_back(acc / static_cast<double>((h1 - h0) * (w1 - w0)));
      }
  return y;
}

struct ConvCase {
  Shape x, w;
  Pair2 stride, pad, dil;
  bool bias;
};

// stride / padding / dilation variants, odd sizes, 1x1 kernels (the no-im2col path), size-1 dims
const std::vector<ConvCase> kConvCases = {
    {{2, 3, 5, 6}, {4, 3, 3, 2}, {2, 1}, {1, 0}, {1, 2}, true},
    {{1, 2, 7, 5}, {3, 2, 3, 3}, 2, 1, 2, true},
    {{2, 3, 4, 4}, {5, 3, 1, 1}, 1, 0, 1, true},   // 1x1: cols are the input itself
    {{2, 3, 4, 4}, {2, 3, 1, 1}, 1, 0, 3, false},  // 1x1 with (irrelevant) dilation
    {{2, 2, 5, 5}, {3, 2, 1, 1}, 2, 1, 1, true},   // 1x1 with stride and padding: im2col again
    {{1, 1, 1, 6}, {2, 1, 1, 3}, {1, 2}, 0, 1, true},
    {{3, 1, 4, 3}, {1, 1, 2, 2}, 1, {0, 1}, 1, false},
    {{1, 2, 3, 3}, {2, 2, 3, 3}, 3, 2, 1, true},  // heavy padding, big stride
    {{1, 2, 3, 1}, {2, 2, 3, 3}, 1, 1, 1, true},  // width 1: whole kernel columns in padding
    {{1, 1, 4, 2}, {1, 1, 2, 3}, {1, 3}, {0, 2}, {1, 2}, true},  // dilated kernel past the edge
};

}  // namespace

TEST_CASE("conv2d: values match a direct 7-loop convolution") {
  uint64_t seed = 1;
  for (const ConvCase& c : kConvCases) {
    CAPTURE(c.x.str());
    CAPTURE(c.w.str());
    Tensor x = rnd(c.x, seed++), w = rnd(c.w, seed++);
    Tensor b = c.bias ? rnd({c.w[0]}, seed++) : Tensor();
    Tensor y = conv2d(x, w, b, c.stride, c.pad, c.dil);
    check_close(y.to_vector<double>(), ref_conv(x, w, b, c.stride, c.pad, c.dil), 1e-12);
  }
  // a hand-computed case: 3x3 input, 2x2 kernel of ones, bias 0.5
  Tensor x = Tensor::arange(0.0, 9.0, 1.0, kFloat32).view({1, 1, 3, 3});
  Tensor w = Tensor::ones({1, 1, 2, 2});
  Tensor y = conv2d(x, w, Tensor::full({1}, 0.5));
  CHECK(y.shape() == Shape{1, 1, 2, 2});
  CHECK(y.to_vector<double>() == std::vector<double>{8.5, 12.5, 20.5, 24.5});
}

TEST_CASE("conv2d: unbatched [C, H, W] input and non-contiguous input/weight/bias") {
  Tensor x = rnd({3, 5, 4}, 40), w = rnd({2, 3, 2, 3}, 41), b = rnd({2}, 42);
  Tensor y = conv2d(x, w, b, 1, 1);
  CHECK(y.shape() == Shape{2, 6, 4});
  check_close(y.to_vector<double>(), ref_conv(x.unsqueeze(0), w, b, 1, 1, 1), 1e-12);
  // channels-last storage read through a permuted view, a transposed weight, a
  // strided bias
  Tensor xl = rnd({2, 5, 4, 3}, 43);  // N H W C
  Tensor xv = xl.permute({0, 3, 1, 2});
  Tensor wl = rnd({3, 2, 2, 3}, 44).transpose(0, 1);  // [2, 3, 2, 3] non-contiguous
  Tensor bs = rnd({4}, 45).slice(0, 0, 4, 2);         // stride 2
  REQUIRE_FALSE(xv.is_contiguous());
  REQUIRE_FALSE(wl.is_contiguous());
  Tensor y2 = conv2d(xv, wl, bs, {2, 1}, {0, 1}, {1, 2});
  check_close(y2.to_vector<double>(),
              ref_conv(xv.contiguous(), wl.contiguous(), bs.contiguous(), {2, 1}, {0, 1}, {1, 2}),
              1e-12);
}

TEST_CASE(
    "conv2d: a batch larger than the im2col workspace runs in chunks, "
    "same results") {
  // 16 channels * 3x3 * 64x64 pixels = 590k column entries per image: 8 images
  // need 2 chunks.
  const int64_t N = 8;
  Tensor x = rnd({N, 16, 64, 64}, 300).requires_grad_();
  Tensor w = rnd({4, 16, 3, 3}, 301).requires_grad_();
  Tensor b = rnd({4}, 302).requires_grad_();
  Tensor gy = rnd({N, 4, 64, 64}, 303);
  Tensor y = conv2d(x, w, b, 1, 1);
  y.backward(gy);
  Tensor gw_sum = Tensor::zeros({4, 16, 3, 3}, kFloat64);
  Tensor gb_sum = Tensor::zeros({4}, kFloat64);
  for (int64_t n = 0; n < N; ++n) {
    Tensor xn = x.detach().narrow(0, n, 1).contiguous().requires_grad_();
    Tensor wn = w.detach().requires_grad_(), bn = b.detach().requires_grad_();
    Tensor yn = conv2d(xn, wn, bn, 1, 1);
    yn.backward(gy.narrow(0, n, 1).contiguous());
    check_close(yn.to_vector<double>(), y.narrow(0, n, 1).to_vector<double>(), 1e-12);
    check_close(xn.grad().to_vector<double>(), x.grad().narrow(0, n, 1).to_vector<double>(), 1e-12);
    gw_sum.add_(wn.grad());
    gb_sum.add_(bn.grad());
  }
  check_close(w.grad().to_vector<double>(), gw_sum.to_vector<double>(), 1e-10);
  check_close(b.grad().to_vector<double>(), gb_sum.to_vector<double>(), 1e-10);
  // spot-check one output against the direct definition
  Tensor x0 = x.detach().narrow(0, 5, 1);
  auto ref = ref_conv(x0.contiguous(), w.detach(), b.detach(), 1, 1, 1);
  check_close(y.detach().narrow(0, 5, 1).to_vector<double>(), ref, 1e-12);
}

TEST_CASE("conv2d: float32 backward agrees with float64") {
  Tensor x = rnd({2, 3, 6, 5}, 400), w = rnd({4, 3, 3, 3}, 401), b = rnd({4}, 402);
  Tensor x64 = x.detach().requires_grad_(), w64 = w.detach().requires_grad_();
  Tensor x32 = x.to(kFloat32).requires_grad_(), w32 = w.to(kFloat32).requires_grad_();
  Tensor g = rnd({2, 4, 3, 3}, 403);
  conv2d(x64, w64, {}, 2, 1).backward(g);
  conv2d(x32, w32, {}, 2, 1).backward(g.to(kFloat32));
  check_close(x32.grad().to_vector<double>(), x64.grad().to_vector<double>(), 1e-5);
  check_close(w32.grad().to_vector<double>(), w64.grad().to_vector<double>(), 1e-5);
}

TEST_CASE("conv2d: empty batch") {
  Tensor x = Tensor::zeros({0, 2, 4, 4}, kFloat64).requires_grad_();
  Tensor w = rnd({3, 2, 3, 3}, 500).requires_grad_();
  Tensor y = conv2d(x, w, {}, 1, 1);
  CHECK(y.shape() == Shape{0, 3, 4, 4});
  y.sum().backward();
  CHECK(w.grad().abs().sum().item() == 0.0);
  CHECK(x.grad().shape() == x.shape());
}

TEST_CASE("conv2d: bad inputs name the op and what was expected") {
  Tensor x = Tensor::zeros({1, 3, 5, 5}), w = Tensor::zeros({2, 3, 3, 3});
  auto throws_with = [](auto&& f, const char* text) {
    CHECK_THROWS_WITH_AS(f(), doctest::Contains(text), Error);
  };
  throws_with([&] { conv2d(Tensor::zeros({3, 5}), w); }, "conv2d: expected input of shape");
  throws_with([&] { conv2d(x, Tensor::zeros({2, 3, 3})); }, "conv2d: expected weight of shape");
  throws_with([&] { conv2d(x, Tensor::zeros({2, 4, 3, 3})); }, "expects 4 input channels");
  throws_with([&] { conv2d(x, w, Tensor::zeros({3})); }, "conv2d: expected bias of shape [2]");
  throws_with([&] { conv2d(x, w, {}, 0); }, "conv2d: stride must be >= 1");
  throws_with([&] { conv2d(x, w, {}, 1, -1); }, "conv2d: padding must be >= 0");
  throws_with([&] { conv2d(x, w, {}, 1, 0, {1, 0}); }, "conv2d: dilation must be >= 1");
  throws_with([&] { conv2d(x, w, {}, 1, 0, 3); }, "smaller than the (dilated) kernel 7x7");
  throws_with([&] { conv2d(Tensor::zeros({1, 3, 2, 2}), w); }, "conv2d: input [1, 3, 2, 2]");
  throws_with([&] { conv2d(x.to(kFloat64), w); }, "conv2d: expected tensors of the same dtype");
  throws_with([&] { conv2d(x.to(kInt64), w.to(kInt64)); }, "conv2d: expected a floating-point");
  throws_with([&] { conv2d(x, w, Tensor::zeros({2}, kFloat64)); }, "same dtype");
  throws_with(
      [&] {
        conv2d(Tensor::zeros({1, 3, 0, 5}), w);
      },
      "at least one channel and one pixel");
  throws_with([&] { conv2d(x, Tensor::zeros({0, 3, 3, 3})); }, "weight has an empty dimension");
}

// ---- pooling
// -----------------------------------------------------------------------------------

TEST_CASE("max_pool2d / avg_pool2d: values match naive loops") {
  struct PoolCase {
    Shape x;
    Pair2 k, s, p;
  };
  std::vector<PoolCase> cases = {
      {{2, 3, 6, 6}, 2, 0, 0},           {{1, 2, 7, 5}, 3, 2, 1},
      {{2, 1, 5, 6}, {3, 2}, 1, {1, 1}}, {{1, 1, 1, 4}, {1, 2}, 1, 0},
      {{1, 2, 4, 4}, 4, 0, 2},           {{3, 2, 5, 3}, {2, 3}, {2, 1}, {1, 0}}};
  uint64_t seed = 600;
  for (const auto& c : cases) {
    CAPTURE(c.x.str());
    Tensor x = rnd(c.x, seed++);
    Pair2 s = (c.s.h == 0 && c.s.w == 0) ? c.k : c.s;
    check_close(max_pool2d(x, c.k, c.s, c.p).to_vector<double>(), ref_pool(x, true, c.k, s, c.p),
                1e-14);
    check_close(avg_pool2d(x, c.k, c.s, c.p).to_vector<double>(), ref_pool(x, false, c.k, s, c.p),
                1e-12);
  }
  // by hand: 4x4 arange, 2x2 windows
  Tensor x = Tensor::arange(0.0, 16.0, 1.0, kFloat32).view({1, 1, 4, 4});
  CHECK(max_pool2d(x, 2).to_vector<double>() == std::vector<double>{5, 7, 13, 15});
  CHECK(avg_pool2d(x, 2).to_vector<double>() == std::vector<double>{2.5, 4.5, 10.5, 12.5});
  // padding counts in the divisor: the corner window of a 3x3 pool with padding
  // 1 sees 4 values
  Tensor ones = Tensor::ones({1, 1, 3, 3});
  CHECK(avg_pool2d(ones, 3, 1, 1).at({0, 0, 0, 0}) == doctest::Approx(4.0 / 9.0));
  // unbatched input
  Tensor xu = rnd({2, 4, 4}, 650);
  CHECK(max_pool2d(xu, 2).shape() == Shape{2, 2, 2});
  check_close(max_pool2d(xu, 2).to_vector<double>(), ref_pool(xu.unsqueeze(0), true, 2, 2, 0),
              1e-14);
  // a NaN wins the max
  Tensor xn = Tensor::from_vector({1.0, NAN, 3.0, 4.0}, {1, 1, 2, 2}, kFloat64);
  CHECK(std::isnan(max_pool2d(xn, 2).item()));
}

TEST_CASE(
    "max_pool2d: ties route the gradient to the first maximum, NaN to the last "
    "NaN (unpadded and padded)") {
  // One 2x4 image, two 2x2 windows: [3 3 | 1 NaN] over [3 0 | NaN 9]. Window 0
  // has three tied maxima (the first, top-left, wins); window 1 has two NaNs
  // (the last, bottom-left, wins: PyTorch's scan, v > max || isnan(v)).
  for (DType dt : {kFloat32, kFloat64}) {
    for (int64_t pad : {0, 1}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(pad);
      Tensor x = Tensor::from_vector({3.0, 3.0, 1.0, NAN, 3.0, 0.0, NAN, 9.0}, {1, 1, 2, 4}, dt)
                     .requires_grad_();
      Tensor y = pad == 0 ? max_pool2d(x, 2) : max_pool2d(x, 2, 2, 1);
      std::vector<double> yv = y.to_vector<double>();
      y.backward(ones_like(y));
      std::vector<double> gx = x.grad().to_vector<double>();
      if (pad == 0) {
        REQUIRE(yv.size() == 2);
        CHECK(yv[0] == 3.0);
        CHECK(std::isnan(yv[1]));
        CHECK(gx == std::vector<double>{1, 0, 0, 0, 0, 0, 1, 0});
      } else {
        // padded windows (2x3 outputs): row 0 sees [3], [3 1], [NaN]; row 1
        // [3], [0 NaN], [9]
        REQUIRE(yv.size() == 6);
        CHECK(gx == std::vector<double>{1, 1, 0, 1, 1, 0, 1, 1});
      }
    }
  }
  // Random inputs with many ties (small integers), several window shapes and
  // strides: the gradient (a scatter at the argmax) matches the first maximum
  // of each window.
  Generator gen(77);
  for (auto [k, s] : std::vector<std::pair<Pair2, Pair2>>{{2, 2}, {3, 1}, {{2, 3}, {1, 2}}}) {
    Tensor x = Tensor::randint(0, 3, {2, 3, 7, 8}, kInt64, &gen).to(kFloat32).requires_grad_();
    Tensor y = max_pool2d(x, k, s);
    y.backward(ones_like(y));
    std::vector<double> xv = x.to_vector<double>(), gx = x.grad().to_vector<double>();
    std::vector<double> want(xv.size(), 0.0);
    const int64_t OH = y.size(2), OW = y.size(3);
    for (int64_t p = 0; p < 6; ++p)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          int64_t best = -1;
          for (int64_t i = 0; i < k.h; ++i)
            for (int64_t j = 0; j < k.w; ++j) {
              int64_t at = p * 56 + (oh * s.h + i) * 8 + ow * s.w + j;
              if (best < 0 || xv[at] > xv[best]) best = at;
            }
          want[best] += 1.0;
        }
    CHECK(gx == want);
  }
}

TEST_CASE("adaptive_avg_pool2d: values match naive loops, shrinking and growing") {
  uint64_t seed = 700;
  for (auto [shape, out] : std::vector<std::pair<Shape, Pair2>>{{{2, 3, 7, 5}, {3, 2}},
                                                                {{1, 2, 4, 4}, 1},
                                                                {{1, 1, 2, 3}, {5, 4}},
                                                                {{2, 2, 6, 6}, {6, 6}},
                                                                {{1, 1, 5, 1}, {2, 1}}}) {
    CAPTURE(shape.str());
    Tensor x = rnd(shape, seed++);
    Tensor y = adaptive_avg_pool2d(x, out);
    CHECK(y.shape() == Shape{shape[0], shape[1], out.h, out.w});
    check_close(y.to_vector<double>(), ref_adaptive(x, out.h, out.w), 1e-12);
  }
  // output 1x1 is the global mean
  Tensor x = rnd({2, 3, 4, 5}, 710);
  check_close(adaptive_avg_pool2d(x, 1).flatten().to_vector<double>(),
              x.mean(Shape{2, 3}).flatten().to_vector<double>(), 1e-12);
}

TEST_CASE(
    "max_pool2d: the gradient goes to each window's maximum, "
    "accumulating on overlap") {
  // 1x1x3x3 with the maximum in the centre: every 2x2 window (stride 1) picks
  // it
  Tensor x =
      Tensor::from_vector({0.0, 1.0, 0.0, 2.0, 9.0, 3.0, 0.0, 4.0, 0.0}, {1, 1, 3, 3}, kFloat64)
          .requires_grad_();
  max_pool2d(x, 2, 1).sum().backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 0, 0, 0, 4, 0, 0, 0, 0});
}

TEST_CASE("pooling: bad inputs name the op") {
  Tensor x = Tensor::zeros({1, 2, 4, 4});
  auto throws_with = [](auto&& f, const char* text) {
    CHECK_THROWS_WITH_AS(f(), doctest::Contains(text), Error);
  };
  throws_with([&] { max_pool2d(Tensor::zeros({4, 4}), 2); }, "max_pool2d: expected input of shape");
  throws_with([&] { avg_pool2d(x.to(kInt64), 2); }, "avg_pool2d: expected a floating-point");
  throws_with([&] { max_pool2d(x, 0); }, "max_pool2d: kernel_size must be >= 1");
  throws_with([&] { max_pool2d(x, 2, {1, 0}); }, "max_pool2d: stride must be >= 1");
  throws_with([&] { avg_pool2d(x, 2, 1, 2); }, "avg_pool2d: padding must be between 0 and half");
  throws_with([&] { max_pool2d(x, 2, 1, -1); }, "max_pool2d: padding must be between 0 and half");
  throws_with([&] { max_pool2d(x, 5); }, "max_pool2d: input [1, 2, 4, 4] padded to 4x4");
  throws_with([&] { avg_pool2d(Tensor::zeros({1, 2, 0, 4}), 1); }, "at least one pixel");
  throws_with([&] { adaptive_avg_pool2d(x, {0, 2}); }, "adaptive_avg_pool2d: output_size");
  throws_with(
      [&] {
        adaptive_avg_pool2d(Tensor::zeros({2, 2, 2, 2, 2}), 1);
      },
      "adaptive_avg_pool2d: expected input of shape");
}

TEST_CASE(
    "max_pool2d: the branch-free no-padding path keeps the first maximum "
    "and the last NaN") {
  // Small integers give many ties; NaNs are sprinkled in; strides smaller than,
  // equal to and larger than the window. The argmax is read back through the
  // gradient (ones upstream), and both are compared with a naive loop (first
  // maximum wins; the last NaN of a window wins, as in PyTorch).
  Generator gen(901);
  for (int64_t k : {1, 2, 3})
    for (int64_t s : {1, 2, 3})
      for (DType dt : {kFloat32, kFloat64}) {
        const int64_t N = 2, C = 3, H = 7, W = 8;
        std::vector<double> xv =
            (Tensor::rand({N, C, H, W}, kFloat64, &gen) * 4.0).to(kInt64).to_vector<double>();
        std::vector<double> u = Tensor::rand({N * C * H * W}, kFloat64, &gen).to_vector<double>();
        for (size_t i = 0; i < xv.size(); ++i)
          if (u[i] < 0.05) xv[i] = NAN;
        Tensor x = Tensor::from_vector(xv, {N, C, H, W}, dt).requires_grad_();
        Tensor y = max_pool2d(x, k, s);
        y.backward(Tensor::ones(y.shape(), dt));
        const int64_t OH = (H - k) / s + 1, OW = (W - k) / s + 1;
        std::vector<double> yv = y.to_vector<double>(), gv = x.grad().to_vector<double>();
        std::vector<double> yref, gref(xv.size(), 0.0);
        for (int64_t p = 0; p < N * C; ++p)
          for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow) {
              double best = 0;
              int64_t arg = -1;
              for (int64_t kh = 0; kh < k; ++kh)
                for (int64_t kw = 0; kw < k; ++kw) {
                  const int64_t src = p * H * W + (oh * s + kh) * W + ow * s + kw;
                  const double v = xv[static_cast<size_t>(src)];
                  if (arg < 0 || v > best || std::isnan(v)) best = v, arg = src;
                }
              yref.push_back(best);
              gref[static_cast<size_t>(arg)] += 1.0;
            }
        INFO("k=" << k << " s=" << s << " " << dtype_name(dt));
        REQUIRE(yv.size() == yref.size());
        int mismatches = 0;
        for (size_t i = 0; i < yv.size(); ++i)
          mismatches += !(yv[i] == yref[i] || (std::isnan(yv[i]) && std::isnan(yref[i])));
        CHECK(mismatches == 0);
        CHECK(gv == gref);
      }
}
