// Caption and VQA metrics (metrics/captioning.h) against values computed by hand: the
// arithmetic is written next to each check, so a reader can redo it on paper. Then the
// invariances every caption metric must have, and the bad-input errors.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "mmgrad/core/error.h"
#include "mmgrad/metrics/captioning.h"
#include "mmgrad/metrics/metrics.h"

using namespace mmgrad;
using namespace mmgrad::metrics;
using Refs = std::vector<std::vector<std::string>>;
using Strings = std::vector<std::string>;

// ---- tokenisation ------------------------------------------------------------------------------

TEST_CASE("captioning: tokenisation lower-cases and splits at whitespace and punctuation") {
  CHECK(caption_words("A red-and-blue  Circle.") == Words{"a", "red", "and", "blue", "circle"});
  CHECK(caption_words("isn't\tit?\n") == Words{"isn", "t", "it"});
  CHECK(caption_words("  ...  ").empty());
  CHECK(caption_words("").empty());
  CHECK(caption_words("caf\xc3\xa9 2x") == Words{"caf\xc3\xa9", "2x"});  // UTF-8 kept as is
}

// ---- BLEU --------------------------------------------------------------------------------------

TEST_CASE("captioning: BLEU-1..4 of one sentence by hand") {
  // cand "the cat sat on the mat", ref "the cat is on the mat" (both 6 words, BP = 1):
  //   1-grams: the x2, cat, on, mat match (the is clipped at 2, sat does not) -> p1 = 5/6
  //   2-grams: the cat, on the, the mat of {the cat, cat sat, sat on, on the, the mat} -> 3/5
  //   3-grams: on the mat of 4 -> p3 = 1/4;  4-grams: none of 3 -> p4 = 0
  //   BLEU-1 = 5/6, BLEU-2 = sqrt(5/6 * 3/5) = sqrt(1/2), BLEU-3 = (1/8)^(1/3) = 1/2, BLEU-4 = 0.
  std::vector<double> b = corpus_bleu({"the cat sat on the mat"}, {{"the cat is on the mat"}});
  REQUIRE(b.size() == 4);
  CHECK(b[0] == doctest::Approx(5.0 / 6));
  CHECK(b[1] == doctest::Approx(std::sqrt(0.5)));
  CHECK(b[2] == doctest::Approx(0.5));
  CHECK(b[3] == 0.0);  // no smoothing: exactly 0
  // max_n picks how many orders come back.
  CHECK(corpus_bleu({"the cat sat on the mat"}, {{"the cat is on the mat"}}, 2).size() == 2);
}

TEST_CASE("captioning: corpus BLEU sums the statistics before dividing") {
  // Item 1 as above: matches/totals 5/6, 3/5, 1/4, 0/3; length 6, closest reference 6.
  // Item 2: cand "on the mat", refs "the cat is on the mat" (6) and "there is a cat on the mat"
  // (7): on, the, mat / on the, the mat / on the mat all match: 3/3, 2/2, 1/1, 0/0; length 3,
  // closest reference 6.
  // Corpus: p1 = 8/9, p2 = 5/7, p3 = 2/5, p4 = 0/3; c = 9, r = 12 -> BP = exp(1 - 12/9) =
  // exp(-1/3) = 0.716531.
  //   BLEU-1 = BP * 8/9                          = 0.636917
  //   BLEU-2 = BP * sqrt(8/9 * 5/7)              = 0.570946
  //   BLEU-3 = BP * (8/9 * 5/7 * 2/5)^(1/3)      = 0.453762
  //   BLEU-4 = 0 (no 4-gram matches anywhere)
  std::vector<double> b = corpus_bleu(
      {"the cat sat on the mat", "On the mat."},
      {{"the cat is on the mat"}, {"the cat is on the mat", "there is a cat on the mat"}});
  const double bp = std::exp(-1.0 / 3);
  CHECK(b[0] == doctest::Approx(bp * 8 / 9));
  CHECK(b[0] == doctest::Approx(0.636917).epsilon(1e-6));
  CHECK(b[1] == doctest::Approx(bp * std::sqrt(8.0 / 9 * 5.0 / 7)));
  CHECK(b[2] == doctest::Approx(bp * std::cbrt(8.0 / 9 * 5.0 / 7 * 2.0 / 5)));
  CHECK(b[2] == doctest::Approx(0.453762).epsilon(1e-6));
  CHECK(b[3] == 0.0);
}

