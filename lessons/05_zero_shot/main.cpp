// Lesson 05: zero-shot classification of Fashion-MNIST from class prompts.
//
// A CLIP model never learns a classifier head. To classify, we write one sentence per class
// ("a photo of a sneaker"), embed those sentences with the text encoder, and give each image the
// class whose sentence is most similar to it. Changing the classes means changing sentences,
// not retraining.
//
// What you will see (each section is one function below, in this order; main() lists them):
//   1. the_model: lesson 04's mini CLIP, loaded from its checkpoint when lesson 04 has run
//      with the same settings, otherwise trained here with the same recipe (~40 s of CPU time).
//   2. prompts_make_a_classifier: the classifier built from ten prompts: their embeddings and
//      how similar they are to each other (the text side alone already knows which classes are
//      alike).
//   3. zero_shot_one_template: zero-shot classification of the 10,000 test images with one
//      template: overall accuracy, per-class accuracy, the confusion matrix (confusion.svg) and
//      the most common mistakes.
//   4. similarities_to_probabilities: softmax over the ten classes at the learned temperature,
//      for a few images.
//   5. prompt_ensemble: each of five templates alone, then all five averaged per class (and
//      re-normalised); per-class accuracy of both (per_class_accuracy.svg).
//   6. unseen_wordings: the same comparison for five wordings the model never saw in training.
//   Targets (targets): zero-shot accuracy >= 85% and the ensemble at least as good as the
//      single template.
//
// The last line is `result: zero_shot_acc=... single_template_acc=... ensemble_acc=...`.
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "04_mini_clip/clip.h"
#include "common/lesson.h"
#include "mmgrad/data/fashion_mnist.h"
#include "mmgrad/metrics/metrics.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/plot/figure.h"

using namespace mmgrad;

