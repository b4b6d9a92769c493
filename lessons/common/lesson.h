// What every lesson shares: command-line flags, the output folder, section headings, printing
// (lesson::print, common/format.h), timing and the final machine-readable result line.
//
// Common flags (DESIGN.md): --seed N, --epochs N, --steps N, --device cpu|cuda, --out DIR,
// --quick (the small setting the tests use), --data DIR (Fashion-MNIST folder), --threads N,
// --help; --epochs, --steps and --data only in the lessons that read them.
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
#include "mmgrad/core/dtype.h"

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

// Which of the common flags a lesson reads (`uses` of parse_args): a flag the lesson has no use
// for is refused, not silently ignored, and --help lists only the flags it reads. kUsesData also
// checks, before anything runs, that the Fashion-MNIST files are there.
enum : unsigned { kUsesNone = 0, kUsesSteps = 1u, kUsesEpochs = 2u, kUsesData = 4u };

// Parses the flags; `--flag value` and `--flag=value` both work. Values are checked now: --seed
// 0 or more; --steps, --epochs, --threads 1 or more. `extra_flags` lists the lesson's own flags
// as ("--beta X", help line), the word after the name being the metavar --help shows; their
// values are read later with args.get_int("--beta", 3) etc. Unknown flags are an error. Prints
// the usage and exits on --help.
Args parse_args(int argc, char** argv, const std::string& lesson, const std::string& summary,
                unsigned uses,
                const std::vector<std::pair<std::string, std::string>>& extra_flags = {});

// "== 2. The contrastive loss ==" style heading (a heading on the lesson page too).
void section(const std::string& title);

// Seconds since the lesson started (parse_args starts the clock).
double elapsed_seconds();

// The spread of a metric over seeds: mean, sample standard deviation (n - 1; 0 for one value),
// lowest and highest. v must not be empty.
struct Spread {
  double mean = 0, sd = 0, lo = 0, hi = 0;
};
Spread spread_of(const std::vector<double>& v);

// "(12.3 s, ~41 s left)": the time a loop has taken after `done` of `total` iterations and a
// linear estimate of the rest, for progress lines ("(12.3 s)" alone once done == total).
std::string progress_time(int64_t done, int64_t total, double elapsed_s);

// The last line of every lesson: "result: name=value name=value ... seconds=12.3". Printing it
// also writes the lesson's page, out/<lesson>/index.html (common/page.h).
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
