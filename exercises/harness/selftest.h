// exercise_selftest: checks the checkers. For every task its checker must report "not done" on a
// stub, reject every mutant (a plausible wrong answer, listed in the task's checks/ file) and
// accept the reference solution. CI runs it for every task (ctest -L exercises).
#pragma once

#include <functional>
#include <vector>

#include "harness/exercise.h"

namespace mmgrad::exercises {

struct SelftestEntry {
  TaskInfo info;
  std::function<void(Checker&)> stub;
  std::function<void(Checker&)> solution;
  std::vector<Mutant> (*mutants)();
};

const std::vector<SelftestEntry>& selftest_table();

}  // namespace mmgrad::exercises
