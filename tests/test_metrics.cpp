// Metrics and analysis: classification metrics, retrieval Recall@k / MRR (both directions),
// BLEU-4 against hand-computed values and NLTK's documented examples, and PCA on data with known
// principal axes.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "mmgrad/metrics/metrics.h"
#include "mmgrad/metrics/pca.h"
#include "mmgrad/mmgrad.h"

using namespace mmgrad;
using namespace mmgrad::metrics;

namespace {

Tensor ids(const std::vector<int64_t>& v) {
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
}

// Words -> ids with one shared dictionary (BLEU works on token ids).
struct Vocab {
  std::map<std::string, int64_t> ids;
  Tokens operator()(const std::vector<std::string>& words) {
    Tokens t;
    for (const auto& w : words) t.push_back(ids.emplace(w, ids.size()).first->second);
    return t;
  }
};

}  // namespace

// ---- classification ----------------------------------------------------------------------------

TEST_CASE("metrics: accuracy from class ids and from logits") {
  Tensor target = ids({0, 1, 2, 2, 1});
  CHECK(accuracy(ids({0, 1, 1, 2, 0}), target) == doctest::Approx(3.0 / 5));
  // Row-wise arg-max of scores; a transposed (non-contiguous) view works the same.
  Tensor logits = Tensor::from_vector(
      {2.0, 0.1, 0.3, 0.0, 1.0, -1.0, 0.2, 0.1, 0.9, 0.0, 0.0, 5.0, 3.0, 0.0, 0.0}, {5, 3});
  CHECK(accuracy(logits, target) == doctest::Approx(4.0 / 5));
  CHECK(accuracy(logits.t().contiguous().t(), target) == doctest::Approx(4.0 / 5));
  CHECK(accuracy(logits.to(kFloat32), target) == doctest::Approx(4.0 / 5));

  CHECK_THROWS_WITH_AS(accuracy(ids({0, 1}), target), doctest::Contains("accuracy"), Error);
  CHECK_THROWS_WITH_AS(accuracy(logits, target.to(kFloat32)), doctest::Contains("int64"), Error);
  CHECK_THROWS_WITH_AS(accuracy(Tensor::zeros({2, 2, 2}), ids({0, 1})), doctest::Contains("[N, C]"),
                       Error);
  CHECK_THROWS_WITH_AS(accuracy(Tensor::from_vector({NAN, 1.0}, {1, 2}), ids({0})),
                       doctest::Contains("NaN"), Error);
  CHECK_THROWS_WITH_AS(accuracy(ids({}), ids({})), doctest::Contains("no samples"), Error);
}

TEST_CASE("metrics: confusion matrix and per-class accuracy by hand") {
  Tensor pred = ids({0, 1, 1, 2, 0, 2, 2});
  Tensor target = ids({0, 1, 2, 2, 1, 2, 0});
  // rows = truth: class 0 -> {0, 2}; class 1 -> {1, 0}; class 2 -> {1, 2, 2}.
  Tensor cm = confusion_matrix(pred, target, 4);
  CHECK(cm.dtype() == kInt64);
  CHECK(cm.shape() == Shape{4, 4});
  CHECK(cm.to_vector<int64_t>() ==
        std::vector<int64_t>{1, 0, 1, 0, 1, 1, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0});
  Tensor pc = per_class_accuracy(pred, target, 4);
  std::vector<double> v = pc.to_vector<double>();
  CHECK(v[0] == doctest::Approx(0.5));
  CHECK(v[1] == doctest::Approx(0.5));
  CHECK(v[2] == doctest::Approx(2.0 / 3));
  CHECK(std::isnan(v[3]));  // no samples of class 3
  // Row sums are the class counts; the diagonal over the total is the accuracy.
  CHECK(cm.sum().item() == 7);
  CHECK_THROWS_WITH_AS(confusion_matrix(pred, target, 2), doctest::Contains("outside [0, 2)"),
                       Error);
  CHECK_THROWS_WITH_AS(per_class_accuracy(pred, target, 0), doctest::Contains("num_classes"),
                       Error);
}

// ---- retrieval ---------------------------------------------------------------------------------

