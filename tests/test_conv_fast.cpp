// The float32 CPU conv2d path on the GEMM ladder's micro-kernel (kernels/cpu/conv_fast.cpp):
// forward, input gradient and weight gradient against the float64 reference path (im2col +
// GEMM in double) on awkward shapes (stride, dilation, padding, C = 1 and 3, 1x1, batch 1, sizes
// that are no multiple of the micro-kernel's tiles), the same bits on 1, 2 and 3 threads, NaN
// propagation, the reference float32 path still callable, and float64 untouched by the switch.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "conv_test_util.h"
#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/kernels/cpu/gemm_ladder.h"
#include "mmgrad/mmgrad.h"
#include "op_test_util.h"

using namespace mmgrad;
using namespace mmgrad::testing;

namespace {

const std::vector<ConvCase>& odd_cases() {
  static const std::vector<ConvCase> cases = {
      {2, 3, 17, 19, 5, 3, 3, {1, 1}, {1, 1}, {1, 1}, true},    // 3 channels, odd sizes
      {1, 1, 28, 28, 32, 3, 3, {1, 1}, {1, 1}, {1, 1}, true},   // lesson 04's first layer
      {3, 7, 13, 11, 17, 3, 3, {2, 2}, {1, 1}, {1, 1}, true},   // stride 2
      {2, 5, 15, 16, 9, 3, 2, {2, 1}, {0, 1}, {1, 2}, false},   // mixed stride, dilation
      {2, 4, 12, 12, 6, 3, 3, {1, 1}, {2, 2}, {2, 2}, true},    // dilation 2
      {1, 6, 9, 10, 15, 1, 1, {1, 1}, {0, 0}, {1, 1}, true},    // 1x1
      {2, 8, 9, 9, 20, 1, 1, {2, 2}, {0, 0}, {1, 1}, false},    // 1x1 stride 2 (downsample)
      {2, 3, 23, 21, 16, 7, 7, {2, 2}, {3, 3}, {1, 1}, false},  // ResNet's stem, smaller
      {1, 2, 6, 7, 3, 3, 3, {1, 1}, {3, 2}, {1, 1}, true},      // padding past the kernel
      {2, 33, 7, 7, 29, 3, 3, {1, 1}, {1, 1}, {1, 1}, true},    // 7x7 maps (P < one tile)
      {1, 16, 5, 40, 31, 5, 3, {1, 3}, {2, 0}, {1, 1}, true},   // wide rows, stride 3
      {4, 40, 8, 8, 70, 3, 3, {1, 1}, {1, 1}, {1, 1}, false},   // K = 360 > one k block
      {12, 1, 28, 28, 8, 3, 3, {1, 1}, {1, 1}, {1, 1}, true},   // dW in per-block partials
      {5, 20, 5, 3, 16, 3, 3, {1, 1}, {1, 1}, {1, 1}, false},   // P = 15: tiles span images
      {2, 3, 9, 70, 16, 7, 7, {2, 2}, {3, 3}, {1, 1}, true},    // stride 2, long rows (SIMD)
      {1, 4, 5, 66, 8, 1, 1, {2, 2}, {0, 0}, {1, 1}, false},    // 1x1/2 up to the image end
      {3, 8, 10, 9, 64, 3, 3, {1, 1}, {1, 1}, {1, 1}, true},    // dW transposed (CK = 72)
      // long rows (OW x Cout >= 3584): dW from panels packed straight from the image
      {2, 8, 3, 56, 64, 3, 3, {1, 1}, {1, 1}, {1, 1}, true},    // ... as dW^T
      {2, 64, 2, 60, 70, 1, 1, {1, 1}, {0, 0}, {1, 1}, true},   // ... as dW
      {1, 8, 5, 140, 64, 3, 3, {2, 2}, {1, 1}, {1, 1}, false},  // ... at stride 2
      // strided forwards with C >= 14 run as im2col + the ladder GEMM (conv2d_fast_forward)
      {3, 14, 11, 13, 15, 3, 3, {2, 2}, {1, 1}, {1, 1}, true},  // C = MR, odd sizes, bias
      {2, 20, 9, 7, 33, 1, 1, {2, 2}, {0, 0}, {1, 1}, true},    // 1x1/2, odd sizes
      {2, 14, 4, 4, 3, 3, 3, {2, 2}, {1, 1}, {1, 1}, true},     // tiny: the ladder's small GEMM
      {1, 16, 8, 9, 8, 3, 3, {2, 1}, {2, 1}, {2, 1}, false},    // stride (2, 1), dilation 2
      // stride 1, C fills under 90% of the 14-row tiles: input gradient by GEMM + col2im
      {2, 32, 9, 8, 24, 3, 3, {1, 1}, {1, 1}, {1, 1}, true},
      // ... and C = 64 on rows of 30 pixels (no multiple of 32), GEMM tiles fuller: the same
      {2, 64, 6, 30, 20, 3, 3, {1, 1}, {1, 1}, {1, 1}, false},
      // ... but rows of exactly 32 pixels: the transposed implicit GEMM
      {1, 64, 3, 32, 20, 3, 3, {1, 1}, {1, 1}, {1, 1}, true},
      // dW from channels-last panels: channel tails (C = 19, 8k + 3), rows of 11 pixels (8k + 3),
      // padding past the kernel, dilation, stride, 5x5, 1x1, C = 8 (runs of 8), dW^T
      {2, 19, 9, 11, 21, 3, 3, {1, 1}, {2, 3}, {2, 1}, true},
      {4, 24, 16, 21, 17, 5, 5, {2, 2}, {2, 2}, {1, 1}, false},
      {2, 40, 3, 60, 24, 1, 1, {1, 1}, {0, 0}, {1, 1}, true},
      {2, 8, 14, 14, 20, 3, 3, {1, 1}, {1, 1}, {1, 1}, true},
      {2, 16, 12, 12, 32, 3, 3, {1, 1}, {1, 1}, {1, 1}, false},
  };
  return cases;
}

}  // namespace

