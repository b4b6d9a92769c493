#include "mmgrad/metrics/captioning.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>

#include "mmgrad/core/error.h"

namespace mmgrad::metrics {

namespace {

bool is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
// ASCII punctuation: the printable characters that are neither letters, digits nor space.
bool is_punct(unsigned char c) {
  return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
         (c >= '{' && c <= '~');
}
char lower(unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c); }

// An n-gram is its words; the map orders them, so every sum below runs in the same order.
using Ngrams = std::map<Words, int64_t>;

// Counts of the n-grams of one length n.
Ngrams count_ngrams(const Words& w, size_t n) {
  Ngrams c;
  for (size_t i = 0; i + n <= w.size(); ++i) c[Words(w.begin() + i, w.begin() + i + n)] += 1;
  return c;
}

// The checks every caption metric shares: one non-empty reference list per candidate.
void check_corpus(const char* op, size_t n_candidates,
                  const std::vector<std::vector<std::string>>& refs) {
  MMGRAD_CHECK(n_candidates > 0, op, ": empty corpus (no candidates)");
  MMGRAD_CHECK(n_candidates == refs.size(), op, ": ", n_candidates, " candidates but ", refs.size(),
               " reference lists (one list per candidate)");
  for (size_t i = 0; i < refs.size(); ++i)
    MMGRAD_CHECK(!refs[i].empty(), op, ": candidate ", i,
                 " has an empty reference list (expected at least one reference caption)");
}

std::vector<Words> tokenize_all(const std::vector<std::string>& texts) {
  std::vector<Words> out;
  out.reserve(texts.size());
  for (const std::string& t : texts) out.push_back(caption_words(t));
  return out;
}

// Length of the longest common subsequence of two word sequences: the classic dynamic
// programme, L[i][j] = LCS of a[0..i) and b[0..j), one row at a time.
size_t lcs_length(const Words& a, const Words& b) {
  std::vector<size_t> prev(b.size() + 1, 0), cur(b.size() + 1, 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

double rouge_l_words(const Words& cand, const std::vector<Words>& refs, double beta) {
  if (cand.empty()) return 0.0;
  double p_max = 0, r_max = 0;
  for (const Words& r : refs) {
    if (r.empty()) continue;  // matches nothing: P = R = 0 (coco-caption would divide by 0)
    const double lcs = static_cast<double>(lcs_length(cand, r));
    p_max = std::max(p_max, lcs / static_cast<double>(cand.size()));
    r_max = std::max(r_max, lcs / static_cast<double>(r.size()));
  }
  if (p_max == 0 || r_max == 0) return 0.0;
  const double b2 = beta * beta;
  return (1 + b2) * p_max * r_max / (r_max + b2 * p_max);
}

void check_beta(const char* op, double beta) {
  MMGRAD_CHECK(std::isfinite(beta) && beta > 0, op, ": beta must be finite and > 0, got ", beta);
}

// ---- CIDEr-D ----
constexpr int kCiderN = 4;
constexpr double kCiderSigma = 6.0;

// One sentence as TF-IDF vectors, one per n-gram order, with their norms.
struct TfIdf {
  std::map<Words, double> vec[kCiderN];
  double norm[kCiderN] = {0, 0, 0, 0};
  double length = 0;  // in words
};

TfIdf tf_idf(const Words& w, const std::map<Words, int64_t>& df, double log_items) {
  TfIdf t;
  t.length = static_cast<double>(w.size());
  for (int n = 1; n <= kCiderN; ++n) {
    for (const auto& [gram, tf] : count_ngrams(w, static_cast<size_t>(n))) {
      auto it = df.find(gram);
      const double d = it == df.end() ? 0.0 : static_cast<double>(it->second);
      const double v = static_cast<double>(tf) * (log_items - std::log(std::max(1.0, d)));
      t.vec[n - 1][gram] = v;
      t.norm[n - 1] += v * v;
    }
    t.norm[n - 1] = std::sqrt(t.norm[n - 1]);
  }
  return t;
}

// s_n for n = 1..4 between a candidate and one reference (header formula), added to `acc`.
void add_similarity(const TfIdf& c, const TfIdf& r, double acc[kCiderN]) {
  const double delta = c.length - r.length;
  const double penalty = std::exp(-(delta * delta) / (2 * kCiderSigma * kCiderSigma));
  for (int n = 0; n < kCiderN; ++n) {
    double dot = 0;
    for (const auto& [gram, cv] : c.vec[n]) {
      auto it = r.vec[n].find(gram);
      if (it == r.vec[n].end()) continue;
      dot += std::min(cv, it->second) * it->second;  // clipped by the reference's entry
    }
    if (c.norm[n] != 0 && r.norm[n] != 0) dot /= c.norm[n] * r.norm[n];
    acc[n] += dot * penalty;
  }
}

}  // namespace

Words caption_words(std::string_view text) {
  Words out;
  std::string word;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_space(c) || is_punct(c)) {
      if (!word.empty()) out.push_back(std::move(word));
      word.clear();
    } else {
      word.push_back(lower(c));
    }
  }
  if (!word.empty()) out.push_back(std::move(word));
  return out;
}