namespace {

const std::vector<std::string>& names() { return data::fashion_mnist_classes(); }
int64_t num_classes() { return static_cast<int64_t>(names().size()); }

// ---- 1. The model -------------------------------------------------------------------------------
// What every later section uses: the model, its captions, the test set and its embeddings.
struct ZeroShot {
  clip::ClipModel m;
  clip::CaptionBank captions;
  data::Dataset test;
  Tensor img;  // [N, D] unit-length embeddings of the test images (section 3)
  clip::MiniCLIP& model() const { return *m.model; }
};

// The cache is only used when it was made with exactly the configuration (and seed) this lesson
// would train, so the numbers are the same either way.
ZeroShot the_model(const lesson::Args& args) {
  lesson::section("1. The mini CLIP model from lesson 04");
  ZeroShot z;
  z.captions = clip::make_fmnist_captions();
  clip::FmnistClipConfig cfg = clip::default_fmnist_config(args);
  z.m = clip::get_fmnist_clip(args, cfg, z.captions,
                              args.get_string("--clip-ckpt", clip::kDefaultCheckpoint));
  z.test = data::load_fashion_mnist(data::Split::Test, args.data, args.quick ? 2000 : -1);
  lesson::print("test set: {} images (never seen in training)", z.test.size());
  return z;
}

// ---- 2. Ten prompts make a classifier -----------------------------------------------------------
// Each prompt is encoded and normalised; the ten unit vectors are the "weights" of a linear
// classifier that nobody trained as one. Returns them, [10, D].
Tensor prompts_make_a_classifier(const lesson::Args& args, const ZeroShot& z) {
  lesson::section("2. Ten prompts make a classifier");
  const int64_t C = num_classes(), single = clip::kSingleTemplate;
  lesson::print("template: \"{}\"", z.captions.templates[single]);
  for (int64_t c = 0; c < C; ++c)
    lesson::print("  class {} {:<12} prompt \"{}\"", c, names()[c], z.captions.text(c, single));
  Tensor single_emb = clip::class_embeddings(z.model(), z.captions, {single}, args.device);
  Tensor prompt_sim = matmul(single_emb, single_emb.t());
  lesson::print_inline(
      "\ncosine similarity between the prompt embeddings (1 = same direction):\n{:12}", "");
  for (int64_t c = 0; c < C; ++c) lesson::print_inline(" {:>5.5}", names()[c]);
  lesson::print("");
  std::vector<double> ps = prompt_sim.to_vector<double>();
  for (int64_t r = 0; r < C; ++r) {
    lesson::print_inline("{:<12}", names()[r]);
    for (int64_t c = 0; c < C; ++c) lesson::print_inline(" {:5.2f}", ps[r * C + c]);
    lesson::print("");
  }
  lesson::print(
      "(Classes that look alike, e.g. shirt / t-shirt / pullover / coat, or sandal /\n"
      "sneaker / ankle boot, got similar text embeddings: the images taught the text\n"
      "encoder which words mean similar pictures.)");
  return single_emb;
}

// ---- 3. Zero-shot classification with one template ----------------------------------------------
struct SingleTemplate {
  Tensor sim, pred;               // [N, 10] cosine similarities, [N] predicted classes
  double acc = 0;                 // accuracy
  std::vector<double> per_class;  // accuracy per class
};

// Embed all test images once, take cosine similarities with the ten prompts, pick the largest.
SingleTemplate zero_shot_one_template(const lesson::Args& args, ZeroShot& z,
                                      const Tensor& single_emb) {
  lesson::section("3. Zero-shot classification with one template");
  const int64_t C = num_classes();
  SingleTemplate r;
  z.img = clip::encode_images(z.model(), z.test.images, args.device);  // [N, D], unit rows
  r.sim = clip::similarity(z.img, single_emb);                         // [N, 10]
  r.pred = r.sim.argmax(1);
  r.acc = metrics::accuracy(r.pred, z.test.labels);
  r.per_class = metrics::per_class_accuracy(r.pred, z.test.labels, C).to_vector<double>();
  Tensor confusion = metrics::confusion_matrix(r.pred, z.test.labels, C);
  lesson::print("accuracy on {} test images: {:.2%}\n", z.test.size(), r.acc);
  lesson::print("{:<12} {:>8} {:>9}", "class", "accuracy", "test imgs");
  std::vector<int64_t> conf = confusion.to_vector<int64_t>();
  for (int64_t c = 0; c < C; ++c) {
    int64_t n = 0;
    for (int64_t p = 0; p < C; ++p) n += conf[c * C + p];
    lesson::print("{:<12} {:8.1%} {:9}", names()[c], r.per_class[c], n);
  }
  // the most frequent confusions (off-diagonal cells)
  std::vector<std::pair<int64_t, int64_t>> cells;
  for (int64_t t = 0; t < C; ++t)
    for (int64_t p = 0; p < C; ++p)
      if (t != p) cells.emplace_back(conf[t * C + p], t * C + p);
  std::sort(cells.rbegin(), cells.rend());
  lesson::print("\nmost common mistakes (true -> predicted):");
  for (int i = 0; i < 5; ++i)
    lesson::print("  {:<12} -> {:<12} {:4} images", names()[cells[i].second / C],
                  names()[cells[i].second % C], cells[i].first);
  plot::Heatmap h("Zero-shot confusion matrix (\"a photo of a {}\")", confusion, names(), names());
  h.set_axis_labels("predicted class", "true class");
  h.set_colormap(plot::Colormap::Blues);
  const std::string path = args.path("confusion.svg");
  h.save(path);
  lesson::print("\nwrote {}", path);
  return r;
}

// ---- 4. From similarities to probabilities ------------------------------------------------------
// The scores are cosine similarities. Multiplied by the learned logit scale (1 / temperature)
// and passed through a softmax over the ten classes they become the probabilities CLIP's loss
// trained.
void similarities_to_probabilities(const ZeroShot& z, const SingleTemplate& r) {
  lesson::section("4. From similarities to probabilities");
  const int64_t C = num_classes();
  const double scale = 1.0 / z.model().criterion->temperature();
  lesson::print("learned temperature {:.4f}: logits = {:.1f} x cosine\n", 1.0 / scale, scale);
  Tensor probs = softmax(r.sim * scale, 1);
  std::vector<double> pv = probs.to_vector<double>();
  std::vector<int64_t> yv = z.test.labels.to_vector<int64_t>();
  std::vector<int64_t> pr = r.pred.to_vector<int64_t>();
  // three correct and three wrong examples
  std::vector<int64_t> show;
  for (int want_right = 1; want_right >= 0; --want_right)
    for (int64_t i = 0, found = 0; i < z.test.size() && found < 3; ++i)
      if ((yv[i] == pr[i]) == (want_right == 1)) show.push_back(i), ++found;
  for (int64_t i : show) {
    std::vector<int64_t> order(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) order[c] = c;
    std::sort(order.begin(), order.end(),
              [&](int64_t a, int64_t b) { return pv[i * C + a] > pv[i * C + b]; });
    lesson::print_inline("  test #{:<5} true {:<12} top 3:", i, names()[yv[i]]);
    for (int k = 0; k < 3; ++k)
      lesson::print_inline("  {} {:.2f}", names()[order[k]], pv[i * C + order[k]]);
    lesson::print("{}", yv[i] == pr[i] ? "" : "   <- wrong");
  }
}

// ---- 5. Prompt ensembles ------------------------------------------------------------------------
struct Ensemble {
  double acc = 0;          // the ensemble's accuracy
  double mean_single = 0;  // the mean accuracy of its five templates alone
};

// The seed's exercise 2. Each template gives its own ten class embeddings; averaging them per
// class (then normalising to unit length again) makes a classifier that does not hinge on one
// wording.
Ensemble prompt_ensemble(const lesson::Args& args, const ZeroShot& z, const SingleTemplate& one) {
  lesson::section("5. One template against an ensemble of five");
  const Device dev = args.device;
  const std::vector<int64_t>& ens_ids = clip::ensemble_template_ids();
  lesson::print("{:<38} {:>9}", "template", "accuracy");
  Ensemble r;
  for (int64_t t : ens_ids) {
    Tensor e = clip::class_embeddings(z.model(), z.captions, {t}, dev);
    const double a = metrics::accuracy(clip::zero_shot_predict(z.img, e), z.test.labels);
    r.mean_single += a / static_cast<double>(ens_ids.size());
    lesson::print("{:<38} {:9.2%}", "\"" + z.captions.templates[t] + "\"", a);
  }
  Tensor ens_emb = clip::class_embeddings(z.model(), z.captions, ens_ids, dev);
  Tensor ens_pred = clip::zero_shot_predict(z.img, ens_emb);
  r.acc = metrics::accuracy(ens_pred, z.test.labels);
  lesson::print("{:<38} {:9.2%}", "ensemble of the five (mean embedding)", r.acc);
  // how much do the templates disagree? the cosine between a template's class embedding and
  // the ensemble's, averaged over classes
  double agree = 0;
  for (int64_t t : ens_ids) {
    Tensor e = clip::class_embeddings(z.model(), z.captions, {t}, dev);
    agree += sum(e * ens_emb).item() / static_cast<double>(num_classes() * ens_ids.size());
  }
  lesson::print("\nmean cosine between one template's class embedding and the ensemble's: {:.4f}",
                agree);
  const int64_t changed = sum(ne(one.pred, ens_pred).to(kInt64)).item<int64_t>();
  lesson::print("test images whose prediction the ensemble changes: {} of {}", changed,
                z.test.size());
  lesson::print(
      "(This model was trained on captions from all these templates, and the text\n"
      "encoder learned that only the class word matters: the five embeddings of a class\n"
      "nearly coincide, so averaging them changes little: the ensemble scores the mean\n"
      "of the five single templates, and whether that beats {} comes\n"
      "down to which template happens to be best. Ensembles pay off when the wordings\n"
      "disagree: section 6.)",
      "\"a photo of a {}\"");
  plot::BarChart b("Zero-shot accuracy per class", "class", "accuracy");
  b.set_categories(names());
  b.add_series("\"a photo of a {}\"", one.per_class);
  b.add_series(
      "ensemble of 5 templates",
      metrics::per_class_accuracy(ens_pred, z.test.labels, num_classes()).to_vector<double>());
  b.set_ylim(0.0, 1.0);
  b.set_value_labels(true, 2);
  const std::string path = args.path("per_class_accuracy.svg");
  b.save(path);
  lesson::print("\nwrote {}", path);
  return r;
}

// ---- 6. Wordings the model never saw ------------------------------------------------------------
struct Unseen {
  double mean = 0, worst = 1, best = 0;  // accuracy of one wording: mean, worst and best
  double ensemble = 0;                   // accuracy of the five averaged
};

// The five templates above were all training captions, so the text encoder maps each of them to
// nearly the same point. New sentences built from the same words (chosen before looking at any
// result) are a fairer test of a prompt: each one is a slightly different guess, and averaging
// the guesses cancels part of their errors.
Unseen unseen_wordings(const lesson::Args& args, const ZeroShot& z) {
  lesson::section("6. New wordings: where an ensemble earns its keep");
  const std::vector<std::string> unseen = {"a {}", "the {}", "a grey picture of the {}",
                                           "a small blurry photo of my {}",
                                           "a product image of a {}"};
  lesson::print("{:<38} {:>9}", "unseen template", "accuracy");
  Unseen u;
  for (const auto& t : unseen) {
    Tensor e = clip::class_embeddings_from(z.model(), z.captions, {t}, args.device);
    const double a = metrics::accuracy(clip::zero_shot_predict(z.img, e), z.test.labels);
    u.mean += a / static_cast<double>(unseen.size());
    u.worst = std::min(u.worst, a);
    u.best = std::max(u.best, a);
    lesson::print("{:<38} {:9.2%}", "\"" + t + "\"", a);
  }
  Tensor unseen_emb = clip::class_embeddings_from(z.model(), z.captions, unseen, args.device);
  u.ensemble = metrics::accuracy(clip::zero_shot_predict(z.img, unseen_emb), z.test.labels);
  lesson::print("{:<38} {:9.2%}", "ensemble of the five", u.ensemble);
  lesson::print(
      "\nthe ensemble against one new wording: {:+.2f} points over their mean, {:+.2f} over the "
      "worst,\n{:+.2f} against the best (which nobody could have picked in advance)",
      100.0 * (u.ensemble - u.mean), 100.0 * (u.ensemble - u.worst), 100.0 * (u.ensemble - u.best));
  return u;
}

// ---- Targets ------------------------------------------------------------------------------------
void targets(const lesson::Args& args, const ZeroShot& z, const SingleTemplate& one,
             const Ensemble& ens, const Unseen& u) {
  lesson::section("Targets");
  const double target = 0.85;
  if (one.acc >= target)
    lesson::print("zero-shot accuracy >= 85%: met ({:.2%})", one.acc);
  else
    lesson::print("zero-shot accuracy >= 85%: MISSED by {:.2f} points ({:.2%}){}",
                  100.0 * (target - one.acc), one.acc,
                  args.quick ? " -- expected in --quick mode (50 training steps)" : "");
  lesson::print(
      "ensemble at least as good as the single template: {} ({:.2%} vs {:.2%}, {:+.2f} points)",
      ens.acc >= one.acc ? "met" : "MISSED", ens.acc, one.acc, 100.0 * (ens.acc - one.acc));
  lesson::print("(the ensemble vs the mean of the five single templates: {:+.2f} points)",
                100.0 * (ens.acc - ens.mean_single));
  lesson::print(
      "on five new wordings (section 6) the ensemble is {:+.2f} points over one wording on "
      "average\n({:.2%} vs {:.2%}) and {:+.2f} over the worst",
      100.0 * (u.ensemble - u.mean), u.ensemble, u.mean, 100.0 * (u.ensemble - u.worst));

  lesson::Result()
      .add("zero_shot_acc", one.acc)
      .add("single_template_acc", one.acc)
      .add("ensemble_acc", ens.acc)
      .add("unseen_mean_single_acc", u.mean)
      .add("unseen_ensemble_acc", u.ensemble)
      .add("from_checkpoint", z.m.from_checkpoint ? 1.0 : 0.0)
      .print();
}

}  // namespace

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Args args = lesson::parse_args(
        argc, argv, "05_zero_shot",
        "zero-shot classification of Fashion-MNIST from class prompts, single and ensemble",
        lesson::kUsesSteps | lesson::kUsesData,
        {{"--clip-ckpt PATH",
          "lesson 04's model to reuse (default out/04_mini_clip/fmnist_clip.ckpt; "
          "none: always train here)"}});

    ZeroShot z = the_model(args);
    Tensor single_emb = prompts_make_a_classifier(args, z);
    SingleTemplate one = zero_shot_one_template(args, z, single_emb);
    similarities_to_probabilities(z, one);
    Ensemble ens = prompt_ensemble(args, z, one);
    Unseen unseen = unseen_wordings(args, z);
    targets(args, z, one, ens, unseen);
  });
}
