// Tensor basics: creation, dtypes, views, element access, printing, in-place ops, broadcasting,
// the CPU caching allocator and bad input.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "core_test_util.h"
#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/ops/common.h"

using namespace mmgrad;
using mmgrad::testing::allclose;
using mmgrad::testing::vals;

namespace {

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double var_of(const std::vector<double>& v) {
  double m = mean_of(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return s / static_cast<double>(v.size() - 1);
}

// The contiguous row-major strides of a shape, as a vector (for readable comparisons).
std::vector<int64_t> vec(const Shape& s) { return s.vec(); }

}  // namespace

// ---- creation ---------------------------------------------------------------------------------

TEST_CASE("creation: zeros, ones, full, scalar") {
  Tensor z = Tensor::zeros({2, 3});
  CHECK(z.dtype() == kFloat32);
  CHECK(z.device() == kCPU);
  CHECK(vec(z.shape()) == std::vector<int64_t>{2, 3});
  CHECK(vec(z.strides()) == std::vector<int64_t>{3, 1});
  CHECK(z.is_contiguous());
  CHECK(z.numel() == 6);
  CHECK(vals(z) == std::vector<double>(6, 0.0));
  CHECK(vals(Tensor::ones({4}, kFloat64)) == std::vector<double>(4, 1.0));
  Tensor f = Tensor::full({2, 2}, -2.5, kFloat64);
  CHECK(vals(f) == std::vector<double>(4, -2.5));
  CHECK(vals(Tensor::full({3}, 7, kInt64)) == std::vector<double>{7, 7, 7});
  // Bool holds 0/1: a nonzero fill value is true, and compares equal to other trues.
  Tensor b = Tensor::full({2}, 2.0, kBool);
  CHECK(b.to_vector<bool>() == std::vector<bool>{true, true});
  CHECK(eq(b, Tensor::ones({2}, kBool)).to_vector<bool>() == std::vector<bool>{true, true});

  Tensor s = Tensor::scalar(3.25, kFloat64);
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.item() == 3.25);
  CHECK(Tensor::zeros({0, 3}).numel() == 0);
  CHECK(Tensor::zeros({}).dim() == 0);

  Tensor r = Tensor::zeros({2}, TensorOptions(kFloat64).requires_grad());
  CHECK(r.requires_grad());
  CHECK(r.is_leaf());
}

TEST_CASE("creation: arange, linspace, eye") {
  Tensor a = Tensor::arange(5);
  CHECK(a.dtype() == kInt64);
  CHECK(vals(a) == std::vector<double>{0, 1, 2, 3, 4});
  CHECK(vals(Tensor::arange(1.0, 2.0, 0.25, kFloat32)) == std::vector<double>{1, 1.25, 1.5, 1.75});
  CHECK(vals(Tensor::arange(5.0, 0.0, -2.0, kFloat64)) == std::vector<double>{5, 3, 1});
  CHECK(Tensor::arange(0).numel() == 0);
  // 10 values, not 11: the end is excluded even when (end - start) / step rounds.
  CHECK(Tensor::arange(0.0, 1.0, 0.1, kFloat64).numel() == 10);

  CHECK(allclose(Tensor::linspace(0, 1, 5, kFloat64), {0, 0.25, 0.5, 0.75, 1}));
  CHECK(vals(Tensor::linspace(-3, 3, 1)) == std::vector<double>{-3});
  Tensor l = Tensor::linspace(-1, 1, 7, kFloat64);
  CHECK(l.at({0}) == -1.0);
  CHECK(l.at({-1}) == 1.0);  // the end point is exact

  Tensor e = Tensor::eye(3, kFloat64);
  CHECK(vals(e) == std::vector<double>{1, 0, 0, 0, 1, 0, 0, 0, 1});
  CHECK(Tensor::eye(0).numel() == 0);
}

