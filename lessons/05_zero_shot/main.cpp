// Lesson 05: zero-shot classification of Fashion-MNIST from class prompts.
//
// A CLIP model never learns a classifier head. To classify, we write one sentence per class
// ("a photo of a sneaker"), embed those sentences with the text encoder, and give each image the
// class whose sentence is most similar to it. Changing the classes means changing sentences,
// not retraining.
//
// What you will see:
//   1. The model: lesson 04's mini CLIP, loaded from its checkpoint when lesson 04 has run with
//      the same settings, otherwise trained here with the same recipe (~40 s of CPU time).
//   2. The classifier built from ten prompts: their embeddings and how similar they are to
//      each other (the text side alone already knows which classes are alike).
//   3. Zero-shot classification of the 10,000 test images with one template: overall accuracy,
//      per-class accuracy (table and per_class_accuracy.svg), the confusion matrix
//      (confusion.svg) and the most common mistakes.
//   4. What the similarity scores mean: softmax over the ten classes at the learned temperature,
//      for a few images.
//   5. Prompt ensembles: each of five templates alone, then all five averaged per class (and
//      re-normalised). Target: zero-shot accuracy >= 85% and the ensemble at least as good as
//      the single template.
//   6. The same comparison for five wordings the model never saw in training.
//
// The last line is `result: zero_shot_acc=... single_template_acc=... ensemble_acc=...`.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "04_mini_clip/clip.h"
#include "common/lesson.h"
#include "data/fashion_mnist.h"
#include "metrics/metrics.h"
#include "mmgrad.h"
#include "plot/figure.h"

