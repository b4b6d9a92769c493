// Empty inputs follow PyTorch, forward and backward (docs/semantics.md, "Empty inputs"):
//   sum = 0, mean = NaN, var = NaN (no degrees of freedom), logsumexp = -inf; max / min / argmax /
//   argmin of no elements throw a named mmgrad::Error; losses: mean = NaN, sum = 0, none = empty;
//   softmax, layer_norm, normalize, ... of empty inputs are empty; matmul with an empty inner
//   dimension is zeros. Every backward gives gradients of the inputs' shapes, without throwing.
// Each case runs in float32 and float64.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core_test_util.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/nn/layers.h"
#include "mmgrad/nn/losses.h"

using namespace mmgrad;
using namespace mmgrad::testing;

namespace {

const DType kFloats[] = {kFloat32, kFloat64};

// A leaf of random values that requires grad.
Tensor leaf(const Shape& s, DType dt, uint64_t seed = 1) {
  Generator g(seed);
  return Tensor::randn(s, dt, &g).requires_grad_();
}

// Backward of y (through its sum when y is not a scalar: an empty y sums to 0).
void backprop(const Tensor& y) { (y.dim() == 0 ? y : y.sum()).backward(); }

bool all_nan(const Tensor& t) {
  for (double v : vals(t))
    if (!std::isnan(v)) return false;
  return t.numel() > 0;
}

bool all_equal(const Tensor& t, double want) {
  for (double v : vals(t))
    if (!(v == want)) return false;
  return t.numel() > 0;
}

// x has a gradient of its own shape and dtype (empty inputs: empty; otherwise all `want`).
void check_grad(const Tensor& x, double want = 0.0) {
  REQUIRE(x.grad().defined());
  CHECK(x.grad().shape() == x.shape());
  CHECK(x.grad().dtype() == x.dtype());
  if (x.numel() > 0) CHECK(all_equal(x.grad(), want));
}

const double kInf = std::numeric_limits<double>::infinity();

}  // namespace

// ---- sum ---------------------------------------------------------------------------------------

TEST_CASE("empty inputs: sum of no elements is 0, over every dim and with keepdim") {
  for (DType dt : kFloats) {
    const std::string dtype = dtype_name(dt);
    CAPTURE(dtype);
    Tensor x = leaf({0, 3}, dt);
    Tensor all = sum(x);
    CHECK(all.shape() == Shape{});
    CHECK(all.dtype() == dt);
    CHECK(all.item() == 0.0);
    Tensor d0 = sum(x, {0});
    CHECK(d0.shape() == Shape{3});
    CHECK(all_equal(d0, 0.0));
    CHECK(sum(x, {0}, true).shape() == Shape{1, 3});
    CHECK(sum(x, {1}).shape() == Shape{0});  // a non-empty dim of an empty tensor: empty
    CHECK(sum(x, {1}, true).shape() == Shape{0, 1});
    backprop(d0);
    check_grad(x);

    Tensor y = leaf({2, 0, 4}, dt);
    Tensor s = y.sum({1});
    CHECK(s.shape() == Shape{2, 4});
    CHECK(all_equal(s, 0.0));
    CHECK(all_equal(sum(y, {0, 1}), 0.0));
    CHECK(sum(y, {-1, 0}).shape() == Shape{0});
    backprop(s);
    check_grad(y);

    Tensor z = leaf({0}, dt);
    backprop(sum(z));
    check_grad(z);
  }
  // Integers too: the empty sum is 0 of the input's dtype.
  Tensor i = sum(Tensor::zeros({0, 2}, kInt64), {0});
  CHECK(i.dtype() == kInt64);
  CHECK(i.to_vector<int64_t>() == std::vector<int64_t>{0, 0});
}

