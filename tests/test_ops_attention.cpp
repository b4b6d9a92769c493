// scaled_dot_product_attention: values against explicit loops, masks (bool,
// float, causal, fully masked rows), broadcasting, dropout, float32 backward
// and bad inputs. Its float64 gradchecks, float32 forward and CPU/CUDA parity
// run from the op list (tests/op_list.cpp).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "mmgrad/mmgrad.h"
#include "op_test_util.h"

using namespace mmgrad;
using namespace mmgrad::testing;

namespace {

bool all_finite(const Tensor& t) {
  for (double v : t.to_vector<double>())
    if (!std::isfinite(v)) return false;
  return true;
}

struct Ref {
  std::vector<double> out, weights;
};

// Naive attention on [B, L, E], [B, S, E], [B, S, Ev] with an additive mask [B,
// L, S] (use -inf to forbid; empty = none): explicit loops, a row with no
// allowed key gives zeros.
Ref ref_attention(const Tensor& qt, const Tensor& kt, const Tensor& vt,
                  const std::vector<double>& mask, double scale) {
  auto q = qt.to_vector<double>(), k = kt.to_vector<double>(), v = vt.to_vector<double>();
  int64_t B = qt.size(0), L = qt.size(1), E = qt.size(2), S = kt.size(1), Ev = vt.size(2);
  Ref r;
  r.out.assign(static_cast<size_t>(B * L * Ev), 0.0);
  r.weights.assign(static_cast<size_t>(B * L * S), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < L; ++i) {
      std::vector<double> s(static_cast<size_t>(S));
      double m = -INFINITY;
      for (int64_t j = 0; j < S; ++j) {
        double dot = 0;
        for (int64_t e = 0; e < E; ++e) dot += q[(b * L + i) * E + e] * k[(b * S + j) * E + e];
        s[j] = dot * scale + (mask.empty() ? 0.0 : mask[(b * L + i) * S + j]);
        m = std::max(m, s[j]);
      }
      if (m == -INFINITY) continue;  // fully masked: zeros
      double z = 0;
      for (int64_t j = 0; j < S; ++j) z += std::exp(s[j] - m);
      for (int64_t j = 0; j < S; ++j) {
        double w = std::exp(s[j] - m) / z;
        r.weights[(b * L + i) * S + j] = w;
        for (int64_t e = 0; e < Ev; ++e) r.out[(b * L + i) * Ev + e] += w * v[(b * S + j) * Ev + e];
      }
    }
  return r;
}

// An additive [B, L, S] mask from a bool one (true = may attend) and/or
// causality.
std::vector<double> additive(int64_t B, int64_t L, int64_t S, const std::vector<bool>& allowed,
                             bool causal) {
  std::vector<double> m(static_cast<size_t>(B * L * S), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < L; ++i)
      for (int64_t j = 0; j < S; ++j) {
        size_t p = static_cast<size_t>((b * L + i) * S + j);
        bool ok = (allowed.empty() || allowed[p]) && (!causal || j <= i);
        m[p] = ok ? 0.0 : -INFINITY;
      }
  return m;
}

// A random bool pattern of n entries, true with probability p.
std::vector<bool> pattern(int64_t n, double p, uint64_t seed) {
  Generator g(seed);
  auto u = Tensor::rand({n}, kFloat64, &g).to_vector<double>();
  std::vector<bool> b(u.size());
  for (size_t i = 0; i < u.size(); ++i) b[i] = u[i] < p;
  return b;
}

// The q, k, v of the mask tests: B = 2, L = 4, S = 5, E = 3, Ev = 2.
struct Qkv {
  Tensor q = rnd({2, 4, 3}, 10), k = rnd({2, 5, 3}, 11), v = rnd({2, 5, 2}, 12);
  double scale = 1 / std::sqrt(3.0);
};

}  // namespace

