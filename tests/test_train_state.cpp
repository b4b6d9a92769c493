// optim::TrainState: a run stopped, saved and resumed in fresh objects continues bit for bit
// like the uninterrupted run (dropout, Adam, a schedule, a shuffling DataLoader and a generator
// of one's own included); loads that do not fit, and damaged files, are refused and change
// nothing.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core_test_util.h"
#include "file_test_util.h"
#include "mmgrad/data/loader.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/nn/activation.h"
#include "mmgrad/nn/checkpoint.h"
#include "mmgrad/nn/container.h"
#include "mmgrad/nn/dropout.h"
#include "mmgrad/nn/linear.h"
#include "mmgrad/nn/losses.h"
#include "mmgrad/optim/lr_scheduler.h"
#include "mmgrad/optim/optim.h"
#include "mmgrad/optim/train_state.h"

using namespace mmgrad;
using mmgrad::testing::read_bytes;
using mmgrad::testing::TempDir;
using mmgrad::testing::write_bytes;

namespace {

constexpr int64_t kSamples = 200, kBatch = 32;  // 7 batches per epoch, the last one of 8
constexpr int64_t kTotalSteps = 30;

// A fixed classification problem: 12 features, 4 classes from a random linear map.
struct Problem {
  Tensor x, y;
  Problem() {
    Generator g(77);
    x = Tensor::randn({kSamples, 12}, kFloat32, &g);
    Tensor w = Tensor::randn({12, 4}, kFloat32, &g);
    y = argmax(matmul(x, w), 1);
  }
};
const Problem& problem() {
  static const Problem p;
  return p;
}

std::shared_ptr<nn::Sequential> make_model(int64_t hidden) {
  return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(12, hidden), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Dropout>(0.25), std::make_shared<nn::Linear>(hidden, hidden),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::Dropout>(0.25),
      std::make_shared<nn::Linear>(hidden, 4)});
}

// Everything a training run is made of. The model's initial weights come from the default
// generator as it is when the run is built; `noise_seed` seeds the run's own generator (input
// noise, a stand-in for data augmentation).
struct Run {
  std::shared_ptr<nn::Sequential> model;
  std::unique_ptr<optim::Adam> opt;
  std::unique_ptr<optim::CosineWithWarmup> sched;
  Generator noise;
  data::DataLoader loader;
  std::unique_ptr<optim::TrainState> state;
  std::vector<float> losses;

  explicit Run(uint64_t noise_seed, int64_t hidden = 48)
      : model(make_model(hidden)),
        noise(noise_seed),
        loader(problem().x, problem().y, kBatch, /*shuffle=*/true, /*seed=*/5) {
    opt = std::make_unique<optim::Adam>(model->parameters(), optim::AdamOptions{.lr = 0.01});
    sched = std::make_unique<optim::CosineWithWarmup>(*opt, 5, kTotalSteps, 1e-4);
    state = std::make_unique<optim::TrainState>(*model, *opt, sched.get());
    state->add_generator("noise", noise);
  }

  // The training loop of optim/train_state.h: the step counter says which epoch and batch are
  // next, so it runs the same after a resume.
  void train_until(int64_t total) {
    model->train();
    const int64_t nb = loader.size();
    for (bool first = true; state->step < total; first = false) {
      if (first || state->step % nb == 0) {
        loader.set_epoch(state->step / nb);
        loader.begin();
      }
      data::Batch b = loader.batch(state->step % nb);
      Tensor x = b.inputs + 0.05 * Tensor::randn(b.inputs.shape(), kFloat32, &noise);
      Tensor loss = nn::cross_entropy(model->forward(x), b.targets);
      opt->zero_grad();
      loss.backward();
      opt->step();
      sched->step();
      losses.push_back(loss.item<float>());
      ++state->step;
      state->epoch = state->step / nb;
      state->scalars["last_loss"] = losses.back();
    }
  }
};

// How many elements of the model's tensors differ, bit for bit, between two runs.
int64_t differing_weights(const Run& a, const Run& b) {
  const nn::StateDict sa = a.model->state_dict(), sb = b.model->state_dict();
  REQUIRE(sa.size() == sb.size());
  int64_t n = 0;
  for (size_t i = 0; i < sa.size(); ++i) {
    const std::vector<float> va = sa[i].second.to_vector<float>();
    const std::vector<float> vb = sb[i].second.to_vector<float>();
    REQUIRE(va.size() == vb.size());
    for (size_t j = 0; j < va.size(); ++j) n += std::memcmp(&va[j], &vb[j], sizeof(float)) != 0;
  }
  return n;
}

int64_t num_weights(const Run& r) {
  int64_t n = 0;
  for (const auto& kv : r.model->state_dict()) n += kv.second.numel();
  return n;
}