TEST_CASE("captioning: BLEU clipping, brevity penalty and closest reference length") {
  // Clipping: "the the the the" against "the cat": "the" earns 1 of 4 -> BLEU-1 = 1/4 (c = 4 >
  // r = 2: no penalty). Without clipping it would be 4/4.
  CHECK(corpus_bleu({"the the the the"}, {{"the cat"}}, 1)[0] == doctest::Approx(0.25));
  // Brevity: a 4-word prefix of a 6-word reference: every n-gram matches, BP = exp(1 - 6/4).
  std::vector<double> b = corpus_bleu({"the cat is on"}, {{"the cat is on the mat"}});
  for (double v : b) CHECK(v == doctest::Approx(std::exp(-0.5)));
  // Closest length, the shorter on a tie: 5 words against references of 3 and 7 words -> r = 3,
  // no penalty; against the 7-word one alone -> exp(1 - 7/5).
  CHECK(corpus_bleu({"a b c d e"}, {{"a b c", "a b c d e f g"}}, 1)[0] == doctest::Approx(1.0));
  CHECK(corpus_bleu({"a b c d e"}, {{"a b c d e f g"}}, 1)[0] ==
        doctest::Approx(std::exp(1 - 7.0 / 5)));
}

TEST_CASE("captioning: BLEU invariances and agreement with metrics::bleu4") {
  // Identical candidate and reference: every BLEU is 1.
  for (double v : corpus_bleu({"a small red circle in the top left"},
                              {{"a small red circle in the top left"}}))
    CHECK(v == doctest::Approx(1.0));
  // Word order destroyed: the same words (BLEU-1 = 1, same length) but no bigram in common.
  std::vector<double> b = corpus_bleu({"mat the on is cat the"}, {{"the cat is on the mat"}});
  CHECK(b[0] == doctest::Approx(1.0));
  CHECK(b[1] == 0.0);
  CHECK(b[3] == 0.0);
  // Case and punctuation do not matter.
  CHECK(corpus_bleu({"The cat, on the MAT!"}, {{"the cat on the mat"}})[3] == doctest::Approx(1.0));
  // An empty candidate scores 0, not NaN; an all-empty corpus too.
  CHECK(corpus_bleu({""}, {{"the cat"}})[0] == 0.0);
  CHECK(corpus_bleu({"", "the cat"}, {{"the cat"}, {"the cat"}})[0] ==
        doctest::Approx(std::exp(1 - 4.0 / 2)));  // c = 2, r = 4
  // BLEU-4 is the same number as metrics::bleu4 on token ids (NLTK's documented example:
  // corpus BLEU 0.5920).
  Strings cands = {
      "It is a guide to action which ensures that the military always obeys the commands of the "
      "party",
      "he read the book because he was interested in world history"};
  Refs refs = {
      {"It is a guide to action that ensures that the military will forever heed Party "
       "commands",
       "It is the guiding principle which guarantees the military forces always being "
       "under the command of the Party",
       "It is the practical guide for the army always to heed the directions of the party"},
      {"he was interested in world history because he read the book"}};
  std::map<std::string, int64_t> vocab;
  auto ids = [&](const std::string& s) {
    Tokens t;
    for (const std::string& w : caption_words(s))
      t.push_back(vocab.emplace(w, static_cast<int64_t>(vocab.size())).first->second);
    return t;
  };
  std::vector<Tokens> cand_ids;
  std::vector<std::vector<Tokens>> ref_ids;
  for (size_t i = 0; i < cands.size(); ++i) {
    cand_ids.push_back(ids(cands[i]));
    ref_ids.emplace_back();
    for (const std::string& r : refs[i]) ref_ids.back().push_back(ids(r));
  }
  const double ours = corpus_bleu(cands, refs)[3];
  CHECK(ours == bleu4(cand_ids, ref_ids));  // bit for bit: same statistics, same arithmetic
  // (NLTK keeps case; "Party" and "party" are one word here, so 0.5920 becomes a bit higher.)
  CHECK(ours > 0.5920);
  CHECK(ours < 0.7);
}

// ---- ROUGE-L -----------------------------------------------------------------------------------

