// The autograd engine: backward, accumulation, grad mode, detach, retain_graph/retain_grad,
// graph lifetime, error cases, graph shapes (diamonds, deep chains), gradcheck itself, and
// drawing the graph (Graphviz).
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "core_test_util.h"
#include "mmgrad/mmgrad.h"

using namespace mmgrad;
using mmgrad::testing::allclose;
using mmgrad::testing::graph_nodes;
using mmgrad::testing::vals;

namespace {

Tensor leaf(std::vector<double> v, const Shape& shape = {}) {
  return Tensor::from_vector(v, shape, kFloat64).requires_grad_();
}

}  // namespace

// ---- backward basics --------------------------------------------------------------------------

TEST_CASE("backward: scalar loss") {
  Tensor x = leaf({1, -2, 3});
  Tensor loss = (x * x).sum();  // d/dx sum(x^2) = 2x
  CHECK(loss.requires_grad());
  CHECK_FALSE(loss.is_leaf());
  CHECK(x.is_leaf());
  loss.backward();
  CHECK(vals(x.grad()) == std::vector<double>{2, -4, 6});
  CHECK(x.grad().dtype() == kFloat64);
  CHECK_FALSE(x.grad().requires_grad());
  // A leaf itself: d(x)/dx = 1.
  Tensor s = Tensor::scalar(5, kFloat64).requires_grad_();
  s.backward();
  CHECK(s.grad().item() == 1.0);
}

TEST_CASE("backward: explicit gradient, left untouched") {
  Tensor x = leaf({1, 2, 3});
  Tensor w = leaf({4, 5, 6});
  Tensor g = Tensor::from_vector({0.5, -1.0, 2.0}, {3}, kFloat64);
  Tensor y = x * 3.0 + w;  // dy/dx = 3, dy/dw = 1
  y.backward(g);
  CHECK(vals(x.grad()) == std::vector<double>{1.5, -3, 6});
  CHECK(vals(w.grad()) == std::vector<double>{0.5, -1, 2});
  // The leaf gradients are their own memory: updating them leaves g and each other alone.
  w.grad().add_(Tensor::ones({3}, kFloat64));
  w.grad().zero_();
  CHECK(vals(g) == std::vector<double>{0.5, -1, 2});
  CHECK(vals(x.grad()) == std::vector<double>{1.5, -3, 6});
  CHECK(w.grad().storage() != g.storage());
  // add passes its gradient straight through to both inputs: still separate buffers.
  Tensor a = leaf({1, 1}), b = leaf({2, 2});
  Tensor gg = Tensor::ones({2}, kFloat64);
  (a + b).backward(gg);
  CHECK(a.grad().storage() != b.grad().storage());
  CHECK(a.grad().storage() != gg.storage());
  // backward on a leaf with a gradient copies it too.
  Tensor l = leaf({1, 2});
  Tensor lg = Tensor::from_vector({3.0, 4.0}, {2}, kFloat64);
  l.backward(lg);
  l.grad().zero_();
  CHECK(vals(lg) == std::vector<double>{3, 4});
}

TEST_CASE("backward: gradients accumulate into leaves over backward calls") {
  Tensor x = leaf({1, 2});
  (x * x).sum().backward();
  (x * 3.0).sum().backward();  // a second, separate graph
  CHECK(vals(x.grad()) == std::vector<double>{2 + 3, 4 + 3});
  x.set_grad(Tensor());  // what zero_grad(set_to_none) does
  CHECK_FALSE(x.grad().defined());
  (x * 3.0).sum().backward();
  CHECK(vals(x.grad()) == std::vector<double>{3, 3});
}

TEST_CASE("backward: a pending gradient is not corrupted by accumulation into a leaf") {
  // R = sum((a*v + (a + v)) * 1), v = 3y. add(a, v) hands the same gradient buffer to the leaf
  // a and to v's node; a later in-place accumulation into a.grad (from a*v) must not change what
  // v's node receives. (This gave y.grad = 15 instead of 6 before the engine checked that it
  // held the only handle to a gradient before adopting it as a leaf's .grad.)
  Tensor a = leaf({1, 1});
  Tensor y = leaf({1, 1});
  Tensor v = y * 3.0;
  Tensor r = mul(add(mul(a, v), add(a, v)), Tensor::ones({2}, kFloat64)).sum();
  r.backward();
  CHECK(vals(a.grad()) == std::vector<double>{4, 4});  // v + 1
  CHECK(vals(y.grad()) == std::vector<double>{6, 6});  // 3 (a + 1)
}