TEST_CASE(
    "attention: a bool mask matches explicit loops, masked weights are "
    "exactly 0") {
  Qkv t;
  auto allow = pattern(2 * 4 * 5, 0.6, 13);
  for (int64_t r = 0; r < 8; ++r) allow[static_cast<size_t>(r * 5)] = true;  // key 0 visible
  AttentionOptions o;
  o.attn_mask = Tensor::from_vector(allow, {2, 4, 5});
  auto res = scaled_dot_product_attention_with_weights(t.q, t.k, t.v, o);
  Ref ref = ref_attention(t.q, t.k, t.v, additive(2, 4, 5, allow, false), t.scale);
  check_close(res.output.to_vector<double>(), ref.out, 1e-12);
  check_close(res.weights.to_vector<double>(), ref.weights, 1e-12);
  auto w = res.weights.to_vector<double>();
  for (size_t i = 0; i < w.size(); ++i)
    if (!allow[i]) CHECK(w[i] == 0.0);
}

TEST_CASE(
    "attention: causal masks (L == S, L > S, L < S) and causal combined "
    "with a bool mask") {
  Qkv t;
  AttentionOptions c;
  c.is_causal = true;
  auto res = scaled_dot_product_attention_with_weights(t.q, t.k, t.v, c);
  Ref ref = ref_attention(t.q, t.k, t.v, additive(2, 4, 5, {}, true), t.scale);
  check_close(res.output.to_vector<double>(), ref.out, 1e-12);
  check_close(res.weights.to_vector<double>(), ref.weights, 1e-12);
  // L > S: later queries see every key
  Tensor q7 = rnd({2, 7, 3}, 14);
  check_close(scaled_dot_product_attention(q7, t.k, t.v, c).to_vector<double>(),
              ref_attention(q7, t.k, t.v, additive(2, 7, 5, {}, true), t.scale).out, 1e-12);
  // square, self-attention style: query i sees keys 0..i
  Tensor x = rnd({1, 4, 3}, 15);
  auto self = scaled_dot_product_attention_with_weights(x, x, x, c);
  auto sw = self.weights.to_vector<double>();
  CHECK(sw[0] == doctest::Approx(1.0));  // the first query sees only itself
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = i + 1; j < 4; ++j) CHECK(sw[static_cast<size_t>(i * 4 + j)] == 0.0);
  // causal and a bool mask both apply
  auto allow = pattern(2 * 4 * 5, 0.7, 16);
  for (int64_t r = 0; r < 8; ++r) allow[static_cast<size_t>(r * 5)] = true;
  c.attn_mask = Tensor::from_vector(allow, {2, 4, 5});
  check_close(scaled_dot_product_attention(t.q, t.k, t.v, c).to_vector<double>(),
              ref_attention(t.q, t.k, t.v, additive(2, 4, 5, allow, true), t.scale).out, 1e-12);
}

TEST_CASE(
    "attention: a float mask is added to the scores (broadcast, -inf "
    "entries)") {
  Qkv t;
  std::vector<double> fm = rnd({4, 5}, 17).to_vector<double>();
  fm[2] = -INFINITY;  // query 0 may not see key 2
  fm[4 * 5 - 1] = -INFINITY;
  AttentionOptions o;
  o.attn_mask = Tensor::from_vector(fm, {4, 5});  // [L, S], broadcast over the batch
  std::vector<double> full;
  for (int b = 0; b < 2; ++b) full.insert(full.end(), fm.begin(), fm.end());
  auto res = scaled_dot_product_attention_with_weights(t.q, t.k, t.v, o);
  Ref ref = ref_attention(t.q, t.k, t.v, full, t.scale);
  check_close(res.output.to_vector<double>(), ref.out, 1e-12);
  check_close(res.weights.to_vector<double>(), ref.weights, 1e-12);
  CHECK(res.weights.at({1, 0, 2}) == 0.0);
}

