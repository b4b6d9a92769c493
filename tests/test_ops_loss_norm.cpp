// Losses, normalisations and dropout: cross_entropy, mse_loss, normalize,
// cosine_similarity, layer_norm, batch_norm, dropout. Values computed by hand,
// special semantics (ignored targets, zero vectors, running statistics, dropout
// masks), and bad inputs whose messages name the op. Their float64 gradchecks,
// float32-vs-float64 forward and CPU/CUDA parity run from the op list
// (tests/op_list.cpp).
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

CrossEntropyOptions ce_opts(Reduction r, double smoothing = 0.0, int64_t ignore = -100) {
  CrossEntropyOptions o;
  o.reduction = r;
  o.label_smoothing = smoothing;
  o.ignore_index = ignore;
  return o;
}

}  // namespace

// ---- cross_entropy
// ---------------------------------------------------------------------------------

TEST_CASE(
    "cross_entropy: label smoothing and ignore_index on a tiny example "
    "by hand") {
  // Row 0: x = [1, 2, 3], target 0, eps = 0.3, C = 3: q = [0.8, 0.1, 0.1],
  //   log p = x - log(e + e^2 + e^3) = [-2.40760596, -1.40760596, -0.40760596],
  //   loss = 0.8 * 2.40760596 + 0.1 * 1.40760596 + 0.1 * 0.40760596
  //   = 2.10760596444438.
  // Row 1: ignored. Row 2: x = [2, 0, -1], target 2: q = [0.1, 0.1, 0.8],
  //   log(e^2 + 1 + e^-1) = 2.16984602, loss = 2.16984602 - (0.1 * 2 - 0.8)
  //   = 2.76984601955629.
  Tensor x = Tensor::from_vector({1, 2, 3, 5, -5, 0, 2, 0, -1}, {3, 3}, kFloat64);
  Tensor t = ints({0, -100, 2});
  Tensor none = cross_entropy(x, t, ce_opts(Reduction::None, 0.3));
  check_approx_each(vals(none), {2.10760596444438, 0.0, 2.76984601955629}, 1e-13);
  CHECK(cross_entropy(x, t, ce_opts(Reduction::Sum, 0.3)).item() ==
        doctest::Approx(2.10760596444438 + 2.76984601955629).epsilon(1e-13));
  // the mean divides by the 2 targets that count, not by 3 rows
  CHECK(cross_entropy(x, t, ce_opts(Reduction::Mean, 0.3)).item() ==
        doctest::Approx(2.438725992000333).epsilon(1e-13));
  // without smoothing row 0 is -log p[0] = 2.40760596444438
  CHECK(cross_entropy(x.narrow(0, 0, 1), t.narrow(0, 0, 1)).item() ==
        doctest::Approx(2.40760596444438).epsilon(1e-13));
  // 1-D logits with a 0-d target
  Tensor one = cross_entropy(x.select(0, 2), ints({2}).reshape({}), ce_opts(Reduction::None, 0.3));
  CHECK(one.dim() == 0);
  CHECK(one.item() == doctest::Approx(2.76984601955629).epsilon(1e-13));
}

TEST_CASE(
    "cross_entropy: ignored rows get zero gradient, others get (softmax "
    "- q) / count") {
  Tensor x = Tensor::from_vector({0.5, -1, 2, 0, 3, 3, 3, 3, -2, 1, 0, 0.25}, {3, 4}, kFloat64)
                 .requires_grad_();
  const double eps = 0.2;
  cross_entropy(x, ints({1, -100, 3}), ce_opts(Reduction::Mean, eps)).backward();
  std::vector<double> g = vals(x.grad()), xv = vals(x.detach());
  for (int c = 0; c < 4; ++c) CHECK(g[4 + c] == 0.0);
  const int64_t target[3] = {1, -1, 3};
  for (int n : {0, 2}) {
    double z = 0;
    for (int c = 0; c < 4; ++c) z += std::exp(xv[n * 4 + c]);
    for (int c = 0; c < 4; ++c) {
      double q = eps / 4 + (c == target[n] ? 1 - eps : 0.0);
      CHECK(g[n * 4 + c] == doctest::Approx((std::exp(xv[n * 4 + c]) / z - q) / 2).epsilon(1e-12));
    }
  }
  // a custom ignore_index that is also a valid class
  Tensor y = x.detach().clone().requires_grad_();
  Tensor l = cross_entropy(y, ints({1, 0, 1}), ce_opts(Reduction::Mean, 0.0, /*ignore=*/1));
  CHECK(l.item() == doctest::Approx(cross_entropy(x.detach().narrow(0, 1, 1), ints({0})).item()));
  l.backward();
  std::vector<double> gy = vals(y.grad());
  for (int c = 0; c < 4; ++c) {
    CHECK(gy[c] == 0.0);
    CHECK(gy[8 + c] == 0.0);
  }
}

