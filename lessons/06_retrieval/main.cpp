// Lesson 06: cross-modal retrieval with a precomputed index.
//
// Search in a shared embedding space is a nearest-neighbour lookup: encode the collection
// once (the index), encode the query when it arrives, rank the collection by cosine
// similarity. The same model searches images with text and text with images.
//
// What you will see:
//   1. The model: lesson 04's mini CLIP (its checkpoint when it matches, else trained here).
//   2. The index: all 10,000 test images encoded once (and the time that takes), and a
//      gallery of the 80 captions (10 classes x 8 templates).
//   3. Text -> image: each caption searches the 10,000 images. A hit is an image of the
//      caption's class (class-level relevance). Recall@1, 5, 10 and the mean reciprocal rank;
//      the top-5 images of each class query as a picture (top5_per_query.png).
//   4. Image -> text: each test image searches the 80 captions. Recall@1, 5, 10 and MRR, and
//      a few examples.
//   5. Recall@k curves for both directions (recall_at_k.svg) and the class-by-class mean
//      similarity between prompts and images (class_similarity.svg).
//   Targets on the test set: text->image Recall@1 >= 95%, image->text Recall@1 >= 85%.
//
// The last line is `result: t2i_r1=... i2t_r1=... t2i_mrr=... i2t_mrr=... seconds=...`.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "04_mini_clip/clip.h"
#include "common/lesson.h"
#include "data/fashion_mnist.h"
#include "data/image.h"
#include "metrics/metrics.h"
#include "mmgrad.h"
#include "plot/figure.h"

