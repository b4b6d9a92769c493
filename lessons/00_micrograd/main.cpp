// Lesson 00: an autograd engine you can read in one sitting (micrograd), and how mmgrad's
// tensor engine does the same thing at scale.
//
// micrograd.h/.cpp beside this file is a complete reverse-mode autodiff engine for single
// numbers in about 100 lines: a Value node per number, an op that records its inputs and its
// local derivative, a topological sort, and backward(), which runs the chain rule in reverse.
//
// What you will see:
//   1. One neuron, tanh(x1 w1 + x2 w2 + b), as a graph of Values: every node's value and
//      gradient after backward(), and one gradient checked against a finite difference.
//   2. Why the chain rule ADDS: a value used twice gets a gradient from each use; and why the
//      sort has no recursion: a chain of 100,000 ops sorts and frees without a stack overflow.
//   3. Training: an MLP of Values (2-16-16-1, tanh) on two moons with a squared loss and
//      gradient descent with momentum.
//   4. Evaluation on held-out points the model never saw, and its decision boundary
//      (decision_boundary.svg) and loss curve (loss.svg).
//   5. The same network in mmgrad's tensor engine: the weights copied in, the same loss; both
//      engines' loss and gradients agree to ~1e-15, and one training step of each is timed.
//   6. Where the two engines differ: a node per matrix instead of per number, broadcasting and
//      its backward (sum_to), saved tensors, no recursion anywhere.
//
// Flags: --steps N (training steps, default 150), --lr X (default 0.1), --seed N.
// --quick: fewer points and steps (for the test).
// The last line is `result: engines_max_diff=... train_acc=... test_acc=... ... seconds=...`.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <unordered_set>
#include <vector>

#include "00_micrograd/micrograd.h"
#include "00_micrograd/two_moons.h"
#include "common/lesson.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/plot/figure.h"

using namespace mmgrad;
namespace mg = mmgrad::micrograd;

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// What the sections share.
struct State {
  lesson::Args args;
  Generator gen{0};
  lesson::Moons train, test;
  std::vector<int> sizes{2, 16, 16, 1};
  std::unique_ptr<mg::MLP> model;
  std::vector<double> losses;
  double train_acc = 0, test_acc = 0;
  double engines_max_diff = 0;
  double ms_micrograd = 0, ms_tensor = 0;
};

// ------------------------------------------------------------------------------------------------
// 1. One neuron as a graph of Values
// ------------------------------------------------------------------------------------------------
void section_one_neuron() {
  lesson::section("1. One neuron as a graph of Values");
  // o = tanh(x1 w1 + x2 w2 + b). Each + and * below makes a new Value that remembers its two
  // inputs and how to pass a gradient back to them.
  mg::ValuePtr x1 = mg::value(2.0), x2 = mg::value(0.0);
  mg::ValuePtr w1 = mg::value(-3.0), w2 = mg::value(1.0), b = mg::value(6.8813735870195432);
  mg::ValuePtr o = mg::tanh(x1 * w1 + x2 * w2 + b);
  mg::backward(o);

  // Every node in topological order (inputs before the ops that use them); backward() visited
  // them in the reverse order, from o down to the leaves.
  const std::vector<std::pair<mg::Value*, const char*>> names = {
      {x1.get(), "x1"}, {x2.get(), "x2"}, {w1.get(), "w1"}, {w2.get(), "w2"}, {b.get(), "b"}};
  lesson::print("{:<4} {:<6} {:>10} {:>10}   what backward_local did", "#", "node", "data", "grad");
  int k = 0;
  for (mg::Value* v : mg::topological_order(o)) {
    std::string name = v->op.empty() ? "leaf" : v->op;
    for (const auto& [p, n] : names)
      if (p == v) name = n;
    std::string how = v->op == "tanh" ? "child.grad += (1 - o^2) * o.grad"
                      : v->op == "*"  ? "a.grad += b * grad,  b.grad += a * grad"
                      : v->op == "+"  ? "a.grad += grad,  b.grad += grad"
                                      : "(a leaf: nothing)";
    lesson::print("{:<4} {:<6} {:>10.4f} {:>10.4f}   {}", k++, name, v->data, v->grad, how);
  }
  lesson::print("o = {:.4f}; do/dn = 1 - o^2 = {:.4f}: the + nodes pass it on unchanged, the *",
                o->data, 1 - o->data * o->data);
  lesson::print(
      "nodes multiply it by the other input (dw1 = x1 * 0.5 = 1.0, dx1 = w1 * 0.5 = -1.5).");

  // A central difference: nudge w1 both ways and watch o.
  const double eps = 1e-6;
  auto f = [&](double w) { return std::tanh(x1->data * w + x2->data * w2->data + b->data); };
  const double numeric = (f(w1->data + eps) - f(w1->data - eps)) / (2 * eps);
  lesson::print("\ndo/dw1: backward() {:.10f}, central difference {:.10f}, |difference| {:.1e}",
                w1->grad, numeric, std::abs(w1->grad - numeric));
}