TEST_CASE("empty inputs: the reduce kernels sum an empty dimension to 0 and reject max over it") {
  // The ops handle empty reductions before the kernel; the kernel guards itself as well.
  for (DType dt : {kFloat32, kFloat64, kInt64}) {
    const std::string dtype = dtype_name(dt);
    CAPTURE(dtype);
    Tensor in = Tensor::zeros({3, 0, 2}, dt);
    Tensor out = Tensor::full({3, 1, 2}, 7.0, dt);
    backend(kCPU).reduce(ReduceOp::Sum, in.desc(), out.desc());
    CHECK(all_equal(out, 0.0));
    Tensor out2 = Tensor::full({1, 1, 2}, 7.0, dt);
    backend(kCPU).reduce(ReduceOp::Sum, in.desc(), out2.desc());
    CHECK(all_equal(out2, 0.0));
    for (ReduceOp op : {ReduceOp::Max, ReduceOp::Min}) {
      Tensor o = Tensor::zeros({3, 1, 2}, dt);
      CHECK_ERROR(backend(kCPU).reduce(op, in.desc(), o.desc()), "reduce", "empty dimension");
    }
    Tensor arg = Tensor::zeros({3, 1, 2}, kInt64);
    CHECK_ERROR(backend(kCPU).reduce(ReduceOp::ArgMax, in.desc(), arg.desc()), "reduce",
                "empty dimension");
  }
}

// ---- mean ---------------------------------------------------------------------------------------

TEST_CASE("empty inputs: mean of no elements is NaN (0 / 0), with an empty gradient") {
  for (DType dt : kFloats) {
    const std::string dtype = dtype_name(dt);
    CAPTURE(dtype);
    Tensor e = leaf({0}, dt);
    Tensor m = mean(e);
    CHECK(m.shape() == Shape{});
    CHECK(m.dtype() == dt);
    CHECK(std::isnan(m.item()));
    backprop(m);
    check_grad(e);

    Tensor x = leaf({0, 3}, dt);
    CHECK(std::isnan(mean(x).item()));
    Tensor d0 = mean(x, {0});
    CHECK(d0.shape() == Shape{3});
    CHECK(all_nan(d0));
    CHECK(mean(x, {0}, true).shape() == Shape{1, 3});
    CHECK(all_nan(mean(x, {0}, true)));
    CHECK(x.mean({1}).shape() == Shape{0});  // averaging 3 numbers per row, of no rows
    backprop(d0);
    check_grad(x);

    Tensor y = leaf({2, 0, 4}, dt);
    Tensor m1 = mean(y, {1}, true);
    CHECK(m1.shape() == Shape{2, 1, 4});
    CHECK(all_nan(m1));
    CHECK(all_nan(mean(y, {0, 1})));
    backprop(m1);
    check_grad(y);
  }
}

TEST_CASE("empty inputs: mean of non-empty inputs is unchanged") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, kFloat64).requires_grad_();
  CHECK(mean(x).item() == 3.5);
  CHECK(vals(mean(x, {0})) == std::vector<double>{2.5, 3.5, 4.5});
  backprop(mean(x));
  CHECK(allclose(x.grad(), std::vector<double>(6, 1.0 / 6.0), 0));
}

// ---- var ----------------------------------------------------------------------------------------

