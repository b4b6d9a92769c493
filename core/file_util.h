// Writing files safely, the one way every writer in mmgrad does it (checkpoints, images, plots,
// CSV and tokenizer files), plus a memory hint for large buffers.
//
// A file written in place can be left half-written by a crash, a full disk or a killed process,
// and a reader may see it half-written. So we write the bytes to a temporary file in the same
// folder, flush them to the disk (fsync), and only then rename the temporary file over the real
// name. rename() within one folder (one file system) is atomic: a reader sees the old file or
// the whole new one, never a mix. If anything fails, the temporary file is removed and a file
// already at the path is left untouched.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

namespace mmgrad {

// Creates the folder that will hold `path` (no-op when it has none or it exists).
void ensure_parent_dir(const std::string& path, const char* op);

// One file written atomically, in pieces:
//   AtomicFile f(path, "save");   // takes a temporary "<path>.tmp.<k>" next to path
//   f.write(bytes, n); ...        // as many pieces as needed
//   f.commit();                   // fflush + fsync, rename over path, fsync the folder
// Destroyed without a successful commit() (an error, an exception in between), it removes the
// temporary file. The folder must exist (write_file_atomic creates it). Every error throws
// mmgrad::Error starting with `op` and naming the file.
//
// ---- Temporary files, and why killed writers do not leave them piling up -----------------------
// A process killed while writing (kill -9, a crash, a power cut) cannot remove its temporary.
// With one fresh name per writer, each kill left one more file beside the target (30 kills of a
// checkpoint loop left 18 files, 25 MB). So the names are few and reused, and a lock says which
// are in use:
//   - The temporaries of <path> are exactly "<path>.tmp.0" .. "<path>.tmp.7" (8 slots, so up to 8
//     processes or threads may write the same path at once; a 9th gets an error).
//   - A writer holds an exclusive flock() on its temporary from before its first byte until
//     after the rename (or the removal) that ends it. The kernel releases a process's locks when
//     the process ends, however it ends, so "the lock can be taken" means "no live writer uses
//     this file": it is stale.
//   - A writer takes the first slot whose lock it can take: a stale temporary there is reused
//     (truncated), a locked one is skipped. Then it removes the stale temporaries in the other
//     slots of the same <path>.
//   - A slot name is truncated, renamed or removed only by the holder of the lock on the file it
//     names, after checking that the name still names that file (same inode).
// Consequences: a temporary that a live writer is using is never touched; nothing is ever removed
// but a regular file named exactly "<path>.tmp.<k>", k < 8, for the path being written (no other
// file, no link, not another path's temporaries); after a killed writer at most one temporary of
// <path> remains, and the next save of <path> reuses or removes it, so none remains after it.
// Where the file system refuses flock(), the writer falls back to a unique name
// "<path>.tmp.<pid>.<n>", which a killed writer leaves behind.
class AtomicFile {
 public:
  AtomicFile(const std::string& path, const char* op);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);
  // Makes the file durable and puts it in place; after this the AtomicFile is finished.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return tmp_; }

 private:
  std::string path_, tmp_;
  const char* op_;
  std::FILE* f_ = nullptr;
  bool committed_ = false;
};

// ensure_parent_dir + AtomicFile: writes `content` as the whole file.
void write_file_atomic(const std::string& path, const std::string& content, const char* op);

// ---- Being told when a file has been written
// ----------------------------------------------------- One process-wide observer, called with the
// path (as the writer gave it) each time a file has been written completely: after every successful
// AtomicFile::commit (so after every write_file_atomic, image, plot, checkpoint...), and by writers
// outside mmgrad's own code (an external program) through notify_file_written. The lesson pages use
// it to show each figure where the lesson produced it (lessons/common/page.h); the library itself
// knows nothing of them. nullptr (the default) turns it off. The observer runs on the writing
// thread and must be quick; an exception it throws is swallowed: the file IS written, and a failing
// observer must not turn that into an error.
using FileWrittenObserver = void (*)(const std::string& path);
void set_file_written_observer(FileWrittenObserver observer);
void notify_file_written(const std::string& path);

// Asks the kernel to back [p, p + n) with 2 MiB pages (Linux transparent huge pages) before it
// is first written. Filling a fresh 188 MB dataset tensor costs ~46k page faults of ~15-25 us
// each with 4 KiB pages (about a second here) and ~100x fewer with huge pages. A hint only:
// silently does nothing where unsupported or for blocks under 4 MiB.
void advise_huge_pages(void* p, size_t n);

}  // namespace mmgrad
