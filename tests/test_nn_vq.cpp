// nn::VectorQuantizer (issue 15): the nearest code against a brute-force double loop, float64
// gradcheck of the parts that have gradients (straight-through output, codebook and commitment
// losses), the straight-through gradient equal to the identity (and exactly zero without it),
// perplexity, the dead-code restart, bad inputs naming the op, and CPU/CUDA agreement (skipped
// without a GPU).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include "core_test_util.h"  // have_gpu
#include "mmgrad/mmgrad.h"
#include "mmgrad/nn/init.h"
#include "mmgrad/nn/vector_quantizer.h"

using namespace mmgrad;

namespace {

// argmin_k ||z_n - e_k||^2 in double, first k on ties.
std::vector<int64_t> brute_force(const std::vector<double>& z, const std::vector<double>& e,
                                 int64_t N, int64_t K, int64_t D) {
  std::vector<int64_t> out(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    double best = std::numeric_limits<double>::infinity();
    for (int64_t k = 0; k < K; ++k) {
      double d = 0;
      for (int64_t j = 0; j < D; ++j) {
        const double v = z[static_cast<size_t>(n * D + j)] - e[static_cast<size_t>(k * D + j)];
        d += v * v;
      }
      if (d < best) {
        best = d;
        out[static_cast<size_t>(n)] = k;
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE("VectorQuantizer: indices match a brute-force search and quantized holds those codes") {
  manual_seed(3);
  nn::VectorQuantizer vq(7, 4);
  nn::init::normal_(vq.weight);  // spread codes (the default init puts them all near 0)
  const Tensor z = Tensor::randn({3, 5, 4});
  const nn::VQOutput o = vq.quantize(z);
  CHECK(o.indices.shape() == Shape{3, 5});
  CHECK(o.indices.dtype() == kInt64);
  CHECK(o.quantized.shape() == z.shape());
  const auto want = brute_force(z.to_vector<double>(), vq.weight.to_vector<double>(), 15, 7, 4);
  CHECK(o.indices.to_vector<int64_t>() == want);
  CHECK(vq.nearest(z).to_vector<int64_t>() == want);
  // The value of z + sg(q - z) is q (to rounding): the chosen codebook rows.
  const auto q = o.quantized.reshape({15, 4}).to_vector<double>();
  const auto e = vq.weight.to_vector<double>();
  for (int64_t n = 0; n < 15; ++n)
    for (int64_t j = 0; j < 4; ++j)
      CHECK(q[static_cast<size_t>(n * 4 + j)] ==
            doctest::Approx(e[static_cast<size_t>(want[static_cast<size_t>(n)] * 4 + j)])
                .epsilon(1e-6));
  // A non-contiguous z (a transposed view) gives the same answer as its contiguous copy.
  const Tensor zt = Tensor::randn({4, 6}).t();  // [6, 4], not contiguous
  CHECK(vq.nearest(zt).to_vector<int64_t>() == vq.nearest(zt.contiguous()).to_vector<int64_t>());
  // The losses: both are mean ||z - q||^2 in value.
  double mse = 0;
  const auto zv = z.to_vector<double>();
  for (size_t i = 0; i < zv.size(); ++i) mse += (zv[i] - q[i]) * (zv[i] - q[i]);
  mse /= static_cast<double>(zv.size());
  CHECK(o.codebook_loss.item() == doctest::Approx(mse).epsilon(1e-5));
  CHECK(o.commitment_loss.item() == doctest::Approx(mse).epsilon(1e-5));
  CHECK(o.loss.item() == doctest::Approx(1.25 * mse).epsilon(1e-5));
}

// Finite differences see values only, and detach changes no value: they check the TRUE derivative
// of each output. So each piece is checked where its gradient is the true one: the codebook loss
// and the quantized codes (without straight-through) with respect to the codebook, the
// commitment loss with respect to z. The straight-through output's gradient is NOT the true
// derivative (its value does not move with z at all): the next test checks it is the identity.
TEST_CASE("VectorQuantizer: float64 gradcheck of the parts that have true gradients") {
  manual_seed(5);
  // z near distinct codes (code + small noise): a finite-difference step cannot change a choice.
  const Tensor codes = Tensor::randn({6, 3}, kFloat64);
  const Tensor pick = Tensor::from_vector(std::vector<int64_t>{0, 2, 5, 1, 2, 4, 3, 0});
  const Tensor z = (index_select(codes, 0, pick) + 0.1 * Tensor::randn({8, 3}, kFloat64))
                       .reshape({2, 4, 3})
                       .detach();
  // d/d codebook of q = e_k* and of the codebook loss mean (e_k* - z)^2.
  const GradcheckResult r1 = gradcheck(
      [](const std::vector<Tensor>& x) {
        const nn::VQOutput o = nn::vector_quantize(x[0], x[1], 0.25, false);
        return cat({o.quantized.reshape({-1}), o.codebook_loss.reshape({1})});
      },
      {z, codes.clone().requires_grad_()});
  INFO(r1.report);
  CHECK(r1.ok);
  CHECK(r1.elements_checked == 18);
  // d/dz of the commitment loss mean (z - e_k*)^2 (the code is constant near z).
  for (bool st : {true, false}) {
    const GradcheckResult r2 = gradcheck(
        [st](const std::vector<Tensor>& x) {
          return nn::vector_quantize(x[0], x[1], 0.25, st).commitment_loss;
        },
        {z.clone().requires_grad_(), codes});
    INFO(r2.report);
    CHECK(r2.ok);
    CHECK(r2.elements_checked == 24);
  }
  // And the sanity of the check itself: the straight-through output against finite differences
  // FAILS (analytic identity, numeric 0), which is exactly what straight-through means.
  const GradcheckResult r3 = gradcheck(
      [](const std::vector<Tensor>& x) { return nn::vector_quantize(x[0], x[1]).quantized; },
      {z.clone().requires_grad_(), codes});
  CHECK_FALSE(r3.ok);
  CHECK(std::abs(r3.worst_analytic - r3.worst_numeric) > 0.5);
}

TEST_CASE("VectorQuantizer: the straight-through gradient is the identity, without it zero") {
  manual_seed(7);
  nn::VectorQuantizer vq(5, 3);
  nn::init::normal_(vq.weight);
  const Tensor z = Tensor::randn({4, 3}).requires_grad_();
  const Tensor w = Tensor::randn({4, 3});  // an upstream gradient ("the decoder's")
  // With: d(sum(w * z_q))/dz = w exactly, as if quantization were not there.
  (vq.quantize(z).quantized * w).sum().backward();
  REQUIRE(z.grad().defined());
  CHECK(z.grad().to_vector<float>() == w.to_vector<float>());
  // The codebook gets no gradient from z_q (q - z is detached): only its loss trains it.
  CHECK((!vq.weight.grad().defined() || vq.weight.grad().abs().sum().item() == 0.0));

  // Without: the decoder's gradient ends in the codebook rows; the encoder side gets nothing.
  nn::VectorQuantizer plain(5, 3, 0.25, /*straight_through=*/false);
  plain.weight.set_data(vq.weight.detach().clone());
  const Tensor z2 = z.detach().clone().requires_grad_();
  const nn::VQOutput o = plain.quantize(z2);
  (o.quantized * w).sum().backward();
  CHECK((!z2.grad().defined() || z2.grad().abs().sum().item() == 0.0));
  REQUIRE(plain.weight.grad().defined());
  // Code k receives the sum of w over the rows that picked it.
  const auto idx = o.indices.to_vector<int64_t>();
  const auto wv = w.to_vector<double>();
  std::vector<double> want(15, 0.0);
  for (size_t n = 0; n < 4; ++n)
    for (size_t j = 0; j < 3; ++j) want[static_cast<size_t>(idx[n]) * 3 + j] += wv[n * 3 + j];
  const auto g = plain.weight.grad().to_vector<double>();
  for (size_t i = 0; i < 15; ++i) CHECK(g[i] == doctest::Approx(want[i]).epsilon(1e-6));
  // The commitment loss alone does reach z (it is what pulls the encoder towards its codes).
  const Tensor z3 = z.detach().clone().requires_grad_();
  plain.quantize(z3).commitment_loss.backward();
  REQUIRE(z3.grad().defined());
  CHECK(z3.grad().abs().sum().item() > 0.0);
}

TEST_CASE("VectorQuantizer: perplexity and codes used") {
  CHECK(nn::VectorQuantizer::perplexity_of(Tensor::from_vector({5.0, 5.0, 5.0, 5.0})) ==
        doctest::Approx(4.0));
  CHECK(nn::VectorQuantizer::perplexity_of(Tensor::from_vector({0.0, 9.0, 0.0})) ==
        doctest::Approx(1.0));
  // p = (1/2, 1/4, 1/4): H = 1.5 log 2, perplexity 2^1.5.
  CHECK(nn::VectorQuantizer::perplexity_of(Tensor::from_vector({2.0, 1.0, 1.0, 0.0})) ==
        doctest::Approx(std::pow(2.0, 1.5)));
  // All vectors equal: one code used, perplexity 1.
  nn::VectorQuantizer vq(8, 2);
  const nn::VQOutput o = vq.quantize(Tensor::ones({10, 2}));
  CHECK(o.codes_used == 1);
  CHECK(o.perplexity == doctest::Approx(1.0));
  const Tensor counts = vq.code_counts(Tensor::ones({10, 2}));
  CHECK(counts.dtype() == kInt64);
  CHECK(counts.sum().item() == 10.0);
  CHECK(counts.max().item() == 10.0);
}

TEST_CASE("VectorQuantizer: dead codes restart onto encoder outputs and get used") {
  manual_seed(11);
  nn::VectorQuantizer vq(16, 2);  // default init: every code within 1/16 of the origin
  // Data in four clusters far from the origin: one or two codes win everything (collapse).
  std::vector<float> pts;
  for (int c = 0; c < 4; ++c)
    for (int i = 0; i < 50; ++i) {
      pts.push_back(static_cast<float>(5 * std::cos(c * 1.5708) + 0.3 * std::sin(i * 0.7)));
      pts.push_back(static_cast<float>(5 * std::sin(c * 1.5708) + 0.3 * std::cos(i * 1.3)));
    }
  const Tensor z = Tensor::from_vector(pts, {200, 2});
  const int64_t before = vq.quantize(z).codes_used;
  CHECK(before <= 8);
  const Tensor old = vq.weight.detach().clone();
  const int64_t restarted = vq.restart_dead_codes(z, 1);
  CHECK(restarted == 16 - before);
  // Every restarted code now sits exactly on one of z's vectors, each on a different one.
  const auto w = vq.weight.to_vector<float>();
  const auto o = old.to_vector<float>();
  std::set<std::pair<float, float>> placed;
  int moved = 0;
  for (size_t k = 0; k < 16; ++k) {
    if (w[2 * k] == o[2 * k] && w[2 * k + 1] == o[2 * k + 1]) continue;
    ++moved;
    bool on_z = false;
    for (size_t i = 0; i < 200; ++i)
      on_z |= pts[2 * i] == w[2 * k] && pts[2 * i + 1] == w[2 * k + 1];
    CHECK(on_z);
    placed.insert({w[2 * k], w[2 * k + 1]});
  }
  CHECK(moved == restarted);
  CHECK(static_cast<int64_t>(placed.size()) == restarted);
  const nn::VQOutput after = vq.quantize(z);
  CHECK(after.codes_used > before + 4);
  CHECK(after.perplexity > 8.0);
  // The old winners near the origin may now lose everything to the restarted codes: a second
  // restart moves them too, and then every code sits on its own data point and is used.
  const int64_t second = vq.restart_dead_codes(z, 1);
  CHECK(second == 16 - after.codes_used);
  CHECK(vq.quantize(z).codes_used == 16);
  CHECK(vq.restart_dead_codes(z, 1) == 0);
  // Reproducible: the same seed restarts the same codes onto the same vectors.
  manual_seed(11);
  nn::VectorQuantizer a(16, 2);
  a.restart_dead_codes(z, 1);
  manual_seed(11);
  nn::VectorQuantizer b(16, 2);
  b.restart_dead_codes(z, 1);
  CHECK(a.weight.to_vector<float>() == b.weight.to_vector<float>());
}

TEST_CASE("VectorQuantizer: bad inputs are errors naming the op") {
  CHECK_ERROR(nn::VectorQuantizer(0, 4), "VectorQuantizer", "positive", "0");
  CHECK_ERROR(nn::VectorQuantizer(4, 4, -1.0), "VectorQuantizer", "beta", "-1");
  nn::VectorQuantizer vq(4, 3);
  CHECK_ERROR(vq.quantize(Tensor::zeros({5, 4})), "VectorQuantizer", "[5, 4]", "[..., 3]");
  CHECK_ERROR(vq.quantize(Tensor::zeros({5, 3}, kFloat64)), "VectorQuantizer", "float64",
              "float32");
  CHECK_ERROR(vq.quantize(Tensor::zeros({5, 3}, kInt64)), "VectorQuantizer", "int64");
  CHECK_ERROR(vq.quantize(Tensor::zeros({0, 3})), "VectorQuantizer", "[0, 3]",
              "at least one vector");
  CHECK_ERROR(vq.quantize(Tensor()), "VectorQuantizer", "undefined");
  CHECK_ERROR(vq.lookup(Tensor::from_vector(std::vector<int64_t>{0, 4})), "embedding", "4");
  CHECK_ERROR(vq.lookup(Tensor::zeros({2})), "VectorQuantizer", "int64");
  CHECK_ERROR(vq.restart_dead_codes(Tensor::zeros({5, 3}), 0), "VectorQuantizer", "min_count");
  CHECK_ERROR(nn::VectorQuantizer::perplexity_of(Tensor::zeros({3})), "perplexity_of",
              "counts are 0");
  CHECK_ERROR(nn::vector_quantize(Tensor::zeros({2, 3}), Tensor::zeros({3})), "VectorQuantizer",
              "codebook", "[3]");
}

TEST_CASE("VectorQuantizer: CPU and CUDA agree (skipped without a GPU)") {
  if (!mmgrad::testing::have_gpu("VectorQuantizer parity")) return;
  manual_seed(13);
  nn::VectorQuantizer vq(32, 8);
  nn::init::normal_(vq.weight);
  const Tensor z = Tensor::randn({4, 16, 8});
  const nn::VQOutput c = vq.quantize(z);
  vq.to(kCUDA);
  const nn::VQOutput g = vq.quantize(z.cuda());
  CHECK(g.indices.cpu().to_vector<int64_t>() == c.indices.to_vector<int64_t>());
  CHECK(g.loss.item() == doctest::Approx(c.loss.item()).epsilon(1e-5));
  CHECK(g.perplexity == doctest::Approx(c.perplexity));
  CHECK(vq.restart_dead_codes(z.cuda(), 2) >= 0);
}