TEST_CASE("captioning: ROUGE-L by hand") {
  // "a man is riding a horse" vs "a man rides a brown horse": LCS = "a man a horse" = 4;
  // P = 4/6, R = 4/6; with P = R = x, F = (1 + b^2) x^2 / ((1 + b^2) x) = x = 2/3.
  CHECK(sentence_rouge_l("a man is riding a horse", {"a man rides a brown horse"}) ==
        doctest::Approx(2.0 / 3));
  // "a dog runs" vs "a brown dog runs fast": LCS = 3; P = 3/3 = 1, R = 3/5;
  // F = 2.44 * 1 * 0.6 / (0.6 + 1.44 * 1) = 1.464 / 2.04 = 0.717647.
  CHECK(sentence_rouge_l("a dog runs", {"a brown dog runs fast"}) == doctest::Approx(1.464 / 2.04));
  CHECK(sentence_rouge_l("a dog runs", {"a brown dog runs fast"}) ==
        doctest::Approx(0.717647).epsilon(1e-6));
  // beta = 1 is the plain F1: 2 * 1 * 0.6 / 1.6 = 0.75.
  CHECK(sentence_rouge_l("a dog runs", {"a brown dog runs fast"}, 1.0) == doctest::Approx(0.75));
  // coco-caption maximises P and R over the references SEPARATELY. "a dog runs" against
  // A = "a dog runs in the big green park" (LCS 3: P = 1, R = 3/8) and B = "dog" (LCS 1:
  // P = 1/3, R = 1): P_max = 1 (from A), R_max = 1 (from B) -> F = 1. (The best F of a single
  // reference would be B's: 2.44 * (1/3) / (1 + 1.44/3) = 0.5495.)
  CHECK(sentence_rouge_l("a dog runs", {"a dog runs in the big green park", "dog"}) ==
        doctest::Approx(1.0));
  // The corpus score is the mean over items: (2/3 + 0.717647) / 2.
  CHECK(rouge_l({"a man is riding a horse", "a dog runs"},
                {{"a man rides a brown horse"}, {"a brown dog runs fast"}}) ==
        doctest::Approx((2.0 / 3 + 1.464 / 2.04) / 2));
}

TEST_CASE("captioning: ROUGE-L invariances") {
  CHECK(rouge_l({"a small red circle"}, {{"A small red circle."}}) == doctest::Approx(1.0));
  // Reversed order: the LCS is a single word: P = R = 1/4 -> 0.25.
  CHECK(sentence_rouge_l("circle red small a", {"a small red circle"}) == doctest::Approx(0.25));
  CHECK(sentence_rouge_l("", {"a small red circle"}) == 0.0);
  CHECK(sentence_rouge_l("blue square", {"a small red circle"}) == 0.0);
  CHECK(sentence_rouge_l("a circle", {"", "a circle"}) ==
        doctest::Approx(1.0));  // "" matches nothing
}

// ---- CIDEr-D -----------------------------------------------------------------------------------

