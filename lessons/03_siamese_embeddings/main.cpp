// Lesson 03: a siamese CNN that embeds Fashion-MNIST images, trained with the pair contrastive
// loss.
//
// What you will see:
//   1. The data: Fashion-MNIST, 28x28 grey images of 10 kinds of clothing (a sample grid).
//   2. The embedding network: a small CNN that maps an image to a 64-d vector. It is not a
//      classifier: it never predicts a class; it only learns which images should look alike
//      (same class) and which should not.
//   3. The pair loss: cosine similarity of an embedding pair pushed to 1 for two images of the
//      same class and to 0 for different classes; pairs built inside each batch, half positive
//      and half negative.
//   4. Training with Adam (lr 0.005) and StepLR, a checkpoint (model, optimizer, schedule,
//      random generators and epoch, one file: optim::TrainState) written after every epoch, and
//      after every epoch the held-out picture: similarity of same-class vs different-class test
//      pairs and a PCA scatter of test embeddings (embeddings_epoch_N.svg), so you can watch the
//      clusters form.
//   5. Checkpoints: a fresh model and optimizer loaded from the last checkpoint give identical
//      embeddings and take an identical next step; training then continues from the reloaded
//      copies, as after a restart.
//   6. k-nearest-neighbour classification in embedding space: each test image gets the
//      majority class of its 5 most similar (cosine) training images. Target: >= 80% on the
//      10,000 test images, which training never sees.
//
// The last line is `result: knn_acc=... ...`.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/lesson.h"
#include "data/fashion_mnist.h"
#include "data/image.h"
#include "data/loader.h"
#include "metrics/metrics.h"
#include "metrics/pca.h"
#include "mmgrad.h"
#include "nn/layers.h"
#include "nn/losses.h"
#include "optim/lr_scheduler.h"
#include "optim/optim.h"
#include "optim/train_state.h"
#include "plot/figure.h"

using namespace mmgrad;

namespace {

// ---- the embedding network ----------------------------------------------------------------------
// Two conv blocks (3x3 conv, ReLU, 2x2 max pool) turn a 1x28x28 image into 32 feature maps of
// 7x7; two linear layers turn those 1568 numbers into the 64-d embedding. The last layer has no
// ReLU, so embeddings may point in any direction of the 64-d space.
class EmbeddingNet : public nn::Module {
 public:
  explicit EmbeddingNet(int64_t embed_dim = 64) {
    conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(1, 16, 3, 1, 1));
    conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(16, 32, 3, 1, 1));
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(32 * 7 * 7, 128));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(128, embed_dim));
  }
  std::string name() const override { return "EmbeddingNet"; }
  // x [N, 1, 28, 28] -> [N, 64]
  Tensor forward(const Tensor& x) override {
    Tensor h = max_pool2d(relu(conv1->forward(x)), 2);  // [N, 16, 14, 14]
    h = max_pool2d(relu(conv2->forward(h)), 2);         // [N, 32, 7, 7]
    h = relu(fc1->forward(h.flatten(1)));               // [N, 128]
    return fc2->forward(h);                             // [N, 64]
  }
  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::Linear> fc1, fc2;
};

// ---- pairs from a batch ------------------------------------------------------------------------
// For every image i of the batch (the anchor) we draw `per_anchor` positive partners (other
// images of the same class) and as many negative partners (images of other classes), so the
// pairs are exactly half positive, half negative. A balanced mix matters: with 10 classes,
// random pairs would be 90% negative and the network could score well by calling everything
// "different". Pairs are cheap: the CNN embeds each image of the batch once, and a pair only
// picks two rows of the embedding matrix.
struct Pairs {
  std::vector<int64_t> a, b;
  std::vector<bool> same;
};

