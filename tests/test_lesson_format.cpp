// lesson::format / lesson::print (lessons/common/format.h): std::format's notation for the lessons.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "common/format.h"
#include "mmgrad/core/error.h"

using mmgrad::lesson::format;

TEST_CASE("lesson::format: plain fields print values as std::format does") {
  CHECK(format("step {} of {}", 3, 10) == "step 3 of 10");
  CHECK(format("{}", 0.1) == "0.1");  // shortest exact form, not %g's six digits
  CHECK(format("{}", 1e-5) == "1e-05");
  CHECK(format("{}", -2.5f) == "-2.5");
  CHECK(format("{} {}", true, false) == "true false");
  CHECK(format("{}{}", std::string("ab"), "cd") == "abcd");
  CHECK(format("{}", 'x') == "x");
  CHECK(format("{}", int64_t{-9000000000}) == "-9000000000");
  CHECK(format("{{}} {}", 1) == "{} 1");
  CHECK(format("no fields") == "no fields");
}

TEST_CASE("lesson::format: width, alignment, fill, precision, sign and types") {
  CHECK(format("{:.3f}", 0.12345) == "0.123");
  CHECK(format("{:8.3f}|", 3.14159) == "   3.142|");  // numbers align right
  CHECK(format("{:<8.3f}|", 3.14159) == "3.142   |");
  CHECK(format("{:6}|", "ab") == "ab    |");  // text aligns left
  CHECK(format("{:>6}|", "ab") == "    ab|");
  CHECK(format("{:^6}|", "ab") == "  ab  |");
  CHECK(format("{:*^7}", "ab") == "**ab***");
  CHECK(format("{:5d}", 42) == "   42");
  CHECK(format("{:+.2f}", 1.5) == "+1.50");
  CHECK(format("{:+.2f}", -1.5) == "-1.50");
  CHECK(format("{:.1%}", 0.934) == "93.4%");
  CHECK(format("{:.2e}", 12345.0) == "1.23e+04");
  CHECK(format("{:.3g}", 0.000123456) == "0.000123");
  CHECK(format("{:.3}", 2.0 / 3.0) == "0.667");    // precision alone: general format
  CHECK(format("{:5.3}|", "abcdef") == "abc  |");  // precision cuts text
  CHECK(format("{:.2f}", 7) == "7.00");            // an integer may print as a float
  CHECK(format("{}", std::numeric_limits<double>::quiet_NaN()) == "nan");
  CHECK(format("{:.2f}", -std::numeric_limits<double>::infinity()) == "-inf");
}

TEST_CASE("lesson::format: a malformed format string is an error naming lesson::format") {
  auto fails_with = [](auto&& f, const std::string& part) {
    try {
      f();
    } catch (const mmgrad::Error& e) {
      std::string m = e.what();
      CHECK(m.find("lesson::format") != std::string::npos);
      CHECK(m.find(part) != std::string::npos);
      return;
    }
    FAIL("no error for a bad format (" << part << ")");
  };
  fails_with([] { format("{} {}", 1); }, "more {} fields");
  fails_with([] { format("{}", 1, 2); }, "2 arguments given");
  fails_with([] { format("{:.3d}", 1); }, "no precision");
  fails_with([] { format("{:d}", 1.5); }, "needs an integer");
  fails_with([] { format("{:f}", "x"); }, "needs a number");
  fails_with([] { format("{:q}", 1); }, "unknown type");
  fails_with([] { format("{", 1); }, "without its '}'");
  fails_with([] { format("}", 1); }, "lone '}'");
  fails_with([] { format("{0}", 1); }, "no index");
  fails_with([] { format("{:.}", 1.0); }, "precision digits");
}
