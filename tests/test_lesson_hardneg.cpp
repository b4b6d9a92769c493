// lessons/11_hard_negatives/hard_negatives: the hard-negative (importance-weighted) InfoNCE of
// lesson 11. beta = 0 is CLIP's loss; the weights by hand; masking same-class pairs; a float64
// gradient check of the weighted loss (fixed weights, non-contiguous inputs); float32 vs float64;
// the statistics the lesson prints; bad inputs.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "11_hard_negatives/hard_negatives.h"
#include "mmgrad/mmgrad.h"

using namespace mmgrad;
using hardneg::HardNegativeOptions;

namespace {

double max_abs_difference(const Tensor& a, const Tensor& b) {
  return max(abs(a.to(kFloat64) - b.to(kFloat64))).item();
}

Tensor cosines(const Tensor& a, const Tensor& b) {
  NoGradGuard ng;
  return matmul(normalize(a, 1), normalize(b, 1).t());
}

}  // namespace

TEST_CASE("hard negatives: beta 0 without masking is exactly CLIP's loss") {
  Generator g(11);
  for (int64_t n : {1, 2, 7}) {
    INFO("N = " << n);
    Tensor img = Tensor::randn({n, 5}, kFloat64, &g), txt = Tensor::randn({n, 5}, kFloat64, &g);
    Tensor scale = Tensor::scalar(std::log(1 / 0.07), kFloat64);
    const double clip = nn::clip_loss(img, txt, scale).loss.item();
    hardneg::HardNegativeLossResult r =
        hardneg::hard_negative_clip_loss(img, txt, scale, Tensor(), HardNegativeOptions{});
    CHECK(r.loss.item() == doctest::Approx(clip).epsilon(1e-12));
    // uniform weights 1 / (N - 1) off the diagonal (none when N = 1)
    for (const hardneg::RowWeights* w : {&r.weights.i2t, &r.weights.t2i}) {
      CHECK_FALSE(w->offsets.requires_grad());
      CHECK_FALSE(w->weights.requires_grad());
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j)
          CHECK(w->weights.at({i, j}) ==
                doctest::Approx(i == j ? 0.0 : 1.0 / static_cast<double>(n - 1)));
    }
  }
}

TEST_CASE("hard negatives: the weights by hand, and the loss they give") {
  Generator g(12);
  const int64_t n = 5;
  const double beta = 4.0;
  Tensor img = Tensor::randn({n, 3}, kFloat64, &g), txt = Tensor::randn({n, 3}, kFloat64, &g);
  Tensor cos = cosines(img, txt);
  hardneg::NegativeWeights w = hardneg::negative_weights(cos, Tensor(), {beta, false});
  // w_ij = exp(beta c_ij) / sum_{k != i} exp(beta c_ik); t2i uses the columns of cos.
  for (int64_t i = 0; i < n; ++i) {
    double zi = 0, zt = 0;
    for (int64_t k = 0; k < n; ++k)
      if (k != i) {
        zi += std::exp(beta * cos.at({i, k}));
        zt += std::exp(beta * cos.at({k, i}));
      }
    for (int64_t j = 0; j < n; ++j) {
      const double wi = j == i ? 0.0 : std::exp(beta * cos.at({i, j})) / zi;
      const double wt = j == i ? 0.0 : std::exp(beta * cos.at({j, i})) / zt;
      CHECK(w.i2t.weights.at({i, j}) == doctest::Approx(wi).epsilon(1e-12));
      CHECK(w.t2i.weights.at({i, j}) == doctest::Approx(wt).epsilon(1e-12));
    }
  }
  // The loss of the i2t direction by hand: -s_ii + log(e^{s_ii} + (N-1) sum_j w_ij e^{s_ij}).
  const double scale = 10.0;
  Tensor logit_scale = Tensor::scalar(std::log(scale), kFloat64);
  double want = 0;
  for (int64_t i = 0; i < n; ++i) {
    double negi = 0, negt = 0;
    for (int64_t j = 0; j < n; ++j)
      if (j != i) {
        negi += w.i2t.weights.at({i, j}) * std::exp(scale * cos.at({i, j}));
        negt += w.t2i.weights.at({i, j}) * std::exp(scale * cos.at({j, i}));
      }
    const double sii = scale * cos.at({i, i});
    want += 0.5 * (-sii + std::log(std::exp(sii) + (n - 1) * negi));
    want += 0.5 * (-sii + std::log(std::exp(sii) + (n - 1) * negt));
  }
  want /= static_cast<double>(n);
  hardneg::HardNegativeLossResult r =
      hardneg::hard_negative_clip_loss(img, txt, logit_scale, Tensor(), {beta, false});
  CHECK(r.loss.item() == doctest::Approx(want).epsilon(1e-10));
  // The hardest negatives count more: the weighted loss exceeds InfoNCE's.
  CHECK(r.loss.item() > nn::clip_loss(img, txt, logit_scale).loss.item());
  // A large beta puts (almost) all the weight of row i on its most similar negative.
  hardneg::NegativeWeights sharp = hardneg::negative_weights(cos, Tensor(), {500.0, false});
  for (int64_t i = 0; i < n; ++i) {
    int64_t best = -1;
    for (int64_t j = 0; j < n; ++j)
      if (j != i && (best < 0 || cos.at({i, j}) > cos.at({i, best}))) best = j;
    CHECK(sharp.i2t.weights.at({i, best}) > 0.99);
  }
}