TEST_CASE("creation: randn statistics and determinism") {
  Generator g(42);
  Tensor x = Tensor::randn({200000}, kFloat64, &g);
  std::vector<double> v = vals(x);
  // Mean 0 and variance 1 within ~5 standard errors (se = 1/sqrt(n) = 0.0022 for the mean).
  CHECK(std::abs(mean_of(v)) < 0.012);
  CHECK(std::abs(var_of(v) - 1.0) < 0.02);
  // A normal puts 68.27% of its mass within one standard deviation.
  double inside = static_cast<double>(
                      std::count_if(v.begin(), v.end(), [](double t) { return std::abs(t) < 1; })) /
                  static_cast<double>(v.size());
  CHECK(std::abs(inside - 0.6827) < 0.006);
  CHECK(std::all_of(v.begin(), v.end(), [](double t) { return std::isfinite(t); }));

  // Same seed, same numbers; a new draw continues the sequence; another seed differs.
  Generator g1(7), g2(7), g3(8);
  Tensor a = Tensor::randn({64}, {}, &g1), b = Tensor::randn({64}, {}, &g2);
  CHECK(vals(a) == vals(b));
  CHECK(vals(Tensor::randn({64}, {}, &g1)) != vals(a));
  CHECK(vals(Tensor::randn({64}, {}, &g3)) != vals(a));
  CHECK(g1.offset() == 128);

  // manual_seed resets the default generator.
  manual_seed(123);
  std::vector<double> d1 = vals(Tensor::randn({16}));
  manual_seed(123);
  CHECK(vals(Tensor::randn({16})) == d1);

  // Counter-based: the numbers do not depend on the thread count (this size runs in parallel).
  int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  Generator s1(99);
  std::vector<double> one = vals(Tensor::randn({50000}, {}, &s1));
  omp_set_num_threads(2);
  Generator s2(99);
  std::vector<double> two = vals(Tensor::randn({50000}, {}, &s2));
  omp_set_num_threads(threads);
  CHECK(one == two);

  // float32 and float64 draw the same underlying numbers.
  Generator h1(5), h2(5);
  CHECK(mmgrad::testing::max_rel_diff(vals(Tensor::randn({100}, kFloat32, &h1)),
                                      vals(Tensor::randn({100}, kFloat64, &h2))) < 1e-6);
}

TEST_CASE("creation: rand and randint statistics") {
  Generator g(1);
  std::vector<double> u = vals(Tensor::rand({100000}, kFloat64, &g));
  CHECK(*std::min_element(u.begin(), u.end()) >= 0.0);
  CHECK(*std::max_element(u.begin(), u.end()) < 1.0);
  CHECK(std::abs(mean_of(u) - 0.5) < 0.005);
  CHECK(std::abs(var_of(u) - 1.0 / 12.0) < 0.002);
  std::vector<double> uf = vals(Tensor::rand({100000}, kFloat32, &g));
  CHECK(*std::max_element(uf.begin(), uf.end()) < 1.0);

  // randint: integers in [low, high), every value about equally often.
  std::vector<double> r = vals(Tensor::randint(-3, 3, {60000}, kInt64, &g));
  std::vector<int> counts(6, 0);
  bool in_range = true;
  for (double x : r) {
    in_range = in_range && x >= -3 && x < 3 && x == std::floor(x);
    if (in_range) counts[static_cast<size_t>(x + 3)]++;
  }
  REQUIRE(in_range);
  for (int c : counts) CHECK(std::abs(c - 10000) < 500);  // ~5 standard deviations (sd ~ 91)

  // Other dtypes get the same integers, converted (not the raw uniform numbers).
  Generator g1(3), g2(3);
  Tensor ri = Tensor::randint(0, 10, {50}, kInt64, &g1);
  Tensor rf = Tensor::randint(0, 10, {50}, kFloat32, &g2);
  CHECK(rf.dtype() == kFloat32);
  CHECK(vals(ri) == vals(rf));

  // A single-value range.
  CHECK(vals(Tensor::randint(4, 5, {5})) == std::vector<double>(5, 4));
  // Determinism with a seed.
  Generator a(11), b(11);
  CHECK(vals(Tensor::randint(0, 1000, {100}, kInt64, &a)) ==
        vals(Tensor::randint(0, 1000, {100}, kInt64, &b)));
}