TEST_CASE("metrics: recall@k and MRR for exact pairs, both directions") {
  // Image i belongs with caption i.
  Tensor s = Tensor::from_vector({0.9, 0.1, 0.3,  //
                                  0.2, 0.4, 0.8,  //
                                  0.5, 0.6, 0.7},
                                 {3, 3});
  // image -> text: ranks 1, 2 (0.8 beats 0.4), 1.
  CHECK(retrieval_ranks(s).to_vector<int64_t>() == std::vector<int64_t>{1, 2, 1});
  CHECK(recall_at_k(s, 1) == doctest::Approx(2.0 / 3));
  CHECK(recall_at_k(s, 2) == doctest::Approx(1.0));
  CHECK(mean_reciprocal_rank(s) == doctest::Approx((1 + 0.5 + 1) / 3));
  // text -> image is the transpose: columns [0.9 .2 .5], [.1 .4 .6], [.3 .8 .7] -> ranks 1, 2, 2.
  CHECK(retrieval_ranks(s.t()).to_vector<int64_t>() == std::vector<int64_t>{1, 2, 2});
  CHECK(recall_at_k(s.t(), 1) == doctest::Approx(1.0 / 3));
  CHECK(mean_reciprocal_rank(s.t()) == doctest::Approx((1 + 0.5 + 0.5) / 3));
  CHECK(recall_at_ks(s.t(), {1, 2, 3}) == std::vector<double>{1.0 / 3, 1.0, 1.0});
  // More gallery items than queries (distractors) is fine; float32 gives the same ranks.
  Tensor wide = Tensor::from_vector({0.5, 0.1, 0.9, 0.2, 0.8, 0.1}, {2, 3}, kFloat32);
  CHECK(retrieval_ranks(wide).to_vector<int64_t>() == std::vector<int64_t>{2, 1});
  // Ties keep gallery order: with all scores equal query i ranks i + 1.
  CHECK(retrieval_ranks(Tensor::full({3, 3}, 0.5)).to_vector<int64_t>() ==
        std::vector<int64_t>{1, 2, 3});
}

TEST_CASE("metrics: class-level recall@k and MRR") {
  Tensor s = Tensor::from_vector({0.9, 0.1, 0.3,  //
                                  0.2, 0.4, 0.8,  //
                                  0.5, 0.6, 0.7},
                                 {3, 3});
  Tensor q = ids({0, 1, 0}), g = ids({1, 0, 0});
  // q0 (class 0): relevant items 1 (0.1), 2 (0.3); best is 2, beaten by item 0 -> rank 2.
  // q1 (class 1): relevant item 0 (0.2), beaten by 0.4 and 0.8 -> rank 3.
  // q2 (class 0): relevant items 1 (0.6), 2 (0.7); 2 is the top score -> rank 1.
  CHECK(retrieval_ranks(s, q, g).to_vector<int64_t>() == std::vector<int64_t>{2, 3, 1});
  CHECK(recall_at_k(s, q, g, 1) == doctest::Approx(1.0 / 3));
  CHECK(recall_at_k(s, q, g, 2) == doctest::Approx(2.0 / 3));
  CHECK(recall_at_k(s, q, g, 3) == doctest::Approx(1.0));
  CHECK(recall_at_k(s, q, g, 100) == doctest::Approx(1.0));
  CHECK(mean_reciprocal_rank(s, q, g) == doctest::Approx((0.5 + 1.0 / 3 + 1.0) / 3));
  // The other direction swaps the roles of the label vectors.
  // t0 (class 1) vs images [.9 .2 .5] with classes [0 1 0]: item 1 (0.2) is last -> rank 3.
  // t1 (class 0) vs [.1 .4 .6]: relevant 0 (0.1) and 2 (0.6) -> rank 1.
  // t2 (class 0) vs [.3 .8 .7]: relevant 0 (0.3), 2 (0.7); 0.8 is irrelevant -> rank 2.
  CHECK(retrieval_ranks(s.t(), g, q).to_vector<int64_t>() == std::vector<int64_t>{3, 1, 2});

  CHECK_THROWS_WITH_AS(retrieval_ranks(s, ids({0, 1, 5}), g),
                       doctest::Contains("no gallery item has that label"), Error);
  CHECK_THROWS_WITH_AS(retrieval_ranks(s, ids({0, 1}), g), doctest::Contains("query_labels"),
                       Error);
  CHECK_THROWS_WITH_AS(recall_at_k(s, q, g, 0), doctest::Contains("k must be >= 1"), Error);
  CHECK_THROWS_WITH_AS(retrieval_ranks(Tensor::zeros({3, 2})),
                       doctest::Contains("more queries than gallery"), Error);
  CHECK_THROWS_WITH_AS(retrieval_ranks(Tensor::zeros({3})), doctest::Contains("2-D"), Error);
  CHECK_THROWS_WITH_AS(retrieval_ranks(Tensor::from_vector({0.1, NAN}, {1, 2})),
                       doctest::Contains("NaN"), Error);
}

