// Lesson 03: a siamese CNN that embeds Fashion-MNIST images, trained with the pair contrastive
// loss.
//
// What you will see (each section is one function below, in this order; main() lists them):
//   1. the_data: Fashion-MNIST, 28x28 grey images of 10 kinds of clothing (a sample grid).
//   2. the_embedding_network: a small CNN that maps an image to a 64-d vector. It is not a
//      classifier: it never predicts a class; it only learns which images should look alike
//      (same class) and which should not.
//   3. the_pair_loss: cosine similarity of an embedding pair pushed to 1 for two images of the
//      same class and to 0 for different classes; pairs built inside each batch, half positive
//      and half negative.
//   4. train_with_checkpoints: Adam (lr 0.005) and StepLR, a checkpoint (model, optimizer,
//      schedule, random generators and epoch, one file: optim::TrainState) written after every
//      epoch, and after every epoch the held-out picture: similarity of same-class vs
//      different-class test pairs and a PCA scatter of test embeddings (embeddings_epoch_N.svg),
//      so you can watch the clusters form.
//   5. reload_the_checkpoint, then continue_training: a fresh model and optimizer loaded from
//      the last checkpoint give identical embeddings and take an identical next step; training
//      then continues from the reloaded copies, as after a restart (pair_similarity.svg).
//   6. knn_classification: each test image gets the majority class of its 5 most similar
//      (cosine) training images in embedding space. Target: >= 80% on the 10,000 test images,
//      which training never sees.
//   7. summary: the target.
//
// The last line is `result: knn_acc=... ...`.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/lesson.h"
#include "mmgrad/data/fashion_mnist.h"
#include "mmgrad/data/image.h"
#include "mmgrad/data/loader.h"
#include "mmgrad/metrics/metrics.h"
#include "mmgrad/metrics/pca.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/nn/layers.h"
#include "mmgrad/nn/losses.h"
#include "mmgrad/optim/lr_scheduler.h"
#include "mmgrad/optim/optim.h"
#include "mmgrad/optim/train_state.h"
#include "mmgrad/plot/figure.h"

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

// ---- the lesson's settings ----------------------------------------------------------------------
struct Settings {
  int64_t n_train, n_test, batch, knn_k;
  int per_anchor, epochs;
};

Settings read_settings(const lesson::Args& args) {
  Settings s;
  s.n_train = args.get_int("--train", args.quick ? 4000 : 20000);
  s.n_test = args.get_int("--test", args.quick ? 1000 : 10000);
  s.batch = args.get_int("--batch", 128);
  s.knn_k = args.get_int("--k", 5);
  s.per_anchor = args.get_int("--pairs", 4);
  s.epochs = args.epochs_or(args.quick ? 2 : 4);
  MMGRAD_CHECK(s.n_train >= 2 * s.batch && s.n_train <= 60000,
               "--train must be in [2 * batch, 60000], got ", s.n_train);
  MMGRAD_CHECK(s.n_test >= 100 && s.n_test <= 10000, "--test must be in [100, 10000], got ",
               s.n_test);
  MMGRAD_CHECK(s.batch >= 16, "--batch must be >= 16, got ", s.batch);
  MMGRAD_CHECK(s.knn_k >= 1 && s.knn_k <= 50, "--k must be in [1, 50], got ", s.knn_k);
  MMGRAD_CHECK(s.per_anchor >= 1 && s.per_anchor <= 32, "--pairs must be in [1, 32], got ",
               s.per_anchor);
  MMGRAD_CHECK(s.epochs >= 2,
               "--epochs must be >= 2 (the lesson resumes the last epoch from a checkpoint), got ",
               s.epochs);
  return s;
}

const std::vector<std::string>& classes() { return data::fashion_mnist_classes(); }
int64_t num_classes() { return static_cast<int64_t>(classes().size()); }

// ---- 1. The data --------------------------------------------------------------------------------
struct Data {
  data::Dataset train, test;
  Tensor train_x, test_x;  // standardised pixels, the network's inputs
};