// ---- BLEU ----

std::vector<double> corpus_bleu(const std::vector<std::string>& candidates,
                                const std::vector<std::vector<std::string>>& references,
                                int max_n) {
  const char* op = "corpus_bleu";
  check_corpus(op, candidates.size(), references);
  MMGRAD_CHECK(max_n >= 1, op, ": max_n must be >= 1 (BLEU-1..max_n), got ", max_n);
  const size_t N = static_cast<size_t>(max_n);
  std::vector<int64_t> matches(N, 0), totals(N, 0);
  int64_t cand_len = 0, ref_len = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Words cand = caption_words(candidates[i]);
    const std::vector<Words> refs = tokenize_all(references[i]);
    for (size_t n = 1; n <= N; ++n) {
      // Clip each candidate n-gram's count by the most times any ONE reference contains it.
      Ngrams max_ref;
      for (const Words& r : refs)
        for (const auto& [gram, cnt] : count_ngrams(r, n))
          max_ref[gram] = std::max(max_ref[gram], cnt);
      for (const auto& [gram, cnt] : count_ngrams(cand, n)) {
        auto it = max_ref.find(gram);
        matches[n - 1] += std::min(cnt, it == max_ref.end() ? int64_t{0} : it->second);
        totals[n - 1] += cnt;
      }
    }
    // The reference length closest to the candidate's; the shorter one on a tie.
    const int64_t c = static_cast<int64_t>(cand.size());
    int64_t best = static_cast<int64_t>(refs[0].size());
    for (const Words& r : refs) {
      const int64_t len = static_cast<int64_t>(r.size());
      const int64_t d = std::llabs(len - c), bd = std::llabs(best - c);
      if (d < bd || (d == bd && len < best)) best = len;
    }
    cand_len += c;
    ref_len += best;
  }
  std::vector<double> bleu(N, 0.0);
  if (cand_len == 0) return bleu;  // nothing generated: every precision is 0/0, defined as 0
  const double c = static_cast<double>(cand_len), r = static_cast<double>(ref_len);
  const double bp = c > r ? 1.0 : std::exp(1.0 - r / c);
  double log_sum = 0;
  for (size_t n = 0; n < N; ++n) {
    if (matches[n] == 0) break;  // p_n = 0 (or no n-grams): BLEU-n and above are 0
    log_sum += std::log(static_cast<double>(matches[n]) / static_cast<double>(totals[n]));
    bleu[n] = bp * std::exp(log_sum / static_cast<double>(n + 1));
  }
  return bleu;
}

// ---- ROUGE-L ----

double sentence_rouge_l(const std::string& candidate, const std::vector<std::string>& references,
                        double beta) {
  const char* op = "sentence_rouge_l";
  check_beta(op, beta);
  MMGRAD_CHECK(!references.empty(), op,
               ": empty reference list (expected at least one reference caption)");
  return rouge_l_words(caption_words(candidate), tokenize_all(references), beta);
}

double rouge_l(const std::vector<std::string>& candidates,
               const std::vector<std::vector<std::string>>& references, double beta) {
  const char* op = "rouge_l";
  check_corpus(op, candidates.size(), references);
  check_beta(op, beta);
  double sum = 0;
  for (size_t i = 0; i < candidates.size(); ++i)
    sum += rouge_l_words(caption_words(candidates[i]), tokenize_all(references[i]), beta);
  return sum / static_cast<double>(candidates.size());
}

// ---- CIDEr-D ----

std::vector<double> cider_d_scores(const std::vector<std::string>& candidates,
                                   const std::vector<std::vector<std::string>>& references) {
  check_corpus("cider_d", candidates.size(), references);
  std::vector<std::vector<Words>> refs;
  refs.reserve(references.size());
  for (const auto& r : references) refs.push_back(tokenize_all(r));
  // Document frequency: in how many ITEMS' references (not how many references) each n-gram
  // occurs.
  std::map<Words, int64_t> df;
  for (const std::vector<Words>& item : refs) {
    std::set<Words> seen;
    for (const Words& r : item)
      for (int n = 1; n <= kCiderN; ++n)
        for (auto& [gram, cnt] : count_ngrams(r, static_cast<size_t>(n))) seen.insert(gram);
    for (const Words& gram : seen) df[gram] += 1;
  }
  const double log_items = std::log(static_cast<double>(candidates.size()));
  std::vector<double> scores;
  scores.reserve(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    const TfIdf c = tf_idf(caption_words(candidates[i]), df, log_items);
    double acc[kCiderN] = {0, 0, 0, 0};
    for (const Words& r : refs[i]) add_similarity(c, tf_idf(r, df, log_items), acc);
    double mean = 0;
    for (int n = 0; n < kCiderN; ++n) mean += acc[n];
    mean /= kCiderN;
    scores.push_back(10.0 * mean / static_cast<double>(refs[i].size()));
  }
  return scores;
}

