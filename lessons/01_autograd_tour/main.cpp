// Lesson 01: a tour of tensors and autograd.
//
// What you will see:
//   1. Tensors: how to make them, their dtypes, and what a tensor prints like.
//   2. Views: reshape, transpose, slices and rows are new *handles* onto the same memory, so a
//      write through a view shows up in the original. Strides explain how.
//   3. Broadcasting: how tensors of different shapes combine ([3, 1] + [4] -> [3, 4]), shown
//      with shapes, and the error you get when shapes do not fit.
//   4. A small computation graph: one tanh layer and a squared-error loss. Every op records a
//      node; the graph is written as a Graphviz drawing (graph.dot, and graph.svg when the `dot`
//      program is installed).
//   5. backward(): the chain rule run in reverse over that graph. We derive the same gradients
//      by hand and check they agree, then see that gradients accumulate and how no-grad works.
//   6. A gradient check: every gradient element from backward() next to a finite-difference
//      estimate (L(w + eps) - L(w - eps)) / (2 eps), side by side, and mmgrad::gradcheck.
//
// The last line is `result: max_grad_err=... seconds=...`: the largest relative difference
// between the analytic and the numeric gradient (target: below 1e-6).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "common/lesson.h"
#include "mmgrad.h"

using namespace mmgrad;

