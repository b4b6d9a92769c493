// Caption and VQA metrics on text: BLEU-1..4, ROUGE-L, CIDEr-D and VQA soft accuracy, computed
// the way the COCO caption evaluation (coco-caption / pycocoevalcap) and the official VQA
// evaluation compute them, so that the numbers mean what they mean in papers.
//
// Why several metrics? A generated caption can be "right" in many ways. Exact match says only
// whether every word is right; these metrics give partial credit, each for something different:
//   BLEU     n-gram PRECISION: how many of the caption's word runs appear in a reference.
//   ROUGE-L  the longest common subsequence: word ORDER, with gaps allowed, and recall.
//   CIDEr-D  TF-IDF weighted n-grams: words that are frequent in all captions ("a", "in the")
//            count for nothing; the rare, informative words ("triangle", "left") count most.
// None of them knows what the words mean: "a red circle" and "a crimson disc" share nothing,
// and "a red circle" vs "a blue circle" share almost everything. They measure overlap with the
// references, not truth; read them next to a task-specific check (lesson 09 parses its captions
// back into attributes for exactly that reason).
//
// All functions run on the host in double precision, take no part in autograd, and are
// deterministic (n-grams are kept in ordered maps; sums run in a fixed order).
//
// ---- tokenisation (all caption metrics)
// ---------------------------------------------------------- caption_words(text): ASCII letters are
// lower-cased; every ASCII punctuation character
// (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~) is treated like whitespace; the text is split on whitespace.
// So "A red-and-blue Circle." -> [a, red, and, blue, circle] and "isn't" -> [isn, t]. Bytes >= 128
// (UTF-8) are kept as they are. (coco-caption runs the Stanford PTB tokenizer and then deletes
// punctuation tokens: the same words for plain captions; it splits "man's" into "man 's" where
// we give "man s".)
//
// ---- input rules (all caption metrics)
// ----------------------------------------------------------- candidates[i] is the generated
// caption for item i, references[i] its human captions (one or more). An empty corpus, a different
// number of candidates and reference lists, or an item with no reference throws mmgrad::Error
// naming the metric. An empty candidate (no words) is allowed and scores 0 (never NaN); so does an
// empty reference, which matches nothing.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mmgrad::metrics {

using Words = std::vector<std::string>;

// The tokenisation rule above.
Words caption_words(std::string_view text);

// ---- BLEU (Papineni et al., 2002), corpus level
// -------------------------------------------------- For n = 1..N, over the whole corpus:
//   p_n  = sum_i sum_{g in n-grams(cand_i)} min(count_cand_i(g), max_r count_ref_r(g))
//          / sum_i #n-grams(cand_i)
//          "clipped" precision: "the the the the" against "the cat" earns one "the", not four.
//   c    = total candidate length, r = sum over items of the reference length closest to the
//          candidate's (the shorter one on a tie: "closest", as coco-caption);
//   BP   = 1 if c > r, else exp(1 - r / c)   (brevity penalty: precision alone would reward
//          saying only the few words one is sure of);
//   BLEU-N = BP * exp((1/N) sum_{n=1..N} log p_n)   (geometric mean of p_1..p_N).
// No smoothing, as the original: BLEU-N is exactly 0 when some p_n (n <= N) has no match, e.g.
// BLEU-4 of a corpus of 3-word captions (no 4-grams at all). (coco-caption adds 1e-15 / 1e-9
// to p_n and so prints ~1e-8 instead of 0; metrics::sentence_bleu4 offers add-one smoothing for
// single sentences.) The statistics are summed over the corpus BEFORE dividing: corpus BLEU is
// not the mean of sentence BLEUs. BLEU-4 here equals metrics::bleu4 on the same words as ids.
// Rewards: the right words in the right local order, at about the right length.
// Blind spots: synonyms, meaning; a single wrong word breaks up to 4 n-grams; no recall beyond
// the brevity penalty (a short caption that leaves out an object loses only through BP).
// Returns {BLEU-1, ..., BLEU-max_n}; max_n >= 1 (4 is the standard).
std::vector<double> corpus_bleu(const std::vector<std::string>& candidates,
                                const std::vector<std::vector<std::string>>& references,
                                int max_n = 4);

