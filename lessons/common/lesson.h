// What every lesson shares: command-line flags, the output folder, section headings, printing
// (lesson::print, common/format.h), timing and the final machine-readable result line.
//
// Common flags (DESIGN.md): --seed N, --epochs N, --steps N, --device cpu|cuda, --out DIR,
// --quick (the small setting the tests use), --data DIR (Fashion-MNIST folder), --help.
// A lesson may read extra flags of its own with args.get_int("--name", default) etc.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/format.h"  // lesson::print, lesson::format
#include "core/dtype.h"

namespace mmgrad::lesson {

struct Args {
  std::string lesson;  // e.g. "03_siamese_embeddings"
  uint64_t seed = 0;
  int epochs = -1;  // -1: the lesson's default
  int steps = -1;
  Device device = Device::CPU;
  std::string out;   // output folder, default out/<lesson>
  std::string data;  // Fashion-MNIST folder ("" = default / $MMGRAD_DATA)
  bool quick = false;
  int threads = 0;  // CPU threads in use (--threads; by default one per idle core)
  std::map<std::string, std::string> extra;  // other --key value pairs

  int epochs_or(int dflt) const { return epochs >= 0 ? epochs : dflt; }
  int steps_or(int dflt) const { return steps >= 0 ? steps : dflt; }
  int get_int(const std::string& key, int dflt) const;
  double get_double(const std::string& key, double dflt) const;
  std::string get_string(const std::string& key, const std::string& dflt) const;
  // A path inside the output folder (created on first use).
  std::string path(const std::string& file) const;
};

// Parses the flags. `extra_flags` lists lesson-specific flags ("--beta" ...) with a help line each;
// unknown flags are an error. Prints usage and exits on --help.
Args parse_args(int argc, char** argv, const std::string& lesson, const std::string& summary,
                const std::vector<std::pair<std::string, std::string>>& extra_flags = {});

// "== 2. The contrastive loss ==" style heading.
void section(const std::string& title);

// Seconds since the lesson started (parse_args starts the clock).
double elapsed_seconds();

// The last line of every lesson: "result: name=value name=value ... seconds=12.3".
class Result {
 public:
  Result& add(const std::string& name, double value);
  Result& add(const std::string& name, const std::string& value);
  void print() const;  // appends seconds=<elapsed>

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

// Runs a lesson body; an mmgrad::Error (bad flag, missing data, no GPU) is printed as one clear
// line and the program exits with status 1 instead of crashing.
int run(const std::function<void()>& body);

}  // namespace mmgrad::lesson
