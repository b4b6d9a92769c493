// Lesson 14 (one transformer over audio, image and text tokens) in --quick mode: every model is
// trained on 1,000 synthetic samples per seed (two seeds) and every metric is measured on 600
// held-out samples with new sound clips. The class is (texture + sound) mod 3, so one modality
// alone is at chance (1/3): only a model that combines them gets far above it.
#include <string>

#include "lesson_runner.h"

using lesson_test::out_dir;
using mmgrad::testing::read_text;

TEST_CASE("lesson 14: quick run, the transformer combines modalities and late fusion cannot") {
  lesson_test::Run r = lesson_test::run_lesson("14_multimodal_transformer", "--quick");
  INFO(r.output);
  REQUIRE(r.status == 0);
  for (const char* k :
       {"mmt_acc", "late_fusion_acc", "no_modality_embed_acc", "balanced_rare_acc",
        "unbalanced_rare_acc", "curriculum_acc", "plain_acc", "missing_audio_acc", "seconds"}) {
    INFO(k);
    REQUIRE(r.has(k));
    if (std::string(k) != "seconds") {
      CHECK(r[k] >= 0.0);
      CHECK(r[k] <= 1.0);
    }
  }
  // Measured (--quick, seeds 0 and 1): mmt 0.921 / 0.943, late fusion 0.348 / 0.362, no
  // modality embeddings 0.932 / 0.958, curriculum 0.938 / 0.947, missing audio (modality
  // dropout) 0.756 / 0.755, rare combination 0.62-0.71 either way.
  CHECK(r["mmt_acc"] >= 0.8);
  CHECK(r["plain_acc"] == r["mmt_acc"]);  // the same runs: plain training IS the main model
  CHECK(r["no_modality_embed_acc"] >= 0.75);
  CHECK(r["curriculum_acc"] >= 0.75);
  // Late fusion is a sum of one-modality scores: it cannot represent (p + q) mod 3.
  CHECK(r["late_fusion_acc"] <= 0.45);
  CHECK(r["mmt_acc"] - r["late_fusion_acc"] >= 0.3);
  // Without audio, image + the 80%-right caption: far above chance, at most about 0.8.
  CHECK(r["missing_audio_acc"] >= 0.6);
  CHECK(r["missing_audio_acc"] <= 0.87);
  // Audio in 10% of the training samples: both samplings still combine image and caption.
  CHECK(r["balanced_rare_acc"] >= 0.5);
  CHECK(r["unbalanced_rare_acc"] >= 0.5);
  CHECK(r.output.find("Verdicts here (computed from the numbers above") != std::string::npos);
  CHECK(r.output.find("balanced sampling (rare):") != std::string::npos);

  const std::string dir = out_dir("14_multimodal_transformer");
  for (const char* f : {"ablations.svg", "curves.svg"}) {
    INFO(f);
    CHECK(lesson_test::is_svg_file(dir + "/" + f));
  }
  CHECK(read_text(dir + "/ablations.svg").find("modality dropout") != std::string::npos);
  CHECK(read_text(dir + "/inputs.png").rfind("\x89PNG", 0) == 0);
}

TEST_CASE("lesson 14: bad settings are clear errors with status 1") {
  lesson_test::Run r = lesson_test::run_lesson("14_multimodal_transformer", "--quick --seeds 1");
  CHECK(r.status == 1);
  CHECK(r.output.find("--seeds") != std::string::npos);
  CHECK(r.output.find("result:") == std::string::npos);
  lesson_test::Run b = lesson_test::run_lesson("14_multimodal_transformer", "--quick --lr 2");
  CHECK(b.status == 1);
  CHECK(b.output.find("--lr") != std::string::npos);
}