TEST_CASE("creation: from_vector and *_like") {
  Tensor a = Tensor::from_vector({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3});
  CHECK(a.dtype() == kFloat32);
  CHECK(vec(a.shape()) == std::vector<int64_t>{2, 3});
  CHECK(a.at({1, 0}) == 4.0);
  Tensor d = Tensor::from_vector(std::vector<double>{0.1, 0.2});
  CHECK(d.dtype() == kFloat64);
  CHECK(d.dim() == 1);
  CHECK(d.at({0}) == 0.1);
  Tensor i = Tensor::from_vector(std::vector<int>{3, -1, 2});
  CHECK(i.dtype() == kInt64);
  CHECK(vals(i) == std::vector<double>{3, -1, 2});
  Tensor b = Tensor::from_vector(std::vector<bool>{true, false});
  CHECK(b.dtype() == kBool);
  CHECK(b.to_vector<bool>() == std::vector<bool>{true, false});
  Tensor c = Tensor::from_vector(std::vector<double>{1.5, 2.5}, {2}, kFloat32);
  CHECK(c.dtype() == kFloat32);
  CHECK(vals(c) == std::vector<double>{1.5, 2.5});
  Tensor e = Tensor::from_vector(std::vector<float>{}, {0, 2});
  CHECK(e.numel() == 0);

  Tensor base = Tensor::ones({2, 5}, kFloat64);
  CHECK(vals(zeros_like(base)) == std::vector<double>(10, 0.0));
  CHECK(zeros_like(base).dtype() == kFloat64);
  CHECK(zeros_like(base, kInt64).dtype() == kInt64);
  CHECK(vals(ones_like(base)) == std::vector<double>(10, 1.0));
  CHECK(vals(full_like(base, 3)) == std::vector<double>(10, 3.0));
  CHECK(empty_like(base).shape() == base.shape());
  CHECK(randn_like(base).dtype() == kFloat64);
  CHECK(rand_like(base).shape() == base.shape());
  // *_like never inherit requires_grad or share storage.
  Tensor p = Tensor::ones({3}, kFloat64).requires_grad_();
  CHECK_FALSE(zeros_like(p).requires_grad());
  CHECK(zeros_like(p).storage() != p.storage());
}

// ---- dtypes -------------------------------------------------------------------------------------

TEST_CASE("dtypes: sizes, names and conversion") {
  CHECK(dtype_size(kFloat32) == 4);
  CHECK(dtype_size(kFloat64) == 8);
  CHECK(dtype_size(kInt64) == 8);
  CHECK(dtype_size(kBool) == 1);
  CHECK(std::string(dtype_name(kFloat64)) == "float64");
  CHECK(is_floating(kFloat32));
  CHECK_FALSE(is_floating(kInt64));

  Tensor x = Tensor::from_vector({-1.7, -0.2, 0.0, 0.6, 2.5}, {5}, kFloat64);
  CHECK(vals(x.to(kInt64)) == std::vector<double>{-1, 0, 0, 0, 2});  // truncates toward zero
  CHECK(x.to(kBool).to_vector<bool>() == std::vector<bool>{true, true, false, true, true});
  CHECK(vals(x.to(kBool).to(kFloat32)) == std::vector<double>{1, 1, 0, 1, 1});
  Tensor f = x.to(kFloat32);
  CHECK(f.dtype() == kFloat32);
  CHECK(mmgrad::testing::max_rel_diff(vals(f), vals(x)) < 1e-7);
  // Converting to the same dtype is free: the same tensor comes back.
  CHECK(x.to(kFloat64).same(x));
  // A non-contiguous source converts in logical order.
  Tensor m = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, kInt64).t();
  CHECK(vals(m.to(kFloat64)) == std::vector<double>{1, 4, 2, 5, 3, 6});
  CHECK(x.element_size() == 8);
}

// ---- views --------------------------------------------------------------------------------------

TEST_CASE("views: view and reshape share storage") {
  Tensor x = Tensor::arange(0.0, 12.0, 1.0, kFloat32);
  Tensor v = x.view({3, 4});
  CHECK(v.storage() == x.storage());
  CHECK(vec(v.strides()) == std::vector<int64_t>{4, 1});
  Tensor w = x.view({2, -1, 3});
  CHECK(vec(w.shape()) == std::vector<int64_t>{2, 2, 3});
  // Writing through a view is visible in the base.
  v.select(0, 1).fill_(-1);
  CHECK(x.at({4}) == -1);
  CHECK(x.at({7}) == -1);
  CHECK(x.at({8}) == 8);
  // reshape of a contiguous tensor is a view, of a transposed one a copy.
  CHECK(x.reshape({4, 3}).storage() == x.storage());
  Tensor t = x.view({3, 4}).t();
  CHECK_FALSE(t.is_contiguous());
  Tensor r = t.reshape({12});
  CHECK(r.storage() != x.storage());
  CHECK(vals(r) == vals(t.contiguous().view({12})));
  // A view of a non-contiguous tensor works where the strides allow it.
  Tensor t3 = Tensor::zeros({2, 3, 4}).transpose(0, 1);  // [3, 2, 4], strides [4, 12, 1]
  CHECK(vec(t3.view({3, 2, 2, 2}).strides()) == std::vector<int64_t>{4, 12, 2, 1});
  CHECK_ERROR(t3.view({6, 4}), "view", "[6, 4]", "reshape");
  CHECK(vec(t3.reshape({6, 4}).shape()) == std::vector<int64_t>{6, 4});
  // flatten
  Tensor f = Tensor::zeros({2, 3, 4, 5});
  CHECK(vec(f.flatten().shape()) == std::vector<int64_t>{120});
  CHECK(vec(f.flatten(1).shape()) == std::vector<int64_t>{2, 60});
  CHECK(vec(f.flatten(1, 2).shape()) == std::vector<int64_t>{2, 12, 5});
  CHECK(vec(Tensor::scalar(1).flatten().shape()) == std::vector<int64_t>{1});
}

