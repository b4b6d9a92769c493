// Reference for task 8.1: lesson 08's own alignment test, align::alignment_test
// (lessons/08_alignment_quality/alignment.cpp), whose report holds the margins per image.
#include "08_alignment_quality/alignment.h"
#include "tasks.h"

namespace mmgrad::exercises::solution {

Tensor alignment_margins(const Tensor& image_emb, const std::vector<int64_t>& labels,
                         const Tensor& caption_emb, int64_t num_classes, int64_t num_templates) {
  const align::AlignmentReport r =
      align::alignment_test(image_emb, labels, caption_emb, num_classes, num_templates);
  return Tensor::from_vector(r.margins, {static_cast<int64_t>(r.margins.size())});
}

}  // namespace mmgrad::exercises::solution
