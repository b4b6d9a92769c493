// exercise_selftest --list       the tasks: id, function, lesson, title (tab-separated)
// exercise_selftest <id> [-v]    checks task <id>'s checker: stub -> not done, every mutant ->
//                                wrong, solution -> passed. Exit 0 when all three hold.
#include "harness/selftest.h"

#include <cstring>
#include <string>

#include "common/format.h"

using namespace mmgrad;
using namespace mmgrad::exercises;

int main(int argc, char** argv) {
  const auto& table = selftest_table();
  if (argc >= 2 && std::strcmp(argv[1], "--list") == 0) {
    for (const auto& e : table)
      lesson::print("{}\t{}\t{}\t{}", e.info.id, e.info.name, e.info.lesson, e.info.title);
    return 0;
  }
  if (argc < 2) {
    lesson::print("usage: exercise_selftest --list | <task id> [-v]");
    return 2;
  }
  const std::string id = argv[1];
  const bool verbose = argc > 2 && std::strcmp(argv[2], "-v") == 0;
  for (const auto& e : table) {
    if (e.info.id != id) continue;
    print_header(e.info);
    bool good = true;
    const Outcome stub = run_check(e.stub, verbose);
    lesson::print("stub:     {}", stub == Outcome::NotDone ? "reported as not done (right)"
                                                           : "NOT reported as not done");
    good = good && stub == Outcome::NotDone;
    const std::vector<Mutant> mutants = e.mutants();
    if (mutants.empty()) {
      lesson::print(
          "mutants:  none listed: every checker needs at least one wrong answer to reject");
      good = false;
    }
    for (const Mutant& m : mutants) {
      // The checker's explanation is what a learner making this mistake would read: show it.
      lesson::print("mutant \"{}\":", m.mistake);
      const Outcome o = run_check(m.run, true);
      lesson::print("          {}", o == Outcome::Wrong ? "rejected (right)"
                                                        : "NOT REJECTED: the checker is too weak");
      good = good && o == Outcome::Wrong;
    }
    const Outcome sol = run_check(e.solution, verbose);
    lesson::print("solution: {}", sol == Outcome::Passed ? "passed (right)" : "DID NOT PASS");
    if (sol != Outcome::Passed && !verbose) run_check(e.solution, true);
    good = good && sol == Outcome::Passed;
    lesson::print("{}", good ? "selftest passed" : "selftest FAILED");
    return good ? 0 : 1;
  }
  lesson::print("exercise_selftest: no task '{}' (see --list)", id);
  return 2;
}
