#include "mmgrad/core/file_util.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>

#include "mmgrad/core/error.h"

namespace mmgrad {

namespace fs = std::filesystem;

namespace {

std::string errno_text() { return std::strerror(errno); }

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
// The protocol (the rule is stated in core/file_util.h):
//   - a writer's temporary is one of the kTempSlots names "<path>.tmp.<k>";
//   - a writer holds flock(LOCK_EX) on its temporary from before its first byte until after its
//     rename (or unlink), so the lock is free exactly when no live process is using the file:
//     the kernel drops a process's flocks when it dies, kill -9 included;
//   - a name "<path>.tmp.<k>" is only truncated, renamed or unlinked by the holder of the lock on
//     the file it names, after checking that the name still names that file (a writer that has
//     just renamed it into place, or a cleaner that has just unlinked it, changes what it names).
// So a temporary whose lock can be taken is stale (its writer died) and may be reused or
// removed, and one that is locked is never touched.
namespace {

constexpr int kTempSlots = 8;

std::string slot_name(const std::string& path, int k) { return cat_str(path, ".tmp.", k); }

// Whether the open file fd is still the file called `name` (same device and inode, a regular
// file). False once someone renamed or unlinked that name.
bool still_named(int fd, const std::string& name) {
  struct stat a {
  }, b{};
  if (::fstat(fd, &a) != 0 || ::lstat(name.c_str(), &b) != 0) return false;
  return S_ISREG(b.st_mode) && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

enum class Slot { Taken, Busy, NotOurs, NoLocks };

// Tries to make slot `name` ours: opens (creating if absent) and locks it without waiting.
// Taken: fd is open, locked, still named `name` and truncated to 0 bytes (a stale temporary of
// a dead writer is reused). Busy: a live writer holds it. NotOurs: the name is something we must
// not touch (a symbolic link, a folder, a FIFO...). NoLocks: the file system refuses flock.
// Other failures (permissions, a missing folder) throw.
Slot take_slot(const std::string& name, const std::string& path, const char* op, int& fd) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    bool created = true;
    fd = ::open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (fd < 0 && errno == EEXIST) {
      created = false;
      fd = ::open(name.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
      if (fd < 0 && errno == ENOENT) continue;  // unlinked in between: create it afresh
      if (fd < 0 && (errno == ELOOP || errno == EISDIR || errno == ENXIO || errno == EACCES ||
                     errno == EPERM))
        return Slot::NotOurs;  // a link, a folder, a socket, someone else's file: not ours
    }
    MMGRAD_CHECK(fd >= 0, op, ": cannot write '", path, "': cannot create '", name,
                 "': ", errno_text());
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return Slot::NotOurs;
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      if (err == EWOULDBLOCK || err == EINTR) {
        ::close(fd);
        return Slot::Busy;
      }
      if (created) ::unlink(name.c_str());
      ::close(fd);
      return Slot::NoLocks;
    }
    // Between our open and our lock another writer may have used this file and renamed it over
    // <path> (then we hold a lock on the target itself), or a cleaner may have unlinked it: only
    // a file still called `name` is ours to reuse.
    if (!still_named(fd, name)) {
      ::close(fd);
      continue;
    }
    MMGRAD_CHECK(::ftruncate(fd, 0) == 0, op, ": cannot write '", path, "': cannot truncate '",
                 name, "': ", errno_text());
    return Slot::Taken;
  }
  fail(cat_str(op, ": cannot write '", path, "': the temporary file '", name,
               "' keeps changing under us (100 attempts)"));
}

// Removes the stale temporaries of `path` (slots whose lock can be taken), except `mine`.
void remove_stale_temporaries(const std::string& path, int mine) {
  for (int k = 0; k < kTempSlots; ++k) {
    if (k == mine) continue;
    const std::string name = slot_name(path, k);
    struct stat st {};
    if (::lstat(name.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && still_named(fd, name)) ::unlink(name.c_str());
    ::close(fd);  // releases the lock
  }
}

// The fallback where the file system has no flock: a unique name per writer (pid + counter), as
// mmgrad did before; a writer killed there leaves its temporary behind.
std::string unique_temp_name(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  return cat_str(path, ".tmp.", static_cast<long>(::getpid()), ".", counter++);
}

}  // namespace

AtomicFile::AtomicFile(const std::string& path, const char* op) : path_(path), op_(op) {
  MMGRAD_CHECK(!path_.empty(), op_, ": empty output path");
  int fd = -1, busy = 0;
  bool locks = true;
  for (int k = 0; k < kTempSlots && fd < 0 && locks; ++k) {
    const std::string name = slot_name(path_, k);
    switch (take_slot(name, path_, op_, fd)) {
      case Slot::Taken:
        tmp_ = name;
        remove_stale_temporaries(path_, k);
        break;
      case Slot::Busy:
        ++busy;
        [[fallthrough]];
      case Slot::NotOurs:
        fd = -1;
        break;
      case Slot::NoLocks:
        fd = -1;
        locks = false;
        break;
    }
  }
  if (fd < 0 && locks) {
    fail(cat_str(op_, ": cannot write '", path_, "': all ", kTempSlots, " temporary names '", path_,
                 ".tmp.0..", kTempSlots - 1, "' are in use (", busy,
                 " by other writers of the same file at this moment)"));
  }
  if (fd < 0) {
    tmp_ = unique_temp_name(path_);
    fd = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
    MMGRAD_CHECK(fd >= 0, op_, ": cannot write '", path_, "': cannot create '", tmp_,
                 "': ", errno_text());
  }
  f_ = ::fdopen(fd, "wb");
  if (!f_) {
    const std::string why = errno_text();
    ::unlink(tmp_.c_str());
    ::close(fd);
    fail(cat_str(op_, ": cannot write '", path_, "': cannot open '", tmp_, "': ", why));
  }
}

AtomicFile::~AtomicFile() {
  // Unlink before closing: the lock (held until fclose) keeps every other writer off the name.
  if (!committed_) ::unlink(tmp_.c_str());
  if (f_) std::fclose(f_);
}

void AtomicFile::write(const void* data, size_t n) {
  MMGRAD_CHECK(f_ != nullptr && !committed_, op_, ": '", path_, "' was already committed");
  if (n == 0) return;
  MMGRAD_CHECK(std::fwrite(data, 1, n, f_) == n, op_, ": writing '", path_,
               "' failed (temporary file '", tmp_, "'): ", errno_text(), " (disk full?)");
}

void AtomicFile::commit() {
  MMGRAD_CHECK(f_ != nullptr && !committed_, op_, ": '", path_, "' was already committed");
  // fflush moves our buffer to the kernel; fsync moves the kernel's to the disk. Only then may
  // the new name point at the data, or a crash could leave a complete-looking empty file.
  MMGRAD_CHECK(std::fflush(f_) == 0 && ::fsync(fileno(f_)) == 0, op_, ": flushing '", path_,
               "' failed (temporary file '", tmp_, "'): ", errno_text());
  // Renamed while still open, so still locked: no moment where the temporary exists unlocked.
  MMGRAD_CHECK(std::rename(tmp_.c_str(), path_.c_str()) == 0, op_, ": cannot rename '", tmp_,
               "' to '", path_, "': ", errno_text());
  committed_ = true;
  const int rc = std::fclose(f_);
  f_ = nullptr;
  MMGRAD_CHECK(rc == 0, op_, ": closing '", path_, "' failed after it was written: ", errno_text());
  sync_parent_dir(path_);
  notify_file_written(path_);
}

void write_file_atomic(const std::string& path, const std::string& content, const char* op) {
  MMGRAD_CHECK(!path.empty(), op, ": empty output path");
  ensure_parent_dir(path, op);
  AtomicFile f(path, op);
  f.write(content.data(), content.size());
  f.commit();
}

// ---- the file-written observer ------------------------------------------------------------------
// An atomic pointer: writers on several threads may read it while the lesson harness sets it.
namespace {
std::atomic<FileWrittenObserver> g_file_written_observer{nullptr};
}  // namespace

void set_file_written_observer(FileWrittenObserver observer) {
  g_file_written_observer.store(observer);
}

void notify_file_written(const std::string& path) {
  FileWrittenObserver f = g_file_written_observer.load();
  if (!f) return;
  try {
    f(path);
  } catch (...) {  // see file_util.h: the write succeeded; the observer's trouble is its own
  }
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