Data the_data(const lesson::Args& args, const Settings& s) {
  lesson::section("1. The data: Fashion-MNIST");
  Data d;
  d.train = data::load_fashion_mnist(data::Split::Train, args.data, s.n_train);
  d.test = data::load_fashion_mnist(data::Split::Test, args.data, s.n_test);
  lesson::print("training images: {} (the first {} of 60,000)   test images: {}{}", d.train.size(),
                d.train.size(), d.test.size(),
                d.test.size() == 10000 ? " (all of them)"
                                       : cat_str(" (the first ", d.test.size(), " of 10,000)"));
  std::vector<int64_t> counts(static_cast<size_t>(num_classes()), 0);
  for (int64_t y : d.train.labels.to_vector<int64_t>()) ++counts[static_cast<size_t>(y)];
  lesson::print_inline("training images per class:");
  for (int64_t c = 0; c < num_classes(); ++c)
    lesson::print_inline(" {} {}{}", classes()[c], counts[c], c + 1 < num_classes() ? "," : "\n");
  // Standardise pixels with the training set's mean and std (a common, harmless step that
  // keeps the first layer's inputs centred).
  const double px_mean = d.train.images.mean().item();
  const double px_std = std::sqrt(var(d.train.images.flatten()).item());
  d.train_x = (d.train.images - px_mean) / px_std;
  d.test_x = (d.test.images - px_mean) / px_std;
  lesson::print("pixel mean {:.3f}, std {:.3f} (training set): inputs are (pixel - mean) / std",
                px_mean, px_std);
  std::vector<Tensor> tiles;
  std::vector<std::string> names;
  for (int64_t i = 0; i < 20; ++i) {
    tiles.push_back(d.train.images[i]);
    names.push_back(classes()[static_cast<size_t>(d.train.labels.at({i}))]);
  }
  std::string path = args.path("samples.png");
  data::save_image_grid(tiles, 10, path, names, 3);
  lesson::print("wrote {} (20 training images with their classes)", path);
  return d;
}

// ---- 2. The embedding network -------------------------------------------------------------------
std::shared_ptr<EmbeddingNet> the_embedding_network(Device dev) {
  lesson::section("2. The embedding network");
  auto model = std::make_shared<EmbeddingNet>(64);
  model->to(dev);
  lesson::print("{}", model->repr());
  lesson::print("Siamese means the SAME network (same weights) embeds both images of a pair.");
  return model;
}

// ---- 3. The pair contrastive loss ---------------------------------------------------------------
void the_pair_loss(const lesson::Args& args, const Settings& s, const Data& d) {
  lesson::section("3. The pair contrastive loss");
  // loss = mean over pairs of (cos(e_a, e_b) - target)^2, target 1 for the same class and 0
  // for different classes (nn::pair_contrastive_loss). 0, not -1, for negatives: in 64
  // dimensions there is room for 10 mutually orthogonal class directions, while no more than
  // two directions can all be opposite to each other.
  std::vector<int64_t> y = d.train.labels.narrow(0, 0, s.batch).to_vector<int64_t>();
  Generator g(args.seed + 5);
  Pairs p = make_pairs(y, num_classes(), s.per_anchor, g);
  lesson::print(
      "from the first batch of {} images, {} positive and {} negative partners per\n"
      "image: {} pairs, {} positive. A few of them:",
      s.batch, s.per_anchor, s.per_anchor, p.a.size(),
      std::count(p.same.begin(), p.same.end(), true));
  const size_t pa = static_cast<size_t>(s.per_anchor);
  for (size_t i : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, 2 * pa, 2 * pa + 1})
    if (i < p.a.size())
      lesson::print("  image {:3} ({:<11}) with image {:3} ({:<11}) -> target cosine {}", p.a[i],
                    classes()[y[p.a[i]]], p.b[i], classes()[y[p.b[i]]], p.same[i] ? 1 : 0);
}

