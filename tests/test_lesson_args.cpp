// The lessons' command line (lessons/common/lesson.cpp, parse_args): --flag value and
// --flag=value, values checked before anything runs, flags a lesson does not read refused,
// and --help with a Usage line and metavars.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/lesson.h"
#include "lesson_runner.h"
#include "mmgrad/core/error.h"
#include "mmgrad/data/fashion_mnist.h"

using namespace mmgrad;

namespace {

// Parses `words` as the command line of a lesson that reads `uses`.
lesson::Args parse(std::vector<std::string> words, unsigned uses = lesson::kUsesSteps,
                   const std::vector<std::pair<std::string, std::string>>& extra = {}) {
  words.insert(words.begin(), "lesson");
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  return lesson::parse_args(static_cast<int>(argv.size()), argv.data(), "99_test", "a test", uses,
                            extra);
}

// The message of the mmgrad::Error that parsing `words` throws ("" if it does not throw).
std::string error_of(std::vector<std::string> words, unsigned uses = lesson::kUsesSteps) {
  try {
    parse(std::move(words), uses, {{"--beta X", "a number"}});
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("lesson flags: --flag value and --flag=value mean the same") {
  lesson::Args a = parse({"--seed", "7", "--steps=12", "--out=/tmp/x", "--threads", "1"});
  CHECK(a.seed == 7);
  CHECK(a.steps == 12);
  CHECK(a.out == "/tmp/x");
  CHECK(a.threads == 1);
  lesson::Args b = parse({"--beta=2.5", "--quick", "--threads=1"}, lesson::kUsesSteps,
                         {{"--beta X", "a number"}});
  CHECK(b.quick);
  CHECK(b.get_double("--beta", 0) == 2.5);
  lesson::Args c = parse({"--threads", "1"});  // defaults
  CHECK(c.seed == 0);
  CHECK(c.steps_or(5) == 5);
  CHECK(c.out == "out/99_test");
}

TEST_CASE("lesson flags: out-of-range and malformed values are refused, naming the flag") {
  CHECK(error_of({"--seed", "-1"}).find("--seed: expected 0 or more, got -1") != std::string::npos);
  CHECK(error_of({"--steps", "0"}).find("--steps: expected 1 or more, got 0") != std::string::npos);
  CHECK(error_of({"--steps=-5"}).find("--steps: expected 1 or more, got -5") != std::string::npos);
  CHECK(error_of({"--threads", "0"}).find("--threads: expected 1 or more") != std::string::npos);
  CHECK(error_of({"--steps", "99999999999"}).find("too large") != std::string::npos);
  CHECK(error_of({"--seed", "x"}).find("--seed: expected an integer, got 'x'") !=
        std::string::npos);
  CHECK(error_of({"--steps"}).find("--steps needs a value") != std::string::npos);
  CHECK(error_of({"--quick=1"}).find("--quick takes no value") != std::string::npos);
  CHECK(error_of({"--out="}).find("--out: expected a folder") != std::string::npos);
  CHECK(error_of({"--bogus", "1"}).find("unknown flag '--bogus'") != std::string::npos);
  CHECK(error_of({"--device", "tpu"}).find("tpu") != std::string::npos);
}

TEST_CASE("lesson flags: a flag the lesson does not read is refused, not ignored") {
  CHECK(error_of({"--epochs", "3"}, lesson::kUsesSteps).find("99_test has no use for it") !=
        std::string::npos);
  CHECK(error_of({"--steps", "3"}, lesson::kUsesEpochs).find("has no use for it") !=
        std::string::npos);
  CHECK(error_of({"--data", "/tmp"}, lesson::kUsesNone).find("has no use for it") !=
        std::string::npos);
  CHECK(error_of({"--epochs", "3", "--threads", "1"}, lesson::kUsesEpochs).empty());
}

TEST_CASE("lesson flags: a lesson that reads Fashion-MNIST checks for it before it runs") {
  const std::string missing = lesson_test::out_dir("args_no_data");
  std::string e = error_of({"--data", missing, "--threads", "1"}, lesson::kUsesData);
  CHECK(e.find("Fashion-MNIST not found in " + missing) != std::string::npos);
  CHECK(e.find("--data DIR") != std::string::npos);
  if (data::fashion_mnist_available())
    CHECK(error_of({"--threads", "1"}, lesson::kUsesData).empty());
}

TEST_CASE("lesson flags: --help shows a Usage line, metavars and only the flags the lesson reads") {
  lesson_test::Run r = lesson_test::run_lesson("11_hard_negatives", "--help");
  CHECK(r.status == 0);
  CHECK(r.output.rfind("Usage: 11_hard_negatives [flags]", 0) == 0);
  CHECK(r.output.find("--steps N") != std::string::npos);
  CHECK(r.output.find("--epochs") == std::string::npos);  // lesson 11 counts steps, not epochs
  CHECK(r.output.find("--beta X") != std::string::npos);
  CHECK(r.output.find("--seed=3") != std::string::npos);
  lesson_test::Run t = lesson_test::run_lesson("01_autograd_tour", "--help");
  CHECK(t.output.find("--steps") == std::string::npos);
  CHECK(t.output.find("--data") == std::string::npos);
}

TEST_CASE("lesson progress lines: elapsed time and a linear estimate of the rest") {
  CHECK(lesson::progress_time(10, 40, 5.0) == "(5.0 s, ~15 s left)");
  CHECK(lesson::progress_time(40, 40, 20.0) == "(20.0 s)");  // done: no estimate
  CHECK(lesson::progress_time(0, 40, 0.0) == "(0.0 s)");     // nothing to extrapolate from
}
