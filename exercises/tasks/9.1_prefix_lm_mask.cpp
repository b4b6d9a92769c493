// Task 9.1: the attention mask of a vision-language model                     (lesson 09_vlm)
//
// Lesson 09's TinyVLM puts the image in front of the text: one sequence of L = P + T positions,
//     [IMG] v_1 ... v_16 [/IMG]  <bos> a small red circle ... <eos> <pad> ...
//     '------ prefix: P = 18 -----' '------------ text: T = 12 ----------------'
// and runs a decoder-only transformer over it. A decoder predicts token j + 1 at position j, so
// position j must not see the positions after it: the CAUSAL mask. The lesson passes
// is_causal = true (nn::TransformerEncoder::forward), which applies it to the whole sequence,
// image tokens included: visual token v_1 cannot see v_2 ... v_16.
//
// Nothing is predicted inside the image, so there is no reason to hide the image from itself.
// A "prefix LM" (PaliGemma, UniLM, T5's prefix-LM) lets the P prefix positions attend to each
// other in both directions, and keeps the text causal. Build that mask:
//
//     query i may attend to key j   <=>   j <= i  (the past and itself)   or   j < P  (the prefix)
//
// so a text position sees the whole image and the text up to itself, and an image position sees
// the whole image but no text. With P = 0 (or P = 1) this is exactly the lesson's causal mask.
//
// The convention is the one nn::TransformerEncoder::forward(src, mask) and nn::MultiheadAttention
// take (PyTorch's nn.Transformer convention, see nn/attention.h): a bool [L, L] tensor, row =
// query, column = key, TRUE = MASKED OUT (may NOT attend), false = may attend. (Careful: the
// low-level scaled_dot_product_attention in ops/attention.h reads a bool mask the other way
// round, true = may attend. The nn modules convert.) Example, P = 2, L = 4 (1 = true = masked):
//
//          key 0 1 2 3
//     query 0  0 0 1 1
//           1  0 0 1 1
//           2  0 0 0 1
//           3  0 0 0 0
//
// Padding needs no extra mask here: the lesson pads the text at the END, and a causal text
// position never sees a later one.
//
// Inputs: prefix_len P (0 <= P <= L), seq_len L >= 1. Return bool [L, L] on the CPU.
// Useful: Tensor::arange(L).view({L, 1}) (the query index i as a column) and .view({1, L}) (the
// key index j as a row) broadcast against each other; comparisons (gt, ge, lt, ... or the
// operators >, <) give bool tensors; logical_and / logical_or combine them.
// nn::causal_mask(L, L) (nn/attention.h) is the P = 0 answer in this convention: read it.
//
// Check your work: make exercise TASK=9.1
#include "tasks.h"

namespace mmgrad::exercises {

Tensor prefix_lm_mask(int64_t prefix_len, int64_t seq_len) {
  (void)prefix_len, (void)seq_len;
  not_done("9.1", "prefix_lm_mask");
}

}  // namespace mmgrad::exercises