TEST_CASE("conv_fast: forward and both gradients match the float64 reference on odd shapes") {
  FastPath fast_on(true);
  uint64_t seed = 100;
  for (const ConvCase& c : odd_cases()) {
    INFO(describe_case(c));
    Grads got = run_conv(c, kFloat32, seed);
    Grads want = run_conv(c, kFloat64, seed);
    seed += 10;
    CHECK(scaled_diff(got.y, want.y) < 2e-6);
    CHECK(scaled_diff(got.gx, want.gx) < 2e-6);
    CHECK(scaled_diff(got.gw, want.gw) < 2e-6);
    if (c.bias) CHECK(scaled_diff(got.gb, want.gb) < 2e-6);
  }
}

TEST_CASE("conv_fast: the reference float32 path agrees with the fast path") {
  FastPath fast_on(true);
  uint64_t seed = 500;
  for (const ConvCase& c : odd_cases()) {
    INFO(describe_case(c));
    Grads fast = run_conv(c, kFloat32, seed);
    Grads ref;
    {
      FastPath off(false);
      ref = run_conv(c, kFloat32, seed);
    }
    seed += 10;
    CHECK(scaled_diff(fast.y, ref.y) < 2e-6);
    CHECK(scaled_diff(fast.gx, ref.gx) < 2e-6);
    CHECK(scaled_diff(fast.gw, ref.gw) < 2e-6);
  }
}

