// GzipSource: reads the decompressed bytes of a .gz file piece by piece, with every way a gzip
// file can be damaged turned into an mmgrad::Error that names the file.
//
// The compressed file is read into memory once (tens of MB for the largest dataset here) and
// inflated on demand into the caller's buffer, so a reader can convert bytes as they come out
// (no second full-size buffer) and can stop early when it needs only the first records.
// A file that does not start with the gzip magic bytes (1f 8b) is served as it is, so
// uncompressed copies of the same files work too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mmgrad::data {

class GzipSource {
 public:
  // `op` prefixes every error message ("read_idx_images: ...").
  GzipSource(const std::string& path, std::string op);
  // The same over a file's bytes already in memory; `name` stands for the path in messages.
  GzipSource(std::vector<uint8_t> bytes, const std::string& name, std::string op);
  ~GzipSource();
  GzipSource(const GzipSource&) = delete;
  GzipSource& operator=(const GzipSource&) = delete;

  // Decompresses up to n bytes into dst; returns how many were written (fewer only at the end of
  // the data). Throws on corrupt or truncated input.
  size_t read(uint8_t* dst, size_t n);
  // Reads exactly n bytes or throws "truncated: needed N bytes for <what>, file ends after M".
  void read_exact(uint8_t* dst, size_t n, const char* what);
  // Reads to the end and returns how many bytes were left (0 for a file that ends exactly here).
  // Also verifies the gzip trailer (CRC-32 and length) of the last member.
  uint64_t skip_rest();

  bool compressed() const { return compressed_; }
  // Size of the file on disk.
  uint64_t file_size() const { return in_.size(); }
  // An upper bound on the decompressed size: deflate never compresses more than 1032:1.
  uint64_t max_decompressed_size() const;
  uint64_t bytes_out() const { return produced_; }
  const std::string& path() const { return path_; }

 private:
  void start();
  std::string path_;
  std::string op_;
  std::vector<uint8_t> in_;
  bool compressed_ = false;
  bool finished_ = false;  // no more output: last member ended and no input left
  size_t raw_pos_ = 0;     // read position for uncompressed files
  uint64_t produced_ = 0;  // decompressed bytes handed out so far
  struct ZState;
  std::unique_ptr<ZState> z_;
};

}  // namespace mmgrad::data