TEST_CASE("views: transpose, permute, narrow, slice, select") {
  Tensor x = Tensor::arange(0.0, 24.0, 1.0, kFloat64).view({2, 3, 4});
  Tensor t = x.transpose(0, 2);
  CHECK(t.storage() == x.storage());
  CHECK(vec(t.shape()) == std::vector<int64_t>{4, 3, 2});
  CHECK(vec(t.strides()) == std::vector<int64_t>{1, 4, 12});
  CHECK(t.at({3, 1, 1}) == x.at({1, 1, 3}));
  Tensor p = x.permute({1, 2, 0});
  CHECK(vec(p.shape()) == std::vector<int64_t>{3, 4, 2});
  CHECK(p.at({2, 3, 1}) == x.at({1, 2, 3}));
  CHECK(x.permute({-1, 0, 1}).at({3, 1, 2}) == x.at({1, 2, 3}));

  Tensor n = x.narrow(2, 1, 2);
  CHECK(n.storage() == x.storage());
  CHECK(n.storage_offset() == 1);
  CHECK(vals(n.select(0, 0).select(0, 0)) == std::vector<double>{1, 2});
  CHECK(vals(x.narrow(-1, -2, 2).select(0, 1).select(0, 2)) == std::vector<double>{22, 23});

  Tensor row = Tensor::arange(0.0, 10.0, 1.0, kFloat64);
  CHECK(vals(row.slice(0, 1, 8, 3)) == std::vector<double>{1, 4, 7});
  CHECK(row.slice(0, 1, 8, 3).stride(0) == 3);
  CHECK(vals(row.slice(0, -3, 100)) == std::vector<double>{7, 8, 9});  // clamped like Python
  CHECK(row.slice(0, 5, 2).numel() == 0);
  CHECK(vals(x.slice(1, 0, 3, 2).select(0, 0).select(1, 0)) == std::vector<double>{0, 8});

  Tensor s = x.select(1, -1);
  CHECK(vec(s.shape()) == std::vector<int64_t>{2, 4});
  CHECK(vals(s.select(0, 0)) == std::vector<double>{8, 9, 10, 11});
  CHECK(vals(x[1][0]) == std::vector<double>{12, 13, 14, 15});
}

TEST_CASE("views: expand, squeeze, unsqueeze, contiguous") {
  Tensor c = Tensor::from_vector({1.0, 2.0, 3.0}, {3, 1}, kFloat64);
  Tensor e = c.expand({2, 3, 4});
  CHECK(e.storage() == c.storage());
  CHECK(vec(e.strides()) == std::vector<int64_t>{0, 1, 0});
  CHECK(e.at({1, 2, 3}) == 3.0);
  CHECK(vec(c.expand({-1, 2}).shape()) == std::vector<int64_t>{3, 2});
  CHECK(c.expand({3, 1}).same(c));  // nothing to expand: the same tensor

  Tensor u = c.squeeze();
  CHECK(vec(u.shape()) == std::vector<int64_t>{3});
  CHECK(u.storage() == c.storage());
  CHECK(vec(c.squeeze(0).shape()) == std::vector<int64_t>{3, 1});  // size 3: unchanged
  CHECK(vec(c.squeeze(-1).shape()) == std::vector<int64_t>{3});
  CHECK(vec(u.unsqueeze(0).shape()) == std::vector<int64_t>{1, 3});
  CHECK(vec(u.unsqueeze(-1).shape()) == std::vector<int64_t>{3, 1});
  CHECK(vec(Tensor::scalar(2).unsqueeze(0).shape()) == std::vector<int64_t>{1});
  CHECK(Tensor::zeros({1, 1}).squeeze().dim() == 0);

  Tensor x = Tensor::arange(0.0, 6.0, 1.0, kFloat32).view({2, 3});
  CHECK(x.contiguous().same(x));  // already contiguous: no copy
  Tensor xt = x.t().contiguous();
  CHECK(xt.is_contiguous());
  CHECK(xt.storage() != x.storage());
  CHECK(vals(xt) == std::vector<double>{0, 3, 1, 4, 2, 5});
  Tensor ec = e.contiguous();
  CHECK(ec.is_contiguous());
  CHECK(ec.numel() == 24);
  CHECK(ec.at({1, 1, 0}) == 2.0);
  // clone always copies.
  Tensor cl = x.clone();
  CHECK(cl.storage() != x.storage());
  CHECK(vals(cl) == vals(x));
}