// ------------------------------------------------------------------------------------------------
// 2. Gradients add up; no recursion
// ------------------------------------------------------------------------------------------------
void section_accumulate_and_depth() {
  lesson::section("2. Gradients add up, and a 100,000-op chain");
  // y = x * x + x uses x three times. Each use adds its share: dy/dx = x + x + 1 = 2x + 1. With
  // "=" instead of "+=" in backward_local, the last use would overwrite the others.
  mg::ValuePtr x = mg::value(3.0);
  mg::ValuePtr y = x * x + x;
  mg::backward(y);
  lesson::print("y = x*x + x at x = 3: dy/dx from backward() = {}, by hand 2x + 1 = {}", x->grad,
                2 * 3.0 + 1);

  // A loop of 100,000 ops (an unrolled recurrence) is a graph 100,000 nodes deep. A recursive
  // topological sort or a recursive destructor would need a stack frame per node and crash;
  // micrograd.cpp sorts with an explicit stack and frees the chain iteratively.
  auto t0 = Clock::now();
  mg::ValuePtr a = mg::value(1.0);
  mg::ValuePtr h = a;
  const int n = 100000;
  for (int i = 0; i < n; ++i) h = h * 0.99999;  // two nodes: the constant and the product
  mg::backward(h);
  // dh/da = 0.99999^n exactly (each step multiplies the derivative by 0.99999).
  lesson::print(
      "chain of {} multiplications: dh/da = {:.6f} (exact 0.99999^{} = {:.6f}), {} nodes,", n,
      a->grad, n, std::pow(0.99999, n), mg::topological_order(h).size());
  h.reset();
  a.reset();
  lesson::print("built, sorted, differentiated and freed in {:.0f} ms, no stack overflow.",
                ms_since(t0));
}

// ------------------------------------------------------------------------------------------------
// 3. Training an MLP made of Values
// ------------------------------------------------------------------------------------------------

// The model's score for every point of `d` (a fresh graph each time).
std::vector<mg::ValuePtr> scores(const mg::MLP& model, const lesson::Moons& d) {
  std::vector<mg::ValuePtr> s;
  for (size_t i = 0; i < d.size(); ++i)
    s.push_back(model({mg::value(d.x[i]), mg::value(d.y[i])})[0]);
  return s;
}

// L = mean over the points of (score - target)^2, targets -1 (class 0) and +1 (class 1).
mg::ValuePtr squared_loss(const std::vector<mg::ValuePtr>& s, const lesson::Moons& d) {
  mg::ValuePtr total = mg::value(0.0);
  for (size_t i = 0; i < s.size(); ++i)
    total = total + mg::pow(s[i] - (d.label[i] == 1 ? 1.0 : -1.0), 2.0);
  return total * (1.0 / static_cast<double>(s.size()));
}

double accuracy(const mg::MLP& model, const lesson::Moons& d) {
  int right = 0;
  for (size_t i = 0; i < d.size(); ++i) {
    double s = model({mg::value(d.x[i]), mg::value(d.y[i])})[0]->data;
    right += (s > 0 ? 1 : 0) == d.label[i];
  }
  return static_cast<double>(right) / static_cast<double>(d.size());
}

