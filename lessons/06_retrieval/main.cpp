// Lesson 06: cross-modal retrieval with a precomputed index.
//
// Search in a shared embedding space is a nearest-neighbour lookup: encode the collection
// once (the index), encode the query when it arrives, rank the collection by cosine
// similarity. The same model searches images with text and text with images.
//
// What you will see (one function per section, in this order):
//   1. load_model: lesson 04's mini CLIP (its checkpoint when it matches, else trained here)
//      and the 10,000 test images.
//   2. build_index: all test images encoded once (and the time that takes), a gallery of the
//      80 captions (10 classes x 8 templates), and one query timed end to end.
//   3. text_to_image: each caption searches the 10,000 images. A hit is an image of the
//      caption's class (class-level relevance). Recall@1, 5, 10 and the mean reciprocal rank,
//      per class too; the top-5 images of each class query as a picture (top5_per_query.png).
//   4. image_to_text: each test image searches the 80 captions. Recall@1, 5, 10 and MRR, and
//      a few examples.
//   5. recall_curves_and_class_map: Recall@k for both directions (recall_at_k.svg) and the
//      class-by-class mean similarity between prompts and images (class_similarity.svg).
//   6. how_much_it_moves: text->image Recall@1 counts only 80 queries (one query = 1.25
//      points), and another seed trains another model; with --seeds N the lesson trains N
//      models and reports the mean and spread of both Recall@1 numbers.
//   7. check_targets: text->image Recall@1 >= 95%, image->text Recall@1 >= 85% for this run.
//
// The last line is `result: t2i_r1=... i2t_r1=... t2i_mrr=... i2t_mrr=... seconds=...`.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "04_mini_clip/clip.h"
#include "common/lesson.h"
#include "mmgrad/data/fashion_mnist.h"
#include "mmgrad/data/image.h"
#include "mmgrad/metrics/metrics.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/plot/figure.h"

using namespace mmgrad;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Recall@1/5/10 and MRR of one search direction.
struct Scores {
  double r1 = 0, r5 = 0, r10 = 0, mrr = 0;
};
Scores score(const Tensor& sim, const Tensor& query_labels, const Tensor& gallery_labels) {
  std::vector<double> r = metrics::recall_at_ks(sim, query_labels, gallery_labels, {1, 5, 10});
  return {r[0], r[1], r[2], metrics::mean_reciprocal_rank(sim, query_labels, gallery_labels)};
}
void print_scores(const Scores& s) {
  lesson::print("  Recall@1 {:.2%}   Recall@5 {:.2%}   Recall@10 {:.2%}   MRR {:.4f}", s.r1, s.r5,
                s.r10, s.mrr);
}

// What the sections hand on to each other.
struct Retrieval {
  lesson::Args args;
  int seeds = 1;  // --seeds: how many models section 6 compares
  clip::CaptionBank captions;
  clip::ClipModel m;   // the trained mini CLIP (m.model)
  data::Dataset test;  // the held-out images: the collection we search
  // section 2
  Tensor index;       // [N, D] unit image embeddings
  Tensor gallery;     // [80, D] unit caption embeddings, class-major (8 templates per class)
  Tensor cap_labels;  // [80] the class of each caption
  double index_seconds = 0;
  // sections 3-4
  Tensor sim_t2i;  // [80, N] cosine similarity of every caption with every image
  Scores t2i, i2t;
  // section 6 with --seeds N: Recall@1 of the models of seeds --seed, --seed + 1, ...
  std::vector<double> t2i_r1_per_seed, i2t_r1_per_seed;
};

// ---- 1 ---------------------------------------------------------------------------------------
Retrieval load_model(const lesson::Args& args) {
  lesson::section("1. The mini CLIP model from lesson 04");
  Retrieval r;
  r.args = args;
  r.seeds = args.get_int("--seeds", 1);
  MMGRAD_CHECK(r.seeds >= 1 && r.seeds <= 20, "--seeds ", r.seeds, ": expected 1 to 20 seeds");
  r.captions = clip::make_fmnist_captions();
  clip::FmnistClipConfig cfg = clip::default_fmnist_config(args);
  r.m = clip::get_fmnist_clip(args, cfg, r.captions,
                              args.get_string("--clip-ckpt", clip::kDefaultCheckpoint));
  r.test = data::load_fashion_mnist(data::Split::Test, args.data, args.quick ? 2000 : -1);
  return r;
}

