// Lesson 00 (micrograd): the scalar engine itself (gradients against central differences, a
// 100,000-op chain that must neither overflow the stack when sorted nor when freed), and the
// lesson in --quick mode (both engines agree, the MLP generalises to held-out points).
#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "00_micrograd/micrograd.h"
#include "00_micrograd/two_moons.h"
#include "lesson_runner.h"
#include "mmgrad/core/error.h"

using namespace mmgrad::micrograd;

namespace {

// d f / d x_i by central differences, f evaluated on plain leaves.
double numeric_grad(const std::function<ValuePtr(const std::vector<ValuePtr>&)>& f,
                    std::vector<double> x, size_t i, double eps = 1e-6) {
  auto eval = [&](const std::vector<double>& v) {
    std::vector<ValuePtr> leaves;
    for (double d : v) leaves.push_back(value(d));
    return f(leaves)->data;
  };
  x[i] += eps;
  double plus = eval(x);
  x[i] -= 2 * eps;
  double minus = eval(x);
  return (plus - minus) / (2 * eps);
}

void check_gradients(const std::string& what,
                     const std::function<ValuePtr(const std::vector<ValuePtr>&)>& f,
                     const std::vector<double>& x) {
  std::vector<ValuePtr> leaves;
  for (double d : x) leaves.push_back(value(d));
  ValuePtr y = f(leaves);
  backward(y);
  for (size_t i = 0; i < x.size(); ++i) {
    double num = numeric_grad(f, x, i);
    INFO(what << ": input " << i << " analytic " << leaves[i]->grad << " numeric " << num);
    CHECK(std::abs(leaves[i]->grad - num) <= 1e-6 * std::max(1.0, std::abs(num)));
  }
}

}  // namespace

TEST_CASE("micrograd: gradients of small expressions match central differences") {
  using V = const std::vector<ValuePtr>&;
  check_gradients("a*b + c", [](V v) { return v[0] * v[1] + v[2]; }, {2.0, -3.0, 10.0});
  check_gradients("tanh neuron", [](V v) { return tanh(v[0] * v[1] + v[2] * v[3] + v[4]); },
                  {2.0, -3.0, 0.5, 1.0, 0.8});
  check_gradients("exp, pow, division", [](V v) { return exp(v[0]) / pow(v[1], 3.0) - v[0]; },
                  {0.3, 1.7});
  check_gradients("a value used many times", [](V v) { return v[0] * v[0] * v[0] + v[0] / v[1]; },
                  {1.3, -0.6});
  check_gradients("mixed with doubles",
                  [](V v) { return 2.0 * v[0] - 1.0 / v[1] + (v[0] + 3.0) * 0.5 - (4.0 - v[1]); },
                  {0.7, 2.1});
  check_gradients("relu on both sides", [](V v) { return relu(v[0]) * 3.0 + relu(v[1]); },
                  {0.4, -0.4});
  // Hand values: the classic neuron, tanh(n) with n = 0.8814 gives do/dn = 0.5.
  ValuePtr x1 = value(2.0), w1 = value(-3.0), b = value(6.8813735870195432);
  ValuePtr o = tanh(x1 * w1 + b);
  backward(o);
  CHECK(o->data == doctest::Approx(0.7071067811865476).epsilon(1e-12));
  CHECK(w1->grad == doctest::Approx(1.0).epsilon(1e-9));
  CHECK(x1->grad == doctest::Approx(-1.5).epsilon(1e-9));
}

TEST_CASE("micrograd: topological order lists every node once, children first") {
  ValuePtr a = value(1.0), b = value(2.0);
  ValuePtr c = a * b;
  ValuePtr d = c + a;  // a is reached twice
  ValuePtr e = d * c;  // so is c
  std::vector<Value*> order = topological_order(e);
  CHECK(order.size() == 5);
  CHECK(std::set<Value*>(order.begin(), order.end()).size() == 5);
  CHECK(order.back() == e.get());
  auto pos = [&](Value* v) { return std::find(order.begin(), order.end(), v) - order.begin(); };
  for (Value* v : order)
    for (const ValuePtr& ch : v->children) CHECK(pos(ch.get()) < pos(v));
  // backward seeds the root with 1 and accumulates: de/da = (c + a)' c + d c' ...
  backward(e);
  // e = (ab + a) ab: de/da = (b + 1) ab + (ab + a) b = 3*2 + 3*2 = 12, de/db = a*ab + (ab+a)*a = 2
  // + 3 = 5
  CHECK(a->grad == doctest::Approx(12.0));
  CHECK(b->grad == doctest::Approx(5.0));
  CHECK(e->grad == 1.0);
}

TEST_CASE("micrograd: a 100000-op chain sorts, differentiates and frees without recursion") {
  // A recursive sort or destructor would need ~100k stack frames here and crash.
  ValuePtr a = value(1.0);
  ValuePtr h = a;
  for (int i = 0; i < 100000; ++i) h = tanh(h * 1.0001);
  CHECK(topological_order(h).size() == 300001);  // per step: a constant, a product, a tanh
  backward(h);
  CHECK(std::isfinite(a->grad));
  CHECK(a->grad > 0);
  h.reset();  // frees the whole chain: must not overflow the stack either
  CHECK(a.use_count() == 1);
  // A chain in which each node uses its input twice (x * x) is freed iteratively too.
  ValuePtr s = value(1.0);
  for (int i = 0; i < 100000; ++i) s = s * s;
  s.reset();
}

TEST_CASE("lesson 00: two moons are balanced and reproducible") {
  mmgrad::Generator g1(3), g2(3);
  mmgrad::lesson::Moons a = mmgrad::lesson::make_moons(50, 0.1, g1);
  mmgrad::lesson::Moons b = mmgrad::lesson::make_moons(50, 0.1, g2);
  CHECK(a.size() == 50);
  CHECK(a.x == b.x);
  int ones = 0;
  for (int l : a.label) ones += l;
  CHECK(ones == 25);
  CHECK_THROWS_AS(mmgrad::lesson::make_moons(-1, 0.1, g1), mmgrad::Error);
}

TEST_CASE("lesson 00: quick run, engines agree, held-out accuracy, figures") {
  lesson_test::Run r = lesson_test::run_lesson("00_micrograd", "--quick");
  INFO(r.output);
  REQUIRE(r.status == 0);
  REQUIRE(r.has("engines_max_diff"));
  // micrograd and the tensor engine: same loss and gradients up to rounding
  CHECK(r["engines_max_diff"] >= 0.0);
  CHECK(r["engines_max_diff"] < 1e-9);
  // held-out points (never trained on): 0.93-1.00 over seeds 0-7 in --quick mode
  CHECK(r["test_acc"] >= 0.90);
  CHECK(r["train_acc"] >= 0.90);
  CHECK(r["ms_step_micrograd"] > 0.0);
  CHECK(r.output.find("no stack overflow") != std::string::npos);
  CHECK(lesson_test::is_svg_file(lesson_test::out_dir("00_micrograd") + "/decision_boundary.svg"));
  CHECK(lesson_test::is_svg_file(lesson_test::out_dir("00_micrograd") + "/loss.svg"));
}