TEST_CASE("attention: batch dims broadcast across q, k, v and the mask") {
  const int64_t L = 3, S = 4, E = 2, Ev = 3;
  Tensor q = rnd({2, 3, L, E}, 20), k = rnd({3, S, E}, 21), v = rnd({1, 1, S, Ev}, 22);
  auto keypad = pattern(2 * S, 0.7, 23);
  keypad[0] = keypad[S] = true;  // each batch keeps key 0
  AttentionOptions o;
  o.attn_mask = Tensor::from_vector(keypad, {2, 1, 1, S});  // key padding per batch element
  Tensor out = scaled_dot_product_attention(q, k, v, o);
  CHECK(out.shape() == Shape{2, 3, L, Ev});
  // reference on the explicitly expanded [6, ...] tensors
  Tensor qe = q.reshape({6, L, E});
  Tensor ke = k.expand({2, 3, S, E}).contiguous().reshape({6, S, E});
  Tensor ve = v.expand({2, 3, S, Ev}).contiguous().reshape({6, S, Ev});
  std::vector<bool> allow;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 3; ++h)
      for (int64_t i = 0; i < L; ++i)
        for (int64_t j = 0; j < S; ++j) allow.push_back(keypad[static_cast<size_t>(b * S + j)]);
  check_close(out.to_vector<double>(),
              ref_attention(qe, ke, ve, additive(6, L, S, allow, false), 1 / std::sqrt(2.0)).out,
              1e-12);
  // only v carries the batch: the mask may too
  Tensor q2 = rnd({L, E}, 24), k2 = rnd({S, E}, 25), v2 = rnd({2, S, Ev}, 26);
  auto allow2 = pattern(2 * L * S, 0.7, 27);
  for (int64_t r = 0; r < 2 * L; ++r) allow2[static_cast<size_t>(r * S)] = true;
  o.attn_mask = Tensor::from_vector(allow2, {2, L, S});
  Tensor out2 = scaled_dot_product_attention(q2, k2, v2, o);
  CHECK(out2.shape() == Shape{2, L, Ev});
  check_close(out2.to_vector<double>(),
              ref_attention(q2.expand({2, L, E}).contiguous(), k2.expand({2, S, E}).contiguous(),
                            v2, additive(2, L, S, allow2, false), 1 / std::sqrt(2.0))
                  .out,
              1e-12);
}

TEST_CASE(
    "attention: fully masked rows give zero weights, zero output and "
    "zero gradient") {
  Qkv t;
  auto allow = pattern(2 * 4 * 5, 0.6, 30);
  for (int64_t r = 0; r < 8; ++r) allow[static_cast<size_t>(r * 5)] = true;
  for (int j = 0; j < 5; ++j) allow[static_cast<size_t>(1 * 5 + j)] = false;  // batch 0, query 1
  for (int j = 0; j < 5; ++j) allow[static_cast<size_t>(7 * 5 + j)] = false;  // batch 1, query 3
  Tensor mask = Tensor::from_vector(allow, {2, 4, 5});
  AttentionOptions o;
  o.attn_mask = mask;
  Tensor q = t.q.detach().requires_grad_(), k = t.k.detach().requires_grad_(),
         v = t.v.detach().requires_grad_();
  auto res = scaled_dot_product_attention_with_weights(q, k, v, o);
  CHECK(all_finite(res.output));
  CHECK(all_finite(res.weights));
  Ref ref = ref_attention(t.q, t.k, t.v, additive(2, 4, 5, allow, false), t.scale);
  check_close(res.output.to_vector<double>(), ref.out, 1e-12);
  check_close(res.weights.to_vector<double>(), ref.weights, 1e-12);
  for (int64_t e = 0; e < 2; ++e) {
    CHECK(res.output.at({0, 1, e}) == 0.0);
    CHECK(res.output.at({1, 3, e}) == 0.0);
  }
  CHECK(res.weights.select(0, 0).select(0, 1).abs().sum().item() == 0.0);
  (res.output * rnd({2, 4, 2}, 31)).sum().backward();
  CHECK(all_finite(q.grad()));
  CHECK(all_finite(k.grad()));
  CHECK(all_finite(v.grad()));
  CHECK(q.grad().select(0, 0).select(0, 1).abs().sum().item() == 0.0);
  CHECK(q.grad().select(0, 1).select(0, 3).abs().sum().item() == 0.0);

  // a float mask whose row is all -inf, and a causal row emptied by a bool mask
  Tensor fm = Tensor::zeros({4, 5}, kFloat64);
  fm.select(0, 2).fill_(-INFINITY);
  AttentionOptions f;
  f.attn_mask = fm;
  Tensor out = scaled_dot_product_attention(t.q, t.k, t.v, f);
  CHECK(all_finite(out));
  CHECK(out.select(1, 2).abs().sum().item() == 0.0);
  CHECK(out.select(1, 1).abs().sum().item() > 0.0);
  AttentionOptions c;
  c.is_causal = true;
  // key 0 hidden; query 0 sees only key 0 causally, so it is fully masked
  c.attn_mask = ne(Tensor::arange(5).view({1, 5}), 0.0);
  Tensor oc = scaled_dot_product_attention(t.q, t.k, t.v, c);
  CHECK(all_finite(oc));
  CHECK(oc.select(1, 0).abs().sum().item() == 0.0);
  CHECK(oc.select(1, 1).abs().sum().item() > 0.0);
  // no keys at all (S = 0): every row is empty
  Tensor e = scaled_dot_product_attention(t.q, Tensor::zeros({2, 0, 3}, kFloat64),
                                          Tensor::zeros({2, 0, 2}, kFloat64));
  CHECK(e.shape() == Shape{2, 4, 2});
  CHECK(e.abs().sum().item() == 0.0);
}

