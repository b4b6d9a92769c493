// The layering of the source tree, checked: dependencies point one way,
//   lessons -> nn / optim / metrics / data / plot -> ops -> autograd -> tensor -> kernels -> core,
// so a learner can read the library bottom-up, each folder needing only the ones below it.
// This test reads every source file under MMGRAD_ROOT and fails on an #include "folder/..." that
// the table below does not allow (a "back-arrow"), or on a folder the table does not know.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

using Folders = std::set<std::string>;

// Which top-level folders the files of each folder may include from (any header of their own
// folder, and the standard and third-party headers, always). The root (mmgrad.h, the umbrella
// header of tensors, autograd and ops) is named "mmgrad.h".
const std::map<std::string, Folders>& may_include() {
  static const Folders below_ops = {"core", "kernels", "tensor", "autograd", "ops"};
  static const std::map<std::string, Folders> table = [] {
    std::map<std::string, Folders> t;
    t["core"] = {"core"};  // leaf utilities: errors, dtype, shape, Philox, atomic files
    t["kernels"] = {"core", "kernels"};
    t["tensor"] = {"core", "kernels", "tensor"};
    t["autograd"] = {"core", "kernels", "tensor", "autograd"};
    t["ops"] = below_ops;
    t["mmgrad.h"] = below_ops;
    // Beside each other above ops; optim/ also uses nn/state_dict.h and nn/checkpoint.h (its
    // save/load), so optim sits just above nn and nn never includes optim.
    for (const char* f : {"nn", "metrics", "data", "plot"}) {
      t[f] = below_ops;
      t[f].insert(f);
    }
    t["optim"] = below_ops;
    t["optim"].insert({"nn", "optim"});
    // The programs on top may use everything.
    Folders all = {"core", "kernels", "tensor",  "autograd", "ops",  "mmgrad.h",
                   "nn",   "optim",   "metrics", "data",     "plot", "lessons"};
    for (const char* f : {"lessons", "tests", "bench"}) t[f] = all;
    t["bench"].insert("tests");  // bench_all --op reads the op list (tests/op_list.h)
    t["exercises"] = all;        // the exercise track (exercises/): checkers, solutions, tasks
    t["exercises"].insert("exercises");
    t["fuzz"] = all;  // fuzz targets (fuzz/): readers of outside data, and their helper header
    t["fuzz"].insert("fuzz");
    return t;
  }();
  return table;
}

// The top-level folder of a path relative to the root ("ops/conv.cpp" -> "ops"), or the file's
// name for a file at the root.
std::string top_folder(const fs::path& rel) { return rel.begin()->string(); }

// The quoted #include targets of a file, in order.
std::vector<std::string> quoted_includes(const fs::path& file) {
  std::vector<std::string> out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    size_t i = line.find_first_not_of(" \t");
    if (i == std::string::npos || line.compare(i, 1, "#") != 0) continue;
    i = line.find_first_not_of(" \t", i + 1);
    if (i == std::string::npos || line.compare(i, 7, "include") != 0) continue;
    const size_t open = line.find('"', i + 7);
    if (open == std::string::npos) continue;  // <...>: standard or third-party
    const size_t close = line.find('"', open + 1);
    if (close != std::string::npos) out.push_back(line.substr(open + 1, close - open - 1));
  }
  return out;
}

// The top-level folder an #include "target" in `file` (relative to the root) refers to, searched
// as the compiler does: the including file's own folder ("core_test_util.h" in tests/), the root,
// then lessons/ (where the lessons and their tests find "04_mini_clip/clip.h") and exercises/
// (whose files find "harness/exercise.h", and "checks.h", which exercises/CMakeLists.txt
// generates in the build folder) and tests/ (the op list, "op_list.h"). Empty when unresolved.
std::string included_folder(const fs::path& root, const fs::path& file, const std::string& target) {
  if (fs::exists(root / file.parent_path() / target)) return top_folder(file);
  // The library's headers, under the prefix a user of the installed package writes too
  // ("mmgrad/nn/linear.h" is <root>/nn/linear.h, "mmgrad/mmgrad.h" the umbrella at the root).
  if (target.rfind("mmgrad/", 0) == 0 && fs::exists(root / target.substr(7)))
    return top_folder(fs::path(target.substr(7)));
  if (fs::exists(root / target)) return top_folder(fs::path(target));
  if (fs::exists(root / "lessons" / target)) return "lessons";
  if (fs::exists(root / "exercises" / target)) return "exercises";
  if (fs::exists(root / "tests" / target)) return "tests";  // the op list, for bench_all --op
  if (top_folder(file) == "exercises" && target == "checks.h") return "exercises";
  return "";
}

// A violation of the table, as a message; empty when the include is allowed.
std::string check_include(const fs::path& root, const fs::path& file, const std::string& target) {
  const std::string from = top_folder(file);
  const auto rule = may_include().find(from);
  if (rule == may_include().end())
    return file.string() + ": folder '" + from + "' is not in the layering table of " +
           "tests/test_layering.cpp: add it";
  const std::string to = included_folder(root, file, target);
  if (to.empty()) return file.string() + ": cannot resolve #include \"" + target + "\"";
  // A library header named without its prefix compiles here (the programs see the source root)
  // but not against an installed mmgrad, where headers live under include/mmgrad/.
  static const Folders library = {"core", "kernels", "tensor",  "autograd", "ops", "mmgrad.h",
                                  "nn",   "optim",   "metrics", "data",     "plot"};
  if (library.count(to) && target.rfind("mmgrad/", 0) != 0 &&
      !fs::exists(root / file.parent_path() / target))
    return file.string() + ": #include \"" + target + "\" names a library header without its " +
           "prefix: write \"mmgrad/" + target + "\"";
  if (to == from || rule->second.count(to)) return "";
  return file.string() + " (" + from + "/) includes \"" + target + "\" (" + to +
         "/): a back-arrow, " + from + "/ may only include from the folders below it";
}

