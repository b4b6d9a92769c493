// Lesson 01b: write your own op.
//
// mmgrad has no softplus. softplus.h/.cpp beside this file adds it from outside the library,
// the way you would add any op you need: a forward built from existing ops, a backward Node of
// its own, and the backward's math as a small function. Then we make sure it is right.
//
// What you will see:
//   1. The forward: softplus(x) = log(1 + e^x), a smooth relu, in a form that cannot overflow,
//      against a plain double-precision reference (and the naive formula overflowing in float32).
//   2. The backward Node: y.grad_fn() is our SoftplusBackward; backward() calls it, and
//      x.grad() comes out as sigmoid(x).
//   3. gradcheck: every element of the analytic gradient against central differences, for
//      beta = 1 and beta = 2 (float64).
//   4. Two deliberately wrong backwards (a sign slip, and a forgotten chain-rule factor), each
//      CAUGHT by gradcheck, which names the element that differs and by how much.
//   5. The op in a model: an MLP with softplus activations, trained with the logistic loss
//      written with softplus, on two moons (lesson 00's data); accuracy on held-out points.
//
// Flags: --steps N (training steps, default 500), --seed N. The lesson takes under a second, so
// --quick (the test's setting) runs it unchanged.
// The last line is `result: forward_err=... gradcheck_err=... wrong_caught=... test_acc=...`.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "00_micrograd/two_moons.h"
#include "01b_write_your_own_op/softplus.h"
#include "common/lesson.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/nn/linear.h"
#include "mmgrad/optim/optim.h"

using namespace mmgrad;
using lesson::softplus;

