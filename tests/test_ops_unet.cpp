// The pieces of a diffusion U-Net (issue 15): interpolate (upsampling), group_norm / nn::GroupNorm
// and nn::SiLU. Forward values against hand-computed numbers and against direct loops written
// here from the definitions, PyTorch's coordinate conventions, NaN propagation, the modules'
// parameters, and bad inputs whose messages name the op. Their float64 gradchecks, float32 vs
// float64 and CPU/CUDA parity run from the op list (tests/op_list.cpp).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core_test_util.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/nn/layers.h"

using namespace mmgrad;
using namespace mmgrad::testing;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// (Not op_test_util.h's randn64: this one does not require grad.)
Tensor plain_randn64(const Shape& s, uint64_t seed) {
  Generator g(seed);
  return Tensor::randn(s, kFloat64, &g);
}

// 1-D linear interpolation of the row x (size I) to size O, straight from the definition:
// source coordinate c = (o + 0.5) * scale - 0.5 clamped at 0 (or o * (I - 1) / (O - 1) with
// align_corners), value = x[floor(c)] + (c - floor(c)) * (x[floor(c) + 1] - x[floor(c)]).
std::vector<double> lerp_row(const std::vector<double>& x, int64_t O, double scale, bool align) {
  const int64_t I = static_cast<int64_t>(x.size());
  std::vector<double> y(static_cast<size_t>(O));
  for (int64_t o = 0; o < O; ++o) {
    double c = align ? (O > 1 ? o * double(I - 1) / double(O - 1) : 0.0) : (o + 0.5) * scale - 0.5;
    c = std::max(c, 0.0);
    const int64_t lo = std::min(static_cast<int64_t>(std::floor(c)), I - 1);
    const int64_t hi = std::min(lo + 1, I - 1);
    const double t = std::min(c - double(lo), 1.0);
    y[o] = x[lo] + t * (x[hi] - x[lo]);
  }
  return y;
}

// Bilinear [H, W] -> [OH, OW] by lerping every row, then every column of the result.
std::vector<double> bilinear_plane(const std::vector<double>& x, int64_t H, int64_t W, int64_t OH,
                                   int64_t OW, double sh, double sw, bool align) {
  std::vector<double> rows(static_cast<size_t>(H * OW)), out(static_cast<size_t>(OH * OW));
  for (int64_t h = 0; h < H; ++h) {
    std::vector<double> r(x.begin() + h * W, x.begin() + (h + 1) * W);
    std::vector<double> y = lerp_row(r, OW, sw, align);
    for (int64_t w = 0; w < OW; ++w) rows[h * OW + w] = y[w];
  }
  for (int64_t w = 0; w < OW; ++w) {
    std::vector<double> col(static_cast<size_t>(H));
    for (int64_t h = 0; h < H; ++h) col[h] = rows[h * OW + w];
    std::vector<double> y = lerp_row(col, OH, sh, align);
    for (int64_t h = 0; h < OH; ++h) out[h * OW + w] = y[h];
  }
  return out;
}

}  // namespace

// ---- interpolate --------------------------------------------------------------------------------

TEST_CASE("interpolate: nearest scale 2 repeats each pixel 2x2, its gradient sums the four") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {1, 1, 2, 3}, kFloat64).requires_grad_();
  Tensor y = interpolate(x, {.scale_factor = {2.0}});
  CHECK(y.shape() == Shape{1, 1, 4, 6});
  CHECK(vals(y) == std::vector<double>{1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3,
                                       4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6});
  y.sum().backward();
  CHECK(vals(x.grad()) == std::vector<double>(6, 4.0));
}