TEST_CASE("conv_fast: the same bits on 1, 2 and 3 threads") {
  FastPath fast_on(true);
  // big enough to run threaded (> 2^20 multiply-adds): several tasks, several k blocks
  const std::vector<ConvCase> cases = {
      {4, 32, 20, 20, 48, 3, 3, {1, 1}, {1, 1}, {1, 1}, true},
      {3, 16, 21, 19, 24, 3, 3, {2, 2}, {1, 1}, {1, 1}, false},
      {2, 3, 40, 40, 64, 7, 7, {2, 2}, {3, 3}, {1, 1}, false},
      // one input channel: small dW summed in per-block partials, input gradient via col2im
      {20, 1, 28, 28, 32, 3, 3, {1, 1}, {1, 1}, {1, 1}, true},
      {9, 20, 7, 7, 40, 3, 3, {1, 1}, {1, 1}, {1, 1}, true},     // panels across images
      {40, 16, 7, 7, 32, 3, 3, {1, 1}, {1, 1}, {1, 1}, true},    // staged, many column blocks
      {16, 8, 12, 12, 64, 3, 3, {1, 1}, {1, 1}, {1, 1}, false},  // dW transposed, threaded
      {4, 300, 5, 5, 40, 3, 3, {1, 1}, {1, 1}, {1, 1}, true},    // K = 2700: many k blocks
      {4, 16, 4, 60, 64, 3, 3, {1, 1}, {1, 1}, {1, 1}, true},    // direct dW panels, threaded
      {5, 16, 15, 15, 30, 3, 3, {2, 2}, {1, 1}, {1, 1}, true},   // im2col + ladder forward
      {1, 64, 20, 20, 40, 3, 3, {2, 2}, {1, 1}, {1, 1}, true},   // ... one image, ladder threads
      {6, 32, 10, 10, 24, 3, 3, {1, 1}, {1, 1}, {1, 1}, true},   // input gradient by col2im
      // dW from channels-last panels: threaded blocks, several images per block, partials
      {3, 35, 12, 12, 40, 3, 3, {1, 1}, {1, 1}, {1, 1}, false},
      {6, 32, 7, 7, 64, 3, 3, {1, 1}, {1, 1}, {1, 1}, false},
      {20, 16, 16, 16, 8, 3, 3, {1, 1}, {1, 1}, {1, 1}, true},
  };
  expect_same_bits_on_1_2_3_threads(
      cases, [](const ConvCase& c) { return run_conv(c, kFloat32, 7); }, describe_case);
}

TEST_CASE("conv_fast: NaN in the input or the weight reaches the outputs it touches") {
  FastPath fast_on(true);
  Tensor x = rnd({1, 3, 8, 8}, 1, kFloat32);
  Tensor w = rnd({4, 3, 3, 3}, 2, kFloat32);
  x.data_ptr<float>()[(0 * 8 + 2) * 8 + 5] = NAN;  // channel 0, row 2, column 5
  Tensor y = conv2d(x, w, {}, 1, 1);
  auto v = y.to_vector<double>();
  // outputs whose 3x3 window holds (2, 5): rows 1..3, columns 4..6, every output channel
  for (int64_t o = 0; o < 4; ++o)
    for (int64_t r = 0; r < 8; ++r)
      for (int64_t col = 0; col < 8; ++col) {
        const bool touched = r >= 1 && r <= 3 && col >= 4 && col <= 6;
        CHECK(std::isnan(v[static_cast<size_t>((o * 8 + r) * 8 + col)]) == touched);
      }
  Tensor w2 = w.clone();
  w2.data_ptr<float>()[27] = NAN;  // output channel 1, first tap
  Tensor y2 = conv2d(rnd({1, 3, 8, 8}, 3, kFloat32), w2, {}, 1, 1);
  auto v2 = y2.to_vector<double>();
  int nan0 = 0, nan1 = 0;
  for (int64_t i = 0; i < 64; ++i) {
    nan0 += std::isnan(v2[static_cast<size_t>(i)]);
    nan1 += std::isnan(v2[static_cast<size_t>(64 + i)]);
  }
  CHECK(nan0 == 0);
  CHECK(nan1 == 64);  // padding is a zero, and 0 * NaN is NaN (as PyTorch)
}