TEST_CASE("hard negatives: masking same-class pairs") {
  Generator g(13);
  const int64_t n = 6;
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{0, 0, 1, 1, 1, 2});
  const std::vector<int64_t> y = labels.to_vector<int64_t>();
  Tensor img = Tensor::randn({n, 4}, kFloat64, &g), txt = Tensor::randn({n, 4}, kFloat64, &g);
  Tensor cos = cosines(img, txt);
  hardneg::NegativeWeights w = hardneg::negative_weights(cos, labels, {3.0, true});
  for (const hardneg::RowWeights* r : {&w.i2t, &w.t2i}) {
    for (int64_t i = 0; i < n; ++i) {
      double row = 0;
      for (int64_t j = 0; j < n; ++j) {
        if (y[j] == y[i]) {
          CHECK(r->weights.at({i, j}) == 0.0);
          if (j != i) CHECK(r->offsets.at({i, j}) == hardneg::kExcluded);
        }
        row += r->weights.at({i, j});
      }
      CHECK(row == doctest::Approx(1.0));  // every row here has a negative of another class
    }
    CHECK(hardneg::same_class_share(r->weights, labels) == 0.0);
  }
  // Without the mask, the same-class pairs take their share of the weight.
  hardneg::NegativeWeights unmasked = hardneg::negative_weights(cos, labels, {3.0, false});
  CHECK(hardneg::same_class_share(unmasked.i2t.weights, labels) > 0.0);
  // Masked at beta 0 = InfoNCE over the other classes only; with one class in the whole batch no
  // negative is left and the loss is 0 (finite, no NaN).
  Tensor scale = Tensor::scalar(std::log(1 / 0.07), kFloat64);
  Tensor one_class = Tensor::zeros({n}, kInt64);
  hardneg::HardNegativeLossResult r =
      hardneg::hard_negative_clip_loss(img, txt, scale, one_class, {0.0, true});
  CHECK(r.loss.item() == doctest::Approx(0.0).epsilon(1e-12));
  // A masked pair gets no gradient: its logit has no effect on the loss.
  Tensor logits = (cos * 5.0).requires_grad_();
  Tensor loss = hardneg::weighted_infonce(logits, w.i2t.offsets);
  loss.backward();
  CHECK(logits.grad().at({0, 1}) == doctest::Approx(0.0).epsilon(1e-300));
  CHECK(std::abs(logits.grad().at({0, 2})) > 1e-6);
}

