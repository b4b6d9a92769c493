// Lesson 11 (hard negatives) in --quick mode: four trainings of the small mini CLIP on the same
// batches (InfoNCE, hard negatives, hard negatives with same-class pairs masked, the mask alone),
// zero-shot accuracy on held-out test images, the false-negative diagnosis, and the figures.
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "lesson_runner.h"
#include "mmgrad/data/fashion_mnist.h"

using lesson_test::out_dir;
using mmgrad::testing::read_text;

TEST_CASE("lesson 11: quick run, four objectives on the same batches, held-out accuracy") {
  if (!mmgrad::data::fashion_mnist_available()) {
    MESSAGE("[skipped: Fashion-MNIST not installed (" << mmgrad::data::fashion_mnist_dir()
                                                      << "), lesson 11]");
    return;
  }
  lesson_test::Run r = lesson_test::run_lesson("11_hard_negatives", "--quick");
  INFO(r.output);
  REQUIRE(r.status == 0);
  for (const char* k : {"baseline_confusable_acc", "hard_confusable_acc", "baseline_acc",
                        "hard_acc", "masked_confusable_acc", "masked_acc", "masked_infonce_acc",
                        "masked_infonce_confusable_acc", "beta", "baseline_same_class_weight",
                        "hard_same_class_weight", "masked_same_class_weight",
                        "false_negatives_per_image", "seconds"}) {
    INFO(k);
    CHECK(r.has(k));
  }
  // quick mode: 60 steps of 128 pairs on 4000 training images, evaluated zero-shot on the first
  // 2000 TEST images (never trained on); chance is 0.1 overall and 0.25 within the group.
  CHECK(r["baseline_acc"] >= 0.45);
  CHECK(r["hard_acc"] >= 0.25);
  CHECK(r["masked_acc"] >= 0.3);
  CHECK(r["masked_infonce_acc"] >= 0.3);
  for (const char* k : {"baseline_acc", "hard_acc", "masked_acc", "baseline_confusable_acc",
                        "hard_confusable_acc", "masked_confusable_acc"}) {
    INFO(k);
    CHECK(r[k] >= 0.0);
    CHECK(r[k] <= 1.0);
  }
  // The diagnosis: about a tenth of the 127 negatives of an image are of its own class, InfoNCE
  // gives them about a tenth of its (uniform) weight, hard-negative weighting gives them more,
  // and masking gives them none.
  CHECK(r["false_negatives_per_image"] > 8.0);
  CHECK(r["false_negatives_per_image"] < 18.0);
  CHECK(r["baseline_same_class_weight"] > 0.07);
  CHECK(r["baseline_same_class_weight"] < 0.14);
  CHECK(r["hard_same_class_weight"] > r["baseline_same_class_weight"]);
  CHECK(r["masked_same_class_weight"] == 0.0);
  CHECK(r.output.find("Verdict") != std::string::npos);

  const std::string dir = out_dir("11_hard_negatives");
  for (const char* f : {"loss_curves.svg", "infonce_curves.svg", "same_class_weight.svg",
                        "accuracy.svg", "confusion_infonce.svg", "confusion_hard.svg",
                        "confusion_masked.svg", "confusion_masked_infonce.svg"}) {
    INFO(f);
    CHECK(lesson_test::is_svg(read_text(dir + "/" + f)));
  }
  CHECK(read_text(dir + "/accuracy.svg").find("Pullover") != std::string::npos);
}

TEST_CASE("lesson 11: bad settings are clear errors with status 1") {
  lesson_test::Run r = lesson_test::run_lesson("11_hard_negatives", "--quick --beta -2");
  CHECK(r.status == 1);
  CHECK(r.output.find("beta") != std::string::npos);
  CHECK(r.output.find("result:") == std::string::npos);
  lesson_test::Run u = lesson_test::run_lesson("11_hard_negatives", "--quick --no-such-flag");
  CHECK(u.status == 1);
  CHECK(u.output.find("--no-such-flag") != std::string::npos);
}
