// Lesson 01: a tour of tensors and autograd.
//
// What you will see (each section is one function below, in this order; main() lists them):
//   1. tensors_and_dtypes: how to make tensors, their dtypes, and what a tensor prints like.
//   2. views_share_storage: reshape, transpose, slices and rows are new *handles* onto the same
//      memory, so a write through a view shows up in the original. Strides explain how.
//   3. broadcasting: how tensors of different shapes combine ([3, 1] + [4] -> [3, 4]), shown
//      with shapes, and the error you get when shapes do not fit.
//   4. computation_graph: one tanh layer and a squared-error loss. Every op records a node; the
//      graph is written as a Graphviz drawing (graph.dot, and graph.svg when the `dot` program
//      is installed).
//   5. backward_chain_rule: the chain rule run in reverse over that graph. We derive the same
//      gradients by hand and check they agree, then see that gradients accumulate and how
//      no-grad works.
//   6. gradient_check: every gradient element from backward() next to a finite-difference
//      estimate (L(w + eps) - L(w - eps)) / (2 eps), side by side, and mmgrad::gradcheck;
//      then a deliberately wrong hand-written gradient, caught.
//   7. summary: the target and the figures.
//
// The last line is `result: max_grad_err=... seconds=...`: the largest relative difference
// between the analytic and the numeric gradient (target: below 1e-6).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/lesson.h"
#include "mmgrad/mmgrad.h"

using namespace mmgrad;