using namespace mmgrad;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Recall@1/5/10 and MRR of one direction, printed as a row.
struct Scores {
  double r1 = 0, r5 = 0, r10 = 0, mrr = 0;
};
Scores score(const Tensor& sim, const Tensor& query_labels, const Tensor& gallery_labels) {
  std::vector<double> r = metrics::recall_at_ks(sim, query_labels, gallery_labels, {1, 5, 10});
  return {r[0], r[1], r[2], metrics::mean_reciprocal_rank(sim, query_labels, gallery_labels)};
}

}  // namespace

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Args args = lesson::parse_args(
        argc, argv, "06_retrieval",
        "cross-modal retrieval (text->image, image->text) with a precomputed index",
        {{"--clip-ckpt",
          "lesson 04's model to reuse (default out/04_mini_clip/fmnist_clip.ckpt; "
          "none: always train here)"}});
    const Device dev = args.device;
    const auto& names = data::fashion_mnist_classes();
    const int64_t C = static_cast<int64_t>(names.size());

    // 1. The model.
    lesson::section("1. The mini CLIP model from lesson 04");
    clip::CaptionBank captions = clip::make_fmnist_captions();
    clip::FmnistClipConfig cfg = clip::default_fmnist_config(args);
    clip::ClipModel m = clip::get_fmnist_clip(
        args, cfg, captions, args.get_string("--clip-ckpt", clip::kDefaultCheckpoint));
    clip::MiniCLIP& model = *m.model;
    data::Dataset test =
        data::load_fashion_mnist(data::Split::Test, args.data, args.quick ? 2000 : -1);

    // 2. The index. Encoding is the expensive part of search, and it is done once: afterwards
    //    a query costs one encoder pass plus a matrix-vector product with the index.
    lesson::section("2. Building the index");
    auto t0 = std::chrono::steady_clock::now();
    Tensor index = clip::encode_images(model, test.images, dev);  // [N, D], unit rows
    const double index_s = seconds_since(t0);
    std::printf("image index: %s (unit vectors), built in %.2f s (%.0f images/s)\n",
                index.shape_str().c_str(), index_s,
                static_cast<double>(test.size()) / std::max(index_s, 1e-9));
    t0 = std::chrono::steady_clock::now();
    Tensor gallery = clip::encode_texts(model, captions.tokens, dev);  // [80, D]
    std::printf("caption gallery: %s, built in %.3f s\n", gallery.shape_str().c_str(),
                seconds_since(t0));
    std::vector<int64_t> cap_labels_v;
    for (int64_t c = 0; c < captions.num_classes(); ++c)
      for (int64_t t = 0; t < captions.num_templates(); ++t) cap_labels_v.push_back(c);
    Tensor cap_labels = Tensor::from_vector(cap_labels_v);
    // One query, timed: embed it, score the whole index, take the top 5.
    t0 = std::chrono::steady_clock::now();
    Tensor q = clip::encode_texts(model, captions.encode({"a photo of a sneaker"}), dev);
    SortResult top = topk(matmul(q, index.t()).squeeze(0), 5);
    const double query_ms = 1e3 * seconds_since(t0);
    std::printf(
        "one query (\"a photo of a sneaker\"): encode + score %lld images + top 5 in %.2f "
        "ms -> classes",
        static_cast<long long>(test.size()), query_ms);
    for (int64_t i : top.indices.to_vector<int64_t>())
      std::printf(" %s", names[test.labels[i].item<int64_t>()].c_str());
    std::printf("\n");

    // 3. Text -> image: the similarity matrix [80 captions, N images]; for every caption, rank
    //    all images. Recall@k: the share of queries with at least one image of the right class
    //    among the first k. MRR: the mean of 1 / (rank of the first right image).
    lesson::section("3. Text -> image retrieval");
    Tensor sim_t2i = matmul(gallery, index.t());  // [80, N]
    Scores t2i = score(sim_t2i, cap_labels, test.labels);
    std::printf("%lld caption queries over %lld images:\n", static_cast<long long>(gallery.size(0)),
                static_cast<long long>(test.size()));
    std::printf("  Recall@1 %.2f%%   Recall@5 %.2f%%   Recall@10 %.2f%%   MRR %.4f\n", 100 * t2i.r1,
                100 * t2i.r5, 100 * t2i.r10, t2i.mrr);
    // Per class: the share of that class's 8 captions whose first image is right, and the
    // precision of the top 10 (how many of the first 10 images are of the class).
    Tensor ranks_t2i = metrics::retrieval_ranks(sim_t2i, cap_labels, test.labels);
    std::vector<int64_t> rk = ranks_t2i.to_vector<int64_t>();
    SortResult top10 = topk(sim_t2i, 10, 1);
    std::vector<int64_t> t10 = top10.indices.to_vector<int64_t>();
    std::vector<int64_t> y = test.labels.to_vector<int64_t>();
    std::printf("\n%-12s %10s %15s\n", "query class", "Recall@1", "top-10 precision");
    const int64_t T = captions.num_templates();
    for (int64_t c = 0; c < C; ++c) {
      int64_t hits1 = 0, hits10 = 0;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t qi = c * T + t;
        hits1 += rk[qi] == 1;
        for (int k = 0; k < 10; ++k) hits10 += y[t10[qi * 10 + k]] == c;
      }
      std::printf("%-12s %9.1f%% %14.1f%%\n", names[c].c_str(), 100.0 * hits1 / T,
                  100.0 * hits10 / (10.0 * T));
    }
    // The picture: one row per class prompt "a photo of a {}", its five best images.
    {
      std::vector<Tensor> tiles;
      std::vector<std::string> labels;
      for (int64_t c = 0; c < C; ++c) {
        const int64_t qi = c * T + clip::kSingleTemplate;
        for (int k = 0; k < 5; ++k) {
          const int64_t i = t10[qi * 10 + k];
          tiles.push_back(test.images[i]);
          char buf[96];
          std::snprintf(buf, sizeof buf, "q: %s #%d\n%s%s %.2f", captions.class_names[c].c_str(),
                        k + 1, y[i] == c ? "" : "X ", names[y[i]].c_str(), sim_t2i.at({qi, i}));
          labels.push_back(buf);
        }
      }
      const std::string path = args.path("top5_per_query.png");
      data::save_image_grid(tiles, 5, path, labels, 3);
      std::printf(
          "\nwrote %s (rows: the queries \"a photo of a {class}\"; each tile: query, rank,\n"
          "the image's true class (X when wrong) and its cosine similarity)\n",
          path.c_str());
    }

    // 4. Image -> text: the same matrix transposed. Every test image ranks the 80 captions.
    lesson::section("4. Image -> text retrieval");
    Tensor sim_i2t = sim_t2i.t();  // [N, 80]
    Scores i2t = score(sim_i2t, test.labels, cap_labels);
    std::printf("%lld image queries over %lld captions:\n", static_cast<long long>(test.size()),
                static_cast<long long>(gallery.size(0)));
    std::printf("  Recall@1 %.2f%%   Recall@5 %.2f%%   Recall@10 %.2f%%   MRR %.4f\n", 100 * i2t.r1,
                100 * i2t.r5, 100 * i2t.r10, i2t.mrr);
    std::printf(
        "(Image -> text Recall@1 is zero-shot classification with all 80 captions as\n"
        "prompts: the best-matching caption decides the class.)\n\n");
    SortResult top3 = topk(sim_i2t.narrow(0, 0, 4).contiguous(), 3, 1);
    std::vector<int64_t> t3 = top3.indices.to_vector<int64_t>();
    std::vector<double> s3 = top3.values.to_vector<double>();
    for (int64_t i = 0; i < 4; ++i) {
      std::printf("  test image #%lld (%s):\n", static_cast<long long>(i), names[y[i]].c_str());
      for (int k = 0; k < 3; ++k) {
        const int64_t r = t3[i * 3 + k];
        std::printf("      %.3f  \"%s\"\n", s3[i * 3 + k], captions.text(r / T, r % T).c_str());
      }
    }

    // 5. Figures: how recall grows with k, and which classes the space confuses.
    lesson::section("5. Recall@k curves and the class similarity map");
    const std::vector<int64_t> ks = {1, 2, 3, 5, 10, 20, 50, 100};
    std::vector<double> kx(ks.begin(), ks.end());
    std::vector<double> rt = metrics::recall_at_ks(sim_t2i, cap_labels, test.labels, ks);
    std::vector<double> ri = metrics::recall_at_ks(sim_i2t, test.labels, cap_labels, ks);
    std::printf("%6s %12s %12s\n", "k", "text->image", "image->text");
    for (size_t i = 0; i < ks.size(); ++i)
      std::printf("%6lld %11.2f%% %11.2f%%\n", static_cast<long long>(ks[i]), 100 * rt[i],
                  100 * ri[i]);
    std::printf(
        "(Image -> text climbs in steps: the 8 captions of a class sit almost on one point,\n"
        "so the top 8 captions are usually all of one class and Recall@k hardly moves\n"
        "until k passes 8 and the second-best class enters the list.)\n");
    {
      plot::LinePlot p("Recall@k (class-level relevance, test set)", "k", "Recall@k");
      p.add_series("text -> image", kx, rt).add_series("image -> text", kx, ri);
      p.set_markers().set_ylim(0.0, 1.02);
      const std::string path = args.path("recall_at_k.svg");
      p.save(path);
      std::printf("wrote %s\n", path.c_str());
    }
    // Mean cosine similarity between the prompt of class j ("a photo of a {}") and the images
    // of class i: a bright diagonal means each prompt sits closest to its own class.
    Tensor prompts = clip::class_embeddings(model, captions, {clip::kSingleTemplate}, dev);
    Tensor s = clip::similarity(index, prompts);                               // [N, 10]
    Tensor onehot = one_hot(test.labels, C, kFloat32);                         // [N, 10]
    Tensor class_sim = matmul(onehot.t(), s) / sum(onehot, {0}).unsqueeze(1);  // [10 img, 10 txt]
    std::printf("\nmean cosine similarity (rows: image class, columns: prompt class):\n%12s", "");
    for (int64_t c = 0; c < C; ++c) std::printf(" %5.5s", names[c].c_str());
    std::printf("\n");
    std::vector<double> cs = class_sim.to_vector<double>();
    for (int64_t r = 0; r < C; ++r) {
      std::printf("%-12s", names[r].c_str());
      for (int64_t c = 0; c < C; ++c) std::printf(" %5.2f", cs[r * C + c]);
      std::printf("\n");
    }
    {
      plot::Heatmap h("Mean similarity: image class vs prompt class", class_sim, names, names);
      h.set_axis_labels("prompt \"a photo of a {}\"", "images of class");
      h.set_colormap(plot::Colormap::RedBlue).set_range(-1.0, 1.0);
      const std::string path = args.path("class_similarity.svg");
      h.save(path);
      std::printf("wrote %s\n", path.c_str());
    }

    lesson::section("Targets");
    auto report = [&](const char* what, double v, double target) {
      if (v >= target)
        std::printf("%s >= %.0f%%: met (%.2f%%)\n", what, 100 * target, 100 * v);
      else
        std::printf("%s >= %.0f%%: MISSED by %.2f points (%.2f%%)%s\n", what, 100 * target,
                    100 * (target - v), 100 * v,
                    args.quick ? " -- expected in --quick mode (50 training steps)" : "");
    };
    report("text->image Recall@1", t2i.r1, 0.95);
    report("image->text Recall@1", i2t.r1, 0.85);

    lesson::Result result;
    result.add("t2i_r1", t2i.r1)
        .add("i2t_r1", i2t.r1)
        .add("t2i_mrr", t2i.mrr)
        .add("i2t_mrr", i2t.mrr);
    result.add("t2i_r5", t2i.r5)
        .add("t2i_r10", t2i.r10)
        .add("i2t_r5", i2t.r5)
        .add("i2t_r10", i2t.r10);
    result.add("index_seconds", index_s);
    result.add("from_checkpoint", m.from_checkpoint ? 1.0 : 0.0);
    result.print();
  });
}
