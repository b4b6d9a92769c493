// Checker for task 6.1: the learner's Recall@k against a stable sort of every row (std::
// stable_sort by decreasing score), an implementation independent of metrics::recall_at_k's
// counting, which the solution calls.
#include <algorithm>
#include <numeric>

#include "checks.h"

namespace mmgrad::exercises {

namespace {

double by_sorting(const Tensor& similarity, int64_t k) {
  const int64_t Q = similarity.size(0), G = similarity.size(1);
  const std::vector<double> s = similarity.to_vector<double>();
  int64_t hits = 0;
  for (int64_t q = 0; q < Q; ++q) {
    std::vector<int64_t> order(static_cast<size_t>(G));
    std::iota(order.begin(), order.end(), 0);
    const double* row = s.data() + q * G;
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return row[a] > row[b]; });
    const auto pos = std::find(order.begin(), order.end(), q) - order.begin();
    hits += pos < k;
  }
  return static_cast<double>(hits) / static_cast<double>(Q);
}

}  // namespace

void check_recall_at_k(Checker& c, decltype(&recall_at_k) f) {
  Generator gen(61);
  struct Case {
    std::string what;
    Tensor sim;
    std::vector<int64_t> ks;
    std::string hint;
  };
  // Scores rounded to multiples of 0.25 tie often.
  Tensor coarse = Tensor::randint(0, 5, {8, 10}, DType::Int64, &gen).to(DType::Float32) * 0.25;
  const std::vector<Case> cases = {
      {"3 queries, 3 gallery items, hand-made",
       Tensor::from_vector({0.9, 0.1, 0.2,  //
                            0.8, 0.3, 0.1,  //
                            0.1, 0.2, 0.7},
                           {3, 3}, DType::Float64),
       {1, 2, 3},
       "query q's right answer is gallery item q (the diagonal): rank it in ROW q by decreasing "
       "score, ranks starting at 1, and count query q when rank(q) <= k"},
      {"6 random queries and items",
       Tensor::randn({6, 6}, DType::Float64, &gen),
       {1, 2, 3, 6},
       "rank(q) = 1 + #{j : s[q][j] > s[q][q]} (no ties here); recall@k = #{q : rank(q) <= k} / Q"},
      {"4 queries, 9 gallery items (5 distractors)",
       Tensor::randn({4, 9}, DType::Float64, &gen),
       {1, 3, 5, 9},
       "Q < G: rank item q among all G items of row q; divide by Q, the number of queries"},
      {"every score tied (a constant matrix)",
       Tensor::ones({4, 4}, DType::Float64),
       {1, 2, 3},
       "ties keep gallery order: an equal score with a smaller index ranks first, so "
       "rank(q) = 1 + #{j : s[q][j] > s[q][q]} + #{j < q : s[q][j] == s[q][q]}; here rank(q) = "
       "q + 1"},
      {"8 queries, 10 items, coarse float32 scores (many ties)",
       coarse,
       {1, 2, 4},
       "ties: items scoring the same as item q come before it only when their index is smaller"},
      {"k larger than the gallery",
       Tensor::randn({3, 5}, DType::Float64, &gen),
       {5, 7},
       "every item is in the top k when k >= G: recall 1"},
  };
  for (const Case& k : cases)
    for (int64_t kk : k.ks)
      c.close(cat_str(k.what, ": recall@", kk), f(k.sim, kk), by_sorting(k.sim, kk), 0, 1e-12,
              k.hint);
}

namespace {
// rank(q) with a few knobs; recall = share of rank <= k + slack.
double variant(const Tensor& sim, int64_t k, bool ascending, bool columns, bool ties_help,
               int64_t slack) {
  const int64_t Q = sim.size(0), G = sim.size(1);
  const std::vector<double> s = sim.to_vector<double>();
  auto at = [&](int64_t q, int64_t j) { return columns ? s[j * G + q] : s[q * G + j]; };
  const int64_t n = columns ? Q : G;
  int64_t hits = 0;
  for (int64_t q = 0; q < Q; ++q) {
    int64_t before = 0;
    for (int64_t j = 0; j < n; ++j) {
      const double a = at(q, j), b = at(q, q);
      const bool better = ascending ? a < b : a > b;
      before += better || (!ties_help && a == b && j < q);
    }
    hits += before + 1 <= k + slack;
  }
  return static_cast<double>(hits) / static_cast<double>(Q);
}
double top_k_plus_one(const Tensor& s, int64_t k) { return variant(s, k, false, false, false, 1); }
double ascending(const Tensor& s, int64_t k) { return variant(s, k, true, false, false, 0); }
double column_wise(const Tensor& s, int64_t k) { return variant(s, k, false, true, false, 0); }
double ties_help(const Tensor& s, int64_t k) { return variant(s, k, false, false, true, 0); }
double rank_below_k(const Tensor& s, int64_t k) { return variant(s, k, false, false, false, -1); }
}  // namespace

std::vector<Mutant> mutants_recall_at_k() {
  return {
      {"top k+1 (off by one)", [](Checker& c) { check_recall_at_k(c, &top_k_plus_one); }},
      {"ranks ascending", [](Checker& c) { check_recall_at_k(c, &ascending); }},
      {"column-wise", [](Checker& c) { check_recall_at_k(c, &column_wise); }},
      {"ties counted in the query's favour", [](Checker& c) { check_recall_at_k(c, &ties_help); }},
      {"rank < k (off by one the other way)",
       [](Checker& c) { check_recall_at_k(c, &rank_below_k); }},
  };
}

}  // namespace mmgrad::exercises
