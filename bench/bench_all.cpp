// make bench: how fast mmgrad is, measured against the machine's own limits.
//
// Every row is the median of repeated runs (these machines are shared and noisy). Ratios are
// measured in the same run: our GEMM path against a direct Eigen call on the same buffers, the
// elementwise add against a plain copy of the same size, and so on.
//
//   bench_all [--quick] [--only NAME] [--op NAME|all] [--list-ops]
//
// --op times one op of the op list (tests/op_list.h) at its benchmark size, forward and forward +
// backward; --op all times every op; --list-ops prints the ops and their benchmark inputs.
#include <immintrin.h>
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench_conv.h"
#include "bench_gemm_ladder.h"
#include "bench_models.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/nn/layers.h"
#include "mmgrad/optim/optim.h"
#include "op_list.h"

using namespace mmgrad;
using Clock = std::chrono::steady_clock;

namespace {

bool g_quick = false;

// Median seconds of `reps` runs of fn (after `warmup` unmeasured runs).
double median_seconds(const std::function<void()>& fn, int reps, int warmup = 1) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Runs fn in a loop for about `budget` seconds per sample; returns median seconds per call.
double median_per_call(const std::function<void()>& fn, int samples, double budget = 0.05) {
  fn();
  auto t0 = Clock::now();
  int64_t calls = 0;
  while (std::chrono::duration<double>(Clock::now() - t0).count() < budget / 4) {
    fn();
    ++calls;
  }
  double per =
      std::chrono::duration<double>(Clock::now() - t0).count() / std::max<int64_t>(calls, 1);
  int64_t n = std::max<int64_t>(1, static_cast<int64_t>(budget / std::max(per, 1e-9)));
  return median_seconds(
             [&] {
               for (int64_t i = 0; i < n; ++i) fn();
             },
             samples, 0) /
         static_cast<double>(n);
}

void header(const char* title) { std::printf("\n## %s\n\n", title); }

// ---- 1. float32 FMA peak ----------------------------------------------------------------------
// Many independent FMA chains keep both FMA ports busy; the result is stored so the compiler
// cannot remove the loop.
double fma_gflops_one_thread(int64_t iters) {
#if defined(__AVX512F__)
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i) * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < 16; ++i) s = _mm512_add_ps(s, acc[i]);
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return 16.0 * 16 * 2;  // flops per iteration: 16 vectors x 16 lanes x 2
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i) * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  float out[8];
  _mm256_storeu_ps(out, s);
  volatile float sink = out[0];
  (void)sink;
  return 12.0 * 8 * 2;
#else
  float acc[8] = {};
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 8; ++i) acc[i] = acc[i] * 0.999999f + 1e-7f;
  volatile float sink = acc[0];
  (void)sink;
  return 8.0 * 2;
#endif
}

double fma_peak(int threads) {
  const int64_t iters = g_quick ? 2000000 : 20000000;
  double flops_per_iter = 0;
  double secs = median_seconds(
      [&] {
#pragma omp parallel num_threads(threads)
        {
          double f = fma_gflops_one_thread(iters);
#pragma omp master
          flops_per_iter = f;
        }
      },
      g_quick ? 3 : 5);
  return flops_per_iter * static_cast<double>(iters) * threads / secs / 1e9;
}

// ---- 2. GEMM ------------------------------------------------------------------------------------
struct GemmRow {
  int64_t n;
  double ours, eigen;
};

