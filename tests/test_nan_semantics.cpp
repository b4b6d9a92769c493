// PyTorch's semantics at the edges of the ops that compare, and the gradients that follow
// PyTorch's conventions (docs/semantics.md has the table):
//   - NaN propagation: relu, maximum/minimum, clamp (NaN element and NaN bound), max/min
//     reductions and argmax/argmin, sort/topk, max_pool2d -- values and gradients, with inf, ties
//     and zeros around, in float32 and float64, on contiguous and strided inputs;
//   - gradient conventions: pow at 0, max(x) against max(x, dim) at ties, cosine_similarity's
//     eps rule, gelu exact and tanh.
// There is no PyTorch here: each expected value is worked out from PyTorch's formulas (quoted
// beside it), not read from a run.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core_test_util.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/nn/activation.h"

using namespace mmgrad;
using mmgrad::testing::vals;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double inf = std::numeric_limits<double>::infinity();

// Equal element by element, NaN equal to NaN; within rtol (relative, absolute below 1).
bool same(const std::vector<double>& got, const std::vector<double>& want, double rtol = 0.0) {
  if (got.size() != want.size()) return false;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i]) != std::isnan(got[i])) return false;
    if (std::isnan(want[i]) || got[i] == want[i]) continue;
    if (std::isinf(want[i]) || std::isinf(got[i])) return false;
    if (std::abs(got[i] - want[i]) > rtol * std::max(1.0, std::abs(want[i]))) return false;
  }
  return true;
}