TEST_CASE(
    "cross_entropy: every target ignored gives NaN mean (PyTorch's 0/0), "
    "zero gradient") {
  Tensor x = randn64({2, 3}, 1);
  Tensor t = ints({-100, -100});
  Tensor mean = cross_entropy(x, t);
  CHECK(std::isnan(mean.item()));
  CHECK(cross_entropy(x, t, ce_opts(Reduction::Sum)).item() == 0.0);
  mean.backward();
  for (double v : vals(x.grad())) CHECK(v == 0.0);
  // no rows at all: the same rule
  CHECK(std::isnan(cross_entropy(Tensor::zeros({0, 3}), ints({}, {0})).item()));
}

TEST_CASE("cross_entropy: [N, C, d] equals the 2-D loss on the classes-last layout") {
  Tensor x = randn64({2, 4, 3}, 80, false);
  Tensor t = ints({0, 3, 1, 2, 2, -100}, {2, 3});
  Tensor k = cross_entropy(x, t, ce_opts(Reduction::None, 0.1));
  CHECK(k.shape() == Shape{2, 3});
  Tensor flat = cross_entropy(x.permute({0, 2, 1}).reshape({6, 4}), t.reshape({6}),
                              ce_opts(Reduction::None, 0.1));
  check_approx_each(vals(k), vals(flat));
  CHECK(
      cross_entropy(x, t).item() ==
      doctest::Approx(cross_entropy(x.permute({0, 2, 1}).reshape({6, 4}), t.reshape({6})).item()));
}

TEST_CASE("cross_entropy: bad inputs name the op") {
  Tensor x = randn64({4, 6}, 90);
  Tensor t = ints({5, 0, -100, 2});
  expect_error([&] { cross_entropy(x, ints({6, 0, 0, 0})); }, "cross_entropy", "out of range");
  expect_error([&] { cross_entropy(x, ints({-1, 0, 0, 0})); }, "cross_entropy", "ignore");
  expect_error([&] { cross_entropy(x, Tensor::zeros({4})); }, "cross_entropy", "int64");
  expect_error([&] { cross_entropy(x, ints({0, 0, 0})); }, "cross_entropy", "[4]");
  expect_error(
      [&] {
        cross_entropy(x, ints({0, 0, 0, 0}, {4, 1}));
      },
      "cross_entropy", "does not match");
  expect_error([&] { cross_entropy(Tensor::scalar(1.0), ints({0})); }, "cross_entropy", "0-d");
  expect_error(
      [&] {
        cross_entropy(ints({1, 2}, {1, 2}), ints({0}));
      },
      "cross_entropy", "floating");
  expect_error([&] { cross_entropy(x, t, ce_opts(Reduction::Mean, 1.5)); }, "cross_entropy",
               "label_smoothing");
}

// ---- mse_loss
// ------------------------------------------------------------------------------------

TEST_CASE("mse_loss: values by hand, gradients to both arguments") {
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2}, kFloat64).requires_grad_();
  Tensor b = Tensor::from_vector({0, 2, 5, 1}, {2, 2}, kFloat64).requires_grad_();
  // differences 1, 0, -2, 3: squares 1, 0, 4, 9
  check_approx_each(vals(mse_loss(a, b, Reduction::None)), {1, 0, 4, 9});
  CHECK(mse_loss(a, b, Reduction::Sum).item() == 14.0);
  Tensor m = mse_loss(a, b);
  CHECK(m.item() == 3.5);
  m.backward();
  check_approx_each(vals(a.grad()), {0.5, 0, -1, 1.5});  // 2 (a - b) / 4
  check_approx_each(vals(b.grad()), {-0.5, 0, 1, -1.5});
  expect_error([&] { mse_loss(a, b.reshape({4})); }, "mse_loss", "same shape");
  expect_error([&] { mse_loss(a, b.to(kFloat32)); }, "mse_loss", "dtype");
  expect_error([&] { mse_loss(ints({1}), ints({1})); }, "mse_loss", "floating");
  // An empty input is no error: NaN, as in PyTorch (tests/test_empty_inputs.cpp).
  CHECK(std::isnan(mse_loss(Tensor::zeros({0}), Tensor::zeros({0})).item()));
}

