// Runs a lesson program (built into $MMGRAD_BIN/lessons) and reads its "result:" line.
#pragma once

#include <doctest/doctest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>

namespace lesson_test {

struct Run {
  int status = -1;
  std::string output;                     // everything the lesson printed (stdout + stderr)
  std::map<std::string, double> result;   // the numbers of its "result:" line
  bool has(const std::string& k) const { return result.count(k) > 0; }
  double operator[](const std::string& k) const {
    auto it = result.find(k);
    return it == result.end() ? -1e300 : it->second;
  }
};

inline std::string bin_dir() {
  const char* b = std::getenv("MMGRAD_BIN");
  return b ? b : "build";
}

// Runs `lessons/<name> <args>` with its figures in a temporary folder.
inline Run run_lesson(const std::string& name, const std::string& args) {
  std::string out = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") +
                    "/mmgrad_test_" + name;
  // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on "'" + std::string.
  std::string cmd = "'";
  cmd += bin_dir() + "/lessons/" + name + "' " + args + " --out '" + out + "' 2>&1";
  Run r;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE_MESSAGE(p != nullptr, "cannot start " << cmd);
  std::array<char, 4096> buf;
  while (fgets(buf.data(), buf.size(), p)) r.output += buf.data();
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  // The last line starting with "result:" holds name=value pairs.
  std::istringstream lines(r.output);
  std::string line, last;
  while (std::getline(lines, line))
    if (line.rfind("result:", 0) == 0) last = line;
  std::istringstream items(last.substr(last.empty() ? 0 : 7));
  std::string item;
  while (items >> item) {
    auto eq = item.find('=');
    if (eq == std::string::npos) continue;
    try {
      r.result[item.substr(0, eq)] = std::stod(item.substr(eq + 1));
    } catch (...) {
    }
  }
  return r;
}

}  // namespace lesson_test
