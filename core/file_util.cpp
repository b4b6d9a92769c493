#include "core/file_util.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace mmgrad {

namespace fs = std::filesystem;

namespace {

std::string errno_text() { return std::strerror(errno); }

// A temporary name next to `path` (same folder, so the final rename is atomic). pid + a counter:
// unique across processes writing the same folder and across threads of one process.
std::string temp_path_for(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  return cat_str(path, ".tmp.", static_cast<long>(::getpid()), ".", counter++);
}

// Makes a finished rename durable: the new directory entry is only on the disk once the folder
// itself is fsync'ed. Best effort: some file systems refuse fsync on a directory.
void sync_parent_dir(const std::string& path) {
  fs::path parent = fs::path(path).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

void ensure_parent_dir(const std::string& path, const char* op) {
  fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) return;
  std::error_code ec;
  fs::create_directories(parent, ec);
  MMGRAD_CHECK(!ec, op, ": cannot create folder '", parent.string(), "' for '", path,
               "': ", ec.message());
}

// ---- AtomicFile ---------------------------------------------------------------------------------
AtomicFile::AtomicFile(const std::string& path, const char* op) : path_(path), op_(op) {
  MMGRAD_CHECK(!path_.empty(), op_, ": empty output path");
  tmp_ = temp_path_for(path_);
  f_ = std::fopen(tmp_.c_str(), "wb");
  MMGRAD_CHECK(f_ != nullptr, op_, ": cannot write '", path_, "': cannot create '", tmp_,
               "': ", errno_text());
}

AtomicFile::~AtomicFile() {
  if (f_) std::fclose(f_);
  if (!committed_) std::remove(tmp_.c_str());
}

void AtomicFile::write(const void* data, size_t n) {
  MMGRAD_CHECK(f_ != nullptr, op_, ": '", path_, "' was already committed");
  if (n == 0) return;
  MMGRAD_CHECK(std::fwrite(data, 1, n, f_) == n, op_, ": writing '", path_,
               "' failed (temporary file '", tmp_, "'): ", errno_text(), " (disk full?)");
}

void AtomicFile::commit() {
  MMGRAD_CHECK(f_ != nullptr, op_, ": '", path_, "' was already committed");
  // fflush moves our buffer to the kernel; fsync moves the kernel's to the disk. Only then may
  // the new name point at the data, or a crash could leave a complete-looking empty file.
  MMGRAD_CHECK(std::fflush(f_) == 0 && ::fsync(fileno(f_)) == 0, op_, ": flushing '", path_,
               "' failed (temporary file '", tmp_, "'): ", errno_text());
  const int rc = std::fclose(f_);
  f_ = nullptr;
  MMGRAD_CHECK(rc == 0, op_, ": closing '", path_, "' failed (temporary file '", tmp_,
               "'): ", errno_text());
  MMGRAD_CHECK(std::rename(tmp_.c_str(), path_.c_str()) == 0, op_, ": cannot rename '", tmp_,
               "' to '", path_, "': ", errno_text());
  committed_ = true;
  sync_parent_dir(path_);
}

void write_file_atomic(const std::string& path, const std::string& content, const char* op) {
  MMGRAD_CHECK(!path.empty(), op, ": empty output path");
  ensure_parent_dir(path, op);
  AtomicFile f(path, op);
  f.write(content.data(), content.size());
  f.commit();
}

// ---- huge pages ---------------------------------------------------------------------------------
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

}  // namespace mmgrad
