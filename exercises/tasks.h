// The functions of the exercise track, declared twice from one list (task_list.inc): once in
// mmgrad::exercises (the learner's versions, exercises/tasks/) and once in
// mmgrad::exercises::solution (the references, exercises/solutions/). The checkers take either.
#pragma once

#include <functional>
#include <vector>

#include "harness/exercise.h"
#include "mmgrad.h"

namespace mmgrad::exercises {
#include "task_list.inc"
}  // namespace mmgrad::exercises

namespace mmgrad::exercises::solution {
#include "task_list.inc"
}  // namespace mmgrad::exercises::solution
