// Lesson 06 (cross-modal retrieval) in --quick mode: Recall@k and MRR in both directions on
// held-out test images with the model trained in the lesson for 50 steps, and its figures (Recall@k
// curve, class similarity heatmap, the top-5 grid per text query).
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "lesson_runner.h"

using lesson_test::out_dir;
using mmgrad::testing::read_text;

TEST_CASE("lesson 06: quick run, retrieval metrics in both directions, figures") {
  lesson_test::Run r = lesson_test::run_lesson("06_retrieval", "--quick");
  INFO(r.output);
  REQUIRE(r.status == 0);
  for (const char* k : {"t2i_r1", "i2t_r1", "t2i_mrr", "i2t_mrr", "seconds"})
    REQUIRE_MESSAGE(r.has(k), k);
  CHECK(r["from_checkpoint"] == 0.0);
  // Recall grows with k and MRR lies between Recall@1 and 1.
  CHECK(r["t2i_r1"] <= r["t2i_r5"]);
  CHECK(r["t2i_r5"] <= r["t2i_r10"]);
  CHECK(r["i2t_r1"] <= r["i2t_r5"]);
  CHECK(r["i2t_r5"] <= r["i2t_r10"]);
  CHECK(r["t2i_mrr"] >= r["t2i_r1"]);
  CHECK(r["i2t_mrr"] >= r["i2t_r1"]);
  CHECK(r["t2i_mrr"] <= 1.0);
  CHECK(r["i2t_mrr"] <= 1.0);
  // The quick model, 50 steps (measured, seed 0, one thread: t2i R@1 0.85, i2t R@1 0.756;
  // chance 0.1).
  CHECK(r["t2i_r1"] >= 0.6);
  CHECK(r["i2t_r1"] >= 0.6);
  CHECK(r.output.find("text->image Recall@1 >= 95%") != std::string::npos);
  CHECK(r.output.find("image->text Recall@1 >= 85%") != std::string::npos);

  const std::string dir = out_dir("06_retrieval");
  CHECK(lesson_test::is_svg_file(dir + "/recall_at_k.svg"));
  CHECK(lesson_test::is_svg_file(dir + "/class_similarity.svg"));
  CHECK(read_text(dir + "/top5_per_query.png").rfind("\x89PNG", 0) == 0);
  // the grid's labels as CSV: a header and 10 queries x 5 images, one line each
  std::string labels = read_text(dir + "/top5_per_query.csv");
  int lines = 0;
  for (char c : labels) lines += c == '\n';
  CHECK(lines == 1 + 50);
  CHECK(labels.find("q: sneaker #1") != std::string::npos);
}

TEST_CASE("lesson 06: a bad device is a clear error with status 1") {
  lesson_test::Run r = lesson_test::run_lesson("06_retrieval", "--quick --device tpu");
  CHECK(r.status == 1);
  CHECK(r.output.find("tpu") != std::string::npos);
  CHECK(r.output.find("result:") == std::string::npos);
}

TEST_CASE("lesson 06: --seeds 2 trains a second model and reports the spread of Recall@1") {
  // 5 training steps: the numbers mean little here, the mechanism is what is checked.
  lesson_test::Run r = lesson_test::run_lesson("06_retrieval", "--quick --steps 5 --seeds 2");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r["seeds"] == 2.0);
  for (const char* k : {"t2i_r1_mean", "i2t_r1_mean"}) {
    INFO(k);
    CHECK(r[k] >= 0.0);
    CHECK(r[k] <= 1.0);
  }
  // one row per seed (this run's seed 0, then seed 1) and the summary
  CHECK(r.output.find("seed   text->image R@1   image->text R@1") != std::string::npos);
  CHECK(r.output.find("\n     1 ") != std::string::npos);
  CHECK(r.output.find("text->image Recall@1: mean") != std::string::npos);
}

TEST_CASE("lesson 06: --seeds 0 is a clear error with status 1") {
  lesson_test::Run r = lesson_test::run_lesson("06_retrieval", "--quick --seeds 0");
  CHECK(r.status == 1);
  CHECK(r.output.find("--seeds 0") != std::string::npos);
  CHECK(r.output.find("result:") == std::string::npos);
}