Pairs make_pairs(const std::vector<int64_t>& labels, int64_t num_classes, int per_anchor,
                 Generator& gen) {
  const int64_t n = static_cast<int64_t>(labels.size());
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(num_classes));
  for (int64_t i = 0; i < n; ++i) by_class[static_cast<size_t>(labels[i])].push_back(i);
  std::vector<double> u =
      Tensor::rand({2 * per_anchor * n}, DType::Float64, &gen).to_vector<double>();
  size_t next = 0;
  Pairs p;
  for (int64_t i = 0; i < n; ++i) {
    const auto& mine = by_class[static_cast<size_t>(labels[i])];
    const int64_t n_mine = static_cast<int64_t>(mine.size());
    for (int r = 0; r < per_anchor; ++r) {
      const double u_pos = u[next++], u_neg = u[next++];
      if (n_mine < 2 || n_mine == n) continue;  // no partner of that kind in this batch
      // positive: uniform over the other n_mine - 1 members of i's class
      int64_t k = std::min<int64_t>(n_mine - 2, static_cast<int64_t>(u_pos * (n_mine - 1)));
      int64_t j = mine[static_cast<size_t>(k)];
      if (j >= i) j = mine[static_cast<size_t>(k + 1)];  // skip i itself (mine is sorted)
      // negative: uniform over the n - n_mine images of other classes (the k-th of them)
      int64_t kn = std::min<int64_t>(n - n_mine - 1, static_cast<int64_t>(u_neg * (n - n_mine)));
      int64_t neg = -1;
      for (int64_t c = 0, seen = 0; c < n; ++c) {
        if (labels[c] == labels[i]) continue;
        if (seen++ == kn) {
          neg = c;
          break;
        }
      }
      p.a.push_back(i), p.b.push_back(j), p.same.push_back(true);
      p.a.push_back(i), p.b.push_back(neg), p.same.push_back(false);
    }
  }
  return p;
}

// ---- evaluation helpers -------------------------------------------------------------------------
// Normalised embeddings of a whole image set, computed in chunks without a graph.
Tensor embed_all(EmbeddingNet& model, const Tensor& images, Device dev, int64_t chunk = 1000) {
  NoGradGuard no_grad;
  std::vector<Tensor> parts;
  for (int64_t s = 0; s < images.size(0); s += chunk) {
    int64_t len = std::min(chunk, images.size(0) - s);
    parts.push_back(normalize(model.forward(images.narrow(0, s, len).to(dev)), 1).cpu());
  }
  return cat(parts, 0);
}

// Held-out statistics of the pair task over every pair of a set of (normalised) embeddings:
// the mean cosine of same-class and of different-class pairs, and the balanced pair loss
// 0.5 mean_same (cos - 1)^2 + 0.5 mean_diff cos^2 (the loss's value on balanced pairs).
struct PairStats {
  double cos_same = 0, cos_diff = 0, loss = 0;
};
PairStats pair_stats(const Tensor& emb, const Tensor& labels) {
  Tensor sim = matmul(emb, emb.t());
  std::vector<float> s = sim.to_vector<float>();
  std::vector<int64_t> y = labels.to_vector<int64_t>();
  const size_t n = y.size();
  double cs = 0, cd = 0, ls = 0, ld = 0;
  int64_t ns = 0, nd = 0;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      double c = s[i * n + j];
      if (y[i] == y[j]) {
        cs += c, ls += (c - 1) * (c - 1), ++ns;
      } else {
        cd += c, ld += c * c, ++nd;
      }
    }
  return {cs / ns, cd / nd, 0.5 * ls / ns + 0.5 * ld / nd};
}

