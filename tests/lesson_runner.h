// Runs a lesson program (built into $MMGRAD_BIN/lessons) and reads its "result:" line; helpers
// for checking the files it writes (out_dir, is_svg; read_text from file_test_util.h).
#pragma once

#include <doctest/doctest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>

#include "file_test_util.h"  // read_text, for the files a lesson writes

namespace lesson_test {

struct Run {
  int status = -1;
  std::string output;                    // everything the lesson printed (stdout + stderr)
  std::map<std::string, double> result;  // the numbers of its "result:" line
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

// The folder run_lesson gives lesson `name` for its figures: <$TMPDIR or /tmp>/mmgrad_test_<name>.
inline std::string out_dir(const std::string& name) {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp ? tmp : "/tmp") + "/mmgrad_test_" + name;
}

// s starts like an SVG file: "<svg" or an XML declaration.
inline bool is_svg(const std::string& s) {
  return s.rfind("<svg", 0) == 0 || s.rfind("<?xml", 0) == 0;
}

// The file at `path` is a whole SVG document: it starts like one and closes its root element.
inline bool is_svg_file(const std::string& path) {
  std::string s = mmgrad::testing::read_text(path);
  return is_svg(s) && s.find("</svg>") != std::string::npos;
}

// Runs `lessons/<name> <args>` with its figures in out_dir(name). With MMGRAD_TEST_DEVICE set
// (e.g. `MMGRAD_TEST_DEVICE=cuda ctest -R test_lesson` on a GPU machine), the lesson also gets
// `--device <that>`, so every lesson test checks its thresholds on that device.
inline Run run_lesson(const std::string& name, const std::string& args) {
  std::string out = out_dir(name);
  // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on "'" + std::string.
  std::string cmd = "'";
  cmd += bin_dir() + "/lessons/" + name + "' " + args + " --out '" + out + "'";
  const char* device = std::getenv("MMGRAD_TEST_DEVICE");
  if (device && *device && args.find("--device") == std::string::npos) {
    cmd += " --device ";
    cmd += device;
  }
  cmd += " 2>&1";
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
