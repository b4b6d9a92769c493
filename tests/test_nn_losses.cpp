// Contrastive, pair and triplet losses: values checked by hand (plain C++
// arithmetic on the same numbers), statistical sanity checks, the CLIPLoss
// module and bad-input errors. Their float64 gradchecks, float32 forward and
// CPU/CUDA parity run from the op list (tests/op_list.cpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "mmgrad/mmgrad.h"
#include "mmgrad/nn/losses.h"
#include "mmgrad/optim/optim.h"
#include "op_test_util.h"

using namespace mmgrad;
using namespace mmgrad::testing;
using doctest::Approx;
using doctest::Contains;

namespace {

using Mat = std::vector<std::vector<double>>;

Mat to_mat(const Tensor& t) {
  std::vector<double> v = t.to_vector<double>();
  Mat m(static_cast<size_t>(t.size(0)), std::vector<double>(static_cast<size_t>(t.size(1))));
  for (size_t i = 0; i < m.size(); ++i)
    for (size_t j = 0; j < m[i].size(); ++j) m[i][j] = v[i * m[i].size() + j];
  return m;
}

void normalize_rows(Mat& m) {
  for (auto& row : m) {
    double n = 0;
    for (double x : row) n += x * x;
    n = std::sqrt(n);
    for (double& x : row) x /= n;
  }
}

// mean_i -log softmax(logits[i])[i]
double ce_diagonal(const Mat& logits) {
  double total = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    double mx = *std::max_element(logits[i].begin(), logits[i].end());
    double s = 0;
    for (double z : logits[i]) s += std::exp(z - mx);
    total += -(logits[i][i] - mx - std::log(s));
  }
  return total / static_cast<double>(logits.size());
}

Mat transpose(const Mat& m) {
  Mat t(m[0].size(), std::vector<double>(m.size()));
  for (size_t i = 0; i < m.size(); ++i)
    for (size_t j = 0; j < m[i].size(); ++j) t[j][i] = m[i][j];
  return t;
}

// The CLIP loss of one pair of batches, by hand.
double clip_by_hand(const Tensor& x, const Tensor& y, double logit_scale) {
  Mat a = to_mat(x), b = to_mat(y);
  normalize_rows(a);
  normalize_rows(b);
  const double s = std::exp(std::min(logit_scale, std::log(100.0)));
  Mat logits(a.size(), std::vector<double>(b.size()));
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < b.size(); ++j) {
      double d = 0;
      for (size_t k = 0; k < a[i].size(); ++k) d += a[i][k] * b[j][k];
      logits[i][j] = s * d;
    }
  return 0.5 * (ce_diagonal(logits) + ce_diagonal(transpose(logits)));
}

Tensor scalar64(double v) { return Tensor::scalar(v, kFloat64); }

}  // namespace

// ---- clip_loss
// ----------------------------------------------------------------------------------
TEST_CASE("clip_loss: value matches the formula computed by hand") {
  for (int64_t n : {1, 2, 5}) {
    CAPTURE(n);
    Tensor img = randn64({n, 3}, 10 + n, false), txt = randn64({n, 3}, 20 + n, false);
    for (double scale : {0.0, 1.3, std::log(1 / 0.07), 6.0}) {
      nn::ClipLossResult r = nn::clip_loss(img, txt, scalar64(scale));
      CHECK(r.loss.dim() == 0);
      CHECK(r.loss.item() == Approx(clip_by_hand(img, txt, scale)).epsilon(1e-12));
      CHECK(r.logits_per_image.shape() == Shape{n, n});
      CHECK(r.logits_per_text.shape() == Shape{n, n});
      CHECK(r.logits_per_text.to_vector<double>() ==
            r.logits_per_image.t().contiguous().to_vector<double>());
    }
  }
  // One pair: a single class, so the loss is exactly 0.
  CHECK(nn::clip_loss(randn64({1, 4}, 1, false), randn64({1, 4}, 2, false), scalar64(2.0))
            .loss.item() == 0.0);
}

TEST_CASE("clip_loss: two orthogonal aligned pairs, by hand") {
  // I = T = identity (already unit rows), scale e^s = 10: logits = 10 I, so
  // each row's CE is -log(e^10 / (e^10 + 1)) = log(1 + e^-10), in both
  // directions.
  Tensor e = Tensor::eye(2, kFloat64);
  nn::ClipLossResult r = nn::clip_loss(e, e * 3.0, scalar64(std::log(10.0)));
  CHECK(r.loss.item() == Approx(std::log1p(std::exp(-10.0))).epsilon(1e-12));
  std::vector<double> l = r.logits_per_image.to_vector<double>();
  CHECK(l[0] == Approx(10.0));
  CHECK(l[1] == 0.0);
  CHECK(l[2] == 0.0);
  CHECK(l[3] == Approx(10.0));
}