// ---- element access -----------------------------------------------------------------------------

TEST_CASE("element access: item, at, to_vector, data_ptr") {
  Tensor x = Tensor::from_vector({1.5, -2.0, 3.0, 4.0}, {2, 2}, kFloat64);
  CHECK(x.at({0, 1}) == -2.0);
  CHECK(x.at({-1, -1}) == 4.0);
  CHECK(x.t().at({0, 1}) == 3.0);
  CHECK(x.sum().item() == 6.5);
  CHECK(x[1][0].item<int>() == 3);
  CHECK(x.to_vector<float>() == std::vector<float>{1.5f, -2.0f, 3.0f, 4.0f});
  CHECK(x.to_vector<int64_t>() == std::vector<int64_t>{1, -2, 3, 4});
  CHECK(x.t().to_vector<double>() == std::vector<double>{1.5, 3.0, -2.0, 4.0});
  CHECK(x.to_vector<bool>() == std::vector<bool>{true, true, true, true});
  CHECK(x.data_ptr<double>()[3] == 4.0);
  CHECK(Tensor::zeros({0}).to_vector<double>().empty());

  CHECK_ERROR(x.item(), "item", "[2, 2]");
  CHECK_ERROR(x.at({0}), "at", "[2, 2]");
  CHECK_ERROR(x.at({0, 2}), "at", "out of range");
  CHECK_ERROR(x.data_ptr<float>(), "data_ptr", "float64");
  CHECK_ERROR(x.size(2), "size", "out of range");
}

// ---- printing -----------------------------------------------------------------------------------

TEST_CASE("printing: readable output") {
  Tensor x = Tensor::from_vector({0.1, -1.25, 2.0, 3.0}, {2, 2});
  CHECK(x.str() ==
        "tensor([[ 0.1000, -1.2500],\n"
        "        [ 2.0000,  3.0000]])");
  std::ostringstream os;
  os << x;
  CHECK(os.str() == x.str());
  CHECK(Tensor::arange(3).str() == "tensor([0, 1, 2])");
  CHECK(Tensor::scalar(3.5).str() == "tensor(3.5000)");
  CHECK(Tensor::ones({2}, kFloat64).str() == "tensor([1.0000, 1.0000], dtype=float64)");
  CHECK(Tensor::from_vector(std::vector<bool>{true, false}).str().find("True, False") !=
        std::string::npos);
  Tensor p = Tensor::ones({2}).requires_grad_();
  CHECK(p.str() == "tensor([1.0000, 1.0000], requires_grad=true)");
  CHECK((p * p).str() == "tensor([1.0000, 1.0000], grad_fn=<mul>)");
  // Very small or large magnitudes switch to scientific notation.
  CHECK(Tensor::from_vector({1e-6, 1e6}).str() == "tensor([1.0000e-06, 1.0000e+06])");
  CHECK(Tensor::from_vector({NAN, INFINITY, -1.0}).str() == "tensor([    nan,     inf, -1.0000])");
  CHECK(Tensor().str() == "tensor(undefined)");
  CHECK(describe(x) == "[2, 2] float32 cpu");
  // A 3-D tensor separates its matrices with a blank line.
  std::string s3 = Tensor::zeros({2, 1, 2}, kInt64).str();
  CHECK(s3 == "tensor([[[0, 0]],\n\n        [[0, 0]]])");
}

TEST_CASE("printing: large tensors are summarised") {
  Tensor big = Tensor::arange(0.0, 2000.0, 1.0, kFloat32).view({40, 50});
  std::string s = big.str();
  CHECK(s.find("...") != std::string::npos);
  // First and last rows and columns are shown, the middle is not.
  CHECK(s.find("1999.0000") != std::string::npos);
  CHECK(s.find(" 0.0000") != std::string::npos);
  CHECK(s.find("1000.0000") == std::string::npos);
  CHECK(std::count(s.begin(), s.end(), '\n') == 6);  // 3 + 3 rows and one "...," line
  CHECK(s.size() < 800);
  // A long 1-D tensor prints 6 numbers.
  std::string v = Tensor::arange(5000).str();
  CHECK(v == "tensor([   0,    1,    2, ..., 4997, 4998, 4999])");
  // Up to the threshold everything is printed.
  CHECK(Tensor::zeros({1000}).str().find("...") == std::string::npos);
}

// ---- in-place -----------------------------------------------------------------------------------