TEST_CASE("conv_fast: float64 does not take the fast path (same bits with the switch off)") {
  FastPath fast_on(true);
  const ConvCase c{2, 5, 11, 9, 7, 3, 3, {1, 2}, {1, 0}, {1, 1}, true};
  Grads on = run_conv(c, kFloat64, 42);
  Grads off;
  {
    FastPath f(false);
    off = run_conv(c, kFloat64, 42);
  }
  CHECK(bytes(on.y) == bytes(off.y));
  CHECK(bytes(on.gx) == bytes(off.gx));
  CHECK(bytes(on.gw) == bytes(off.gw));
  // and float32 (fast path) agrees with it to float32 rounding
  Grads f_on = run_conv(c, kFloat32, 42);
  CHECK(scaled_diff(f_on.y, on.y) < 2e-6);
}

TEST_CASE("conv_fast: empty batch and a batch of one image") {
  FastPath fast_on(true);
  Tensor x = Tensor::zeros({0, 3, 8, 8}, kFloat32).requires_grad_();
  Tensor w = rnd({4, 3, 3, 3}, 5, kFloat32).requires_grad_();
  Tensor y = conv2d(x, w, {}, 1, 1);
  CHECK(y.shape() == Shape{0, 4, 8, 8});
  y.sum().backward();
  CHECK(w.grad().abs().sum().item() == 0.0);
  // unbatched [C, H, W] input
  Tensor x3 = rnd({3, 9, 9}, 6, kFloat32);
  Tensor y3 = conv2d(x3, w.detach(), {}, 1, 1);
  Tensor y4 = conv2d(x3.unsqueeze(0), w.detach(), {}, 1, 1);
  CHECK(bytes(y3) == bytes(y4.squeeze(0)));
}

// 64-bit FNV-1a of a tensor's bytes.
static uint64_t conv_fast_fingerprint(const Tensor& t) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char b : bytes(t)) h = (h ^ b) * 1099511628211ull;
  return h;
}