// Everything a TrainState covers, as raw bytes (to check "unchanged" exactly).
std::vector<uint8_t> snapshot(const Run& r) {
  std::vector<uint8_t> out;
  auto add = [&](const void* p, size_t n) {
    const auto* c = static_cast<const uint8_t*>(p);
    out.insert(out.end(), c, c + n);
  };
  for (const auto& [name, t] : r.state->state_dict()) {
    add(name.data(), name.size());
    Tensor c = t.detach().contiguous();
    add(c.raw_data(), static_cast<size_t>(c.numel() * c.element_size()));
  }
  const double lr = r.opt->lr();
  add(&lr, sizeof lr);
  return out;
}

}  // namespace

TEST_CASE("TrainState: a resumed run is bit-identical to the uninterrupted one") {
  TempDir dir("train_state");
  const std::string path = dir.file("run.ckpt");
  const int64_t k = 11;  // mid-epoch (epoch 1, batch 4)

  manual_seed(1);
  Run straight(3);
  straight.train_until(kTotalSteps);
  const Generator::State gen_after = default_generator().get_state();

  manual_seed(1);
  Run first(3);
  first.train_until(k);
  first.state->save(path);

  // A new process, in effect: other initial weights, another generator position, a fresh
  // optimizer and schedule. Everything must come from the file.
  manual_seed(12345);
  Run resumed(999);
  REQUIRE(differing_weights(resumed, first) > 0);
  resumed.state->load(path);
  CHECK(differing_weights(resumed, first) == 0);
  CHECK(resumed.state->step == k);
  CHECK(resumed.state->epoch == k / resumed.loader.size());
  CHECK(resumed.state->scalars.at("last_loss") == first.losses.back());
  CHECK(resumed.opt->lr() == first.opt->lr());
  CHECK(resumed.sched->last_step() == k);
  CHECK(resumed.noise.get_state().seed == 3);
  resumed.train_until(kTotalSteps);

  const int64_t diff = differing_weights(resumed, straight);
  CHECK(diff == 0);
  std::vector<float> joined = first.losses;
  joined.insert(joined.end(), resumed.losses.begin(), resumed.losses.end());
  REQUIRE(joined.size() == straight.losses.size());
  CHECK(std::memcmp(joined.data(), straight.losses.data(), joined.size() * sizeof(float)) == 0);
  // The default generator (dropout's) ends where the uninterrupted run's ended.
  CHECK(default_generator().get_state().seed == gen_after.seed);
  CHECK(default_generator().get_state().offset == gen_after.offset);

  // The same resume with what was possible before: model, optimizer and schedule files, in a new
  // process that seeds and builds everything as the first one did, so its generators restart
  // from their seeds.
  save(*first.model, dir.file("model.ckpt"));
  save(*first.opt, dir.file("optim.ckpt"));
  save(first.sched->state_dict(), dir.file("sched.ckpt"));
  manual_seed(1);
  Run partial(3);
  load(*partial.model, dir.file("model.ckpt"));
  load(*partial.opt, dir.file("optim.ckpt"));
  partial.sched->load_state_dict(load_state_dict(dir.file("sched.ckpt")));
  partial.state->step = k;
  partial.train_until(kTotalSteps);
  const int64_t diff_partial = differing_weights(partial, straight);
  MESSAGE("weights differing from the uninterrupted run after resuming at step ", k, " of ",
          kTotalSteps, ": ", diff_partial, " of ", num_weights(straight),
          " with model + optimizer + schedule files, ", diff, " with TrainState");
  CHECK(diff_partial > num_weights(straight) / 2);  // dropout masks differ: everything drifts
}

TEST_CASE("TrainState: the file is one ordinary checkpoint with the documented entries") {
  TempDir dir("train_state");
  manual_seed(4);
  Run r(8);
  r.train_until(3);
  r.state->save(dir.file("s.ckpt"));
  const nn::StateDict sd = load_state_dict(dir.file("s.ckpt"));
  std::vector<std::string> names;
  for (const auto& kv : sd) names.push_back(kv.first);
  REQUIRE(names.size() >= 8);
  CHECK(names[0] == "train_state.version");
  CHECK(names[1] == "train_state.step");
  CHECK(names[2] == "train_state.epoch");
  CHECK(names[3] == "rng.default");
  CHECK(names[4] == "rng.noise");
  CHECK(names[5] == "scalar.last_loss");
  CHECK(names[6] == "model.0.weight");
  auto has = [&](const std::string& n) {
    return std::find(names.begin(), names.end(), n) != names.end();
  };
  CHECK(has("optim.state.0.step"));
  CHECK(has("optim.state.0.exp_avg_sq"));
  CHECK(has("sched.last_step"));
  CHECK(sd[1].second.to_vector<int64_t>()[0] == 3);
  const std::vector<int64_t> rng = sd[4].second.to_vector<int64_t>();
  CHECK(static_cast<uint64_t>(rng[0]) == 8);
  CHECK(static_cast<uint64_t>(rng[1]) == r.noise.get_state().offset);
  CHECK(rng[1] > 0);

  // Generator offsets beyond INT64_MAX survive (stored as the uint64's bits).
  r.noise.set_state({~uint64_t{0} - 5, ~uint64_t{0} - 7});
  r.state->save(dir.file("s.ckpt"));
  r.noise.manual_seed(0);
  r.state->load(dir.file("s.ckpt"));
  CHECK(r.noise.get_state().seed == ~uint64_t{0} - 5);
  CHECK(r.noise.get_state().offset == ~uint64_t{0} - 7);
}

