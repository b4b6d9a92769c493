// Small file helpers shared by the data and plot writers: create the parent folder, and write
// through a temporary file plus rename so that a reader (or a crash) never sees half a file.
#pragma once

#include <string>

namespace mmgrad::data {

// Creates the folder that will hold `path` (no-op when it has none or it exists).
void ensure_parent_dir(const std::string& path, const char* op);
// A temporary name next to `path` (same folder, so the final rename is atomic).
std::string temp_path_for(const std::string& path);
// Renames tmp over path; on failure removes tmp and throws.
void commit_temp_file(const std::string& tmp, const std::string& path, const char* op);
// ensure_parent_dir + write to a temporary file + rename.
void write_file_atomic(const std::string& path, const std::string& content, const char* op);

// Asks the kernel to back [p, p + n) with 2 MiB pages (Linux transparent huge pages) before it
// is first written. Filling a fresh 188 MB dataset tensor costs ~46k page faults of ~15-25 us
// each with 4 KiB pages (about a second here) and ~100x fewer with huge pages. A hint only:
// silently does nothing where unsupported or for blocks under 4 MiB.
void advise_huge_pages(void* p, size_t n);

}  // namespace mmgrad::data