TEST_CASE("backward: diamond graphs and tensors used twice") {
  Tensor x = leaf({1, 2, 3});
  Tensor a = x * 2.0, b = x * 3.0;
  Tensor c = (a * b).sum();  // 6 x^2 -> 12 x
  c.backward();
  CHECK(vals(x.grad()) == std::vector<double>{12, 24, 36});

  Tensor z = leaf({1, 2});
  (z + z).sum().backward();
  CHECK(vals(z.grad()) == std::vector<double>{2, 2});
  Tensor u = leaf({3});
  Tensor h = u * u;          // a non-leaf used twice by one op
  (h * h).sum().backward();  // u^4 -> 4 u^3
  CHECK(vals(u.grad()) == std::vector<double>{108});
  // Wider: four paths from x to the loss.
  Tensor p = leaf({0.5});
  Tensor q = p.exp();
  Tensor r = (q * p + q.sqrt() + q * q + p).sum();
  r.backward();
  double e = std::exp(0.5);
  CHECK(p.grad().item() ==
        doctest::Approx(e * 0.5 + e + 0.5 * std::sqrt(e) + 2 * e * e + 1).epsilon(1e-12));
}

TEST_CASE("backward: deep chains do not overflow the stack") {
  Tensor x = leaf({1.0});
  Tensor y = x;
  const int n = 100000;
  for (int i = 0; i < n; ++i) y = y * 1.0001;
  y.sum().backward();
  CHECK(x.grad().item() == doctest::Approx(std::pow(1.0001, n)).epsilon(1e-9));
  y = Tensor();  // free the (already released) graph
  // A chain that is dropped without ever running backward is freed without recursion too.
  Tensor z = x;
  for (int i = 0; i < n; ++i) z = z + 1.0;
  CHECK(z.item() == doctest::Approx(1.0 + n));
  z = Tensor();
  CHECK(x.is_leaf());
}

// ---- grad mode, detach
// ----------------------------------------------------------------------------

TEST_CASE("NoGradGuard and EnableGradGuard") {
  Tensor x = leaf({1, 2});
  CHECK(GradMode::is_enabled());
  {
    NoGradGuard ng;
    CHECK_FALSE(GradMode::is_enabled());
    Tensor y = x * 2.0;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    {
      EnableGradGuard eg;
      CHECK(GradMode::is_enabled());
      CHECK((x * 2.0).requires_grad());
      {
        NoGradGuard inner;
        CHECK_FALSE(GradMode::is_enabled());
      }
      CHECK(GradMode::is_enabled());
    }
    CHECK_FALSE(GradMode::is_enabled());
    CHECK_ERROR(y.sum().backward(), "backward", "does not require grad");
  }
  CHECK(GradMode::is_enabled());
  // Grad mode is per thread: a guard here does not switch recording off elsewhere.
  NoGradGuard ng;
  bool other_enabled = false;
  std::thread t([&] { other_enabled = GradMode::is_enabled(); });
  t.join();
  CHECK(other_enabled);
}

TEST_CASE("detach: same data, cut out of the graph") {
  Tensor x = leaf({1, 2, 3});
  Tensor d = x.detach();
  CHECK(d.storage() == x.storage());
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  // The gradient does not flow through the detached branch: d/dx (x * stop(x)) = stop(x).
  (x * x.detach()).sum().backward();
  CHECK(vals(x.grad()) == std::vector<double>{1, 2, 3});
  // Writes to the detached tensor are visible in the original (shared storage).
  d.fill_(7);
  CHECK(vals(x) == std::vector<double>{7, 7, 7});
  // detach of a non-leaf gives a new leaf that may require grad itself.
  Tensor h = (x * 2.0).detach();
  CHECK(h.is_leaf());
  h.requires_grad_();
  (h * h).sum().backward();
  CHECK(vals(h.grad()) == std::vector<double>{28, 28, 28});
}

// ---- graph lifetime ---------------------------------------------------------------------------

TEST_CASE("retain_graph: backward twice") {
  Tensor x = leaf({2});
  Tensor y = (x * x * x).sum();  // 3 x^2 = 12
  y.backward(/*retain_graph=*/true);
  CHECK(x.grad().item() == 12);
  y.backward();  // allowed once more; frees the graph
  CHECK(x.grad().item() == 24);
  CHECK_ERROR(y.backward(), "backward", "second time", "retain_graph");
  CHECK(x.grad().item() == 24);  // the failed call changed nothing
}

