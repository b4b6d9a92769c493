// The drivers of the op list (tests/op_list.h), one list of op cases for every check:
//   - float64 gradcheck (central differences, worst error <= 1e-6) of every case with a gradient;
//     cases without one check that their output indeed does not require grad;
//   - float32 forward against float64 on the same values (relative, floor 1);
//   - CPU against CUDA, forward and input gradients, float32 and float64 (skipped without a GPU);
//   - completeness: every op declared in ops/*.h and nn/losses.h has a case (or a stated
//     exemption), so a new op cannot be added without its checks.
// Value tests against hand-computed results, special semantics and bad inputs stay in the op
// suites (test_ops_*.cpp, test_nn_losses.cpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core_test_util.h"  // have_gpu, graph_nodes
#include "mmgrad/mmgrad.h"
#include "op_list.h"

using namespace mmgrad;
using namespace mmgrad::oplist;
using mmgrad::testing::graph_nodes;
using mmgrad::testing::have_gpu;

namespace {

// The groups this file runs, one TEST_CASE each (op_list's groups must be exactly these).
const std::vector<std::string> kGroups = {
    "elementwise", "reduce", "shape", "matmul", "softmax",     "loss",      "norm",     "dropout",
    "index",       "sort",   "conv",  "conv3d", "interpolate", "attention", "nn_losses"};

// Every input that requires grad is empty: there is nothing for gradcheck to perturb.
bool has_empty_grad_input(const Inputs& in) {
  bool any_grad = false, all_empty = true;
  for (size_t i = 0; i < in.size(); ++i)
    if (in[i].requires_grad()) {
      any_grad = true;
      all_empty = all_empty && in[i].numel() == 0;
    }
  return any_grad && all_empty;
}

// Worst |a - b| / max(1, |b|) (NaN in exactly one of them: infinite).
double worst_rel(const Tensor& a, const Tensor& b) {
  std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  double w = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    if (std::isnan(va[i]) || std::isnan(vb[i])) {
      if (std::isnan(va[i]) != std::isnan(vb[i])) return INFINITY;
      continue;
    }
    if (va[i] == vb[i]) continue;  // equal infinities
    w = std::max(w, std::abs(va[i] - vb[i]) / std::max(1.0, std::abs(vb[i])));
  }
  return w;
}

// gradcheck (or the no-gradient / empty checks) and float32 against float64 for one case.
void check_case(const OpCase& c) {
  INFO("case: ", c.name);
  Inputs in = make_inputs(c, kFloat64);
  if (!c.has_grad()) {
    Tensor y = call(c, in);
    CHECK_MESSAGE(!y.requires_grad(), "marked kNoGrad, but its output requires grad");
  } else if (has_empty_grad_input(in)) {
    // Nothing to differentiate numerically: the forward and backward still run and give
    // gradients of the inputs' (empty) shapes.
    Tensor y = call(c, in);
    REQUIRE(y.requires_grad());
    y.sum().backward();
    for (const Tensor& t : in)
      if (t.requires_grad()) {
        REQUIRE(t.grad().defined());
        CHECK(t.grad().shape() == t.shape());
      }
  } else {
    GradcheckResult r = gradcheck(as_fn(c), in);
    INFO(r.report);
    CHECK(r.ok);
    CHECK(r.max_error <= 1e-6);
    CHECK(r.elements_checked > 0);
  }

  // float32 against float64 on the same values (rounded to float32).
  NoGradGuard ng;
  Inputs in32 = make_inputs(c, kFloat32);
  Tensor y64 = call(c, make_inputs(c, kFloat64));
  Tensor y32 = call(c, in32);
  REQUIRE(y32.shape() == y64.shape());
  // A floating result of floating inputs follows their dtype; other results keep theirs.
  const bool float_in =
      std::any_of(in32.begin(), in32.end(), [](const Tensor& t) { return t.is_floating_point(); });
  if (y64.dtype() == kFloat64 && float_in)
    CHECK(y32.dtype() == kFloat32);
  else
    CHECK(y32.dtype() == y64.dtype());
  const double diff = worst_rel(y32, y64);
  INFO("float32 vs float64: ", diff);
  CHECK(diff <= c.tol32);
}

void check_group(const std::string& group) {
  int n = 0;
  for (const OpCase& c : op_cases())
    if (c.group == group) {
      check_case(c);
      ++n;
    }
  CHECK_MESSAGE(n > 0, "no case in group ", group);
}

// ---- saved tensors are freed -------------------------------------------------------------------
// A Node owns what it saves (autograd/node.h): after a backward that does not retain the graph,
// the engine has released every saved tensor of every node, for every op in the list.

TEST_CASE("op list: every op's saved tensors are released after backward") {
  size_t held_before = 0, cases = 0;
  for (const OpCase& c : op_cases()) {
    if (!c.has_grad()) continue;
    INFO("case: ", c.name);
    Inputs leaves = make_inputs(c);
    Tensor y = call(c, leaves);
    if (!y.requires_grad()) continue;  // e.g. every differentiable input is empty
    std::vector<std::shared_ptr<Node>> nodes = graph_nodes(y);
    for (const auto& n : nodes) held_before += n->saved_tensors_held();
    y.backward(ones_like(y));
    for (const auto& n : nodes) {
      INFO("node: ", n->name());
      CHECK(n->released);
      CHECK(n->saved_tensors_held() == 0);
    }
    ++cases;
  }
  CHECK(cases > 250);
  CHECK(held_before > cases);  // the ops did save tensors, so the check above means something
}