std::string show(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

#define CHECK_SAME(got, ...)                                                                \
  do {                                                                                      \
    const std::vector<double> got_ = (got), want_ = __VA_ARGS__;                            \
    CHECK_MESSAGE(same(got_, want_), #got " = " << show(got_) << ", want " << show(want_)); \
  } while (0)

#define CHECK_CLOSE(got, tol, ...)                                                               \
  do {                                                                                           \
    const std::vector<double> got_ = (got), want_ = __VA_ARGS__;                                 \
    CHECK_MESSAGE(same(got_, want_, tol), #got " = " << show(got_) << ", want " << show(want_)); \
  } while (0)

// A leaf holding v in dtype dt: contiguous, or (strided) every other element of a [n, 2] buffer,
// so the op sees stride 2. grad() reads the leaf's gradient back at the same positions.
struct Leaf {
  Tensor base, x;
  Leaf(const std::vector<double>& v, DType dt, bool strided) {
    const int64_t n = static_cast<int64_t>(v.size());
    if (!strided) {
      base = Tensor::from_vector(v, {n}, dt).requires_grad_();
      x = base;
    } else {
      std::vector<double> buf(2 * v.size(), 7.0);
      for (size_t i = 0; i < v.size(); ++i) buf[2 * i] = v[i];
      base = Tensor::from_vector(buf, {n, 2}, dt).requires_grad_();
      x = base.select(1, 0);
      CHECK(x.stride(0) == 2);
    }
  }
  std::vector<double> grad() const {
    return vals(base.dim() == 2 ? base.grad().select(1, 0) : base.grad());
  }
};

// Runs y = f(x) forward and sum(y) backward on both layouts and both float dtypes, calling
// check(y values, dL/dx, dtype) each time.
void each_layout(
    const std::vector<double>& v, const std::function<Tensor(const Tensor&)>& f,
    const std::function<void(const std::vector<double>&, const std::vector<double>&)>& check) {
  for (DType dt : {kFloat32, kFloat64})
    for (bool strided : {false, true}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(strided);
      Leaf l(v, dt, strided);
      Tensor y = f(l.x);
      CHECK(y.dtype() == dt);
      std::vector<double> yv = vals(y);
      y.sum().backward();
      check(yv, l.grad());
    }
}

// The same for two inputs.
void each_layout2(const std::vector<double>& a, const std::vector<double>& b,
                  const std::function<Tensor(const Tensor&, const Tensor&)>& f,
                  const std::function<void(const std::vector<double>&, const std::vector<double>&,
                                           const std::vector<double>&)>& check) {
  for (DType dt : {kFloat32, kFloat64})
    for (bool strided : {false, true}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(strided);
      Leaf la(a, dt, strided), lb(b, dt, !strided);
      Tensor y = f(la.x, lb.x);
      std::vector<double> yv = vals(y);
      y.sum().backward();
      check(yv, la.grad(), lb.grad());
    }
}

}  // namespace

// ==== NaN and comparisons
// ==========================================================================

TEST_CASE("nan: relu passes NaN through, and its gradient (PyTorch's threshold_backward)") {
  // PyTorch: relu(x) = clamp_min(x, 0) keeps NaN; its backward is threshold_backward(g, y, 0) =
  // (y <= 0 ? 0 : g), so the gradient at NaN is g, at 0 and below 0 it is 0.
  each_layout(
      {kNaN, -inf, -1.0, -0.0, 0.0, 0.5, 2.0, inf}, [](const Tensor& x) { return relu(x); },
      [](const std::vector<double>& y, const std::vector<double>& gx) {
        CHECK_SAME(y, {kNaN, 0, 0, 0, 0, 0.5, 2, inf});
        CHECK_SAME(gx, {1, 0, 0, 0, 0, 1, 1, 1});
      });
}

TEST_CASE("nan: maximum and minimum propagate NaN from either side, gradients PyTorch's") {
  // PyTorch: maximum(a, b) is NaN when a or b is; its gradient
  //   da = where(a == b, g/2, g).masked_fill(a < b, 0),  db = ... .masked_fill(a > b, 0)
  // so where a NaN is involved no comparison holds and both inputs get the whole g.
  const std::vector<double> a{kNaN, 1.0, kNaN, 2.0, 3.0, -inf, 0.0, -0.0};
  const std::vector<double> b{1.0, kNaN, kNaN, 2.0, inf, 5.0, -1.0, 0.0};
  each_layout2(
      a, b, [](const Tensor& x, const Tensor& y) { return maximum(x, y); },
      [](const std::vector<double>& y, const std::vector<double>& ga,
         const std::vector<double>& gb) {
        CHECK_SAME(y, {kNaN, kNaN, kNaN, 2, inf, 5, 0, 0});
        CHECK_SAME(ga, {1, 1, 1, 0.5, 0, 0, 1, 0.5});
        CHECK_SAME(gb, {1, 1, 1, 0.5, 1, 1, 0, 0.5});
      });
  each_layout2(
      a, b, [](const Tensor& x, const Tensor& y) { return minimum(x, y); },
      [](const std::vector<double>& y, const std::vector<double>& ga,
         const std::vector<double>& gb) {
        CHECK_SAME(y, {kNaN, kNaN, kNaN, 2, 3, -inf, -1, 0});
        CHECK_SAME(ga, {1, 1, 1, 0.5, 1, 1, 0, 0.5});
        CHECK_SAME(gb, {1, 1, 1, 0.5, 0, 0, 1, 0.5});
      });
  // Broadcast: a NaN in the [3] operand poisons its whole column of the [2, 3] result; the
  // gradient of the broadcast operand sums over the rows.
  Tensor m = Tensor::from_vector({1.0, 5.0, 2.0, 4.0, 0.0, 6.0}, {2, 3}, kFloat64).requires_grad_();
  Tensor r = Tensor::from_vector({3.0, kNaN, 2.0}, {3}, kFloat64).requires_grad_();
  Tensor y = maximum(m, r);
  CHECK_SAME(vals(y), {3, kNaN, 2, 4, kNaN, 6});
  y.sum().backward();
  CHECK_SAME(vals(m.grad()), {0, 1, 0.5, 1, 1, 1});
  CHECK_SAME(vals(r.grad()), {1, 2, 0.5});
  // int64: unchanged.
  CHECK_SAME(vals(maximum(Tensor::from_vector({1.0, 7.0}, {2}, kInt64),
                          Tensor::from_vector({4.0, 2.0}, {2}, kInt64))),
             {4, 7});
}

TEST_CASE("nan: clamp keeps a NaN element, a NaN bound makes everything NaN") {
  // PyTorch: clamp(x, min, max) with a NaN min or max fills the result with NaN (clamp_out);
  // clamp_min / clamp_max with a NaN bound too (clamp_min_out). Otherwise
  // min(max(x, lo), hi), where NaN x stays NaN. Gradient (clamp_backward):
  // where(x >= lo & x <= hi, g, 0): bounds included, 0 at NaN (the comparisons fail).
  const std::vector<double> v{kNaN, -2.0, -1.0, 0.5, 1.0, 2.0, -inf, inf};
  each_layout(
      v, [](const Tensor& x) { return clamp(x, -1, 1); },
      [](const std::vector<double>& y, const std::vector<double>& gx) {
        CHECK_SAME(y, {kNaN, -1, -1, 0.5, 1, 1, -1, 1});
        CHECK_SAME(gx, {0, 0, 1, 1, 1, 0, 0, 0});
      });
  each_layout(
      v, [](const Tensor& x) { return clamp(x, kNaN, 1); },
      [](const std::vector<double>& y, const std::vector<double>& gx) {
        CHECK_SAME(y, std::vector<double>(8, kNaN));
        CHECK_SAME(gx, std::vector<double>(8, 0.0));
      });
  each_layout(
      v, [](const Tensor& x) { return clamp(x, -1, kNaN); },
      [](const std::vector<double>& y, const std::vector<double>&) {
        CHECK_SAME(y, std::vector<double>(8, kNaN));
      });
  each_layout(
      v, [](const Tensor& x) { return clamp_min(x, kNaN); },
      [](const std::vector<double>& y, const std::vector<double>&) {
        CHECK_SAME(y, std::vector<double>(8, kNaN));
      });
  each_layout(
      v, [](const Tensor& x) { return clamp_max(x, kNaN); },
      [](const std::vector<double>& y, const std::vector<double>&) {
        CHECK_SAME(y, std::vector<double>(8, kNaN));
      });
  // clamp_min(x, 0) is relu's value but clamp's gradient: 1 at x = 0 (bound included), 0 at NaN.
  each_layout(
      v, [](const Tensor& x) { return clamp_min(x, 0.0); },
      [](const std::vector<double>& y, const std::vector<double>& gx) {
        CHECK_SAME(y, {kNaN, 0, 0, 0.5, 1, 2, 0, inf});
        CHECK_SAME(gx, {0, 0, 0, 1, 1, 1, 0, 1});
      });
  // Infinite bounds clamp nothing; NaN still gets no gradient.
  each_layout(
      v, [](const Tensor& x) { return clamp(x, -inf, inf); },
      [&](const std::vector<double>& y, const std::vector<double>& gx) {
        CHECK_SAME(y, v);
        CHECK_SAME(gx, {0, 1, 1, 1, 1, 1, 1, 1});
      });
  // An int64 tensor cannot hold the NaN a NaN bound asks for: a named error (PyTorch raises too).
  Tensor xi = Tensor::from_vector({1.0, 5.0}, {2}, kInt64);
  CHECK_ERROR(clamp(xi, kNaN, 3), "clamp", "NaN", "int64");
  CHECK_ERROR(clamp_min(xi, kNaN), "clamp", "NaN");
  CHECK_SAME(vals(clamp(xi, 0, 3)), {1, 3});
}

TEST_CASE("nan: max and min over everything give NaN, the gradient split among the NaNs") {
  // PyTorch: max(x) is NaN if any element is; its backward (evenly_distribute_backward) splits g
  // among the elements equal to the result, or, when the result is NaN, among the NaN elements.
  each_layout(
      {1.0, kNaN, 3.0, kNaN, -inf}, [](const Tensor& x) { return max(x); },
      [](const std::vector<double>& y, const std::vector<double>& gx) {
        CHECK_SAME(y, {kNaN});
        CHECK_SAME(gx, {0, 0.5, 0, 0.5, 0});
      });
  each_layout(
      {1.0, kNaN, 3.0, kNaN, -inf}, [](const Tensor& x) { return min(x); },
      [](const std::vector<double>& y, const std::vector<double>& gx) {
        CHECK_SAME(y, {kNaN});
        CHECK_SAME(gx, {0, 0.5, 0, 0.5, 0});
      });
  // Ties (also of infinities) share g evenly.
  each_layout(
      {1.0, 3.0, 3.0, 3.0}, [](const Tensor& x) { return max(x); },
      [](const std::vector<double>& y, const std::vector<double>& gx) {
        CHECK_SAME(y, {3});
        CHECK_CLOSE(gx, 1e-7, {0, 1.0 / 3, 1.0 / 3, 1.0 / 3});
      });
  each_layout(
      {-inf, -inf, 2.0}, [](const Tensor& x) { return min(x); },
      [](const std::vector<double>& y, const std::vector<double>& gx) {
        CHECK_SAME(y, {-inf});
        CHECK_SAME(gx, {0.5, 0.5, 0});
      });
  // A 2-D, transposed input: max over all of it.
  Tensor m = Tensor::from_vector({4.0, kNaN, 0.0, 4.0}, {2, 2}, kFloat32).requires_grad_();
  Tensor y = max(m.t());
  CHECK(std::isnan(y.item()));
  y.backward();
  CHECK_SAME(vals(m.grad()), {0, 1, 0, 0});
}

TEST_CASE("nan: max(x, dim) and argmax pick the first NaN, else the first extreme") {
  // PyTorch: max(x, dim) returns (values, indices); the index is the first NaN along dim if there
  // is one, else the first occurrence of the extreme, and the gradient goes to that one element
  // (value_selecting_reduction_backward), never split between ties. argmax/argmin pick the same
  // index.
  //   rows: [1 NaN NaN] -> NaN at 1;  [3 3 1] -> 3 at 0;  [-inf -inf -inf] -> -inf at 0;
  //         [0 -0 2] -> 2 at 2
  const std::vector<double> v{1, kNaN, kNaN, 3, 3, 1, -inf, -inf, -inf, 0, -0.0, 2};
  for (DType dt : {kFloat32, kFloat64})
    for (bool transposed : {false, true}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(transposed);
      // transposed: stored as [3, 4] and viewed as [4, 3] (dim 1 then has stride 4)
      std::vector<double> stored(12);
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 3; ++j) stored[transposed ? j * 4 + i : i * 3 + j] = v[i * 3 + j];
      Tensor base =
          Tensor::from_vector(stored, transposed ? Shape{3, 4} : Shape{4, 3}, dt).requires_grad_();
      Tensor x = transposed ? base.t() : base;
      Tensor y = max(x, 1);
      CHECK_SAME(vals(y), {kNaN, 3, -inf, 2});
      CHECK_SAME(vals(argmax(x, 1)), {1, 0, 0, 2});
      y.sum().backward();
      Tensor g = transposed ? base.grad().t() : base.grad();
      CHECK_SAME(vals(g.contiguous()), {0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1});
      // min along dim 1: [1 NaN NaN] -> NaN at 1; [3 3 1] -> 1 at 2; -inf at 0; [0 -0 2]: 0 and
      // -0 compare equal, so the first, 0 at 0.
      Tensor x2 = x.detach().requires_grad_();
      Tensor z = min(x2, 1, true);
      CHECK(z.shape() == Shape{4, 1});
      CHECK_SAME(vals(z), {kNaN, 1, -inf, 0});
      CHECK_SAME(vals(argmin(x2, 1)), {1, 2, 0, 0});
      z.sum().backward();
      CHECK_SAME(vals(x2.grad()), {0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0});
      // along dim 0 (the kept dim innermost: another kernel path): columns
      // [1 3 -inf 0] -> 3 at 1;  [NaN 3 -inf -0] -> NaN at 0;  [NaN 1 -inf 2] -> NaN at 0
      Tensor x3 = x.detach().requires_grad_();
      Tensor w = max(x3, 0);
      CHECK_SAME(vals(w), {3, kNaN, kNaN});
      CHECK_SAME(vals(argmax(x3, 0)), {1, 0, 0});
      w.sum().backward();
      CHECK_SAME(vals(x3.grad()), {0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0});
    }
  // Ties with no NaN: the first index takes all of g (PyTorch), not half each.
  Tensor t = Tensor::from_vector({2.0, 2.0, 1.0, 0.0}, {2, 2}, kFloat64).requires_grad_();
  t.max(1).sum().backward();
  CHECK_SAME(vals(t.grad()), {1, 0, 1, 0});
  // The flat argmax also finds the first NaN.
  CHECK(argmax(Tensor::from_vector({inf, 1.0, kNaN, kNaN}, {2, 2}, kFloat32)).item() == 2);
  // A 0-d input: max(x, 0) is x, gradient 1.
  Tensor s = Tensor::scalar(kNaN, kFloat64).requires_grad_();
  max(s, 0).backward();
  CHECK(s.grad().item() == 1.0);
}

TEST_CASE("nan: sort and topk order NaN above every number, +inf included") {
  // PyTorch: sort/topk treat NaN as larger than +inf; with stable sorting, equal values
  // (NaN among NaN) keep their input order.
  const std::vector<double> v{3, kNaN, -inf, 1, kNaN, inf};
  for (DType dt : {kFloat32, kFloat64})
    for (bool strided : {false, true}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(strided);
      Leaf l(v, dt, strided);
      Tensor x = l.x.detach();
      SortResult up = sort(x);
      CHECK_SAME(vals(up.values), {-inf, 1, 3, inf, kNaN, kNaN});
      CHECK_SAME(vals(up.indices), {2, 3, 0, 5, 1, 4});
      SortResult down = sort(x, -1, true);
      CHECK_SAME(vals(down.values), {kNaN, kNaN, inf, 3, 1, -inf});
      CHECK_SAME(vals(down.indices), {1, 4, 5, 0, 3, 2});
      SortResult top = topk(x, 3);
      CHECK_SAME(vals(top.values), {kNaN, kNaN, inf});
      CHECK_SAME(vals(top.indices), {1, 4, 5});
      SortResult bottom = topk(x, 2, -1, false);
      CHECK_SAME(vals(bottom.values), {-inf, 1});
      CHECK_SAME(vals(bottom.indices), {2, 3});
    }
}

TEST_CASE("nan: max_pool2d gives NaN for a window holding NaN, its index the last NaN") {
  // PyTorch's max pooling scans each window row by row with
  //   if (val > maxval || isnan(val)) { maxval = val; maxindex = index; }
  // starting from -inf: the first maximum wins ties, any NaN takes over, so a window with NaN
  // gives NaN at its *last* NaN, and the gradient goes there.
  // One 3x3 window (the whole image): NaNs at (0, 0) and (1, 1), 7 after them.
  const std::vector<double> img{kNaN, 1, 2, 3, kNaN, 4, 5, 6, 7};
  for (DType dt : {kFloat32, kFloat64})
    for (int64_t pad : {0, 1}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(pad);
      Tensor x = Tensor::from_vector(img, {1, 1, 3, 3}, dt).requires_grad_();
      Tensor y = max_pool2d(x, 3, 1, pad);
      y.backward(ones_like(y));
      if (pad == 0) {
        CHECK_SAME(vals(y), {kNaN});
        CHECK_SAME(vals(x.grad()), {0, 0, 0, 0, 1, 0, 0, 0, 0});
      } else {
        // 3x3 outputs; every window holds (1, 1) and the ones touching (0, 0) hold it first, so
        // each window's last NaN is (1, 1): all nine gradients land there.
        CHECK_SAME(vals(y), std::vector<double>(9, kNaN));
        CHECK_SAME(vals(x.grad()), {0, 0, 0, 0, 9, 0, 0, 0, 0});
      }
    }
  // 2x2 windows, stride 2, over a 2x4 image [NaN 5 | -inf -inf] / [NaN 7 | -inf -inf]:
  // window 0 holds two NaNs (the last, (1, 0), wins); window 1 is all -inf (the first wins).
  // Also on a transposed (strided) input, and with padding 1 (2x3 outputs, windows [NaN], [5 -inf],
  // [-inf] over [NaN], [7 -inf], [-inf]).
  const std::vector<double> v{kNaN, 5, -inf, -inf, kNaN, 7, -inf, -inf};
  std::vector<double> vt(8);  // v stored as [4, 2], so that its transpose is the image
  for (int h = 0; h < 2; ++h)
    for (int w = 0; w < 4; ++w) vt[w * 2 + h] = v[h * 4 + w];
  for (DType dt : {kFloat32, kFloat64})
    for (bool transposed : {false, true}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(transposed);
      Tensor base = transposed ? Tensor::from_vector(vt, {1, 1, 4, 2}, dt).requires_grad_()
                               : Tensor::from_vector(v, {1, 1, 2, 4}, dt).requires_grad_();
      Tensor x = transposed ? base.transpose(2, 3) : base;
      Tensor y = max_pool2d(x, 2);
      CHECK_SAME(vals(y), {kNaN, -inf});
      y.backward(ones_like(y));
      Tensor g = transposed ? base.grad().transpose(2, 3).contiguous() : base.grad();
      CHECK_SAME(vals(g), {0, 0, 1, 0, 1, 0, 0, 0});
      // padded: rows [-1, 0] and [1, 2]; columns [-1, 0], [1, 2], [3, 4]
      Tensor x2 = x.detach().requires_grad_();
      Tensor y2 = max_pool2d(x2, 2, 2, 1);
      CHECK_SAME(vals(y2), {kNaN, 5, -inf, kNaN, 7, -inf});
      y2.backward(ones_like(y2));
      CHECK_SAME(vals(x2.grad()), {1, 1, 0, 1, 1, 1, 0, 1});
    }
  // +inf after a NaN does not take over: [inf NaN] / [9 inf] -> NaN at (0, 1).
  Tensor z = Tensor::from_vector({inf, kNaN, 9.0, inf}, {1, 1, 2, 2}, kFloat64).requires_grad_();
  Tensor zy = max_pool2d(z, 2);
  CHECK(std::isnan(zy.item()));
  zy.backward();
  CHECK_SAME(vals(z.grad()), {0, 1, 0, 0});
}

// ==== Gradient conventions
// ==========================================================================

TEST_CASE("grad: pow(a, b) at a = 0 follows PyTorch's masks, float32 and float64") {
  // PyTorch (pow_backward_self / pow_backward_exponent):
  //   da = where(b == 0, 0, g b a^(b-1)),   db = where(a == 0 & b >= 0, 0, g a^b ln a)
  //   (a, b)     y     da                   db
  //   (0, 0)     1     0 (masked)           0 (masked)
  //   (0, 2)     0     2 * 0 = 0            0 (masked)
  //   (0, 0.5)   0     0.5 * 0^-0.5 = inf   0 (masked)
  //   (0, -1)    inf   -1 * 0^-2 = -inf     inf * ln 0 = -inf (b < 0: not masked)
  //   (2, 0)     1     0 (masked)           1 * ln 2
  //   (-1, 2)    1     2 * -1 = -2          1 * ln(-1) = NaN
  //   (1, 3)     1     3                    0
  //   (NaN, 0)   1     0 (masked)           NaN (a == 0 fails)
  const std::vector<double> a{0, 0, 0, 0, 2, -1, 1, kNaN};
  const std::vector<double> b{0, 2, 0.5, -1, 0, 2, 3, 0};
  each_layout2(
      a, b, [](const Tensor& x, const Tensor& y) { return pow(x, y); },
      [](const std::vector<double>& y, const std::vector<double>& ga,
         const std::vector<double>& gb) {
        CHECK_SAME(y, {1, 0, 0, inf, 1, 1, 1, 1});
        CHECK_SAME(ga, {0, 0, inf, -inf, 0, -2, 3, 0});
        CHECK_CLOSE(gb, 1e-7, {0, 0, 0, -inf, std::log(2.0), kNaN, 0, kNaN});
      });
  // The masked values are the derivatives: 0^b is constant (0) for b > 0 and a^0 is constant 1,
  // so central differences there give 0 too.
  const double h = 1e-6;
  auto p = [](double x, double e) {
    return pow(Tensor::scalar(x, kFloat64), Tensor::scalar(e, kFloat64)).item();
  };
  CHECK((p(0, 2 + h) - p(0, 2 - h)) / (2 * h) == 0.0);
  CHECK((p(h, 0) - p(-h, 0)) / (2 * h) == 0.0);
  // A scalar exponent: pow(x, 0) has gradient 0 everywhere, pow(0, 2) gradient 0.
  Tensor x = Tensor::from_vector({0.0, 3.0}, {2}, kFloat64).requires_grad_();
  (pow(x, 0.0) + pow(x, 2.0)).sum().backward();
  CHECK_SAME(vals(x.grad()), {0, 6});
}

TEST_CASE("grad: cosine_similarity follows PyTorch's eps rule, forward and backward") {
  // PyTorch 2.x: y = sum(a / max(||a||, eps) * b / max(||b||, eps)), the clamp applied in place
  // under no_grad, so the gradient treats each norm as unclamped (d||a||/da = a / ||a||, 0 at a
  // zero vector).
  for (DType dt : {kFloat32, kFloat64}) {
    CAPTURE(dtype_name(dt));
    const double tol = dt == kFloat32 ? 1e-6 : 1e-14;
    // Small norms (each above eps): the true cosine. (The older rule, <a, b> /
    // sqrt(max(||a||^2 ||b||^2, eps^2)), gave 1e-10 / 1e-8 * 0.7 ~ 0.007 here.)
    Tensor a = Tensor::from_vector({1e-5, 0.0}, {1, 2}, dt);
    Tensor b = Tensor::from_vector({1e-5, 1e-5}, {1, 2}, dt);
    CHECK_CLOSE(vals(cosine_similarity(a, b)), tol, {std::sqrt(0.5)});
    // A zero vector: cosine 0; its gradient b / (eps ||b||), the other's gradient 0.
    Tensor z = Tensor::zeros({1, 2}, dt).requires_grad_();
    Tensor c = Tensor::from_vector({3.0, 4.0}, {1, 2}, dt).requires_grad_();
    Tensor y = cosine_similarity(z, c);
    CHECK_SAME(vals(y), {0});
    y.sum().backward();
    CHECK_CLOSE(vals(z.grad()), tol, {3 / (1e-8 * 5), 4 / (1e-8 * 5)});
    CHECK_SAME(vals(c.grad()), {0, 0});
    // 0 < ||a|| < eps: y = (1e-9 / 1e-8) * 1 = 0.1; PyTorch's gradient of a_0 adds the unclamped
    // norm's term: b / (eps ||b||) - <a, b> / (eps^2 ||b||) * a / ||a|| = 1e8 - 1e7 = 9e7.
    Tensor t = Tensor::from_vector({1e-9, 0.0}, {1, 2}, dt).requires_grad_();
    Tensor u = Tensor::from_vector({1.0, 0.0}, {1, 2}, dt);
    Tensor w = cosine_similarity(t, u);
    CHECK_CLOSE(vals(w), tol, {0.1});
    w.sum().backward();
    CHECK_CLOSE(vals(t.grad()), dt == kFloat32 ? 1e-6 : 1e-12, {9e7, 0});
  }
  // Ordinary vectors, broadcast and transposed, float64: the cosine and its textbook gradient
  // d cos / da = b / (|a| |b|) - cos a / |a|^2.
  Tensor a = Tensor::from_vector({1.0, 2.0, -1.0, 0.5, 3.0, -2.0}, {3, 2}, kFloat64)
                 .requires_grad_();  // viewed as [2, 3]: two vectors of 3
  Tensor b = Tensor::from_vector({2.0, -1.0, 4.0}, {3}, kFloat64).requires_grad_();
  Tensor y = cosine_similarity(a.t(), b.unsqueeze(0), 1);
  y.sum().backward();
  std::vector<double> av = vals(a.t().contiguous()), bv = vals(b), want_y, want_ga(6);
  for (int r = 0; r < 2; ++r) {
    double dot = 0, na = 0, nb = 0;
    for (int k = 0; k < 3; ++k) {
      dot += av[r * 3 + k] * bv[k];
      na += av[r * 3 + k] * av[r * 3 + k];
      nb += bv[k] * bv[k];
    }
    na = std::sqrt(na);
    nb = std::sqrt(nb);
    const double cs = dot / (na * nb);
    want_y.push_back(cs);
    for (int k = 0; k < 3; ++k)
      want_ga[r * 3 + k] = bv[k] / (na * nb) - cs * av[r * 3 + k] / (na * na);
  }
  CHECK_CLOSE(vals(y), 1e-14, want_y);
  CHECK_CLOSE(vals(a.grad().t().contiguous()), 1e-14, want_ga);
}

TEST_CASE("grad: gelu is exact by default, approximate tanh on request") {
  // PyTorch: gelu(x) = x Phi(x); gelu(x, approximate='tanh') =
  // x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). gelu(1) = 0.8413447460685429 (exact),
  // 0.8411919906082768 (tanh).
  auto tanh_ref = [](double x) {
    return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
  };
  CHECK(gelu(Tensor::scalar(1.0, kFloat64)).item() == doctest::Approx(0.8413447460685429));
  CHECK(gelu(Tensor::scalar(1.0, kFloat64), "none").item() == doctest::Approx(0.8413447460685429));
  CHECK(gelu(Tensor::scalar(1.0, kFloat64), "tanh").item() ==
        doctest::Approx(0.8411919906082768).epsilon(1e-12));
  const std::vector<double> v{-6.0, -2.5, -1.0, -0.1, 0.0, 0.3, 1.0, 2.0, 5.0, kNaN, inf, -inf};
  std::vector<double> want(v.size());
  for (size_t i = 0; i < v.size(); ++i) want[i] = tanh_ref(v[i]);
  want[10] = inf;   // inf/2 (1 + 1)
  want[11] = kNaN;  // -inf/2 (1 + -1) = -inf * 0, as in PyTorch's formula
  each_layout(
      v, [](const Tensor& x) { return gelu(x, "tanh"); },
      [&](const std::vector<double>& y, const std::vector<double>& gx) {
        CHECK_CLOSE(y, 1e-6, want);
        // the gradient against central differences of the reference (finite points)
        for (size_t i = 0; i < 9; ++i) {
          const double h = 1e-5;
          const double d = (tanh_ref(v[i] + h) - tanh_ref(v[i] - h)) / (2 * h);
          CHECK(gx[i] == doctest::Approx(d).epsilon(1e-5));
        }
        CHECK(std::isnan(gx[9]));
      });
  // The two forms differ (by up to ~5e-4 near |x| = 2) and the default is the exact one.
  Tensor x = Tensor::linspace(-4, 4, 81, kFloat64);
  const double diff = max(abs(gelu(x) - gelu(x, "tanh"))).item();
  CHECK(diff > 1e-4);
  CHECK(diff < 1e-3);
  CHECK_ERROR(gelu(x, "Tanh"), "gelu", "approximate", "Tanh");
  // The module and the activation enum take the same option.
  CHECK(max(abs(nn::GELU().forward(x) - gelu(x))).item() == 0.0);
  CHECK(max(abs(nn::GELU("tanh").forward(x) - gelu(x, "tanh"))).item() == 0.0);
  CHECK(nn::GELU("tanh").label() == "GELU(approximate='tanh')");
  CHECK(nn::GELU().label() == "GELU()");
  CHECK_ERROR(nn::GELU("erf"), "GELU", "approximate", "erf");
  CHECK(nn::parse_activation("gelu_tanh") == nn::Activation::GELUTanh);
  CHECK(std::string(nn::activation_name(nn::Activation::GELUTanh)) == "gelu_tanh");
  CHECK(max(abs(nn::activate(x, nn::Activation::GELUTanh) - gelu(x, "tanh"))).item() == 0.0);
  CHECK(nn::make_activation(nn::Activation::GELUTanh)->label() == "GELU(approximate='tanh')");
}

TEST_CASE("nan: softmax rows, logsumexp, abs and sign with NaN (the rest of the table)") {
  // A NaN in a row makes that row NaN (through exp); other rows are untouched. Also when the NaN
  // comes first in the row (it is then the running max).
  for (DType dt : {kFloat32, kFloat64}) {
    CAPTURE(dtype_name(dt));
    Tensor x = Tensor::from_vector({kNaN, 0.0, 1.0, 0.0, 0.0, 0.0, 2.0, kNaN, 0.0}, {3, 3}, dt);
    std::vector<double> s = vals(softmax(x, 1));
    for (int i : {0, 1, 2, 6, 7, 8}) CHECK(std::isnan(s[static_cast<size_t>(i)]));
    CHECK_CLOSE(std::vector<double>(s.begin() + 3, s.begin() + 6), 1e-7,
                {1.0 / 3, 1.0 / 3, 1.0 / 3});
    std::vector<double> l = vals(logsumexp(x, 1));
    CHECK(std::isnan(l[0]));
    CHECK(l[1] == doctest::Approx(std::log(3.0)));
    CHECK(std::isnan(l[2]));
  }
  // abs(NaN) = NaN, sign(NaN) = 0 (PyTorch: (0 < x) - (x < 0)); abs's gradient g sign(x) is 0
  // there.
  Tensor a = Tensor::from_vector({kNaN, -2.0, 0.0}, {3}, kFloat64).requires_grad_();
  Tensor y = abs(a);
  CHECK_SAME(vals(y), {kNaN, 2, 0});
  CHECK_SAME(vals(sign(a.detach())), {0, -1, 0});
  y.sum().backward();
  CHECK_SAME(vals(a.grad()), {0, -1, 0});
}
