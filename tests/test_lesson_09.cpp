// Lesson 09 (a LLaVA-style vision-language model) in --quick mode: captions and colour answers
// for held-out scenes (a seed never used for training), figures written, bad flags rejected.
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "lesson_runner.h"

using lesson_test::out_dir;
using mmgrad::testing::read_text;

TEST_CASE("lesson 09: quick run captions and answers questions about held-out scenes") {
  // Scenes only (--fashion 0): the test must not depend on the Fashion-MNIST download.
  lesson_test::Run r = lesson_test::run_lesson("09_vlm", "--quick --fashion 0");
  INFO(r.output);
  REQUIRE(r.status == 0);
  for (const char* k :
       {"bleu4", "bleu1", "rouge_l", "cider", "exact_match", "color_acc", "shape_acc", "size_acc",
        "position_acc", "vqa_acc", "vqa_2obj_acc", "seconds"}) {
    INFO(k);
    CHECK(r.has(k));
    CHECK(r[k] >= 0.0);
  }
  for (const char* k : {"bleu4", "bleu1", "rouge_l", "exact_match", "color_acc", "shape_acc",
                        "size_acc", "position_acc", "vqa_acc", "vqa_2obj_acc"})
    CHECK(r[k] <= 1.0);
  CHECK(r["cider"] <= 10.0);  // one reference per scene: 10 is the most CIDEr-D can give
  // Quick mode thresholds (the lesson's small setting: 400 steps of 32 sequences, measured
  // bleu4 0.65, exact 0.31, colour 0.83, shape 0.60, size 0.83, position 0.73, vqa 0.79,
  // vqa_2obj 0.68; the default run aims much higher). Chance is 0.2 for a colour, 1/3 for a
  // shape, 1/2 for a size; naming the first object's colour answers about a fifth of the
  // second-object questions.
  CHECK(r["bleu4"] >= 0.5);
  CHECK(r["exact_match"] >= 0.2);
  CHECK(r["color_acc"] >= 0.7);
  CHECK(r["shape_acc"] >= 0.45);
  CHECK(r["size_acc"] >= 0.65);
  CHECK(r["position_acc"] >= 0.65);
  CHECK(r["vqa_acc"] >= 0.65);
  CHECK(r["vqa_2obj_acc"] >= 0.5);
  // The paper metrics of the same captions (measured in quick mode: bleu1 0.88, rouge_l 0.85,
  // cider 6.22). Partial credit: BLEU-1 and ROUGE-L sit well above exact match, BLEU-4 below
  // BLEU-1.
  CHECK(r["bleu1"] >= 0.75);
  CHECK(r["rouge_l"] >= 0.7);
  CHECK(r["cider"] >= 4.0);
  CHECK(r["bleu1"] > r["bleu4"]);
  CHECK(r["rouge_l"] > r["exact_match"]);
  CHECK(r.output.find("CIDEr-D") != std::string::npos);
  // The lesson shows greedy and sampled text and the VQA baseline table.
  CHECK(r.output.find("temperature") != std::string::npos);
  CHECK(r.output.find("first-object baseline") != std::string::npos);

  const std::string dir = out_dir("09_vlm");
  for (const char* f : {"captions.png", "vqa.png"}) {
    INFO(f);
    CHECK(read_text(dir + "/" + f).rfind("\x89PNG", 0) == 0);
  }
  const std::string svg = read_text(dir + "/loss.svg");
  CHECK((svg.rfind("<svg", 0) == 0 || svg.rfind("<?xml", 0) == 0));
  // The CSV next to the grid holds its labels (generated captions) and which are marked wrong.
  const std::string csv = read_text(dir + "/captions.csv");
  CHECK(csv.rfind("index,row,col,label,marked\n", 0) == 0);
  CHECK(csv.find(",\"a ") != std::string::npos);
}

TEST_CASE("lesson 09: a bad setting is a clear error with status 1") {
  lesson_test::Run r = lesson_test::run_lesson("09_vlm", "--quick --d-model 30");
  CHECK(r.status == 1);
  CHECK(r.output.find("--d-model") != std::string::npos);
  CHECK(r.output.find("result:") == std::string::npos);
  r = lesson_test::run_lesson("09_vlm", "--quick --no-such-flag");
  CHECK(r.status == 1);
  CHECK(r.output.find("--no-such-flag") != std::string::npos);
}