// ---- 2 ---------------------------------------------------------------------------------------
// Encoding is the expensive part of search, and it is done once: afterwards a query costs one
// encoder pass plus a matrix-vector product with the index.
void build_index(Retrieval& r) {
  lesson::section("2. Building the index");
  const Device dev = r.args.device;
  clip::MiniCLIP& model = *r.m.model;
  auto t0 = std::chrono::steady_clock::now();
  r.index = clip::encode_images(model, r.test.images, dev);
  r.index_seconds = seconds_since(t0);
  lesson::print("image index: {} (unit vectors), built in {:.2f} s ({:.0f} images/s)",
                r.index.shape_str(), r.index_seconds,
                static_cast<double>(r.test.size()) / std::max(r.index_seconds, 1e-9));
  t0 = std::chrono::steady_clock::now();
  r.gallery = clip::encode_texts(model, r.captions.tokens, dev);
  lesson::print("caption gallery: {}, built in {:.3f} s", r.gallery.shape_str(), seconds_since(t0));
  std::vector<int64_t> cap_labels;
  for (int64_t c = 0; c < r.captions.num_classes(); ++c)
    for (int64_t t = 0; t < r.captions.num_templates(); ++t) cap_labels.push_back(c);
  r.cap_labels = Tensor::from_vector(cap_labels);

  // One query, timed: embed it, score the whole index, take the top 5.
  t0 = std::chrono::steady_clock::now();
  Tensor q = clip::encode_texts(model, r.captions.encode({"a photo of a sneaker"}), dev);
  SortResult top = topk(matmul(q, r.index.t()).squeeze(0), 5);
  const double query_ms = 1e3 * seconds_since(t0);
  lesson::print_inline(
      "one query (\"a photo of a sneaker\"): encode + score {} images + top 5 in {:.2f} ms -> "
      "classes",
      r.test.size(), query_ms);
  const auto& names = data::fashion_mnist_classes();
  for (int64_t i : top.indices.to_vector<int64_t>())
    lesson::print_inline(" {}", names[r.test.labels[i].item<int64_t>()]);
  lesson::print("");
}

// ---- 3 ---------------------------------------------------------------------------------------
// The similarity matrix [80 captions, N images]; for every caption, rank all images.
// Recall@k: the share of queries with at least one image of the right class among the first k.
// MRR: the mean of 1 / (rank of the first right image).
void text_to_image(Retrieval& r) {
  lesson::section("3. Text -> image retrieval");
  const auto& names = data::fashion_mnist_classes();
  const int64_t C = static_cast<int64_t>(names.size()), T = r.captions.num_templates();
  r.sim_t2i = matmul(r.gallery, r.index.t());  // [80, N]
  r.t2i = score(r.sim_t2i, r.cap_labels, r.test.labels);
  lesson::print("{} caption queries over {} images:", r.gallery.size(0), r.test.size());
  print_scores(r.t2i);
  lesson::print("  ({} of the {} captions find an image of their class first)",
                std::lround(r.t2i.r1 * static_cast<double>(r.gallery.size(0))), r.gallery.size(0));

  // Per class: the share of that class's 8 captions whose first image is right, and the
  // precision of the top 10 (how many of the first 10 images are of the class).
  std::vector<int64_t> rank =
      metrics::retrieval_ranks(r.sim_t2i, r.cap_labels, r.test.labels).to_vector<int64_t>();
  std::vector<int64_t> top10 = topk(r.sim_t2i, 10, 1).indices.to_vector<int64_t>();
  std::vector<int64_t> y = r.test.labels.to_vector<int64_t>();
  lesson::print("\n{:<12} {:>10} {:>15}", "query class", "Recall@1", "top-10 precision");
  for (int64_t c = 0; c < C; ++c) {
    int64_t hits1 = 0, hits10 = 0;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t qi = c * T + t;
      hits1 += rank[qi] == 1;
      for (int k = 0; k < 10; ++k) hits10 += y[top10[qi * 10 + k]] == c;
    }
    lesson::print("{:<12} {:9.1f}% {:14.1f}%", names[c], 100.0 * hits1 / T,
                  100.0 * hits10 / (10.0 * T));
  }

  // The picture: one row per class prompt "a photo of a {}", its five best images.
  std::vector<Tensor> tiles;
  data::GridOptions grid;
  grid.scale = 3;
  grid.title = "Text -> image: the five best test images for each query \"a photo of a {class}\"";
  grid.mark_legend = "red frame: the image is not of the query's class";
  for (int64_t c = 0; c < C; ++c) {
    const int64_t qi = c * T + clip::kSingleTemplate;
    for (int k = 0; k < 5; ++k) {
      const int64_t i = top10[qi * 10 + k];
      tiles.push_back(r.test.images[i]);
      grid.labels.push_back(lesson::format("q: {} #{}\n{} {:.2f}", r.captions.class_names[c], k + 1,
                                           names[y[i]], r.sim_t2i.at({qi, i})));
      grid.marked.push_back(y[i] != c);
    }
  }
  const std::string path = r.args.path("top5_per_query.png");
  data::save_image_grid(tiles, 5, path, grid);
  lesson::print(
      "\nwrote {} (rows: the queries \"a photo of a {{class}}\"; each tile: query, rank,\n"
      "the image's true class and its cosine similarity; framed in red when the class is wrong)",
      path);
}

