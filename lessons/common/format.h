// lesson::print and lesson::format: the printing every lesson does, in std::format's notation
// (C++20's <format>, which GCC 12 does not ship yet, so this is a small subset of our own).
//
//   lesson::print("accuracy {:.3f} after {} steps", acc, steps);   // one line, newline added
//   lesson::print("{:<12} {:>6.1%}", name, frac);                   // "sneaker       93.4%"
//
// A replacement field is {} or {:spec}, spec = [[fill]align][sign][width][.precision][type]:
//   align  < left, > right, ^ centre (numbers default to right, text to left)
//   sign   + shows a plus sign on positive numbers
//   width  minimum characters; precision: digits after the point (f, e, %), significant digits
//          (g), or the most characters of a text
//   type   d integer, f fixed, e scientific, g general, % percent (x100 and a '%' sign), s text
// {{ and }} print a brace. Plain {} prints an integer as is, a float in its shortest exact form
// (0.1 -> "0.1"), a bool as true/false. A malformed field, or a count of fields different from
// the count of arguments, is an mmgrad::Error naming lesson::format.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace mmgrad::lesson {

// One argument, converted to one of four kinds when the call is made.
struct FormatArg {
  enum class Kind { Int, Float, Text, Bool } kind;
  int64_t i = 0;
  double f = 0;
  std::string s;
  bool b = false;

  template <class T>
  FormatArg(const T& v) {  // NOLINT: implicit on purpose, so format(...) takes plain values
    using U = std::decay_t<T>;
    if constexpr (std::is_same_v<U, bool>) {
      kind = Kind::Bool;
      b = v;
    } else if constexpr (std::is_same_v<U, char>) {
      kind = Kind::Text;
      s = std::string(1, v);
    } else if constexpr (std::is_integral_v<U> || std::is_enum_v<U>) {
      kind = Kind::Int;
      i = static_cast<int64_t>(v);
    } else if constexpr (std::is_floating_point_v<U>) {
      kind = Kind::Float;
      f = static_cast<double>(v);
    } else {
      static_assert(std::is_convertible_v<const T&, std::string_view>,
                    "lesson::format takes numbers, bools and text");
      kind = Kind::Text;
      s = std::string(std::string_view(v));
    }
  }
};

std::string vformat(std::string_view fmt, const std::vector<FormatArg>& args);

template <class... A>
std::string format(std::string_view fmt, const A&... args) {
  return vformat(fmt, std::vector<FormatArg>{FormatArg(args)...});
}

// Writes `s` to stdout, and to the lesson page when one is being recorded (common/page.h).
void write_out(const std::string& s);

// Writes the formatted text and a newline to stdout.
template <class... A>
void print(std::string_view fmt, const A&... args) {
  std::string s = vformat(fmt, std::vector<FormatArg>{FormatArg(args)...});
  s += '\n';
  write_out(s);
}

// The same without the newline: for a table row built up cell by cell.
template <class... A>
void print_inline(std::string_view fmt, const A&... args) {
  write_out(vformat(fmt, std::vector<FormatArg>{FormatArg(args)...}));
}

}  // namespace mmgrad::lesson