TEST_CASE("empty inputs: var with no degrees of freedom is NaN (or inf), as in PyTorch") {
  for (DType dt : kFloats) {
    const std::string dtype = dtype_name(dt);
    CAPTURE(dtype);
    // No elements: 0 / 0 for every correction.
    for (int64_t c : {0, 1, 2}) {
      CAPTURE(c);
      Tensor e = leaf({0}, dt);
      Tensor v = var(e, c);
      CHECK(v.shape() == Shape{});
      CHECK(std::isnan(v.item()));
      backprop(v);
      check_grad(e);
    }
    // One element with Bessel's correction: (x - mean)^2 / 0 = 0 / 0 = NaN, gradient NaN.
    Tensor one = leaf({1}, dt);
    Tensor v1 = var(one);
    CHECK(std::isnan(v1.item()));
    backprop(v1);
    CHECK(std::isnan(one.grad().to_vector<double>()[0]));
    // ... but with correction 0 it is a proper 0, gradient 0.
    Tensor one0 = leaf({1}, dt);
    Tensor v0 = var(one0, 0);
    CHECK(v0.item() == 0.0);
    backprop(v0);
    check_grad(one0, 0.0);
    // n - correction < 0: PyTorch divides by max(0, n - correction) = 0, so equal values give
    // NaN and different values inf.
    CHECK(var(Tensor::from_vector({1, 2}, {2}, dt), 3).item() == kInf);
    CHECK(var(Tensor::from_vector({1, 2}, {2}, dt), 2).item() == kInf);
    CHECK(std::isnan(var(Tensor::from_vector({3, 3}, {2}, dt), 2).item()));
    // Per row: a [4, 1] tensor over dim 1 has one element per row.
    Tensor rows = leaf({4, 1}, dt);
    Tensor vr = var(rows, Shape{1});
    CHECK(vr.shape() == Shape{4});
    CHECK(all_nan(vr));
    backprop(vr);
    CHECK(all_nan(rows.grad()));
    // Over an empty dimension: NaN for every kept position; the gradient is empty.
    Tensor x = leaf({0, 3}, dt);
    Tensor vx = var(x, Shape{0});
    CHECK(vx.shape() == Shape{3});
    CHECK(all_nan(vx));
    CHECK(x.var({1}, 1, true).shape() == Shape{0, 1});
    backprop(vx);
    check_grad(x);
    Tensor y = leaf({2, 0, 4}, dt);
    Tensor vy = var(y, {0, 1}, 0, true);
    CHECK(vy.shape() == Shape{1, 1, 4});
    CHECK(all_nan(vy));
    backprop(vy);
    check_grad(y);
  }
}

TEST_CASE("empty inputs: var with degrees of freedom is unchanged") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4}, {4}, kFloat64).requires_grad_();
  CHECK(var(x).item() == doctest::Approx(5.0 / 3.0));
  CHECK(var(x, 0).item() == doctest::Approx(1.25));
  backprop(var(x));
  // d var / d x_i = 2 (x_i - mean) / (n - 1)
  CHECK(allclose(x.grad(), {-1.0, -1.0 / 3.0, 1.0 / 3.0, 1.0}, 1e-12));
  CHECK_ERROR(var(x, -1), "var", "correction", "-1");
}

// ---- logsumexp ---------------------------------------------------------------------------------

TEST_CASE("empty inputs: logsumexp over an empty dimension is -inf") {
  for (DType dt : kFloats) {
    const std::string dtype = dtype_name(dt);
    CAPTURE(dtype);
    Tensor e = leaf({0}, dt);
    Tensor l = logsumexp(e, 0);
    CHECK(l.shape() == Shape{});
    CHECK(l.dtype() == dt);
    CHECK(l.item() == -kInf);
    backprop(l);
    check_grad(e);

    Tensor x = leaf({3, 0}, dt);
    Tensor r = logsumexp(x, 1);
    CHECK(r.shape() == Shape{3});
    CHECK(all_equal(r, -kInf));
    Tensor rk = logsumexp(x, -1, true);
    CHECK(rk.shape() == Shape{3, 1});
    CHECK(all_equal(rk, -kInf));
    CHECK(logsumexp(x, 0).shape() == Shape{0});  // over a non-empty dim of an empty tensor
    backprop(rk);
    check_grad(x);

    Tensor y = leaf({2, 0, 4}, dt);
    Tensor ly = logsumexp(y, 1);
    CHECK(ly.shape() == Shape{2, 4});
    CHECK(all_equal(ly, -kInf));
    CHECK(logsumexp(y, 2).shape() == Shape{2, 0});
    backprop(ly);
    check_grad(y);
  }
}

TEST_CASE("empty inputs: logsumexp of non-empty inputs is unchanged") {
  Tensor x = Tensor::from_vector({0, std::log(3.0), -INFINITY, -INFINITY}, {2, 2}, kFloat64);
  std::vector<double> l = vals(logsumexp(x, 1));
  CHECK(l[0] == doctest::Approx(std::log(4.0)));
  CHECK(l[1] == -kInf);  // a row of -inf (fully masked) is still -inf
}