TEST_CASE("clip_loss: aligned orthogonal embeddings with the maximal scale give ~0") {
  const int64_t n = 8;
  // Scaled one-hot rows: pair i is aligned, every other pair orthogonal.
  Tensor img = Tensor::eye(n, kFloat64) * 2.5;
  Tensor txt = Tensor::eye(n, kFloat64) * 0.5;
  nn::ClipLossResult r = nn::clip_loss(img, txt, scalar64(std::log(100.0)));
  // log(1 + 7 e^-100) ~ 2.6e-43
  CHECK(r.loss.item() >= 0.0);
  CHECK(r.loss.item() < 1e-40);
  // Mismatched order instead: every positive scores 0 while one negative scores
  // 100.
  std::vector<double> rows(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i) rows[i * n + (i + 1) % n] = 1.0;  // text i = e_{i+1}
  Tensor shifted = Tensor::from_vector(rows, {n, n}, kFloat64);
  CHECK(nn::clip_loss(img, shifted, scalar64(std::log(100.0))).loss.item() ==
        Approx(100.0).epsilon(1e-9));
}

TEST_CASE("clip_loss: random embeddings give about log N (statistical, fixed seed)") {
  // With logit_scale = 0 the logits are cosine similarities of random
  // directions in D = 64 dimensions (about N(0, 1/64)): E[loss] ~ log N + (1 -
  // 1/N) / (2 D) ~ log N + 0.007.
  const int64_t n = 16, d = 64;
  double total = 0;
  const int trials = 20;
  for (int t = 0; t < trials; ++t)
    total += nn::clip_loss(randn64({n, d}, 100 + t, false), randn64({n, d}, 200 + t, false),
                           scalar64(0.0))
                 .loss.item();
  const double mean = total / trials;
  MESSAGE("mean CLIP loss of random embeddings: ", mean, " (log N = ", std::log(16.0), ")");
  CHECK(std::abs(mean - std::log(16.0)) < 0.05);
  // The seed notebook's temperature (0.07) sharpens the logits: random pairs
  // then cost more than log N, aligned ones much less.
  Tensor img = randn64({n, d}, 7, false);
  const double sharp =
      nn::clip_loss(img, randn64({n, d}, 8, false), scalar64(std::log(1 / 0.07))).loss.item();
  CHECK(sharp > std::log(16.0));
  CHECK(nn::clip_loss(img, img, scalar64(std::log(1 / 0.07))).loss.item() < 0.01);
}

TEST_CASE("clip_loss: the logit scale is capped at 100") {
  Tensor img = randn64({4, 3}, 1, false), txt = randn64({4, 3}, 2, false);
  const double at_cap = nn::clip_loss(img, txt, scalar64(std::log(100.0))).loss.item();
  CHECK(nn::clip_loss(img, txt, scalar64(9.0)).loss.item() == Approx(at_cap).epsilon(1e-14));
  // Above the cap the scale gets no gradient; the embeddings still do.
  Tensor s = scalar64(9.0).requires_grad_();
  Tensor x = img.clone().requires_grad_();
  nn::clip_loss(x, txt, s).loss.backward();
  REQUIRE(s.grad().defined());
  CHECK(s.grad().item() == 0.0);
  CHECK(x.grad().abs().sum().item() > 0.0);
  // Below the cap it does: d loss / d s = d loss / d logits . logits (chain
  // through exp).
  Tensor s2 = scalar64(1.0).requires_grad_();
  nn::clip_loss(img, txt, s2).loss.backward();
  CHECK(std::abs(s2.grad().item()) > 1e-6);
}