TEST_CASE("conv_fast: outputs keep their bits through the packing rewrites (AVX-512 CPUs)") {
  // The fast path's results were fixed when the lessons were re-run with it (issue 17): later
  // speed work (packing, threading, layout) may not change a bit of them. These fingerprints
  // were recorded from the path as it was before the packers were vectorised (commit 6c75d0b);
  // every output is a sum in an order fixed by the shape (k blocks of 256), so any change of
  // that order shows here. They hold for the AVX-512 micro-kernel (14 x 32) only: on another
  // CPU the tiles, and so the bits, differ, and the test has nothing to compare.
  // One deliberate change since: the input gradient of some stride-1 convolutions now takes the
  // GEMM + col2im route instead of the transposed implicit GEMM (conv2d_fast_backward_input
  // gives the rule and the measurements: C = 16 and 33 fill their 14-row tiles badly; C = 40 on
  // 8-pixel rows, which the GEMM route's tiles hold better), and that sums in another order.
  // The gx fingerprints of seeds 1021, 1023, 1040 and 1046 were re-recorded then (branch
  // hconv); every other number kept its bits, including the strided forwards now routed through
  // im2col + the ladder GEMM (the same k blocks, the same sums). And the forward and weight
  // gradient of stride-1 convolutions with C <= 3 input channels and kernels up to 3x3 now take
  // the direct kernel of kernels/cpu/conv_small_cin.cpp, which sums in its own order: the y and
  // gw fingerprints of seed 1024 were re-recorded then (its gx, and seed 1026's 7x7/2, are
  // still the implicit GEMM's).
  if (cpu::ladder::best_isa() != cpu::ladder::Isa::Avx512) {
    MESSAGE("[skipped: the fingerprints are those of the AVX-512 micro-kernel]");
    return;
  }
  FastPath fast_on(true);
  struct Known {
    int64_t N, C, H, W, Cout, KH, KW, sh, sw, ph, pw, dh, dw;
    bool bias;
    uint64_t seed, y, gx, gw;
  };
  const std::vector<Known> known = {
      {2, 5, 15, 16, 9, 3, 2, 2, 1, 0, 1, 1, 2, false, 1015, 0x19cdd38a1a984a23ull,
       0x975f39cd5c128050ull, 0xabf5fde48bc5780cull},
      {2, 33, 7, 7, 29, 3, 3, 1, 1, 1, 1, 1, 1, true, 1021, 0x5b2b35529223c6b7ull,
       0x90ea76b39f0742a9ull, 0x1c2bf056a35e0af2ull},
      {1, 16, 5, 40, 31, 5, 3, 1, 3, 2, 0, 1, 1, true, 1022, 0x3b135350466cf8c5ull,
       0x5ea1ee99d2ebfa68ull, 0x7108af6db3d1a971ull},
      {4, 40, 8, 8, 70, 3, 3, 1, 1, 1, 1, 1, 1, false, 1023, 0x6ff261802d2ca7feull,
       0x029bde6d1e209cceull, 0xc53cf87776a0e7b2ull},
      {12, 1, 28, 28, 8, 3, 3, 1, 1, 1, 1, 1, 1, true, 1024, 0xcfc9713d0964825cull,
       0x7c9f385bf2f8310aull, 0x294f4108b2791089ull},
      {2, 3, 9, 70, 16, 7, 7, 2, 2, 3, 3, 1, 1, true, 1026, 0x51406a687a1184a6ull,
       0x06018c6d747a2be5ull, 0x81d9574fc7f26e1aull},
      {3, 16, 21, 19, 24, 3, 3, 2, 2, 1, 1, 1, 1, false, 1031, 0xea284d8dd0ddd97cull,
       0x2581a67a68f0cfa8ull, 0x2deefde825894d00ull},
      {3, 8, 10, 9, 64, 3, 3, 1, 1, 1, 1, 1, 1, true, 1037, 0xd58518bc67128e90ull,
       0x0bcf3f7c79fc9ae0ull, 0xdf45d4cc4af227f4ull},
      {2, 8, 40, 40, 64, 3, 3, 2, 2, 1, 1, 1, 1, true, 1039, 0x68c3f4d37757a012ull,
       0x44831831f0e214daull, 0x997ae25babab894dull},
      {6, 16, 9, 9, 32, 3, 3, 1, 1, 1, 1, 1, 1, true, 1040, 0xe1a7021880cbce94ull,
       0xcec14c23d80e91d1ull, 0xf05bb8d501fb7494ull},
      {4, 300, 5, 5, 40, 3, 3, 1, 1, 1, 1, 1, 1, true, 1042, 0x0e62a4fb1b5eddc7ull,
       0x0c356e8b3ee7b3f8ull, 0xfc587cc83457c3c5ull},
      {2, 8, 3, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1, true, 1043, 0x89b2484aaa7fb8e5ull,
       0xec49bd8049229962ull, 0xaa806e67099dd65eull},
      {2, 64, 2, 60, 70, 1, 1, 1, 1, 0, 0, 1, 1, true, 1044, 0xc9493fd1fe2fa880ull,
       0xd45432ad179779d8ull, 0x5b33410b7dc0a6b9ull},
      {1, 8, 5, 140, 64, 3, 3, 2, 2, 1, 1, 1, 1, false, 1045, 0x84fd8c4639a39a4eull,
       0xabd7ac399be2296bull, 0x76afe78f4d452bebull},
      {4, 16, 4, 60, 64, 3, 3, 1, 1, 1, 1, 1, 1, true, 1046, 0xedb5521a5b08f9b1ull,
       0x4fd1883e9b8e5771ull, 0x4e5e2869a00568ceull},
      {3, 5, 6, 80, 48, 3, 3, 1, 1, 1, 1, 1, 1, false, 1047, 0xb3cdf99b73dbb12cull,
       0xf817ff54886fcd5eull, 0x0f4567b327eaf1abull},
      // Recorded from the path before the weight gradient's channels-last panels and the packer's
      // per-run masks (commit f028774), for shapes that now take them: the same bits. C = 24 on
      // 11-pixel rows with padding (2, 3) and dilation (2, 1); C = 19 (a channel tail), 5x5/2;
      // C = 8 (four runs per panel row); blocks of 6 images; 1x1 C = 40 on 60-pixel rows;
      // per-block partials (N = 20, dW 8 x 144); dW^T (C = 16, Cout = 32); the bench case's
      // channels (64 -> 64 at 32x32).
      {2, 24, 9, 11, 40, 3, 3, 1, 1, 2, 3, 2, 1, true, 1050, 0x50c52360b1086730ull,
       0x5ff73e3181881dc8ull, 0xfd41e10d15f394eeull},
      {4, 19, 16, 21, 33, 5, 5, 2, 2, 2, 2, 1, 1, false, 1051, 0x5218234666644d71ull,
       0x34e52145f9bf23dbull, 0xe3d12ce2f2a6cb14ull},
      {2, 8, 14, 14, 20, 3, 3, 1, 1, 1, 1, 1, 1, true, 1052, 0xd39590b14de198ccull,
       0x9adfb85327ace8c4ull, 0xd1303670dedf9c3eull},
      {6, 32, 7, 7, 64, 3, 3, 1, 1, 1, 1, 1, 1, false, 1053, 0x33619fa0b9ac453bull,
       0x58db475682ec8197ull, 0x6b6718312cf0422eull},
      {2, 40, 3, 60, 24, 1, 1, 1, 1, 0, 0, 1, 1, true, 1054, 0xa2162584bee56522ull,
       0xbf663cfb842d97ccull, 0x07aae4adcfbb75c1ull},
      {20, 16, 16, 16, 8, 3, 3, 1, 1, 1, 1, 1, 1, true, 1055, 0x0943622da387e480ull,
       0x159557b526c8a614ull, 0xb55abe4d67d55bbfull},
      {2, 16, 12, 12, 32, 3, 3, 1, 1, 1, 1, 1, 1, false, 1056, 0x8238fda9aee7fcb0ull,
       0xb628ad3c090150a6ull, 0x9e549c7faf16302full},
      {2, 64, 32, 32, 64, 3, 3, 1, 1, 1, 1, 1, 1, false, 1057, 0xe90a1f4232c23750ull,
       0xfdd7c90a5e2619cfull, 0x86f252590d81a224ull},
  };
  for (const Known& k : known) {
    INFO("x [" << k.N << ", " << k.C << ", " << k.H << ", " << k.W << "] w [" << k.Cout << ", "
               << k.C << ", " << k.KH << ", " << k.KW << "] seed " << k.seed);
    Generator gen(k.seed);
    Tensor x = Tensor::randn({k.N, k.C, k.H, k.W}, kFloat32, &gen).requires_grad_();
    Tensor w = Tensor::randn({k.Cout, k.C, k.KH, k.KW}, kFloat32, &gen).requires_grad_();
    Tensor b = k.bias ? Tensor::randn({k.Cout}, kFloat32, &gen).requires_grad_() : Tensor();
    Tensor y = conv2d(x, w, b, Pair2{k.sh, k.sw}, Pair2{k.ph, k.pw}, Pair2{k.dh, k.dw});
    Tensor g = Tensor::randn(y.shape(), kFloat32, &gen);
    y.backward(g);
    CHECK(conv_fast_fingerprint(y) == k.y);
    CHECK(conv_fast_fingerprint(x.grad()) == k.gx);
    CHECK(conv_fast_fingerprint(w.grad()) == k.gw);
  }
}
