#include "mmgrad/metrics/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "mmgrad/core/error.h"

namespace mmgrad::metrics {

namespace {

std::string what(const Tensor& t) { return t.defined() ? describe(t) : "an undefined tensor"; }

// Predicted class ids from int64 ids [N] or float scores [N, C] (arg-max per row, first on ties).
std::vector<int64_t> predicted_classes(const char* op, const Tensor& pred) {
  MMGRAD_CHECK(pred.defined(), op, ": pred is an undefined tensor");
  if (pred.dtype() == kInt64) {
    MMGRAD_CHECK(pred.dim() == 1, op, ": int64 pred must be class ids [N], got ", describe(pred));
    return pred.to_vector<int64_t>();
  }
  MMGRAD_CHECK(pred.is_floating_point() && pred.dim() == 2, op, ": pred must be int64 class ids ",
               "[N] or float scores [N, C], got ", describe(pred));
  const int64_t n = pred.size(0), c = pred.size(1);
  MMGRAD_CHECK(c > 0 || n == 0, op, ": scores have no classes: ", describe(pred));
  std::vector<double> s = pred.to_vector<double>();
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double* row = s.data() + i * c;
    int64_t best = 0;
    for (int64_t j = 0; j < c; ++j) {
      MMGRAD_CHECK(!std::isnan(row[j]), op, ": pred has NaN at [", i, ", ", j, "]");
      if (row[j] > row[best]) best = j;
    }
    out[i] = best;
  }
  return out;
}

std::vector<int64_t> target_classes(const char* op, const Tensor& target, int64_t n) {
  MMGRAD_CHECK(target.defined() && target.dtype() == kInt64 && target.dim() == 1, op,
               ": target must be int64 class ids [N], got ", what(target));
  MMGRAD_CHECK(target.size(0) == n, op, ": pred has ", n, " samples but target ", describe(target),
               " has ", target.size(0));
  return target.to_vector<int64_t>();
}

void check_class_range(const char* op, const std::vector<int64_t>& v, int64_t num_classes,
                       const char* name) {
  for (size_t i = 0; i < v.size(); ++i)
    MMGRAD_CHECK(v[i] >= 0 && v[i] < num_classes, op, ": ", name, "[", i, "] = ", v[i],
                 " is outside [0, ", num_classes, ")");
}

// Row-major [Q, G] scores as doubles.
std::vector<double> similarity_values(const char* op, const Tensor& sim, int64_t& q, int64_t& g) {
  MMGRAD_CHECK(sim.defined() && sim.dim() == 2 && sim.dtype() != kBool, op,
               ": similarity must be a 2-D [queries, gallery] tensor, got ", what(sim));
  q = sim.size(0);
  g = sim.size(1);
  MMGRAD_CHECK(q > 0 && g > 0, op, ": similarity is empty: ", describe(sim));
  std::vector<double> s = sim.to_vector<double>();
  for (size_t i = 0; i < s.size(); ++i)
    MMGRAD_CHECK(!std::isnan(s[i]), op, ": similarity has NaN at [", i / g, ", ", i % g, "]");
  return s;
}

// Position (1-based) of gallery item `best` when row is sorted by decreasing score, equal scores
// in gallery order: the items ranked before it score higher, or equal with a smaller index.
int64_t rank_of(const double* row, int64_t g, int64_t best) {
  int64_t before = 0;
  for (int64_t j = 0; j < g; ++j)
    before += (row[j] > row[best]) || (row[j] == row[best] && j < best);
  return before + 1;
}

void check_ks(const char* op, const std::vector<int64_t>& ks) {
  MMGRAD_CHECK(!ks.empty(), op, ": no k given");
  for (int64_t k : ks) MMGRAD_CHECK(k >= 1, op, ": k must be >= 1, got ", k);
}

std::vector<double> recalls_from_ranks(const Tensor& ranks, const std::vector<int64_t>& ks) {
  std::vector<int64_t> r = ranks.to_vector<int64_t>();
  std::vector<double> out;
  for (int64_t k : ks) {
    int64_t hits = 0;
    for (int64_t x : r) hits += x <= k;
    out.push_back(static_cast<double>(hits) / static_cast<double>(r.size()));
  }
  return out;
}

double mrr_from_ranks(const Tensor& ranks) {
  std::vector<int64_t> r = ranks.to_vector<int64_t>();
  double s = 0;
  for (int64_t x : r) s += 1.0 / static_cast<double>(x);
  return s / static_cast<double>(r.size());
}

// ---- BLEU pieces -------------------------------------------------------------------------------

using NgramCounts = std::map<std::vector<int64_t>, int64_t>;

NgramCounts count_ngrams(const Tokens& t, size_t n) {
  NgramCounts c;
  for (size_t i = 0; i + n <= t.size(); ++i) ++c[Tokens(t.begin() + i, t.begin() + i + n)];
  return c;
}

struct BleuStats {
  int64_t matches[4] = {0, 0, 0, 0};  // clipped n-gram matches, n = 1..4
  int64_t totals[4] = {0, 0, 0, 0};   // candidate n-grams
  int64_t cand_len = 0;
  int64_t ref_len = 0;  // best-match reference length
};

void accumulate(BleuStats& st, const Tokens& cand, const std::vector<Tokens>& refs, const char* op,
                size_t index) {
  MMGRAD_CHECK(!refs.empty(), op, ": candidate ", index, " has no reference");
  for (size_t n = 1; n <= 4; ++n) {
    NgramCounts cc = count_ngrams(cand, n);
    // Clip each n-gram's count by the most times any single reference contains it.
    NgramCounts max_ref;
    for (const Tokens& r : refs)
      for (auto& [gram, cnt] : count_ngrams(r, n)) max_ref[gram] = std::max(max_ref[gram], cnt);
    for (auto& [gram, cnt] : cc) {
      auto it = max_ref.find(gram);
      st.matches[n - 1] += std::min(cnt, it == max_ref.end() ? int64_t{0} : it->second);
      st.totals[n - 1] += cnt;
    }
  }
  const int64_t c = static_cast<int64_t>(cand.size());
  int64_t best = static_cast<int64_t>(refs[0].size());
  for (const Tokens& r : refs) {
    int64_t len = static_cast<int64_t>(r.size());
    int64_t d = std::llabs(len - c), bd = std::llabs(best - c);
    if (d < bd || (d == bd && len < best)) best = len;
  }
  st.cand_len += c;
  st.ref_len += best;
}

double bleu_from_stats(const BleuStats& st, BleuSmoothing smoothing) {
  if (st.matches[0] == 0 || st.cand_len == 0) return 0.0;
  double log_sum = 0;
  for (int n = 0; n < 4; ++n) {
    double m = static_cast<double>(st.matches[n]), t = static_cast<double>(st.totals[n]);
    if (smoothing == BleuSmoothing::AddOne && n > 0) m += 1, t += 1;
    if (m == 0) return 0.0;  // geometric mean with a zero factor
    log_sum += std::log(m / t);
  }
  double c = static_cast<double>(st.cand_len), r = static_cast<double>(st.ref_len);
  double bp = c > r ? 1.0 : std::exp(1.0 - r / c);
  return bp * std::exp(log_sum / 4.0);
}

}  // namespace

