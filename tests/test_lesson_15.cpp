// Lesson 15 (audio-visual speech recognition) in --quick mode: four recognisers (audio only,
// video only, fused, fused + modality dropout) trained on 1,200 synthetic utterances by 24
// speakers and measured on 300 utterances by 12 OTHER speakers. On the balanced test set a lip
// reader can reach at most 0.6 (pat/bat, fat/vat, tug/dug and cut/gut have identical videos), and
// an ear that hears only vowels and voicing at most 0.7.
#include <algorithm>
#include <string>

#include "lesson_runner.h"

using lesson_test::out_dir;
using mmgrad::testing::read_text;

TEST_CASE("lesson 15: quick run, fusion wins under noise on held-out speakers") {
  lesson_test::Run r = lesson_test::run_lesson("15_avsr", "--quick");
  INFO(r.output);
  REQUIRE(r.status == 0);
  for (const char* k : {"audio_acc_clean", "fused_acc_clean", "audio_acc_0db", "video_acc",
                        "fused_acc_0db", "fused_acc_no_audio", "seconds"}) {
    INFO(k);
    REQUIRE(r.has(k));
    if (std::string(k) != "seconds") {
      CHECK(r[k] >= 0.0);
      CHECK(r[k] <= 1.0);
    }
  }
  // Measured (--quick, seeds 0-4): audio clean 1.000 on all; fused clean 0.990-1.000; audio at
  // 0 dB 0.787-0.843; video 0.590-0.600; fused at 0 dB 0.980-0.990 (+14 to +19 points over the
  // better single modality); fused + dropout, audio missing, 0.590-0.600 (video - 0.007 at worst).
  CHECK(r["audio_acc_clean"] >= 0.95);
  CHECK(r["fused_acc_clean"] >= 0.95);
  // Noise hides the place of articulation: audio at 0 dB falls well below clean.
  CHECK(r["audio_acc_0db"] <= 0.9);
  CHECK(r["audio_acc_0db"] >= 0.6);
  // The lip reader reaches its ceiling (0.6) and cannot pass it.
  CHECK(r["video_acc"] >= 0.55);
  CHECK(r["video_acc"] <= 0.6 + 1e-9);
  // The target: at 0 dB, fusion beats the better single modality by >= 10 points.
  CHECK(r["fused_acc_0db"] - std::max(r["audio_acc_0db"], r["video_acc"]) >= 0.10);
  // With modality dropout and the audio missing: about the lip reader's accuracy.
  CHECK(r["fused_acc_no_audio"] >= r["video_acc"] - 0.03);
  CHECK(r["fused_acc_no_audio"] <= 0.6 + 1e-9);
  CHECK(r.output.find("Verdicts (computed from the numbers above)") != std::string::npos);
  CHECK(r.output.find("pat/bat") != std::string::npos);

  const std::string dir = out_dir("15_avsr");
  CHECK(lesson_test::is_svg_file(dir + "/snr.svg"));
  CHECK(read_text(dir + "/snr.svg").find("fused + modality dropout") != std::string::npos);
  CHECK(read_text(dir + "/inputs.png").rfind("\x89PNG", 0) == 0);
}

TEST_CASE("lesson 15: bad settings are clear errors with status 1") {
  lesson_test::Run r = lesson_test::run_lesson("15_avsr", "--quick --train 5");
  CHECK(r.status == 1);
  CHECK(r.output.find("--train") != std::string::npos);
  CHECK(r.output.find("result:") == std::string::npos);
  lesson_test::Run b = lesson_test::run_lesson("15_avsr", "--quick --lr 2");
  CHECK(b.status == 1);
  CHECK(b.output.find("--lr") != std::string::npos);
}
