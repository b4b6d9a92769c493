// Task 6.1: Recall@k for retrieval                                       (lesson 06_retrieval)
//
// Retrieval: a query (a caption) searches a gallery (the images) and the system returns the
// gallery items sorted by similarity, best first. Recall@k is the share of queries whose right
// answer appears among the first k results. Here relevance is exact-pair: the batch holds
// matched pairs, so gallery item q is the one right answer for query q (lesson 06 also uses
// class-level relevance, where any image of the caption's class counts).
//
//     similarity [Q, G]: row q scores every gallery item for query q (higher = more similar),
//                        Q <= G (item q exists for every query q; the others are distractors)
//     rank(q)  = the 1-based position of item q when row q is sorted by DECREASING score
//     recall@k = #{q : rank(q) <= k} / Q
//
// Ties: equal scores keep gallery order (a stable sort), as metrics::recall_at_k ranks them:
// an item with the same score as item q but a smaller index comes before it, one with a
// larger index after it. So a tie never helps: the items ranked before q are those that score
// higher, plus those that score the same and have a smaller index:
//     rank(q) = 1 + #{j : s[q][j] > s[q][q]} + #{j < q : s[q][j] == s[q][q]}
// (You do not need to sort: counting is enough.)
//
// Inputs: similarity [Q, G] floating, 1 <= Q <= G; k >= 1 (k >= G gives 1). Return a double in
// [0, 1].
// Useful: similarity.to_vector<double>() (row-major: s[q][j] is entry q*G + j), size(0), size(1).
// Do not call metrics::recall_at_k or metrics::retrieval_ranks: they are the answer.
//
// Check your work: make exercise TASK=6.1
#include "tasks.h"

namespace mmgrad::exercises {

double recall_at_k(const Tensor& similarity, int64_t k) {
  (void)similarity, (void)k;
  not_done("6.1", "recall_at_k");
}

}  // namespace mmgrad::exercises