TEST_CASE("interpolate: bilinear 2x2 -> 4x4 gives PyTorch's numbers, align_corners both ways") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4}, {1, 1, 2, 2}, kFloat64);
  // F.interpolate(x, scale_factor=2, mode="bilinear") (align_corners=False): output centre
  // (o + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped into [0, 1].
  CHECK(allclose(
      interpolate(x, {.scale_factor = {2.0}, .mode = "bilinear"}),
      {1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0},
      1e-15));
  // align_corners=True to 3x3: the corners stay, the middle is the average.
  CHECK(allclose(interpolate(x, {.size = {3, 3}, .mode = "bilinear", .align_corners = true}),
                 {1.0, 1.5, 2.0, 2.0, 2.5, 3.0, 3.0, 3.5, 4.0}, 1e-15));
  // float32 gives the same numbers (all exact in binary)
  CHECK(allclose(
      interpolate(x.to(kFloat32), {.scale_factor = {2.0}, .mode = "bilinear"}),
      {1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0},
      0.0));
}

TEST_CASE("interpolate: bilinear matches a direct loop on odd sizes, up and down") {
  struct Case {
    Shape in;
    std::vector<int64_t> size;
    std::vector<double> scale;
    bool align;
  };
  const std::vector<Case> cases = {
      {{2, 3, 5, 4}, {7, 9}, {}, false},     {{2, 3, 5, 4}, {3, 2}, {}, false},
      {{1, 2, 5, 4}, {}, {1.7, 2.5}, false}, {{1, 2, 6, 3}, {}, {0.5, 1.5}, false},
      {{2, 1, 5, 4}, {7, 9}, {}, true},      {{1, 1, 3, 4}, {1, 6}, {}, true}};
  for (const Case& c : cases) {
    Tensor x = plain_randn64(c.in, 11);
    const int64_t N = c.in[0], C = c.in[1], H = c.in[2], W = c.in[3];
    InterpolateOptions o{.size = c.size, .scale_factor = c.scale, .mode = "bilinear"};
    if (c.align) o.align_corners = true;
    Tensor y = interpolate(x, o);
    const int64_t OH = y.size(2), OW = y.size(3);
    if (!c.size.empty()) CHECK((OH == c.size[0] && OW == c.size[1]));
    if (!c.scale.empty()) {
      CHECK(OH == static_cast<int64_t>(std::floor(H * c.scale[0])));
      CHECK(OW == static_cast<int64_t>(std::floor(W * c.scale[1])));
    }
    // the scale that maps coordinates: 1 / scale_factor when given, else in / out
    const double sh = c.scale.empty() ? double(H) / OH : 1.0 / c.scale[0];
    const double sw = c.scale.empty() ? double(W) / OW : 1.0 / c.scale[1];
    std::vector<double> xv = vals(x), want;
    for (int64_t p = 0; p < N * C; ++p) {
      std::vector<double> plane(xv.begin() + p * H * W, xv.begin() + (p + 1) * H * W);
      std::vector<double> o2 = bilinear_plane(plane, H, W, OH, OW, sh, sw, c.align);
      want.insert(want.end(), o2.begin(), o2.end());
    }
    INFO(c.in.str(), " -> ", OH, "x", OW, " align ", c.align);
    CHECK(max_rel_diff(vals(y), want) < 1e-14);
  }
}