void section_train(State& st) {
  const int n_train = st.args.quick ? 40 : 64;
  const int steps = st.args.steps_or(st.args.quick ? 100 : 150);
  const double lr = st.args.get_double("--lr", 0.1), momentum = 0.9;
  MMGRAD_CHECK(steps >= 1 && lr > 0, "00_micrograd: expects --steps >= 1 and --lr > 0, got ", steps,
               " and ", lr);
  lesson::section(lesson::format("3. Training a 2-16-16-1 MLP of Values: {} steps on {} points",
                                 steps, n_train));
  // Two moons, noise 0.1: the training set, and a held-out test set drawn the same way
  // (new points: the generator moves on).
  st.gen = Generator(st.args.seed);
  st.train = lesson::make_moons(n_train, 0.1, st.gen);
  st.test = lesson::make_moons(400, 0.1, st.gen);
  Generator& g = st.gen;
  st.model = std::make_unique<mg::MLP>(
      st.sizes, [&g] { return Tensor::rand({1}, DType::Float64, &g).item(); });
  std::vector<mg::ValuePtr> params = st.model->parameters();
  lesson::print("{} parameters, each a leaf Value; {} training points, {} held-out points",
                params.size(), st.train.size(), st.test.size());

  // Gradient descent on the whole training set: forward (a fresh graph), zero the gradients,
  // backward, and move every parameter a step against its gradient. With momentum (PyTorch's
  // SGD with momentum = 0.9): each parameter moves along a running sum of its gradients,
  // v = 0.9 v + grad, p -= lr v, which crosses the long flat valleys of this loss much faster
  // than the plain step p -= lr grad.
  size_t nodes = 0;
  std::vector<double> velocity(params.size(), 0.0);
  for (int step = 0; step < steps; ++step) {
    mg::ValuePtr loss = squared_loss(scores(*st.model, st.train), st.train);
    for (const mg::ValuePtr& p : params) p->grad = 0;
    if (step == 0) nodes = mg::topological_order(loss).size();
    mg::backward(loss);
    for (size_t i = 0; i < params.size(); ++i) {
      velocity[i] = momentum * velocity[i] + params[i]->grad;
      params[i]->data -= lr * velocity[i];
    }
    st.losses.push_back(loss->data);
    if (step % std::max(1, steps / 6) == 0 || step == steps - 1)
      lesson::print("step {:4d}  loss {:.4f}  train accuracy {:.3f}", step, loss->data,
                    accuracy(*st.model, st.train));
  }
  lesson::print("(each step builds a graph of {} Value nodes: one per multiply, add and tanh)",
                nodes);
}

// ------------------------------------------------------------------------------------------------
// 4. Held-out accuracy and the decision boundary
// ------------------------------------------------------------------------------------------------
void section_evaluate(State& st) {
  lesson::section("4. Held-out accuracy and the decision boundary");
  st.train_acc = accuracy(*st.model, st.train);
  st.test_acc = accuracy(*st.model, st.test);
  lesson::print("train accuracy    {:.3f} ({} points the model was fitted to)", st.train_acc,
                st.train.size());
  lesson::print("held-out accuracy {:.3f} ({} new points from the same distribution)", st.test_acc,
                st.test.size());
  lesson::print("(the held-out number is the honest one: a model can fit its training points");
  lesson::print("perfectly and still draw the boundary badly in between.)");

  // The boundary: the sign of the score on a grid, drawn as a pale background of squares,
  // with the training points on top.
  // (40 x 36 cells: about 8 pixels each way in the 640 x 480 figure, so the squares touch.)
  const int nx = 40, ny = 36;
  const double x0 = -1.6, x1 = 2.6, y0 = -1.1, y1 = 1.6;
  std::vector<double> gx[2], gy[2];
  for (int i = 0; i < nx; ++i)
    for (int j = 0; j < ny; ++j) {
      double px = x0 + (x1 - x0) * (i + 0.5) / nx, py = y0 + (y1 - y0) * (j + 0.5) / ny;
      int c = (*st.model)({mg::value(px), mg::value(py)})[0]->data > 0 ? 1 : 0;
      gx[c].push_back(px);
      gy[c].push_back(py);
    }
  plot::ScatterPlot fig(
      lesson::format("MLP of Values on two moons: held-out accuracy {:.3f}", st.test_acc), "x",
      "y");
  fig.add_points("predicted 0", gx[0], gy[0], plot::Marker::Square, "#c6dbef");
  fig.add_points("predicted 1", gx[1], gy[1], plot::Marker::Square, "#fdd0a2");
  std::vector<double> px[2], py[2];
  for (size_t i = 0; i < st.train.size(); ++i) {
    px[st.train.label[i]].push_back(st.train.x[i]);
    py[st.train.label[i]].push_back(st.train.y[i]);
  }
  fig.add_points("class 0 (train)", px[0], py[0], plot::Marker::Circle, "#1f5fa8");
  fig.add_points("class 1 (train)", px[1], py[1], plot::Marker::Circle, "#d9480f");
  fig.set_point_size(4.6);
  fig.set_opacity(1.0);
  fig.set_size(640, 480);
  fig.save(st.args.path("decision_boundary.svg"));

  plot::LinePlot lp("Training loss (micrograd, full batch)", "step", "mean squared error");
  lp.add_series("train loss", st.losses);
  lp.save(st.args.path("loss.svg"));
  lesson::print("wrote {} and {}", st.args.path("decision_boundary.svg"), st.args.path("loss.svg"));
}