namespace {

// "[2, 3] float32" for the tables below.
std::string shape_of(const Tensor& t) { return t.shape().str(); }

// The loss of section 4: L(W, b) = mean((tanh(x W + b) - y)^2).
Tensor layer_loss(const Tensor& x, const Tensor& y, const Tensor& W, const Tensor& b) {
  Tensor z = matmul(x, W) + b;  // [4, 3] @ [3, 2] -> [4, 2]; b [2] broadcasts over the rows
  Tensor h = tanh(z);
  return mean(square(h - y));
}

}  // namespace

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Args args = lesson::parse_args(
        argc, argv, "01_autograd_tour",
        "tensors, views, broadcasting, a computation graph, backward() and a gradient check");
    // The lesson is small enough that --quick runs the same steps; it exists for the test.

    // ---------------------------------------------------------------------------------------
    // 1. Tensors: creation and dtypes
    // ---------------------------------------------------------------------------------------
    lesson::section("1. Tensors: creation and dtypes");
    // A tensor is an n-dimensional array: a shape, a dtype (the type of each element) and a
    // device (cpu or cuda). These are the usual ways to make one.
    Tensor a = Tensor::from_vector({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3});  // float32 by default
    Tensor z = Tensor::zeros({2, 3});
    Tensor r = Tensor::arange(6);                      // int64: 0, 1, ..., 5
    Tensor g = Tensor::randn({2, 3}, DType::Float64);  // standard normal, seeded by --seed
    Tensor e = Tensor::eye(3);
    std::printf("a = Tensor::from_vector({1..6}, {2, 3})\n%s\n\n", a.str().c_str());
    std::printf("Tensor::zeros({2, 3})\n%s\n\n", z.str().c_str());
    std::printf("Tensor::arange(6)\n%s\n\n", r.str().c_str());
    std::printf("Tensor::randn({2, 3}, kFloat64)\n%s\n\n", g.str().c_str());
    std::printf("Tensor::eye(3)\n%s\n\n", e.str().c_str());

    // The dtype decides how many bytes an element takes and what arithmetic means.
    // Comparisons give bool tensors; .to(dtype) converts (and copies).
    Tensor mask = a > 3.0;
    std::printf("%-28s %-10s %-8s %s\n", "tensor", "dtype", "bytes/el", "values");
    auto dtype_row = [](const char* what, const Tensor& t) {
      std::printf("%-28s %-10s %-8zu %s\n", what, dtype_name(t.dtype()), t.element_size(),
                  t.str().c_str());
    };
    dtype_row("a", a.flatten());
    dtype_row("a.to(kFloat64)", a.to(DType::Float64).flatten());
    dtype_row("(a * 0.7).to(kInt64)", (a * 0.7).to(DType::Int64).flatten());
    dtype_row("a > 3 (a comparison)", mask.flatten());
    std::printf("\nfloat32 keeps ~7 significant digits, float64 ~16: 1/3 is %.10f vs %.10f\n",
                Tensor::scalar(1.0 / 3.0, DType::Float32).item(),
                Tensor::scalar(1.0 / 3.0, DType::Float64).item());
    std::printf("(training uses float32 for speed; the gradient check below uses float64.)\n");
    // The device is where the numbers live. .to(device) copies a tensor there; an op needs all
    // its inputs on one device. Sections 4-6 run on --device (cpu unless you ask for cuda).
    std::printf("a.device() = %s; a.to(%s).device() = %s\n", device_name(a.device()),
                device_name(args.device), device_name(a.to(args.device).device()));

    // ---------------------------------------------------------------------------------------
    // 2. Views share storage
    // ---------------------------------------------------------------------------------------
    lesson::section("2. Views share storage");
    // A Tensor is a handle: (storage, shape, strides, offset). A view is a new handle onto
    // the SAME storage with other strides: no numbers are copied. stride[d] says how many
    // elements to skip in memory to move one step along dimension d.
    Tensor m = Tensor::arange(0.0, 12.0, 1.0, DType::Float32).reshape({3, 4});
    Tensor mt = m.t();            // transpose: swaps the strides
    Tensor row = m[1];            // row 1: a 1-D view with an offset of 4
    Tensor col = m.select(1, 2);  // column 2: stride 4 (every 4th element)
    Tensor flat = m.view({12});
    std::printf("%-20s %-8s %-8s %-7s %-10s %s\n", "view", "shape", "strides", "offset",
                "contiguous", "same storage as m?");
    auto view_row = [&](const char* name, const Tensor& t) {
      std::printf("%-20s %-8s %-8s %-7lld %-10s %s\n", name, shape_of(t).c_str(),
                  t.strides().str().c_str(), static_cast<long long>(t.storage_offset()),
                  t.is_contiguous() ? "yes" : "no", t.storage() == m.storage() ? "yes" : "no");
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
    std::printf("\nafter m[1].fill_(-1) and m[:, 2].fill_(100), m is\n%s\n", m.str().c_str());
    std::printf("and the transpose view m.t() sees the same numbers:\n%s\n", mt.str().c_str());
    std::printf("(.contiguous() and .clone() copy; use them when you need independent memory.)\n");

    // ---------------------------------------------------------------------------------------
    // 3. Broadcasting
    // ---------------------------------------------------------------------------------------
    lesson::section("3. Broadcasting");
    // Rule (PyTorch's / NumPy's): align the shapes at the right; each pair of sizes must be
    // equal or one of them 1 (a missing dim counts as 1). A size-1 dim is stretched to match
    // without copying (stride 0). So a [3, 1] column plus a [4] row is a [3, 4] table.
    Tensor colv = Tensor::from_vector({0.0, 10.0, 20.0}, {3, 1});
    Tensor rowv = Tensor::from_vector({1.0, 2.0, 3.0, 4.0}, {4});
    std::printf("[3, 1] + [4] -> %s\n%s\n\n", shape_of(colv + rowv).c_str(),
                (colv + rowv).str().c_str());
    struct Case {
      Shape a, b;
    };
    std::vector<Case> cases = {
        {{2, 3}, {2, 3}},          {{2, 3}, {3}}, {{2, 3}, {1}},   {{4, 1, 5}, {3, 1}},
        {{8, 1, 6, 1}, {7, 1, 5}}, {{2, 3}, {2}}, {{3, 4}, {4, 3}}};
    std::printf("%-16s %-14s %s\n", "a", "b", "a + b");
    for (const Case& c : cases) {
      std::string result;
      try {
        result = shape_of(Tensor::zeros(c.a) + Tensor::zeros(c.b));
      } catch (const Error& err) {
        result = std::string("error: ") + err.what();
      }
      std::printf("%-16s %-14s %s\n", c.a.str().c_str(), c.b.str().c_str(), result.c_str());
    }
    std::printf(
        "\nThe gradient of a broadcast input is summed over the dims it was stretched\n"
        "along (you will see this for the bias b in section 5).\n");

    // ---------------------------------------------------------------------------------------
    // 4. A small computation graph
    // ---------------------------------------------------------------------------------------
    lesson::section("4. A small computation graph");
    // One layer of a network on 4 samples with 3 features and 2 outputs:
    //   z = x W + b      h = tanh(z)      L = mean((h - y)^2)
    // x and y are data (no gradient); W and b are parameters: requires_grad_() asks autograd
    // to record every op that uses them. We use float64 so the gradient check in section 6
    // can resolve differences down to ~1e-10.
    // Everything lives on --device (cpu by default): .to(device) moves data; parameters are
    // moved first and then marked, so they stay leaves.
    const Device dev = args.device;
    Tensor x = Tensor::randn({4, 3}, DType::Float64).to(dev);
    Tensor y = Tensor::randn({4, 2}, DType::Float64).tanh().to(dev);  // targets in (-1, 1)
    Tensor W = (Tensor::randn({3, 2}, DType::Float64) * 0.5).to(dev).requires_grad_();
    Tensor b = Tensor::zeros({2}, DType::Float64).to(dev).requires_grad_();
    W.set_name("W");
    b.set_name("b");

    Tensor zz = matmul(x, W) + b;
    Tensor h = tanh(zz);
    Tensor diff = h - y;
    Tensor loss = mean(square(diff));
    h.retain_grad();  // keep dL/dh too (non-leaf gradients are freed by default)
    std::printf("x %s  W %s  b %s  ->  z %s  ->  h %s  ->  L %s = %.6f\n", shape_of(x).c_str(),
                shape_of(W).c_str(), shape_of(b).c_str(), shape_of(zz).c_str(), shape_of(h).c_str(),
                shape_of(loss).c_str(), loss.item());
    std::printf(
        "\nEach result remembers the op that made it (its grad_fn) and that op's inputs:\n");
    std::printf(
        "  L.requires_grad() = %s, L.is_leaf() = %s;  W.is_leaf() = %s;  x.requires_grad()"
        " = %s\n",
        loss.requires_grad() ? "true" : "false", loss.is_leaf() ? "true" : "false",
        W.is_leaf() ? "true" : "false", x.requires_grad() ? "true" : "false");

    // The graph as a picture: ops are boxes, parameters green ellipses, the loss at the bottom.
    std::string dot_path = args.path("graph.dot");
    std::string svg_path = args.path("graph.svg");
    bool have_svg = write_svg(loss, svg_path);  // writes graph.dot next to it in any case
    std::printf(
        "\nthe graph in Graphviz DOT (%s): boxes are ops, ellipses tensors; arrows run\n"
        "in the forward direction and backward() walks them in reverse. mean() shows up\n"
        "as sum then mul_scalar (1/n), square() as pow:\n%s",
        dot_path.c_str(), to_dot(loss).c_str());
    if (have_svg)
      std::printf("wrote %s (the same graph drawn by Graphviz)\n", svg_path.c_str());
    else
      std::printf(
          "(Graphviz `dot` not found: only %s was written; render it with "
          "`dot -Tsvg %s -o graph.svg`)\n",
          dot_path.c_str(), dot_path.c_str());

    // ---------------------------------------------------------------------------------------
    // 5. backward(): the chain rule in reverse
    // ---------------------------------------------------------------------------------------
    lesson::section("5. backward(): the chain rule in reverse");
    // loss.backward() visits the graph once from L back to the leaves. Each op multiplies the
    // gradient arriving from above by its own local derivative and passes it down; W.grad()
    // and b.grad() then hold dL/dW and dL/db.
    loss.backward();
    std::printf("W.grad() = dL/dW\n%s\n\nb.grad() = dL/db\n%s\n\n", W.grad().str().c_str(),
                b.grad().str().c_str());

    // The same chain rule by hand (n = 8 elements in the mean):
    //   dL/dh = 2 (h - y) / n
    //   dL/dz = dL/dh * (1 - h^2)          tanh'(z) = 1 - tanh(z)^2
    //   dL/dW = x^T dL/dz                  (the matmul's backward)
    //   dL/db = sum of dL/dz over the rows (b was broadcast over the 4 rows: its gradient sums)
    {
      NoGradGuard no_grad;  // plain arithmetic: nothing here needs recording
      const double n = static_cast<double>(h.numel());
      Tensor dh = diff * (2.0 / n);
      Tensor dz = dh * (1.0 - square(h));
      Tensor dW = matmul(x.t(), dz);
      Tensor db = sum(dz, {0});
      double errW = max(abs(dW - W.grad())).item();
      double errb = max(abs(db - b.grad())).item();
      double errh = max(abs(dh - h.grad())).item();
      std::printf("by hand vs backward(): max |difference| dL/dh %.1e, dL/dW %.1e, dL/db %.1e\n",
                  errh, errW, errb);
    }

    // Gradients ACCUMULATE: a second backward adds to .grad(). That is why training loops
    // clear them (optimizer.zero_grad()) before each step.
    Tensor g1 = W.grad().clone();
    layer_loss(x, y, W, b).backward();
    std::printf(
        "after a second forward + backward, |W.grad()| / |first W.grad()| = %.3f "
        "(accumulated)\n",
        sum(abs(W.grad())).item() / sum(abs(g1)).item());
    W.set_grad(Tensor());
    b.set_grad(Tensor());
    std::printf("after W.set_grad(Tensor()) the gradient is %s\n",
                W.grad().defined() ? "still there" : "cleared");

    // Under NoGradGuard nothing is recorded: the result has no grad_fn and cannot backprop.
    {
      NoGradGuard no_grad;
      Tensor l2 = layer_loss(x, y, W, b);
      std::printf("inside NoGradGuard: loss.requires_grad() = %s (evaluation needs no graph)\n",
                  l2.requires_grad() ? "true" : "false");
    }

    // ---------------------------------------------------------------------------------------
    // 6. Gradient check against finite differences
    // ---------------------------------------------------------------------------------------
    lesson::section("6. Gradient check: analytic vs numeric, element by element");
    // How do we know backward() is right? Nudge one parameter element by +-eps and watch the
    // loss: the central difference (L(w + eps) - L(w - eps)) / (2 eps) approximates dL/dw with
    // an error of order eps^2. In float64 with eps = 1e-6 the two should agree to ~1e-9.
    // Error per element: |analytic - numeric| / max(1, |analytic|, |numeric|) (relative for
    // large gradients, absolute for small ones), the same rule as mmgrad::gradcheck.
    const double eps = 1e-6;
    Tensor L = layer_loss(x, y, W, b);
    L.backward();
    std::printf("%-6s %-8s %16s %16s %12s\n", "param", "index", "analytic", "numeric",
                "rel. error");
    double max_err = 0.0;
    for (Tensor* p : {&W, &b}) {
      std::vector<double> analytic = p->grad().to_vector<double>();
      for (int64_t j = 0; j < p->numel(); ++j) {
        double numeric;
        {
          // Element j as a one-element view of the parameter (section 2: writing through a view
          // writes the parameter itself). In-place edits of a tensor that requires grad are
          // only allowed when autograd is not recording.
          NoGradGuard no_grad;
          Tensor e = p->view({-1}).narrow(0, j, 1);
          Tensor orig = e.clone();
          e.copy_(orig + eps);
          double lp = layer_loss(x, y, W, b).item();
          e.copy_(orig - eps);
          double lm = layer_loss(x, y, W, b).item();
          e.copy_(orig);
          numeric = (lp - lm) / (2 * eps);
        }
        double a_j = analytic[static_cast<size_t>(j)];
        double err = std::abs(a_j - numeric) / std::max({1.0, std::abs(a_j), std::abs(numeric)});
        max_err = std::max(max_err, err);
        std::string idx = p->dim() == 2 ? cat_str("[", j / p->size(1), ",", j % p->size(1), "]")
                                        : cat_str("[", j, "]");
        std::printf("%-6s %-8s %16.10f %16.10f %12.2e\n", p->name().c_str(), idx.c_str(), a_j,
                    numeric, err);
      }
    }
    std::printf("\nlargest error: %.2e\n", max_err);

    // mmgrad::gradcheck automates exactly this (with a random weighting of the outputs, so it
    // also works for functions with many outputs); every op in mmgrad is tested this way.
    GradcheckResult gc =
        gradcheck([&](const std::vector<Tensor>& in) { return layer_loss(x, y, in[0], in[1]); },
                  {W.detach().requires_grad_(), b.detach().requires_grad_()});
    std::printf("%s\n", gc.report.c_str());
    std::printf(
        "(gradcheck weights the output by a random number w, so its values are the\n"
        "table's times w; the errors are what matter.)\n");

    // What a bug looks like: forget tanh's derivative in the hand-written dL/dW.
    {
      NoGradGuard no_grad;
      Tensor hh = tanh(matmul(x, W) + b);
      Tensor wrong = matmul(x.t(), (hh - y) * (2.0 / hh.numel()));  // missing * (1 - h^2)
      double bug = max(abs(wrong - W.grad())).item();
      std::printf(
          "\nA hand-written dL/dW that forgets tanh' is off by up to %.2e:\n"
          "the check catches it at once.\n",
          bug);
    }

    // ---------------------------------------------------------------------------------------
    // 7. Summary
    // ---------------------------------------------------------------------------------------
    lesson::section("7. Summary");
    const double target = 1e-6;
    bool met = max_err < target && gc.ok;
    std::printf("max_grad_err = %.2e (target < %.0e): %s\n", max_err, target,
                met ? "target met" : "TARGET MISSED");
    std::printf("figures: %s%s\n", dot_path.c_str(), have_svg ? (", " + svg_path).c_str() : "");

    lesson::Result()
        .add("max_grad_err", max_err)
        .add("gradcheck_ok", gc.ok ? 1.0 : 0.0)
        .add("graph_svg", have_svg ? 1.0 : 0.0)
        .print();
  });
}
