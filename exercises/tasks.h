// The functions of the exercise track, declared twice from one list (task_list.inc): once in
// mmgrad::exercises (the learner's versions, exercises/tasks/) and once in
// mmgrad::exercises::solution (the references, exercises/solutions/). The checkers take either.
#pragma once

#include <functional>
#include <vector>

#include "00_micrograd/micrograd.h"
#include "harness/exercise.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/optim/optim.h"

namespace mmgrad::exercises {

// ---- result types of the tasks that return more than one tensor --------------------------------
// Defined once here (not in task_list.inc, which is included twice), so that the learner's
// function and the solution return the same type.

// Task 3.1 (adam_step): the parameter and Adam's two moments after one step.
struct AdamStepResult {
  Tensor param;       // p after the update
  Tensor exp_avg;     // m: running mean of the gradient
  Tensor exp_avg_sq;  // v: running mean of the squared gradient
};

// Task 5.1 (zero_shot_classify): the scores and the predicted class of every image.
struct ZeroShotResult {
  Tensor similarity;  // [N, C]: cosine similarity of image n and class c's ensemble embedding
  Tensor predicted;   // int64 [N]: the class with the highest similarity
};

}  // namespace mmgrad::exercises

namespace mmgrad::exercises {
#include "task_list.inc"
}  // namespace mmgrad::exercises

namespace mmgrad::exercises::solution {
#include "task_list.inc"
}  // namespace mmgrad::exercises::solution