TEST_CASE(
    "attention: dropout drops weights with probability p, scales the "
    "rest, reproducibly") {
  const int64_t n = 64;
  Tensor q = rnd({1, n, 8}, 70), k = rnd({1, n, 8}, 71);
  Tensor v = Tensor::eye(n, kFloat64).unsqueeze(0);  // output = the (dropped) weights
  const double p = 0.3;
  Generator gen(7);
  AttentionOptions o;
  o.dropout_p = p;
  o.generator = &gen;
  auto res = scaled_dot_product_attention_with_weights(q, k, v, o);
  auto out = res.output.to_vector<double>(), w = res.weights.to_vector<double>();
  int64_t dropped = 0;
  bool scaled_ok = true;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 0.0) {
      ++dropped;
    } else if (std::abs(out[i] - w[i] / (1 - p)) > 1e-12) {
      scaled_ok = false;
    }
  }
  CHECK(scaled_ok);
  // binomial(4096, 0.3): mean 1229, std 29
  CHECK(dropped > 1229 - 5 * 29);
  CHECK(dropped < 1229 + 5 * 29);
  // the returned weights are the probabilities before dropout
  auto rows = res.weights.sum(Shape{-1}).to_vector<double>();
  for (double r : rows) CHECK(r == doctest::Approx(1.0));
  // same seed, same mask; the generator advances between calls
  Generator g1(7);
  o.generator = &g1;
  CHECK(scaled_dot_product_attention(q, k, v, o).to_vector<double>() == out);
  CHECK(scaled_dot_product_attention(q, k, v, o).to_vector<double>() != out);
  // the default generator with manual_seed
  o.generator = nullptr;
  manual_seed(3);
  auto d1 = scaled_dot_product_attention(q, k, v, o).to_vector<double>();
  manual_seed(3);
  CHECK(scaled_dot_product_attention(q, k, v, o).to_vector<double>() == d1);
}