// ---- normalize / cosine_similarity
// ---------------------------------------------------------------

TEST_CASE("normalize: values, zero vectors stay finite, bad inputs") {
  Tensor x = Tensor::from_vector({3, 4, 0, 0}, {2, 2}, kFloat64).requires_grad_();
  Tensor y = normalize(x, 1);
  check_approx_each(vals(y), {0.6, 0.8, 0, 0});
  check_approx_each(vals(normalize(x.detach(), 0)), {1, 1, 0, 0});
  y.sum().backward();
  for (double v : vals(x.grad())) CHECK(std::isfinite(v));
  // d/dx of sum(x / ||x||) on the row [3, 4]: (1 - x_i sum(x) / ||x||^2) /
  // ||x||
  check_approx_each(vals(x.grad()), {(1 - 3 * 7 / 25.0) / 5, (1 - 4 * 7 / 25.0) / 5, 1e12, 1e12});
  expect_error([] { normalize(ints({1, 2}), 0); }, "normalize", "floating");
  expect_error([] { normalize(Tensor::zeros({2, 2}), 2); }, "normalize", "out of range");
  expect_error([] { normalize(Tensor::zeros({2}), 0, 0.0); }, "normalize", "eps");
}

TEST_CASE("cosine_similarity: values, broadcasting, zero vectors, bad inputs") {
  Tensor a = Tensor::from_vector({1, 0, 3, 4}, {2, 2}, kFloat64);
  Tensor b = Tensor::from_vector({1, 1, -3, -4}, {2, 2}, kFloat64);
  check_approx_each(vals(cosine_similarity(a, b)), {1 / std::sqrt(2.0), -1}, 1e-15);
  // one vector against a batch: [1, 2] broadcasts against [3, 2]
  Tensor q = Tensor::from_vector({0, 2}, {1, 2}, kFloat64);
  Tensor k = Tensor::from_vector({0, 1, 1, 0, -1, -1}, {3, 2}, kFloat64);
  check_approx_each(vals(cosine_similarity(q, k, -1)), {1, 0, -1 / std::sqrt(2.0)}, 1e-15);
  Tensor z = Tensor::zeros({1, 2}, kFloat64).requires_grad_();
  Tensor c = cosine_similarity(z, k);
  check_approx_each(vals(c), {0, 0, 0});
  c.sum().backward();
  for (double v : vals(z.grad())) CHECK(std::isfinite(v));
  expect_error(
      [&] {
        cosine_similarity(a, Tensor::zeros({3, 2}, kFloat64));
      },
      "cosine_similarity", "broadcast");
  expect_error([&] { cosine_similarity(a, b.to(kFloat32)); }, "cosine_similarity", "dtype");
  expect_error([&] { cosine_similarity(a, b, 2); }, "cosine_similarity", "out of range");
  expect_error([&] { cosine_similarity(ints({1}), ints({1}), 0); }, "cosine_similarity",
               "floating");
}

// ---- layer_norm
// --------------------------------------------------------------------------------

TEST_CASE(
    "layer_norm: rows normalised to mean 0 and variance 1, then scaled "
    "and shifted") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 10, 10, 10, 14}, {2, 4}, kFloat64);
  Tensor y = layer_norm(x, {4}, {}, {}, 0.0);
  // row 0: mean 2.5, biased variance 1.25
  const double r = 1 / std::sqrt(1.25);
  std::vector<double> yv = vals(y);
  check_approx_each({yv.begin(), yv.begin() + 4}, {-1.5 * r, -0.5 * r, 0.5 * r, 1.5 * r}, 1e-14);
  // row 1: 10, 10, 10, 14 -> mean 11, biased variance 3
  const double r1 = 1 / std::sqrt(3.0);
  check_approx_each({yv.begin() + 4, yv.end()}, {-r1, -r1, -r1, 3 * r1}, 1e-14);
  Tensor big = randn64({3, 5, 6}, 40, false) * 7.0 + 3.0;
  Tensor yb = layer_norm(big, {5, 6});
  Tensor m = mean(yb, Shape{1, 2}), v = var(yb, Shape{1, 2}, 0);
  for (double mv : vals(m)) CHECK(std::abs(mv) < 1e-12);
  for (double vv : vals(v)) CHECK(vv == doctest::Approx(1.0).epsilon(1e-5));  // var/(var+eps)
  // weight and bias: y = xhat * w + b, per element of the normalised shape
  Tensor w = Tensor::from_vector({1, 2, 3, 4}, {4}, kFloat64);
  Tensor b = Tensor::from_vector({0, 1, 0, -1}, {4}, kFloat64);
  std::vector<double> ywv = vals(layer_norm(x, {4}, w, b, 0.0));
  check_approx_each({ywv.begin(), ywv.begin() + 4},
                    {-1.5 * r, -0.5 * r * 2 + 1, 0.5 * r * 3, 1.5 * r * 4 - 1}, 1e-14);
  // the fused kernel agrees with the composed definition
  Tensor xr = randn64({4, 3, 5}, 41, false);
  Tensor ref = (xr - mean(xr, Shape{-1}, true)) / sqrt(var(xr, Shape{-1}, 0, true) + 1e-5);
  check_approx_each(vals(layer_norm(xr, {5})), vals(ref), 1e-12);
}