double cider_d(const std::vector<std::string>& candidates,
               const std::vector<std::vector<std::string>>& references) {
  const std::vector<double> s = cider_d_scores(candidates, references);
  double sum = 0;
  for (double v : s) sum += v;
  return sum / static_cast<double>(s.size());
}

// ---- VQA ----

std::string normalize_vqa_answer(std::string_view answer) {
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  // Step 1: characters (lower case, periods, commas, other punctuation).
  std::string s;
  for (size_t i = 0; i < answer.size(); ++i) {
    const char c = lower(static_cast<unsigned char>(answer[i]));
    const bool digit_before = i > 0 && is_digit(answer[i - 1]);
    const bool digit_after = i + 1 < answer.size() && is_digit(answer[i + 1]);
    if (c == '.') {
      if (digit_after) s.push_back(c);  // a decimal point; otherwise the period is deleted
    } else if (c == ',' && digit_before && digit_after) {
      // a thousands separator: deleted
    } else if (std::string_view(";/[]\"{}()=+\\_-><@`,?!").find(c) != std::string_view::npos) {
      s.push_back(' ');
    } else {
      s.push_back(c);
    }
  }
  // Step 2: words (number words -> digits, articles dropped), joined by single spaces.
  static const std::map<std::string, std::string> numbers = {
      {"none", "0"}, {"zero", "0"}, {"one", "1"},   {"two", "2"},   {"three", "3"}, {"four", "4"},
      {"five", "5"}, {"six", "6"},  {"seven", "7"}, {"eight", "8"}, {"nine", "9"},  {"ten", "10"}};
  std::string out, word;
  auto flush = [&] {
    if (word.empty() || word == "a" || word == "an" || word == "the") {
      word.clear();
      return;
    }
    auto it = numbers.find(word);
    if (!out.empty()) out.push_back(' ');
    out += it == numbers.end() ? word : it->second;
    word.clear();
  };
  for (char c : s) {
    if (is_space(static_cast<unsigned char>(c)))
      flush();
    else
      word.push_back(c);
  }
  flush();
  return out;
}

double vqa_accuracy(const std::string& answer, const std::vector<std::string>& human_answers) {
  const char* op = "vqa_accuracy";
  MMGRAD_CHECK(
      human_answers.size() >= 2, op, ": got ", human_answers.size(),
      " human answers, expected at least 2 (VQA has 10; the score compares the answer with "
      "the other humans, so with one human every answer would score 0)");
  const std::string a = normalize_vqa_answer(answer);
  if (a.empty()) return 0.0;
  std::vector<bool> same;
  int64_t agree = 0;
  for (const std::string& h : human_answers) {
    same.push_back(normalize_vqa_answer(h) == a);
    agree += same.back();
  }
  // Leave each human out in turn; the others vote: min(#agreeing others / 3, 1).
  double sum = 0;
  for (bool left_out_agrees : same)
    sum += std::min(1.0, static_cast<double>(agree - (left_out_agrees ? 1 : 0)) / 3.0);
  return sum / static_cast<double>(human_answers.size());
}

double mean_vqa_accuracy(const std::vector<std::string>& answers,
                         const std::vector<std::vector<std::string>>& human_answers) {
  const char* op = "mean_vqa_accuracy";
  MMGRAD_CHECK(!answers.empty(), op, ": no answers (empty set of questions)");
  MMGRAD_CHECK(answers.size() == human_answers.size(), op, ": ", answers.size(), " answers but ",
               human_answers.size(), " lists of human answers (one list per question)");
  for (size_t i = 0; i < answers.size(); ++i)
    MMGRAD_CHECK(human_answers[i].size() >= 2, op, ": question ", i, " has ",
                 human_answers[i].size(), " human answers, expected at least 2 (VQA has 10)");
  double sum = 0;
  for (size_t i = 0; i < answers.size(); ++i) sum += vqa_accuracy(answers[i], human_answers[i]);
  return sum / static_cast<double>(answers.size());
}

}  // namespace mmgrad::metrics