using namespace mmgrad;

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Args args = lesson::parse_args(
        argc, argv, "05_zero_shot",
        "zero-shot classification of Fashion-MNIST from class prompts, single and ensemble",
        {{"--clip-ckpt",
          "lesson 04's model to reuse (default out/04_mini_clip/fmnist_clip.ckpt; "
          "none: always train here)"}});
    const Device dev = args.device;
    const auto& names = data::fashion_mnist_classes();
    const int64_t C = static_cast<int64_t>(names.size());

    // 1. The model. The cache is only used when it was made with exactly the configuration
    //    (and seed) this lesson would train, so the numbers are the same either way.
    lesson::section("1. The mini CLIP model from lesson 04");
    clip::CaptionBank captions = clip::make_fmnist_captions();
    clip::FmnistClipConfig cfg = clip::default_fmnist_config(args);
    clip::ClipModel m = clip::get_fmnist_clip(
        args, cfg, captions, args.get_string("--clip-ckpt", clip::kDefaultCheckpoint));
    clip::MiniCLIP& model = *m.model;
    data::Dataset test =
        data::load_fashion_mnist(data::Split::Test, args.data, args.quick ? 2000 : -1);
    std::printf("test set: %lld images (never seen in training)\n",
                static_cast<long long>(test.size()));

    // 2. The classifier is ten sentences. Each prompt is encoded and normalised; the ten unit
    //    vectors are the "weights" of a linear classifier that nobody trained as one.
    lesson::section("2. Ten prompts make a classifier");
    const int64_t single = clip::kSingleTemplate;
    std::printf("template: \"%s\"\n", captions.templates[single].c_str());
    for (int64_t c = 0; c < C; ++c)
      std::printf("  class %lld %-12s prompt \"%s\"\n", static_cast<long long>(c), names[c].c_str(),
                  captions.text(c, single).c_str());
    Tensor single_emb = clip::class_embeddings(model, captions, {single}, dev);  // [10, D]
    Tensor prompt_sim = matmul(single_emb, single_emb.t());
    std::printf("\ncosine similarity between the prompt embeddings (1 = same direction):\n%12s",
                "");
    for (int64_t c = 0; c < C; ++c) std::printf(" %5.5s", names[c].c_str());
    std::printf("\n");
    std::vector<double> ps = prompt_sim.to_vector<double>();
    for (int64_t r = 0; r < C; ++r) {
      std::printf("%-12s", names[r].c_str());
      for (int64_t c = 0; c < C; ++c) std::printf(" %5.2f", ps[r * C + c]);
      std::printf("\n");
    }
    std::printf(
        "(Classes that look alike, e.g. shirt / t-shirt / pullover / coat, or sandal /\n"
        "sneaker / ankle boot, got similar text embeddings: the images taught the text\n"
        "encoder which words mean similar pictures.)\n");

    // 3. Classify: embed all test images once, take cosine similarities with the ten prompts,
    //    pick the largest.
    lesson::section("3. Zero-shot classification with one template");
    Tensor img = clip::encode_images(model, test.images, dev);  // [N, D], unit rows
    Tensor sim = clip::similarity(img, single_emb);             // [N, 10]
    Tensor pred = sim.argmax(1);
    const double single_acc = metrics::accuracy(pred, test.labels);
    std::vector<double> per_class =
        metrics::per_class_accuracy(pred, test.labels, C).to_vector<double>();
    Tensor confusion = metrics::confusion_matrix(pred, test.labels, C);
    std::printf("accuracy on %lld test images: %.2f%%\n\n", static_cast<long long>(test.size()),
                100.0 * single_acc);
    std::printf("%-12s %8s %9s\n", "class", "accuracy", "test imgs");
    std::vector<int64_t> conf = confusion.to_vector<int64_t>();
    for (int64_t c = 0; c < C; ++c) {
      int64_t n = 0;
      for (int64_t p = 0; p < C; ++p) n += conf[c * C + p];
      std::printf("%-12s %7.1f%% %9lld\n", names[c].c_str(), 100.0 * per_class[c],
                  static_cast<long long>(n));
    }
    // the most frequent confusions (off-diagonal cells)
    std::vector<std::pair<int64_t, int64_t>> cells;
    for (int64_t t = 0; t < C; ++t)
      for (int64_t p = 0; p < C; ++p)
        if (t != p) cells.emplace_back(conf[t * C + p], t * C + p);
    std::sort(cells.rbegin(), cells.rend());
    std::printf("\nmost common mistakes (true -> predicted):\n");
    for (int i = 0; i < 5; ++i)
      std::printf("  %-12s -> %-12s %4lld images\n", names[cells[i].second / C].c_str(),
                  names[cells[i].second % C].c_str(), static_cast<long long>(cells[i].first));
    {
      plot::Heatmap h("Zero-shot confusion matrix (\"a photo of a {}\")", confusion, names, names);
      h.set_axis_labels("predicted class", "true class");
      h.set_colormap(plot::Colormap::Blues);
      const std::string path = args.path("confusion.svg");
      h.save(path);
      std::printf("\nwrote %s\n", path.c_str());
    }

    // 4. The scores are cosine similarities. Multiplied by the learned logit scale (1 /
    //    temperature) and passed through a softmax over the ten classes they become the
    //    probabilities CLIP's loss trained.
    lesson::section("4. From similarities to probabilities");
    const double scale = 1.0 / model.criterion->temperature();
    std::printf("learned temperature %.4f: logits = %.1f x cosine\n\n", 1.0 / scale, scale);
    Tensor probs = softmax(sim * scale, 1);
    std::vector<double> pv = probs.to_vector<double>();
    std::vector<int64_t> yv = test.labels.to_vector<int64_t>();
    std::vector<int64_t> pr = pred.to_vector<int64_t>();
    // three correct and three wrong examples
    std::vector<int64_t> show;
    for (int want_right = 1; want_right >= 0; --want_right)
      for (int64_t i = 0, found = 0; i < test.size() && found < 3; ++i)
        if ((yv[i] == pr[i]) == (want_right == 1)) show.push_back(i), ++found;
    for (int64_t i : show) {
      std::vector<int64_t> order(static_cast<size_t>(C));
      for (int64_t c = 0; c < C; ++c) order[c] = c;
      std::sort(order.begin(), order.end(),
                [&](int64_t a, int64_t b) { return pv[i * C + a] > pv[i * C + b]; });
      std::printf("  test #%-5lld true %-12s top 3:", static_cast<long long>(i),
                  names[yv[i]].c_str());
      for (int k = 0; k < 3; ++k)
        std::printf("  %s %.2f", names[order[k]].c_str(), pv[i * C + order[k]]);
      std::printf("%s\n", yv[i] == pr[i] ? "" : "   <- wrong");
    }

    // 5. Prompt ensembles (the seed's exercise 2). Each template gives its own ten class
    //    embeddings; averaging them per class (then normalising to unit length again) makes a
    //    classifier that does not hinge on one wording.
    lesson::section("5. One template against an ensemble of five");
    const std::vector<int64_t>& ens_ids = clip::ensemble_template_ids();
    std::printf("%-38s %9s\n", "template", "accuracy");
    double mean_single = 0;
    for (int64_t t : ens_ids) {
      Tensor e = clip::class_embeddings(model, captions, {t}, dev);
      const double a = metrics::accuracy(clip::zero_shot_predict(img, e), test.labels);
      mean_single += a / static_cast<double>(ens_ids.size());
      std::printf("%-38s %8.2f%%\n", ("\"" + captions.templates[t] + "\"").c_str(), 100.0 * a);
    }
    Tensor ens_emb = clip::class_embeddings(model, captions, ens_ids, dev);
    Tensor ens_pred = clip::zero_shot_predict(img, ens_emb);
    const double ens_acc = metrics::accuracy(ens_pred, test.labels);
    std::printf("%-38s %8.2f%%\n", "ensemble of the five (mean embedding)", 100.0 * ens_acc);
    // how much do the templates disagree? the cosine between a template's class embedding and
    // the ensemble's, averaged over classes
    double agree = 0;
    for (int64_t t : ens_ids) {
      Tensor e = clip::class_embeddings(model, captions, {t}, dev);
      agree += sum(e * ens_emb).item() / static_cast<double>(C * ens_ids.size());
    }
    std::printf("\nmean cosine between one template's class embedding and the ensemble's: %.4f\n",
                agree);
    const int64_t changed = sum(ne(pred, ens_pred).to(kInt64)).item<int64_t>();
    std::printf("test images whose prediction the ensemble changes: %lld of %lld\n",
                static_cast<long long>(changed), static_cast<long long>(test.size()));
    std::printf(
        "(This model was trained on captions from all these templates, and the text\n"
        "encoder learned that only the class word matters: the five embeddings of a class\n"
        "nearly coincide, so averaging them changes little: the ensemble scores the mean\n"
        "of the five single templates, and whether that beats \"a photo of a {}\" comes\n"
        "down to which template happens to be best. Ensembles pay off when the wordings\n"
        "disagree: section 6.)\n");
    std::vector<double> ens_per_class =
        metrics::per_class_accuracy(ens_pred, test.labels, C).to_vector<double>();
    {
      plot::BarChart b("Zero-shot accuracy per class", "class", "accuracy");
      b.set_categories(names);
      b.add_series("\"a photo of a {}\"", per_class);
      b.add_series("ensemble of 5 templates", ens_per_class);
      b.set_ylim(0.0, 1.0);
      b.set_value_labels(true, 2);
      const std::string path = args.path("per_class_accuracy.svg");
      b.save(path);
      std::printf("\nwrote %s\n", path.c_str());
    }

    // 6. Wordings the model never saw. The five templates above were all training captions,
    //    so the text encoder maps each of them to nearly the same point. New sentences built
    //    from the same words (chosen before looking at any result) are a fairer test of a
    //    prompt: each one is a slightly different guess, and averaging the guesses cancels
    //    part of their errors.
    lesson::section("6. New wordings: where an ensemble earns its keep");
    const std::vector<std::string> unseen = {"a {}", "the {}", "a grey picture of the {}",
                                             "a small blurry photo of my {}",
                                             "a product image of a {}"};
    std::printf("%-38s %9s\n", "unseen template", "accuracy");
    double unseen_mean = 0, unseen_worst = 1, unseen_best = 0;
    for (const auto& t : unseen) {
      Tensor e = clip::class_embeddings_from(model, captions, {t}, dev);
      const double a = metrics::accuracy(clip::zero_shot_predict(img, e), test.labels);
      unseen_mean += a / static_cast<double>(unseen.size());
      unseen_worst = std::min(unseen_worst, a);
      unseen_best = std::max(unseen_best, a);
      std::printf("%-38s %8.2f%%\n", ("\"" + t + "\"").c_str(), 100.0 * a);
    }
    Tensor unseen_emb = clip::class_embeddings_from(model, captions, unseen, dev);
    const double unseen_ens =
        metrics::accuracy(clip::zero_shot_predict(img, unseen_emb), test.labels);
    std::printf("%-38s %8.2f%%\n", "ensemble of the five", 100.0 * unseen_ens);
    std::printf(
        "\nthe ensemble against one new wording: %+.2f points over their mean, %+.2f over "
        "the worst,\n%+.2f against the best (which nobody could have picked in advance)\n",
        100.0 * (unseen_ens - unseen_mean), 100.0 * (unseen_ens - unseen_worst),
        100.0 * (unseen_ens - unseen_best));

    // Targets
    lesson::section("Targets");
    const double target = 0.85;
    if (single_acc >= target)
      std::printf("zero-shot accuracy >= 85%%: met (%.2f%%)\n", 100.0 * single_acc);
    else
      std::printf("zero-shot accuracy >= 85%%: MISSED by %.2f points (%.2f%%)%s\n",
                  100.0 * (target - single_acc), 100.0 * single_acc,
                  args.quick ? " -- expected in --quick mode (50 training steps)" : "");
    if (ens_acc >= single_acc)
      std::printf(
          "ensemble at least as good as the single template: met (%.2f%% vs %.2f%%, "
          "%+.2f points)\n",
          100.0 * ens_acc, 100.0 * single_acc, 100.0 * (ens_acc - single_acc));
    else
      std::printf(
          "ensemble at least as good as the single template: MISSED (%.2f%% vs %.2f%%, "
          "%+.2f points)\n",
          100.0 * ens_acc, 100.0 * single_acc, 100.0 * (ens_acc - single_acc));
    std::printf("(the ensemble vs the mean of the five single templates: %+.2f points)\n",
                100.0 * (ens_acc - mean_single));
    std::printf(
        "on five new wordings (section 6) the ensemble is %+.2f points over one wording "
        "on average\n(%.2f%% vs %.2f%%) and %+.2f over the worst\n",
        100.0 * (unseen_ens - unseen_mean), 100.0 * unseen_ens, 100.0 * unseen_mean,
        100.0 * (unseen_ens - unseen_worst));

    lesson::Result result;
    result.add("zero_shot_acc", single_acc);
    result.add("single_template_acc", single_acc);
    result.add("ensemble_acc", ens_acc);
    result.add("unseen_mean_single_acc", unseen_mean);
    result.add("unseen_ensemble_acc", unseen_ens);
    result.add("from_checkpoint", m.from_checkpoint ? 1.0 : 0.0);
    result.print();
  });
}