TEST_CASE("clip_loss: bad inputs") {
  Tensor a = randn64({4, 3}, 1, false), s = scalar64(1.0);
  CHECK_THROWS_WITH_AS(nn::clip_loss(a, randn64({5, 3}, 2, false), s),
                       Contains("clip_loss: text_emb"), Error);
  CHECK_THROWS_WITH_AS(nn::clip_loss(a, randn64({4, 2}, 2, false), s), Contains("[4, 2]"), Error);
  CHECK_THROWS_WITH_AS(nn::clip_loss(randn64({4}, 3, false), a, s), Contains("2-D [N, D]"), Error);
  CHECK_THROWS_WITH_AS(nn::clip_loss(a, a.to(kFloat32), s), Contains("float32"), Error);
  CHECK_THROWS_WITH_AS(nn::clip_loss(a.to(kInt64), a.to(kInt64), s), Contains("floating"), Error);
  CHECK_THROWS_WITH_AS(nn::clip_loss(a, a, Tensor::zeros({2}, kFloat64)),
                       Contains("logit_scale must be a 0-d"), Error);
  CHECK_THROWS_WITH_AS(nn::clip_loss(a, a, Tensor::scalar(1.0, kFloat32)), Contains("logit_scale"),
                       Error);
  CHECK_THROWS_WITH_AS(nn::clip_loss(a, a, Tensor()), Contains("undefined"), Error);
  // An empty batch is no error (a NaN loss, as every mean over zero elements), but an embedding
  // of dimension 0 is.
  CHECK_THROWS_WITH_AS(
      nn::clip_loss(Tensor::zeros({3, 0}, kFloat64), Tensor::zeros({3, 0}, kFloat64), s),
      Contains("at least one column"), Error);
}

// ---- three_way_contrastive_loss
// -----------------------------------------------------------------
TEST_CASE(
    "three_way_contrastive_loss: six directional terms, by hand and via "
    "clip_loss") {
  Tensor a = randn64({4, 3}, 51, false), b = randn64({4, 3}, 52, false),
         c = randn64({4, 3}, 53, false);
  for (double scale : {0.5, std::log(1 / 0.07), 7.0}) {
    const double got = nn::three_way_contrastive_loss(a, b, c, scalar64(scale)).item();
    const double by_hand =
        (clip_by_hand(a, b, scale) + clip_by_hand(a, c, scale) + clip_by_hand(b, c, scale)) / 3;
    CHECK(got == Approx(by_hand).epsilon(1e-12));
    const double via_clip = (nn::clip_loss(a, b, scalar64(scale)).loss.item() +
                             nn::clip_loss(a, c, scalar64(scale)).loss.item() +
                             nn::clip_loss(b, c, scalar64(scale)).loss.item()) /
                            3;
    CHECK(got == Approx(via_clip).epsilon(1e-12));
  }
  // All three modalities aligned and orthogonal, large scale: ~0.
  Tensor e = Tensor::eye(5, kFloat64);
  CHECK(nn::three_way_contrastive_loss(e, e * 2.0, e * 0.1, scalar64(std::log(100.0))).item() <
        1e-40);
}

TEST_CASE("three_way_contrastive_loss: bad inputs") {
  Tensor a = randn64({3, 4}, 1, false), s = scalar64(1.0);
  CHECK_THROWS_WITH_AS(nn::three_way_contrastive_loss(a, a, randn64({2, 4}, 2, false), s),
                       Contains("three_way_contrastive_loss: c"), Error);
  CHECK_THROWS_WITH_AS(nn::three_way_contrastive_loss(a, a, a, Tensor::zeros({1, 2}, kFloat64)),
                       Contains("logit_scale"), Error);
}

// ---- pair_contrastive_loss
// ----------------------------------------------------------------------
TEST_CASE("pair_contrastive_loss: values by hand") {
  // cos = 1 (same, target 1): 0;  cos = 0 (different, target 0): 0;
  // cos = 1/sqrt2 with target 1: (1/sqrt2 - 1)^2;  with target 0: 1/2;  cos =
  // -1, target 0: 1.
  Tensor a =
      Tensor::from_vector({1.0, 0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 3.0, 1.0, 1.0}, {5, 2}, kFloat64);
  Tensor b =
      Tensor::from_vector({5.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0, -1.0}, {5, 2}, kFloat64);
  Tensor same = Tensor::from_vector(std::vector<bool>{true, false, true, false, false}, {5});
  const double r = 1 / std::sqrt(2.0);
  const double want = (0 + 0 + (r - 1) * (r - 1) + 0.5 + 1.0) / 5;
  CHECK(nn::pair_contrastive_loss(a, b, same).item() == Approx(want).epsilon(1e-12));
  // Float targets give the same; soft targets are allowed.
  Tensor same_f = Tensor::from_vector({1.0, 0.0, 1.0, 0.0, 0.0}, {5}, kFloat64);
  CHECK(nn::pair_contrastive_loss(a, b, same_f).item() == Approx(want).epsilon(1e-12));
  Tensor soft = Tensor::from_vector({0.5, 0.5, 0.5, 0.5, 0.5}, {5}, kFloat64);
  const double want_soft = (0.25 + 0.25 + (r - 0.5) * (r - 0.5) + (r - 0.5) * (r - 0.5) + 2.25) / 5;
  CHECK(nn::pair_contrastive_loss(a, b, soft).item() == Approx(want_soft).epsilon(1e-12));
  // float32 agrees.
  CHECK(nn::pair_contrastive_loss(a.to(kFloat32), b.to(kFloat32), same).item() ==
        Approx(want).epsilon(1e-6));
}