TEST_CASE("in-place: copy_ broadcasts and converts, fill_, add_, mul_") {
  Tensor m = Tensor::zeros({2, 3}, kFloat64);
  m.copy_(Tensor::from_vector({1.0, 2.0, 3.0}, {3}, kFloat32));  // broadcast rows, float32 -> 64
  CHECK(vals(m) == std::vector<double>{1, 2, 3, 1, 2, 3});
  m.select(1, 0).copy_(Tensor::scalar(9, kInt64));  // into a strided view, from int64
  CHECK(vals(m) == std::vector<double>{9, 2, 3, 9, 2, 3});
  uint32_t v0 = m.storage()->version();
  m.add_(Tensor::ones({3}, kFloat64), 0.5);
  CHECK(vals(m) == std::vector<double>{9.5, 2.5, 3.5, 9.5, 2.5, 3.5});
  m.mul_(2.0);
  CHECK(vals(m) == std::vector<double>{19, 5, 7, 19, 5, 7});
  m.mul_(Tensor::from_vector({1.0, 0.0}, {2, 1}, kFloat64));
  CHECK(vals(m) == std::vector<double>{19, 5, 7, 0, 0, 0});
  m.zero_();
  CHECK(vals(m) == std::vector<double>(6, 0));
  m.t().fill_(4);
  CHECK(vals(m) == std::vector<double>(6, 4));
  CHECK(m.storage()->version() == v0 + 5);  // every in-place write bumps the version

  // Reading and writing overlapping memory in another layout reads the old values.
  Tensor sq = Tensor::arange(0.0, 4.0, 1.0, kFloat32).view({2, 2});
  sq.copy_(sq.t());
  CHECK(vals(sq) == std::vector<double>{0, 2, 1, 3});
  Tensor r = Tensor::arange(0.0, 4.0, 1.0, kFloat64);
  r.slice(0, 1, 4).copy_(r.slice(0, 0, 3));  // shift right by one
  CHECK(vals(r) == std::vector<double>{0, 0, 1, 2});
  r.add_(r);  // the same layout is a plain in-place map
  CHECK(vals(r) == std::vector<double>{0, 0, 2, 4});

  CHECK_ERROR(m.copy_(Tensor::zeros({4})), "copy_", "[4]", "[2, 3]");
  CHECK_ERROR(m.add_(Tensor::zeros({3}, kFloat32)), "add_", "float32");
  CHECK_ERROR(m.mul_(Tensor::zeros({3}, kFloat32)), "mul_");
}

TEST_CASE("in-place: refuses tensors that require grad, and expanded views") {
  Tensor w = Tensor::ones({3}, kFloat64).requires_grad_();
  CHECK_ERROR(w.add_(Tensor::ones({3}, kFloat64)), "add_", "requires grad", "NoGradGuard");
  CHECK_ERROR(w.fill_(0), "fill_", "requires grad");
  CHECK_ERROR(w.copy_(Tensor::zeros({3}, kFloat64)), "copy_");
  CHECK_ERROR(w.mul_(2.0), "mul_");
  Tensor y = w * 2.0;  // a non-leaf that requires grad
  CHECK_ERROR(y.zero_(), "fill_");
  {
    NoGradGuard ng;
    w.add_(Tensor::ones({3}, kFloat64), -0.5);  // what an optimizer does
  }
  CHECK(vals(w) == std::vector<double>(3, 0.5));

  Tensor e = Tensor::zeros({1, 3}).expand({4, 3});
  CHECK_ERROR(e.fill_(1), "fill_", "expanded", "[4, 3]");
  CHECK_ERROR(e.copy_(Tensor::ones({4, 3})), "copy_", "expanded");
  Tensor ok = Tensor::zeros({1, 3}).expand({1, 3});  // nothing broadcast: writable
  ok.fill_(2);
  CHECK(vals(ok) == std::vector<double>(3, 2));
}

// ---- broadcasting -------------------------------------------------------------------------------