TEST_CASE("graph is freed after backward") {
  Tensor x = leaf({1, 2, 3});
  std::weak_ptr<Storage> saved;
  Tensor loss;
  {
    Tensor h = x * 2.0;  // saved by the mul below
    saved = h.storage();
    loss = (h * h).sum();
  }
  CHECK_FALSE(saved.expired());  // only the graph keeps h alive now
  loss.backward();
  CHECK(saved.expired());  // released by backward
  CHECK_ERROR(loss.backward(), "second time");
  // With retain_graph the saved tensors survive.
  Tensor loss2;
  {
    Tensor h = x * 2.0;
    saved = h.storage();
    loss2 = (h * h).sum();
  }
  loss2.backward(true);
  CHECK_FALSE(saved.expired());
  loss2 = Tensor();  // dropping the last handle frees the graph
  CHECK(saved.expired());
}

namespace {

size_t saved_held(const std::vector<std::shared_ptr<Node>>& nodes) {
  size_t n = 0;
  for (const auto& node : nodes) n += node->saved_tensors_held();
  return n;
}

}  // namespace

TEST_CASE("engine: every node's saved tensors are released after backward") {
  // Ops that save inputs, outputs and statistics (mul, exp, matmul, layer_norm, softmax,
  // cross_entropy, max): the engine frees all of them, and no op frees anything by hand.
  Generator gen(5);
  Tensor x = Tensor::randn({4, 6}, kFloat64, &gen).requires_grad_();
  Tensor w = Tensor::randn({6, 3}, kFloat64, &gen).requires_grad_();
  Tensor target = Tensor::from_vector(std::vector<int64_t>{0, 2, 1, 2}, {4});
  auto build = [&] {
    Tensor h = layer_norm((x * x.exp()), Shape{6}, Tensor(), Tensor(), 1e-5);
    Tensor logits = matmul(h, w);
    return cross_entropy(logits, target) + softmax(logits, 1).max() + sigmoid(logits).sum();
  };
  Tensor loss = build();
  auto nodes = graph_nodes(loss);
  CHECK(nodes.size() >= 8);
  CHECK(saved_held(nodes) >= 8);
  loss.backward(/*retain_graph=*/true);
  CHECK(saved_held(nodes) >= 8);  // retained: still there for a second backward
  loss.backward();
  CHECK(saved_held(nodes) == 0);
  for (const auto& node : nodes) {
    INFO(node->name());
    CHECK(node->released);
  }
}

TEST_CASE("retain_grad keeps the gradient of a non-leaf") {
  Tensor x = leaf({1, 2});
  Tensor y = x * 2.0;
  Tensor h = y + 1.0;
  y.retain_grad();
  Tensor loss = (y * h).sum();  // d/dy = h + y = 2y + 1
  loss.backward();
  REQUIRE(y.grad().defined());
  CHECK(vals(y.grad()) == std::vector<double>{5, 9});
  CHECK_FALSE(h.grad().defined());  // not retained
  CHECK(vals(x.grad()) == std::vector<double>{10, 18});
  x.retain_grad();  // a no-op on leaves
  CHECK_ERROR(Tensor::ones({2}).retain_grad(), "retain_grad", "does not require grad");
}

// ---- errors
// ----------------------------------------------------------------------------------------

TEST_CASE("backward errors: shapes, dtypes, missing gradients") {
  Tensor x = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor y = x * 2.0;
  CHECK_ERROR(y.backward(), "backward", "[2, 3]", "gradient");
  CHECK_ERROR(y.backward(Tensor::ones({3, 2}, kFloat64)), "backward", "[3, 2]", "[2, 3]");
  CHECK_ERROR(y.backward(Tensor::ones({2, 3}, kFloat32)), "backward", "float32", "float64");
  CHECK_ERROR(y.backward(Tensor()), "backward", "undefined");
  CHECK_ERROR(Tensor().backward(), "backward", "undefined");
  CHECK_ERROR(Tensor::ones({1}).backward(), "backward", "does not require grad");
  CHECK_FALSE(x.grad().defined());  // none of these touched the graph
  y.backward(Tensor::ones({2, 3}, kFloat64));
  CHECK(vals(x.grad()) == std::vector<double>(6, 2));
}

