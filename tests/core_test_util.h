// Small helpers shared by the core suites (test_tensor, test_autograd, test_ops_math).
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <exception>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "mmgrad/mmgrad.h"

namespace mmgrad::testing {

// CHECK_ERROR(expr, "matmul", "[2, 3]", ...): expr throws mmgrad::Error and its message contains
// every listed part (the op's name, the shapes it got, ...). expr runs once (a failed backward
// is not repeatable); each part is its own CHECK_THROWS_WITH_AS on the captured exception, so a
// failure names the missing part.
#define CHECK_ERROR(expr, ...)                                                      \
  do {                                                                              \
    std::exception_ptr ep_;                                                         \
    try {                                                                           \
      (void)(expr);                                                                 \
    } catch (...) {                                                                 \
      ep_ = std::current_exception();                                               \
    }                                                                               \
    CHECK_MESSAGE(ep_ != nullptr, "expected an mmgrad::Error from: " #expr);        \
    if (ep_)                                                                        \
      for (const char* part_ : {__VA_ARGS__})                                       \
        CHECK_THROWS_WITH_AS(std::rethrow_exception(ep_), doctest::Contains(part_), \
                             ::mmgrad::Error);                                      \
  } while (0)

// Largest |a - b| / max(1, |b|) over two equally long vectors (infinite when lengths differ).
inline double max_rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return INFINITY;
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) return INFINITY;
    if (a[i] == b[i]) continue;  // equal infinities
    m = std::max(m, std::abs(a[i] - b[i]) / std::max(1.0, std::abs(b[i])));
  }
  return m;
}

// Values of t (any dtype) as doubles.
inline std::vector<double> vals(const Tensor& t) { return t.to_vector<double>(); }

// Every element of t is within tol (absolute, or relative for magnitudes above 1) of want.
inline bool allclose(const Tensor& t, const std::vector<double>& want, double tol = 1e-12) {
  return max_rel_diff(vals(t), want) <= tol;
}

// Says why the current test cannot run here, with the marker "[skipped: " that ctest reads
// (SKIP_REGULAR_EXPRESSION, tests/CMakeLists.txt) to report the test as skipped rather than
// passed. The test then returns: `if (...) return skip_test("no GPU");`.
inline void skip_test(const std::string& why) { MESSAGE("[skipped: " << why << "]"); }

// True when a CUDA GPU is present; otherwise reports `what` as skipped (no GPU, or mmgrad built
// without CUDA) and returns false, so a GPU test reads `if (!have_gpu("...")) return;`.
inline bool have_gpu(const char* what) {
  if (cuda_available()) return true;
#ifdef MMGRAD_WITH_CUDA
  skip_test(std::string("no CUDA GPU, ") + what);
#else
  skip_test(std::string("mmgrad built without CUDA, ") + what);
#endif
  return false;
}

// Every autograd Node reachable from t's grad_fn, each once.
inline std::vector<std::shared_ptr<Node>> graph_nodes(const Tensor& t) {
  std::vector<std::shared_ptr<Node>> out, stack{t.grad_fn()};
  std::set<const Node*> seen;
  while (!stack.empty()) {
    std::shared_ptr<Node> n = stack.back();
    stack.pop_back();
    if (!n || !seen.insert(n.get()).second) continue;
    out.push_back(n);
    for (const Edge& e : n->next) stack.push_back(e.fn);
  }
  return out;
}

}  // namespace mmgrad::testing