TEST_CASE("TrainState: a checkpoint that does not fit is refused and changes nothing") {
  TempDir dir("train_state");
  manual_seed(2);
  Run src(5);
  src.train_until(4);
  const std::string path = dir.file("src.ckpt");
  src.state->save(path);

  manual_seed(6);
  Run dst(7);
  dst.train_until(2);
  // Everything the TrainState covers (the default generator included), as bytes; taken again
  // after each case has built its other objects (building a model draws from the default
  // generator).
  std::vector<uint8_t> before = snapshot(dst);
  auto unchanged = [&] { CHECK(snapshot(dst) == before); };

  SUBCASE("a model of another shape") {
    Run wide(7, /*hidden=*/40);
    wide.state->save(dir.file("wide.ckpt"));
    before = snapshot(dst);
    CHECK_ERROR(dst.state->load(dir.file("wide.ckpt")), "TrainState.load", "wide.ckpt",
                "the model state does not fit", "0.weight", "[40, 12]", "nothing was changed");
    unchanged();
  }
  SUBCASE("a model that fits but an optimizer that does not: the model is put back") {
    // Same model, SGD state instead of Adam's: the model part loads, the optimizer refuses.
    nn::StateDict sd = src.state->state_dict();
    nn::StateDict changed;
    optim::SGD sgd(src.model->parameters(), {.lr = 0.1, .momentum = 0.9});
    for (auto& kv : sd)
      if (kv.first.rfind("optim.", 0) != 0) changed.push_back(kv);
    for (auto& kv : sgd.state_dict()) changed.emplace_back("optim." + kv.first, kv.second);
    save(changed, dir.file("sgd.ckpt"));
    CHECK_ERROR(dst.state->load(dir.file("sgd.ckpt")), "the optimizer state does not fit",
                "Adam.load_state_dict");
    unchanged();
  }
  SUBCASE("a generator that is not registered, or one missing") {
    Generator extra(1);
    Run more(7);
    more.state->add_generator("extra", extra);
    more.state->save(dir.file("more.ckpt"));
    before = snapshot(dst);
    CHECK_ERROR(dst.state->load(dir.file("more.ckpt")), "generator 'extra'", "add_generator");
    unchanged();
    CHECK_ERROR(more.state->load(path), "no state saved for generator 'extra'");
  }
  SUBCASE("a scheduler where there is none, and none where there is one") {
    optim::TrainState no_sched(*dst.model, *dst.opt);
    no_sched.add_generator("noise", dst.noise);
    CHECK_ERROR(no_sched.load(path), "scheduler", "no scheduler");
    unchanged();
    no_sched.save(dir.file("nosched.ckpt"));
    CHECK_ERROR(dst.state->load(dir.file("nosched.ckpt")), "no learning-rate scheduler state");
    unchanged();
  }
  SUBCASE("a plain model checkpoint") {
    save(*src.model, dir.file("model.ckpt"));
    CHECK_ERROR(dst.state->load(dir.file("model.ckpt")), "not a TrainState checkpoint");
    unchanged();
  }
  SUBCASE("registering generators") {
    CHECK_ERROR(dst.state->add_generator("default", dst.noise), "already registered");
    CHECK_ERROR(dst.state->add_generator("a.b", src.noise), "no '.'");
    CHECK_ERROR(dst.state->add_generator("again", dst.noise), "already registered as 'noise'");
    unchanged();
  }
}

TEST_CASE("TrainState: truncated or corrupt files are reported and change nothing") {
  TempDir dir("train_state");
  manual_seed(2);
  Run src(5);
  src.train_until(2);
  const std::string path = dir.file("src.ckpt");
  src.state->save(path);
  const std::vector<uint8_t> bytes = read_bytes(path);
  REQUIRE(bytes.size() > 1000);

  manual_seed(3);
  Run dst(4);
  const std::vector<uint8_t> before = snapshot(dst);
  for (size_t cut : {size_t{0}, size_t{10}, bytes.size() / 2, bytes.size() - 1}) {
    CAPTURE(cut);
    write_bytes(dir.file("cut.ckpt"), std::vector<uint8_t>(bytes.begin(), bytes.begin() + cut));
    CHECK_ERROR(dst.state->load(dir.file("cut.ckpt")), "cut.ckpt");
    CHECK(snapshot(dst) == before);
  }
  for (size_t at : {size_t{30}, bytes.size() / 3, bytes.size() - 20}) {
    CAPTURE(at);
    std::vector<uint8_t> bad = bytes;
    bad[at] ^= 0x10;
    write_bytes(dir.file("bad.ckpt"), bad);
    CHECK_ERROR(dst.state->load(dir.file("bad.ckpt")), "bad.ckpt", "corrupt");
    CHECK(snapshot(dst) == before);
  }
  CHECK_ERROR(dst.state->load(dir.file("missing.ckpt")), "missing.ckpt");
  CHECK(snapshot(dst) == before);
}