// ---- classification ----------------------------------------------------------------------------

double accuracy(const Tensor& pred, const Tensor& target) {
  const char* op = "accuracy";
  std::vector<int64_t> p = predicted_classes(op, pred);
  std::vector<int64_t> t = target_classes(op, target, static_cast<int64_t>(p.size()));
  MMGRAD_CHECK(!p.empty(), op, ": no samples (accuracy of nothing is undefined)");
  int64_t right = 0;
  for (size_t i = 0; i < p.size(); ++i) right += p[i] == t[i];
  return static_cast<double>(right) / static_cast<double>(p.size());
}

Tensor confusion_matrix(const Tensor& pred, const Tensor& target, int64_t num_classes) {
  const char* op = "confusion_matrix";
  MMGRAD_CHECK(num_classes > 0, op, ": num_classes must be positive, got ", num_classes);
  std::vector<int64_t> p = predicted_classes(op, pred);
  std::vector<int64_t> t = target_classes(op, target, static_cast<int64_t>(p.size()));
  check_class_range(op, p, num_classes, "pred");
  check_class_range(op, t, num_classes, "target");
  std::vector<int64_t> m(static_cast<size_t>(num_classes * num_classes), 0);
  for (size_t i = 0; i < p.size(); ++i) ++m[t[i] * num_classes + p[i]];
  return Tensor::from_vector(m, {num_classes, num_classes});
}

Tensor per_class_accuracy(const Tensor& pred, const Tensor& target, int64_t num_classes) {
  const char* op = "per_class_accuracy";
  MMGRAD_CHECK(num_classes > 0, op, ": num_classes must be positive, got ", num_classes);
  std::vector<int64_t> p = predicted_classes(op, pred);
  std::vector<int64_t> t = target_classes(op, target, static_cast<int64_t>(p.size()));
  check_class_range(op, t, num_classes, "target");
  std::vector<int64_t> right(static_cast<size_t>(num_classes), 0), total(right);
  for (size_t i = 0; i < p.size(); ++i) {
    ++total[t[i]];
    right[t[i]] += p[i] == t[i];
  }
  std::vector<double> acc(static_cast<size_t>(num_classes));
  for (int64_t c = 0; c < num_classes; ++c)
    acc[c] = total[c] ? static_cast<double>(right[c]) / static_cast<double>(total[c])
                      : std::numeric_limits<double>::quiet_NaN();
  return Tensor::from_vector(acc, {num_classes});
}

// ---- retrieval ---------------------------------------------------------------------------------