TEST_CASE("captioning: CIDEr-D on a 3-image corpus, step by step") {
  // References: img1 "a red circle", img2 "a blue square", img3 "a red square". I = 3 items.
  // idf = log 3 - log max(1, df):
  //   "a" (df 3): 0;  "red", "square", "a red" (df 2): log 1.5 = 0.405465;
  //   "circle", "blue", "red circle", "a blue", "blue square", "red square", every trigram
  //   (df 1), and any n-gram in no reference (df 0 -> 1): log 3 = 1.098612.
  const Strings cands = {"a red circle", "a red square", "a red red square"};
  const Refs refs = {{"a red circle"}, {"a blue square"}, {"a red square"}};
  const double l15 = std::log(1.5), l3 = std::log(3.0);
  // img1, the exact caption: cosine 1 for n = 1, 2, 3; no 4-grams (both norms 0 -> 0); same
  // length -> penalty 1. CIDEr-D = 10 * (1 + 1 + 1 + 0) / 4 = 7.5 (not 10: 3 words).
  const double s1 = 7.5;
  // img2, "a red square" vs "a blue square":
  //   n=1: cand (a 0, red l15, square l15), ref (a 0, blue l3, square l15);
  //        dot = min(l15, l15) * l15 = l15^2; |cand| = sqrt(2) l15, |ref| = sqrt(l3^2 + l15^2)
  //        cos = l15 / (sqrt(2) sqrt(l3^2 + l15^2)) = 0.405465 / (1.414214 * 1.171047) = 0.244830
  //   n=2, 3: no common n-gram -> 0; n=4: none. Same length.
  //   CIDEr-D = 10 * 0.244830 / 4 = 0.612074
  const double s2 = 10 * (l15 / (std::sqrt(2.0) * std::sqrt(l3 * l3 + l15 * l15))) / 4;
  // img3, "a red red square" vs "a red square" (clipping and the length penalty):
  //   n=1: cand (a 0, red 2 l15, square l15), ref (a 0, red l15, square l15);
  //        dot = min(2 l15, l15) l15 + l15 l15 = 2 l15^2 (clipped: 3 l15^2 without);
  //        |cand| = sqrt(5) l15, |ref| = sqrt(2) l15 -> cos = 2 / sqrt(10) = 0.632456
  //   n=2: cand (a red l15, red red l3 [df 0], red square l3), ref (a red l15, red square l3);
  //        dot = l15^2 + l3^2 = 1.371351; |cand| = sqrt(l15^2 + 2 l3^2) = sqrt(2.578300),
  //        |ref| = sqrt(1.371351) -> cos = sqrt(1.371351 / 2.578300) = 0.729302
  //   n=3: "a red red", "red red square" vs "a red square": 0; n=4: the reference has none: 0.
  //   length 4 vs 3: penalty exp(-1 / (2 * 36)) = 0.986207
  //   CIDEr-D = 10 * 0.986207 * (0.632456 + 0.729302) / 4 = 3.357438
  const double s3 =
      10 * std::exp(-1.0 / 72) *
      (2 / std::sqrt(10.0) + std::sqrt((l15 * l15 + l3 * l3) / (l15 * l15 + 2 * l3 * l3))) / 4;
  CHECK(s2 == doctest::Approx(0.612074).epsilon(1e-5));
  CHECK(s3 == doctest::Approx(3.357438).epsilon(1e-6));
  std::vector<double> s = cider_d_scores(cands, refs);
  REQUIRE(s.size() == 3);
  CHECK(s[0] == doctest::Approx(s1));
  CHECK(s[1] == doctest::Approx(s2));
  CHECK(s[2] == doctest::Approx(s3));
  // The corpus score is the mean: (7.5 + 0.612074 + 3.357438) / 3 = 3.823171.
  CHECK(cider_d(cands, refs) == doctest::Approx(3.823171).epsilon(1e-6));
}

TEST_CASE("captioning: CIDEr-D counts documents, averages references, needs a corpus") {
  const Strings cands = {"a red circle", "a red square", "a red red square"};
  const Refs refs = {{"a red circle"}, {"a blue square"}, {"a red square"}};
  const std::vector<double> base = cider_d_scores(cands, refs);
  // A duplicated reference: df counts items (img1 still counts once) and the score is the mean
  // over references, so nothing changes.
  const std::vector<double> dup = cider_d_scores(
      cands, {{"a red circle", "a red circle"}, {"a blue square"}, {"a red square"}});
  for (size_t i = 0; i < 3; ++i) CHECK(dup[i] == doctest::Approx(base[i]));
  // Two references, one of them the caption itself: that one gives (1, 1, 1, 0) as before, the
  // other ("a green triangle") shares only "a" (idf 0) and gives 0; CIDEr-D averages over the
  // 2 references: 10 * ((1 + 1 + 1 + 0) / 4) / 2 = 3.75.
  CHECK(cider_d_scores(cands, {{"a red circle", "a green triangle"},
                               {"a blue square"},
                               {"a red square"}})[0] == doctest::Approx(3.75));
  // One item: log 1 = 0, every idf is 0, the score is 0 even for a perfect caption.
  CHECK(cider_d({"a red circle"}, {{"a red circle"}}) == 0.0);
  // Empty candidate: 0, not NaN.
  CHECK(cider_d_scores({"", "a red square", "a red red square"}, refs)[0] == 0.0);
  // A caption that says only what every reference says ("a") earns nothing.
  CHECK(cider_d_scores({"a", "a red square", "a red red square"}, refs)[0] == 0.0);
}

// ---- VQA ---------------------------------------------------------------------------------------