// ---- BLEU --------------------------------------------------------------------------------------

TEST_CASE("metrics: BLEU-4 by hand") {
  Vocab w;
  Tokens cand = w({"the", "cat", "sat", "on", "the", "mat"});
  Tokens ref = w({"the", "cat", "is", "on", "the", "mat"});
  // p1 = 5/6, p2 = 3/5, p3 = 1/4, p4 = 0/3: plain BLEU is 0.
  CHECK(bleu4({cand}, {ref}) == 0.0);
  CHECK(sentence_bleu4(cand, {ref}) == 0.0);
  // Add-one for n >= 2: (5/6 * 4/6 * 2/5 * 1/4)^(1/4) = (1/18)^(1/4); equal lengths, BP = 1.
  CHECK(sentence_bleu4(cand, {ref}, BleuSmoothing::AddOne) ==
        doctest::Approx(std::pow(1.0 / 18, 0.25)));
  // Identical sentences score 1.
  CHECK(bleu4({ref}, {ref}) == doctest::Approx(1.0));
  // Brevity penalty: all n-grams of a 4-token prefix match, r = 6, c = 4 -> exp(1 - 6/4).
  Tokens prefix = w({"the", "cat", "is", "on"});
  CHECK(bleu4({prefix}, {ref}) == doctest::Approx(std::exp(-0.5)));
  // Clipping: "the the the the" against "the cat" counts "the" once: p1 = 1/4; with add-one
  // p2 = 1/4, p3 = 1/3, p4 = 1/2; c = 4 > r = 2 so no penalty.
  Tokens thes = w({"the", "the", "the", "the"});
  CHECK(sentence_bleu4(thes, {w({"the", "cat"})}, BleuSmoothing::AddOne) ==
        doctest::Approx(std::pow(1.0 / 96, 0.25)));
  // Best-match length: references of 3 and 7 tokens are equally close to 5; the shorter one
  // counts, so there is no brevity penalty (the 7-token one would give exp(1 - 7/5)).
  Tokens five = {1, 2, 3, 4, 5};
  CHECK(sentence_bleu4(five, {{1, 2, 3}, {1, 2, 3, 4, 5, 6, 7}}) == doctest::Approx(1.0));
  CHECK(sentence_bleu4(five, {{1, 2, 3, 4, 5, 6, 7}}) == doctest::Approx(std::exp(1 - 7.0 / 5)));
  // An empty candidate scores 0.
  CHECK(bleu4({Tokens{}}, {ref}) == 0.0);
}