// ---- 4 ---------------------------------------------------------------------------------------
// The same matrix transposed: every test image ranks the 80 captions.
void image_to_text(Retrieval& r) {
  lesson::section("4. Image -> text retrieval");
  const auto& names = data::fashion_mnist_classes();
  const int64_t T = r.captions.num_templates();
  Tensor sim_i2t = r.sim_t2i.t();  // [N, 80]
  r.i2t = score(sim_i2t, r.test.labels, r.cap_labels);
  lesson::print("{} image queries over {} captions:", r.test.size(), r.gallery.size(0));
  print_scores(r.i2t);
  lesson::print(
      "(Image -> text Recall@1 is zero-shot classification with all 80 captions as\n"
      "prompts: the best-matching caption decides the class.)\n");
  SortResult top3 = topk(sim_i2t.narrow(0, 0, 4).contiguous(), 3, 1);
  std::vector<int64_t> t3 = top3.indices.to_vector<int64_t>();
  std::vector<double> s3 = top3.values.to_vector<double>();
  for (int64_t i = 0; i < 4; ++i) {
    lesson::print("  test image #{} ({}):", i, names[r.test.labels[i].item<int64_t>()]);
    for (int k = 0; k < 3; ++k) {
      const int64_t c = t3[i * 3 + k];
      lesson::print("      {:.3f}  \"{}\"", s3[i * 3 + k], r.captions.text(c / T, c % T));
    }
  }
}

// ---- 5 ---------------------------------------------------------------------------------------
// How recall grows with k, and which classes the space confuses.
void recall_curves_and_class_map(const Retrieval& r) {
  lesson::section("5. Recall@k curves and the class similarity map");
  const auto& names = data::fashion_mnist_classes();
  const int64_t C = static_cast<int64_t>(names.size());
  const std::vector<int64_t> ks = {1, 2, 3, 5, 10, 20, 50, 100};
  std::vector<double> rt = metrics::recall_at_ks(r.sim_t2i, r.cap_labels, r.test.labels, ks);
  std::vector<double> ri = metrics::recall_at_ks(r.sim_t2i.t(), r.test.labels, r.cap_labels, ks);
  lesson::print("{:>6} {:>12} {:>12}", "k", "text->image", "image->text");
  for (size_t i = 0; i < ks.size(); ++i)
    lesson::print("{:6d} {:12.2%} {:12.2%}", ks[i], rt[i], ri[i]);
  lesson::print(
      "(Image -> text climbs in steps: the 8 captions of a class sit almost on one point,\n"
      "so the top 8 captions are usually all of one class and Recall@k hardly moves\n"
      "until k passes 8 and the second-best class enters the list.)");
  plot::LinePlot p("Recall@k (class-level relevance, test set)", "k", "Recall@k");
  p.add_series("text -> image", std::vector<double>(ks.begin(), ks.end()), rt)
      .add_series("image -> text", std::vector<double>(ks.begin(), ks.end()), ri);
  // k spans two decades (1 .. 100): a log axis gives k = 1..10 as much room as k = 10..100.
  p.set_markers().set_log_x().set_ylim(0.0, 1.02);
  p.save(r.args.path("recall_at_k.svg"));
  lesson::print("wrote {}", r.args.path("recall_at_k.svg"));

  // Mean cosine similarity between the prompt of class j ("a photo of a {}") and the images
  // of class i: a bright diagonal means each prompt sits closest to its own class.
  Tensor prompts =
      clip::class_embeddings(*r.m.model, r.captions, {clip::kSingleTemplate}, r.args.device);
  Tensor s = clip::similarity(r.index, prompts);                             // [N, 10]
  Tensor onehot = one_hot(r.test.labels, C, kFloat32);                       // [N, 10]
  Tensor class_sim = matmul(onehot.t(), s) / sum(onehot, {0}).unsqueeze(1);  // [10 img, 10 txt]
  lesson::print_inline(
      "\nmean cosine similarity (rows: image class, columns: prompt class):\n{:12}", "");
  for (int64_t c = 0; c < C; ++c) lesson::print_inline(" {:>5.5}", names[c]);
  lesson::print("");
  std::vector<double> cs = class_sim.to_vector<double>();
  for (int64_t i = 0; i < C; ++i) {
    lesson::print_inline("{:<12}", names[i]);
    for (int64_t c = 0; c < C; ++c) lesson::print_inline(" {:5.2f}", cs[i * C + c]);
    lesson::print("");
  }
  plot::Heatmap h("Mean similarity: image class vs prompt class", class_sim, names, names);
  h.set_axis_labels("prompt \"a photo of a {}\"", "images of class");
  h.set_colormap(plot::Colormap::RedBlue).set_range(-1.0, 1.0);
  h.save(r.args.path("class_similarity.svg"));
  lesson::print("wrote {}", r.args.path("class_similarity.svg"));
}

