#include "harness/exercise.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>

#include "common/format.h"

namespace mmgrad::exercises {

void not_done(const std::string& task, const std::string& what) {
  throw NotDone(cat_str("task ", task, " is not done yet: ", what,
                        " still throws instead of computing its result"));
}

void Checker::ok(const std::string& what) {
  if (verbose_) lesson::print("  ok    {}", what);
}

void Checker::note(const std::string& what) {
  if (verbose_) {
    lesson::print("  ...   {}", what);
    std::fflush(stdout);
  }
}

// The two numbers with 6 significant digits, or more when 6 would print them alike ("0.001 but
// should be 0.001" explains nothing).
static std::pair<std::string, std::string> distinct_digits(double a, double b) {
  for (int digits : {6, 10, 17}) {
    const std::string spec = "{:." + std::to_string(digits) + "g}";
    std::string fa = lesson::format(spec, a), fb = lesson::format(spec, b);
    if (fa != fb || digits == 17) return {fa, fb};
  }
  return {};
}

static std::string with_hint(const std::string& msg, const std::string& hint) {
  return hint.empty() ? msg : msg + "\n        hint: " + hint;
}

void Checker::shape(const std::string& what, const Tensor& got, const Shape& want,
                    const std::string& hint) {
  if (!got.defined())
    throw WrongAnswer(with_hint(cat_str(what, ": you returned an empty (undefined) Tensor"), hint));
  if (got.shape() != want)
    throw WrongAnswer(with_hint(
        cat_str(what, ": your result has shape ", got.shape(), " but should have shape ", want),
        hint));
}

void Checker::close(const std::string& what, const Tensor& got, const Tensor& want, double rtol,
                    double atol, const std::string& hint) {
  shape(what, got, want.shape(), hint);
  const std::vector<double> g = got.to_vector<double>();
  const std::vector<double> w = want.to_vector<double>();
  for (size_t i = 0; i < g.size(); ++i) {
    const bool bad = std::isfinite(w[i])
                         ? !(std::fabs(g[i] - w[i]) <= atol + rtol * std::fabs(w[i]))
                         : !(std::isnan(w[i]) ? std::isnan(g[i]) : g[i] == w[i]);
    if (bad) {
      const std::string where =
          want.dim() == 0 ? std::string("the value") : "entry " + want.shape().unravel(i).str();
      const auto [gs, ws] = distinct_digits(g[i], w[i]);
      throw WrongAnswer(
          with_hint(cat_str(what, ": ", where, " is ", gs, " but should be ", ws), hint));
    }
  }
  ok(what);
}

void Checker::close(const std::string& what, double got, double want, double rtol, double atol,
                    const std::string& hint) {
  const bool bad = std::isfinite(want) ? !(std::fabs(got - want) <= atol + rtol * std::fabs(want))
                                       : !(std::isnan(want) ? std::isnan(got) : got == want);
  if (bad) {
    const auto [gs, ws] = distinct_digits(got, want);
    throw WrongAnswer(with_hint(cat_str(what, ": ", gs, " but should be ", ws), hint));
  }
  ok(what);
}

void Checker::expect(bool cond, const std::string& what, const std::string& explanation) {
  if (!cond) throw WrongAnswer(cat_str(what, ": ", explanation));
  ok(what);
}

Outcome run_check(const std::function<void(Checker&)>& body, bool verbose) {
  Checker c(verbose);
  auto say = [&](const std::string& s) {
    if (verbose) lesson::print("{}", s);
  };
  try {
    body(c);
  } catch (const NotDone& e) {
    say(cat_str("NOT DONE  ", e.what()));
    return Outcome::NotDone;
  } catch (const WrongAnswer& e) {
    say(cat_str("  WRONG ", e.what()));
    return Outcome::Wrong;
  } catch (const Error& e) {
    say(cat_str("  WRONG your code raised an mmgrad error: ", e.what()));
    return Outcome::Wrong;
  } catch (const std::exception& e) {
    say(cat_str("  WRONG your code threw: ", e.what()));
    return Outcome::Wrong;
  }
  return Outcome::Passed;
}

void print_header(const TaskInfo& t) {
  lesson::print("task {}: {}  (lesson {}, function {}, file exercises/tasks/{}_{}.cpp)", t.id,
                t.title, t.lesson, t.name, t.id, t.name);
}

int learner_main(const TaskInfo& t, const std::function<void(Checker&)>& check, int argc,
                 char** argv) {
  const bool quiet = argc > 1 && std::strcmp(argv[1], "--quiet") == 0;
  if (!quiet) print_header(t);
  const Outcome o = run_check(check, !quiet);
  if (!quiet) {
    if (o == Outcome::Passed) lesson::print("PASSED: task {} is done", t.id);
    if (o == Outcome::NotDone)
      lesson::print(
          "open exercises/tasks/{}_{}.cpp, replace the not_done(...) line with your code "
          "and run this again",
          t.id, t.name);
    if (o == Outcome::Wrong)
      lesson::print("task {} is not right yet: fix the first difference above and run again", t.id);
  }
  std::fflush(stdout);
  return static_cast<int>(o);
}

}  // namespace mmgrad::exercises
