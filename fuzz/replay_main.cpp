// Replays a fuzz target's saved inputs without libFuzzer: links the target's
// LLVMFuzzerTestOneInput and runs it once on every file in the folders given. ctest runs it over
// fuzz/corpus/<target>/ and fuzz/regressions/<target>/ (tests/CMakeLists.txt), in any build
// (gcc, the ASan/UBSan debug build), so every crash ever found stays fixed.
//
//   replay_fuzz_image fuzz/corpus/image fuzz/regressions/image
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    std::error_code ec;
    if (fs::is_regular_file(argv[i], ec)) {
      files.emplace_back(argv[i]);
      continue;
    }
    if (!fs::is_directory(argv[i], ec)) {
      std::printf("replay: no folder '%s' (no inputs there yet)\n", argv[i]);
      continue;
    }
    for (const auto& e : fs::directory_iterator(argv[i]))
      if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "replay: no inputs found\n");
    return 2;
  }
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::printf("replay: %s (%zu bytes)\n", f.string().c_str(), bytes.size());
    std::fflush(stdout);
    // A copy of exactly the file's size, as libFuzzer passes it, so ASan sees any over-read.
    std::vector<uint8_t> input(bytes.begin(), bytes.end());
    uint8_t* p = input.empty() ? nullptr : input.data();
    LLVMFuzzerTestOneInput(p, input.size());
  }
  std::printf("replay: %zu inputs, no crash\n", files.size());
  return 0;
}