// ---- 6 ---------------------------------------------------------------------------------------
// Recall@1 in both directions of the model trained with another seed: lesson 04's recipe from
// scratch (never the checkpoint), silently, the same draws as `--seed s --clip-ckpt none`.
std::pair<double, double> recall_at_1_for_seed(const Retrieval& r, uint64_t seed) {
  lesson::Args a = r.args;
  a.seed = seed;
  const clip::FmnistClipConfig cfg = clip::default_fmnist_config(a);
  std::shared_ptr<clip::MiniCLIP> model = clip::make_fmnist_clip(cfg, r.captions);
  const data::Dataset train = data::load_fashion_mnist(data::Split::Train, a.data, cfg.train_limit);
  model->to(a.device);
  clip::TrainOptions o = cfg.train;
  o.log_every = 0;  // silent
  clip::train_clip(*model, train.images, train.labels, r.captions, o, a.device);
  Tensor index = clip::encode_images(*model, r.test.images, a.device);
  Tensor sim = matmul(clip::encode_texts(*model, r.captions.tokens, a.device), index.t());
  return {metrics::recall_at_ks(sim, r.cap_labels, r.test.labels, {1})[0],
          metrics::recall_at_ks(sim.t(), r.test.labels, r.cap_labels, {1})[0]};
}