TEST_CASE("layer_norm: bad inputs name the op") {
  Tensor x = Tensor::zeros({2, 3, 4});
  expect_error([&] { layer_norm(x, {3}); }, "layer_norm", "trailing");
  expect_error([&] { layer_norm(x, {2, 3, 4, 1}); }, "layer_norm", "trailing");
  expect_error([&] { layer_norm(x, {}); }, "layer_norm", "empty");
  expect_error([&] { layer_norm(x, {4}, Tensor::ones({3})); }, "layer_norm", "weight");
  expect_error([&] { layer_norm(x, {4}, {}, Tensor::ones({4, 1})); }, "layer_norm", "bias");
  expect_error([&] { layer_norm(x, {4}, Tensor::ones({4}, kFloat64)); }, "layer_norm", "dtype");
  expect_error([&] { layer_norm(ints({1, 2}), {2}); }, "layer_norm", "floating");
}

// ---- batch_norm
// --------------------------------------------------------------------------------

TEST_CASE("batch_norm: training statistics and running-stat update by hand") {
  // channel 0: 1, 2, 3, 6 -> mean 3, biased var 3.5, unbiased 14/3
  // channel 1: 10, 20, 30, 40 -> mean 25, biased var 125, unbiased 500/3
  Tensor x = Tensor::from_vector({1, 10, 2, 20, 3, 30, 6, 40}, {4, 2}, kFloat64);
  Tensor rm = Tensor::zeros({2}, kFloat64), rv = Tensor::ones({2}, kFloat64);
  Tensor y = batch_norm(x, rm, rv, {}, {}, /*training=*/true, 0.1, 0.0);
  const double r0 = 1 / std::sqrt(3.5), r1 = 1 / std::sqrt(125.0);
  check_approx_each(vals(y), {-2 * r0, -15 * r1, -1 * r0, -5 * r1, 0, 5 * r1, 3 * r0, 15 * r1},
                    1e-14);
  // running = 0.9 running + 0.1 batch (unbiased variance)
  check_approx_each(vals(rm), {0.3, 2.5}, 1e-14);
  check_approx_each(vals(rv), {0.9 + 0.1 * 14 / 3.0, 0.9 + 0.1 * 500 / 3.0}, 1e-14);
  // 4-D: per channel over N, H, W; the output has mean 0 and variance ~1 per
  // channel
  Tensor x4 = randn64({3, 2, 2, 3}, 60, false) * 4.0 - 1.0;
  Tensor y4 = batch_norm(x4, {}, {}, {}, {}, true);
  for (double m : vals(mean(y4, Shape{0, 2, 3}))) CHECK(std::abs(m) < 1e-12);
  for (double v : vals(var(y4, Shape{0, 2, 3}, 0))) CHECK(v == doctest::Approx(1.0).epsilon(1e-5));
}

TEST_CASE("batch_norm: eval uses the running statistics and leaves them alone") {
  Tensor x = Tensor::from_vector({1, 10, 2, 20, 3, 30, 6, 40}, {4, 2}, kFloat64);
  Tensor rm = Tensor::from_vector({1, 2}, {2}, kFloat64);
  Tensor rv = Tensor::from_vector({4, 9}, {2}, kFloat64);
  Tensor w = Tensor::from_vector({2, 3}, {2}, kFloat64);
  Tensor b = Tensor::from_vector({0.5, -1}, {2}, kFloat64);
  // channel 0: (x - 1) / 2 * 2 + 0.5;  channel 1: (x - 2) / 3 * 3 - 1
  Tensor y = batch_norm(x, rm, rv, w, b, /*training=*/false, 0.1, 0.0);
  check_approx_each(vals(y), {0.5, 7, 1.5, 17, 2.5, 27, 5.5, 37}, 1e-14);
  check_approx_each(vals(rm), {1, 2});
  check_approx_each(vals(rv), {4, 9});
}