// ---- 4. Training, with a checkpoint every epoch -------------------------------------------------
// The training run: everything a checkpoint holds besides the generators and the epoch.
struct Run {
  std::shared_ptr<EmbeddingNet> model;
  std::unique_ptr<optim::Adam> opt;
  std::unique_ptr<optim::StepLR> sched;
};

// Adam with lr 0.005; StepLR steps once per epoch here: lr 0.005 for epoch 1, then halved every
// epoch.
Run make_run(std::shared_ptr<EmbeddingNet> model) {
  Run r;
  r.model = std::move(model);
  r.opt = std::make_unique<optim::Adam>(r.model->parameters(), optim::AdamOptions{.lr = 0.005});
  r.sched = std::make_unique<optim::StepLR>(*r.opt, /*step_size=*/1, /*gamma=*/0.5);
  return r;
}

// What sections 4 and 5 share: the run, the data loader, the pair generator, the held-out
// picture and the per-epoch history.
struct Trainer {
  const lesson::Args& args;
  const Settings& s;
  Run run;
  data::DataLoader loader;
  Generator pair_gen;
  Tensor view_x, view_y;  // a fixed held-out subset of test images for the per-epoch picture
  double lr_used = 0;     // the learning rate of the epoch just trained
  std::vector<double> ep_x, ep_same, ep_diff;  // per epoch: the mean test cosines

  Trainer(const lesson::Args& a, const Settings& st, const Data& d, Run r)
      : args(a),
        s(st),
        run(std::move(r)),
        loader(d.train_x, d.train.labels, st.batch, /*shuffle=*/true, a.seed,
               data::LastBatch::Drop),
        pair_gen(a.seed + 11) {
    const int64_t n_view = std::min<int64_t>(1500, d.test.size());  // the first 1500
    view_x = d.test_x.narrow(0, 0, n_view);
    view_y = d.test.labels.narrow(0, 0, n_view);
  }

  std::string ckpt(int epoch) const {
    return args.path("checkpoints/epoch_" + std::to_string(epoch) + ".ckpt");
  }

  // One epoch of training with whichever model / optimizer / scheduler is current.
  double train_epoch(int epoch) {
    const Device dev = args.device;
    run.model->train();
    lr_used = run.opt->lr();
    loader.set_epoch(epoch - 1);  // epoch e always sees the same shuffled order
    double total = 0;
    int64_t steps = 0;
    for (const data::Batch& b : loader) {
      Pairs p = make_pairs(b.targets.to_vector<int64_t>(), num_classes(), s.per_anchor, pair_gen);
      Tensor emb = run.model->forward(b.inputs.to(dev));
      Tensor ia = Tensor::from_vector(p.a).to(dev), ib = Tensor::from_vector(p.b).to(dev);
      Tensor same = Tensor::from_vector(p.same).to(dev);
      Tensor loss =
          nn::pair_contrastive_loss(index_select(emb, 0, ia), index_select(emb, 0, ib), same);
      run.opt->zero_grad();
      loss.backward();
      run.opt->step();
      total += loss.item();
      ++steps;
    }
    run.sched->step();
    return total / static_cast<double>(steps);
  }

  // A training checkpoint: everything that changes from one step to the next, in one file
  // (optim/train_state.h): the weights, Adam's moments and step counts, the schedule's step,
  // the random generators (the default one, and the one that draws the pairs) and the epoch.
  // Restored together, they make the resumed run continue exactly as the uninterrupted one.
  void save_checkpoint(int epoch) {
    optim::TrainState state(*run.model, *run.opt, run.sched.get());
    state.add_generator("pairs", pair_gen);
    state.epoch = epoch;
    state.save(ckpt(epoch));
  }
  void load_checkpoint(Run& r, int epoch) {
    optim::TrainState state(*r.model, *r.opt, r.sched.get());
    state.add_generator("pairs", pair_gen);
    state.load(ckpt(epoch));  // all or nothing: a file that does not fit changes nothing
  }