void how_much_it_moves(Retrieval& r) {
  lesson::section("6. How much these numbers move");
  const int64_t Q = r.gallery.size(0);
  lesson::print(
      "Text -> image Recall@1 is measured on only {} queries, and fewer independent ones: the\n"
      "{} captions of a class sit almost on one point (section 5), so they tend to find the\n"
      "same first image, and one class whose best image is of another class costs up to {:.0f}\n"
      "points at once. Image -> text Recall@1 averages over {} image queries and moves much\n"
      "less. And the model is one draw: another --seed gives other initial weights and batches.",
      Q, r.captions.num_templates(), 100.0 * r.captions.num_templates() / static_cast<double>(Q),
      r.test.size());
  const int seeds = r.seeds;
  if (seeds == 1) {
    // Measured at the defaults with lesson 04's recipe, the model trained here, seeds 0-4
    // (each is what --seeds 5 prints for that seed), on the GEMM ladder, the implicit-GEMM
    // convolution and the direct first-layer convolution (2026-12-07, evening); re-measure when
    // that recipe or those kernels change.
    lesson::print(
        "\nAt the lesson's defaults (no flags, not --quick), seeds 0-4 gave\n"
        "  text -> image Recall@1   100% on seeds 1, 2 and 4, 93.75% on seed 0 and 90% on\n"
        "                           seed 3 (mean 96.75%): on those two, most captions of one\n"
        "                           class found an image of another class first (seed 0: 5 of\n"
        "                           the 8 dress captions, a pullover that looks like a dress)\n"
        "  image -> text Recall@1   90.7% to 91.5% (mean 91.0%)\n"
        "The same models with their sums added in another order (the convolution kernels\n"
        "before this version) gave 100% on four of these seeds. So a single run's text ->\n"
        "image Recall@1 says \"nearly every class query finds its class first\", not a precise\n"
        "percentage, and the 95% target of section 7 fails whenever one class misses. Run\n"
        "with --seeds 5 to measure the spread yourself (each extra seed trains lesson 04's\n"
        "model once more).");
    return;
  }
  lesson::print("\nTraining lesson 04's model for {} more seed{} (silently)...", seeds - 1,
                seeds > 2 ? "s" : "");
  std::vector<double>&t2i = r.t2i_r1_per_seed, &i2t = r.i2t_r1_per_seed;
  t2i = {r.t2i.r1};
  i2t = {r.i2t.r1};
  for (int k = 1; k < seeds; ++k) {
    auto [t, i] = recall_at_1_for_seed(r, r.args.seed + static_cast<uint64_t>(k));
    t2i.push_back(t);
    i2t.push_back(i);
  }
  lesson::print("\n  seed   text->image R@1   image->text R@1");
  for (size_t k = 0; k < t2i.size(); ++k)
    lesson::print("  {:4d} {:17.2%} {:17.2%}", r.args.seed + k, t2i[k], i2t[k]);
  auto summary = [](const std::vector<double>& v) {
    const lesson::Spread sp = lesson::spread_of(v);
    return lesson::format("mean {:.2%}, standard deviation {:.2f} points, range {:.2%} to {:.2%}",
                          sp.mean, 100 * sp.sd, sp.lo, sp.hi);
  };

  lesson::print("\n  text->image Recall@1: {}\n  image->text Recall@1: {}", summary(t2i),
                summary(i2t));
}

// ---- 7 ---------------------------------------------------------------------------------------
void check_targets(const Retrieval& r) {
  lesson::section("7. Targets (this run)");
  auto report = [&](const char* what, double v, double target) {
    if (v >= target)
      lesson::print("{} >= {:.0%}: met ({:.2%})", what, target, v);
    else
      lesson::print("{} >= {:.0%}: MISSED by {:.2f} points ({:.2%}){}", what, target,
                    100 * (target - v), v,
                    r.args.quick ? " -- expected in --quick mode (50 training steps)" : "");
  };
  report("text->image Recall@1", r.t2i.r1, 0.95);
  report("image->text Recall@1", r.i2t.r1, 0.85);
}

}  // namespace

int main(int argc, char** argv) {
  return lesson::run([&] {
    const lesson::Args args = lesson::parse_args(
        argc, argv, "06_retrieval",
        "cross-modal retrieval (text->image, image->text) with a precomputed index",
        lesson::kUsesSteps | lesson::kUsesData,
        {{"--clip-ckpt PATH",
          "lesson 04's model to reuse (default out/04_mini_clip/fmnist_clip.ckpt; "
          "none: always train here)"},
         {"--seeds N",
          "N > 1: also train lesson 04's model for the next N - 1 seeds and report the mean "
          "and spread of Recall@1 (each seed is one more training run; default 1)"}});
    Retrieval r = load_model(args);
    build_index(r);
    text_to_image(r);
    image_to_text(r);
    recall_curves_and_class_map(r);
    how_much_it_moves(r);
    check_targets(r);

    lesson::Result result;
    result.add("t2i_r1", r.t2i.r1)
        .add("i2t_r1", r.i2t.r1)
        .add("t2i_mrr", r.t2i.mrr)
        .add("i2t_mrr", r.i2t.mrr)
        .add("t2i_r5", r.t2i.r5)
        .add("t2i_r10", r.t2i.r10)
        .add("i2t_r5", r.i2t.r5)
        .add("i2t_r10", r.i2t.r10)
        .add("index_seconds", r.index_seconds)
        .add("from_checkpoint", r.m.from_checkpoint ? 1.0 : 0.0);
    if (r.seeds > 1) {
      const double n = static_cast<double>(r.seeds);
      double t = 0, i = 0;
      for (int k = 0; k < r.seeds; ++k) {
        t += r.t2i_r1_per_seed[k] / n;
        i += r.i2t_r1_per_seed[k] / n;
      }
      result.add("seeds", n).add("t2i_r1_mean", t).add("i2t_r1_mean", i);
    }
    result.print();
  });
}