GemmRow bench_gemm(int64_t n) {
  Tensor a = Tensor::randn({n, n}), b = Tensor::randn({n, n});
  Tensor c = Tensor::empty({n, n});
  using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<const RowMat> ma(a.data_ptr<float>(), n, n), mb(b.data_ptr<float>(), n, n);
  Eigen::Map<RowMat> mc(c.data_ptr<float>(), n, n);
  double flops = 2.0 * n * n * n;
  int samples = g_quick ? 3 : 9;
  double budget = g_quick ? 0.02 : 0.1;
  // Interleave the two measurements so drift in machine load affects both alike.
  std::vector<double> ours, eigen;
  for (int s = 0; s < samples; ++s) {
    ours.push_back(median_per_call([&] { Tensor r = matmul(a, b); }, 1, budget));
    eigen.push_back(median_per_call([&] { mc.noalias() = ma * mb; }, 1, budget));
  }
  std::sort(ours.begin(), ours.end());
  std::sort(eigen.begin(), eigen.end());
  return {n, flops / ours[samples / 2] / 1e9, flops / eigen[samples / 2] / 1e9};
}

// ---- 3. memory bandwidth: copy vs elementwise add ---------------------------------------------
struct BandwidthRow {
  double copy_gbs, add_gbs, mul_scalar_gbs, relu_gbs;
};

BandwidthRow bench_bandwidth() {
  const int64_t n = 16 * 1024 * 1024;
  Tensor a = Tensor::randn({n}), b = Tensor::randn({n});
  Tensor dst = Tensor::empty({n});
  int samples = g_quick ? 3 : 11;
  // copy: read n + write n floats
  double t_copy = median_seconds([&] { dst.copy_(a); }, samples);
  // add: read 2n + write n (output from the caching allocator: no page faults in steady state)
  double t_add = median_seconds([&] { Tensor r = a + b; }, samples);
  double t_mul = median_seconds([&] { Tensor r = a * 2.0; }, samples);
  double t_relu = median_seconds([&] { Tensor r = relu(a); }, samples);
  double bytes = 4.0 * n;
  return {2 * bytes / t_copy / 1e9, 3 * bytes / t_add / 1e9, 2 * bytes / t_mul / 1e9,
          2 * bytes / t_relu / 1e9};
}

// ---- 4. per-op fixed cost ---------------------------------------------------------------------
double bench_tiny_op_us() {
  Tensor a = Tensor::ones({1}).requires_grad_();
  Tensor b = Tensor::ones({1}).requires_grad_();
  double t = median_per_call(
      [&] {
        Tensor c = add(a, b);
        c.backward();
        a.set_grad(Tensor());
        b.set_grad(Tensor());
      },
      g_quick ? 3 : 9, g_quick ? 0.02 : 0.1);
  return t * 1e6;
}

// ---- 5. ops from the op list (tests/op_list.h) -----------------------------------------------
// An op is timed on its benchmark case: the first of its cases with benchmark-size inputs, else
// its first case at test size. float32 on the CPU: the forward alone (no graph recorded), and
// forward + backward (an upstream gradient of ones), each the median of repeated runs.
const oplist::OpCase* bench_case(const std::string& op) {
  const oplist::OpCase* first = nullptr;
  for (const oplist::OpCase& c : oplist::op_cases()) {
    if (c.op != op) continue;
    if (!c.bench.empty()) return &c;
    if (!first) first = &c;
  }
  return first;
}

std::string bench_inputs(const oplist::OpCase& c) {
  std::string s;
  for (const oplist::Arg& a : c.bench.empty() ? c.args : c.bench) {
    if (!s.empty()) s += ' ';
    s += a.shape.str();
  }
  return s;
}

struct OpTiming {
  double fwd_s = -1, fwd_bwd_s = -1;  // -1: not measured (no gradient)
};