// ---- max / min / argmax / argmin ----------------------------------------------------------------

TEST_CASE("empty inputs: max, min, argmax, argmin of no elements raise a named error") {
  for (DType dt : kFloats) {
    const std::string dtype = dtype_name(dt);
    CAPTURE(dtype);
    Tensor e = Tensor::zeros({0}, dt);
    CHECK_ERROR(max(e), "max", "size 0", "[0]");
    CHECK_ERROR(min(e), "min", "size 0", "[0]");
    CHECK_ERROR(e.max(), "max", "size 0");
    CHECK_ERROR(max(Tensor::zeros({3, 0}, dt), 1), "max", "size 0", "[3, 0]");
    CHECK_ERROR(min(Tensor::zeros({3, 0}, dt), -1, true), "min", "size 0");
    CHECK_ERROR(max(Tensor::zeros({0, 3}, dt)), "max", "size 0");
    CHECK_ERROR(argmax(Tensor::zeros({2, 0}, dt), 1), "argmax", "size 0");
    CHECK_ERROR(argmin(Tensor::zeros({2, 0}, dt), 1, true), "argmin", "size 0");
    CHECK_ERROR(argmax(e), "argmax", "size 0");
    CHECK_ERROR(argmax(Tensor::zeros({0, 4}, dt), 0), "argmax", "size 0");
    CHECK_ERROR(topk(e, 1), "topk", "k = 1");
  }
  CHECK_ERROR(max(Tensor::zeros({0}, kInt64)), "max", "size 0");
}

TEST_CASE("empty inputs: max and argmax over a non-empty dim of an empty tensor are empty") {
  for (DType dt : kFloats) {
    const std::string dtype = dtype_name(dt);
    CAPTURE(dtype);
    Tensor x = leaf({0, 3}, dt);
    Tensor m = max(x, 1);
    CHECK(m.shape() == Shape{0});
    CHECK(min(x, 1, true).shape() == Shape{0, 1});
    CHECK(argmax(x, 1).shape() == Shape{0});
    CHECK(argmin(x, -1, true).shape() == Shape{0, 1});
    backprop(m);
    check_grad(x);
    SortResult s = sort(x, 1);
    CHECK(s.values.shape() == Shape{0, 3});
    CHECK(topk(x, 2, 1).values.shape() == Shape{0, 2});
    CHECK(topk(Tensor::zeros({3, 0}, dt), 0, 1).values.shape() == Shape{3, 0});
  }
}

// ---- losses -------------------------------------------------------------------------------------

TEST_CASE("empty inputs: mse_loss of empty tensors is NaN (mean), 0 (sum), empty (none)") {
  using R = Reduction;
  for (DType dt : kFloats) {
    const std::string dtype = dtype_name(dt);
    CAPTURE(dtype);
    for (Shape s : {Shape{0}, Shape{0, 3}, Shape{4, 0, 2}}) {
      CAPTURE(s.str());
      Tensor a = leaf(s, dt, 1), b = leaf(s, dt, 2);
      Tensor m = mse_loss(a, b);
      CHECK(m.shape() == Shape{});
      CHECK(m.dtype() == dt);
      CHECK(std::isnan(m.item()));
      backprop(m);
      check_grad(a);
      check_grad(b);

      Tensor a2 = leaf(s, dt, 3), b2 = leaf(s, dt, 4);
      Tensor sm = mse_loss(a2, b2, R::Sum);
      CHECK(sm.item() == 0.0);
      backprop(sm);
      check_grad(a2);
      check_grad(b2);

      Tensor a3 = leaf(s, dt, 5), b3 = leaf(s, dt, 6);
      Tensor nn = mse_loss(a3, b3, R::None);
      CHECK(nn.shape() == s);
      backprop(nn);
      check_grad(a3);
      check_grad(b3);
    }
  }
}