TEST_CASE("hard negatives: gradient check of the weighted loss (float64)") {
  Generator g(14);
  const int64_t n = 5, d = 4;
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{3, 1, 3, 0, 1});
  Tensor img0 = Tensor::randn({n, d}, kFloat64, &g), txt0 = Tensor::randn({n, d}, kFloat64, &g);
  for (bool mask : {false, true}) {
    INFO("mask = " << mask);
    // The weights come from the detached similarities and are constants for the loss: the
    // gradient of the weighted loss at fixed weights is what backward must give.
    hardneg::NegativeWeights w =
        hardneg::negative_weights(cosines(img0, txt0), labels, {6.0, mask});
    GradcheckResult gc = gradcheck(
        [&](const std::vector<Tensor>& x) {
          return hardneg::weighted_clip_loss(x[0], x[1], x[2], w);
        },
        {img0.clone().requires_grad_(), txt0.clone().requires_grad_(),
         Tensor::scalar(1.2, kFloat64).requires_grad_()});
    CHECK_MESSAGE(gc.ok, gc.report);
    // Non-contiguous embeddings: transposed views made inside the function.
    GradcheckResult gct = gradcheck(
        [&](const std::vector<Tensor>& x) {
          return hardneg::weighted_clip_loss(x[0].t(), x[1].t(), x[2], w);
        },
        {img0.t().contiguous().requires_grad_(), txt0.t().contiguous().requires_grad_(),
         Tensor::scalar(0.7, kFloat64).requires_grad_()});
    CHECK_MESSAGE(gct.ok, gct.report);
  }
  // The one-direction loss against its logits; a batch of one (no negatives at all).
  hardneg::NegativeWeights w = hardneg::negative_weights(cosines(img0, txt0), labels, {2.0, true});
  GradcheckResult gl = gradcheck(
      [&](const std::vector<Tensor>& x) { return hardneg::weighted_infonce(x[0], w.t2i.offsets); },
      {Tensor::randn({n, n}, kFloat64, &g).requires_grad_()});
  CHECK_MESSAGE(gl.ok, gl.report);
  Tensor a1 = Tensor::randn({1, d}, kFloat64, &g), b1 = Tensor::randn({1, d}, kFloat64, &g);
  hardneg::NegativeWeights w1 = hardneg::negative_weights(cosines(a1, b1), Tensor(), {5.0, false});
  GradcheckResult g1 = gradcheck(
      [&](const std::vector<Tensor>& x) {
        return hardneg::weighted_clip_loss(x[0], x[1], x[2], w1);
      },
      {a1.requires_grad_(), b1.requires_grad_(), Tensor::scalar(2.0, kFloat64).requires_grad_()});
  CHECK_MESSAGE(g1.ok, g1.report);
  // The full loss passes gradients to the embeddings and the temperature, never to the weights.
  Tensor ia = img0.clone().requires_grad_(), ta = txt0.clone().requires_grad_();
  Tensor ls = Tensor::scalar(1.0, kFloat64).requires_grad_();
  hardneg::HardNegativeLossResult r =
      hardneg::hard_negative_clip_loss(ia, ta, ls, labels, {6.0, true});
  r.loss.backward();
  CHECK(ia.grad().defined());
  CHECK(ta.grad().defined());
  CHECK(ls.grad().defined());
}

TEST_CASE("hard negatives: float32 forward agrees with float64") {
  Generator g(15);
  Tensor img = Tensor::randn({9, 6}, kFloat64, &g), txt = Tensor::randn({9, 6}, kFloat64, &g);
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{0, 1, 2, 0, 1, 2, 0, 1, 2});
  Tensor s64 = Tensor::scalar(2.5, kFloat64), s32 = Tensor::scalar(2.5, kFloat32);
  for (bool mask : {false, true}) {
    const HardNegativeOptions o{8.0, mask};
    hardneg::HardNegativeLossResult a = hardneg::hard_negative_clip_loss(img, txt, s64, labels, o);
    hardneg::HardNegativeLossResult b =
        hardneg::hard_negative_clip_loss(img.to(kFloat32), txt.to(kFloat32), s32, labels, o);
    CHECK(b.loss.dtype() == kFloat32);
    CHECK(b.loss.item() == doctest::Approx(a.loss.item()).epsilon(1e-5));
    CHECK(max_abs_difference(a.weights.i2t.weights, b.weights.i2t.weights) < 1e-5);
  }
}

TEST_CASE("hard negatives: the same-class statistics by hand") {
  // Rows: anchors. labels 0 0 1: row 0 has one same-class negative (1) and one other (2).
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{0, 0, 1});
  Tensor w = Tensor::from_vector(std::vector<double>{0, 0.75, 0.25,  //
                                                     0.5, 0, 0.5,    //
                                                     0.2, 0.8, 0})
                 .reshape({3, 3});
  // (0.75 + 0.5 + 0) / 3
  CHECK(hardneg::same_class_share(w, labels) == doctest::Approx(1.25 / 3));
  // push share: p = softmax(logits + offsets); all-zero logits and offsets give p = 1/3 each:
  // rows 0 and 1 push half on their same-class pair, row 2 none.
  Tensor z = Tensor::zeros({3, 3}, kFloat64);
  CHECK(hardneg::same_class_push_share(z, z, labels) == doctest::Approx(1.0 / 3));
  CHECK(hardneg::count_same_class_pairs(labels) == 2);
  CHECK(hardneg::count_same_class_pairs(Tensor::arange(4)) == 0);
}

