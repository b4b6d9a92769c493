// Two lessons' quick runs give the same numbers on 1 and 3 threads (the thread count changes only
// the speed; see tests/test_thread_determinism.cpp for the kernels). Lesson 09 trains a small
// VLM (GEMMs, attention, layer norm, Adam), lesson 03 a CNN (conv2d forward and backward,
// pooling): between them they run every parallel CPU kernel a lesson uses.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "lesson_runner.h"

namespace {

// Keys of a result line that are wall-clock timings, not results.
const std::set<std::string> kTimingKeys = {"seconds",     "train_seconds", "index_seconds",
                                           "vit_train_s", "cnn_train_s",   "latency_ms"};

void check_same_results(const std::string& lesson, const std::string& args) {
  lesson_test::Run one = lesson_test::run_lesson(lesson, args + " --threads 1");
  lesson_test::Run three = lesson_test::run_lesson(lesson, args + " --threads 3");
  REQUIRE_MESSAGE(one.status == 0, one.output);
  REQUIRE_MESSAGE(three.status == 0, three.output);
  size_t compared = 0;
  for (const auto& [key, value] : one.result) {
    if (kTimingKeys.count(key)) continue;
    REQUIRE_MESSAGE(three.has(key), lesson, ": '", key, "' missing on 3 threads");
    // The printed values are rounded, so equality here is a necessary check; the kernel-level
    // suite compares raw bits.
    CHECK_MESSAGE(three[key] == value, lesson, ": ", key, " = ", value, " on 1 thread but ",
                  three[key], " on 3");
    ++compared;
  }
  CHECK(compared >= 3);
}

}  // namespace

// 30 of the quick run's 400 steps, evaluated on 60 held-out scenes: every kernel of training
// (forward, backward, Adam) and of generation has run many times by then, and a difference in one
// bit would change the weights of every later step and so the printed losses and scores. About
// 2.6 s of CPU per run; the whole quick run would take 5x as long.
TEST_CASE("lesson threads: 09 quick run (30 steps), same results on 1 and 3 threads") {
  check_same_results("09_vlm", "--quick --steps 30 --eval 60");
}

// 1,000 training images (both epochs, the checkpoint resume included) and 300 test images for
// k-NN: the same kernels as the whole quick run at two thirds of its cost.
TEST_CASE("lesson threads: 03 quick run (1000 images), same results on 1 and 3 threads") {
  check_same_results("03_siamese_embeddings", "--quick --train 1000 --test 300");
}