// k-nearest-neighbour classification by cosine similarity: each query takes the majority class
// among its k most similar reference embeddings (a tie goes to the class whose members are more
// similar in total). Queries are processed in chunks to keep the similarity matrix small.
Tensor knn_predict(const Tensor& query, const Tensor& ref, const Tensor& ref_labels, int64_t k,
                   int64_t num_classes) {
  std::vector<int64_t> ref_y = ref_labels.to_vector<int64_t>();
  std::vector<int64_t> pred;
  pred.reserve(static_cast<size_t>(query.size(0)));
  const int64_t chunk = 1000;
  for (int64_t s = 0; s < query.size(0); s += chunk) {
    int64_t len = std::min(chunk, query.size(0) - s);
    SortResult top = topk(matmul(query.narrow(0, s, len), ref.t()), k, 1);
    std::vector<int64_t> idx = top.indices.to_vector<int64_t>();
    std::vector<double> val = top.values.to_vector<double>();
    for (int64_t q = 0; q < len; ++q) {
      std::vector<double> votes(static_cast<size_t>(num_classes), 0.0), score(votes);
      for (int64_t t = 0; t < k; ++t) {
        int64_t c = ref_y[static_cast<size_t>(idx[q * k + t])];
        votes[c] += 1.0;
        score[c] += val[q * k + t];
      }
      int64_t best = 0;
      for (int64_t c = 1; c < num_classes; ++c)
        if (votes[c] > votes[best] || (votes[c] == votes[best] && score[c] > score[best])) best = c;
      pred.push_back(best);
    }
  }
  return Tensor::from_vector(pred);
}

}  // namespace

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Args args = lesson::parse_args(
        argc, argv, "03_siamese_embeddings",
        "a CNN embeds Fashion-MNIST with the pair contrastive loss; k-NN in embedding space",
        {{"--train", "training images (default 20000; --quick 4000)"},
         {"--test", "test images to evaluate k-NN on (default 10000, all; --quick 1000)"},
         {"--batch", "batch size (default 128)"},
         {"--k", "neighbours for k-NN (default 5)"},
         {"--pairs", "positive (and as many negative) pairs per image (default 4)"}});
    const Device dev = args.device;
    const int64_t n_train = args.get_int("--train", args.quick ? 4000 : 20000);
    const int64_t n_test = args.get_int("--test", args.quick ? 1000 : 10000);
    const int64_t batch = args.get_int("--batch", 128);
    const int64_t knn_k = args.get_int("--k", 5);
    const int per_anchor = args.get_int("--pairs", 4);
    const int epochs = args.epochs_or(args.quick ? 2 : 4);
    MMGRAD_CHECK(n_train >= 2 * batch && n_train <= 60000,
                 "--train must be in [2 * batch, 60000], got ", n_train);
    MMGRAD_CHECK(n_test >= 100 && n_test <= 10000, "--test must be in [100, 10000], got ", n_test);
    MMGRAD_CHECK(batch >= 16, "--batch must be >= 16, got ", batch);
    MMGRAD_CHECK(knn_k >= 1 && knn_k <= 50, "--k must be in [1, 50], got ", knn_k);
    MMGRAD_CHECK(per_anchor >= 1 && per_anchor <= 32, "--pairs must be in [1, 32], got ",
                 per_anchor);
    MMGRAD_CHECK(epochs >= 2,
                 "--epochs must be >= 2 (the lesson resumes the last epoch from a "
                 "checkpoint), got ",
                 epochs);
    const auto& classes = data::fashion_mnist_classes();
    const int64_t num_classes = static_cast<int64_t>(classes.size());

    // ---------------------------------------------------------------------------------------
    // 1. The data
    // ---------------------------------------------------------------------------------------
    lesson::section("1. The data: Fashion-MNIST");
    data::Dataset train = data::load_fashion_mnist(data::Split::Train, args.data, n_train);
    data::Dataset test = data::load_fashion_mnist(data::Split::Test, args.data, n_test);
    std::printf("training images: %lld (the first %lld of 60,000)   test images: %lld%s\n",
                static_cast<long long>(train.size()), static_cast<long long>(train.size()),
                static_cast<long long>(test.size()),
                test.size() == 10000 ? " (all of them)"
                                     : cat_str(" (the first ", test.size(), " of 10,000)").c_str());
    {
      std::vector<int64_t> counts(static_cast<size_t>(num_classes), 0);
      for (int64_t y : train.labels.to_vector<int64_t>()) ++counts[static_cast<size_t>(y)];
      std::printf("training images per class:");
      for (int64_t c = 0; c < num_classes; ++c)
        std::printf(" %s %lld%s", classes[c].c_str(), static_cast<long long>(counts[c]),
                    c + 1 < num_classes ? "," : "\n");
    }
    // Standardise pixels with the training set's mean and std (a common, harmless step that
    // keeps the first layer's inputs centred).
    const double px_mean = train.images.mean().item();
    const double px_std = std::sqrt(var(train.images.flatten()).item());
    Tensor train_x = (train.images - px_mean) / px_std;
    Tensor test_x = (test.images - px_mean) / px_std;
    std::printf("pixel mean %.3f, std %.3f (training set): inputs are (pixel - mean) / std\n",
                px_mean, px_std);
    {
      std::vector<Tensor> tiles;
      std::vector<std::string> names;
      for (int64_t i = 0; i < 20; ++i) {
        tiles.push_back(train.images[i]);
        names.push_back(classes[static_cast<size_t>(train.labels.at({i}))]);
      }
      std::string path = args.path("samples.png");
      data::save_image_grid(tiles, 10, path, names, 3);
      std::printf("wrote %s (20 training images with their classes)\n", path.c_str());
    }

    // ---------------------------------------------------------------------------------------
    // 2. The embedding network
    // ---------------------------------------------------------------------------------------
    lesson::section("2. The embedding network");
    auto model = std::make_shared<EmbeddingNet>(64);
    model->to(dev);
    std::printf("%s\n", model->repr().c_str());
    std::printf("Siamese means the SAME network (same weights) embeds both images of a pair.\n");

    // ---------------------------------------------------------------------------------------
    // 3. The pair contrastive loss
    // ---------------------------------------------------------------------------------------
    lesson::section("3. The pair contrastive loss");
    // loss = mean over pairs of (cos(e_a, e_b) - target)^2, target 1 for the same class and 0
    // for different classes (nn::pair_contrastive_loss). 0, not -1, for negatives: in 64
    // dimensions there is room for 10 mutually orthogonal class directions, while no more than
    // two directions can all be opposite to each other.
    {
      std::vector<int64_t> y = train.labels.narrow(0, 0, batch).to_vector<int64_t>();
      Generator g(args.seed + 5);
      Pairs p = make_pairs(y, num_classes, per_anchor, g);
      std::printf(
          "from the first batch of %lld images, %d positive and %d negative partners per\n"
          "image: %zu pairs, %lld positive. A few of them:\n",
          static_cast<long long>(batch), per_anchor, per_anchor, p.a.size(),
          static_cast<long long>(std::count(p.same.begin(), p.same.end(), true)));
      for (size_t i : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, 2 * size_t(per_anchor),
                       2 * size_t(per_anchor) + 1})
        if (i < p.a.size())
          std::printf("  image %3lld (%-11s) with image %3lld (%-11s) -> target cosine %d\n",
                      static_cast<long long>(p.a[i]), classes[y[p.a[i]]].c_str(),
                      static_cast<long long>(p.b[i]), classes[y[p.b[i]]].c_str(),
                      p.same[i] ? 1 : 0);
    }

    // ---------------------------------------------------------------------------------------
    // 4. Training, with a checkpoint every epoch
    // ---------------------------------------------------------------------------------------
    lesson::section("4. Training (Adam lr 0.005, StepLR), a checkpoint every epoch");
    auto opt = std::make_unique<optim::Adam>(model->parameters(), optim::AdamOptions{.lr = 0.005});
    // StepLR steps once per epoch here: lr 0.005 for epoch 1, then halved every epoch.
    auto sched = std::make_unique<optim::StepLR>(*opt, /*step_size=*/1, /*gamma=*/0.5);
    data::DataLoader loader(train_x, train.labels, batch, /*shuffle=*/true, args.seed,
                            data::LastBatch::Drop);
    // A fixed held-out subset of test images for the per-epoch picture (the first 1500).
    const int64_t n_view = std::min<int64_t>(1500, test.size());
    Tensor view_x = test_x.narrow(0, 0, n_view), view_y = test.labels.narrow(0, 0, n_view);
    Generator pair_gen(args.seed + 11);

    auto ckpt = [&](int epoch) {
      return args.path("checkpoints/epoch_" + std::to_string(epoch) + ".ckpt");
    };
    // The per-epoch picture of the test embeddings.
    double lr_used = 0;  // the learning rate of the epoch just trained
    auto snapshot = [&](int epoch, double train_loss, double secs) {
      Tensor emb = embed_all(*model, view_x, dev);
      PairStats st = pair_stats(emb, view_y);
      metrics::PCAResult pc = metrics::pca(emb, 2);
      plot::ScatterPlot sp("test embeddings after epoch " + std::to_string(epoch) +
                               " (PCA of 64-d to 2-d, " + std::to_string(n_view) + " test images)",
                           "PC 1", "PC 2");
      sp.add_classes(pc.projected, view_y, classes).set_point_size(2.5).set_opacity(0.7);
      std::string path = args.path("embeddings_epoch_" + std::to_string(epoch) + ".svg");
      sp.save(path);
      char tl[32] = "-", lr[32] = "-";
      if (epoch > 0) std::snprintf(tl, sizeof tl, "%.4f", train_loss);
      if (epoch > 0) std::snprintf(lr, sizeof lr, "%.5f", lr_used);
      std::printf("%-6d %-12s %-10.4f %-10.3f %-10.3f %-9s %-9.1f %s\n", epoch, tl, st.loss,
                  st.cos_same, st.cos_diff, lr, secs, path.c_str());
      return st;
    };

    // One epoch of training with whichever model / optimizer / scheduler is current.
    auto train_epoch = [&](int epoch) {
      model->train();
      lr_used = opt->lr();
      loader.set_epoch(epoch - 1);  // epoch e always sees the same shuffled order
      double total = 0;
      int64_t steps = 0;
      for (const data::Batch& b : loader) {
        Pairs p = make_pairs(b.targets.to_vector<int64_t>(), num_classes, per_anchor, pair_gen);
        Tensor emb = model->forward(b.inputs.to(dev));
        Tensor ia = Tensor::from_vector(p.a).to(dev), ib = Tensor::from_vector(p.b).to(dev);
        Tensor same = Tensor::from_vector(p.same).to(dev);
        Tensor loss =
            nn::pair_contrastive_loss(index_select(emb, 0, ia), index_select(emb, 0, ib), same);
        opt->zero_grad();
        loss.backward();
        opt->step();
        total += loss.item();
        ++steps;
      }
      sched->step();
      return total / static_cast<double>(steps);
    };
    // A training checkpoint: everything that changes from one step to the next, in one file
    // (optim/train_state.h): the weights, Adam's moments and step counts, the schedule's step,
    // the random generators (the default one, and the one that draws the pairs) and the epoch.
    // Restored together, they make the resumed run continue exactly as the uninterrupted one.
    auto save_checkpoint = [&](int epoch) {
      optim::TrainState state(*model, *opt, sched.get());
      state.add_generator("pairs", pair_gen);
      state.epoch = epoch;
      state.save(ckpt(epoch));
    };

    std::printf("%lld batches of %lld per epoch, %d epochs\n",
                static_cast<long long>(loader.size()), static_cast<long long>(batch), epochs);
    std::printf(
        "held-out columns: pair loss on all pairs of %lld test images (balanced), mean\n"
        "cosine of same-class and different-class test pairs (targets 1 and 0)\n\n",
        static_cast<long long>(n_view));
    std::printf("%-6s %-12s %-10s %-10s %-10s %-9s %-9s %s\n", "epoch", "train loss", "test loss",
                "cos same", "cos diff", "lr", "elapsed s", "figure");
    PairStats st0 = snapshot(0, 0, lesson::elapsed_seconds());
    std::vector<double> ep_x{0}, ep_same{st0.cos_same}, ep_diff{st0.cos_diff};
    for (int epoch = 1; epoch < epochs; ++epoch) {
      double l = train_epoch(epoch);
      save_checkpoint(epoch);
      PairStats st = snapshot(epoch, l, lesson::elapsed_seconds());
      ep_x.push_back(epoch), ep_same.push_back(st.cos_same), ep_diff.push_back(st.cos_diff);
    }
    std::printf("checkpoint: %s (model, optimizer, schedule, generators, epoch)\n",
                ckpt(epochs - 1).c_str());
    std::printf(
        "\nOpen the embeddings_epoch_*.svg figures in order. Untrained (epoch 0), every image\n"
        "gets nearly the same direction (cos same %.2f vs cos diff %.2f): one blob. With training\n"
        "the different-class cosine falls towards 0 and the classes pull apart into groups.\n"
        "PCA keeps only the 2 directions of largest spread out of 64: classes pushed to be\n"
        "orthogonal cannot all separate in a flat picture, so some still overlap there; the\n"
        "k-NN below uses all 64 dimensions. (Each figure has its own PCA axes.)\n",
        st0.cos_same, st0.cos_diff);

    // ---------------------------------------------------------------------------------------
    // 5. Reload the checkpoint and continue
    // ---------------------------------------------------------------------------------------
    lesson::section("5. Reloading the checkpoint and continuing");
    // Suppose the program stopped after epoch E-1. A new process builds a fresh model,
    // optimizer and scheduler (with their own random initial weights) and loads the file.
    const int last = epochs - 1;
    struct Run {
      std::shared_ptr<EmbeddingNet> model;
      std::unique_ptr<optim::Adam> opt;
      std::unique_ptr<optim::StepLR> sched;
    };
    auto fresh_run = [&] {
      Run r;
      r.model = std::make_shared<EmbeddingNet>(64);
      r.model->to(dev);
      r.opt = std::make_unique<optim::Adam>(r.model->parameters(), optim::AdamOptions{.lr = 0.005});
      r.sched = std::make_unique<optim::StepLR>(*r.opt, 1, 0.5);
      return r;
    };
    auto load_run = [&](Run& r) {
      optim::TrainState state(*r.model, *r.opt, r.sched.get());
      state.add_generator("pairs", pair_gen);
      state.load(ckpt(last));  // all or nothing: a file that does not fit changes nothing
    };
    Run resumed = fresh_run();
    Tensor probe = test_x.narrow(0, 0, 256);
    Tensor emb_orig = embed_all(*model, probe, dev);
    double diff_fresh = max(abs(embed_all(*resumed.model, probe, dev) - emb_orig)).item();
    load_run(resumed);
    double diff_loaded = max(abs(embed_all(*resumed.model, probe, dev) - emb_orig)).item();
    std::printf("max |embedding difference| on 256 test images, original vs new model:\n");
    std::printf("  before loading (fresh random weights): %.4f\n", diff_fresh);
    std::printf("  after loading epoch_%d.ckpt:            %.1e  (%s)\n", last, diff_loaded,
                diff_loaded == 0.0 ? "identical" : "NOT identical");
    std::printf("learning rate restored with the schedule: %.5f (original %.5f)\n",
                resumed.opt->lr(), opt->lr());
    // The optimizer state matters too: Adam's moment estimates and step counts. A second
    // reloaded copy and the original take one step on the same batch; compare their weights.
    double diff_step = 0;
    {
      Run probe_run = fresh_run();
      load_run(probe_run);
      loader.set_epoch(1000);  // a shuffled batch that the training epochs do not use as such
      data::Batch b = loader.batch(0);
      for (auto [m, o] : {std::pair{model.get(), opt.get()},
                          std::pair{probe_run.model.get(), probe_run.opt.get()}}) {
        Generator g(99);  // the same pairs for both
        Pairs p = make_pairs(b.targets.to_vector<int64_t>(), num_classes, per_anchor, g);
        Tensor emb = m->forward(b.inputs.to(dev));
        Tensor loss =
            nn::pair_contrastive_loss(index_select(emb, 0, Tensor::from_vector(p.a).to(dev)),
                                      index_select(emb, 0, Tensor::from_vector(p.b).to(dev)),
                                      Tensor::from_vector(p.same).to(dev));
        o->zero_grad();
        loss.backward();
        o->step();
      }
      std::vector<Tensor> p1 = model->parameters(), p2 = probe_run.model->parameters();
      for (size_t i = 0; i < p1.size(); ++i)
        diff_step = std::max(diff_step, max(abs(p1[i] - p2[i])).item());
    }
    std::printf(
        "one more Adam step on the same batch, original vs reloaded: max |weight "
        "difference| %.1e (%s)\n",
        diff_step, diff_step == 0.0 ? "identical: the optimizer state was restored" : "differs");
    // From here on the reloaded copy IS the training run (the original, which took the extra
    // step above, is dropped): epoch E continues from the checkpoint of epoch E-1.
    sched = std::move(resumed.sched);
    opt = std::move(resumed.opt);
    model = resumed.model;
    std::printf("\ncontinuing with the reloaded model for epoch %d:\n", epochs);
    std::printf("%-6s %-12s %-10s %-10s %-10s %-9s %-9s %s\n", "epoch", "train loss", "test loss",
                "cos same", "cos diff", "lr", "elapsed s", "figure");
    {
      double l = train_epoch(epochs);
      save_checkpoint(epochs);
      PairStats st = snapshot(epochs, l, lesson::elapsed_seconds());
      ep_x.push_back(epochs), ep_same.push_back(st.cos_same), ep_diff.push_back(st.cos_diff);
    }
    {
      plot::LinePlot lp("mean cosine similarity of test pairs", "epoch", "cosine");
      lp.add_series("same class (target 1)", ep_x, ep_same)
          .add_series("different class (target 0)", ep_x, ep_diff)
          .set_markers();
      lp.save(args.path("pair_similarity.svg"));
      std::printf("wrote %s\n", args.path("pair_similarity.svg").c_str());
    }

    // ---------------------------------------------------------------------------------------
    // 6. k-NN classification in embedding space
    // ---------------------------------------------------------------------------------------
    lesson::section("6. k-nearest neighbours in embedding space");
    // The network never saw a class label as a target, only "same" or "different". Yet if the
    // space is organised by class, a test image's nearest labelled training images tell its
    // class. Reference set: the training images (labels known); queries: test images.
    Tensor ref_emb = embed_all(*model, train_x, dev);
    Tensor test_emb = embed_all(*model, test_x, dev);
    Tensor pred = knn_predict(test_emb, ref_emb, train.labels, knn_k, num_classes);
    const double knn_acc = metrics::accuracy(pred, test.labels);
    Tensor per_class = metrics::per_class_accuracy(pred, test.labels, num_classes);
    std::printf("k = %lld, cosine similarity, %lld reference (training) images, %lld test images\n",
                static_cast<long long>(knn_k), static_cast<long long>(ref_emb.size(0)),
                static_cast<long long>(test_emb.size(0)));
    std::printf("k-NN accuracy on the test images: %.4f\n\nper class:\n", knn_acc);
    std::vector<double> pc = per_class.to_vector<double>();
    for (int64_t c = 0; c < num_classes; ++c)
      std::printf("  %-12s %.3f\n", classes[c].c_str(), pc[c]);
    std::printf(
        "(shirts, T-shirts, pullovers and coats look alike at 28x28: they are the usual "
        "confusions)\n");
    {
      // A few test images with their prediction.
      std::vector<Tensor> tiles;
      std::vector<std::string> names;
      std::vector<int64_t> pv = pred.to_vector<int64_t>();
      for (int64_t i = 0; i < 20; ++i) {
        tiles.push_back(test.images[i]);
        int64_t t = static_cast<int64_t>(test.labels.at({i}));
        names.push_back(classes[pv[i]] + (pv[i] == t ? "" : "\n(is " + classes[t] + ")"));
      }
      std::string path = args.path("knn_predictions.png");
      data::save_image_grid(tiles, 10, path, names, 3);
      std::printf("wrote %s (20 test images with their k-NN class)\n", path.c_str());
    }

    // ---------------------------------------------------------------------------------------
    // 7. Summary
    // ---------------------------------------------------------------------------------------
    lesson::section("7. Summary");
    const double target = args.quick ? 0.70 : 0.80;
    std::printf("k-NN accuracy %.4f on %lld held-out test images (target >= %.2f%s): %s\n", knn_acc,
                static_cast<long long>(test.size()), target,
                args.quick ? ", the quick-mode threshold" : "",
                knn_acc >= target ? "target met" : "TARGET MISSED");
    lesson::Result()
        .add("knn_acc", knn_acc)
        .add("test_images", std::to_string(test.size()))
        .add("cos_same", ep_same.back())
        .add("cos_diff", ep_diff.back())
        .add("reload_diff", diff_loaded)
        .print();
  });
}