  // The per-epoch picture of the test embeddings: one row of the table and one figure.
  PairStats snapshot(int epoch, double train_loss) {
    const double secs = lesson::elapsed_seconds();
    Tensor emb = embed_all(*run.model, view_x, args.device);
    PairStats st = pair_stats(emb, view_y);
    metrics::PCAResult pc = metrics::pca(emb, 2);
    // A short title: the figure is 560 pixels wide.
    plot::ScatterPlot sp(
        lesson::format("epoch {}: {} test embeddings, PCA 64-d -> 2-d", epoch, view_x.size(0)),
        "PC 1", "PC 2");
    sp.add_classes(pc.projected, view_y, classes()).set_point_size(2.5).set_opacity(0.7);
    std::string path = args.path("embeddings_epoch_" + std::to_string(epoch) + ".svg");
    sp.save(path);
    std::string tl = epoch > 0 ? lesson::format("{:.4f}", train_loss) : "-";
    std::string lr = epoch > 0 ? lesson::format("{:.5f}", lr_used) : "-";
    lesson::print("{:<6} {:<12} {:<10.4f} {:<10.3f} {:<10.3f} {:<9} {:<9.1f} {}", epoch, tl,
                  st.loss, st.cos_same, st.cos_diff, lr, secs, path);
    ep_x.push_back(epoch), ep_same.push_back(st.cos_same), ep_diff.push_back(st.cos_diff);
    return st;
  }

  void print_table_header() const {
    lesson::print("{:<6} {:<12} {:<10} {:<10} {:<10} {:<9} {:<9} {}", "epoch", "train loss",
                  "test loss", "cos same", "cos diff", "lr", "elapsed s", "figure");
  }
};

void train_with_checkpoints(Trainer& t) {
  lesson::section("4. Training (Adam lr 0.005, StepLR), a checkpoint every epoch");
  lesson::print("{} batches of {} per epoch, {} epochs", t.loader.size(), t.s.batch, t.s.epochs);
  lesson::print(
      "held-out columns: pair loss on all pairs of {} test images (balanced), mean\n"
      "cosine of same-class and different-class test pairs (targets 1 and 0)\n",
      t.view_x.size(0));
  t.print_table_header();
  PairStats st0 = t.snapshot(0, 0);
  for (int epoch = 1; epoch < t.s.epochs; ++epoch) {
    double l = t.train_epoch(epoch);
    t.save_checkpoint(epoch);
    t.snapshot(epoch, l);
  }
  lesson::print("checkpoint: {} (model, optimizer, schedule, generators, epoch)",
                t.ckpt(t.s.epochs - 1));
  lesson::print(
      "\nOpen the embeddings_epoch_*.svg figures in order. Untrained (epoch 0), every image\n"
      "gets nearly the same direction (cos same {:.2f} vs cos diff {:.2f}): one blob. With "
      "training\n"
      "the different-class cosine falls towards 0 and the classes pull apart into groups.\n"
      "PCA keeps only the 2 directions of largest spread out of 64: classes pushed to be\n"
      "orthogonal cannot all separate in a flat picture, so some still overlap there; the\n"
      "k-NN below uses all 64 dimensions. (Each figure has its own PCA axes.)",
      st0.cos_same, st0.cos_diff);
}

// ---- 5. Reload the checkpoint and continue ------------------------------------------------------
// One Adam step of `r` on a batch the training epochs do not use as such, with fixed pairs.
void one_more_step(Trainer& t, Run& r) {
  const Device dev = t.args.device;
  t.loader.set_epoch(1000);
  data::Batch b = t.loader.batch(0);
  Generator g(99);  // the same pairs for every run
  Pairs p = make_pairs(b.targets.to_vector<int64_t>(), num_classes(), t.s.per_anchor, g);
  Tensor emb = r.model->forward(b.inputs.to(dev));
  Tensor loss = nn::pair_contrastive_loss(index_select(emb, 0, Tensor::from_vector(p.a).to(dev)),
                                          index_select(emb, 0, Tensor::from_vector(p.b).to(dev)),
                                          Tensor::from_vector(p.same).to(dev));
  r.opt->zero_grad();
  loss.backward();
  r.opt->step();
}