// ------------------------------------------------------------------------------------------------
// 5. The same network in mmgrad's tensor engine
// ------------------------------------------------------------------------------------------------

// Number of autograd Nodes in the graph behind t (a walk over grad_fn edges).
size_t count_nodes(const Tensor& t) {
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack;
  if (t.grad_fn()) stack.push_back(t.grad_fn().get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (!seen.insert(n).second) continue;
    for (const Edge& e : n->next)
      if (e.fn) stack.push_back(e.fn.get());
  }
  return seen.size();
}

void section_tensor_engine(State& st) {
  lesson::section("5. The same network in mmgrad's tensor engine");
  // The weights of each layer become one [out, in] matrix and one [out] bias (nn.Linear's
  // layout), copied from the trained Values; the data becomes X [N, 2] and targets T [N, 1].
  const mg::MLP& m = *st.model;
  std::vector<Tensor> W, B;
  for (size_t l = 0; l < m.weights.size(); ++l) {
    std::vector<double> w, b;
    for (size_t o = 0; o < m.weights[l].size(); ++o) {
      for (const mg::ValuePtr& v : m.weights[l][o]) w.push_back(v->data);
      b.push_back(m.biases[l][o]->data);
    }
    const int64_t out = static_cast<int64_t>(m.weights[l].size()), in = st.sizes[l];
    W.push_back(Tensor::from_vector(w, {out, in}, DType::Float64).requires_grad_());
    B.push_back(Tensor::from_vector(b, {out}, DType::Float64).requires_grad_());
  }
  const lesson::Moons& d = st.train;
  const int64_t n = static_cast<int64_t>(d.size());
  std::vector<double> xs, ts;
  for (size_t i = 0; i < d.size(); ++i) {
    xs.insert(xs.end(), {d.x[i], d.y[i]});
    ts.push_back(d.label[i] == 1 ? 1.0 : -1.0);
  }
  Tensor X = Tensor::from_vector(xs, {n, 2}, DType::Float64);
  Tensor T = Tensor::from_vector(ts, {n, 1}, DType::Float64);

  // Forward for all N points at once: each line is ONE node over a whole matrix.
  auto tensor_loss = [&] {
    Tensor h = X;
    for (size_t l = 0; l < W.size(); ++l) {
      h = matmul(h, W[l].t()) + B[l];  // [N, in] @ [in, out] + [out] (broadcast over the N rows)
      if (l + 1 < W.size()) h = tanh(h);
    }
    return mean(square(h - T));
  };

  // One step of each engine on the same weights (timed), then the losses and gradients side by
  // side. The micrograd step is its graph build + backward; the tensor step the same.
  // Each step is timed 3 times and the fastest kept (other programs on the machine only ever
  // add time). Every repetition starts from zero gradients, so the last one is a single pass.
  std::vector<mg::ValuePtr> params = m.parameters();
  mg::ValuePtr mloss;
  Tensor tloss;
  st.ms_micrograd = st.ms_tensor = 1e300;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = Clock::now();
    for (const mg::ValuePtr& p : params) p->grad = 0;
    mloss = squared_loss(scores(m, d), d);
    mg::backward(mloss);
    st.ms_micrograd = std::min(st.ms_micrograd, ms_since(t0));

    t0 = Clock::now();
    for (size_t l = 0; l < W.size(); ++l) W[l].set_grad(Tensor()), B[l].set_grad(Tensor());
    tloss = tensor_loss();
    tloss.backward();
    st.ms_tensor = std::min(st.ms_tensor, ms_since(t0));
  }
  const size_t mnodes = mg::topological_order(mloss).size();
  const size_t tnodes = count_nodes(tloss);

  // Compare: the gradients in micrograd's parameter order (per layer: weights row by row, then
  // biases), which is the row-major order of W[l] and then B[l].
  std::vector<double> tgrad;
  for (size_t l = 0; l < W.size(); ++l) {
    for (double g : W[l].grad().to_vector<double>()) tgrad.push_back(g);
    for (double g : B[l].grad().to_vector<double>()) tgrad.push_back(g);
  }
  double loss_diff = std::abs(mloss->data - tloss.item());
  double grad_diff = 0, grad_max = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    grad_diff = std::max(grad_diff, std::abs(params[i]->grad - tgrad[i]));
    grad_max = std::max(grad_max, std::abs(tgrad[i]));
  }
  st.engines_max_diff = std::max(loss_diff, grad_diff);
  lesson::print("{:<26} {:>22} {:>22}", "", "micrograd (scalars)", "mmgrad (tensors)");
  lesson::print("{:<26} {:>22.15f} {:>22.15f}", "loss", mloss->data, tloss.item());
  lesson::print("{:<26} {:>22} {:>22}", "graph nodes", mnodes, tnodes);
  lesson::print("{:<26} {:>19.2f} ms {:>19.3f} ms", "forward + backward (best of 3)",
                st.ms_micrograd, st.ms_tensor);
  lesson::print(
      "\nmax |loss difference| {:.1e}; max |gradient difference| {:.1e} over {} "
      "parameters (largest gradient {:.3f})",
      loss_diff, grad_diff, params.size(), grad_max);
  lesson::print("The two engines compute the same function and the same derivatives; they only");
  lesson::print("add the numbers in a different order, so they agree to rounding (~1e-16).");
  lesson::print("The tensor engine is {:.0f}x faster here, and the gap grows with the batch.",
                st.ms_micrograd / std::max(st.ms_tensor, 1e-6));
}

