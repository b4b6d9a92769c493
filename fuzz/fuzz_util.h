// Helpers shared by the fuzz targets (fuzz/fuzz_*.cpp).
//
// Each target defines LLVMFuzzerTestOneInput(data, size): feed the bytes to one reader of outside
// data and return 0. A reader may reject its input only with mmgrad::Error; anything else (a
// crash, a sanitizer report, a std::bad_alloc, a hang) is a finding. The same source files are
// linked into libFuzzer (clang, `make fuzz`) and into fuzz/replay_main.cpp, which ctest runs
// over fuzz/corpus/<target>/ and fuzz/regressions/<target>/ in the ordinary build.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "mmgrad/core/error.h"

namespace mmgrad::fuzz {

// The input as an in-memory file with a path ("/proc/self/fd/N"), for readers that only take a
// path: no disk I/O, and nothing left behind when a run is killed.
class MemFile {
 public:
  MemFile(const uint8_t* data, size_t size) {
    fd_ = ::memfd_create("mmgrad_fuzz", 0);
    if (fd_ < 0) std::abort();
    for (size_t done = 0; done < size;) {
      ssize_t n = ::write(fd_, data + done, size - done);
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// Runs f(); an mmgrad::Error (a rejected input) is the expected way to fail.
template <class F>
void expect_ok_or_error(F&& f) {
  try {
    f();
  } catch (const mmgrad::Error&) {
  }
}

}  // namespace mmgrad::fuzz