// Returns the max |embedding difference| between the original and the reloaded model (0).
double reload_the_checkpoint(Trainer& t, const Data& d) {
  lesson::section("5. Reloading the checkpoint and continuing");
  // Suppose the program stopped after epoch E-1. A new process builds a fresh model,
  // optimizer and scheduler (with their own random initial weights) and loads the file.
  const Device dev = t.args.device;
  const int last = t.s.epochs - 1;
  auto fresh_run = [&] {
    auto model = std::make_shared<EmbeddingNet>(64);
    model->to(dev);
    return make_run(model);
  };
  Run resumed = fresh_run();
  Tensor probe = d.test_x.narrow(0, 0, 256);
  Tensor emb_orig = embed_all(*t.run.model, probe, dev);
  double diff_fresh = max(abs(embed_all(*resumed.model, probe, dev) - emb_orig)).item();
  t.load_checkpoint(resumed, last);
  double diff_loaded = max(abs(embed_all(*resumed.model, probe, dev) - emb_orig)).item();
  lesson::print("max |embedding difference| on 256 test images, original vs new model:");
  lesson::print("  before loading (fresh random weights): {:.4f}", diff_fresh);
  lesson::print("  after loading epoch_{}.ckpt:            {:.1e}  ({})", last, diff_loaded,
                diff_loaded == 0.0 ? "identical" : "NOT identical");
  lesson::print("learning rate restored with the schedule: {:.5f} (original {:.5f})",
                resumed.opt->lr(), t.run.opt->lr());
  // The optimizer state matters too: Adam's moment estimates and step counts. A second
  // reloaded copy and the original take one step on the same batch; compare their weights.
  Run probe_run = fresh_run();
  t.load_checkpoint(probe_run, last);
  one_more_step(t, t.run);
  one_more_step(t, probe_run);
  double diff_step = 0;
  std::vector<Tensor> p1 = t.run.model->parameters(), p2 = probe_run.model->parameters();
  for (size_t i = 0; i < p1.size(); ++i)
    diff_step = std::max(diff_step, max(abs(p1[i] - p2[i])).item());
  lesson::print(
      "one more Adam step on the same batch, original vs reloaded: max |weight difference| "
      "{:.1e} ({})",
      diff_step, diff_step == 0.0 ? "identical: the optimizer state was restored" : "differs");
  // From here on the reloaded copy IS the training run (the original, which took the extra
  // step above, is dropped): epoch E continues from the checkpoint of epoch E-1.
  t.run = std::move(resumed);
  return diff_loaded;
}

void continue_training(Trainer& t) {
  const int epochs = t.s.epochs;
  lesson::print("\ncontinuing with the reloaded model for epoch {}:", epochs);
  t.print_table_header();
  double l = t.train_epoch(epochs);
  t.save_checkpoint(epochs);
  t.snapshot(epochs, l);
  plot::LinePlot lp("mean cosine similarity of test pairs", "epoch", "cosine");
  lp.add_series("same class (target 1)", t.ep_x, t.ep_same)
      .add_series("different class (target 0)", t.ep_x, t.ep_diff)
      .set_markers();
  lp.save(t.args.path("pair_similarity.svg"));
  lesson::print("wrote {}", t.args.path("pair_similarity.svg"));
}