TEST_CASE("captioning: VQA answer normalisation") {
  CHECK(normalize_vqa_answer("The Red.") == "red");
  CHECK(normalize_vqa_answer("Two dogs!") == "2 dogs");
  CHECK(normalize_vqa_answer("2.5") == "2.5");
  CHECK(normalize_vqa_answer("1,000") == "1000");
  CHECK(normalize_vqa_answer("red, blue") == "red blue");
  CHECK(normalize_vqa_answer("t-shirt") == "t shirt");
  CHECK(normalize_vqa_answer("don't") == "don't");
  CHECK(normalize_vqa_answer("  an   apple ") == "apple");
  CHECK(normalize_vqa_answer("none") == "0");
  CHECK(normalize_vqa_answer("?!").empty());
}

TEST_CASE("captioning: VQA soft accuracy with 10 humans") {
  // k of 10 humans gave the answer. Leaving out one of the k agreeing humans leaves k - 1 votes,
  // leaving out one of the other 10 - k leaves k votes:
  //   acc = (k min((k - 1)/3, 1) + (10 - k) min(k/3, 1)) / 10
  //   k = 2: (2 * 1/3 + 8 * 2/3) / 10 = (2/3 + 16/3) / 10 = 0.6
  //   k = 3: (3 * 2/3 + 7 * 1) / 10   = 9 / 10            = 0.9
  //   k = 4: (4 * 1 + 6 * 1) / 10                          = 1.0
  //   k = 1: (1 * 0 + 9 * 1/3) / 10                        = 0.3
  auto humans = [](int k) {
    Strings h(10, "blue");
    for (int i = 0; i < k; ++i) h[static_cast<size_t>(i)] = i % 2 ? "Red" : "the red";
    return h;
  };
  CHECK(vqa_accuracy("red", humans(2)) == doctest::Approx(0.6));
  CHECK(vqa_accuracy("red", humans(3)) == doctest::Approx(0.9));
  CHECK(vqa_accuracy("red", humans(4)) == doctest::Approx(1.0));
  CHECK(vqa_accuracy("red", humans(1)) == doctest::Approx(0.3));
  CHECK(vqa_accuracy("green", humans(4)) == 0.0);
  CHECK(vqa_accuracy("blue", humans(4)) == doctest::Approx(1.0));  // 6 humans said blue
  CHECK(vqa_accuracy("", Strings(10, "")) == 0.0);                 // a non-answer never scores
  CHECK(mean_vqa_accuracy({"red", "red", "Two"}, {humans(2), humans(3), Strings(10, "2")}) ==
        doctest::Approx((0.6 + 0.9 + 1.0) / 3));
}

// ---- bad input ---------------------------------------------------------------------------------

TEST_CASE("captioning: bad input is an error that names the metric") {
  const Strings c = {"a red circle"};
  for (const std::string name : {"corpus_bleu", "rouge_l", "cider_d"}) {
    INFO(name);
    auto call = [&](const Strings& cands, const Refs& refs) {
      if (name == "corpus_bleu") return corpus_bleu(cands, refs)[0];
      if (name == "rouge_l") return rouge_l(cands, refs);
      return cider_d(cands, refs);
    };
    CHECK_THROWS_WITH_AS(call({}, {}), doctest::Contains((name + ": empty corpus").c_str()), Error);
    CHECK_THROWS_WITH_AS(call(c, {{"x"}, {"y"}}), doctest::Contains("1 candidates but 2"), Error);
    CHECK_THROWS_WITH_AS(call(c, {{}}), doctest::Contains("empty reference list"), Error);
    CHECK_THROWS_WITH_AS(call(c, {{}}), doctest::Contains(name.c_str()), Error);
  }
  CHECK_THROWS_WITH_AS(corpus_bleu(c, {{"x"}}, 0), doctest::Contains("max_n must be >= 1"), Error);
  CHECK_THROWS_WITH_AS(sentence_rouge_l("a", {}), doctest::Contains("sentence_rouge_l"), Error);
  CHECK_THROWS_WITH_AS(rouge_l(c, {{"x"}}, 0.0), doctest::Contains("beta must be"), Error);
  CHECK_THROWS_WITH_AS(vqa_accuracy("red", {"red"}), doctest::Contains("at least 2"), Error);
  CHECK_THROWS_WITH_AS(mean_vqa_accuracy({}, {}), doctest::Contains("mean_vqa_accuracy"), Error);
  CHECK_THROWS_WITH_AS(mean_vqa_accuracy({"red"}, {}), doctest::Contains("1 answers but 0"), Error);
  CHECK_THROWS_WITH_AS(mean_vqa_accuracy({"red", "red"}, {Strings(10, "red"), {"red"}}),
                       doctest::Contains("question 1"), Error);
}
