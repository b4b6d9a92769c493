// bench_all --only models: whole-model steps, the numbers a learner feels.
//
// Each row is one full step of a model the lessons train or run: forward, backward and the
// optimizer step (ResNet-18: inference only, under NoGradGuard), timed as the median of repeated
// steps after two warm-up steps, at 1 and at 2 threads. Synthetic (random) inputs of the right
// shapes: the time of a step does not depend on what the pixels show, and the bench needs no
// dataset files.
//
// Peak memory: every row runs in its own child process (this program started again with
// `--model-row NAME:THREADS`), so its peak resident set size (getrusage's ru_maxrss) is the
// row's own: the model, its activations and gradients, the optimizer state and the caching
// allocator's buffers, plus the program itself (a few MB, see the "empty" row). A fresh process
// (not fork) also gives each row a fresh OpenMP runtime and allocator cache.
//
// The rows (the models are the lessons' own code, from mmgrad_lessons_common):
//   fmnist_cnn  lesson 04's Fashion-MNIST image encoder (conv 1-16-32-64 3x3, ReLU, max pool,
//               7x7 map -> linear 64) + a linear 10-class head, cross-entropy, Adam; batch 128
//   clip_small  lesson 04 part A: MiniCLIP (CNN 3-32-64-128 + 2-layer transformer, width 64)
//               on the seed's 5-colour synthetic pairs (3x16x16, 8 tokens), Adam; batch 32
//   clip_large  the same model family at embed/width 128, 3x32x32 images, 16 tokens; batch 256
//               (the setting bench_cuda's "clip" row names)
//   vlm         lesson 09's TinyVLM training step at its defaults (d_model 96, 2 layers, conv
//               channels 32, 64 sequences of 11 text tokens over 40 distinct 32x32 images),
//               AdamW + gradient clipping + cosine schedule
//   resnet18    nn::resnet18 (64-128-256-512, 2 BasicBlocks each, 7x7/2 stem + max pool)
//               inference on a batch of 4 3x224x224 images, eval mode, NoGradGuard
#pragma once

#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mmgrad/mmgrad.h"
#include "mmgrad/nn/layers.h"
#include "mmgrad/nn/resnet.h"
#include "mmgrad/optim/lr_scheduler.h"
#include "mmgrad/optim/optim.h"

#if defined(MMGRAD_BENCH_MODELS)
#include "04_mini_clip/clip.h"
#include "09_vlm/vlm.h"
#include "mmgrad/data/loader.h"
#include "mmgrad/data/synthetic.h"
#endif

