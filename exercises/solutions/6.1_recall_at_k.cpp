// Reference for task 6.1: metrics::recall_at_k (metrics/metrics.cpp) with exact-pair relevance,
// the metric lesson 06 reports (there with class labels).
#include "mmgrad/metrics/metrics.h"
#include "tasks.h"

namespace mmgrad::exercises::solution {

double recall_at_k(const Tensor& similarity, int64_t k) {
  return metrics::recall_at_k(similarity, k);
}

}  // namespace mmgrad::exercises::solution