TEST_CASE("empty inputs: cross_entropy of an empty batch is NaN (mean), 0 (sum), empty (none)") {
  using R = Reduction;
  for (DType dt : kFloats) {
    const std::string dtype = dtype_name(dt);
    CAPTURE(dtype);
    // [N = 0, C], [0, 0] (no classes either: allowed only without rows) and [N, C, d1 = 0].
    struct Case {
      Shape logits, target;
    };
    for (const Case& c :
         {Case{{0, 5}, {0}}, Case{{0, 0}, {0}}, Case{{2, 3, 0}, {2, 0}}, Case{{0, 3, 4}, {0, 4}}}) {
      CAPTURE(c.logits.str());
      Tensor t = Tensor::zeros(c.target, kInt64);
      Tensor x = leaf(c.logits, dt);
      Tensor m = cross_entropy(x, t);
      CHECK(m.shape() == Shape{});
      CHECK(std::isnan(m.item()));
      backprop(m);
      check_grad(x);

      Tensor xs = leaf(c.logits, dt);
      Tensor s = cross_entropy(xs, t, {.reduction = R::Sum});
      CHECK(s.item() == 0.0);
      backprop(s);
      check_grad(xs);

      Tensor xn = leaf(c.logits, dt);
      Tensor n = cross_entropy(xn, t, {.label_smoothing = 0.1, .reduction = R::None});
      CHECK(n.shape() == c.target);
      backprop(n);
      check_grad(xn);
    }
    // Rows but no classes: no target can be valid.
    CHECK_ERROR(cross_entropy(Tensor::zeros({2, 0}, dt), Tensor::zeros({2}, kInt64)),
                "cross_entropy", "no classes", "[2, 0]");
    CHECK_ERROR(cross_entropy(Tensor::zeros({0}, dt), Tensor::zeros({}, kInt64)), "cross_entropy",
                "no classes");
    // Every target ignored: the mean has nothing to average (NaN) and the gradient is 0.
    Tensor x = leaf({3, 4}, dt);
    Tensor m = cross_entropy(x, Tensor::full({3}, -100.0, kInt64));
    CHECK(std::isnan(m.item()));
    backprop(m);
    check_grad(x, 0.0);
  }
}

TEST_CASE("empty inputs: contrastive and triplet losses of an empty batch are NaN") {
  for (DType dt : kFloats) {
    const std::string dtype = dtype_name(dt);
    CAPTURE(dtype);
    Tensor scale = Tensor::scalar(std::log(1 / 0.07), dt).requires_grad_();
    Tensor a = leaf({0, 3}, dt, 1), b = leaf({0, 3}, dt, 2), c = leaf({0, 3}, dt, 3);

    nn::ClipLossResult r = nn::clip_loss(a, b, scale);
    CHECK(std::isnan(r.loss.item()));
    CHECK(r.logits_per_image.shape() == Shape{0, 0});
    CHECK(r.logits_per_text.shape() == Shape{0, 0});
    backprop(r.loss);
    check_grad(a);
    check_grad(b);
    check_grad(scale, 0.0);  // the scale multiplies no logit

    Tensor a2 = leaf({0, 3}, dt, 4), b2 = leaf({0, 3}, dt, 5);
    Tensor tw = nn::three_way_contrastive_loss(a2, b2, c, scale);
    CHECK(std::isnan(tw.item()));
    backprop(tw);
    check_grad(a2);
    check_grad(c);

    Tensor a3 = leaf({0, 3}, dt, 6), b3 = leaf({0, 3}, dt, 7);
    Tensor pc = nn::pair_contrastive_loss(a3, b3, Tensor::zeros({0}, kBool));
    CHECK(std::isnan(pc.item()));
    backprop(pc);
    check_grad(a3);
    check_grad(b3);

    // An embedding of dimension 0 is still a mistake.
    CHECK_ERROR(nn::clip_loss(Tensor::zeros({2, 0}, dt), Tensor::zeros({2, 0}, dt), scale),
                "clip_loss", "at least one column", "[2, 0]");

    using R = Reduction;
    for (R red : {R::Mean, R::Sum, R::None}) {
      CAPTURE(static_cast<int>(red));
      Tensor an = leaf({0, 4}, dt, 8), po = leaf({0, 4}, dt, 9), ne = leaf({0, 4}, dt, 10);
      Tensor t = nn::triplet_margin_loss(an, po, ne, 1.0, 2.0, 1e-6, true, red);
      if (red == R::Mean) CHECK(std::isnan(t.item()));
      if (red == R::Sum) CHECK(t.item() == 0.0);
      if (red == R::None) CHECK(t.shape() == Shape{0});
      backprop(t);
      check_grad(an);
      check_grad(po);
      check_grad(ne);
    }
  }
}