namespace bench_models {

using namespace mmgrad;

struct Row {
  const char* name;
  const char* what;
};

inline const std::vector<Row>& rows() {
  static const std::vector<Row> r = {
      {"fmnist_cnn", "Fashion-MNIST CNN classifier (lesson 04 encoder), batch 128, Adam"},
      {"clip_small", "mini CLIP, 5-colour synthetic 3x16x16, 8 tokens, batch 32, Adam"},
      {"clip_large", "mini CLIP large: embed 128, 3x32x32, 16 tokens, batch 256, Adam"},
      {"vlm", "lesson 09 TinyVLM step (d 96, 64 seqs x 11 tokens), AdamW"},
      {"resnet18", "ResNet-18 inference, batch 4, 3x224x224 (no grad)"},
      {"empty", "nothing (the program's own RSS)"},
  };
  return r;
}

// CPU time of this process (all its threads), in ms.
inline double process_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

// The median wall-clock ms of `reps` calls of step after `warmup` unmeasured ones, and the
// median CPU ms of the same calls (all threads together: on a machine busy with other programs
// the wall time grows, the CPU time much less; at 2 threads it includes OpenMP's spin-waiting).
struct StepTime {
  double wall_ms = 0, cpu_ms = 0;
};
inline StepTime median_ms(const std::function<void()>& step, int reps, int warmup = 2) {
  using Clock = std::chrono::steady_clock;
  for (int i = 0; i < warmup; ++i) step();
  std::vector<double> wall, cpu;
  for (int i = 0; i < reps; ++i) {
    const double c0 = process_cpu_ms();
    auto t0 = Clock::now();
    step();
    wall.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    cpu.push_back(process_cpu_ms() - c0);
  }
  std::sort(wall.begin(), wall.end());
  std::sort(cpu.begin(), cpu.end());
  return {wall[wall.size() / 2], cpu[cpu.size() / 2]};
}

#if defined(MMGRAD_BENCH_MODELS)

// A classifier on lesson 04's Fashion-MNIST image encoder (its default config: channels
// {16, 32, 64}, the whole 7x7 map into a 64-d projection).
struct FmnistClassifier : nn::Module {
  std::shared_ptr<clip::ImageEncoder> encoder;
  std::shared_ptr<nn::Linear> head;
  FmnistClassifier() {
    clip::ImageEncoderOptions o;
    o.in_channels = 1;
    o.channels = {16, 32, 64};
    o.pool_size = 7;
    o.embed_dim = 64;
    encoder = register_module("encoder", std::make_shared<clip::ImageEncoder>(o));
    head = register_module("head", std::make_shared<nn::Linear>(64, 10));
  }
  Tensor forward(const Tensor& x) override { return head->forward(relu(encoder->forward(x))); }
};

inline std::shared_ptr<clip::MiniCLIP> make_clip(int64_t in_ch, int64_t embed, int64_t max_len,
                                                 double dropout) {
  clip::ImageEncoderOptions img;  // lesson 04's synthetic model (section 2)
  img.in_channels = in_ch;
  img.channels = {32, 64, 128};
  img.pool_size = 1;
  img.embed_dim = embed;
  clip::TextEncoderOptions txt;
  txt.vocab_size = data::kSyntheticVocabSize;
  txt.width = embed;
  txt.embed_dim = embed;
  txt.max_len = max_len;
  txt.heads = 4;
  txt.layers = 2;
  txt.dropout = dropout;
  txt.pooling = clip::TextPooling::Mean;
  txt.mask_padding = false;
  return std::make_shared<clip::MiniCLIP>(std::make_shared<clip::ImageEncoder>(img),
                                          std::make_shared<clip::TextEncoder>(txt), 0.07);
}

// Times one row in this process: the median step.
inline StepTime time_row(const std::string& name, int reps) {
  manual_seed(0);
  if (name == "empty") return {};
  if (name == "fmnist_cnn") {
    auto model = std::make_shared<FmnistClassifier>();
    optim::Adam opt(model->parameters(), {.lr = 1e-3});
    Tensor x = Tensor::rand({128, 1, 28, 28}), y = Tensor::randint(0, 10, {128});
    return median_ms(
        [&] {
          opt.zero_grad();
          cross_entropy(model->forward(x), y).backward();
          opt.step();
        },
        reps);
  }
  if (name == "clip_small" || name == "clip_large") {
    const bool large = name == "clip_large";
    const int64_t batch = large ? 256 : 32, len = large ? 16 : data::kSyntheticCaptionLen;
    auto model = make_clip(3, large ? 128 : 64, large ? 16 : 32, 0.1);
    model->train();
    optim::Adam opt(model->parameters(), {.lr = 1e-3});
    Tensor x, t;
    if (large) {
      x = Tensor::rand({batch, 3, 32, 32});
      t = Tensor::randint(0, data::kSyntheticVocabSize, {batch, len});
    } else {  // 32 of the seed's 100 pairs, as lesson 04's training loop draws them
      data::SyntheticPairs syn = data::make_synthetic_pairs({}, 0);
      std::vector<int64_t> perm = data::permutation(syn.labels.size(0), 0, 0);
      perm.resize(batch);
      x = data::take_rows(syn.images, perm);
      t = data::take_rows(syn.captions, perm);
    }
    return median_ms(
        [&] {
          opt.zero_grad();
          model->forward(x, t).loss.backward();
          opt.step();
        },
        reps);
  }
  if (name == "vlm") {
    const int64_t vocab = 48, batch = 64, images = 40, T = lesson::vlm::kText - 1;
    auto model = std::make_shared<lesson::vlm::TinyVLM>(vocab, 96, 2, 4, 32);
    model->train();
    optim::AdamW opt(model->parameters(), {.lr = 2e-3, .weight_decay = 0.01});
    optim::CosineWithWarmup sched(opt, 40, 100000);
    Tensor img = Tensor::rand({images, 3, 32, 32});
    Tensor image_of = Tensor::randint(0, images, {batch});
    Tensor inputs = Tensor::randint(0, vocab, {batch, T});
    Tensor targets = Tensor::randint(0, vocab, {batch, T});
    return median_ms(
        [&] {
          Tensor prefix = index_select(model->image_prefix(img), 0, image_of);
          Tensor logits = model->text_logits(prefix, inputs);
          Tensor loss = cross_entropy(logits.reshape({-1, vocab}), targets.reshape({-1}));
          opt.zero_grad();
          loss.backward();
          optim::clip_grad_norm_(model->parameters(), 1.0);
          opt.step();
          sched.step();
        },
        reps);
  }
  if (name == "resnet18") {
    auto model = nn::resnet18();
    model->eval();
    Tensor x = Tensor::randn({4, 3, 224, 224});
    return median_ms(
        [&] {
          NoGradGuard ng;
          Tensor f = model->forward(x);
        },
        reps);
  }
  MMGRAD_CHECK(false, "bench_all --model-row: no row '", name, "' (rows: fmnist_cnn, clip_small, ",
               "clip_large, vlm, resnet18, empty)");
  return {};
}

#endif  // MMGRAD_BENCH_MODELS

// The child's side: `--model-row NAME:THREADS` times the row at that many threads and prints
// one line "ms=<median> rss_kb=<peak RSS>".
inline int run_row(const std::string& spec, bool quick) {
#if defined(MMGRAD_BENCH_MODELS)
  const size_t colon = spec.find(':');
  const std::string name = spec.substr(0, colon);
  const int threads = colon == std::string::npos ? 1 : std::stoi(spec.substr(colon + 1));
  set_num_threads(threads);
  const StepTime t = time_row(name, quick ? 3 : 9);
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("ms=%.3f cpu_ms=%.3f rss_kb=%ld\n", t.wall_ms, t.cpu_ms,
              static_cast<long>(ru.ru_maxrss));
  return 0;
#else
  (void)spec;
  (void)quick;
  std::fprintf(stderr, "bench_all: built without the lessons' models\n");
  return 1;
#endif
}

// The parent's side: one child per (row, threads); a Markdown table.
inline void run(bool quick, const char* self, int max_threads) {
  std::printf("\n## Whole-model steps (forward + backward + optimizer step; median ms)\n\n");
#if !defined(MMGRAD_BENCH_MODELS)
  (void)quick, (void)self, (void)max_threads;
  std::printf("not measured: this build has no lessons (configure with MMGRAD_BUILD_LESSONS=ON)\n");
#else
  std::vector<int> threads = {1};
  if (max_threads > 1) threads.push_back(2);
  std::printf("| model | what |");
  for (int t : threads) std::printf(" %dT ms | %dT CPU ms | %dT peak RSS MB |", t, t, t);
  std::printf("\n|---|---|");
  for (size_t i = 0; i < threads.size(); ++i) std::printf("---:|---:|---:|");
  std::printf("\n");
  for (const Row& r : rows()) {
    std::printf("| %s | %s |", r.name, r.what);
    for (int t : threads) {
      std::string cmd = std::string("'") + self + "'" + (quick ? " --quick" : "") +
                        " --model-row " + r.name + ":" + std::to_string(t);
      double ms = -1, cpu = -1;
      long rss = -1;
      if (FILE* p = popen(cmd.c_str(), "r")) {
        char line[256];
        while (std::fgets(line, sizeof line, p))
          if (std::sscanf(line, "ms=%lf cpu_ms=%lf rss_kb=%ld", &ms, &cpu, &rss) == 3) break;
        pclose(p);
      }
      if (ms < 0)
        std::printf(" (failed) | | |");
      else
        std::printf(" %.1f | %.1f | %.0f |", ms, cpu, static_cast<double>(rss) / 1024.0);
      std::fflush(stdout);
    }
    std::printf("\n");
  }
#endif
}

}  // namespace bench_models