TEST_CASE("backward errors: a saved tensor modified in place") {
  Tensor x = leaf({1, 2, 3});
  Tensor a = Tensor::ones({3}, kFloat64);
  Tensor y = (x * a).sum();             // saves a
  a.add_(Tensor::ones({3}, kFloat64));  // allowed: a does not require grad
  CHECK_ERROR(y.backward(), "backward", "modified in place", "version");
  // An output saved by its op (exp saves y), changed under NoGradGuard.
  Tensor e = x.exp();
  Tensor loss = e.sum();
  {
    NoGradGuard ng;
    e.mul_(2.0);
  }
  CHECK_ERROR(loss.backward(), "modified in place");
  // Through a view: the version belongs to the storage.
  Tensor b = Tensor::ones({2, 3}, kFloat64);
  Tensor z = (x * b[0]).sum();
  b[1].fill_(5);
  CHECK_ERROR(z.backward(), "modified in place");
}

TEST_CASE("requires_grad_: only on floating-point leaves") {
  Tensor x = leaf({1});
  Tensor y = x * 2.0;
  CHECK_ERROR(y.requires_grad_(), "requires_grad_", "leaf", "detach");
  CHECK_ERROR(y.requires_grad_(false), "requires_grad_", "leaf");
  CHECK_ERROR(Tensor::arange(3).requires_grad_(), "requires_grad_", "int64");
  CHECK_ERROR(Tensor::zeros({2}, kBool).requires_grad_(), "requires_grad_", "bool");
  CHECK_ERROR(Tensor::zeros({2}, TensorOptions(kInt64).requires_grad()), "requires_grad_");
  Tensor z = Tensor::zeros({2});
  z.requires_grad_();
  CHECK(z.requires_grad());
  z.requires_grad_(false);
  CHECK_FALSE(z.requires_grad());
}

TEST_CASE("backward through conversions and views") {
  Tensor x = Tensor::from_vector({1.0, 2.0, 3.0, 4.0}, {2, 2}).requires_grad_();  // float32
  Tensor y = (x.to(kFloat64) * 2.0).sum();
  y.backward();
  CHECK(x.grad().dtype() == kFloat32);
  CHECK(vals(x.grad()) == std::vector<double>(4, 2));
  x.set_grad(Tensor());
  // A transposed, sliced, expanded path lands in the right elements.
  Tensor z = (x.t().select(0, 1).unsqueeze(0).expand({3, 2}) * 1.0).sum();  // column 1, x3
  z.backward();
  CHECK(vals(x.grad()) == std::vector<double>{0, 3, 0, 3});
}

// ---- internal consistency: a node that returns a wrong-shaped gradient --------------------------

namespace {

struct BadShapeBackward : Node {
  const char* name() const override { return "bad_shape"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {Tensor::zeros({7}, g.options())};
  }
};

Tensor bad_shape_op(const Tensor& x) {
  Tensor out;
  {
    NoGradGuard ng;
    out = x * 1.0;
  }
  make_node<BadShapeBackward>(out, {x});
  return out;
}

}  // namespace

TEST_CASE("engine: a backward that returns the wrong shape is reported") {
  Tensor x = leaf({1, 2});
  CHECK_ERROR(bad_shape_op(x).sum().backward(), "bad_shape", "[7]", "[2]");
}

// ---- gradcheck
// ------------------------------------------------------------------------------------

namespace {

// x^2 computed correctly, with a backward that forgets the factor 2 (or not).
struct SquareBackward : Node {
  SavedTensor x{this};
  bool wrong = false;
  const char* name() const override { return wrong ? "wrong_square" : "square"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {mul(g, mul(x.get(), wrong ? 1.0 : 2.0))};
  }
};

Tensor test_square(const Tensor& x, bool wrong) {
  Tensor out;
  {
    NoGradGuard ng;  // compute the value without recording mul's own node
    out = mul(x, x);
  }
  if (auto node = make_node<SquareBackward>(out, {x})) {
    node->x = x;
    node->wrong = wrong;
  }
  return out;
}

}  // namespace