Tensor retrieval_ranks(const Tensor& similarity, const Tensor& query_labels,
                       const Tensor& gallery_labels) {
  const char* op = "retrieval_ranks";
  int64_t q = 0, g = 0;
  std::vector<double> s = similarity_values(op, similarity, q, g);
  MMGRAD_CHECK(query_labels.defined() && query_labels.dtype() == kInt64 &&
                   query_labels.dim() == 1 && query_labels.size(0) == q,
               op, ": query_labels must be int64 [", q, "] for similarity ", describe(similarity),
               ", got ", what(query_labels));
  MMGRAD_CHECK(gallery_labels.defined() && gallery_labels.dtype() == kInt64 &&
                   gallery_labels.dim() == 1 && gallery_labels.size(0) == g,
               op, ": gallery_labels must be int64 [", g, "] for similarity ", describe(similarity),
               ", got ", what(gallery_labels));
  std::vector<int64_t> ql = query_labels.to_vector<int64_t>();
  std::vector<int64_t> gl = gallery_labels.to_vector<int64_t>();
  std::vector<int64_t> ranks(static_cast<size_t>(q));
  for (int64_t i = 0; i < q; ++i) {
    const double* row = s.data() + i * g;
    // The best-ranked relevant item: highest score, lowest index among equals. Everything
    // ranked above it is irrelevant, so its position is the query's rank.
    int64_t best = -1;
    for (int64_t j = 0; j < g; ++j)
      if (gl[j] == ql[i] && (best < 0 || row[j] > row[best])) best = j;
    MMGRAD_CHECK(best >= 0, op, ": query ", i, " has label ", ql[i],
                 " but no gallery item has that label (relevance undefined)");
    ranks[i] = rank_of(row, g, best);
  }
  return Tensor::from_vector(ranks, {q});
}

Tensor retrieval_ranks(const Tensor& similarity) {
  const char* op = "retrieval_ranks";
  int64_t q = 0, g = 0;
  std::vector<double> s = similarity_values(op, similarity, q, g);
  MMGRAD_CHECK(q <= g, op, ": exact-pair retrieval needs gallery item i for every query i, but ",
               "similarity ", describe(similarity), " has more queries than gallery items");
  std::vector<int64_t> ranks(static_cast<size_t>(q));
  for (int64_t i = 0; i < q; ++i) ranks[i] = rank_of(s.data() + i * g, g, i);
  return Tensor::from_vector(ranks, {q});
}

double recall_at_k(const Tensor& similarity, const Tensor& query_labels,
                   const Tensor& gallery_labels, int64_t k) {
  check_ks("recall_at_k", {k});
  return recalls_from_ranks(retrieval_ranks(similarity, query_labels, gallery_labels), {k})[0];
}

double recall_at_k(const Tensor& similarity, int64_t k) {
  check_ks("recall_at_k", {k});
  return recalls_from_ranks(retrieval_ranks(similarity), {k})[0];
}

std::vector<double> recall_at_ks(const Tensor& similarity, const Tensor& query_labels,
                                 const Tensor& gallery_labels, const std::vector<int64_t>& ks) {
  check_ks("recall_at_ks", ks);
  return recalls_from_ranks(retrieval_ranks(similarity, query_labels, gallery_labels), ks);
}

std::vector<double> recall_at_ks(const Tensor& similarity, const std::vector<int64_t>& ks) {
  check_ks("recall_at_ks", ks);
  return recalls_from_ranks(retrieval_ranks(similarity), ks);
}

double mean_reciprocal_rank(const Tensor& similarity, const Tensor& query_labels,
                            const Tensor& gallery_labels) {
  return mrr_from_ranks(retrieval_ranks(similarity, query_labels, gallery_labels));
}

double mean_reciprocal_rank(const Tensor& similarity) {
  return mrr_from_ranks(retrieval_ranks(similarity));
}

// ---- BLEU --------------------------------------------------------------------------------------

double bleu4(const std::vector<Tokens>& candidates,
             const std::vector<std::vector<Tokens>>& references) {
  const char* op = "bleu4";
  MMGRAD_CHECK(candidates.size() == references.size(), op, ": ", candidates.size(),
               " candidates but ", references.size(), " reference lists (one per candidate)");
  MMGRAD_CHECK(!candidates.empty(), op, ": no candidates");
  BleuStats st;
  for (size_t i = 0; i < candidates.size(); ++i)
    accumulate(st, candidates[i], references[i], op, i);
  return bleu_from_stats(st, BleuSmoothing::None);
}

double bleu4(const std::vector<Tokens>& candidates, const std::vector<Tokens>& references) {
  MMGRAD_CHECK(candidates.size() == references.size(), "bleu4: ", candidates.size(),
               " candidates but ", references.size(), " references (one per candidate)");
  std::vector<std::vector<Tokens>> refs;
  refs.reserve(references.size());
  for (const Tokens& r : references) refs.push_back({r});
  return bleu4(candidates, refs);
}

double sentence_bleu4(const Tokens& candidate, const std::vector<Tokens>& references,
                      BleuSmoothing smoothing) {
  BleuStats st;
  accumulate(st, candidate, references, "sentence_bleu4", 0);
  return bleu_from_stats(st, smoothing);
}

}  // namespace mmgrad::metrics