namespace {

// "[2, 3]" for the tables below.
std::string shape_of(const Tensor& t) { return t.shape().str(); }

// "yes" / "no" for the tables below.
const char* yes_no(bool b) { return b ? "yes" : "no"; }

// The loss of section 4: L(W, b) = mean((tanh(x W + b) - y)^2).
Tensor layer_loss(const Tensor& x, const Tensor& y, const Tensor& W, const Tensor& b) {
  Tensor z = matmul(x, W) + b;  // [4, 3] @ [3, 2] -> [4, 2]; b [2] broadcasts over the rows
  Tensor h = tanh(z);
  return mean(square(h - y));
}

// ---- 1. Tensors: creation and dtypes ------------------------------------------------------------
void tensors_and_dtypes(const lesson::Args& args) {
  lesson::section("1. Tensors: creation and dtypes");
  // A tensor is an n-dimensional array: a shape, a dtype (the type of each element) and a
  // device (cpu or cuda). These are the usual ways to make one.
  Tensor a = Tensor::from_vector({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3});  // float32 by default
  Tensor z = Tensor::zeros({2, 3});
  Tensor r = Tensor::arange(6);                      // int64: 0, 1, ..., 5
  Tensor g = Tensor::randn({2, 3}, DType::Float64);  // standard normal, seeded by --seed
  Tensor e = Tensor::eye(3);
  auto show = [](const char* code, const Tensor& t) { lesson::print("{}\n{}\n", code, t.str()); };
  show("a = Tensor::from_vector({1..6}, {2, 3})", a);
  show("Tensor::zeros({2, 3})", z);
  show("Tensor::arange(6)", r);
  show("Tensor::randn({2, 3}, kFloat64)", g);
  show("Tensor::eye(3)", e);

  // The dtype decides how many bytes an element takes and what arithmetic means.
  // Comparisons give bool tensors; .to(dtype) converts (and copies).
  Tensor mask = a > 3.0;
  lesson::print("{:<28} {:<10} {:<8} {}", "tensor", "dtype", "bytes/el", "values");
  auto dtype_row = [](const char* what, const Tensor& t) {
    lesson::print("{:<28} {:<10} {:<8} {}", what, dtype_name(t.dtype()), t.element_size(), t.str());
  };
  dtype_row("a", a.flatten());
  dtype_row("a.to(kFloat64)", a.to(DType::Float64).flatten());
  dtype_row("(a * 0.7).to(kInt64)", (a * 0.7).to(DType::Int64).flatten());
  dtype_row("a > 3 (a comparison)", mask.flatten());
  lesson::print("\nfloat32 keeps ~7 significant digits, float64 ~16: 1/3 is {:.10f} vs {:.10f}",
                Tensor::scalar(1.0 / 3.0, DType::Float32).item(),
                Tensor::scalar(1.0 / 3.0, DType::Float64).item());
  lesson::print("(training uses float32 for speed; the gradient check below uses float64.)");
  // The device is where the numbers live. .to(device) copies a tensor there; an op needs all
  // its inputs on one device. Sections 4-6 run on --device (cpu unless you ask for cuda).
  lesson::print("a.device() = {}; a.to({}).device() = {}", device_name(a.device()),
                device_name(args.device), device_name(a.to(args.device).device()));
}

// ---- 2. Views share storage ---------------------------------------------------------------------
void views_share_storage() {
  lesson::section("2. Views share storage");
  // A Tensor is a handle: (storage, shape, strides, offset). A view is a new handle onto
  // the SAME storage with other strides: no numbers are copied. stride[d] says how many
  // elements to skip in memory to move one step along dimension d.
  Tensor m = Tensor::arange(0.0, 12.0, 1.0, DType::Float32).reshape({3, 4});
  Tensor mt = m.t();            // transpose: swaps the strides
  Tensor row = m[1];            // row 1: a 1-D view with an offset of 4
  Tensor col = m.select(1, 2);  // column 2: stride 4 (every 4th element)
  Tensor flat = m.view({12});
  lesson::print("{:<20} {:<8} {:<8} {:<7} {:<10} {}", "view", "shape", "strides", "offset",
                "contiguous", "same storage as m?");
  auto view_row = [&](const char* name, const Tensor& t) {
    lesson::print("{:<20} {:<8} {:<8} {:<7} {:<10} {}", name, shape_of(t), t.strides().str(),
                  t.storage_offset(), yes_no(t.is_contiguous()),
                  yes_no(t.storage() == m.storage()));
  };
  view_row("m", m);
  view_row("m.t()", mt);
  view_row("m[1]", row);
  view_row("m[:, 2]", col);
  view_row("m.view(12)", flat);
  view_row("m.t().contiguous()", mt.contiguous());

  // Writing through a view changes the original: the view IS the original's memory.
  row.fill_(-1.0);   // m[1] = -1
  col.fill_(100.0);  // m[:, 2] = 100
  lesson::print("\nafter m[1].fill_(-1) and m[:, 2].fill_(100), m is\n{}", m.str());
  lesson::print("and the transpose view m.t() sees the same numbers:\n{}", mt.str());
  lesson::print("(.contiguous() and .clone() copy; use them when you need independent memory.)");
}

// ---- 3. Broadcasting ----------------------------------------------------------------------------
void broadcasting() {
  lesson::section("3. Broadcasting");
  // Rule (PyTorch's / NumPy's): align the shapes at the right; each pair of sizes must be
  // equal or one of them 1 (a missing dim counts as 1). A size-1 dim is stretched to match
  // without copying (stride 0). So a [3, 1] column plus a [4] row is a [3, 4] table.
  Tensor colv = Tensor::from_vector({0.0, 10.0, 20.0}, {3, 1});
  Tensor rowv = Tensor::from_vector({1.0, 2.0, 3.0, 4.0}, {4});
  lesson::print("[3, 1] + [4] -> {}\n{}\n", shape_of(colv + rowv), (colv + rowv).str());
  struct Case {
    Shape a, b;
  };
  std::vector<Case> cases = {
      {{2, 3}, {2, 3}},          {{2, 3}, {3}}, {{2, 3}, {1}},   {{4, 1, 5}, {3, 1}},
      {{8, 1, 6, 1}, {7, 1, 5}}, {{2, 3}, {2}}, {{3, 4}, {4, 3}}};
  lesson::print("{:<16} {:<14} {}", "a", "b", "a + b");
  for (const Case& c : cases) {
    std::string result;
    try {
      result = shape_of(Tensor::zeros(c.a) + Tensor::zeros(c.b));
    } catch (const Error& err) {
      result = std::string("error: ") + err.what();
    }
    lesson::print("{:<16} {:<14} {}", c.a.str(), c.b.str(), result);
  }
  lesson::print(
      "\nThe gradient of a broadcast input is summed over the dims it was stretched\n"
      "along (you will see this for the bias b in section 5).");
}

// ---- 4. A small computation graph ---------------------------------------------------------------
// What sections 5 and 6 reuse: the data, the parameters and the recorded graph.
struct Layer {
  Tensor x, y;        // data: 4 samples of 3 features, targets of 2 outputs
  Tensor W, b;        // parameters (leaves that require grad)
  Tensor h, diff, L;  // h = tanh(x W + b), diff = h - y, L = mean(diff^2)
  std::string dot_path, svg_path;
  bool have_svg = false;
};

Layer computation_graph(const lesson::Args& args) {
  lesson::section("4. A small computation graph");
  // One layer of a network on 4 samples with 3 features and 2 outputs:
  //   z = x W + b      h = tanh(z)      L = mean((h - y)^2)
  // x and y are data (no gradient); W and b are parameters: requires_grad_() asks autograd
  // to record every op that uses them. We use float64 so the gradient check in section 6
  // can resolve differences down to ~1e-10.
  // Everything lives on --device (cpu by default): .to(device) moves data; parameters are
  // moved first and then marked, so they stay leaves.
  const Device dev = args.device;
  Layer l;
  l.x = Tensor::randn({4, 3}, DType::Float64).to(dev);
  l.y = Tensor::randn({4, 2}, DType::Float64).tanh().to(dev);  // targets in (-1, 1)
  l.W = (Tensor::randn({3, 2}, DType::Float64) * 0.5).to(dev).requires_grad_();
  l.b = Tensor::zeros({2}, DType::Float64).to(dev).requires_grad_();
  l.W.set_name("W");
  l.b.set_name("b");

  Tensor z = matmul(l.x, l.W) + l.b;
  l.h = tanh(z);
  l.diff = l.h - l.y;
  l.L = mean(square(l.diff));
  l.h.retain_grad();  // keep dL/dh too (non-leaf gradients are freed by default)
  lesson::print("x {}  W {}  b {}  ->  z {}  ->  h {}  ->  L {} = {:.6f}", shape_of(l.x),
                shape_of(l.W), shape_of(l.b), shape_of(z), shape_of(l.h), shape_of(l.L),
                l.L.item());
  lesson::print("\nEach result remembers the op that made it (its grad_fn) and that op's inputs:");
  lesson::print(
      "  L.requires_grad() = {}, L.is_leaf() = {};  W.is_leaf() = {};  x.requires_grad() = {}",
      l.L.requires_grad(), l.L.is_leaf(), l.W.is_leaf(), l.x.requires_grad());

  // The graph as a picture: ops are boxes, parameters green ellipses, the loss at the bottom.
  l.dot_path = args.path("graph.dot");
  l.svg_path = args.path("graph.svg");
  l.have_svg = write_svg(l.L, l.svg_path);  // writes graph.dot next to it in any case
  lesson::print_inline(
      "\nthe graph in Graphviz DOT ({}): boxes are ops, ellipses tensors; arrows run\n"
      "in the forward direction and backward() walks them in reverse. mean() shows up\n"
      "as sum then mul_scalar (1/n), square() as pow:\n{}",
      l.dot_path, to_dot(l.L));
  if (l.have_svg)
    lesson::print("wrote {} (the same graph drawn by Graphviz)", l.svg_path);
  else
    lesson::print(
        "(Graphviz `dot` not found: only {} was written; render it with "
        "`dot -Tsvg {} -o graph.svg`)",
        l.dot_path, l.dot_path);
  return l;
}

// ---- 5. backward(): the chain rule in reverse ---------------------------------------------------
void backward_chain_rule(Layer& l) {
  lesson::section("5. backward(): the chain rule in reverse");
  // L.backward() visits the graph once from L back to the leaves. Each op multiplies the
  // gradient arriving from above by its own local derivative and passes it down; W.grad()
  // and b.grad() then hold dL/dW and dL/db.
  l.L.backward();
  lesson::print("W.grad() = dL/dW\n{}\n\nb.grad() = dL/db\n{}\n", l.W.grad().str(),
                l.b.grad().str());

  // The same chain rule by hand (n = 8 elements in the mean):
  //   dL/dh = 2 (h - y) / n
  //   dL/dz = dL/dh * (1 - h^2)          tanh'(z) = 1 - tanh(z)^2
  //   dL/dW = x^T dL/dz                  (the matmul's backward)
  //   dL/db = sum of dL/dz over the rows (b was broadcast over the 4 rows: its gradient sums)
  {
    NoGradGuard no_grad;  // plain arithmetic: nothing here needs recording
    const double n = static_cast<double>(l.h.numel());
    Tensor dh = l.diff * (2.0 / n);
    Tensor dz = dh * (1.0 - square(l.h));
    Tensor dW = matmul(l.x.t(), dz);
    Tensor db = sum(dz, {0});
    double errW = max(abs(dW - l.W.grad())).item();
    double errb = max(abs(db - l.b.grad())).item();
    double errh = max(abs(dh - l.h.grad())).item();
    lesson::print(
        "by hand vs backward(): max |difference| dL/dh {:.1e}, dL/dW {:.1e}, dL/db {:.1e}", errh,
        errW, errb);
  }

  // Gradients ACCUMULATE: a second backward adds to .grad(). That is why training loops
  // clear them (optimizer.zero_grad()) before each step.
  Tensor g1 = l.W.grad().clone();
  layer_loss(l.x, l.y, l.W, l.b).backward();
  lesson::print(
      "after a second forward + backward, |W.grad()| / |first W.grad()| = {:.3f} (accumulated)",
      sum(abs(l.W.grad())).item() / sum(abs(g1)).item());
  l.W.set_grad(Tensor());
  l.b.set_grad(Tensor());
  lesson::print("after W.set_grad(Tensor()) the gradient is {}",
                l.W.grad().defined() ? "still there" : "cleared");

  // Under NoGradGuard nothing is recorded: the result has no grad_fn and cannot backprop.
  {
    NoGradGuard no_grad;
    Tensor l2 = layer_loss(l.x, l.y, l.W, l.b);
    lesson::print("inside NoGradGuard: loss.requires_grad() = {} (evaluation needs no graph)",
                  l2.requires_grad());
  }
}

// ---- 6. Gradient check against finite differences ----------------------------------------------
// The central difference (L(w + eps) - L(w - eps)) / (2 eps) for element j of parameter p.
double numeric_gradient(Layer& l, Tensor& p, int64_t j, double eps) {
  // Element j as a one-element view of the parameter (section 2: writing through a view
  // writes the parameter itself). In-place edits of a tensor that requires grad are only
  // allowed when autograd is not recording.
  NoGradGuard no_grad;
  Tensor e = p.view({-1}).narrow(0, j, 1);
  Tensor orig = e.clone();
  e.copy_(orig + eps);
  double lp = layer_loss(l.x, l.y, l.W, l.b).item();
  e.copy_(orig - eps);
  double lm = layer_loss(l.x, l.y, l.W, l.b).item();
  e.copy_(orig);
  return (lp - lm) / (2 * eps);
}

struct CheckResult {
  double max_err = 0;  // the table's largest error
  bool gradcheck_ok = false;
};

CheckResult gradient_check(Layer& l) {
  lesson::section("6. Gradient check: analytic vs numeric, element by element");
  // How do we know backward() is right? Nudge one parameter element by +-eps and watch the
  // loss: the central difference approximates dL/dw with an error of order eps^2. In float64
  // with eps = 1e-6 the two should agree to ~1e-9.
  // Error per element: |analytic - numeric| / max(1, |analytic|, |numeric|) (relative for
  // large gradients, absolute for small ones), the same rule as mmgrad::gradcheck.
  const double eps = 1e-6;
  layer_loss(l.x, l.y, l.W, l.b).backward();
  lesson::print("{:<6} {:<8} {:>16} {:>16} {:>12}", "param", "index", "analytic", "numeric",
                "rel. error");
  CheckResult c;
  for (Tensor* p : {&l.W, &l.b}) {
    std::vector<double> analytic = p->grad().to_vector<double>();
    for (int64_t j = 0; j < p->numel(); ++j) {
      double numeric = numeric_gradient(l, *p, j, eps);
      double a_j = analytic[static_cast<size_t>(j)];
      double err = std::abs(a_j - numeric) / std::max({1.0, std::abs(a_j), std::abs(numeric)});
      c.max_err = std::max(c.max_err, err);
      std::string idx = p->dim() == 2 ? cat_str("[", j / p->size(1), ",", j % p->size(1), "]")
                                      : cat_str("[", j, "]");
      lesson::print("{:<6} {:<8} {:16.10f} {:16.10f} {:12.2e}", p->name(), idx, a_j, numeric, err);
    }
  }
  lesson::print("\nlargest error: {:.2e}", c.max_err);

  // mmgrad::gradcheck automates exactly this (with a random weighting of the outputs, so it
  // also works for functions with many outputs); every op in mmgrad is tested this way.
  GradcheckResult gc =
      gradcheck([&](const std::vector<Tensor>& in) { return layer_loss(l.x, l.y, in[0], in[1]); },
                {l.W.detach().requires_grad_(), l.b.detach().requires_grad_()});
  c.gradcheck_ok = gc.ok;
  lesson::print("{}", gc.report);
  lesson::print(
      "(gradcheck weights the output by a random number w, so its values are the\n"
      "table's times w; the errors are what matter.)");

  // What a bug looks like: forget tanh's derivative in the hand-written dL/dW.
  {
    NoGradGuard no_grad;
    Tensor hh = tanh(matmul(l.x, l.W) + l.b);
    Tensor wrong = matmul(l.x.t(), (hh - l.y) * (2.0 / hh.numel()));  // missing * (1 - h^2)
    double bug = max(abs(wrong - l.W.grad())).item();
    lesson::print(
        "\nA hand-written dL/dW that forgets tanh' is off by up to {:.2e}:\n"
        "the check catches it at once.",
        bug);
  }
  return c;
}

// ---- 7. Summary ---------------------------------------------------------------------------------
void summary(const Layer& l, const CheckResult& c) {
  lesson::section("7. Summary");
  const double target = 1e-6;
  bool met = c.max_err < target && c.gradcheck_ok;
  lesson::print("max_grad_err = {:.2e} (target < {:.0e}): {}", c.max_err, target,
                met ? "target met" : "TARGET MISSED");
  lesson::print("figures: {}{}", l.dot_path, l.have_svg ? ", " + l.svg_path : "");

  lesson::Result()
      .add("max_grad_err", c.max_err)
      .add("gradcheck_ok", c.gradcheck_ok ? 1.0 : 0.0)
      .add("graph_svg", l.have_svg ? 1.0 : 0.0)
      .print();
}

}  // namespace

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Args args = lesson::parse_args(
        argc, argv, "01_autograd_tour",
        "tensors, views, broadcasting, a computation graph, backward() and a gradient check",
        lesson::kUsesNone);
    // The lesson is small enough that --quick runs the same steps; it exists for the test.
    tensors_and_dtypes(args);
    views_share_storage();
    broadcasting();
    Layer layer = computation_graph(args);
    backward_chain_rule(layer);
    CheckResult check = gradient_check(layer);
    summary(layer, check);
  });
}