TEST_CASE("hard negatives: bad inputs are clear errors") {
  Generator g(16);
  Tensor img = Tensor::randn({4, 3}, kFloat64, &g), txt = Tensor::randn({4, 3}, kFloat64, &g);
  Tensor scale = Tensor::scalar(1.0, kFloat64);
  Tensor cos = cosines(img, txt);
  // masking needs labels, of the batch's length, int64
  CHECK_THROWS_WITH_AS(hardneg::hard_negative_clip_loss(img, txt, scale, Tensor(), {1.0, true}),
                       doctest::Contains("negative_weights"), Error);
  CHECK_THROWS_WITH_AS(
      hardneg::hard_negative_clip_loss(img, txt, scale, Tensor::arange(3), {1.0, true}),
      doctest::Contains("labels"), Error);
  CHECK_THROWS_WITH_AS(hardneg::negative_weights(cos, Tensor::zeros({4}), {1.0, true}),
                       doctest::Contains("int64"), Error);
  // shapes and dtypes of the embeddings
  CHECK_THROWS_WITH_AS(hardneg::hard_negative_clip_loss(img, Tensor::randn({5, 3}, kFloat64, &g),
                                                        scale, Tensor(), {}),
                       doctest::Contains("hard_negative_clip_loss"), Error);
  CHECK_THROWS_WITH_AS(hardneg::hard_negative_clip_loss(img, txt.to(kFloat32), scale, Tensor(), {}),
                       doctest::Contains("must match"), Error);
  CHECK_THROWS_WITH_AS(
      hardneg::hard_negative_clip_loss(img.reshape({12}), txt.reshape({12}), scale, Tensor(), {}),
      doctest::Contains("[N, D]"), Error);
  CHECK_THROWS_WITH_AS(
      hardneg::hard_negative_clip_loss(img, txt, Tensor::scalar(1.0, kFloat32), Tensor(), {}),
      doctest::Contains("logit_scale"), Error);
  // beta out of range; a non-square similarity matrix
  CHECK_THROWS_WITH_AS(hardneg::negative_weights(cos, Tensor(), {-1.0, false}),
                       doctest::Contains("beta"), Error);
  CHECK_THROWS_WITH_AS(hardneg::negative_weights(cos, Tensor(), {std::nan(""), false}),
                       doctest::Contains("beta"), Error);
  CHECK_THROWS_WITH_AS(hardneg::row_negative_weights(Tensor::zeros({3, 4}, kFloat64), Tensor(), 1),
                       doctest::Contains("row_negative_weights"), Error);
  CHECK_THROWS_WITH_AS(hardneg::row_negative_weights(cos, Tensor::zeros({4, 4}, kFloat64), 1.0),
                       doctest::Contains("exclude"), Error);
  // offsets: wrong shape, or requiring grad (they must be constants)
  hardneg::NegativeWeights w = hardneg::negative_weights(cos, Tensor(), {1.0, false});
  CHECK_THROWS_WITH_AS(hardneg::weighted_infonce(cos, Tensor::zeros({3, 3}, kFloat64)),
                       doctest::Contains("weighted_infonce"), Error);
  CHECK_THROWS_WITH_AS(
      hardneg::weighted_infonce(cos, Tensor::zeros({4, 4}, kFloat64).requires_grad_()),
      doctest::Contains("detach"), Error);
  hardneg::NegativeWeights w3 =
      hardneg::negative_weights(Tensor::zeros({3, 3}, kFloat64), Tensor(), {1.0, false});
  CHECK_THROWS_WITH_AS(hardneg::weighted_clip_loss(img, txt, scale, w3),
                       doctest::Contains("weighted_clip_loss"), Error);
  CHECK_THROWS_WITH_AS(hardneg::same_class_share(w.i2t.weights, Tensor::arange(3)),
                       doctest::Contains("same_class_share"), Error);
}
