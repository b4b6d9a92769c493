// The exercise harness: how a task says "not done yet", how a checker compares the learner's
// result with the right one and explains the first difference, and how a task is run.
//
// A task is one function (exercises/tasks/<id>_<name>.cpp, declared in exercises/task_list.inc).
// Its checker (exercises/checks/<id>_<name>.cpp) is a function
//     void check_<name>(Checker& c, <pointer to a function with the task's signature> f)
// that calls f on chosen inputs and compares what comes back with what mmgrad itself computes,
// stopping at the first difference with a message naming the entry and a hint. Because the
// checker takes the function as an argument, the same checker runs on the learner's code, on
// the reference solution (exercises/solutions/, the library's own code), on a stub that only
// throws NotDone, and on "mutants": plausible wrong answers the checker must reject. CI runs all
// of them (exercise_selftest), so no checker can pass a wrong answer it was written to catch.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "mmgrad/core/error.h"
#include "mmgrad/tensor/tensor.h"

namespace mmgrad::exercises {

// Thrown by a task that is still a stub: not_done("1.2", "sigmoid_backward").
class NotDone : public Error {
 public:
  using Error::Error;
};
[[noreturn]] void not_done(const std::string& task, const std::string& what);

// Thrown by a Checker at the first wrong result; what() is the explanation for the learner.
class WrongAnswer : public Error {
 public:
  using Error::Error;
};

class Checker {
 public:
  explicit Checker(bool verbose = true) : verbose_(verbose) {}

  // A passed check the learner sees as "ok  <what>".
  void ok(const std::string& what);
  // A line announcing a check that might crash a wrong answer (a deep recursion, say).
  void note(const std::string& what);

  // `got` has shape `want.shape()` and every entry within atol + rtol * |want| of want's.
  // Otherwise WrongAnswer: "<what>: entry [1, 2] is 0.24 but should be 0.1966. hint: ..."
  // (compared in float64; a NaN or infinity where want has a finite number is wrong).
  void close(const std::string& what, const Tensor& got, const Tensor& want, double rtol = 1e-4,
             double atol = 1e-5, const std::string& hint = "");
  void close(const std::string& what, double got, double want, double rtol = 1e-4,
             double atol = 1e-6, const std::string& hint = "");
  void shape(const std::string& what, const Tensor& got, const Shape& want,
             const std::string& hint = "");
  // A condition with its explanation.
  void expect(bool cond, const std::string& what, const std::string& explanation);

 private:
  bool verbose_;
};

// One wrong answer the checker of a task must reject (the selftest runs each).
struct Mutant {
  std::string mistake;  // "forgets the factor (1 - y)"
  std::function<void(Checker&)> run;
};

enum class Outcome { Passed = 0, Wrong = 1, NotDone = 77 };

// Runs a checker body and prints the verdict: "task 1.2 ... PASSED" / "WRONG: <why>" /
// "not done yet". Errors the learner's code raises count as wrong, with their message.
Outcome run_check(const std::function<void(Checker&)>& body, bool verbose);

// What a task is, for listings and headers.
struct TaskInfo {
  std::string id;      // "1.2"
  std::string name;    // "sigmoid_backward": the function the learner writes
  std::string title;   // "sigmoid's backward"
  std::string lesson;  // "01_autograd_tour"
};
void print_header(const TaskInfo& t);

// The entry point of one learner program (exercise_<id>): checks the learner's function; exit
// status 0 passed, 1 wrong, 77 not done yet (ctest reports 77 as skipped).
int learner_main(const TaskInfo& t, const std::function<void(Checker&)>& check, int argc,
                 char** argv);

// A stub with any task's signature, for the selftest: throws NotDone.
template <class F>
struct StubOf;
template <class R, class... A>
struct StubOf<R (*)(A...)> {
  static R fn(A...) { not_done("selftest", "the stub"); }
};

}  // namespace mmgrad::exercises