TEST_CASE("interpolate: scale_factor maps coordinates by 1 / scale_factor unless recomputed") {
  // A ramp x[i] = i: linear interpolation returns the (clamped) source coordinate itself.
  Tensor ramp = Tensor::arange(0.0, 5.0, 1.0, kFloat64).reshape({1, 1, 5});
  // 5 * 1.5 = 7.5 -> 7 outputs. PyTorch maps with 1 / 1.5: c = (o + 0.5) / 1.5 - 0.5;
  // recomputed, with 5 / 7: c = (o + 0.5) * 5 / 7 - 0.5. They differ, e.g. at o = 6.
  std::vector<double> by_scale, by_size;
  for (int o = 0; o < 7; ++o) {
    by_scale.push_back(std::min(std::max((o + 0.5) / 1.5 - 0.5, 0.0), 4.0));
    by_size.push_back(std::min(std::max((o + 0.5) * 5.0 / 7.0 - 0.5, 0.0), 4.0));
  }
  CHECK(allclose(interpolate(ramp, {.scale_factor = {1.5}, .mode = "linear"}), by_scale, 1e-15));
  CHECK(allclose(
      interpolate(ramp, {.scale_factor = {1.5}, .mode = "linear", .recompute_scale_factor = true}),
      by_size, 1e-15));
  CHECK(allclose(interpolate(ramp, {.size = {7}, .mode = "linear"}), by_size, 1e-15));
  CHECK(by_scale[6] == doctest::Approx(3.8333333333333335));
  CHECK(by_size[6] == 4.0);

  // nearest: src = floor(o * scale). 7 * 1.2 = 8.4 -> 8 outputs; 1 / 1.2 reads 5 at o = 7
  // (7 / 1.2 = 5.83), 7 / 8 reads 6 (7 * 0.875 = 6.125).
  Tensor r7 = Tensor::arange(0.0, 7.0, 1.0, kFloat64).reshape({1, 1, 7});
  CHECK(vals(interpolate(r7, {.scale_factor = {1.2}})) ==
        std::vector<double>{0, 0, 1, 2, 3, 4, 5, 5});
  CHECK(vals(interpolate(r7, {.scale_factor = {1.2}, .recompute_scale_factor = true})) ==
        std::vector<double>{0, 0, 1, 2, 3, 4, 5, 6});
  CHECK(vals(interpolate(r7, {.size = {8}})) == std::vector<double>{0, 0, 1, 2, 3, 4, 5, 6});
  // nearest-exact samples pixel centres: floor((o + 0.5) * 7 / 8)
  CHECK(vals(interpolate(r7, {.size = {8}, .mode = "nearest-exact"})) ==
        std::vector<double>{0, 1, 2, 3, 3, 4, 5, 6});
  // downsampling by nearest picks floor(o * 2): every other element from the first
  CHECK(vals(interpolate(r7, {.size = {3}})) == std::vector<double>{0, 2, 4});
}

TEST_CASE("interpolate: nearest matches a direct loop in 1, 2 and 3 spatial dims") {
  // size given: src = min(floor(o * in / out), in - 1) per dim, computed here in double
  for (Shape in : {Shape{2, 3, 5}, Shape{2, 3, 5, 4}, Shape{1, 2, 3, 2, 4}}) {
    Tensor x = plain_randn64(in, 3);
    std::vector<int64_t> size;
    for (int d = 2; d < in.size(); ++d) size.push_back(in[d] * 2 - 1 + (d % 2) * 3);
    Tensor y = interpolate(x, {.size = size});
    Shape out = in;
    for (int d = 2; d < in.size(); ++d) out[d] = size[d - 2];
    REQUIRE(y.shape() == out);
    std::vector<double> xv = vals(x), yv = vals(y);
    bool all = true;
    for (int64_t flat = 0; flat < out.numel(); ++flat) {
      int64_t rem = flat, src = 0, src_stride = 1;
      std::vector<int64_t> idx(out.size());
      for (int d = out.size() - 1; d >= 0; --d) {
        idx[d] = rem % out[d];
        rem /= out[d];
      }
      for (int d = out.size() - 1; d >= 0; --d) {
        int64_t s = d < 2 ? idx[d]
                          : std::min(static_cast<int64_t>(std::floor(
                                         double(idx[d]) * double(in[d]) / double(out[d]))),
                                     in[d] - 1);
        src += s * src_stride;
        src_stride *= in[d];
      }
      all = all && yv[flat] == xv[src];
    }
    INFO(in.str());
    CHECK(all);
  }
}

