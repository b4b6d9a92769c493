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

}  // namespace mmgrad::data