namespace {

struct State {
  lesson::Args args;
  double forward_err = 0, gradcheck_err = 0;
  bool gradcheck_ok = false;
  int wrong_caught = 0;
  double train_acc = 0, test_acc = 0;
};

// ------------------------------------------------------------------------------------------------
// 1. The forward
// ------------------------------------------------------------------------------------------------
void section_forward(State& st) {
  lesson::section("1. The forward: softplus(x) = log(1 + e^x), computed safely");
  // The values against a reference computed element by element in double precision with the
  // C library's log1p (exact to the last digit). Both branches of the op show up: beta x <= 20
  // (the log formula) and beta x > 20 (x itself).
  std::vector<double> xs = {-40.0, -5.0, -1.0, 0.0, 0.5, 1.0, 5.0, 19.0, 25.0, 800.0};
  Tensor x = Tensor::from_vector(xs, {static_cast<int64_t>(xs.size())}, DType::Float64);
  std::vector<double> y = softplus(x).to_vector<double>();
  lesson::print("{:>8} {:>24} {:>24} {:>10}", "x", "softplus(x)", "log1p(exp(x)) in double",
                "rel. err");
  for (size_t i = 0; i < xs.size(); ++i) {
    double ref = xs[i] > 20 ? xs[i] : std::log1p(std::exp(xs[i]));
    double err = std::abs(y[i] - ref) / std::abs(ref);
    st.forward_err = std::max(st.forward_err, err);
    lesson::print("{:>8g} {:>24.17g} {:>24.17g} {:>10.1e}", xs[i], y[i], ref, err);
  }
  lesson::print("largest relative error {:.1e}: exact to rounding, even at x = -40, where",
                st.forward_err);
  lesson::print("log(1 + e^x) computed as written gives 0 (1 + 4e-18 rounds to 1).");

  // Why the stable form: e^x overflows float32 above x = 88.7, and log(inf) = inf.
  Tensor big = Tensor::from_vector({10.0, 90.0, 200.0}, {3}, DType::Float32);
  lesson::print("\nfloat32 x = [10, 90, 200]:");
  lesson::print("  naive log(1 + exp(x)) = {}", log(1.0 + exp(big)).str());
  lesson::print("  softplus(x)           = {}", softplus(big).str());
}

// ------------------------------------------------------------------------------------------------
// 2. The backward Node
// ------------------------------------------------------------------------------------------------
void section_node() {
  lesson::section("2. The backward Node");
  // x requires grad, so softplus() made a SoftplusBackward node and made it y's grad_fn. The
  // node saved x (what the backward needs) and nothing else.
  Tensor x = Tensor::from_vector({-2.0, 0.0, 3.0}, {3}, DType::Float64).requires_grad_();
  Tensor y = softplus(x);
  Tensor loss = sum(y * y);  // any scalar: dL/dy = 2 y
  lesson::print("y = softplus(x) = {}", y.str());
  lesson::print("y.grad_fn()->name() = \"{}\"; the loss's graph: sum <- mul <- softplus <- x",
                y.grad_fn()->name());
  loss.backward();
  // By hand: dL/dx = dL/dy * dy/dx = 2 y * sigmoid(x).
  Tensor by_hand;
  {
    NoGradGuard no_grad;
    by_hand = 2.0 * y * sigmoid(x);
  }
  lesson::print("x.grad()           = {}", x.grad().str());
  lesson::print("2 y * sigmoid(x)   = {}  (by hand)", by_hand.str());
  lesson::print(
      "backward() reached our Node like any built-in one: it handed it dL/dy, the Node called\n"
      "softplus_backward(x, dL/dy) and passed the result on to x. After backward the engine\n"
      "freed the saved x (a second backward would be an error, as for every op).");
}

// ------------------------------------------------------------------------------------------------
// 3. gradcheck
// ------------------------------------------------------------------------------------------------

// A float64 test input covering both branches: values from about -8 to 8, two large ones that
// take the x branch (25, 40) and one very negative. No value sits within 1e-3 of the threshold,
// where the two branches meet with a 2e-9 jump that central differences would see.
Tensor gradcheck_input() {
  Tensor x = Tensor::randn({4, 5}, DType::Float64) * 3.0;
  std::vector<double> v = x.to_vector<double>();
  v[3] = 25.0, v[7] = 40.0, v[11] = -30.0;
  return Tensor::from_vector(v, {4, 5}, DType::Float64).requires_grad_();
}

void section_gradcheck(State& st) {
  lesson::section("3. gradcheck: the backward against finite differences");
  // gradcheck perturbs every input element by +-1e-6, recomputes the op, and compares the
  // central difference with the gradient our Node returned (lesson 01, section 6).
  Tensor x = gradcheck_input();
  st.gradcheck_ok = true;
  for (double beta : {1.0, 2.0}) {
    GradcheckResult r =
        gradcheck([beta](const std::vector<Tensor>& in) { return softplus(in[0], beta); }, {x});
    lesson::print("beta = {}: {}", beta, r.report);
    st.gradcheck_ok = st.gradcheck_ok && r.ok;
    st.gradcheck_err = std::max(st.gradcheck_err, r.max_error);
  }
}

// ------------------------------------------------------------------------------------------------
// 4. Wrong backwards, caught
// ------------------------------------------------------------------------------------------------

// Bug 1, a sign slip: sigmoid(-x) is the derivative of softplus(-x), not of softplus(x).
Tensor backward_sign_slip(const Tensor& x, const Tensor& grad_out, double beta, double threshold) {
  Tensor z = x * beta;
  return where(z > threshold, grad_out, grad_out * sigmoid(-z));
}

// Bug 2, the chain rule forgotten: returns dy/dx instead of dL/dx = dL/dy * dy/dx.
Tensor backward_no_chain_rule(const Tensor& x, const Tensor& grad_out, double beta,
                              double threshold) {
  Tensor z = x * beta;
  return where(z > threshold, ones_like(grad_out), sigmoid(z));
}

void section_wrong_backward(State& st) {
  lesson::section("4. Two wrong backwards, caught by gradcheck");
  // The forward stays right in both: only the Node's math changes. A model trained with either
  // would run without any error and simply learn worse (or not at all); gradcheck finds it in
  // milliseconds.
  Tensor x = gradcheck_input();
  struct Bug {
    const char* what;
    lesson::SoftplusBackwardFn fn;
  };
  for (const Bug& bug :
       {Bug{"sign slip: grad_out * sigmoid(-x)", backward_sign_slip},
        Bug{"chain rule forgotten: sigmoid(x), no grad_out", backward_no_chain_rule}}) {
    lesson::SoftplusBackwardFn fn = bug.fn;
    GradcheckResult r = gradcheck(
        [fn](const std::vector<Tensor>& in) { return lesson::softplus_with_backward(in[0], fn); },
        {x});
    const int64_t i = r.worst_index, cols = x.size(1);
    lesson::print("bug: {}", bug.what);
    lesson::print("  {}", r.ok ? "NOT caught" : "caught: gradcheck FAILED");
    lesson::print(
        "  worst element x[{}, {}] = {:.4f}: analytic {:.6f}, numeric {:.6f}, error {:.2e}",
        i / cols, i % cols, x.to_vector<double>()[static_cast<size_t>(i)], r.worst_analytic,
        r.worst_numeric, r.max_error);
    st.wrong_caught += r.ok ? 0 : 1;
  }
  lesson::print(
      "(gradcheck weights the output by random numbers w, so its \"analytic\" value is\n"
      "w * dy/dx: a backward that ignores grad_out = w is wrong for every weighting but 1.)");
}

// ------------------------------------------------------------------------------------------------
// 5. The op in a model
// ------------------------------------------------------------------------------------------------

// The points of `d` as X [N, 2] and the labels as float [N, 1] (0 or 1), on `device`.
void to_tensors(const lesson::Moons& d, Device device, Tensor& X, Tensor& Y) {
  std::vector<float> xs, ys;
  for (size_t i = 0; i < d.size(); ++i) {
    xs.insert(xs.end(), {static_cast<float>(d.x[i]), static_cast<float>(d.y[i])});
    ys.push_back(static_cast<float>(d.label[i]));
  }
  const int64_t n = static_cast<int64_t>(d.size());
  X = Tensor::from_vector(xs, {n, 2}).to(device);
  Y = Tensor::from_vector(ys, {n, 1}).to(device);
}

void section_model(State& st) {
  const int steps = st.args.steps_or(500);  // 0.3 s: --quick runs the same
  MMGRAD_CHECK(steps >= 1, "01b_write_your_own_op: expects --steps >= 1, got ", steps);
  lesson::section(
      lesson::format("5. softplus in a model: a 2-32-32-1 MLP, {} steps of Adam", steps));
  // Two moons with more noise than lesson 00 (0.2): 500 training and 1000 held-out points.
  Generator gen(st.args.seed);
  lesson::Moons train = lesson::make_moons(500, 0.2, gen);
  lesson::Moons test = lesson::make_moons(1000, 0.2, gen);
  Tensor X, Y, Xt, Yt;
  to_tensors(train, st.args.device, X, Y);
  to_tensors(test, st.args.device, Xt, Yt);

  nn::Linear l1(2, 32), l2(32, 32), l3(32, 1);
  for (nn::Linear* l : {&l1, &l2, &l3}) l->to(st.args.device);
  auto logits = [&](const Tensor& x) {
    return l3.forward(softplus(l2.forward(softplus(l1.forward(x)))));
  };
  // The logistic loss (binary cross-entropy on logits z, labels y in {0, 1}), with softplus:
  //   -[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))] = softplus(z) - y z
  // (since -log sigmoid(z) = softplus(-z) = softplus(z) - z). Written this way it never takes
  // the log of a sigmoid that rounded to 0, so it stays finite for any logit.
  auto logistic_loss = [](const Tensor& z, const Tensor& y) { return mean(softplus(z) - y * z); };

  std::vector<Tensor> params;
  for (nn::Linear* l : {&l1, &l2, &l3})
    for (const Tensor& p : l->parameters()) params.push_back(p);
  optim::Adam opt(params, {.lr = 0.01});
  for (int step = 0; step < steps; ++step) {
    Tensor loss = logistic_loss(logits(X), Y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (step % std::max(1, steps / 5) == 0 || step == steps - 1)
      lesson::print("step {:4d}  logistic loss {:.4f}", step, loss.item());
  }

  NoGradGuard no_grad;
  auto accuracy = [&](const Tensor& x, const Tensor& y) {
    Tensor pred = gt(logits(x), 0.0).to(DType::Float32);
    return mean(eq(pred, y).to(DType::Float32)).item();
  };
  st.train_acc = accuracy(X, Y);
  st.test_acc = accuracy(Xt, Yt);
  lesson::print("train accuracy    {:.3f} ({} points)", st.train_acc, train.size());
  lesson::print("held-out accuracy {:.3f} ({} new points; noise 0.2 makes some overlap,",
                st.test_acc, test.size());
  lesson::print("so no boundary gets all of them)");
}

}  // namespace

int main(int argc, char** argv) {
  return lesson::run([&] {
    State st;
    st.args = lesson::parse_args(
        argc, argv, "01b_write_your_own_op",
        "a new op (softplus) with its own backward Node, gradchecked, a wrong backward caught, "
        "and the op used in a model",
        lesson::kUsesSteps);
    section_forward(st);
    section_node();
    section_gradcheck(st);
    section_wrong_backward(st);
    section_model(st);
    lesson::section("6. Summary");
    lesson::print(
        "forward error {:.1e}; gradcheck {} (worst error {:.1e}); wrong backwards caught {} of 2;",
        st.forward_err, st.gradcheck_ok ? "passed" : "FAILED", st.gradcheck_err, st.wrong_caught);
    lesson::print("held-out accuracy of the softplus MLP {:.3f}", st.test_acc);
    lesson::Result()
        .add("forward_err", st.forward_err)
        .add("gradcheck_ok", st.gradcheck_ok ? 1.0 : 0.0)
        .add("gradcheck_err", st.gradcheck_err)
        .add("wrong_caught", static_cast<double>(st.wrong_caught))
        .add("train_acc", st.train_acc)
        .add("test_acc", st.test_acc)
        .print();
  });
}