TEST_CASE("pair_contrastive_loss: bad inputs") {
  Tensor same = Tensor::from_vector(std::vector<bool>{true, false, true, false}, {4});
  Tensor a = randn64({4, 3}, 1, false);
  CHECK_THROWS_WITH_AS(nn::pair_contrastive_loss(a, a, Tensor::ones({3}, kBool)),
                       Contains("pair_contrastive_loss: same must be [N] = [4]"), Error);
  CHECK_THROWS_WITH_AS(nn::pair_contrastive_loss(a, a, Tensor::ones({4}, kInt64)), Contains("bool"),
                       Error);
  CHECK_THROWS_WITH_AS(nn::pair_contrastive_loss(a, randn64({4, 2}, 2, false), same),
                       Contains("must match a"), Error);
}

// ---- triplet_margin_loss
// ------------------------------------------------------------------------
TEST_CASE(
    "triplet_margin_loss: values by hand (PyTorch semantics, eps inside "
    "the norm)") {
  // Row 0: d(a,p) = |(3,4)| = 5, d(a,n) = |(0,1)| = 1: loss 5 - 1 + 1 = 5.
  // Row 1: d(a,p) = 1, d(a,n) = 10: inactive (0).
  Tensor a = Tensor::from_vector({0.0, 0.0, 1.0, 1.0}, {2, 2}, kFloat64);
  Tensor p = Tensor::from_vector({3.0, 4.0, 1.0, 2.0}, {2, 2}, kFloat64);
  Tensor n = Tensor::from_vector({0.0, 1.0, 7.0, 9.0}, {2, 2}, kFloat64);
  Tensor none = nn::triplet_margin_loss(a, p, n, 1.0, 2.0, 0.0, false, Reduction::None);
  CHECK(none.to_vector<double>()[0] == Approx(5.0));
  CHECK(none.to_vector<double>()[1] == 0.0);
  CHECK(nn::triplet_margin_loss(a, p, n, 1.0, 2.0, 0.0).item() == Approx(2.5));
  CHECK(nn::triplet_margin_loss(a, p, n, 1.0, 2.0, 0.0, false, Reduction::Sum).item() ==
        Approx(5.0));
  // With the default eps = 1e-6 added to each difference.
  const double e = 1e-6;
  const double dap = std::hypot(0 - 3 + e, 0 - 4 + e), dan = std::hypot(0 - 0 + e, 0 - 1 + e);
  CHECK(nn::triplet_margin_loss(a, p, n).item() == Approx((dap - dan + 1) / 2).epsilon(1e-14));
  // p = 1 and p = 3 norms.
  CHECK(nn::triplet_margin_loss(a, p, n, 1.0, 1.0, 0.0).item() == Approx((7 - 1 + 1) / 2.0));
  const double l3 = std::cbrt(27.0 + 64.0);
  CHECK(nn::triplet_margin_loss(a, p, n, 1.0, 3.0, 0.0).item() == Approx((l3 - 1 + 1) / 2));
  // swap: d(a, n) -> min(d(a, n), d(p, n)); row 1: d(p, n) = |(6, 7)| > 10? no:
  // sqrt(85) < 10.
  Tensor swapped = nn::triplet_margin_loss(a, p, n, 10.0, 2.0, 0.0, true, Reduction::None);
  CHECK(swapped.to_vector<double>()[1] == Approx(1.0 - std::sqrt(85.0) + 10.0));
  // One triplet as 1-D vectors: a 0-d loss.
  Tensor one = nn::triplet_margin_loss(a[0], p[0], n[0], 1.0, 2.0, 0.0, false, Reduction::None);
  CHECK(one.dim() == 0);
  CHECK(one.item() == Approx(5.0));
}

TEST_CASE("triplet_margin_loss: bad inputs") {
  Tensor a = randn64({3, 4}, 1, false);
  CHECK_THROWS_WITH_AS(nn::triplet_margin_loss(a, a, randn64({3, 5}, 2, false)),
                       Contains("triplet_margin_loss: negative"), Error);
  CHECK_THROWS_WITH_AS(nn::triplet_margin_loss(a, a, a, 1.0, 0.0), Contains("p must be > 0"),
                       Error);
  CHECK_THROWS_WITH_AS(
      nn::triplet_margin_loss(randn64({2, 3, 4}, 3, false), randn64({2, 3, 4}, 4, false),
                              randn64({2, 3, 4}, 5, false)),
      Contains("[N, D]"), Error);
}

