// max_pool2d with padding (kernels/cpu/conv.cpp's two-pass loop over the part of each window
// inside the image) against the rule written out element by element in the test: over the
// window in (kh, kw) order, padding skipped, a larger value or a NaN takes over. So the first
// maximum wins ties (a -0 before a +0 stays), a window holding NaN gives its last NaN, and the
// gradient goes to that one pixel. Data with many ties, signed zeros and NaN; float32 and
// float64; strides and paddings that leave windows cut by the edge.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "mmgrad/mmgrad.h"
#include "op_test_util.h"

using namespace mmgrad;
using mmgrad::testing::bytes;

namespace {

struct PoolCase {
  int64_t N, C, H, W, k, s, p, d;
};

// x rounded to halves with every third value negated: ties and -0 / +0 everywhere; every
// `nan_every`-th value NaN (0: none).
Tensor pool_test_input(const PoolCase& c, DType dt, uint64_t seed, int64_t nan_every) {
  Generator gen(seed);
  Tensor x = Tensor::randn({c.N, c.C, c.H, c.W}, kFloat64, &gen).contiguous();
  double* v = x.data_ptr<double>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    v[i] = std::nearbyint(v[i] * 2.0) * (i % 3 ? 1.0 : -1.0);
    if (nan_every && i % nan_every == 5) v[i] = std::numeric_limits<double>::quiet_NaN();
  }
  return x.to(dt);
}

}  // namespace

TEST_CASE("max_pool2d with padding: first maximum, last NaN, padding never wins") {
  const std::vector<PoolCase> cases = {
      {2, 3, 17, 19, 3, 2, 1, 1},  // ResNet's stem pool, odd sizes
      {1, 2, 9, 8, 2, 2, 1, 1},    // even kernel, padding on one side only used
      {1, 4, 10, 11, 3, 1, 1, 1},  // stride 1
      {2, 2, 13, 7, 5, 2, 2, 1},   // padding 2
      {1, 1, 6, 6, 3, 3, 1, 1},    // stride equal to the kernel
  };
  uint64_t seed = 300;
  for (DType dt : {kFloat32, kFloat64})
    for (int64_t nan_every : {int64_t{0}, int64_t{23}})
      for (const PoolCase& c : cases) {
        INFO("x [" << c.N << ", " << c.C << ", " << c.H << ", " << c.W << "] kernel " << c.k
                   << " stride " << c.s << " padding " << c.p
                   << (dt == kFloat32 ? " float32" : " float64") << " NaN every " << nan_every);
        Tensor x = pool_test_input(c, dt, seed++, nan_every).requires_grad_();
        Tensor y = max_pool2d(x, c.k, c.s, c.p);
        const int64_t OH = y.size(2), OW = y.size(3);
        Tensor g = Tensor::ones(y.shape(), dt);
        y.backward(g);
        const std::vector<double> xv = x.detach().to_vector<double>(), yv = y.to_vector<double>();
        std::vector<double> gx(xv.size(), 0.0);
        bool values_ok = true;
        for (int64_t plane = 0; plane < c.N * c.C; ++plane)
          for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow) {
              double best = -std::numeric_limits<double>::infinity();
              int64_t arg = -1;
              for (int64_t kh = 0; kh < c.k; ++kh)
                for (int64_t kw = 0; kw < c.k; ++kw) {
                  const int64_t ih = oh * c.s - c.p + kh * c.d, iw = ow * c.s - c.p + kw * c.d;
                  if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
                  const int64_t src = (plane * c.H + ih) * c.W + iw;
                  const double v = xv[static_cast<size_t>(src)];
                  if (arg < 0 || v > best || std::isnan(v)) best = v, arg = src;
                }
              const double got = yv[static_cast<size_t>((plane * OH + oh) * OW + ow)];
              // the same number, bit for bit (NaN as NaN, -0 as -0)
              values_ok &= std::isnan(best) ? std::isnan(got)
                                            : std::memcmp(&got, &best, sizeof(double)) == 0;
              if (arg >= 0) gx[static_cast<size_t>(arg)] += 1.0;
            }
        CHECK(values_ok);
        CHECK(x.grad().to_vector<double>() == gx);  // the gradient lands on the chosen pixel
      }
}

TEST_CASE("max_pool2d without a graph computes the values alone, with the same bits") {
  // Under NoGradGuard (or for an input that needs no gradient) no winner is recorded and the
  // backend runs a values-only kernel: every output must equal the recording kernel's, bit for
  // bit (ties between -0 and +0, NaN), on 1, 2 and 3 threads.
  const std::vector<PoolCase> cases = {
      {2, 3, 17, 19, 3, 2, 1, 1},  // ResNet's stem pool, odd sizes
      {1, 2, 9, 8, 2, 2, 1, 1},    // even kernel with padding
      {1, 4, 10, 11, 3, 1, 1, 1},  // stride 1
      {2, 2, 13, 7, 5, 2, 2, 1},   // padding 2
      {1, 2, 9, 9, 3, 2, 0, 1},    // no padding, 3x3/2
      {2, 3, 9, 13, 2, 2, 0, 1},   // the 2x2/2 pool (float32: its own kernel), odd sizes
      {1, 1, 2, 40, 2, 2, 0, 1},   // one output row, more than 16 windows
      {1, 2, 4, 4, 3, 3, 1, 1},    // windows that hang over both edges
  };
  uint64_t seed = 500;
  const int saved = get_num_threads();
  for (DType dt : {kFloat32, kFloat64})
    for (int64_t nan_every : {int64_t{0}, int64_t{7}})
      for (const PoolCase& c : cases) {
        INFO("x [" << c.N << ", " << c.C << ", " << c.H << ", " << c.W << "] kernel " << c.k
                   << " stride " << c.s << " padding " << c.p
                   << (dt == kFloat32 ? " float32" : " float64") << " NaN every " << nan_every);
        Tensor x = pool_test_input(c, dt, seed++, nan_every);
        Tensor recorded = max_pool2d(x.clone().requires_grad_(), c.k, c.s, c.p);
        REQUIRE(recorded.grad_fn() != nullptr);
        CHECK(bytes(max_pool2d(x, c.k, c.s, c.p)) == bytes(recorded.detach()));
        for (int threads : {1, 2, 3}) {
          set_num_threads(threads);
          NoGradGuard no_grad;
          Tensor y = max_pool2d(x.clone().requires_grad_(), c.k, c.s, c.p);
          CHECK(y.grad_fn() == nullptr);
          CHECK(bytes(y) == bytes(recorded.detach()));
        }
        set_num_threads(saved);
      }
}
