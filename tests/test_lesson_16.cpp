// Lesson 16 (video tokens: a VQ-VAE tokenizer and VideoBERT) in --quick mode: 800 training
// clips, the VQ-VAE trained for 100 steps three ways (straight-through + dead-code restarts,
// without straight-through, without restarts), VideoBERT for 250 steps; every metric on 300
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
  // Measured (--quick, seeds 0 / 1 / 2): recon 0.0325 / 0.0341 / 0.0324, perplexity 71.7 /
  // 35.5 / 66.1, codes used 118 / 110 / 123, caption words 0.52 / 0.47 / 0.51 (always guessing
  // the most common word of each slot: 0.41), colour slot 63 / 55 / 66% (most common colour
  // 26%), text -> video R@1 0.127 / 0.069 / 0.083 (chance 1/72 = 0.014). 100 VQ steps and 250
  // VideoBERT steps are far from the default's accuracy (caption words 0.85, R@1 0.61).
  CHECK(r["recon_mse"] <= 0.04);
  CHECK(r["codebook_perplexity"] >= 0.2 * K);
  CHECK(r["codebook_perplexity"] <= K);
  CHECK(r["codes_used"] >= 0.75 * K);
  CHECK(r["caption_word_acc"] >= 0.44);
  CHECK(r["caption_word_acc"] <= 1.0);
  CHECK(r["t2v_r1"] >= 2.0 / 72);  // at least twice chance
  CHECK(r["t2v_r1"] <= 1.0);
  // The colour is read from the video tokens far above its most common value.
  const std::vector<double> colour = numbers_after(r.output, "  colour");
  REQUIRE(colour.size() >= 1);
  CHECK(colour[0] >= 45.0);

  // Without straight-through the reconstruction loss gives the encoder exactly no gradient.
  CHECK(r.output.find("without (the decoder reads q) 0.000e+00   exactly zero") !=
        std::string::npos);
  // The table of section 4: codes used, perplexity, recon MSE of the three VQ-VAEs.
  const std::vector<double> no_st = numbers_after(r.output, "  without straight-through");
  const std::vector<double> plain = numbers_after(r.output, "  N(0,1), no restarts");
  const std::vector<double> fixed = numbers_after(r.output, "  N(0,1) + restarts (sec. 2)");
  REQUIRE(no_st.size() == 3);
  REQUIRE(plain.size() == 3);
  REQUIRE(fixed.size() == 3);
  CHECK(fixed[0] == r["codes_used"]);
  // Collapse: from the N(0, 1) codebook without restarts a handful of codes takes everything;
  // with restarts (the lesson's model) most of the codebook is used.
  CHECK(plain[0] <= 4);
  CHECK(plain[1] <= 2.0);
  CHECK(fixed[1] >= 10 * plain[1]);
  // Straight-through is what makes the encoder learn: reconstruction worse without it (at the
  // default's 600 steps 0.039 against 0.009; after --quick's 100 steps 11 to 17% worse).
  CHECK(no_st[2] >= 1.05 * fixed[2]);

  const std::string dir = out_dir("16_video_tokens");
  for (const char* f : {"code_usage.svg", "curves.svg"}) {
    INFO(f);
    CHECK(lesson_test::is_svg_file(dir + "/" + f));
  }
  CHECK(read_text(dir + "/code_usage.svg").find("dead-code restarts") != std::string::npos);
  CHECK(read_text(dir + "/curves.svg").find("without straight-through") != std::string::npos);
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