TEST_CASE("mse_loss is re-exported for the nn namespace") {
  Tensor x = Tensor::from_vector({1.0, 2.0, 4.0}, {3}, kFloat64);
  Tensor y = Tensor::from_vector({1.0, 0.0, 1.0}, {3}, kFloat64);
  CHECK(nn::mse_loss(x, y).item() == Approx((0 + 4 + 9) / 3.0));
}

// ---- CLIPLoss module
// ----------------------------------------------------------------------------
TEST_CASE("CLIPLoss: learnable log-temperature initialised to log(1/0.07)") {
  nn::CLIPLoss criterion;
  REQUIRE(criterion.logit_scale.defined());
  CHECK(criterion.logit_scale.dim() == 0);
  CHECK(criterion.logit_scale.dtype() == kFloat32);
  CHECK(criterion.logit_scale.item() == Approx(std::log(1 / 0.07)).epsilon(1e-6));
  CHECK(criterion.temperature() == Approx(0.07).epsilon(1e-6));
  std::vector<Tensor> params = criterion.parameters();
  REQUIRE(params.size() == 1);
  CHECK(params[0].same(criterion.logit_scale));
  CHECK(params[0].requires_grad());
  nn::StateDict sd = criterion.state_dict();
  REQUIRE(sd.size() == 1);
  CHECK(sd[0].first == "logit_scale");
  CHECK(criterion.label().find("CLIPLoss(temperature=0.07") == 0);

  // A fixed temperature: a buffer, saved but not trained.
  nn::CLIPLoss fixed(0.5, /*learnable=*/false);
  CHECK(fixed.parameters().empty());
  CHECK(fixed.state_dict().size() == 1);
  CHECK(fixed.temperature() == Approx(0.5).epsilon(1e-6));
  CHECK_THROWS_WITH_AS(nn::CLIPLoss(0.001), Contains("CLIPLoss: init_temperature"), Error);
  CHECK_THROWS_WITH_AS(nn::CLIPLoss(-1.0), Contains("init_temperature"), Error);
}

TEST_CASE(
    "CLIPLoss: forward is clip_loss with the module's scale, the scale "
    "learns") {
  nn::CLIPLoss criterion;
  criterion.to(kFloat64);
  Tensor img = randn64({6, 4}, 91, false), txt = randn64({6, 4}, 92, false);
  nn::ClipLossResult r = criterion(img, txt);
  // (the float32 initial value, converted: compare with the value the module
  // holds)
  CHECK(r.loss.item() ==
        Approx(clip_by_hand(img, txt, criterion.logit_scale.item())).epsilon(1e-12));
  CHECK(criterion.forward(img, txt, txt).item() ==
        Approx(nn::three_way_contrastive_loss(img, txt, txt, criterion.logit_scale).item()));
  // Gradcheck through the module w.r.t. the embeddings (the scale is checked in
  // clip_loss).
  expect_gradcheck_ok([&](const std::vector<Tensor>& in) { return criterion(in[0], in[1]).loss; },
                      {randn64({3, 2}, 93), randn64({3, 2}, 94)});
  // Aligned pairs: a sharper softmax lowers the loss, so SGD raises the scale.
  Tensor e = randn64({6, 4}, 95, false);
  const double before = criterion.logit_scale.item();
  optim::SGD opt(criterion.parameters(), {.lr = 0.5});
  for (int i = 0; i < 3; ++i) {
    opt.zero_grad();
    criterion(e, e).loss.backward();
    opt.step();
  }
  CHECK(criterion.logit_scale.item() > before);
}

TEST_CASE("CLIPLoss: clamp_logit_scale_ keeps the parameter in [0, log 100]") {
  nn::CLIPLoss criterion;
  {
    NoGradGuard no_grad;
    criterion.logit_scale.fill_(7.0);
  }
  CHECK(criterion.temperature() == Approx(0.01));  // the forward already caps it
  criterion.clamp_logit_scale_();
  CHECK(criterion.logit_scale.item() == Approx(std::log(100.0)).epsilon(1e-6));
  CHECK(criterion.logit_scale.requires_grad());
  {
    NoGradGuard no_grad;
    criterion.logit_scale.fill_(-2.0);
  }
  criterion.clamp_logit_scale_();
  CHECK(criterion.logit_scale.item() == 0.0);
}