// ---- 6. k-NN classification in embedding space --------------------------------------------------
// Returns the k-NN accuracy on the test images.
double knn_classification(const lesson::Args& args, const Settings& s, const Data& d,
                          EmbeddingNet& model) {
  lesson::section("6. k-nearest neighbours in embedding space");
  // The network never saw a class label as a target, only "same" or "different". Yet if the
  // space is organised by class, a test image's nearest labelled training images tell its
  // class. Reference set: the training images (labels known); queries: test images.
  Tensor ref_emb = embed_all(model, d.train_x, args.device);
  Tensor test_emb = embed_all(model, d.test_x, args.device);
  Tensor pred = knn_predict(test_emb, ref_emb, d.train.labels, s.knn_k, num_classes());
  const double knn_acc = metrics::accuracy(pred, d.test.labels);
  Tensor per_class = metrics::per_class_accuracy(pred, d.test.labels, num_classes());
  lesson::print("k = {}, cosine similarity, {} reference (training) images, {} test images",
                s.knn_k, ref_emb.size(0), test_emb.size(0));
  lesson::print("k-NN accuracy on the test images: {:.4f}\n\nper class:", knn_acc);
  std::vector<double> pc = per_class.to_vector<double>();
  for (int64_t c = 0; c < num_classes(); ++c) lesson::print("  {:<12} {:.3f}", classes()[c], pc[c]);
  lesson::print(
      "(shirts, T-shirts, pullovers and coats look alike at 28x28: they are the usual "
      "confusions)");
  // A few test images with their prediction.
  std::vector<Tensor> tiles;
  data::GridOptions grid;
  grid.scale = 3;
  grid.title = "Test images with the class their k nearest training images vote for";
  grid.mark_legend = "red frame: wrong vote (the true class follows \"is\")";
  std::vector<int64_t> pv = pred.to_vector<int64_t>();
  for (int64_t i = 0; i < 20; ++i) {
    tiles.push_back(d.test.images[i]);
    int64_t t = static_cast<int64_t>(d.test.labels.at({i}));
    grid.labels.push_back(classes()[pv[i]] + (pv[i] == t ? "" : "\n(is " + classes()[t] + ")"));
    grid.marked.push_back(pv[i] != t);
  }
  std::string path = args.path("knn_predictions.png");
  data::save_image_grid(tiles, 10, path, grid);
  lesson::print("wrote {} (20 test images with their k-NN class)", path);
  return knn_acc;
}

// ---- 7. Summary ---------------------------------------------------------------------------------
void summary(const lesson::Args& args, const Data& d, const Trainer& t, double knn_acc,
             double reload_diff) {
  lesson::section("7. Summary");
  const double target = args.quick ? 0.70 : 0.80;
  lesson::print("k-NN accuracy {:.4f} on {} held-out test images (target >= {:.2f}{}): {}", knn_acc,
                d.test.size(), target, args.quick ? ", the quick-mode threshold" : "",
                knn_acc >= target ? "target met" : "TARGET MISSED");
  lesson::Result()
      .add("knn_acc", knn_acc)
      .add("test_images", std::to_string(d.test.size()))
      .add("cos_same", t.ep_same.back())
      .add("cos_diff", t.ep_diff.back())
      .add("reload_diff", reload_diff)
      .print();
}

}  // namespace

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Args args = lesson::parse_args(
        argc, argv, "03_siamese_embeddings",
        "a CNN embeds Fashion-MNIST with the pair contrastive loss; k-NN in embedding space",
        lesson::kUsesEpochs | lesson::kUsesData,
        {{"--train N", "training images (default 20000; --quick 4000)"},
         {"--test N", "test images to evaluate k-NN on (default 10000, all; --quick 1000)"},
         {"--batch N", "batch size (default 128)"},
         {"--k N", "neighbours for k-NN (default 5)"},
         {"--pairs N", "positive (and as many negative) pairs per image (default 4)"}});
    const Settings s = read_settings(args);

    Data d = the_data(args, s);
    std::shared_ptr<EmbeddingNet> model = the_embedding_network(args.device);
    the_pair_loss(args, s, d);
    Trainer t(args, s, d, make_run(model));
    train_with_checkpoints(t);
    double reload_diff = reload_the_checkpoint(t, d);
    continue_training(t);
    double knn_acc = knn_classification(args, s, d, *t.run.model);
    summary(args, d, t, knn_acc, reload_diff);
  });
}