TEST_CASE("interpolate: NaN reaches every output that reads it, even with weight 0 (PyTorch)") {
  Tensor x = Tensor::from_vector({kNaN, 2, 3, 4}, {1, 1, 2, 2}, kFloat64);
  // Outputs in rows/columns 0..2 read pixel (0, 0) (the edge ones with weight 1 or 0, the
  // inner ones with 0.75 or 0.25); row 3 and column 3 read only the second row / column.
  std::vector<double> y = vals(interpolate(x, {.scale_factor = {2.0}, .mode = "bilinear"}));
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) CHECK(std::isnan(y[r * 4 + c]) == (r < 3 && c < 3));
  std::vector<double> n = vals(interpolate(x, {.scale_factor = {2.0}}));
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) CHECK(std::isnan(n[r * 4 + c]) == (r < 2 && c < 2));
}

TEST_CASE("interpolate: empty batch, same size, non-contiguous input, float32") {
  Tensor e = interpolate(Tensor::zeros({0, 2, 3, 3}), {.scale_factor = {2.0}, .mode = "bilinear"});
  CHECK(e.shape() == Shape{0, 2, 6, 6});
  // The same size is a copy (a new tensor with the same values), as PyTorch.
  Tensor x = plain_randn64({1, 2, 3, 4}, 5);
  Tensor same = interpolate(x, {.size = {3, 4}, .mode = "bilinear"});
  CHECK(vals(same) == vals(x));
  CHECK(same.data_ptr<double>() != x.data_ptr<double>());
  // channels-last storage gives the result of the contiguous input
  Tensor cl = x.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
  CHECK(vals(interpolate(cl, {.size = {5, 7}, .mode = "bilinear"})) ==
        vals(interpolate(x, {.size = {5, 7}, .mode = "bilinear"})));
  // float32 agrees with float64 to float32 rounding
  CHECK(max_rel_diff(vals(interpolate(x.to(kFloat32), {.size = {5, 7}, .mode = "bilinear"})),
                     vals(interpolate(x, {.size = {5, 7}, .mode = "bilinear"}))) < 1e-6);
}

TEST_CASE("interpolate: bad inputs name the op and what was expected") {
  Tensor x = Tensor::zeros({1, 2, 3, 4});
  CHECK_ERROR(interpolate(Tensor::zeros({2, 3}), {.size = {4}}), "interpolate", "[2, 3]");
  CHECK_ERROR(interpolate(Tensor::zeros({1, 1, 1, 1, 1, 1}), {.size = {2}}), "interpolate",
              "[N, C, H, W]");
  CHECK_ERROR(interpolate(x, {.size = {4, 4}, .mode = "bicubic"}), "interpolate", "bicubic");
  CHECK_ERROR(interpolate(x, {.size = {4}, .mode = "linear"}), "interpolate", "\"linear\"", "3-D");
  CHECK_ERROR(interpolate(Tensor::zeros({1, 2, 3}), {.size = {4, 4}, .mode = "bilinear"}),
              "interpolate", "4-D");
  CHECK_ERROR(interpolate(x, {.size = {4, 4}, .align_corners = false}), "interpolate",
              "align_corners");
  CHECK_ERROR(interpolate(x, {}), "interpolate", "neither");
  CHECK_ERROR(interpolate(x, {.size = {4, 4}, .scale_factor = {2.0}}), "interpolate", "both");
  CHECK_ERROR(interpolate(x, {.size = {4, 4, 4}}), "interpolate", "size has 3 values",
              "expected 1 or 2");
  CHECK_ERROR(interpolate(x, {.scale_factor = {2.0, 2.0, 2.0}}), "interpolate", "scale_factor");
  CHECK_ERROR(interpolate(x, {.size = {0, 4}}), "interpolate", "greater than 0", "got 0");
  CHECK_ERROR(interpolate(x, {.size = {-3}}), "interpolate", "greater than 0", "got -3");
  CHECK_ERROR(interpolate(x, {.scale_factor = {0.0}}), "interpolate", "positive");
  CHECK_ERROR(interpolate(x, {.scale_factor = {-2.0}}), "interpolate", "positive");
  CHECK_ERROR(interpolate(x, {.scale_factor = {kNaN}}), "interpolate", "finite");
  CHECK_ERROR(interpolate(x, {.scale_factor = {0.2}}), "interpolate", "greater than 0");
  CHECK_ERROR(interpolate(Tensor::zeros({1, 2, 0, 4}), {.size = {4, 4}}), "interpolate",
              "greater than 0", "[1, 2, 0, 4]");
  CHECK_ERROR(interpolate(Tensor::zeros({1, 0, 3, 4}), {.size = {4, 4}}), "interpolate", "channel");
  CHECK_ERROR(interpolate(Tensor::zeros({1, 2, 3, 4}, kInt64), {.size = {4, 4}}), "interpolate",
              "int64");
  CHECK_ERROR(interpolate(Tensor(), {.size = {4, 4}}), "interpolate");
}

