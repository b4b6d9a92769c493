// Checker for task 9.1: the learner's prefix-LM mask, entry by entry, against the library's
// causal mask (no prefix) and a mask written out from its definition (with a prefix); then used
// in a pre-norm transformer layer like lesson 09's decoder: with no prefix it must give what
// is_causal = true gives, and with a prefix the image positions must see each other and no text.
#include "checks.h"
#include "mmgrad/nn/attention.h"
#include "mmgrad/nn/transformer.h"

namespace mmgrad::exercises {

namespace {
// From the definition: query i may NOT attend key j <=> j > i and j >= P.
Tensor by_definition(int64_t P, int64_t L) {
  std::vector<double> m(static_cast<size_t>(L * L));
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < L; ++j) m[i * L + j] = (j > i && j >= P) ? 1.0 : 0.0;
  return ne(Tensor::from_vector(m, {L, L}), 0.0);
}
}  // namespace

void check_prefix_lm_mask(Checker& c, decltype(&prefix_lm_mask) f) {
  struct Case {
    int64_t P, L;
    std::string hint;
  };
  const std::vector<Case> cases = {
      {0, 4,
       "with no prefix this is the causal mask: entry [i, j] (query i, key j) is true (masked "
       "out) exactly when j > i; a position sees itself and the past. true = may NOT attend"},
      {1, 4, "a 1-token prefix changes nothing: it is still the causal mask"},
      {3, 6,
       "query i may attend to key j when j <= i OR j < P: the prefix columns are open to every "
       "query, and prefix queries (rows i < P) must not see the text (columns j >= P)"},
      {4, 4, "P = L: the whole sequence is prefix, nothing is masked"},
      {18, 30, "lesson 09's sizes: 18 image positions, then 12 text positions"},
  };
  for (const Case& k : cases) {
    const std::string what = cat_str("mask for prefix_len ", k.P, ", seq_len ", k.L);
    Tensor got = f(k.P, k.L);
    c.shape(what, got, {k.L, k.L}, "[L, L]: one row per query, one column per key");
    if (got.dtype() != kBool)
      throw WrongAnswer(cat_str(what, ": your mask is ", dtype_name(got.dtype()),
                                " but should be bool\n        hint: a floating mask would be ADDED "
                                "to the attention scores, so 1.0 would mask nothing"));
    const Tensor want = k.P == 0 ? nn::causal_mask(k.L, k.L) : by_definition(k.P, k.L);
    c.close(what, got, want, 0, 0, k.hint);
  }

  // In a transformer layer like lesson 09's decoder (pre-norm, GELU, no dropout).
  nn::TransformerLayerOptions o;
  o.d_model = 16, o.nhead = 2, o.dim_feedforward = 32, o.dropout = 0.0;
  o.activation = nn::Activation::GELU, o.norm_first = true;
  nn::TransformerEncoderLayer layer(o);
  layer.eval();
  Generator gen(91);
  NoGradGuard no_grad;
  const int64_t L = 7, P = 3;
  Tensor x = Tensor::randn({2, L, 16}, DType::Float32, &gen);
  c.close(
      "decoder layer with your mask for prefix_len 0 against is_causal = true (the lesson's call)",
      layer.forward(x, f(0, L)), layer.forward(x, {}, {}, /*is_causal=*/true), 1e-5, 1e-6,
      "with no prefix your mask must do what is_causal = true does");
  // Changing the text (positions >= P) must leave the image positions' outputs unchanged, and
  // changing the last image token must change the first image position's output.
  const Tensor mask = f(P, L);
  const Tensor y = layer.forward(x, mask);
  Tensor x_text = x.clone();
  x_text.narrow(1, P, L - P).copy_(Tensor::randn({2, L - P, 16}, DType::Float32, &gen));
  c.close("image positions' outputs when only the text changes",
          layer.forward(x_text, mask).narrow(1, 0, P), y.narrow(1, 0, P), 1e-5, 1e-6,
          "an image position must not see any text position");
  Tensor x_img = x.clone();
  x_img.narrow(1, P - 1, 1).copy_(Tensor::randn({2, 1, 16}, DType::Float32, &gen));
  const double moved =
      max(abs(layer.forward(x_img, mask).narrow(1, 0, 1) - y.narrow(1, 0, 1))).item<double>();
  c.expect(moved > 1e-3, "position 0's output when the last image token changes",
           "did not change: in a prefix LM the first image position sees the whole image");
}

namespace {
// The query index i as a column [L, 1] and the key index j as a row [1, L].
Tensor rows(int64_t L) { return Tensor::arange(L).view({L, 1}); }
Tensor cols(int64_t L) { return Tensor::arange(L).view({1, L}); }
// The lesson's causal mask whatever the prefix: the image does not see itself both ways.
Tensor fully_causal(int64_t, int64_t L) { return nn::causal_mask(L, L); }
// Queries and keys swapped: blocked when i > j and i >= P.
Tensor transposed(int64_t P, int64_t L) {
  return logical_and(gt(rows(L), cols(L)), ge(rows(L), P)).contiguous();
}
// Off by one on the diagonal: j >= i blocked, so a position cannot see itself.
Tensor hides_diagonal(int64_t P, int64_t L) {
  return logical_and(ge(cols(L), rows(L)), ge(cols(L), P));
}
// The ops-level convention (true = may attend): the right mask negated.
Tensor true_means_attend(int64_t P, int64_t L) {
  return logical_not(logical_and(gt(cols(L), rows(L)), ge(cols(L), P)));
}
// Prefix rows open to everything, the text included.
Tensor prefix_sees_text(int64_t P, int64_t L) {
  return logical_and(logical_and(gt(cols(L), rows(L)), ge(cols(L), P)), ge(rows(L), P));
}
}  // namespace

std::vector<Mutant> mutants_prefix_lm_mask() {
  return {
      {"fully causal: the prefix is not bidirectional",
       [](Checker& c) { check_prefix_lm_mask(c, &fully_causal); }},
      {"transposed: queries and keys swapped",
       [](Checker& c) { check_prefix_lm_mask(c, &transposed); }},
      {"off by one on the diagonal: a position cannot see itself",
       [](Checker& c) { check_prefix_lm_mask(c, &hides_diagonal); }},
      {"true = may attend (the convention of ops/attention.h, not of the nn modules)",
       [](Checker& c) { check_prefix_lm_mask(c, &true_means_attend); }},
      {"the image positions see the text",
       [](Checker& c) { check_prefix_lm_mask(c, &prefix_sees_text); }},
  };
}

}  // namespace mmgrad::exercises