TEST_CASE("batch_norm: bad inputs name the op") {
  Tensor x = Tensor::zeros({4, 3});
  Tensor c = Tensor::zeros({3});
  expect_error([&] { batch_norm(Tensor::zeros({3}), {}, {}, {}, {}, true); }, "batch_norm",
               "at least 2");
  expect_error([&] { batch_norm(x, Tensor::zeros({4}), c, {}, {}, true); }, "batch_norm",
               "running_mean");
  expect_error([&] { batch_norm(x, c, {}, {}, {}, true); }, "batch_norm", "neither");
  expect_error(
      [&] {
        batch_norm(x, {}, {}, Tensor::zeros({2, 3}), {}, true);
      },
      "batch_norm", "weight");
  expect_error(
      [&] {
        batch_norm(Tensor::zeros({1, 3}), {}, {}, {}, {}, true);
      },
      "batch_norm", "more than 1");
  expect_error([&] { batch_norm(x, c.to(kFloat64), c.to(kFloat64), {}, {}, true); }, "batch_norm",
               "dtype");
  expect_error([&] { batch_norm(x, {}, {}, {}, {}, true, 1.5); }, "batch_norm", "momentum");
}

// ---- dropout
// -----------------------------------------------------------------------------------

TEST_CASE(
    "dropout: eval and p = 0 are the identity, p = 1 gives zeros and "
    "zero gradient") {
  Tensor x = randn64({3, 4}, 80);
  CHECK(dropout(x, 0.5, /*training=*/false).same(x));
  CHECK(dropout(x, 0.0, true).same(x));
  Tensor z = dropout(x, 1.0, true);
  for (double v : vals(z)) CHECK(v == 0.0);
  z.sum().backward();
  for (double v : vals(x.grad())) CHECK(v == 0.0);
}

TEST_CASE(
    "dropout: keeps about 1 - p of the elements, scaled by 1 / (1 - p), "
    "same mask back") {
  const double p = 0.3;
  Tensor x = Tensor::ones({100, 100}, kFloat64).requires_grad_();
  Generator g(5);
  Tensor y = dropout(x, p, true, &g);
  std::vector<double> yv = vals(y);
  int64_t kept = 0;
  for (double v : yv) {
    CHECK((v == 0.0 || v == doctest::Approx(1 / (1 - p)).epsilon(1e-15)));
    kept += v != 0.0;
  }
  // 10000 Bernoulli(0.7) draws: standard deviation 0.0046; allow 4 of them
  CHECK(std::abs(static_cast<double>(kept) / 1e4 - (1 - p)) < 0.0184);
  // the backward multiplies by the same mask * scale: with x = 1 that is y
  // itself
  y.backward(Tensor::ones({100, 100}, kFloat64));
  CHECK(vals(x.grad()) == yv);
  // the same generator state gives the same mask; a different one (almost
  // surely) does not
  Generator g2(5), g3(6);
  CHECK(vals(dropout(x.detach(), p, true, &g2)) == yv);
  CHECK(vals(dropout(x.detach(), p, true, &g3)) != yv);
  // the default generator advances between calls
  CHECK(vals(dropout(x.detach(), p, true)) != vals(dropout(x.detach(), p, true)));
}

TEST_CASE("dropout: float32 input, bad inputs") {
  Tensor x = randn64({4, 1, 3}, 81);
  Tensor x32 = Tensor::ones({64}, kFloat32);
  Generator g(3);
  Tensor y32 = dropout(x32, 0.5, true, &g);
  CHECK(y32.dtype() == kFloat32);
  for (double v : vals(y32)) CHECK((v == 0.0 || v == 2.0));
  expect_error([&] { dropout(x, 1.5, true); }, "dropout", "[0, 1]");
  expect_error([&] { dropout(x, -0.1, true); }, "dropout", "[0, 1]");
  expect_error([&] { dropout(x, std::nan(""), true); }, "dropout", "[0, 1]");
  expect_error([&] { dropout(ints({1, 2}), 0.5, true); }, "dropout", "floating");
}
