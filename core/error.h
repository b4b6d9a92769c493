// mmgrad::Error and the check helpers every public entry uses.
//
// Every op validates its inputs and throws mmgrad::Error with a message that names the op,
// what it got (shapes, dtypes, devices) and what it expected, e.g.
//   "matmul: inner dimensions differ: got [2, 3] and [4, 5] (3 != 4)".
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace mmgrad {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <class T, class... Rest>
void append(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  append(os, rest...);
}
}  // namespace detail

// Concatenates its arguments with operator<< into one string.
template <class... Args>
std::string cat_str(const Args&... args) {
  std::ostringstream os;
  detail::append(os, args...);
  return os.str();
}

[[noreturn]] inline void fail(const std::string& msg) { throw Error(msg); }

}  // namespace mmgrad

// MMGRAD_CHECK(cond, "op: ", "message parts", ...): throws mmgrad::Error unless cond holds.
#define MMGRAD_CHECK(cond, ...)                                  \
  do {                                                           \
    if (!(cond)) ::mmgrad::fail(::mmgrad::cat_str(__VA_ARGS__)); \
  } while (0)
