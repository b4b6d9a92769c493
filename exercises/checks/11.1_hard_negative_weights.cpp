// Checker for task 11.1: the learner's hard-negative weights against lesson 11's
// hardneg::row_negative_weights, plus the properties the weights must have (zero diagonal, rows
// summing to 1 or 0, no NaN), on cases from uniform weights to a row with nothing left.
#include <cmath>

#include "11_hard_negatives/hard_negatives.h"
#include "checks.h"

namespace mmgrad::exercises {

namespace {
// Cosines of N random unit vectors in D dimensions (a realistic [N, N] similarity matrix).
Tensor random_cosines(int64_t n, int64_t d, DType dtype, Generator& gen) {
  Tensor e = normalize(Tensor::randn({n, d}, dtype, &gen), 1);
  return matmul(e, e.t()).contiguous();
}
Tensor bool_mask(const std::vector<int>& v, int64_t n) {
  return ne(Tensor::from_vector(std::vector<double>(v.begin(), v.end()), {n, n}), 0.0);
}
}  // namespace

void check_hard_negative_weights(Checker& c, decltype(&hard_negative_weights) f) {
  Generator gen(111);
  struct Case {
    Tensor cos, exclude;
    double beta;
    std::string what, hint;
  };
  std::vector<Case> cases;
  cases.push_back({Tensor::from_vector({1.0, 0.2, 0.3, 0.9}, {2, 2}, DType::Float32), Tensor(), 0.0,
                   "2 x 2, beta = 0",
                   "row i has one negative (the other column): its weight is 1, the diagonal "
                   "(the positive) gets 0"});
  cases.push_back({random_cosines(4, 8, DType::Float32, gen), Tensor(), 0.0,
                   "4 x 4 random cosines, beta = 0",
                   "beta = 0 makes every exp(beta cos) equal: uniform 1 / 3 over the 3 negatives "
                   "of each row, 0 on the diagonal"});
  cases.push_back({random_cosines(5, 8, DType::Float32, gen), Tensor(), 5.0,
                   "5 x 5 random cosines, beta = 5",
                   "w_ij = exp(beta cos_ij) / sum over the row's negatives k != i of "
                   "exp(beta cos_ik): the diagonal is not in the sum"});
  cases.push_back({random_cosines(4, 6, DType::Float64, gen),
                   bool_mask({0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0}, 4), 3.0,
                   "4 x 4 float64, beta = 3, pairs (0,1) (1,0) (2,3) (3,2) excluded",
                   "an excluded pair is not a negative: weight 0, and left out of the row's sum"});
  cases.push_back({random_cosines(4, 6, DType::Float32, gen),
                   bool_mask({0, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0}, 4), 2.0,
                   "4 x 4, beta = 2, row 0 has every negative excluded",
                   "a row with no negative left is all zeros (it must not become 0 / 0 = NaN)"});
  cases.push_back({Tensor::from_vector({1.0, 0.95, 0.3, -0.2, 0.95, 1.0, 0.5, 0.1, 0.3, 0.5, 1.0,
                                        0.92, -0.2, 0.1, 0.92, 1.0},
                                       {4, 4}, DType::Float32),
                   Tensor(), 100.0, "4 x 4 float32, beta = 100",
                   "exp(100 * cos) overflows float32 (its largest value is about exp(88.7)): "
                   "subtract each row's maximum before exp, as softmax does"});
  for (const Case& k : cases) {
    const int64_t n = k.cos.size(0);
    const std::string what = cat_str("weights for ", k.what);
    Tensor got = f(k.cos, k.exclude, k.beta);
    c.shape(what, got, k.cos.shape(), "one weight per (anchor, candidate) pair: cos's shape");
    Tensor want = hardneg::row_negative_weights(k.cos, k.exclude, k.beta).weights;
    // The properties first, so that the message names the one that fails: the positive (the
    // diagonal) takes no weight, and every row sums to 1 (or to 0 when it has no negative).
    const std::vector<double> w = got.to_vector<double>(), ref = want.to_vector<double>();
    for (int64_t i = 0; i < n; ++i) {
      if (w[i * n + i] != 0.0)
        throw WrongAnswer(cat_str(what, ": diagonal entry [", i, ", ", i, "] is ", w[i * n + i],
                                  " but should be 0", "\n        hint: ",
                                  std::isnan(w[i * n + i])
                                      ? k.hint
                                      : "pair (i, i) is the positive, not a negative; leave it out "
                                        "of the weights and of the row's sum"));
      double s = 0, s_ref = 0;
      for (int64_t j = 0; j < n; ++j) s += w[i * n + j], s_ref += ref[i * n + j];
      if (!(std::fabs(s - s_ref) < 1e-4))
        throw WrongAnswer(cat_str(what, ": row ", i, " sums to ", s, " but should sum to ", s_ref,
                                  "\n        hint: ", k.hint));
    }
    c.close(what, got, want, 1e-4, 1e-6, k.hint);
  }
}

namespace {
Tensor not_negative(const Tensor& cos, const Tensor& exclude, bool diagonal = true) {
  Tensor d = gt(Tensor::eye(cos.size(0), cos.options()), 0.5);
  if (!diagonal) d = Tensor::zeros(cos.shape(), kBool);
  return exclude.defined() ? logical_or(d, exclude) : d;
}
Tensor masked_softmax(const Tensor& logits, const Tensor& out) {
  return masked_fill(softmax(masked_fill(logits, out, -1e4), 1), out, 0.0);
}
// Forgets that the positive is not a negative: the diagonal takes a share.
Tensor keeps_diagonal(const Tensor& cos, const Tensor& exclude, double beta) {
  return masked_softmax(cos * beta, not_negative(cos, exclude, false));
}
// exp(-beta cos): favours the EASY negatives.
Tensor sign_error(const Tensor& cos, const Tensor& exclude, double beta) {
  return masked_softmax(cos * -beta, not_negative(cos, exclude));
}
// exp(beta cos) on the negatives, never divided by the row sum.
Tensor not_normalised(const Tensor& cos, const Tensor& exclude, double beta) {
  return masked_fill(exp(cos * beta), not_negative(cos, exclude), 0.0);
}
// Right formula, but a row without negatives divides 0 by 0.
Tensor nan_on_empty_row(const Tensor& cos, const Tensor& exclude, double beta) {
  Tensor out = not_negative(cos, exclude);
  Tensor e = masked_fill(exp(cos * beta - max(cos * beta, 1, true)), out, 0.0);
  return e / sum(e, {1}, true);
}
// Plain exp(beta cos) / sum: right until exp overflows.
Tensor overflows(const Tensor& cos, const Tensor& exclude, double beta) {
  Tensor out = not_negative(cos, exclude);
  Tensor e = masked_fill(exp(cos * beta), out, 0.0);
  return masked_fill(e / clamp_min(sum(e, {1}, true), 1e-30), out, 0.0);
}
}  // namespace

std::vector<Mutant> mutants_hard_negative_weights() {
  return {
      {"does not exclude the diagonal",
       [](Checker& c) { check_hard_negative_weights(c, &keeps_diagonal); }},
      {"exp(-beta cos): the sign is wrong",
       [](Checker& c) { check_hard_negative_weights(c, &sign_error); }},
      {"does not normalise the rows",
       [](Checker& c) { check_hard_negative_weights(c, &not_normalised); }},
      {"0 / 0 on a row with every negative excluded",
       [](Checker& c) { check_hard_negative_weights(c, &nan_on_empty_row); }},
      {"exp without subtracting the maximum (overflows at large beta)",
       [](Checker& c) { check_hard_negative_weights(c, &overflows); }},
  };
}

}  // namespace mmgrad::exercises