TEST_CASE("broadcasting: PyTorch's rules") {
  CHECK(broadcast_shapes("t", {3, 1}, {1, 4}) == Shape{3, 4});
  CHECK(broadcast_shapes("t", {2, 3}, {3}) == Shape{2, 3});
  CHECK(broadcast_shapes("t", {5, 1, 4}, {3, 1}) == Shape{5, 3, 4});
  CHECK(broadcast_shapes("t", {}, {2, 2}) == Shape{2, 2});
  CHECK(broadcast_shapes("t", {0, 3}, {1, 3}) == Shape{0, 3});
  CHECK(broadcast_shapes("t", {1}, {0}) == Shape{0});
  CHECK_ERROR(broadcast_shapes("myop", {2, 3}, {4}), "myop", "[2, 3]", "[4]");
  CHECK_ERROR(broadcast_shapes("myop", {2, 1}, {3, 4}), "myop", "2 vs 3");

  Tensor col = Tensor::from_vector({1.0, 2.0}, {2, 1}, kFloat64);
  Tensor row = Tensor::from_vector({10.0, 20.0, 30.0}, {3}, kFloat64);
  Tensor s = col + row;
  CHECK(vec(s.shape()) == std::vector<int64_t>{2, 3});
  CHECK(vals(s) == std::vector<double>{11, 21, 31, 12, 22, 32});
  CHECK(vals(row * Tensor::scalar(2, kFloat64)) == std::vector<double>{20, 40, 60});
  CHECK((Tensor::zeros({0, 3}) + Tensor::ones({3})).numel() == 0);
  CHECK_ERROR(Tensor::zeros({2, 3}) + Tensor::zeros({2}), "add", "[2, 3]", "[2]");
}

// ---- caching allocator ------------------------------------------------------------------------

TEST_CASE("allocator: a steady-state loop allocates nothing new from the OS") {
  auto step = [] {
    Tensor x = Tensor::randn({64, 32});
    Tensor w = Tensor::randn({32, 16});
    Tensor y = relu(matmul(x, w)) + 1.0;
    return y.sum().item();
  };
  for (int i = 0; i < 3; ++i) step();  // warm the cache
  cpu::AllocatorStats before = cpu::allocator_stats();
  for (int i = 0; i < 50; ++i) step();
  cpu::AllocatorStats after = cpu::allocator_stats();
  CHECK(after.os_allocations == before.os_allocations);
  CHECK(after.cache_hits >= before.cache_hits + 50 * 6);
  CHECK(after.bytes_in_use == before.bytes_in_use);  // everything was given back

  // A freed block is reused for the next request of its size class.
  { Tensor t = Tensor::empty({1000}); }
  cpu::AllocatorStats s0 = cpu::allocator_stats();
  { Tensor t = Tensor::empty({1001}); }  // 4004 bytes: same 64-byte class as 4000
  CHECK(cpu::allocator_stats().os_allocations == s0.os_allocations);

  cpu::empty_cache();
  CHECK(cpu::allocator_stats().bytes_cached == 0);
  { Tensor t = Tensor::empty({1000}); }
  CHECK(cpu::allocator_stats().os_allocations == s0.os_allocations + 1);

  // Memory comes back aligned to a cache line (what AVX-512 loads want).
  for (int n : {1, 3, 100, 5000, 100000}) {
    Tensor t = Tensor::empty({n});
    CHECK(reinterpret_cast<uintptr_t>(t.raw_data()) % 64 == 0);
  }
}

TEST_CASE("allocator: a free larger block (up to 2x) is lent to a smaller request") {
  cpu::empty_cache();
  cpu::CpuBackend cpu;
  const int64_t in_use = cpu::allocator_stats().bytes_in_use;
  const size_t big = size_t{1} << 20;  // 1 MiB: a class of its own
  cpu.deallocate(cpu.allocate(big), big);
  const cpu::AllocatorStats s0 = cpu::allocator_stats();
  CHECK(s0.bytes_cached == static_cast<int64_t>(big));
  // 300 KB (class 384 KiB) would waste more than half of the 1 MiB block: it gets its own.
  void* q = cpu.allocate(300000);
  CHECK(cpu::allocator_stats().os_allocations == s0.os_allocations + 1);
  CHECK(cpu::allocator_stats().bytes_cached == static_cast<int64_t>(big));
  cpu.deallocate(q, 300000);
  // 600 KB (class 768 KiB) finds no block of its class: it borrows the cached 1 MiB one.
  void* p = cpu.allocate(600000);
  CHECK(cpu::allocator_stats().os_allocations == s0.os_allocations + 1);
  // Freed as 600 KB, the lent block goes back to the 1 MiB class: the next 1 MiB request takes it.
  cpu.deallocate(p, 600000);
  void* r = cpu.allocate(big);
  CHECK(r == p);
  CHECK(cpu::allocator_stats().os_allocations == s0.os_allocations + 1);
  cpu.deallocate(r, big);
  CHECK(cpu::allocator_stats().bytes_in_use == in_use);  // the accounting balances
  cpu::empty_cache();
}

// ---- bad input ----------------------------------------------------------------------------------