// ---- ROUGE-L (Lin, 2004), as coco-caption's Rouge
// ------------------------------------------------ Per item, with LCS = length of the longest
// common subsequence of words (in order, gaps allowed: "a man rides a brown horse" and "a man is
// riding a horse" share "a man a horse"):
//   P = max_r LCS(cand, ref_r) / |cand|,   R = max_r LCS(cand, ref_r) / |ref_r|
//   (each maximised over the references SEPARATELY, as coco-caption does: P and R may come
//    from different references; this is not the best F over references);
//   ROUGE-L = (1 + beta^2) P R / (R + beta^2 P), beta = 1.2 (recall weighted a bit more),
//   0 when P or R is 0. The corpus score is the mean over items.
// Rewards: the right words in the right order, even with other words in between; recall.
// Blind spots: only ONE common subsequence counts (a swapped clause is half lost); meaning.
double rouge_l(const std::vector<std::string>& candidates,
               const std::vector<std::vector<std::string>>& references, double beta = 1.2);
// One item: candidate against its references.
double sentence_rouge_l(const std::string& candidate, const std::vector<std::string>& references,
                        double beta = 1.2);

// ---- CIDEr-D (Vedantam et al., 2015), as coco-caption's Cider -----------------------------------
// Each sentence becomes, for n = 1..4, a vector over n-grams g with entries
//   tf(g) * idf(g),  idf(g) = log(I) - log(max(1, df(g))),
// tf = the count of g in the sentence, I = the number of items (images) in the corpus, df(g) =
// the number of items whose references contain g. An n-gram in every item's references gets
// idf 0: it says nothing about this image. Then per item, for each reference r:
//   s_n(r) = sum_g min(c_g, r_g) * r_g / (|c| |r|)     (cosine with the candidate's entries
//            clipped by the reference's: repeating a rare word does not pay; 0 if a norm is 0)
//            * exp(-(len(cand) - len(r))^2 / (2 sigma^2)),  sigma = 6 (the "D": a Gaussian
//            penalty on the length difference, in words);
//   CIDEr-D = 10 * (1/4) sum_n (1 / #refs) sum_r s_n(r),
// and the corpus score is the mean over items. The x10 puts typical COCO scores near 1; with
// one reference a perfect caption scores 10 only if it has n-grams of every order with idf > 0
// (a 3-word caption has no 4-grams: at most 7.5). The idf comes from the references of the
// corpus being scored, so the same caption scores differently in a different corpus, and a
// corpus of one item scores 0 (log 1 = 0: every idf is 0). (coco-caption measures the length in
// bigrams, |s| - 1: the same difference unless a sentence is empty, where the score is 0 anyway.)
// Rewards: the informative words and phrases the references agree on. Blind spots: meaning;
// a word that is in every reference (the thing every caption must say) earns nothing.
double cider_d(const std::vector<std::string>& candidates,
               const std::vector<std::vector<std::string>>& references);
// The per-item scores (their mean is cider_d), with the idf of the whole corpus: to report a
// subset, average its items' scores here rather than re-scoring the subset as a new corpus.
std::vector<double> cider_d_scores(const std::vector<std::string>& candidates,
                                   const std::vector<std::vector<std::string>>& references);

// ---- VQA soft accuracy (Antol et al., 2015; the official VQA evaluation)
// ------------------------- VQA asks 10 people each question. An answer is fully right if at least
// 3 of them gave it:
//   acc(a) = mean over the 10 ways to leave one human out of min(#others who said a / 3, 1).
// With k of the 10 humans agreeing: k = 1 -> 0.3, 2 -> 0.6, 3 -> 0.9, >= 4 -> 1.
// Rewards: the answer people give, with partial credit where people disagree.
// Blind spots: synonyms ("couch" vs "sofa"), and popular-but-wrong answers.
// Answers are compared after normalize_vqa_answer:
//   lower-case ASCII; a period is deleted unless a digit follows ("2.5" stays); a comma between
//   digits is deleted ("1,000" -> "1000"); each of ; / [ ] " { } ( ) = + \ _ - > < @ ` , ? !
//   becomes a space (apostrophes and colons stay: "don't", "10:30"); number words none, zero ..
//   ten become digits; the articles a, an, the are dropped; words are joined by single spaces.
//   So "The Two dogs!" -> "2 dogs". (The official code does the same steps, with two
//   differences: it skips normalisation when all 10 humans wrote the same string, and it also
//   maps a table of contractions such as "dont" -> "don't"; neither is done here.)
std::string normalize_vqa_answer(std::string_view answer);
// One question. human_answers: at least 2 (VQA has 10; with one human every answer would score 0,
// since the formula compares with the OTHER humans); otherwise mmgrad::Error. An answer that is
// empty after normalisation scores 0.
double vqa_accuracy(const std::string& answer, const std::vector<std::string>& human_answers);
// Mean over questions; errors as above, and for an empty set or mismatched counts.
double mean_vqa_accuracy(const std::vector<std::string>& answers,
                         const std::vector<std::vector<std::string>>& human_answers);

}  // namespace mmgrad::metrics
