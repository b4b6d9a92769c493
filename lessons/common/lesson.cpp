#include "common/lesson.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <thread>
#include <vector>

#include "common/page.h"
#include "mmgrad/core/error.h"
#include "mmgrad/data/fashion_mnist.h"
#include "mmgrad/kernels/backend.h"
#include "mmgrad/tensor/generator.h"

namespace mmgrad::lesson {
namespace {

std::chrono::steady_clock::time_point& start_time() {
  static auto t = std::chrono::steady_clock::now();
  return t;
}

int64_t parse_int(const std::string& flag, const std::string& v) {
  try {
    size_t pos = 0;
    long long x = std::stoll(v, &pos);
    MMGRAD_CHECK(pos == v.size(), "");
    return x;
  } catch (...) {
    fail(cat_str("flag ", flag, ": expected an integer, got '", v, "'"));
  }
}

double parse_double(const std::string& flag, const std::string& v) {
  try {
    size_t pos = 0;
    double x = std::stod(v, &pos);
    MMGRAD_CHECK(pos == v.size(), "");
    return x;
  } catch (...) {
    fail(cat_str("flag ", flag, ": expected a number, got '", v, "'"));
  }
}

}  // namespace

int Args::get_int(const std::string& key, int dflt) const {
  auto it = extra.find(key);
  return it == extra.end() ? dflt : static_cast<int>(parse_int(key, it->second));
}

double Args::get_double(const std::string& key, double dflt) const {
  auto it = extra.find(key);
  return it == extra.end() ? dflt : parse_double(key, it->second);
}

std::string Args::get_string(const std::string& key, const std::string& dflt) const {
  auto it = extra.find(key);
  return it == extra.end() ? dflt : it->second;
}

std::string Args::path(const std::string& file) const {
  std::filesystem::path p = std::filesystem::path(out) / file;
  std::error_code ec;
  std::filesystem::create_directories(p.parent_path(), ec);
  MMGRAD_CHECK(!ec, "cannot create output folder ", p.parent_path().string(), ": ", ec.message());
  return p.string();
}

// Threads of OTHER programs running right now: /proc/loadavg's "running/total" field counts
// runnable threads, ourselves included. The median of a few samples 5 ms apart ignores a
// passing blip. -1 where /proc/loadavg is unavailable (not Linux).
static int other_running_threads() {
  std::vector<int> seen;
  for (int i = 0; i < 5; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::ifstream f("/proc/loadavg");
    double l1, l5, l15;
    int running = 0;
    char slash;
    if (!(f >> l1 >> l5 >> l15 >> running >> slash)) return -1;
    seen.push_back(std::max(0, running - 1));
  }
  std::sort(seen.begin(), seen.end());
  return seen[seen.size() / 2];
}

// Picks the CPU thread count when neither --threads nor OMP_NUM_THREADS says. Every kernel forks
// a team of threads and joins it at a barrier, hundreds of times per training step. When other
// programs keep the cores busy, a team member is often descheduled and everyone else waits for it
// at the barrier: on a loaded 2-core machine, 2 threads ran a training step ~20x SLOWER than 1
// (on an idle one, 2 threads are ~1.4x faster). So use the cores nobody else is running on, at
// least 1. Returns a note for the learner when that is fewer than all cores. The choice changes
// only the speed: every kernel sums in an order fixed by the problem size, so the numbers are the
// same on any thread count (tests/test_thread_determinism.cpp, tests/test_lesson_threads.cpp).
static std::string choose_threads(Args& a) {
  const int cores = get_num_threads();
  if (a.threads > 0 || std::getenv("OMP_NUM_THREADS")) {
    if (a.threads > 0) set_num_threads(a.threads);
    a.threads = get_num_threads();
    return "";
  }
  const int others = other_running_threads();
  a.threads = others < 0 ? cores : std::clamp(cores - others, 1, cores);
  set_num_threads(a.threads);
  if (a.threads == cores) return "";
  return cat_str("(the machine is busy: ", others, " other thread", others == 1 ? "" : "s",
                 " running on ", cores, " cores, so ", a.threads, " thread",
                 a.threads == 1 ? "" : "s", " here; --threads N overrides; the results do not ",
                 "depend on it)");
}

Args parse_args(int argc, char** argv, const std::string& lesson, const std::string& summary,
                unsigned uses,
                const std::vector<std::pair<std::string, std::string>>& extra_flags) {
  start_time() = std::chrono::steady_clock::now();
  Args a;
  a.lesson = lesson;
  // An extra flag is written "--name METAVAR" (the metavar is optional: "VALUE" by default).
  std::vector<std::pair<std::string, std::string>> extras;  // (name, metavar)
  for (const auto& [flag, help] : extra_flags) {
    const size_t space = flag.find(' ');
    extras.emplace_back(flag.substr(0, space),
                        space == std::string::npos ? "VALUE" : flag.substr(space + 1));
  }
  auto usage = [&] {
    lesson::print("Usage: {} [flags]\n\n{}: {}\n\nflags:", lesson, lesson, summary);
    auto row = [](const std::string& flag, const std::string& help) {
      lesson::print("  {:<20} {}", flag, help);
    };
    row("--seed N", "random seed, 0 or more (default 0)");
    if (uses & kUsesEpochs) row("--epochs N", "training epochs, 1 or more (default: the lesson's)");
    if (uses & kUsesSteps) row("--steps N", "training steps, 1 or more (default: the lesson's)");
    row("--device cpu|cuda", "where to run (default cpu)");
    row("--out DIR", cat_str("output folder (default out/", lesson, ")"));
    if (uses & kUsesData)
      row("--data DIR",
          "Fashion-MNIST folder (default $MMGRAD_DATA or /usr/share/datasets/fashion-mnist)");
    row("--quick", "the small, fast setting the tests use");
    row("--threads N",
        "CPU threads, 1 or more (default: one per core no other program is busy on; the "
        "results do not depend on it)");
    for (size_t k = 0; k < extras.size(); ++k)
      row(extras[k].first + " " + extras[k].second, extra_flags[k].second);
    lesson::print("\nA value follows its flag as the next word or after '=': --seed 3, --seed=3.");
  };
  auto at_least_1 = [](const std::string& flag, int64_t v) {
    MMGRAD_CHECK(v >= 1, "flag ", flag, ": expected 1 or more, got ", v);
    MMGRAD_CHECK(v <= std::numeric_limits<int>::max(), "flag ", flag, ": ", v, " is too large");
    return static_cast<int>(v);
  };
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    // --flag=value is the same as --flag value.
    std::string inline_value;
    bool has_inline = false;
    if (f.rfind("--", 0) == 0 && f.find('=') != std::string::npos) {
      const size_t eq = f.find('=');
      inline_value = f.substr(eq + 1);
      f = f.substr(0, eq);
      has_inline = true;
    }
    auto value = [&]() -> std::string {
      if (has_inline) return inline_value;
      MMGRAD_CHECK(i + 1 < argc, "flag ", f, " needs a value (see --help)");
      return argv[++i];
    };
    auto no_value = [&] {
      MMGRAD_CHECK(!has_inline, "flag ", f, " takes no value (got '", f, "=", inline_value, "')");
    };
    auto used = [&](unsigned bit) {
      MMGRAD_CHECK(uses & bit, "flag ", f, ": lesson ", lesson,
                   " has no use for it (it would be ignored; see --help)");
    };
    if (f == "--help" || f == "-h") {
      no_value();
      usage();
      std::exit(0);
    } else if (f == "--seed") {
      const int64_t seed = parse_int(f, value());
      MMGRAD_CHECK(seed >= 0, "flag --seed: expected 0 or more, got ", seed);
      a.seed = static_cast<uint64_t>(seed);
    } else if (f == "--epochs") {
      used(kUsesEpochs);
      a.epochs = at_least_1(f, parse_int(f, value()));
    } else if (f == "--steps") {
      used(kUsesSteps);
      a.steps = at_least_1(f, parse_int(f, value()));
    } else if (f == "--device") {
      a.device = parse_device(value());
    } else if (f == "--out") {
      a.out = value();
      MMGRAD_CHECK(!a.out.empty(), "flag --out: expected a folder, got an empty string");
    } else if (f == "--data") {
      used(kUsesData);
      a.data = value();
    } else if (f == "--quick") {
      no_value();
      a.quick = true;
    } else if (f == "--threads") {
      a.threads = at_least_1(f, parse_int(f, value()));
    } else {
      bool known = false;
      for (const auto& e : extras) known = known || e.first == f;
      MMGRAD_CHECK(known, "unknown flag '", f, "' (see --help)");
      a.extra[f] = value();
    }
  }
  // Everything the lesson will read is checked now, before any training: a missing dataset
  // should not surface after minutes of work.
  if (uses & kUsesData)
    MMGRAD_CHECK(data::fashion_mnist_available(a.data), "Fashion-MNIST not found in ",
                 data::fashion_mnist_dir(a.data),
                 " (the four files train-images-idx3-ubyte.gz, ...; install the Debian package "
                 "dataset-fashion-mnist, or pass --data DIR or set MMGRAD_DATA)");
  if (a.out.empty()) a.out = "out/" + lesson;
  if (a.device == Device::CUDA) backend(Device::CUDA);  // fails now, clearly, if no GPU
  manual_seed(a.seed);
  std::string busy = choose_threads(a);
  lesson::print("{}: {}", lesson, summary);
  // The seed as the unsigned number it is (lesson::format prints integers as signed 64-bit).
  const std::string settings = lesson::format(
      "seed {}, device {}{}, {} CPU thread{}", std::to_string(a.seed), device_name(a.device),
      a.quick ? ", quick mode" : "", a.threads, a.threads == 1 ? "" : "s");
  lesson::print("({}, figures in {}/)", settings, a.out);
  // From here on the lesson's page records what it prints and writes (common/page.h); the two
  // lines above are its header.
  page::begin(lesson, summary, a.out, settings);
  if (!busy.empty()) lesson::print("{}", busy);
  return a;
}

