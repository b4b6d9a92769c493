#include "data/file_util.h"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace mmgrad::data {

namespace fs = std::filesystem;

void ensure_parent_dir(const std::string& path, const char* op) {
  fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) return;
  std::error_code ec;
  fs::create_directories(parent, ec);
  MMGRAD_CHECK(!ec, op, ": cannot create folder '", parent.string(), "' for '", path,
               "': ", ec.message());
}

std::string temp_path_for(const std::string& path) {
  // pid + a counter: unique across processes writing the same folder and across threads.
  static std::atomic<unsigned> counter{0};
  return cat_str(path, ".tmp.", static_cast<long>(::getpid()), ".", counter++);
}

void commit_temp_file(const std::string& tmp, const std::string& path, const char* op) {
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    fail(cat_str(op, ": cannot move the finished file into place as '", path, "': ", ec.message()));
  }
}

void write_file_atomic(const std::string& path, const std::string& content, const char* op) {
  MMGRAD_CHECK(!path.empty(), op, ": empty output path");
  ensure_parent_dir(path, op);
  std::string tmp = temp_path_for(path);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  MMGRAD_CHECK(f != nullptr, op, ": cannot write '", path, "': ", std::strerror(errno));
  size_t n = std::fwrite(content.data(), 1, content.size(), f);
  bool ok = n == content.size();
  ok = (std::fflush(f) == 0) && ok;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    fail(cat_str(op, ": error while writing '", path, "' (disk full?)"));
  }
  commit_temp_file(tmp, path, op);
}

void advise_huge_pages(void* p, size_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  if (!p || n < 2 * kHuge) return;
  // madvise needs page-aligned bounds: take the whole huge pages inside the block.
  uintptr_t a = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  uintptr_t e = (reinterpret_cast<uintptr_t>(p) + n) & ~(kHuge - 1);
  if (e > a) (void)::madvise(reinterpret_cast<void*>(a), e - a, MADV_HUGEPAGE);
#else
  (void)p;
  (void)n;
#endif
}

}  // namespace mmgrad::data
