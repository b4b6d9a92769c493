// Probes of a trained CLIP-style shared space (lesson 08): the alignment test (does the matching
// caption beat every negative caption?), and tests that expose what a contrastive space cannot
// do: negation, word order, unseen wording and out-of-distribution images.
//
// Embeddings are unit-length float32 rows on the CPU (what clip::encode_images/encode_texts
// return), so a dot product is a cosine similarity.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "04_mini_clip/clip.h"
#include "mmgrad/data/fashion_mnist.h"

namespace mmgrad::align {

struct AlignmentReport {
  double accuracy = 0;                // matching caption beats all (C - 1) * T negatives
  double same_template_accuracy = 0;  // ... beats the C - 1 negatives of its own template
  double mean_margin = 0;             // mean of margins
  std::vector<double> margins;        // per image: cos(match) - max cos(negative)
  std::vector<int64_t> winner_class;  // per image: class of the best-scoring negative
  std::vector<double> class_accuracy, class_margin;  // per true class
  std::vector<int64_t> class_top_rival;  // per class: the class that most often beats it (-1)
};

// image_emb [N, D]; labels N class ids in [0, C); caption_emb [C * T, D] with row c * T + t the
// caption of class c under template t (clip::CaptionBank's order). Image i is tested with the
// caption of its class under template i mod T.
AlignmentReport alignment_test(const Tensor& image_emb, const std::vector<int64_t>& labels,
                               const Tensor& caption_emb, int64_t num_classes,
                               int64_t num_templates);

struct NegationReport {
  // Per class c, means over the test images of class c of: cos with "... a c", with the
  // negated "... not a c", and with the positive captions of the other classes.
  std::vector<double> pos_score, neg_score, other_score;
  double picks_excluded = 0;       // "not a <own class>" is the best of the C negated captions
  double lowest_own = 0;           // "not a <own class>" is the worst of them (the right answer)
  double beats_all_positives = 0;  // "not a <own>" beats every "a <other class>" caption
};

// pos_emb, neg_emb [C, D]: per class a caption and its negation.
NegationReport negation_test(const Tensor& image_emb, const std::vector<int64_t>& labels,
                             const Tensor& pos_emb, const Tensor& neg_emb, int64_t num_classes);

// "a photo of a sneaker" -> "sneaker a of photo a" (whitespace-separated words reversed).
std::string reverse_words(const std::string& text);

struct SwapReport {
  double accuracy = 0;                       // the true caption beats its word-swapped twin
  double true_score = 0, swapped_score = 0;  // mean cosines
  // The control without "not": "a X and a Y" against "a Y and a X" (both true): how often the
  // X-first caption wins, and their mean cosines.
  double control_accuracy = 0;
  double control_first_score = 0, control_second_score = 0;
  std::string example_true, example_swapped;
};

// For an image of class X (Y = (X + C/2) mod C): "a photo of a X and not a Y" (true) against
// "a photo of a Y and not a X" (the same words, false), and the control pair without "not".
SwapReport order_swap_test(clip::MiniCLIP& model, const clip::CaptionBank& captions,
                           const Tensor& image_emb, const std::vector<int64_t>& labels,
                           Device device);

struct OodReport {
  double temperature = 0;
  double normal_acc = 0, normal_conf = 0;      // test images as they are
  double inverted_acc = 0, inverted_conf = 0;  // 1 - pixel
  int64_t noise_top_class = 0;                 // the answer most given to noise images
  double noise_top_share = 0, noise_conf = 0;
};

// Zero-shot ("a photo of a X" prompts) on up to 2000 test images, the same images inverted, and
// 500 uniform-noise images; conf = mean softmax probability of the top class at the model's
// temperature.
OodReport ood_test(clip::MiniCLIP& model, const clip::CaptionBank& captions,
                   const data::Dataset& test, Device device);

// ---- domain fine-tuning (seed 004 section 4) ----------------------------------------------------

// The same images in negative, 1 - pixel: white background, dark garments. Every pixel changes,
// the garment (its outline, its parts) does not: a person reads both alike.
Tensor invert_images(const Tensor& images);

// per_class indices of each class in [0, num_classes), drawn at random (seeded) from labels
// (int64 [N]), in ascending order. Every class must have that many examples.
std::vector<int64_t> few_shot_indices(const Tensor& labels, int64_t num_classes, int64_t per_class,
                                      uint64_t seed);

// Zero-shot accuracy with one prompt per class, template clip::kSingleTemplate ("a photo of a
// X"), the prompts encoded by the model as it is now.
double single_prompt_accuracy(clip::MiniCLIP& model, const clip::CaptionBank& captions,
                              const data::Dataset& set, Device device);

struct FineTuneCurve {
  // Measured before the first step (step 0), every eval_every steps and after the last one.
  std::vector<double> steps, domain_acc, original_acc;
  std::vector<double> losses;  // one per step
  double seconds = 0;          // training and evaluation
};

// Fine-tunes the whole model on the (image, caption) pairs of images / labels with lesson 04's
// objective and batches (clip::ClipBatches: captions under random templates; clip::ClipOptimizer:
// Adam over every parameter, options' schedule). Single-prompt zero-shot accuracy on domain_eval
// and original_eval (held-out sets) is measured along the way. The model is left in eval mode.
FineTuneCurve fine_tune(clip::MiniCLIP& model, const clip::CaptionBank& captions,
                        const Tensor& images, const Tensor& labels,
                        const clip::TrainOptions& options, const data::Dataset& domain_eval,
                        const data::Dataset& original_eval, int64_t eval_every, Device device);

// Copies of every parameter and buffer (Module::state_dict holds the tensors themselves), to
// put a model back with load_state_dict after an experiment.
nn::StateDict snapshot(const nn::Module& model);

// Counts of `values` in `bins` equal bins over [lo, hi] (values outside go to the end bins);
// centers gets the bin centres.
void histogram(const std::vector<double>& values, double lo, double hi, int bins,
               std::vector<double>& centers, std::vector<double>& counts);

}  // namespace mmgrad::align