// ---- CPU / CUDA parity -------------------------------------------------------------------------

// float32 within 1e-5 (1e-4 through a GEMM), float64 within 1e-12, integers and bools exactly.
double parity_tol(const OpCase& c, DType dt) {
  if (dt == kFloat32) return (c.flags & kGemm) ? 1e-4 : 1e-5;
  if (dt == kFloat64) return 1e-12;
  return 0.0;
}

void expect_close(const Tensor& gpu, const Tensor& cpu, double tol, const std::string& what) {
  REQUIRE_MESSAGE(gpu.shape() == cpu.shape(), what << ": shape " << gpu.shape().str()
                                                   << " on the GPU, " << cpu.shape().str()
                                                   << " on the CPU");
  CHECK_MESSAGE(gpu.dtype() == cpu.dtype(), what << ": dtype differs");
  const double w = worst_rel(gpu.to(kCPU), cpu);
  CHECK_MESSAGE(w <= tol,
                what << ": worst relative difference " << w << " (tolerance " << tol << ")");
}

// The case on the CPU and on the GPU from the same values: outputs, then input gradients for
// one random upstream gradient.
void check_parity(const OpCase& c, DType dt) {
  const std::string what = c.name + " " + dtype_name(dt);
  INFO("case: ", what);
  Inputs ci = make_inputs(c, dt, kCPU), gi = make_inputs(c, dt, kCUDA);
  Tensor yc = call(c, ci), yg = call(c, gi);
  CHECK(yg.device() == kCUDA);
  const double tol = parity_tol(c, yc.dtype() == dt ? dt : yc.dtype());
  expect_close(yg, yc, tol, what + " forward");
  if (!yc.requires_grad()) {
    CHECK_FALSE(yg.requires_grad());
    return;
  }
  Generator gen(77);
  Tensor w = Tensor::randn(yc.shape(), yc.dtype(), &gen);
  (yc * w).sum().backward();
  (yg * w.to(kCUDA)).sum().backward();
  for (size_t i = 0; i < ci.size(); ++i) {
    if (!ci[i].requires_grad()) continue;
    REQUIRE(ci[i].grad().defined());
    REQUIRE(gi[i].grad().defined());
    CHECK(gi[i].grad().device() == kCUDA);
    expect_close(gi[i].grad(), ci[i].grad(), parity_tol(c, dt),
                 cat_str(what, " gradient of input ", i));
  }
}

// ---- completeness ------------------------------------------------------------------------------