TEST_CASE("metrics: BLEU-4 on NLTK's documented example (Papineni et al.'s sentences)") {
  Vocab w;
  Tokens hyp1 = w({"It", "is", "a", "guide", "to", "action", "which", "ensures", "that", "the",
                   "military", "always", "obeys", "the", "commands", "of", "the", "party"});
  Tokens ref1a = w({"It", "is", "a", "guide", "to", "action", "that", "ensures", "that", "the",
                    "military", "will", "forever", "heed", "Party", "commands"});
  Tokens ref1b =
      w({"It", "is", "the", "guiding", "principle", "which", "guarantees", "the", "military",
         "forces", "always", "being", "under", "the", "command", "of", "the", "Party"});
  Tokens ref1c = w({"It", "is", "the", "practical", "guide", "for", "the", "army", "always", "to",
                    "heed", "the", "directions", "of", "the", "party"});
  Tokens hyp2 = w({"he", "read", "the", "book", "because", "he", "was", "interested", "in", "world",
                   "history"});
  Tokens ref2a = w({"he", "was", "interested", "in", "world", "history", "because", "he", "read",
                    "the", "book"});
  // nltk.translate.bleu_score docstrings: corpus_bleu = 0.5920..., and the mean of the two
  // sentence_bleu scores = 0.6223... (sentence 1 alone: 0.5045...).
  CHECK(bleu4({hyp1, hyp2}, std::vector<std::vector<Tokens>>{{ref1a, ref1b, ref1c}, {ref2a}}) ==
        doctest::Approx(0.5920).epsilon(1e-4));
  double s1 = sentence_bleu4(hyp1, {ref1a, ref1b, ref1c});
  double s2 = sentence_bleu4(hyp2, {ref2a});
  CHECK(s1 == doctest::Approx(0.5045).epsilon(2e-4));
  CHECK((s1 + s2) / 2 == doctest::Approx(0.6223).epsilon(2e-4));

  CHECK_THROWS_WITH_AS(bleu4({hyp1}, std::vector<Tokens>{}), doctest::Contains("bleu4"), Error);
  CHECK_THROWS_WITH_AS(bleu4({}, std::vector<Tokens>{}), doctest::Contains("no candidates"), Error);
  CHECK_THROWS_WITH_AS(sentence_bleu4(hyp1, {}), doctest::Contains("no reference"), Error);
}

// ---- PCA ---------------------------------------------------------------------------------------

TEST_CASE("pca: recovers known principal axes, variances and mean") {
  // Points = mean + 3 a u + 1 b v + 0.1 c w with a, b, c ~ N(0, 1) and orthonormal u, v, w.
  const int64_t n = 4000;
  const double r = 1 / std::sqrt(2.0);
  const double u[3] = {r, r, 0}, v[3] = {r, -r, 0}, w[3] = {0, 0, 1}, mu[3] = {5, -2, 1};
  Generator gen(17);
  std::vector<double> z = Tensor::randn({n, 3}, kFloat64, &gen).to_vector<double>();
  std::vector<double> x(static_cast<size_t>(n * 3));
  for (int64_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d)
      x[i * 3 + d] = mu[d] + 3 * z[i * 3] * u[d] + z[i * 3 + 1] * v[d] + 0.1 * z[i * 3 + 2] * w[d];
  Tensor X = Tensor::from_vector(x, {n, 3});
  PCAResult p = pca(X, 2);
  CHECK(p.components.shape() == Shape{2, 3});
  CHECK(p.projected.shape() == Shape{n, 2});
  std::vector<double> c = p.components.to_vector<double>();
  // Directions match up to the fixed sign: u's first entry (a largest-magnitude tie) is +.
  double du = c[0] * u[0] + c[1] * u[1] + c[2] * u[2];
  double dv = c[3] * v[0] + c[4] * v[1] + c[5] * v[2];
  CHECK(du > 0.999);
  CHECK(std::abs(dv) > 0.999);
  // Sign rule: the largest-magnitude entry of each component is positive.
  for (int k = 0; k < 2; ++k) {
    int arg = 0;
    for (int d = 1; d < 3; ++d)
      if (std::abs(c[k * 3 + d]) > std::abs(c[k * 3 + arg])) arg = d;
    CHECK(c[k * 3 + arg] > 0);
  }
  std::vector<double> ev = p.explained_variance.to_vector<double>();
  CHECK(ev[0] == doctest::Approx(9.0).epsilon(0.06));  // sample variance of 4000 draws
  CHECK(ev[1] == doctest::Approx(1.0).epsilon(0.06));
  std::vector<double> ratio = p.explained_variance_ratio.to_vector<double>();
  CHECK(ratio[0] == doctest::Approx(9.0 / 10.01).epsilon(0.02));
  CHECK(ratio[0] + ratio[1] == doctest::Approx(10.0 / 10.01).epsilon(0.001));
  std::vector<double> m = p.mean.to_vector<double>();
  for (int d = 0; d < 3; ++d) CHECK(m[d] == doctest::Approx(mu[d]).epsilon(0.05));
  // Components are orthonormal; projections have the component variances.
  CHECK(c[0] * c[0] + c[1] * c[1] + c[2] * c[2] == doctest::Approx(1.0));
  CHECK(c[0] * c[3] + c[1] * c[4] + c[2] * c[5] == doctest::Approx(0.0).epsilon(1e-9));
  CHECK(p.projected.var({0}).to_vector<double>()[0] == doctest::Approx(ev[0]).epsilon(1e-9));
  // transform() of the fitted data reproduces the projection; new points project consistently.
  std::vector<double> t = p.transform(X).to_vector<double>(), pr = p.projected.to_vector<double>();
  for (size_t i = 0; i < t.size(); ++i) CHECK(t[i] == doctest::Approx(pr[i]).epsilon(1e-9));
  const double pt[3] = {5.0 + 2 * r, -2.0 + 2 * r, 1.0};  // mu + 2u
  std::vector<double> tp =
      p.transform(Tensor::from_vector({pt[0], pt[1], pt[2]}, {1, 3}, kFloat64)).to_vector<double>();
  for (int k = 0; k < 2; ++k) {
    double want = 0;
    for (int d = 0; d < 3; ++d) want += c[k * 3 + d] * (pt[d] - m[d]);
    CHECK(tp[k] == doctest::Approx(want).epsilon(1e-9));
  }
  CHECK(tp[0] == doctest::Approx(2.0).epsilon(0.03));  // ~2 along u (sample mean ~ mu)
}

