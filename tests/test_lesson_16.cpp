// Lesson 16 (video tokens: a VQ-VAE tokenizer and VideoBERT) in --quick mode: 800 training
// clips, the VQ-VAE trained for 120 steps (three ways: without straight-through, with the
// reference init, with dead-code restarts), VideoBERT for 250 steps; every metric on 300
// held-out clips. The quick run is far from the default's accuracy (the README row has those):
// it checks that each mechanism does what the lesson says, with margins measured on seeds 0-2.
#include <cstdio>
#include <sstream>
#include <string>

#include "lesson_runner.h"

using lesson_test::out_dir;
using mmgrad::testing::read_text;

namespace {

// The numbers after `label` on the first output line that starts with it ("  reference init
// 14 7.5 0.0318" -> {14, 7.5, 0.0318}); empty when there is no such line.
std::vector<double> numbers_after(const std::string& output, const std::string& label) {
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(label, 0) != 0) continue;
    std::istringstream rest(line.substr(label.size()));
    std::vector<double> v;
    std::string word;
    while (rest >> word) {
      if (!word.empty() && word.back() == '%') word.pop_back();
      try {
        v.push_back(std::stod(word));
      } catch (...) {
        break;
      }
    }
    return v;
  }
  return {};
}

}  // namespace

TEST_CASE("lesson 16: quick run, straight-through, collapse and its fix, captions from tokens") {
  lesson_test::Run r = lesson_test::run_lesson("16_video_tokens", "--quick");
  INFO(r.output);
  REQUIRE(r.status == 0);
  for (const char* k : {"recon_mse", "codebook_perplexity", "codes_used", "caption_word_acc",
                        "t2v_r1", "seconds"}) {
    INFO(k);
    REQUIRE(r.has(k));
  }
  const double K = 128;
  // Measured (--quick, seeds 0 / 1 / 2): recon 0.030 / .. / .., perplexity 67.4 / .. / ..,
  // codes used 111 / .. / .., caption words 0.50 / .. / .. (always guessing the most common
  // word of each slot: 0.41), colour slot 74% / .. / .. (most common colour 26%).
  CHECK(r["recon_mse"] <= 0.045);
  CHECK(r["codebook_perplexity"] >= 0.35 * K);
  CHECK(r["codebook_perplexity"] <= K);
  CHECK(r["codes_used"] >= 0.6 * K);
  CHECK(r["caption_word_acc"] >= 0.43);
  CHECK(r["caption_word_acc"] <= 1.0);
  CHECK(r["t2v_r1"] >= 1.0 / 72);  // at least one caption finds its clip
  CHECK(r["t2v_r1"] <= 1.0);
  // The colour is read from the video tokens far above its most common value.
  const std::vector<double> colour = numbers_after(r.output, "  colour");
  REQUIRE(colour.size() >= 1);
  CHECK(colour[0] >= 50.0);

  // Without straight-through the reconstruction loss gives the encoder exactly no gradient.
  CHECK(r.output.find("without (the decoder reads q) 0.000e+00   exactly zero") !=
        std::string::npos);
  // The table of section 4: codes used, perplexity, recon MSE of the three VQ-VAEs.
  const std::vector<double> no_st = numbers_after(r.output, "  without straight-thr.");
  const std::vector<double> plain = numbers_after(r.output, "  reference init");
  const std::vector<double> fixed = numbers_after(r.output, "  dead-code restarts");
  REQUIRE(no_st.size() == 3);
  REQUIRE(plain.size() == 3);
  REQUIRE(fixed.size() == 3);
  CHECK(fixed[0] == r["codes_used"]);
  // Collapse: the reference init leaves most of the codebook dead; restarts revive it.
  CHECK(plain[0] <= 0.3 * K);
  CHECK(fixed[1] >= 3 * plain[1]);
  // Straight-through is what makes the encoder learn: reconstruction far worse without it.
  CHECK(no_st[2] >= 1.5 * fixed[2]);

  const std::string dir = out_dir("16_video_tokens");
  for (const char* f : {"code_usage.svg", "curves.svg"}) {
    INFO(f);
    CHECK(lesson_test::is_svg_file(dir + "/" + f));
  }
  CHECK(read_text(dir + "/code_usage.svg").find("dead-code restarts") != std::string::npos);
  for (const char* f : {"clips.png", "recon.png"}) {
    INFO(f);
    CHECK(read_text(dir + "/" + f).rfind("\x89PNG", 0) == 0);
  }
}

TEST_CASE("lesson 16: bad settings are clear errors with status 1") {
  lesson_test::Run r = lesson_test::run_lesson("16_video_tokens", "--quick --codes 1");
  CHECK(r.status == 1);
  CHECK(r.output.find("--codes") != std::string::npos);
  CHECK(r.output.find("result:") == std::string::npos);
}
