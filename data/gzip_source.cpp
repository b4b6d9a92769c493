#include "mmgrad/data/gzip_source.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

#include "mmgrad/core/error.h"
#include "mmgrad/core/file_util.h"

namespace mmgrad::data {

struct GzipSource::ZState {
  z_stream s{};
  bool live = false;
};

namespace {

std::vector<uint8_t> read_whole_file(const std::string& path, const std::string& op) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  MMGRAD_CHECK(f != nullptr, op, ": cannot open '", path, "': ", std::strerror(errno));
  std::vector<uint8_t> bytes;
  long size = -1;
  if (std::fseek(f, 0, SEEK_END) == 0) size = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  if (size > 0) {
    bytes.reserve(static_cast<size_t>(size));
    advise_huge_pages(bytes.data(), bytes.capacity());
    bytes.resize(static_cast<size_t>(size));
    bytes.resize(std::fread(bytes.data(), 1, bytes.size(), f));
  }
  // Whatever the size said (a file that grows, or a pipe), read to the end.
  uint8_t chunk[1 << 16];
  for (;;) {
    size_t n = std::fread(chunk, 1, sizeof(chunk), f);
    bytes.insert(bytes.end(), chunk, chunk + n);
    if (n < sizeof(chunk)) break;
  }
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  MMGRAD_CHECK(!failed, op, ": error while reading '", path, "'");
  return bytes;
}

bool is_gzip_magic(const uint8_t* p, size_t n) { return n >= 2 && p[0] == 0x1f && p[1] == 0x8b; }

}  // namespace

GzipSource::GzipSource(const std::string& path, std::string op)
    : path_(path), op_(std::move(op)), z_(std::make_unique<ZState>()) {
  in_ = read_whole_file(path_, op_);
  start();
}

GzipSource::GzipSource(std::vector<uint8_t> bytes, const std::string& name, std::string op)
    : path_(name), op_(std::move(op)), in_(std::move(bytes)), z_(std::make_unique<ZState>()) {
  start();
}

void GzipSource::start() {
  compressed_ = is_gzip_magic(in_.data(), in_.size());
  if (!compressed_) return;
  // windowBits 15 + 16: expect a gzip wrapper (header, deflate data, CRC-32 + length trailer).
  int rc = inflateInit2(&z_->s, 15 + 16);
  MMGRAD_CHECK(rc == Z_OK, op_, ": zlib inflateInit2 failed for '", path_, "' (code ", rc, ")");
  z_->live = true;
  z_->s.next_in = in_.data();
  z_->s.avail_in = static_cast<uInt>(std::min<size_t>(in_.size(), UINT_MAX));
}

GzipSource::~GzipSource() {
  if (z_ && z_->live) inflateEnd(&z_->s);
}

uint64_t GzipSource::max_decompressed_size() const {
  return compressed_ ? static_cast<uint64_t>(in_.size()) * 1032 : in_.size();
}

size_t GzipSource::read(uint8_t* dst, size_t n) {
  if (n == 0 || finished_) return 0;
  if (!compressed_) {
    size_t k = std::min(n, in_.size() - raw_pos_);
    if (k > 0) std::memcpy(dst, in_.data() + raw_pos_, k);
    raw_pos_ += k;
    produced_ += k;
    if (raw_pos_ == in_.size()) finished_ = true;
    return k;
  }
  z_stream& s = z_->s;
  size_t done = 0;
  while (done < n) {
    // Feed input in pieces that fit zlib's 32-bit counters (matters only for files > 4 GB).
    if (s.avail_in == 0) {
      size_t consumed = static_cast<size_t>(s.next_in - in_.data());
      size_t left = in_.size() - consumed;
      s.avail_in = static_cast<uInt>(std::min<size_t>(left, UINT_MAX));
    }
    size_t want = std::min<size_t>(n - done, UINT_MAX);
    s.next_out = dst + done;
    s.avail_out = static_cast<uInt>(want);
    int rc = inflate(&s, Z_NO_FLUSH);
    size_t got = want - s.avail_out;
    done += got;
    produced_ += got;
    if (rc == Z_STREAM_END) {
      // One gzip member ended (its CRC-32 and length were verified by zlib). Another member may
      // follow (`cat a.gz b.gz` is a valid gzip file); anything else is damage.
      size_t consumed = static_cast<size_t>(s.next_in - in_.data());
      size_t left = in_.size() - consumed;
      if (left == 0) {
        finished_ = true;
        break;
      }
      MMGRAD_CHECK(is_gzip_magic(in_.data() + consumed, left), op_, ": '", path_, "' has ", left,
                   " bytes of garbage after the end of the gzip stream (corrupt file)");
      inflateReset(&s);
      continue;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR) {
      // No progress possible: with output space left this means the input ran out mid-stream.
      MMGRAD_CHECK(s.avail_out == 0, op_, ": '", path_, "' is truncated: the gzip stream ends ",
                   "unexpectedly after ", produced_, " decompressed bytes (", in_.size(),
                   " bytes on disk)");
      continue;
    }
    const char* msg = s.msg ? s.msg : "unknown error";
    if (rc == Z_DATA_ERROR)
      fail(cat_str(op_, ": '", path_, "' is corrupt: gzip data error (", msg, ") after ", produced_,
                   " decompressed bytes"));
    if (rc == Z_MEM_ERROR) fail(cat_str(op_, ": out of memory while decompressing '", path_, "'"));
    fail(cat_str(op_, ": zlib error ", rc, " (", msg, ") while decompressing '", path_, "'"));
  }
  return done;
}

void GzipSource::read_exact(uint8_t* dst, size_t n, const char* what) {
  size_t got = read(dst, n);
  MMGRAD_CHECK(got == n, op_, ": '", path_, "' is truncated: needed ", n, " bytes for ", what,
               " but the data ends after ", produced_, " bytes in total");
}

uint64_t GzipSource::skip_rest() {
  uint64_t extra = 0;
  uint8_t buf[1 << 14];
  for (;;) {
    size_t got = read(buf, sizeof(buf));
    extra += got;
    if (got < sizeof(buf)) break;
  }
  return extra;
}

}  // namespace mmgrad::data