TEST_CASE("gradcheck: passes a correct backward and fails a wrong one") {
  Generator gen(3);
  Tensor x = Tensor::randn({3, 4}, kFloat64, &gen).requires_grad_();
  GradcheckResult good = gradcheck([](const auto& in) { return test_square(in[0], false); }, {x});
  INFO(good.report);
  CHECK(good.ok);
  CHECK(good.max_error < 1e-7);
  CHECK(good.elements_checked == 12);
  CHECK(good.report.find("passed") != std::string::npos);

  GradcheckResult bad = gradcheck([](const auto& in) { return test_square(in[0], true); }, {x});
  INFO(bad.report);
  CHECK_FALSE(bad.ok);
  CHECK(bad.max_error > 0.1);
  CHECK(bad.worst_input == 0);
  CHECK(bad.report.find("FAILED") != std::string::npos);
  CHECK(bad.report.find("index [") != std::string::npos);
  // The analytic value is half the numeric one at the worst element.
  CHECK(bad.worst_analytic == doctest::Approx(bad.worst_numeric / 2).epsilon(1e-5));
  // gradcheck left the caller's tensor alone.
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("gradcheck: several inputs, only those requiring grad are checked") {
  Generator gen(4);
  Tensor a = Tensor::randn({2, 3}, kFloat64, &gen).requires_grad_();
  Tensor b = Tensor::randn({3}, kFloat64, &gen);  // a constant
  GradcheckResult r = gradcheck([](const auto& in) { return (in[0] * in[1]).exp(); }, {a, b});
  INFO(r.report);
  CHECK(r.ok);
  CHECK(r.elements_checked == 6);
  // A wrong gradient in the second input is found too.
  Tensor c = Tensor::randn({3}, kFloat64, &gen).requires_grad_();
  GradcheckResult r2 =
      gradcheck([](const auto& in) { return in[0] + test_square(in[1], true); }, {a, c});
  CHECK_FALSE(r2.ok);
  CHECK(r2.worst_input == 1);
}

TEST_CASE("gradcheck: bad input") {
  Tensor f = Tensor::ones({2}).requires_grad_();  // float32: finite differences need float64
  CHECK_ERROR(gradcheck([](const auto& in) { return in[0] * 2.0; }, {f}), "gradcheck", "float64");
  Tensor d = Tensor::ones({2}, kFloat64);  // nothing requires grad
  CHECK_ERROR(gradcheck([](const auto& in) { return in[0] * 2.0; }, {d}), "gradcheck",
              "requires grad");
  CHECK_ERROR(gradcheck([](const auto& in) { return in[0]; }, {Tensor()}), "gradcheck",
              "undefined");
  Tensor x = Tensor::ones({2}, kFloat64).requires_grad_();
  CHECK_ERROR(gradcheck([](const auto& in) { return in[0].gt(0.0); }, {x}), "gradcheck",
              "floating-point");
}

// ---- graph drawing
// -------------------------------------------------------------------------------

namespace {

// The nodes (id -> label) and edges (label -> label) of a DOT text written by to_dot.
struct DotGraph {
  std::map<std::string, std::string> labels;
  std::multiset<std::pair<std::string, std::string>> edges;  // by label
};

DotGraph parse_dot(const std::string& dot) {
  DotGraph g;
  std::regex node_re(R"re(^\s*(\w+) \[.*label="((?:[^"\\]|\\.)*)"\];$)re");
  std::regex edge_re(R"(^\s*(\w+) -> (\w+);$)");
  std::vector<std::pair<std::string, std::string>> raw;
  std::istringstream in(dot);
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, node_re))
      g.labels[m[1]] = m[2];
    else if (std::regex_match(line, m, edge_re))
      raw.emplace_back(m[1], m[2]);
  }
  for (auto& [a, b] : raw) g.edges.emplace(g.labels[a], g.labels[b]);
  return g;
}

}  // namespace

