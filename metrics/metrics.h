// Evaluation metrics: classification (accuracy, per-class accuracy, confusion matrix), retrieval
// (Recall@k, mean reciprocal rank) and caption quality (BLEU-4).
//
// These read values back to the host and compute in double precision; they take no part in
// autograd. Inputs may live on any device and have any strides.
#pragma once

#include <cstdint>
#include <vector>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad::metrics {

// ---- classification ----------------------------------------------------------------------------
// `pred` is either int64 class ids [N] or float scores/logits [N, C] (the arg-max of each row is
// the prediction); `target` is int64 [N].

// Fraction of predictions equal to the target.
double accuracy(const Tensor& pred, const Tensor& target);
// Accuracy within each true class: float64 [num_classes]; NaN for a class with no samples.
Tensor per_class_accuracy(const Tensor& pred, const Tensor& target, int64_t num_classes);
// int64 [C, C]: entry (t, p) counts samples of true class t predicted as p (rows = truth).
Tensor confusion_matrix(const Tensor& pred, const Tensor& target, int64_t num_classes);

// ---- retrieval ---------------------------------------------------------------------------------
// similarity is [Q, G]: row q scores every gallery item for query q (higher = more similar).
// Image->text retrieval uses sim(images, texts); text->image is the same computation on the
// transpose, e.g. recall_at_k(sim.t(), 5): no separate function is needed.
//
// Ranking: gallery items are sorted by decreasing score; equal scores keep gallery order (a
// stable sort), so a tie never helps an item with a later index.
//
// Class-level relevance (query_labels [Q], gallery_labels [G], int64): a gallery item is
// relevant when it has the query's class; the rank of a query is the position of its first
// relevant item. Every query's class must occur in the gallery.
// Exact-pair relevance (no labels): gallery item q is the one relevant item for query q
// (matched image/caption pairs); needs Q <= G.

// 1-based rank of the first relevant item per query: int64 [Q].
Tensor retrieval_ranks(const Tensor& similarity, const Tensor& query_labels,
                       const Tensor& gallery_labels);
Tensor retrieval_ranks(const Tensor& similarity);
// Fraction of queries with a relevant item among the top k.
double recall_at_k(const Tensor& similarity, const Tensor& query_labels,
                   const Tensor& gallery_labels, int64_t k);
double recall_at_k(const Tensor& similarity, int64_t k);
// Recall@k for several k at once (one ranking pass): for recall@k curves.
std::vector<double> recall_at_ks(const Tensor& similarity, const Tensor& query_labels,
                                 const Tensor& gallery_labels, const std::vector<int64_t>& ks);
std::vector<double> recall_at_ks(const Tensor& similarity, const std::vector<int64_t>& ks);
// Mean over queries of 1 / rank.
double mean_reciprocal_rank(const Tensor& similarity, const Tensor& query_labels,
                            const Tensor& gallery_labels);
double mean_reciprocal_rank(const Tensor& similarity);

// ---- BLEU --------------------------------------------------------------------------------------
// BLEU-4 (Papineni et al., 2002) on token id sequences (strip PAD/BOS/EOS first, e.g. with
// data::Tokenizer::strip_special).
//   p_n = sum over candidates of n-gram matches clipped by the reference count (the maximum
//         over references) / sum of candidate n-grams, n = 1..4;
//   BP  = 1 if c > r else exp(1 - r / c), c = total candidate length, r = total of each
//         candidate's "best match" reference length (the closest; the shorter on a tie);
//   BLEU = BP * exp(mean_n log p_n), and 0 when some p_n is 0 (without smoothing).
using Tokens = std::vector<int64_t>;

// Corpus-level: statistics summed over all pairs before the division (not a mean of sentence
// scores). One reference per candidate, or several.
double bleu4(const std::vector<Tokens>& candidates, const std::vector<Tokens>& references);
double bleu4(const std::vector<Tokens>& candidates,
             const std::vector<std::vector<Tokens>>& references);

enum class BleuSmoothing {
  None,    // plain BLEU: 0 whenever one n-gram order has no match
  AddOne,  // Lin & Och (2004): add 1 to matches and totals for n = 2..4 (NLTK's method2)
};
// One candidate against its references.
double sentence_bleu4(const Tokens& candidate, const std::vector<Tokens>& references,
                      BleuSmoothing smoothing = BleuSmoothing::None);

}  // namespace mmgrad::metrics