// ---- softmax, normalisations, matmul, layers ----------------------------------------------------

TEST_CASE("empty inputs: softmax and log_softmax of empty tensors are empty") {
  for (DType dt : kFloats) {
    const std::string dtype = dtype_name(dt);
    CAPTURE(dtype);
    for (Shape s : {Shape{0}, Shape{0, 3}, Shape{3, 0}, Shape{2, 0, 4}}) {
      for (int64_t dim : {0, -1}) {
        CAPTURE(s.str());
        CAPTURE(dim);
        Tensor x = leaf(s, dt), y = leaf(s, dt);
        Tensor p = softmax(x, dim), lp = log_softmax(y, dim);
        CHECK(p.shape() == s);
        CHECK(lp.shape() == s);
        backprop(p);
        backprop(lp);
        check_grad(x);
        check_grad(y);
      }
    }
  }
}

TEST_CASE("empty inputs: layer_norm, normalize and cosine_similarity of an empty batch") {
  for (DType dt : kFloats) {
    const std::string dtype = dtype_name(dt);
    CAPTURE(dtype);
    Tensor x = leaf({0, 4}, dt), w = leaf({4}, dt, 2), b = leaf({4}, dt, 3);
    Tensor y = layer_norm(x, {4}, w, b);
    CHECK(y.shape() == Shape{0, 4});
    backprop(y);
    check_grad(x);
    check_grad(w, 0.0);  // no row contributes
    check_grad(b, 0.0);
    Tensor x3 = leaf({2, 0, 3}, dt);
    CHECK(layer_norm(x3, {3}).shape() == Shape{2, 0, 3});

    Tensor n = leaf({0, 3}, dt);
    Tensor yn = normalize(n, 1);
    CHECK(yn.shape() == Shape{0, 3});
    backprop(yn);
    check_grad(n);
    // Rows of dimension 0 have norm 0: normalize leaves them (empty) as they are.
    CHECK(normalize(Tensor::zeros({3, 0}, dt), 1).shape() == Shape{3, 0});

    Tensor c1 = leaf({0, 5}, dt, 4), c2 = leaf({0, 5}, dt, 5);
    Tensor cs = cosine_similarity(c1, c2, 1);
    CHECK(cs.shape() == Shape{0});
    backprop(cs);
    check_grad(c1);
    check_grad(c2);
  }
}

TEST_CASE("empty inputs: batch_norm of an empty batch is empty and keeps the running statistics") {
  for (DType dt : kFloats) {
    const std::string dtype = dtype_name(dt);
    CAPTURE(dtype);
    for (bool training : {true, false}) {
      CAPTURE(training);
      for (Shape s : {Shape{0, 3}, Shape{0, 3, 2, 2}}) {
        Tensor x = leaf(s, dt), w = leaf({3}, dt, 2), b = leaf({3}, dt, 3);
        Tensor rm = Tensor::full({3}, 0.5, dt), rv = Tensor::full({3}, 2.0, dt);
        Tensor y = batch_norm(x, rm, rv, w, b, training);
        CHECK(y.shape() == s);
        CHECK(all_equal(rm, 0.5));  // a mean over no values must not reach the buffers
        CHECK(all_equal(rv, 2.0));
        backprop(y);
        check_grad(x);
        check_grad(w, 0.0);
        check_grad(b, 0.0);
      }
    }
    // Without running statistics, too.
    CHECK(batch_norm(Tensor::zeros({0, 3}, dt), {}, {}, {}, {}, true).shape() == Shape{0, 3});
    // One value per channel is still PyTorch's error in training.
    CHECK_ERROR(batch_norm(Tensor::zeros({1, 3}, dt), {}, {}, {}, {}, true), "batch_norm",
                "more than 1 value");
    nn::BatchNorm2d bn(2);
    bn.to(dt);
    bn.train();
    CHECK(bn(Tensor::zeros({0, 2, 3, 3}, dt)).shape() == Shape{0, 2, 3, 3});
    CHECK(all_equal(bn.running_mean, 0.0));
    CHECK(all_equal(bn.running_var, 1.0));
  }
}