void section(const std::string& title) {
  // Straight to stdout: the page shows it as a heading, not as printed text.
  std::fputs(lesson::format("\n== {} ==\n\n", title).c_str(), stdout);
  std::fflush(stdout);
  page::record_heading(title);
}

Spread spread_of(const std::vector<double>& v) {
  MMGRAD_CHECK(!v.empty(), "lesson::spread_of: no values");
  Spread r{0, 0, v[0], v[0]};
  for (double x : v) {
    r.mean += x / static_cast<double>(v.size());
    r.lo = std::min(r.lo, x);
    r.hi = std::max(r.hi, x);
  }
  for (double x : v) r.sd += (x - r.mean) * (x - r.mean);
  r.sd = v.size() > 1 ? std::sqrt(r.sd / static_cast<double>(v.size() - 1)) : 0.0;
  return r;
}

std::string progress_time(int64_t done, int64_t total, double elapsed_s) {
  if (done <= 0 || done >= total) return lesson::format("({:.1f} s)", elapsed_s);
  const double left = elapsed_s / static_cast<double>(done) * static_cast<double>(total - done);
  return lesson::format("({:.1f} s, ~{:.0f} s left)", elapsed_s, left);
}

double elapsed_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time()).count();
}

Result& Result::add(const std::string& name, double value) {
  items_.emplace_back(name, lesson::format("{:.4g}", value));
  return *this;
}

Result& Result::add(const std::string& name, const std::string& value) {
  items_.emplace_back(name, value);
  return *this;
}

void Result::print() const {
  std::string line = "result:";
  for (auto& [k, v] : items_) line += lesson::format(" {}={}", k, v);
  line += lesson::format(" seconds={:.1f}", elapsed_seconds());
  // Straight to stdout: the page shows the result in its own box.
  std::fputs("\n", stdout);
  std::fputs(line.c_str(), stdout);
  std::fputs("\n", stdout);
  std::fflush(stdout);
  page::finish(line);  // out/<lesson>/index.html, and out/index.html (common/page.h)
}

int run(const std::function<void()>& body) {
  try {
    body();
    return 0;
  } catch (const Error& e) {
    std::fflush(stdout);
    std::fputs(lesson::format("error: {}\n", e.what()).c_str(), stderr);
    return 1;
  }
}

}  // namespace mmgrad::lesson