// sum_backward: backward of sum(y), whose upstream gradient is a broadcast (stride-0) tensor of
// ones, as the conv2d and attention rows have always measured; otherwise y.backward(ones) with a
// dense, contiguous gradient, as a real upstream gradient is.
OpTiming time_op(const oplist::OpCase& c, int samples, bool forward, bool sum_backward) {
  oplist::Inputs in = oplist::make_inputs(c, kFloat32, kCPU, /*bench=*/true);
  const double budget = g_quick ? 0.02 : 0.1;
  OpTiming t;
  if (forward)
    t.fwd_s = median_per_call(
        [&] {
          NoGradGuard ng;
          Tensor y = oplist::call(c, in);
        },
        samples, budget);
  if (c.has_grad()) {
    Tensor ones;
    {
      NoGradGuard ng;
      Tensor y = oplist::call(c, in);
      ones = Tensor::ones(y.shape(), y.options());
    }
    t.fwd_bwd_s = median_per_call(
        [&] {
          Tensor y = oplist::call(c, in);
          if (sum_backward)
            y.sum().backward();
          else
            y.backward(ones);
          for (Tensor& x : in)
            if (x.requires_grad()) x.set_grad(Tensor());
        },
        samples, budget);
  }
  return t;
}

// The rows of `--op NAME` (or every op with `--op all`).
void bench_ops(const std::string& which) {
  header(
      "Ops from the op list (tests/op_list.h), float32: forward, and forward + backward (gradient "
      "of ones)");
  std::printf("| op | case | inputs | forward ms | forward + backward ms | GFLOP/s |\n");
  std::printf("|---|---|---|---:|---:|---:|\n");
  for (const std::string& op : oplist::op_names()) {
    if (which != "all" && which != op) continue;
    const oplist::OpCase& c = *bench_case(op);
    OpTiming t = time_op(c, g_quick ? 3 : 9, /*forward=*/true, /*sum_backward=*/false);
    auto num = [](double v) {
      char b[32];
      std::snprintf(b, sizeof b, "%.4f", v);
      return std::string(b);
    };
    const std::string fwd_bwd = t.fwd_bwd_s > 0 ? num(t.fwd_bwd_s * 1e3) : "(no gradient)";
    const std::string gflops =
        c.bench_flops > 0 && t.fwd_bwd_s > 0 ? num(c.bench_flops / t.fwd_bwd_s / 1e9) : "";
    std::printf("| %s | %s | %s | %.4f | %s | %s |\n", op.c_str(), c.variant.c_str(),
                bench_inputs(c).c_str(), t.fwd_s * 1e3, fwd_bwd.c_str(), gflops.c_str());
  }
}

// conv2d forward + backward, input (64, 64, 32, 32), 64 output channels, 3x3, padding 1: the op
// list's conv2d benchmark case. Forward is 2*N*Cout*OH*OW*Cin*9 flops; the backward does the
// same work twice more (input gradient and weight gradient).
double bench_conv_gflops() {
  const oplist::OpCase& c = *bench_case("conv2d");
  return c.bench_flops /
         time_op(c, g_quick ? 3 : 7, /*forward=*/false, /*sum_backward=*/true).fwd_bwd_s / 1e9;
}

// ---- 6. attention forward + backward ------------------------------------------------------------
// B=32, H=4, T=64, Dh=32, causal (the op list's benchmark case): two batched GEMMs forward
// (QK^T, PV), four backward, plus softmax.
struct AttnRow {
  double ms, gflops;
};
AttnRow bench_attention() {
  const oplist::OpCase& c = *bench_case("scaled_dot_product_attention");
  const double t = time_op(c, g_quick ? 3 : 9, /*forward=*/false, /*sum_backward=*/true).fwd_bwd_s;
  return {t * 1e3, c.bench_flops / t / 1e9};
}

// ---- 7. one training step of a small CNN --------------------------------------------------------
// conv 1->32 (3x3, pad 1) + ReLU + maxpool 2, conv 32->64 + ReLU + maxpool 2, linear 3136->128,
// ReLU, linear 128->10, cross-entropy; forward, backward and a plain SGD update, batch 128.
struct SmallCNN : nn::Module {
  std::shared_ptr<nn::Conv2d> c1, c2;
  std::shared_ptr<nn::Linear> f1, f2;
  SmallCNN() {
    c1 = register_module("c1", std::make_shared<nn::Conv2d>(1, 32, 3, 1, 1));
    c2 = register_module("c2", std::make_shared<nn::Conv2d>(32, 64, 3, 1, 1));
    f1 = register_module("f1", std::make_shared<nn::Linear>(64 * 7 * 7, 128));
    f2 = register_module("f2", std::make_shared<nn::Linear>(128, 10));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = max_pool2d(relu(c1->forward(x)), 2);
    h = max_pool2d(relu(c2->forward(h)), 2);
    return f2->forward(relu(f1->forward(h.flatten(1))));
  }
};