TEST_CASE("pca: deterministic signs, float32, degenerate data and bad input") {
  Generator gen(3);
  Tensor x = Tensor::randn({50, 6}, kFloat64, &gen);
  PCAResult a = pca(x, 3), b = pca(x.neg(), 3);
  // Negated data has the same covariance, hence the same components (signs are fixed by rule,
  // not by the solver), and negated projections.
  std::vector<double> ca = a.components.to_vector<double>(), cb = b.components.to_vector<double>();
  for (size_t i = 0; i < ca.size(); ++i) CHECK(ca[i] == doctest::Approx(cb[i]).epsilon(1e-9));
  std::vector<double> pa = a.projected.to_vector<double>(), pb = b.projected.to_vector<double>();
  for (size_t i = 0; i < pa.size(); ++i) CHECK(pa[i] == doctest::Approx(-pb[i]).epsilon(1e-9));
  // float32 in, float32 out, same numbers to float precision.
  PCAResult f = pca(x.to(kFloat32), 3);
  CHECK(f.projected.dtype() == kFloat32);
  std::vector<double> pf = f.projected.to_vector<double>();
  for (size_t i = 0; i < pa.size(); ++i) CHECK(pf[i] == doctest::Approx(pa[i]).epsilon(1e-4));
  // A transposed view is the same data.
  Tensor xt = x.t().contiguous().t();
  CHECK(pca(xt, 3).projected.to_vector<double>() == pa);
  // Constant data: zero variance, ratios 0 rather than NaN.
  PCAResult z = pca(Tensor::ones({5, 3}), 2);
  for (double r : z.explained_variance_ratio.to_vector<double>()) CHECK(r == 0.0);
  CHECK_THROWS_WITH_AS(pca(x, 0), doctest::Contains("k must be in [1, D = 6]"), Error);
  CHECK_THROWS_WITH_AS(pca(x, 7), doctest::Contains("pca"), Error);
  CHECK_THROWS_WITH_AS(pca(Tensor::zeros({1, 3}), 1), doctest::Contains("at least 2"), Error);
  CHECK_THROWS_WITH_AS(pca(Tensor::zeros({4}), 1), doctest::Contains("[N, D]"), Error);
  CHECK_THROWS_WITH_AS(pca(Tensor::zeros({3, 3}, kInt64), 1), doctest::Contains("float"), Error);
  CHECK_THROWS_WITH_AS(pca(Tensor::from_vector({1.0, NAN, 2.0, 3.0}, {2, 2}), 1),
                       doctest::Contains("non-finite"), Error);
  CHECK_THROWS_WITH_AS(a.transform(Tensor::zeros({2, 5})), doctest::Contains("[M, 6]"), Error);
}
