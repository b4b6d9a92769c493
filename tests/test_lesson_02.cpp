// Lesson 02 (contrastive loss) in --quick mode: random embeddings give ~log N, aligned ones a low
// loss, the learned alignment works on held-out pairs, and the figures are written.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "lesson_runner.h"

namespace {

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

bool is_svg(const std::string& s) { return s.rfind("<svg", 0) == 0 || s.rfind("<?xml", 0) == 0; }

}  // namespace

TEST_CASE("lesson 02: quick run, log N, aligned loss and held-out alignment") {
  lesson_test::Run r = lesson_test::run_lesson("02_contrastive_loss", "--quick");
  INFO(r.output);
  REQUIRE(r.status == 0);
  for (const char* k :
       {"random_loss", "log_n", "aligned_loss", "heldout_pair_top1", "heldout_concept_top1",
        "heldout_loss_before", "heldout_loss_after", "seconds"})
    CHECK_MESSAGE(r.has(k), "missing result key " << k);
  CHECK(r["log_n"] == doctest::Approx(std::log(32.0)).epsilon(1e-3));
  // chance level: random embeddings at temperature 1 score ~log N (within 5%)
  CHECK(std::abs(r["random_loss"] - r["log_n"]) < 0.05 * r["log_n"]);
  // at CLIP's tau = 0.07, random pairs are confidently wrong: above log N
  CHECK(r["random_loss_tau007"] > r["log_n"]);
  CHECK(r["aligned_loss"] >= 0.0);
  CHECK(r["aligned_loss"] < 0.1);
  // the learned linear maps align held-out pairs: top-1 retrieval of the same concept (chance
  // 1/8) and of the exact partner (chance 1/256)
  CHECK(r["heldout_concept_top1"] >= 0.8);
  CHECK(r["heldout_pair_top1"] >= 0.25);
  CHECK(r["heldout_loss_after"] < 0.5 * r["heldout_loss_before"]);
  // section 2: the loss built by hand equals nn::clip_loss
  CHECK(r.output.find("with nn::clip_loss") != std::string::npos);

  const std::string dir = out_dir("02_contrastive_loss");
  for (const char* f : {"temperature_sweep.svg", "similarity_before.svg", "similarity_after.svg",
                        "clouds_before.svg", "clouds_after.svg", "alignment_loss.svg"}) {
    INFO(f);
    CHECK(is_svg(read_file(dir + "/" + f)));
  }
}

TEST_CASE("lesson 02: a malformed flag value is a clear error with status 1") {
  lesson_test::Run r = lesson_test::run_lesson("02_contrastive_loss", "--quick --steps many");
  CHECK(r.status == 1);
  CHECK(r.output.find("--steps") != std::string::npos);
  CHECK(r.output.find("result:") == std::string::npos);
}