// ---- group_norm ---------------------------------------------------------------------------------

TEST_CASE("group_norm: one group of [[1, 3], [5, 7]] by hand") {
  // mean 4, biased variance (9 + 1 + 1 + 9) / 4 = 5; eps 0: y = (x - 4) / sqrt(5), then the
  // per-channel weight [2, -1] and bias [0.5, 0].
  Tensor x = Tensor::from_vector({1, 3, 5, 7}, {1, 2, 2}, kFloat64);
  const double s = std::sqrt(5.0);
  CHECK(allclose(group_norm(x, 1, {}, {}, 0.0), {-3 / s, -1 / s, 1 / s, 3 / s}, 1e-15));
  Tensor w = Tensor::from_vector({2, -1}, {2}, kFloat64);
  Tensor b = Tensor::from_vector({0.5, 0}, {2}, kFloat64);
  CHECK(allclose(group_norm(x, 1, w, b, 0.0), {-6 / s + 0.5, -2 / s + 0.5, -1 / s, -3 / s}, 1e-15));
  // two groups (one channel each): each row normalised alone, to -1 and 1 (eps 0)
  CHECK(allclose(group_norm(x, 2, {}, {}, 0.0), {-1, 1, -1, 1}, 1e-15));
}

TEST_CASE("group_norm: matches a direct loop for 1 group, some groups and C groups") {
  const int64_t N = 2, C = 6, H = 3, W = 2;
  Tensor x = add(mul(plain_randn64({N, C, H, W}, 7), 3.0), 1.5);
  Tensor w = plain_randn64({C}, 8), b = plain_randn64({C}, 9);
  std::vector<double> xv = vals(x), wv = vals(w), bv = vals(b);
  for (int64_t G : {1, 2, 3, 6}) {
    const int64_t per = C / G * H * W;  // values per (sample, group): consecutive in memory
    std::vector<double> want(xv.size());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < G; ++g) {
        const int64_t start = (n * C + g * (C / G)) * H * W;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < per; ++i) mean += xv[start + i];
        mean /= double(per);
        for (int64_t i = 0; i < per; ++i) var += (xv[start + i] - mean) * (xv[start + i] - mean);
        var /= double(per);
        for (int64_t i = 0; i < per; ++i) {
          const int64_t c = (start + i) / (H * W) % C;
          want[start + i] = (xv[start + i] - mean) / std::sqrt(var + 1e-5) * wv[c] + bv[c];
        }
      }
    INFO("groups ", G);
    CHECK(max_rel_diff(vals(group_norm(x, G, w, b)), want) < 1e-13);
  }
  // groups = 1 is layer norm over [C, H, W] followed by the per-channel affine map
  Tensor ln = layer_norm(x, {C, H, W});
  CHECK(max_rel_diff(vals(group_norm(x, 1, w, b)),
                     vals(add(mul(ln, w.reshape({1, C, 1, 1})), b.reshape({1, C, 1, 1})))) < 1e-14);
  // a non-contiguous input gives the contiguous input's numbers
  Tensor xt = x.transpose(2, 3).contiguous().transpose(2, 3);
  CHECK(vals(group_norm(xt, 3, w, b)) == vals(group_norm(x, 3, w, b)));
}