// The names of the free functions returning Tensor (or a ...Result struct of tensors) declared at
// namespace scope in a header's text: lines at brace depth 1 (inside `namespace mmgrad {` or
// `namespace mmgrad::nn {`, outside structs and function bodies), comments removed. Operators
// are not names here (they are aliases of named ops: operator+ calls add).
std::set<std::string> declared_ops(const std::string& text) {
  // Strip // and /* */ comments.
  std::string code;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 2, "//") == 0) {
      while (i < text.size() && text[i] != '\n') ++i;
      if (i < text.size()) code += '\n';
    } else if (text.compare(i, 2, "/*") == 0) {
      size_t end = text.find("*/", i + 2);
      i = end == std::string::npos ? text.size() : end + 1;
    } else {
      code += text[i];
    }
  }
  static const std::regex decl(
      R"(^\s*(?:inline\s+)?(?:Tensor|[A-Z][A-Za-z]*Result)\s+([a-z_][a-z0-9_]*)\s*\()");
  std::set<std::string> names;
  std::istringstream lines(code);
  std::string line;
  int depth = 0;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (depth == 1 && std::regex_search(line, m, decl)) names.insert(m[1]);
    for (char ch : line) depth += ch == '{' ? 1 : ch == '}' ? -1 : 0;
  }
  return names;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every header the completeness test scans: ops/*.h and the functional losses of nn/.
std::vector<std::filesystem::path> scanned_headers(const std::filesystem::path& root) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(root / "ops"))
    if (e.path().extension() == ".h") files.push_back(e.path());
  files.push_back(root / "nn" / "losses.h");
  std::sort(files.begin(), files.end());
  return files;
}

bool is_exempt(const std::string& name) {
  for (const Exemption& e : exemptions())
    if (name == e.op) return true;
  return false;
}

}  // namespace

// ---- gradcheck + float32 -----------------------------------------------------------------------

TEST_CASE("op list gradcheck: elementwise") { check_group("elementwise"); }
TEST_CASE("op list gradcheck: reduce") { check_group("reduce"); }
TEST_CASE("op list gradcheck: shape") { check_group("shape"); }
TEST_CASE("op list gradcheck: matmul") { check_group("matmul"); }
TEST_CASE("op list gradcheck: softmax") { check_group("softmax"); }
TEST_CASE("op list gradcheck: loss") { check_group("loss"); }
TEST_CASE("op list gradcheck: norm") { check_group("norm"); }
TEST_CASE("op list gradcheck: dropout") { check_group("dropout"); }
TEST_CASE("op list gradcheck: index") { check_group("index"); }
TEST_CASE("op list gradcheck: sort") { check_group("sort"); }
TEST_CASE("op list gradcheck: conv") { check_group("conv"); }
TEST_CASE("op list gradcheck: conv3d") { check_group("conv3d"); }
TEST_CASE("op list gradcheck: interpolate") { check_group("interpolate"); }
TEST_CASE("op list gradcheck: attention") { check_group("attention"); }
TEST_CASE("op list gradcheck: nn_losses") { check_group("nn_losses"); }

TEST_CASE("op list: every group has a TEST_CASE here, names are unique, layouts are views") {
  CHECK(op_groups() == kGroups);
  std::set<std::string> names;
  for (const OpCase& c : op_cases()) {
    INFO(c.name);
    CHECK(names.insert(c.name).second);
    CHECK(static_cast<bool>(c.fn));
    if (c.view_arg >= 0) {
      // A layout variant stores its input differently, yet the op sees the declared shape
      // through a view that is not contiguous (or is broadcast).
      Inputs in = make_inputs(c);
      const auto i = static_cast<size_t>(c.view_arg);
      CHECK(c.layout != Layout::Contiguous);
      CHECK(in[i].is_contiguous());
      bool seen = false;
      call(c, in);  // runs
      OpCase probe = c;
      probe.fn = [&](const Inputs& x) {
        seen = x[i].shape() == c.args[i].shape && !x[i].is_contiguous();
        return x[i];
      };
      call(probe, in);
      CHECK(seen);
    }
  }
  CHECK(op_cases().size() > 300);
}

// ---- CPU / CUDA parity -------------------------------------------------------------------------

TEST_CASE("op list cuda parity: every case, float32 and float64, forward and gradients") {
  if (!have_gpu("op list CPU/CUDA parity")) return;
  for (DType dt : {kFloat32, kFloat64})
    for (const OpCase& c : op_cases()) check_parity(c, dt);
}

// ---- completeness ------------------------------------------------------------------------------

TEST_CASE("op list: the declaration scanner finds free functions and skips the rest") {
  const std::string header = R"(
// Tensor commented_out(const Tensor& x);
#pragma once
namespace mmgrad {
struct Options {
  Tensor mask;
  Tensor member(const Tensor& x) const;
};
/* Tensor in_block_comment(const Tensor& x); */
Tensor fake_op(const Tensor& x);
Tensor fake_with_defaults(const Tensor& x, double eps = 1e-5,
                          const Options& o = {});
inline Tensor fake_inline(const Tensor& x) { return x; }
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
FakeResult fake_pair(const Tensor& x);
void not_a_tensor(const Tensor& x);
Shape not_an_op(const Shape& s);
inline Tensor multi_line(const Tensor& x) {
  Tensor inner(const Tensor& y);
  return x;
}
}  // namespace mmgrad
)";
  const std::set<std::string> want = {"fake_op", "fake_with_defaults", "fake_inline", "fake_pair",
                                      "multi_line"};
  CHECK(declared_ops(header) == want);
}

TEST_CASE("op list: every op declared in ops/*.h and nn/losses.h has a case") {
  const char* root = std::getenv("MMGRAD_ROOT");
  REQUIRE_MESSAGE(root != nullptr,
                  "MMGRAD_ROOT is not set: run through ctest, or set it to the "
                  "source folder");
  const std::vector<std::string> listed = op_names();
  std::set<std::string> declared;
  for (const auto& file : scanned_headers(root)) {
    for (const std::string& name : declared_ops(read_file(file))) {
      declared.insert(name);
      const bool has_case = std::find(listed.begin(), listed.end(), name) != listed.end();
      CHECK_MESSAGE((has_case || is_exempt(name)),
                    file.string() << " declares `" << name
                                  << "` but tests/op_list.cpp has no case for it: add one (or, "
                                     "with a reason, an entry in exemptions())");
    }
  }
  // The scan works (a broken scanner would find nothing and pass).
  for (const char* known : {"exp", "matmul", "where", "sum_to", "sort", "conv2d",
                            "scaled_dot_product_attention", "clip_loss"})
    CHECK_MESSAGE(declared.count(known) == 1, "the scan did not find ", known);
  CHECK(declared.size() > 60);
  // Every exemption is for something declared that has no case.
  for (const Exemption& e : exemptions()) {
    CHECK_MESSAGE(declared.count(e.op) == 1, "exemption for undeclared ", e.op);
    CHECK_MESSAGE(std::find(listed.begin(), listed.end(), e.op) == listed.end(), "exempt op ", e.op,
                  " has a case: drop the exemption");
  }
  // Every case is for a declared op or a Tensor method (catches a misspelt op name).
  for (const std::string& name : listed)
    CHECK_MESSAGE((declared.count(name) == 1 || name.rfind("Tensor::", 0) == 0), "case for `", name,
                  "`, which no scanned header declares");
}
