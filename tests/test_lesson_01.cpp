// Lesson 01 (autograd tour) in --quick mode: it runs, its gradient check agrees with finite
// differences, and it writes the graph drawing.
#include <string>

#include "lesson_runner.h"

using lesson_test::is_svg;
using lesson_test::out_dir;
using mmgrad::testing::read_text;

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

  std::string dot = read_text(out_dir("01_autograd_tour") + "/graph.dot");
  CHECK(dot.rfind("digraph", 0) == 0);
  CHECK(dot.find("tanh") != std::string::npos);  // the ops of the layer appear as nodes
  CHECK(dot.find("\\nparameter") != std::string::npos);
  if (r["graph_svg"] == 1.0) {
    std::string svg = read_text(out_dir("01_autograd_tour") + "/graph.svg");
    CHECK(is_svg(svg));
  }
}

TEST_CASE("lesson 01: an unknown flag is a clear error with status 1") {
  lesson_test::Run r = lesson_test::run_lesson("01_autograd_tour", "--quick --bogus 3");
  CHECK(r.status == 1);
  CHECK(r.output.find("unknown flag '--bogus'") != std::string::npos);
  CHECK(r.output.find("result:") == std::string::npos);
}
