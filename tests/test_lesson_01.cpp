// Lesson 01 (autograd tour) in --quick mode: it runs, its gradient check agrees with finite
// differences, and it writes the graph drawing.
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "lesson_runner.h"

namespace {

// The folder run_lesson gives the lesson for its figures.
std::string out_dir(const std::string& name) {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp ? tmp : "/tmp") + "/mmgrad_test_" + name;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("lesson 01: quick run, gradient check and graph drawing") {
  lesson_test::Run r = lesson_test::run_lesson("01_autograd_tour", "--quick");
  INFO(r.output);
  REQUIRE(r.status == 0);
  REQUIRE(r.has("max_grad_err"));
  REQUIRE(r.has("seconds"));
  // analytic (backward) vs numeric (central differences, float64) gradients
  CHECK(r["max_grad_err"] >= 0.0);
  CHECK(r["max_grad_err"] < 1e-6);
  CHECK(r["gradcheck_ok"] == 1.0);
  CHECK(r.output.find("target met") != std::string::npos);
  // the printed table holds analytic and numeric values side by side for W and b
  CHECK(r.output.find("analytic") != std::string::npos);
  CHECK(r.output.find("numeric") != std::string::npos);

  std::string dot = read_file(out_dir("01_autograd_tour") + "/graph.dot");
  CHECK(dot.rfind("digraph", 0) == 0);
  CHECK(dot.find("tanh") != std::string::npos);  // the ops of the layer appear as nodes
  CHECK(dot.find("\\nparameter") != std::string::npos);
  if (r["graph_svg"] == 1.0) {
    std::string svg = read_file(out_dir("01_autograd_tour") + "/graph.svg");
    CHECK((svg.rfind("<svg", 0) == 0 || svg.rfind("<?xml", 0) == 0));
  }
}

TEST_CASE("lesson 01: an unknown flag is a clear error with status 1") {
  lesson_test::Run r = lesson_test::run_lesson("01_autograd_tour", "--quick --bogus 3");
  CHECK(r.status == 1);
  CHECK(r.output.find("unknown flag '--bogus'") != std::string::npos);
  CHECK(r.output.find("result:") == std::string::npos);
}