TEST_CASE("group_norm: NaN stays in its group, an empty batch, no spatial dims") {
  Tensor x = plain_randn64({1, 4, 3}, 2);
  Tensor xn = x.clone();
  {
    NoGradGuard ng;
    xn.narrow(1, 0, 1).narrow(2, 1, 1).fill_(kNaN);  // channel 0, group 0 of 2
  }
  std::vector<double> y = vals(group_norm(xn, 2));
  for (int i = 0; i < 12; ++i) CHECK(std::isnan(y[i]) == (i < 6));
  Tensor w = Tensor::ones({4}, kFloat64).requires_grad_();
  Tensor e = group_norm(Tensor::zeros({0, 4, 3}, kFloat64), 2, w);
  CHECK(e.shape() == Shape{0, 4, 3});
  e.sum().backward();
  CHECK(vals(w.grad()) == std::vector<double>(4, 0.0));
  // [N, C]: groups of C / G features of one sample
  Tensor v = Tensor::from_vector({1, 3, 10, 20}, {1, 4}, kFloat64);
  CHECK(allclose(group_norm(v, 2, {}, {}, 0.0), {-1, 1, -1, 1}, 1e-15));
}

TEST_CASE("group_norm: bad inputs name the op and what was expected") {
  Tensor x = Tensor::zeros({2, 6, 3});
  CHECK_ERROR(group_norm(Tensor::zeros({6}), 2), "group_norm", "at least 2 dimensions", "[6]");
  CHECK_ERROR(group_norm(x, 4), "group_norm", "6 channels", "divisible by num_groups = 4");
  CHECK_ERROR(group_norm(x, 0), "group_norm", "num_groups must be positive", "0");
  CHECK_ERROR(group_norm(x, -2), "group_norm", "num_groups must be positive", "-2");
  CHECK_ERROR(group_norm(x, 2, Tensor::ones({3})), "group_norm", "weight", "[3]", "[C] = [6]");
  CHECK_ERROR(group_norm(x, 2, {}, Tensor::ones({6, 1})), "group_norm", "bias", "[6, 1]");
  CHECK_ERROR(group_norm(x, 2, Tensor::ones({6}, kFloat64)), "group_norm", "float64");
  CHECK_ERROR(group_norm(Tensor::zeros({2, 6}, kInt64), 2), "group_norm", "int64");
  CHECK_ERROR(group_norm(x, 2, {}, {}, -1.0), "group_norm", "eps");
}

// ---- nn::GroupNorm, nn::SiLU
// ----------------------------------------------------------------------

TEST_CASE("nn::GroupNorm: PyTorch's parameters, the functional op's numbers, clear errors") {
  nn::GroupNorm gn(2, 4);
  auto sd = gn.state_dict();
  REQUIRE(sd.size() == 2);
  CHECK(sd[0].first == "weight");
  CHECK(sd[1].first == "bias");
  CHECK(vals(gn.weight) == std::vector<double>(4, 1.0));
  CHECK(vals(gn.bias) == std::vector<double>(4, 0.0));
  CHECK(gn.extra_repr() == "2, 4, eps=1e-05, affine=true");
  CHECK(nn::GroupNorm(1, 3, 1e-5, false).state_dict().empty());
  {
    NoGradGuard ng;
    gn.weight.copy_(Tensor::from_vector({1, 2, 3, 4}, {4}));
    gn.bias.copy_(Tensor::from_vector({0, -1, 0.5, 2}, {4}));
  }
  Tensor x = Tensor::randn({3, 4, 2, 5});
  CHECK(vals(gn.forward(x)) == vals(group_norm(x, 2, gn.weight, gn.bias)));
  // the same in eval mode: no running statistics
  gn.eval();
  CHECK(vals(gn.forward(x)) == vals(group_norm(x, 2, gn.weight, gn.bias)));
  Tensor y = gn.forward(x);
  y.sum().backward();
  CHECK(gn.weight.grad().defined());
  CHECK_ERROR(gn.forward(Tensor::zeros({3, 6, 2})), "GroupNorm", "[3, 6, 2]", "[N, 4, ...]");
  CHECK_ERROR(gn.forward(Tensor::zeros({3, 4}, kFloat64)), "GroupNorm", "float64");
  CHECK_ERROR(nn::GroupNorm(3, 4), "GroupNorm", "divisible");
  CHECK_ERROR(nn::GroupNorm(0, 4), "GroupNorm", "positive");
}

