// bench_cuda: the GPU rows of `make bench` (built when the CUDA backend is on).
//
// Every ratio is measured in the same run against the GPU's own reference: our GEMM path
// against a direct cuBLAS call on the same buffers, elementwise / softmax / layer-norm
// bandwidth against a device-to-device cudaMemcpy of the same size. Times are CUDA-event times
// of back-to-back launches (medians of several samples), so they measure the GPU, not the
// launch latency of a single call. Without a GPU the program says so and exits with status 1.
//
//   bench_cuda [--quick] [--only gemm|bandwidth|conv|attention|clip]
//
// Bandwidth is counted from the bytes an op must move at least (e.g. a + b: read 2n, write n).
// Issue targets: elementwise >= 70% of copy at 64M elements, softmax and layer norm >= 50%.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "mmgrad/kernels/cuda/cuda_backend.h"
#include "mmgrad/mmgrad.h"

using namespace mmgrad;

namespace {

bool g_quick = false;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail(cat_str("bench_cuda: ", what, ": ", cudaGetErrorString(e)));
}
void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    fail(cat_str("bench_cuda: ", what, ": ", cublasGetStatusString(s)));
}

// Median GPU milliseconds per call of fn: `calls` back-to-back calls between two CUDA events,
// `samples` times, after a warm-up (which also fills the caching allocator).
double gpu_ms(const std::function<void()>& fn, int calls = 10, int samples = 5) {
  if (g_quick) {
    calls = std::max(1, calls / 3);
    samples = 3;
  }
  fn();
  fn();
  check(cudaDeviceSynchronize(), "warm-up");
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<double> t;
  for (int s = 0; s < samples; ++s) {
    check(cudaEventRecord(start, 0), "cudaEventRecord");
    for (int i = 0; i < calls; ++i) fn();
    check(cudaEventRecord(stop, 0), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    t.push_back(ms / calls);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Median wall-clock milliseconds of a CPU call.
double cpu_ms(const std::function<void()>& fn, int samples = 3) {
  fn();
  std::vector<double> t;
  for (int s = 0; s < samples; ++s) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    t.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void header(const char* title) { std::printf("\n## %s\n\n", title); }

const TensorOptions kGpu32 = TensorOptions(kFloat32).device(kCUDA);

// ---- GEMM ---------------------------------------------------------------------------------------

cublasHandle_t bench_handle() {
  static cublasHandle_t h = [] {
    cublasHandle_t c;
    check(cublasCreate(&c), "cublasCreate");
    return c;
  }();
  return h;
}

// Square n x n x n GEMM: our backend's gemm (row-major, mapped onto cuBLAS), the matmul op
// (plus output allocation), and a direct column-major cuBLAS call on the same buffers.
void bench_gemm(DType dt, int64_t n) {
  const TensorOptions o = TensorOptions(dt).device(kCUDA);
  Tensor a = Tensor::randn({n, n}, o), b = Tensor::randn({n, n}, o), c = Tensor::empty({n, n}, o);
  const GemmArgs g = GemmArgs{.dtype = dt, .M = n, .N = n, .K = n}
                         .a(a.raw_data(), n)
                         .b(b.raw_data(), n)
                         .c(c.raw_data(), n);
  const double flops = 2.0 * n * n * n;
  const int calls = n >= 4096 ? 3 : 10;
  double t_ours = gpu_ms([&] { backend(kCUDA).gemm(g); }, calls);
  double t_op = gpu_ms([&] { Tensor r = matmul(a, b); }, calls);
  cublasHandle_t h = bench_handle();
  double t_cublas;
  if (dt == kFloat32) {
    const float one = 1, zero = 0;
    check(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    t_cublas = gpu_ms(
        [&] {
          check(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, b.data_ptr<float>(), n,
                            a.data_ptr<float>(), n, &zero, c.data_ptr<float>(), n),
                "cublasSgemm");
        },
        calls);
  } else {
    const double one = 1, zero = 0;
    check(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    t_cublas = gpu_ms(
        [&] {
          check(cublasDgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, b.data_ptr<double>(), n,
                            a.data_ptr<double>(), n, &zero, c.data_ptr<double>(), n),
                "cublasDgemm");
        },
        calls);
  }
  std::printf("| %s | %lld | %.2f | %.2f | %.2f | %.3f |\n", dtype_name(dt),
              static_cast<long long>(n), flops / t_ours / 1e9, flops / t_op / 1e9,
              flops / t_cublas / 1e9, t_cublas / t_ours);
}

// The same with TF32 tensor cores allowed (set_allow_tf32), against cuBLAS's TF32 GEMM.
void bench_gemm_tf32(int64_t n) {
  Tensor a = Tensor::randn({n, n}, kGpu32), b = Tensor::randn({n, n}, kGpu32);
  Tensor c = Tensor::empty({n, n}, kGpu32);
  const double flops = 2.0 * n * n * n;
  cuda::set_allow_tf32(true);
  double t_op = gpu_ms([&] { Tensor r = matmul(a, b); }, 10);
  cuda::set_allow_tf32(false);
  cublasHandle_t h = bench_handle();
  check(cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH), "cublasSetMathMode");
  const float one = 1, zero = 0;
  double t_cublas = gpu_ms(
      [&] {
        check(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, b.data_ptr<float>(), n,
                          a.data_ptr<float>(), n, &zero, c.data_ptr<float>(), n),
              "cublasSgemm (TF32)");
      },
      10);
  check(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  std::printf("| float32, TF32 allowed | %lld | - | %.2f | %.2f | %.3f |\n",
              static_cast<long long>(n), flops / t_op / 1e9, flops / t_cublas / 1e9,
              t_cublas / t_op);
}

// Attention-shaped batched GEMM: [B, L, E] @ [B, E, S] (q k^T per head).
void bench_batched_gemm(int64_t B, int64_t L, int64_t E) {
  Tensor q = Tensor::randn({B, L, E}, kGpu32), k = Tensor::randn({B, L, E}, kGpu32);
  Tensor s = Tensor::empty({B, L, L}, kGpu32);
  const double flops = 2.0 * B * L * L * E;
  double t_op = gpu_ms([&] { Tensor r = matmul(q, k.transpose(1, 2)); }, 20);
  cublasHandle_t h = bench_handle();
  const float one = 1, zero = 0;
  // Row-major S = Q K^T is column-major S^T = K Q^T: first operand K (E x S^T... transposed).
  double t_cublas = gpu_ms(
      [&] {
        check(cublasSgemmStridedBatched(h, CUBLAS_OP_T, CUBLAS_OP_N, L, L, E, &one,
                                        k.data_ptr<float>(), E, L * E, q.data_ptr<float>(), E,
                                        L * E, &zero, s.data_ptr<float>(), L, L * L, B),
              "cublasSgemmStridedBatched");
      },
      20);
  std::printf(
      "| float32 batched %lld x [%lld, %lld] @ [%lld, %lld] | - | - | %.2f | %.2f | %.3f |\n",
      static_cast<long long>(B), static_cast<long long>(L), static_cast<long long>(E),
      static_cast<long long>(E), static_cast<long long>(L), flops / t_op / 1e9,
      flops / t_cublas / 1e9, t_cublas / t_op);
}

// ---- bandwidth ----------------------------------------------------------------------------------

void row(const char* name, double bytes, double ms, double copy_gbs, const char* target = "") {
  const double gbs = bytes / (ms * 1e-3) / 1e9;
  std::printf("| %s | %.3f | %.0f | %.0f%% | %s |\n", name, ms, gbs, 100.0 * gbs / copy_gbs,
              target);
}

void bench_bandwidth() {
  const int64_t n = g_quick ? (int64_t{16} << 20) : (int64_t{64} << 20);
  const int64_t cols = 1024, rows = n / cols;
  const double B = 4.0 * n;  // bytes of one float32 tensor of n elements
  Tensor a = Tensor::randn({n}, kGpu32), b = Tensor::randn({n}, kGpu32);
  Tensor out = Tensor::empty({n}, kGpu32);
  Backend& be = backend(kCUDA);

  const double t_copy = gpu_ms([&] {
    check(cudaMemcpyAsync(out.raw_data(), a.raw_data(), static_cast<size_t>(B),
                          cudaMemcpyDeviceToDevice, 0),
          "cudaMemcpyAsync");
  });
  const double copy_gbs = 2 * B / (t_copy * 1e-3) / 1e9;
  std::printf("%lld float32 elements (%s); softmax / layer norm over rows of %lld\n\n",
              static_cast<long long>(n), g_quick ? "quick" : "full", static_cast<long long>(cols));
  std::printf("| op | ms | GB/s | %% of copy | target |\n|---|---:|---:|---:|---|\n");
  row("cudaMemcpy device -> device", 2 * B, t_copy, copy_gbs);
  row("a + b (binary kernel)", 3 * B,
      gpu_ms([&] { be.binary(BinaryOp::Add, a.desc(), b.desc(), out.desc()); }), copy_gbs,
      ">= 70%");
  row("a * 2 (unary kernel)", 2 * B,
      gpu_ms([&] { be.unary(UnaryOp::MulScalar, a.desc(), out.desc(), 2.0, 0.0); }), copy_gbs,
      ">= 70%");
  row("exp(a)", 2 * B, gpu_ms([&] { be.unary(UnaryOp::Exp, a.desc(), out.desc(), 0, 0); }),
      copy_gbs, ">= 70%");
  row("a + b through the op (allocates the output)", 3 * B, gpu_ms([&] { Tensor r = a + b; }),
      copy_gbs, ">= 70%");
  Tensor a2 = a.view({rows, cols}), bias = Tensor::randn({cols}, kGpu32);
  row("a + bias (row broadcast)", 2 * B, gpu_ms([&] { Tensor r = a2 + bias; }), copy_gbs);
  Tensor sq = a.view({8192, n / 8192});
  row("transpose copy (strided N-d path)", 2 * B, gpu_ms([&] { Tensor r = sq.t().contiguous(); }),
      copy_gbs);
  row("sum of all", B, gpu_ms([&] { Tensor r = a.sum(); }), copy_gbs);
  row("sum over rows (dim 1)", B, gpu_ms([&] { Tensor r = a2.sum({1}); }), copy_gbs);
  row("sum over columns (dim 0)", B, gpu_ms([&] { Tensor r = a2.sum({0}); }), copy_gbs);
  Tensor y = Tensor::empty({rows, cols}, kGpu32), gx = Tensor::empty({rows, cols}, kGpu32);
  Tensor gy = Tensor::randn({rows, cols}, kGpu32);
  row("softmax forward", 2 * B, gpu_ms([&] {
        be.softmax_forward(
            {.dtype = kFloat32, .x = a.raw_data(), .y = y.raw_data(), .outer = rows, .dim = cols});
      }),
      copy_gbs, ">= 50%");
  row("softmax backward", 3 * B, gpu_ms([&] {
        be.softmax_backward({.dtype = kFloat32,
                             .y = y.raw_data(),
                             .gy = gy.raw_data(),
                             .gx = gx.raw_data(),
                             .outer = rows,
                             .dim = cols});
      }),
      copy_gbs, ">= 50%");
  Tensor w = Tensor::randn({cols}, kGpu32), lb = Tensor::randn({cols}, kGpu32);
  Tensor mean = Tensor::empty({rows}, kGpu32), rstd = Tensor::empty({rows}, kGpu32);
  Tensor gw = Tensor::empty({cols}, kGpu32), gb = Tensor::empty({cols}, kGpu32);
  row("layer norm forward", 2 * B, gpu_ms([&] {
        be.layer_norm_forward({.dtype = kFloat32,
                               .x = a.raw_data(),
                               .w = w.raw_data(),
                               .b = lb.raw_data(),
                               .y = y.raw_data(),
                               .mean = mean.raw_data(),
                               .rstd = rstd.raw_data(),
                               .N = rows,
                               .D = cols,
                               .eps = 1e-5});
      }),
      copy_gbs, ">= 50%");
  row("layer norm backward (gx, gw, gb; counted as 3n)", 3 * B, gpu_ms([&] {
        be.layer_norm_backward({.dtype = kFloat32,
                                .gy = gy.raw_data(),
                                .x = a.raw_data(),
                                .mean = mean.raw_data(),
                                .rstd = rstd.raw_data(),
                                .w = w.raw_data(),
                                .gx = gx.raw_data(),
                                .gw = gw.raw_data(),
                                .gb = gb.raw_data(),
                                .N = rows,
                                .D = cols});
      }),
      copy_gbs, ">= 50%");
  Tensor m = Tensor::zeros({n}, kGpu32), v = Tensor::zeros({n}, kGpu32);
  row("adam_step (read 4n, write 3n)", 7 * B, gpu_ms([&] {
        be.adam_step({.dtype = kFloat32,
                      .param = out.raw_data(),
                      .grad = b.raw_data(),
                      .exp_avg = m.raw_data(),
                      .exp_avg_sq = v.raw_data(),
                      .n = n,
                      .lr = 1e-3,
                      .weight_decay = 0.01,
                      .decoupled = true});
      }),
      copy_gbs);
}

// ---- conv2d and attention, forward + backward ---------------------------------------------------

// Forward and forward+backward milliseconds of fn on the GPU, and on the CPU for reference.
void fwd_bwd_row(const char* name, double fwd_flops,
                 const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                 const std::vector<Tensor>& cpu_inputs, bool with_cpu) {
  auto run = [&](const std::vector<Tensor>& in, bool backward) {
    Tensor y = fn(in);
    if (backward) {
      y.sum().backward();
      for (const Tensor& t : in) t.set_grad(Tensor());
    }
  };
  std::vector<Tensor> gi;
  for (const Tensor& t : cpu_inputs) gi.push_back(t.to(kCUDA).detach().requires_grad_());
  const double f = gpu_ms([&] { run(gi, false); }, 5);
  const double fb = gpu_ms([&] { run(gi, true); }, 5);
  std::string cpu_col = "-";
  if (with_cpu) {
    std::vector<Tensor> ci;
    for (const Tensor& t : cpu_inputs) ci.push_back(t.detach().requires_grad_());
    const double c = cpu_ms([&] { run(ci, true); }, g_quick ? 1 : 3);
    cpu_col =
        cat_str(static_cast<int64_t>(c * 10) / 10.0, " (", static_cast<int64_t>(c / fb), "x)");
  }
  std::printf("| %s | %.3f | %.2f | %.3f | %s |\n", name, f, fwd_flops / (f * 1e-3) / 1e12, fb,
              cpu_col.c_str());
}

void bench_conv(bool with_cpu) {
  const int64_t N = g_quick ? 64 : 256;
  std::printf(
      "| conv2d (batch %lld) | fwd ms | fwd TFLOP/s | fwd+bwd ms | CPU fwd+bwd ms (GPU speed-up) "
      "|\n",
      static_cast<long long>(N));
  std::printf("|---|---:|---:|---:|---:|\n");
  struct Shape4 {
    int64_t C, H, Cout, K;
  };
  for (Shape4 s : {Shape4{3, 32, 64, 3}, Shape4{64, 16, 128, 3}, Shape4{128, 8, 256, 3}}) {
    Tensor x = Tensor::randn({N, s.C, s.H, s.H}), w = Tensor::randn({s.Cout, s.C, s.K, s.K}) * 0.1;
    Tensor b = Tensor::randn({s.Cout});
    const double flops = 2.0 * N * s.Cout * s.C * s.K * s.K * s.H * s.H;
    fwd_bwd_row(
        cat_str(s.C, "x", s.H, "x", s.H, " -> ", s.Cout, ", 3x3, padding 1").c_str(), flops,
        [](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], 1, 1); }, {x, w, b},
        with_cpu);
  }
}

void bench_attention(bool with_cpu) {
  const int64_t N = g_quick ? 64 : 256, H = 4, E = 32;
  std::printf(
      "| attention (batch %lld, %lld heads of %lld) | fwd ms | fwd TFLOP/s | fwd+bwd ms | CPU "
      "fwd+bwd ms (GPU speed-up) |\n",
      static_cast<long long>(N), static_cast<long long>(H), static_cast<long long>(E));
  std::printf("|---|---:|---:|---:|---:|\n");
  for (auto [L, causal] : std::vector<std::pair<int64_t, bool>>{{16, true}, {64, false}}) {
    Tensor q = Tensor::randn({N, H, L, E}), k = Tensor::randn({N, H, L, E}),
           v = Tensor::randn({N, H, L, E});
    const double flops = 4.0 * N * H * L * L * E;  // q k^T and p v
    fwd_bwd_row(
        cat_str(L, " tokens", causal ? ", causal" : "").c_str(), flops,
        [causal](const std::vector<Tensor>& in) {
          AttentionOptions o;
          o.is_causal = causal;
          return scaled_dot_product_attention(in[0], in[1], in[2], o);
        },
        {q, k, v}, with_cpu);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string only;
  bool with_cpu = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      g_quick = true;
    } else if (a == "--no-cpu") {
      with_cpu = false;
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else {
      std::fprintf(
          stderr,
          "usage: bench_cuda [--quick] [--no-cpu] [--only gemm|bandwidth|conv|attention|clip]\n");
      return 2;
    }
  }
  auto want = [&](const char* name) { return only.empty() || only == name; };
  try {
    backend(kCUDA);
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_cuda: cannot run the GPU benchmarks: %s\n", e.what());
    return 1;
  }
  try {
    std::printf("# mmgrad GPU benchmarks on %s (%s, medians of CUDA-event timings)\n",
                cuda::device_description(), g_quick ? "quick" : "full");
    if (want("gemm")) {
      header("GEMM (C = A B, n x n; batched: attention scores)");
      std::printf(
          "| dtype | n | backend gemm GFLOP/s | matmul op GFLOP/s | cuBLAS direct GFLOP/s | "
          "ours / cuBLAS |\n|---|---:|---:|---:|---:|---:|\n");
      for (int64_t n : {1024, 2048, 4096, 8192}) {
        if (g_quick && n > 2048) continue;
        bench_gemm(kFloat32, n);
      }
      for (int64_t n : {1024, 4096}) {
        if (g_quick && n > 1024) continue;
        bench_gemm(kFloat64, n);
      }
      bench_gemm_tf32(g_quick ? 2048 : 4096);
      bench_batched_gemm(g_quick ? 256 : 1024, 64, 32);
    }
    if (want("bandwidth")) {
      header("Memory-bound kernels against a device-to-device copy");
      bench_bandwidth();
    }
    if (want("conv")) {
      header("conv2d forward and forward+backward (im2col + cuBLAS)");
      bench_conv(with_cpu);
    }
    if (want("attention")) {
      header("scaled_dot_product_attention forward and forward+backward");
      bench_attention(with_cpu);
    }
    if (want("clip")) {
      header("mini-CLIP \"large\" training step (embed 128, 3x32x32 images, 16 tokens, batch 256)");
      // The step needs the mini-CLIP model of the lessons (nn modules: Conv2d, Linear, LayerNorm,
      // Embedding, attention blocks, AdamW), which is not part of this branch. The integrator
      // adds this row once the model exists: time one optimizer step on CPU and GPU and report
      // the speed-up (target: >= 10x over the 2-core CPU).
      std::printf(
          "not measured: the mini-CLIP model (lessons / nn modules) is not in this build\n");
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_cuda: %s\n", e.what());
    return 1;
  }
  return 0;
}