TEST_CASE("graphviz: DOT of a small graph") {
  Tensor x = Tensor::ones({4, 3});  // data: no grad, not drawn
  Tensor w = Tensor::ones({3, 2}).requires_grad_().set_name("fc1.weight");
  Tensor b = Tensor::zeros({2}).requires_grad_();  // an unnamed leaf
  Tensor y = relu(matmul(x, w) + b).sum();
  std::string dot = to_dot(y);
  INFO(dot);
  CHECK(dot.rfind("digraph autograd {", 0) == 0);
  DotGraph g = parse_dot(dot);
  const std::string W = "fc1.weight\\n[3, 2] float32\\nparameter";
  const std::string B = "[2] float32\\nleaf";
  const std::string MM = "matmul\\n[4, 2] float32";
  const std::string ADD = "add\\n[4, 2] float32";
  const std::string RELU = "relu\\n[4, 2] float32";
  const std::string SUM = "sum\\n[] float32";
  const std::string OUT = "output\\n[] float32";
  CHECK(g.labels.size() == 7);  // 4 ops, 2 leaves, the output
  std::multiset<std::pair<std::string, std::string>> want = {{W, MM},     {MM, ADD},   {B, ADD},
                                                             {ADD, RELU}, {RELU, SUM}, {SUM, OUT}};
  CHECK(g.edges == want);
  CHECK(dot.find("shape=box") != std::string::npos);
  CHECK(dot.find("shape=ellipse") != std::string::npos);

  // A leaf read twice is drawn once, with two edges; names with quotes are escaped.
  Tensor q = Tensor::ones({2}).requires_grad_().set_name("say \"hi\"");
  Tensor z = (q * q).sum();
  DotGraph gz = parse_dot(to_dot(z));
  const std::string Q = "say \\\"hi\\\"\\n[2] float32\\nparameter";
  CHECK(gz.edges.count({Q, "mul\\n[2] float32"}) == 2);
  CHECK(gz.labels.size() == 4);

  // A lone leaf, and bad input.
  CHECK(to_dot(w).find("fc1.weight") != std::string::npos);
  CHECK_ERROR(to_dot(Tensor()), "to_dot", "undefined");
  // A deep graph is walked without recursion.
  Tensor d = w;
  for (int i = 0; i < 5000; ++i) d = d * 1.0;
  CHECK(parse_dot(to_dot(d)).labels.size() == 5002);
}

TEST_CASE("graphviz: write_dot and write_svg") {
  namespace fs = std::filesystem;
  // A directory and file name with a space and a quote: no shell ever sees them.
  fs::path dir = fs::temp_directory_path() / ("mmgrad graphviz '" + std::to_string(::getpid()));
  fs::create_directories(dir);
  Tensor w = Tensor::ones({2, 2}).requires_grad_().set_name("w");
  Tensor y = (w * w).sum();

  fs::path dot_file = dir / "g.dot";
  write_dot(y, dot_file.string());
  std::ifstream f(dot_file);
  std::stringstream text;
  text << f.rdbuf();
  CHECK(text.str() == to_dot(y));
  // Like every writer of the library (core/file_util.h), write_dot creates a missing folder, and
  // where it cannot (a file stands in the way) it says so, naming itself and the path.
  write_dot(y, (dir / "new dir" / "g.dot").string());
  CHECK(fs::exists(dir / "new dir" / "g.dot"));
  CHECK_ERROR(write_dot(y, (dot_file / "g.dot").string()), "write_dot", "g.dot");

  fs::path svg = dir / "it's a graph.svg";
  bool ok = write_svg(y, svg.string());
  CHECK(fs::exists(dir / "it's a graph.dot"));  // the DOT is written either way
  bool have_dot = false;
  for (const char* d : {"/usr/bin/dot", "/usr/local/bin/dot", "/bin/dot"})
    have_dot = have_dot || fs::exists(d);
  if (have_dot) {
    REQUIRE(ok);
    std::ifstream s(svg);
    std::stringstream svg_text;
    svg_text << s.rdbuf();
    CHECK(svg_text.str().find("<svg") != std::string::npos);
    CHECK(svg_text.str().find("mul") != std::string::npos);
  } else {
    MESSAGE("Graphviz `dot` is not installed: write_svg returned false, SVG check skipped");
    CHECK_FALSE(ok);
  }
  // Without `dot` on PATH: false, no crash, the DOT still written.
  const char* old_path = std::getenv("PATH");
  std::string saved = old_path ? old_path : "";
  ::setenv("PATH", dir.string().c_str(), 1);
  bool ok2 = write_svg(y, (dir / "second.svg").string());
  ::setenv("PATH", saved.c_str(), 1);
  CHECK_FALSE(ok2);
  CHECK(fs::exists(dir / "second.dot"));
  CHECK_FALSE(fs::exists(dir / "second.svg"));
  CHECK_ERROR(write_svg(y, (dir / "x.dot").string()), "write_svg", ".dot");
  // dot writes a temporary file renamed over the figure: none is left behind, success or not.
  for (const auto& e : fs::directory_iterator(dir))
    CHECK_MESSAGE(e.path().filename().string().find(".tmp") == std::string::npos, e.path());
  fs::remove_all(dir);
}