// ------------------------------------------------------------------------------------------------
// 6. Where the engines differ
// ------------------------------------------------------------------------------------------------
void section_differences() {
  lesson::section("6. Where the two engines differ");
  lesson::print(
      "* Tensors, not scalars. micrograd makes a node for every multiply and add of every\n"
      "  number; mmgrad makes one node per op on a whole tensor (matmul, +, tanh, mean), so the\n"
      "  graph is tiny and the work runs in tight loops (GEMM kernels, vectorised elementwise\n"
      "  loops, OpenMP threads, or a GPU) instead of one heap object per number.");
  lesson::print(
      "* Broadcasting and sum_to. `matmul(h, W.t()) + B` adds a [out] bias to every row of an\n"
      "  [N, out] matrix. In micrograd each row used the same bias Value, and its gradient\n"
      "  added up through \"+=\". In mmgrad the bias is stretched (broadcast) without copying,\n"
      "  and the backward of + sums the incoming [N, out] gradient back to [out] (sum_to):\n"
      "  the same rule, one call.");
  lesson::print(
      "* Saved tensors. micrograd's backward_local reads its inputs' .data directly, so changing\n"
      "  a value between forward and backward silently gives a wrong gradient. An mmgrad Node\n"
      "  saves exactly the tensors its backward needs (SavedTensor) with their version: an\n"
      "  in-place change before backward is an error, and the engine frees every saved tensor\n"
      "  after backward (unless retain_graph).");
  lesson::print(
      "* No recursion. Both engines sort the graph with an explicit stack and free long chains\n"
      "  iteratively (section 2): a 100,000-op loop neither overflows the stack when sorted nor\n"
      "  when freed. mmgrad also checks each gradient's shape and dtype against its input.");
  lesson::print(
      "* Same idea, same order: sort the graph, seed dL/dL = 1, walk it in reverse, and let each\n"
      "  op add (upstream gradient x local derivative) into its inputs. Lesson 01 follows the\n"
      "  tensor engine through one layer; lesson 01b writes a new op with its own backward.");
}

}  // namespace

int main(int argc, char** argv) {
  return lesson::run([&] {
    State st;
    st.args = lesson::parse_args(argc, argv, "00_micrograd",
                                 "a scalar autograd engine in 100 lines, an MLP trained with it, "
                                 "and the same network in mmgrad's tensor engine",
                                 lesson::kUsesSteps,
                                 {{"--lr X", "step size of gradient descent (default 0.1)"}});
    section_one_neuron();
    section_accumulate_and_depth();
    section_train(st);
    section_evaluate(st);
    section_tensor_engine(st);
    section_differences();
    lesson::Result()
        .add("engines_max_diff", st.engines_max_diff)
        .add("train_acc", st.train_acc)
        .add("test_acc", st.test_acc)
        .add("ms_step_micrograd", st.ms_micrograd)
        .add("ms_step_tensor", st.ms_tensor)
        .print();
  });
}