TEST_CASE("empty inputs: matmul with an empty inner dimension is zeros") {
  for (DType dt : kFloats) {
    const std::string dtype = dtype_name(dt);
    CAPTURE(dtype);
    struct Case {
      Shape a, b, out;
    };
    for (const Case& c : {Case{{2, 0}, {0, 3}, {2, 3}}, Case{{4, 2, 0}, {4, 0, 3}, {4, 2, 3}},
                          Case{{2, 0}, {3, 0, 5}, {3, 2, 5}}, Case{{0}, {0}, {}},
                          Case{{0}, {0, 3}, {3}}, Case{{2, 0}, {0}, {2}}}) {
      CAPTURE(c.a.str());
      CAPTURE(c.b.str());
      Tensor a = leaf(c.a, dt, 1), b = leaf(c.b, dt, 2);
      Tensor y = matmul(a, b);
      CHECK(y.shape() == c.out);
      CHECK(y.dtype() == dt);
      CHECK(all_equal(y, 0.0));
      backprop(y);
      check_grad(a);
      check_grad(b);
    }
    // Empty rows: an empty result; the other operand's gradient is zeros.
    Tensor a = leaf({0, 4}, dt, 3), b = leaf({4, 3}, dt, 4);
    Tensor y = matmul(a, b);
    CHECK(y.shape() == Shape{0, 3});
    backprop(y);
    check_grad(a);
    check_grad(b, 0.0);
  }
}

TEST_CASE("empty inputs: modules and indexing on an empty batch") {
  for (DType dt : kFloats) {
    const std::string dtype = dtype_name(dt);
    CAPTURE(dtype);
    nn::Linear lin(4, 3);
    lin.to(dt);
    Tensor x = leaf({0, 4}, dt);
    Tensor y = lin(x);
    CHECK(y.shape() == Shape{0, 3});
    backprop(y);
    check_grad(x);
    check_grad(lin.weight, 0.0);
    check_grad(lin.bias, 0.0);

    Tensor w = leaf({5, 3}, dt);
    Tensor e = embedding(w, Tensor::zeros({0}, kInt64));
    CHECK(e.shape() == Shape{0, 3});
    backprop(e);
    check_grad(w, 0.0);

    Tensor v = leaf({4, 3}, dt, 2);
    Tensor s = index_select(v, 0, Tensor::zeros({0}, kInt64));
    CHECK(s.shape() == Shape{0, 3});
    backprop(s);
    check_grad(v, 0.0);

    Tensor g = leaf({2, 3}, dt, 3);
    Tensor gg = gather(g, 1, Tensor::zeros({2, 0}, kInt64));
    CHECK(gg.shape() == Shape{2, 0});
    backprop(gg);
    check_grad(g, 0.0);

    Tensor p = leaf({0, 3}, dt, 4), q = leaf({0, 3}, dt, 5);
    Tensor st = stack({p, q}, 1);
    CHECK(st.shape() == Shape{0, 2, 3});
    Tensor ct = cat({p, q}, 0);
    CHECK(ct.shape() == Shape{0, 3});
    backprop(add(st.sum(), ct.sum()));
    check_grad(p);
    check_grad(q);

    CHECK(one_hot(Tensor::zeros({0}, kInt64), 4).shape() == Shape{0, 4});
    CHECK_ERROR(one_hot(Tensor::zeros({0}, kInt64), -1), "one_hot", "cannot infer");
  }
}
