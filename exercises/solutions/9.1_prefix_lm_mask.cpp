// Reference for task 9.1: the library's causal mask (nn::causal_mask, nn/attention.cpp: true
// where the key j lies after the query i) with the prefix columns j < P opened up.
#include "mmgrad/nn/attention.h"
#include "tasks.h"

namespace mmgrad::exercises::solution {

Tensor prefix_lm_mask(int64_t prefix_len, int64_t seq_len) {
  const Tensor in_prefix = lt(Tensor::arange(seq_len).view({1, seq_len}), prefix_len);  // [1, L]
  return logical_and(nn::causal_mask(seq_len, seq_len), logical_not(in_prefix));
}

}  // namespace mmgrad::exercises::solution