TEST_CASE("attention: float32 forward and backward agree with float64") {
  Qkv t;
  auto allow = pattern(2 * 4 * 5, 0.6, 80);
  for (int64_t r = 0; r < 8; ++r) allow[static_cast<size_t>(r * 5)] = true;
  for (int variant = 0; variant < 3; ++variant) {
    CAPTURE(variant);
    AttentionOptions o64, o32;
    if (variant == 1) {
      o64.attn_mask = o32.attn_mask = Tensor::from_vector(allow, {2, 4, 5});
      o64.is_causal = o32.is_causal = true;
    } else if (variant == 2) {
      o64.attn_mask = rnd({4, 5}, 81);
      o32.attn_mask = o64.attn_mask.to(kFloat32);
    }
    Tensor q64 = t.q.detach().requires_grad_(), q32 = t.q.to(kFloat32).requires_grad_();
    Tensor k64 = t.k.detach().requires_grad_(), k32 = t.k.to(kFloat32).requires_grad_();
    Tensor y64 = scaled_dot_product_attention(q64, k64, t.v, o64);
    Tensor y32 = scaled_dot_product_attention(q32, k32, t.v.to(kFloat32), o32);
    CHECK(y32.dtype() == kFloat32);
    check_close(y32.to_vector<double>(), y64.to_vector<double>(), 1e-5);
    Tensor g = rnd({2, 4, 2}, 82);
    y64.backward(g);
    y32.backward(g.to(kFloat32));
    check_close(q32.grad().to_vector<double>(), q64.grad().to_vector<double>(), 1e-5);
    check_close(k32.grad().to_vector<double>(), k64.grad().to_vector<double>(), 1e-5);
  }
}

TEST_CASE("attention: bad inputs name the op and what was expected") {
  Tensor q = Tensor::zeros({2, 3, 4}), k = Tensor::zeros({2, 5, 4}), v = Tensor::zeros({2, 5, 6});
  auto throws_with = [](auto&& f, const char* text) {
    CHECK_THROWS_WITH_AS(f(), doctest::Contains(text), Error);
  };
  auto sdpa = [](const Tensor& a, const Tensor& b, const Tensor& c, AttentionOptions o = {}) {
    return scaled_dot_product_attention(a, b, c, o);
  };
  throws_with([&] { sdpa(Tensor::zeros({4}), k, v); },
              "scaled_dot_product_attention: query, key and value need at "
              "least 2 dimensions");
  throws_with(
      [&] {
        sdpa(q, Tensor::zeros({2, 5, 3}), v);
      },
      "query and key need the same embedding size (last dim), got query [2, 3, "
      "4] and "
      "key [2, 5, 3]");
  throws_with(
      [&] {
        sdpa(q, k, Tensor::zeros({2, 4, 6}));
      },
      "key and value need the same sequence length (dim -2)");
  throws_with(
      [&] {
        sdpa(q, Tensor::zeros({3, 5, 4}), Tensor::zeros({3, 5, 6}));
      },
      "do not broadcast together");
  throws_with([&] { sdpa(q, k, v.to(kFloat64)); }, "same dtype");
  throws_with([&] { sdpa(q.to(kInt64), k, v); }, "expected a floating-point tensor for 'query'");
  AttentionOptions o;
  o.attn_mask = Tensor::zeros({3, 5}, kInt64);
  throws_with([&] { sdpa(q, k, v, o); }, "attn_mask must be bool");
  o.attn_mask = Tensor::zeros({3, 5}, kFloat64);
  throws_with([&] { sdpa(q, k, v, o); }, "attn_mask must be bool");
  o.attn_mask = Tensor::zeros({3, 4}, kBool);
  throws_with([&] { sdpa(q, k, v, o); },
              "attn_mask of shape [3, 4] does not broadcast to the attention "
              "scores' shape [..., "
              "L, S] = [2, 3, 5]");
  o.attn_mask = Tensor::zeros({3, 2, 3, 5}, kBool);
  throws_with([&] { sdpa(q, k, v, o); }, "does not broadcast");
  o.attn_mask = Tensor();
  o.dropout_p = 1.0;
  throws_with([&] { sdpa(q, k, v, o); }, "dropout_p must be in [0, 1), got 1");
  o.dropout_p = -0.1;
  throws_with([&] { sdpa(q, k, v, o); }, "dropout_p must be in [0, 1)");
  o.dropout_p = 0.0;
  o.scale = NAN;
  throws_with([&] { sdpa(q, k, v, o); }, "scale must be finite");
  throws_with([&] { sdpa(Tensor::zeros({2, 3, 0}), Tensor::zeros({2, 5, 0}), v); }, "needs E > 0");
  throws_with([&] { sdpa(Tensor(), k, v); }, "argument 'query' is an undefined tensor");
}