bool is_source(const fs::path& p) {
  const std::string e = p.extension().string();
  return e == ".h" || e == ".hpp" || e == ".cpp" || e == ".cu" || e == ".cuh";
}

fs::path source_root() {
  const char* root = std::getenv("MMGRAD_ROOT");
  REQUIRE_MESSAGE(root != nullptr, "MMGRAD_ROOT (the source folder) is not set; ctest sets it");
  REQUIRE(fs::exists(fs::path(root) / "tensor" / "tensor.h"));
  return root;
}

}  // namespace

TEST_CASE("layering: no folder includes a header from a folder above it") {
  const fs::path root = source_root();
  std::vector<std::string> problems;
  std::set<std::string> folders_seen;
  int files = 0, includes = 0;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    const fs::path rel = fs::relative(it->path(), root);
    const std::string top = top_folder(rel);
    // Build folders, git metadata and the scripts are not part of the layering.
    if (it->is_directory() && it.depth() == 0 &&
        (top.rfind("build", 0) == 0 || top[0] == '.' || top == "scripts" || top == "out")) {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file() || !is_source(rel)) continue;
    ++files;
    folders_seen.insert(top);
    for (const std::string& target : quoted_includes(it->path())) {
      ++includes;
      std::string problem = check_include(root, rel, target);
      if (!problem.empty()) problems.push_back(problem);
    }
  }
  for (const std::string& p : problems) FAIL_CHECK(p);
  CHECK(problems.empty());
  // The scan really read the tree (a wrong root would pass vacuously).
  CHECK(files > 150);
  CHECK(includes > 500);
  for (const char* f : {"core", "kernels", "tensor", "autograd", "ops", "nn", "optim", "metrics",
                        "data", "plot", "lessons", "tests"})
    CHECK_MESSAGE(folders_seen.count(f), (std::string("no source file found in ") + f + "/"));
}

TEST_CASE("layering: the checker catches a back-arrow and accepts the allowed directions") {
  const fs::path root = source_root();
  // The old back-arrow, printing in tensor/ reaching up into autograd/ for a Node's name.
  CHECK_FALSE(check_include(root, "tensor/print.cpp", "mmgrad/autograd/node.h").empty());
  CHECK_FALSE(check_include(root, "core/error.h", "mmgrad/tensor/tensor.h").empty());
  CHECK_FALSE(check_include(root, "kernels/cpu/random.cpp", "mmgrad/tensor/tensor.h").empty());
  CHECK_FALSE(check_include(root, "nn/checkpoint.cpp", "mmgrad/optim/optim.h").empty());
  CHECK_FALSE(check_include(root, "data/loader.cpp", "mmgrad/nn/module.h").empty());
  CHECK_FALSE(check_include(root, "ops/conv.cpp", "mmgrad/mmgrad.h").empty());
  CHECK_FALSE(
      check_include(root, "newfolder/x.cpp", "mmgrad/core/error.h").empty());  // unknown folder
  CHECK(check_include(root, "tensor/print.cpp", "mmgrad/tensor/tensor.h").empty());
  CHECK(check_include(root, "ops/conv.cpp", "mmgrad/autograd/node.h").empty());
  CHECK(check_include(root, "optim/optimizer.cpp", "mmgrad/nn/checkpoint.h").empty());
  CHECK(check_include(root, "kernels/cuda/random.cu", "mmgrad/core/philox.h").empty());
  CHECK(check_include(root, "lessons/05_zero_shot/main.cpp", "04_mini_clip/clip.h").empty());
  CHECK(check_include(root, "tests/test_tensor.cpp", "mmgrad/mmgrad.h").empty());
  // Without the prefix a library header would not be found in an installed mmgrad.
  CHECK_FALSE(check_include(root, "tests/test_tensor.cpp", "mmgrad.h").empty());
  CHECK_FALSE(check_include(root, "lessons/05_zero_shot/main.cpp", "nn/module.h").empty());
  CHECK_FALSE(check_include(root, "nn/linear.h", "nn/module.h").empty());
  CHECK(check_include(root, "nn/linear.h", "module.h").empty());  // beside it: found anywhere
}

TEST_CASE(
    "layering: every lesson is a folder with its main.cpp, and common/ holds only the harness") {
  const fs::path lessons = source_root() / "lessons";
  int folders = 0;
  for (const auto& e : fs::directory_iterator(lessons)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file()) {
      CHECK_MESSAGE(name == "CMakeLists.txt", "lessons/", name,
                    ": a lesson is a folder (lessons/NN_name/main.cpp), not a file");
      continue;
    }
    if (name == "common") {
      // The harness (flags, sections, result line), its printing and the lesson page: a
      // lesson's model lives in that lesson's folder.
      for (const auto& f : fs::directory_iterator(e.path())) {
        const std::string fn = f.path().filename().string();
        const bool harness = fn == "lesson.h" || fn == "lesson.cpp" || fn == "format.h" ||
                             fn == "format.cpp" || fn == "page.h" || fn == "page.cpp";
        CHECK_MESSAGE(harness, "lessons/common/", fn,
                      ": common/ keeps only the lesson harness; move a model beside its lesson");
      }
      continue;
    }
    ++folders;
    CHECK_MESSAGE(fs::exists(e.path() / "main.cpp"), "lessons/", name, " has no main.cpp");
  }
  CHECK(folders >= 11);
}