double bench_cnn_step_ms() {
  auto model = std::make_shared<SmallCNN>();
  optim::SGD opt(model->parameters(), {0.01});
  Tensor x = Tensor::rand({128, 1, 28, 28});
  Tensor y = Tensor::randint(0, 10, {128});
  double t = median_seconds(
      [&] {
        opt.zero_grad();
        Tensor loss = cross_entropy(model->forward(x), y);
        loss.backward();
        opt.step();
      },
      g_quick ? 3 : 11, 2);
  return t * 1e3;
}

}  // namespace

int run(int argc, char** argv) {
  std::string only, op;
  bool cpu_time = false;  // --cpu-time: the GEMM ladder timed by thread CPU time (loaded machines)
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick")
      g_quick = true;
    else if (a == "--cpu-time")
      cpu_time = true;
    else if (a == "--only" && i + 1 < argc)
      only = argv[++i];
    else if (a == "--op" && i + 1 < argc)
      op = argv[++i];
    else if (a == "--model-row" && i + 1 < argc)  // one row of --only models, in a child
      return bench_models::run_row(argv[++i], g_quick);
    else if (a == "--list-ops") {
      std::printf("# ops of the op list (tests/op_list.h): name, benchmark case, inputs\n");
      for (const std::string& name : oplist::op_names()) {
        const oplist::OpCase& c = *bench_case(name);
        std::printf("%s\t%s\t%s%s\n", name.c_str(), c.variant.c_str(), bench_inputs(c).c_str(),
                    c.bench.empty() ? " (test size)" : "");
      }
      return 0;
    } else {
      std::fprintf(
          stderr,
          "usage: bench_all [--quick] [--cpu-time] "
          "[--only peak|gemm|gemm-ladder|gemm-small|bandwidth|tiny|conv|attention|cnn|models] "
          "[--op NAME|all] [--list-ops]\n");
      return 2;
    }
  }
  if (!op.empty()) {
    if (op != "all" && !bench_case(op)) {
      std::fprintf(stderr, "bench_all: no op '%s' in the op list (see --list-ops)\n", op.c_str());
      return 2;
    }
    std::printf("# mmgrad op benchmarks (%s, %d threads, medians of repeated runs)\n",
                g_quick ? "quick" : "full", omp_get_max_threads());
    bench_ops(op);
    return 0;
  }
  auto want = [&](const char* name) { return only.empty() || only == name; };
  // The GEMM ladder (every rung, ~2 minutes) runs only when asked for: --only gemm-ladder.
  const bool want_ladder = only == "gemm-ladder";
  int max_threads = omp_get_max_threads();
  std::printf("# mmgrad benchmarks (%s, %d threads available, medians of repeated runs)\n",
              g_quick ? "quick" : "full", max_threads);

  double peak1 = 0, peak2 = 0;
  if (want("peak") || want("gemm") || want("conv") || want_ladder) {
    header("float32 FMA peak (hand-written FMA loop)");
    peak1 = fma_peak(1);
    peak2 = max_threads > 1 ? fma_peak(std::min(2, max_threads)) : peak1;
    std::printf("| threads | GFLOP/s |\n|---:|---:|\n| 1 | %.1f |\n| %d | %.1f |\n", peak1,
                std::min(2, max_threads), peak2);
  }

  if (want("gemm")) {
    header("GEMM float32 (C = A B, n x n), all threads");
    std::printf("| n | mmgrad GFLOP/s | %% of peak | Eigen direct GFLOP/s | mmgrad / Eigen |\n");
    std::printf("|---:|---:|---:|---:|---:|\n");
    for (int64_t n : {64, 256, 1024, 2048}) {
      if (g_quick && n > 1024) continue;
      GemmRow r = bench_gemm(n);
      std::printf("| %lld | %.1f | %.0f%% | %.1f | %.3f |\n", static_cast<long long>(n), r.ours,
                  100.0 * r.ours / peak2, r.eigen, r.ours / r.eigen);
    }
  }

  if (only == "gemm-small" || want_ladder) {
    // The "mmgrad backend" columns time the backend's GEMM routed through the ladder (the
    // default; set here in case MMGRAD_GEMM_LADDER=0 switched it off: kernels/cpu/gemm_ladder.h).
    const bool saved = mmgrad::cpu::gemm_ladder_enabled();
    mmgrad::cpu::set_gemm_ladder(true);
    if (only == "gemm-small") gemm_ladder_bench::run_small(g_quick, cpu_time);
    if (want_ladder) gemm_ladder_bench::run(g_quick, cpu_time, peak1, peak2, fma_gflops_one_thread);
    mmgrad::cpu::set_gemm_ladder(saved);
  }

  if (want("bandwidth")) {
    header("Elementwise on 16M float32 (GB/s moved; copy is the reference)");
    BandwidthRow r = bench_bandwidth();
    std::printf("| op | GB/s | %% of copy |\n|---|---:|---:|\n");
    std::printf("| copy (dst.copy_(a)) | %.1f | 100%% |\n", r.copy_gbs);
    std::printf("| a + b | %.1f | %.0f%% |\n", r.add_gbs, 100 * r.add_gbs / r.copy_gbs);
    std::printf("| a * 2 | %.1f | %.0f%% |\n", r.mul_scalar_gbs,
                100 * r.mul_scalar_gbs / r.copy_gbs);
    std::printf("| relu(a) | %.1f | %.0f%% |\n", r.relu_gbs, 100 * r.relu_gbs / r.copy_gbs);
  }

  if (want("conv")) {
    header("conv2d forward + backward, input (64, 64, 32, 32), 64 out, 3x3, padding 1");
    double g = bench_conv_gflops();
    std::printf("| GFLOP/s | %% of peak (%d threads) |\n|---:|---:|\n| %.1f | %.0f%% |\n",
                std::min(2, max_threads), g, peak2 > 0 ? 100 * g / peak2 : 0.0);
    conv_bench::run(g_quick, cpu_time, peak1, peak2, max_threads, fma_gflops_one_thread);
  }

  if (want("attention")) {
    header("attention forward + backward, B=32 H=4 T=64 Dh=32, causal");
    AttnRow r = bench_attention();
    std::printf("| ms | GFLOP/s (GEMM flops) |\n|---:|---:|\n| %.2f | %.1f |\n", r.ms, r.gflops);
  }

  if (want("cnn")) {
    header("Training step of a small CNN (batch 128, 1x28x28, conv 1-32-64, 2 linear, SGD)");
    std::printf("| ms per step | images/s |\n|---:|---:|\n");
    double ms = bench_cnn_step_ms();
    std::printf("| %.1f | %.0f |\n", ms, 128.0 / (ms / 1e3));
  }

  if (want("tiny")) {
    header("Fixed cost of a tiny op");
    std::printf("| what | microseconds |\n|---|---:|\n");
    std::printf("| add forward + backward, 1-element tensors | %.2f |\n", bench_tiny_op_us());
  }
  if (want("models")) bench_models::run(g_quick, argv[0], max_threads);
  return 0;
}

// An op that rejects its benchmark inputs (or any other error) is reported, not a crash.
int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_all: %s\n", e.what());
    return 1;
  }
}