TEST_CASE("nn::SiLU: x * sigmoid(x), by module, by name and in an MLP") {
  nn::SiLU act;
  Tensor x = Tensor::from_vector({1.0, -2.0, 0.0}, {3}, kFloat64);
  // silu(1) = 1 / (1 + e^-1), silu(-2) = -2 / (1 + e^2)
  CHECK(allclose(act.forward(x), {0.7310585786300049, -0.2384058440442351, 0.0}, 1e-15));
  CHECK(act.name() == "SiLU");
  CHECK(act.state_dict().empty());
  CHECK(nn::parse_activation("silu") == nn::Activation::SiLU);
  CHECK(std::string(nn::activation_name(nn::Activation::SiLU)) == "silu");
  CHECK(vals(nn::activate(x, nn::Activation::SiLU)) == vals(silu(x)));
  CHECK(nn::make_activation(nn::Activation::SiLU)->name() == "SiLU");
}

// ---- CUDA ---------------------------------------------------------------------------------------

TEST_CASE("interpolate and group_norm on CUDA match the CPU, forward and gradients") {
  // Both are composed (index_select / mul / add; layer_norm), so this checks the composition on
  // the device: the index and weight tensors built on the host must land on x's device. The op
  // list's parity test runs every case of both ops as well.
  if (!have_gpu("interpolate / group_norm CPU-CUDA parity")) return;
  for (DType dt : {kFloat32, kFloat64}) {
    const double tol = dt == kFloat32 ? 1e-5 : 1e-12;
    Tensor x = plain_randn64({2, 4, 5, 3}, 21).to(dt);
    Tensor w = plain_randn64({4}, 22).to(dt), b = plain_randn64({4}, 23).to(dt);
    Tensor g = plain_randn64({2, 4, 9, 7}, 24).to(dt);
    const std::vector<InterpolateOptions> opts = {
        {.size = {9, 7}},
        {.size = {9, 7}, .mode = "bilinear"},
        {.size = {9, 7}, .mode = "bilinear", .align_corners = true},
        {.size = {9, 7}, .mode = "nearest-exact"}};
    for (const InterpolateOptions& o : opts) {
      Tensor xc = x.detach().requires_grad_(), xg = x.cuda().detach().requires_grad_();
      Tensor yc = interpolate(xc, o), yg = interpolate(xg, o);
      CHECK(yg.is_cuda());
      CHECK(max_rel_diff(vals(yg), vals(yc)) <= tol);
      yc.backward(g);
      yg.backward(g.cuda());
      CHECK(max_rel_diff(vals(xg.grad()), vals(xc.grad())) <= tol);
    }
    Tensor xc = x.detach().requires_grad_(), xg = x.cuda().detach().requires_grad_();
    Tensor wc = w.detach().requires_grad_(), wg = w.cuda().detach().requires_grad_();
    Tensor yc = group_norm(xc, 2, wc, b), yg = group_norm(xg, 2, wg, b.cuda());
    CHECK(max_rel_diff(vals(yg), vals(yc)) <= tol);
    yc.backward(g.narrow(2, 0, 5).narrow(3, 0, 3).contiguous());
    yg.backward(g.narrow(2, 0, 5).narrow(3, 0, 3).contiguous().cuda());
    CHECK(max_rel_diff(vals(xg.grad()), vals(xc.grad())) <= tol);
    CHECK(max_rel_diff(vals(wg.grad()), vals(wc.grad())) <= tol);
  }
}