TEST_CASE("bad input: creation and metadata") {
  CHECK_ERROR(Tensor::empty({2, -1}), "empty", "[2, -1]");
  CHECK_ERROR(Tensor::zeros({-3}), "negative");
  CHECK_ERROR(Tensor::empty({int64_t{1} << 40, int64_t{1} << 40}), "empty", "too large");
#if !defined(__SANITIZE_ADDRESS__)  // ASan aborts on such requests instead of failing them
  // Representable but far beyond memory: a clear error, not a crash, and no leaked count.
  int64_t in_use = cpu::allocator_stats().bytes_in_use;
  CHECK_ERROR(Tensor::empty({int64_t{1} << 50}, kFloat64), "out of CPU memory");
  CHECK(cpu::allocator_stats().bytes_in_use == in_use);
#endif
  CHECK_ERROR(Tensor::from_vector({1.0, 2.0, 3.0}, {2, 2}), "from_vector", "3 values", "[2, 2]");
  CHECK_ERROR(Tensor::arange(0.0, 5.0, 0.0), "arange", "step");
  CHECK_ERROR(Tensor::arange(0.0, 5.0, -1.0), "arange");
  CHECK_ERROR(Tensor::linspace(0, 1, 0), "linspace", "steps");
  CHECK_ERROR(Tensor::eye(-2), "eye");
  CHECK_ERROR(Tensor::randn({2}, kInt64), "randn", "int64");
  CHECK_ERROR(Tensor::rand({2}, kBool), "rand", "bool");
  CHECK_ERROR(Tensor::randint(5, 5, {2}), "randint", "[5, 5)");
  CHECK_ERROR(Tensor::full({2}, 0.5, kInt64), "full", "int64");
  CHECK_ERROR(Tensor::full({2}, INFINITY, kInt64), "full", "int64");
  CHECK_ERROR(Tensor::zeros({1, 1, 1, 1, 1, 1, 1, 1, 1}), "at most 8 dimensions");
  CHECK_ERROR(Tensor().shape(), "undefined tensor");
  CHECK_ERROR(Tensor::zeros({2}, kInt64).requires_grad_(), "requires_grad_", "int64");
  CHECK_ERROR(parse_device("tpu"), "tpu", "cpu");
  CHECK(parse_device("cpu") == kCPU);
  if (!cuda_available()) {
    // No GPU (or no CUDA build): asking for one is a clear error, not a crash.
    CHECK_ERROR(Tensor::zeros({2}, kCUDA), "cuda");
    CHECK_ERROR(Tensor::ones({2}).to(kCUDA), "cuda");
  } else {
    MESSAGE("CUDA present: device error paths are tested by the CUDA suites");
  }
  CHECK_ERROR(Tensor::ones({2}).set_grad(Tensor::ones({3})), "set_grad", "[3]", "[2]");
}

TEST_CASE("bad input: views") {
  Tensor x = Tensor::zeros({2, 3, 4});
  CHECK_ERROR(x.view({5, 5}), "view", "[5, 5]", "[2, 3, 4]");
  CHECK_ERROR(x.view({-1, -1}), "view", "-1");
  CHECK_ERROR(x.reshape({7, -1}), "reshape", "[7, -1]", "24 elements");
  CHECK_ERROR(x.reshape({-2, 12}), "reshape", "-2");
  CHECK_ERROR(x.transpose(0, 3), "transpose", "3", "out of range");
  CHECK_ERROR(x.permute({0, 1}), "permute", "[0, 1]", "[2, 3, 4]");
  CHECK_ERROR(x.permute({0, 1, 1}), "permute", "repeated");
  CHECK_ERROR(x.narrow(1, 2, 2), "narrow", "[2, 4)", "size 3");
  CHECK_ERROR(x.narrow(5, 0, 1), "narrow", "out of range");
  CHECK_ERROR(x.slice(0, 0, 2, 0), "slice", "step");
  CHECK_ERROR(Tensor::scalar(1).slice(0, 0, 1), "slice", "0-d");
  CHECK_ERROR(x.select(2, 4), "select", "index 4", "size 4");
  CHECK_ERROR(x.select(-4, 0), "select", "out of range");
  CHECK_ERROR(x.expand({2, 5, 4}), "expand", "[2, 3, 4]", "[2, 5, 4]");
  CHECK_ERROR(x.expand({3, 4}), "expand", "fewer dimensions");
  CHECK_ERROR(Tensor::zeros({1, 3}).expand({-2, 3}), "expand", "-2");
  CHECK_ERROR(Tensor::zeros({3}).expand({-1, 3}), "expand", "leading");
  CHECK_ERROR(x.squeeze(3), "squeeze", "out of range");
  CHECK_ERROR(x.unsqueeze(4), "unsqueeze", "out of range");
  CHECK_ERROR(x.flatten(2, 1), "flatten", "start_dim");
  CHECK_ERROR(x.t(), "t", "[2, 3, 4]");
}
