#include "mmgrad/data/image.h"

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>

#include "mmgrad/core/error.h"
#include "mmgrad/core/file_util.h"

// stb_easy_font is header-only with static functions; the ones we do not call would warn.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb/stb_easy_font.h>
#pragma GCC diagnostic pop

namespace mmgrad::data {

namespace {

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

void check_plain(const char* op, const Tensor& t) {
  MMGRAD_CHECK(t.defined(), op, ": got an undefined tensor");
  MMGRAD_CHECK(!t.requires_grad(), op, ": is a data transform without gradient, but got a ",
               "tensor that requires grad (", describe(t), "); pass x.detach()");
}

// An 8-bit interleaved (HWC) picture: what stb_image_write takes.
struct Bitmap {
  int w = 0, h = 0, c = 0;
  std::vector<uint8_t> px;
  uint8_t* at(int y, int x) { return px.data() + (static_cast<size_t>(y) * w + x) * c; }
};

uint8_t to_byte(float v) {
  // NaN -> 0; clamp to [0, 1]; round to nearest.
  if (!(v > 0.0f)) return 0;
  if (v >= 1.0f) return 255;
  return static_cast<uint8_t>(v * 255.0f + 0.5f);
}

// [H, W] or [C, H, W] float -> Bitmap with C channels (1, 3 or 4).
Bitmap to_bitmap(const Tensor& image, const char* op) {
  check_plain(op, image);
  MMGRAD_CHECK(image.is_floating_point(), op, ": expects a float image, got ", describe(image));
  MMGRAD_CHECK(image.dim() == 2 || image.dim() == 3, op,
               ": expects an image [H, W] or [C, H, W], got ", describe(image));
  int64_t c = image.dim() == 2 ? 1 : image.size(0);
  int64_t h = image.size(-2 + image.dim()), w = image.size(-1 + image.dim());
  MMGRAD_CHECK(c == 1 || c == 3 || c == 4, op, ": expects 1, 3 or 4 channels (grey, RGB, RGBA), ",
               "got ", describe(image));
  MMGRAD_CHECK(h > 0 && w > 0 && h <= (1 << 16) && w <= (1 << 16), op,
               ": image size must be between 1 and 65536 pixels per side, got ", describe(image));
  std::vector<float> v = image.to_vector<float>();  // row-major CHW, from any strides/device
  Bitmap b{static_cast<int>(w), static_cast<int>(h), static_cast<int>(c), {}};
  b.px.resize(static_cast<size_t>(w * h * c));
  const int64_t plane = h * w;
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t i = 0; i < plane; ++i) b.px[i * c + ch] = to_byte(v[ch * plane + i]);
  return b;
}

// stb encodes into memory through a callback; the bytes then go to disk the one safe way
// (core/file_util.h: temporary file, fsync, rename).
void append_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                             static_cast<size_t>(size));
}

void write_bitmap(const Bitmap& b, const std::string& path, const char* op) {
  MMGRAD_CHECK(!path.empty(), op, ": empty output path");
  std::string ext = lower_extension(path);
  bool jpeg = ext == ".jpg" || ext == ".jpeg";
  MMGRAD_CHECK(jpeg || ext == ".png", op, ": can write .png or .jpg files, got '", path, "'");
  std::string bytes;
  int ok =
      jpeg ? stbi_write_jpg_to_func(append_bytes, &bytes, b.w, b.h, b.c, b.px.data(), 95)
           : stbi_write_png_to_func(append_bytes, &bytes, b.w, b.h, b.c, b.px.data(), b.w * b.c);
  MMGRAD_CHECK(ok, op, ": could not encode '", path, "' (out of memory?)");
  write_file_atomic(path, bytes, op);
}

// ---- bilinear resize ---------------------------------------------------------------------------

// PyTorch's area_pixel_compute_source_index for align_corners=False.
struct Tap {
  int64_t i0, i1;
  double l0, l1;  // weights of i0 and i1
};

std::vector<Tap> taps(int64_t in, int64_t out) {
  std::vector<Tap> t(out);
  double scale = static_cast<double>(in) / static_cast<double>(out);
  for (int64_t o = 0; o < out; ++o) {
    double src = std::max(0.0, scale * (static_cast<double>(o) + 0.5) - 0.5);
    int64_t i0 = std::min<int64_t>(static_cast<int64_t>(src), in - 1);
    int64_t i1 = i0 < in - 1 ? i0 + 1 : i0;
    double l1 = src - static_cast<double>(i0);
    t[o] = {i0, i1, 1.0 - l1, l1};
  }
  return t;
}

template <class T>
void resize_planes(const T* in, T* out, int64_t planes, int64_t hi, int64_t wi, int64_t ho,
                   int64_t wo) {
  std::vector<Tap> ty = taps(hi, ho), tx = taps(wi, wo);
  for (int64_t p = 0; p < planes; ++p) {
    const T* src = in + p * hi * wi;
    T* dst = out + p * ho * wo;
    for (int64_t y = 0; y < ho; ++y) {
      const T* r0 = src + ty[y].i0 * wi;
      const T* r1 = src + ty[y].i1 * wi;
      double a0 = ty[y].l0, a1 = ty[y].l1;
      for (int64_t x = 0; x < wo; ++x) {
        const Tap& t = tx[x];
        double top = t.l0 * static_cast<double>(r0[t.i0]) + t.l1 * static_cast<double>(r0[t.i1]);
        double bot = t.l0 * static_cast<double>(r1[t.i0]) + t.l1 * static_cast<double>(r1[t.i1]);
        dst[y * wo + x] = static_cast<T>(a0 * top + a1 * bot);
      }
    }
  }
}

// ---- grid drawing ------------------------------------------------------------------------------

// Printable ASCII only: stb_easy_font covers 32..126, anything else is drawn as '?'.
std::string printable(const std::string& s) {
  std::string out = s;
  for (char& ch : out) {
    unsigned char u = static_cast<unsigned char>(ch);
    if (ch != '\n' && (u < 32 || u > 126)) ch = '?';
  }
  return out;
}

struct Colour {
  uint8_t r, g, b;
};
constexpr Colour kInk{20, 20, 20};
constexpr Colour kMarkRed{210, 25, 25};

void fill_rect(Bitmap& b, int x0, int y0, int x1, int y1, Colour c) {
  for (int y = std::max(y0, 0); y < std::min(y1, b.h); ++y)
    for (int x = std::max(x0, 0); x < std::min(x1, b.w); ++x) {
      uint8_t* p = b.at(y, x);
      p[0] = c.r, p[1] = c.g, p[2] = c.b;
    }
}

// A frame `t` pixels thick just inside the rectangle [x0, x1) x [y0, y1).
void draw_frame(Bitmap& b, int x0, int y0, int x1, int y1, int t, Colour c) {
  fill_rect(b, x0, y0, x1, y0 + t, c);
  fill_rect(b, x0, y1 - t, x1, y1, c);
  fill_rect(b, x0, y0, x0 + t, y1, c);
  fill_rect(b, x1 - t, y0, x1, y1, c);
}

// Rasterises one line of stb_easy_font text (its quads are axis-aligned rectangles on integer
// coordinates) into the bitmap at (x, y), each font pixel drawn as fs x fs pixels.
void draw_text(Bitmap& b, const std::string& line, int x, int y, int fs, Colour colour = kInk) {
  std::vector<char> buf(line.begin(), line.end());
  buf.push_back('\0');
  // stb_easy_font writes 4 vertices of 16 bytes per segment (quad) and stops silently when the
  // buffer is full; a glyph has at most a dozen segments, so 16 quads per character always fit.
  std::vector<char> verts(line.size() * 16 * 64 + 64);
  int quads =
      stb_easy_font_print(0, 0, buf.data(), nullptr, verts.data(), static_cast<int>(verts.size()));
  for (int q = 0; q < quads; ++q) {
    float x0 = 1e9f, y0 = 1e9f, x1 = -1e9f, y1 = -1e9f;
    for (int v = 0; v < 4; ++v) {
      float vx, vy;
      std::memcpy(&vx, verts.data() + (q * 4 + v) * 16, sizeof(float));
      std::memcpy(&vy, verts.data() + (q * 4 + v) * 16 + 4, sizeof(float));
      x0 = std::min(x0, vx), x1 = std::max(x1, vx), y0 = std::min(y0, vy), y1 = std::max(y1, vy);
    }
    fill_rect(b, x + static_cast<int>(std::floor(x0)) * fs,
              y + static_cast<int>(std::floor(y0)) * fs, x + static_cast<int>(std::ceil(x1)) * fs,
              y + static_cast<int>(std::ceil(y1)) * fs, colour);
  }
}

// [H, W] or [C, H, W] (C = 1, 3, 4) -> RGB floats, alpha composited over white.
struct Rgb {
  int64_t h = 0, w = 0;
  std::vector<float> v;  // HWC, 3 channels
};

Rgb to_rgb(const Tensor& image, size_t index, const char* op) {
  check_plain(op, image);
  MMGRAD_CHECK(image.is_floating_point() && (image.dim() == 2 || image.dim() == 3), op, ": image ",
               index, " must be a float [H, W] or [C, H, W] tensor, got ", describe(image));
  int64_t c = image.dim() == 2 ? 1 : image.size(0);
  MMGRAD_CHECK(c == 1 || c == 3 || c == 4, op, ": image ", index,
               " must have 1, 3 or 4 channels, got ", describe(image));
  Rgb r;
  r.h = image.size(image.dim() - 2);
  r.w = image.size(image.dim() - 1);
  MMGRAD_CHECK(r.h > 0 && r.w > 0 && r.h <= 4096 && r.w <= 4096, op, ": image ", index,
               " must be 1 to 4096 pixels per side, got ", describe(image));
  std::vector<float> v = image.to_vector<float>();
  const int64_t plane = r.h * r.w;
  r.v.resize(static_cast<size_t>(plane * 3));
  for (int64_t i = 0; i < plane; ++i) {
    float a = c == 4 ? std::clamp(v[3 * plane + i], 0.0f, 1.0f) : 1.0f;
    for (int ch = 0; ch < 3; ++ch) {
      float x = c == 1 ? v[i] : v[ch * plane + i];
      r.v[i * 3 + ch] = x * a + (1.0f - a);
    }
  }
  return r;
}

}  // namespace

namespace {

uint32_t big_endian_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// A PNG is an 8-byte signature and a list of chunks (4-byte big-endian length, 4-byte type,
// data, 4-byte CRC) up to IEND. stb trusts each declared length and allocates for it before
// reading, so a 40-byte file declaring a 2 GB IDAT made it allocate 2 GB: check them first.
void check_png_chunks(const uint8_t* p, size_t size, const std::string& name, const char* op) {
  size_t pos = 8;
  while (pos < size) {
    MMGRAD_CHECK(size - pos >= 12, op, ": cannot decode '", name,
                 "': a truncated PNG: a chunk header at byte ", pos, " needs 12 bytes, ",
                 size - pos, " remain");
    const uint32_t len = big_endian_u32(p + pos);
    const std::string type(reinterpret_cast<const char*>(p + pos + 4), 4);
    MMGRAD_CHECK(len <= size - pos - 12, op, ": cannot decode '", name,
                 "': a corrupt or truncated PNG: chunk '", type, "' at byte ", pos, " declares ",
                 len, " bytes but only ", size - pos - 12, " remain in the file");
    pos += 12 + static_cast<size_t>(len);
    if (type == "IEND") break;
  }
}

// stb 2.27 builds a JPEG Huffman table (DHT segment) without checking that its 16 code-length
// counts add up to at most 256 symbols, and then writes past its 257-entry arrays (found by
// fuzz/fuzz_image.cpp). Every DHT segment stb could read is checked here first. The walk follows
// stb's own parser: a length-prefixed segment is skipped by its length (stb consumes exactly
// that or fails); bytes between segments (entropy-coded data, garbage) are skipped up to the next
// 0xFF, and 0xFF 0x00 (a stuffed byte) and RST markers are not segments. Inside a DHT segment
// tables are read as stb reads them, also past the segment's declared length (stb only notices
// that afterwards) and with zeros past the end of the file (what stb's reader returns there).
void check_jpeg_huffman_tables(const uint8_t* p, size_t size, const std::string& name,
                               const char* op) {
  auto at = [&](size_t i) -> int { return i < size ? p[i] : 0; };
  // A JPEG starts with the SOI marker, FF D8, which stb also finds after extra FF fill bytes.
  size_t pos = 0;
  if (size < 2 || p[0] != 0xff) return;
  while (pos < size && p[pos] == 0xff) ++pos;
  if (pos >= size || p[pos] != 0xd8) return;
  ++pos;
  while (pos < size) {
    if (p[pos] != 0xff) {
      ++pos;
      continue;
    }
    while (pos < size && p[pos] == 0xff) ++pos;  // fill bytes
    if (pos >= size) break;
    const int marker = p[pos++];
    if (marker == 0xd9) break;  // EOI
    if (marker == 0x00 || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd8)) continue;
    const size_t len = static_cast<size_t>(at(pos) << 8 | at(pos + 1));
    if (marker == 0xc4) {
      int64_t left = static_cast<int64_t>(len) - 2;
      size_t q = pos + 2;
      while (left > 0) {
        const int tc = at(q) >> 4, th = at(q) & 15;
        if (tc > 1 || th > 3) break;  // stb refuses the file here
        int n = 0;
        for (int i = 0; i < 16; ++i) n += at(q + 1 + i);
        MMGRAD_CHECK(n <= 256, op, ": cannot decode '", name, "': a corrupt JPEG: Huffman table ",
                     th, " (at byte ", q, ") declares ", n, " codes (at most 256)");
        q += 17 + static_cast<size_t>(n);
        left -= 17 + n;
      }
    }
    pos += len;
  }
}

// A binary PGM/PPM header ("P5"/"P6", width, height, maxval, each after whitespace or '#'
// comments, then one whitespace byte), parsed as stb parses it: its length (the samples follow
// it; 0 for a header that ends early, which stb then refuses) and whether a number exceeds
// INT_MAX (stb 2.27 accumulates the digits in an int without checking: undefined behaviour, found
// by fuzz/fuzz_image.cpp).
struct PnmHeader {
  size_t length = 0;
  bool number_too_large = false;
};
PnmHeader parse_pnm_header(const uint8_t* p, size_t size) {
  auto space = [](uint8_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
  };
  PnmHeader h;
  size_t pos = 2;
  for (int field = 0; field < 3; ++field) {
    for (;;) {  // whitespace and comment lines
      while (pos < size && space(p[pos])) ++pos;
      if (pos >= size || p[pos] != '#') break;
      while (pos < size && p[pos] != '\n' && p[pos] != '\r') ++pos;
    }
    if (pos >= size || p[pos] < '0' || p[pos] > '9') return h;
    int64_t value = 0;
    while (pos < size && p[pos] >= '0' && p[pos] <= '9') {
      value = std::min<int64_t>(value * 10 + (p[pos] - '0'), int64_t{1} << 40);
      ++pos;
    }
    if (value > INT32_MAX) h.number_too_large = true;
  }
  h.length = pos < size ? pos + 1 : 0;  // the one byte after maxval
  return h;
}

// stb's conversion between channel counts for 16-bit pixels (stbi__convert_format16, whose
// grey value is (77 r + 150 g + 29 b) >> 8), done here: stb 2.27 converts 16-bit PGM/PPM files
// with its 8-bit routine when asked for another channel count, and reads past its buffer.
std::vector<uint16_t> convert_channels16(const uint16_t* src, int64_t pixels, int from, int to) {
  std::vector<uint16_t> out(static_cast<size_t>(pixels * to));
  auto grey = [](const uint16_t* s) {
    return static_cast<uint16_t>((s[0] * 77 + s[1] * 150 + s[2] * 29) >> 8);
  };
  for (int64_t i = 0; i < pixels; ++i) {
    const uint16_t* s = src + i * from;
    uint16_t* d = out.data() + i * to;
    const bool has_alpha = from == 2 || from == 4;
    const uint16_t alpha = has_alpha ? s[from - 1] : 0xffff;
    const uint16_t y = from >= 3 ? grey(s) : s[0];
    if (to == 1 || to == 2) {
      d[0] = y;
      if (to == 2) d[1] = alpha;
    } else {
      for (int ch = 0; ch < 3; ++ch) d[ch] = from >= 3 ? s[ch] : s[0];
      if (to == 4) d[3] = alpha;
    }
  }
  return out;
}

}  // namespace

Tensor decode_image(const void* data, size_t size, int channels, const std::string& name) {
  const char* op = "load_image";
  OpScope scope(op);
  MMGRAD_CHECK(channels >= 0 && channels <= 4, op, ": channels must be 0 (as in the file) or 1-4, ",
               "got ", channels);
  MMGRAD_CHECK(size > 0, op, ": cannot decode '", name, "': the file is empty (0 bytes)");
  MMGRAD_CHECK(size <= static_cast<size_t>(INT32_MAX), op, ": cannot decode '", name, "': it is ",
               size, " bytes; image files of 2 GB or more are not supported");
  const auto* bytes = static_cast<const uint8_t*>(data);
  const int len = static_cast<int>(size);

  // 1. The structure stb trusts (even stbi_info builds a JPEG's Huffman tables and reads a PNG's
  //    chunks), then the header only: size and channels, before any pixel is decoded.
  const bool png = size >= 8 && std::memcmp(bytes, "\x89PNG\r\n\x1a\n", 8) == 0;
  if (png) check_png_chunks(bytes, size, name, op);
  check_jpeg_huffman_tables(bytes, size, name, op);
  const bool pnm = size >= 2 && bytes[0] == 'P' && (bytes[1] == '5' || bytes[1] == '6');
  const PnmHeader pnm_header = pnm ? parse_pnm_header(bytes, size) : PnmHeader{};
  MMGRAD_CHECK(!pnm_header.number_too_large, op, ": cannot decode '", name,
               "': a corrupt PGM/PPM header: a number exceeds 2^31 - 1");
  int w = 0, h = 0, file_c = 0;
  MMGRAD_CHECK(stbi_info_from_memory(bytes, len, &w, &h, &file_c) != 0, op, ": cannot decode '",
               name, "': ", stbi_failure_reason(), " (truncated, corrupt or not an image file)");
  const bool wide = stbi_is_16_bit_from_memory(bytes, len) != 0;
  MMGRAD_CHECK(file_c >= 1 && file_c <= 4, op, ": cannot decode '", name, "': it has ", file_c,
               " channels (expected 1 to 4)");
  MMGRAD_CHECK(w >= 1 && h >= 1 && w <= kMaxImageSide && h <= kMaxImageSide, op,
               ": cannot decode '", name, "': it declares ", w, "x", h, " pixels; at most ",
               kMaxImageSide, " pixels per side are supported (corrupt header?)");
  const int64_t pixels = static_cast<int64_t>(w) * h;
  MMGRAD_CHECK(pixels <= kMaxImagePixels, op, ": cannot decode '", name, "': it declares ", w, "x",
               h, " = ", pixels, " pixels; at most ", kMaxImagePixels,
               " are supported (corrupt header?)");

  // 2. Can the file hold that many pixels?
  if (pnm) {
    // Binary PGM/PPM: raw samples after the header, 1 or 2 bytes each. stb does not notice
    // when they are missing (it returns uninitialised memory).
    const uint64_t need = static_cast<uint64_t>(pixels) * file_c * (wide ? 2 : 1);
    const size_t header = pnm_header.length;
    MMGRAD_CHECK(header > 0 && need <= size - header, op, ": cannot decode '", name,
                 "': a truncated PGM/PPM: its header declares ", w, "x", h, "x", file_c,
                 (wide ? " 16-bit" : " 8-bit"), " samples (", need, " bytes) but only ",
                 size - std::min(header, size), " bytes follow its header");
  }
  MMGRAD_CHECK(static_cast<uint64_t>(pixels) <= static_cast<uint64_t>(size) * kMaxPixelsPerByte, op,
               ": cannot decode '", name, "': it declares ", w, "x", h, " pixels, more than a ",
               size, "-byte image file can hold (at most ", kMaxPixelsPerByte,
               " pixels per byte): corrupt header?");

  // 3. Decode. 16-bit files are decoded with their own channel count (see convert_channels16).
  int dw = 0, dh = 0, dc = 0;
  void* px = wide ? static_cast<void*>(stbi_load_16_from_memory(bytes, len, &dw, &dh, &dc, 0))
                  : static_cast<void*>(stbi_load_from_memory(bytes, len, &dw, &dh, &dc, channels));
  MMGRAD_CHECK(px != nullptr, op, ": cannot decode '", name, "': ", stbi_failure_reason(),
               " (truncated, corrupt or not an image file)");
  std::unique_ptr<void, void (*)(void*)> owner(px, stbi_image_free);
  MMGRAD_CHECK(dw == w && dh == h && dc == file_c, op, ": cannot decode '", name,
               "': the decoder found ", dw, "x", dh, "x", dc, " pixels where the header declares ",
               w, "x", h, "x", file_c, " (corrupt file?)");
  const int c = channels == 0 ? file_c : channels;
  const int64_t plane = pixels;
  Tensor out = Tensor::empty({c, h, w}, kFloat32);
  float* o = out.data_ptr<float>();
  // stb gives interleaved HWC; tensors are planar CHW.
  if (wide) {
    const auto* p = static_cast<const uint16_t*>(px);
    std::vector<uint16_t> conv;
    if (c != file_c) {
      conv = convert_channels16(p, plane, file_c, c);
      p = conv.data();
    }
    for (int ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < plane; ++i) o[ch * plane + i] = p[i * c + ch] * (1.0f / 65535.0f);
  } else {
    const auto* p = static_cast<const uint8_t*>(px);
    for (int ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < plane; ++i) o[ch * plane + i] = p[i * c + ch] * (1.0f / 255.0f);
  }
  return out;
}

Tensor load_image(const std::string& path, int channels) {
  const char* op = "load_image";
  MMGRAD_CHECK(channels >= 0 && channels <= 4, op, ": channels must be 0 (as in the file) or 1-4, ",
               "got ", channels);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  MMGRAD_CHECK(f != nullptr, op, ": cannot open '", path, "'");
  std::string bytes;
  char chunk[1 << 16];
  for (size_t n; (n = std::fread(chunk, 1, sizeof(chunk), f)) > 0;) {
    bytes.append(chunk, n);
    if (bytes.size() > static_cast<size_t>(INT32_MAX)) break;  // decode_image refuses it
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  MMGRAD_CHECK(!failed, op, ": error while reading '", path, "'");
  return decode_image(bytes.data(), bytes.size(), channels, path);
}

Tensor resize_bilinear(const Tensor& image, int64_t h, int64_t w) {
  const char* op = "resize_bilinear";
  check_plain(op, image);
  MMGRAD_CHECK(image.dim() == 3 || image.dim() == 4, op,
               ": expects [C, H, W] or [N, C, H, W], got ", describe(image));
  MMGRAD_CHECK(image.is_floating_point(), op, ": expects float32 or float64, got ",
               describe(image));
  MMGRAD_CHECK(h > 0 && w > 0, op, ": output size must be positive, got ", h, "x", w);
  int64_t hi = image.size(-2 + image.dim()), wi = image.size(-1 + image.dim());
  MMGRAD_CHECK(hi > 0 && wi > 0, op, ": input has an empty spatial size: ", describe(image));
  Shape out_shape = image.shape();
  out_shape[image.dim() - 2] = h;
  out_shape[image.dim() - 1] = w;
  Tensor src = image.device() == kCPU ? image.contiguous() : image.cpu().contiguous();
  Tensor out = Tensor::empty(out_shape, image.dtype());
  int64_t planes = image.numel() / (hi * wi);
  if (image.dtype() == kFloat32)
    resize_planes(src.data_ptr<float>(), out.data_ptr<float>(), planes, hi, wi, h, w);
  else
    resize_planes(src.data_ptr<double>(), out.data_ptr<double>(), planes, hi, wi, h, w);
  return image.device() == kCPU ? out : out.to(image.device());
}

void save_image(const Tensor& image, const std::string& path) {
  write_bitmap(to_bitmap(image, "save_image"), path, "save_image");
}

// ---- labelled grids ----------------------------------------------------------------------------

int label_text_width(const std::string& line) {
  std::string s = printable(line);
  for (char& ch : s)
    if (ch == '\n') ch = ' ';
  std::vector<char> buf(s.begin(), s.end());
  buf.push_back('\0');
  return stb_easy_font_width(buf.data());
}

std::vector<std::string> wrap_label(const std::string& label, int max_width, size_t max_lines) {
  MMGRAD_CHECK(max_lines >= 1, "wrap_label: max_lines must be at least 1, got ", max_lines);
  const std::string text = printable(label);
  std::vector<std::string> out;
  auto fits = [&](const std::string& s) { return label_text_width(s) <= max_width; };
  // Greedy line filling, paragraph by paragraph ('\n' always breaks): a word goes on the current
  // line if the line still fits with it, else it starts the next line. That is the layout a word
  // processor uses; with one font size and no hyphenation, it is also the fewest lines.
  std::istringstream paragraphs(text);
  for (std::string para; std::getline(paragraphs, para);) {
    std::istringstream words(para);
    std::string line;
    for (std::string word; words >> word;) {
      std::string joined = line.empty() ? word : line + " " + word;
      if (fits(joined)) {
        line = std::move(joined);
        continue;
      }
      if (!line.empty()) out.push_back(line);
      // A word too wide for a whole line is broken between characters: the longest prefix that
      // fits (at least one character) per line.
      while (word.size() > 1 && !fits(word)) {
        size_t k = 1;
        while (k < word.size() && fits(word.substr(0, k + 1))) ++k;
        out.push_back(word.substr(0, k));
        word.erase(0, k);
      }
      line = word;
    }
    out.push_back(line);  // an empty paragraph stays an empty line
  }
  if (text.empty() || text.back() == '\n') out.emplace_back();  // getline drops a last empty one
  if (out.size() > max_lines) {
    out.resize(max_lines);
    std::string& last = out.back();
    while (!last.empty() && !fits(last + "..")) last.pop_back();
    last += "..";
  }
  return out;
}

std::array<float, 3> viridis(double t) {
  // Ten evenly spaced samples of matplotlib's viridis (the same as plot/'s Colormap::Viridis),
  // interpolated linearly in between.
  static constexpr uint8_t kAnchors[10][3] = {
      {0x44, 0x01, 0x54}, {0x48, 0x28, 0x78}, {0x3e, 0x49, 0x89}, {0x31, 0x68, 0x8e},
      {0x26, 0x82, 0x8e}, {0x1f, 0x9e, 0x89}, {0x35, 0xb7, 0x79}, {0x6e, 0xce, 0x58},
      {0xb5, 0xde, 0x2b}, {0xfd, 0xe7, 0x25}};
  if (std::isnan(t)) t = 0;
  t = std::clamp(t, 0.0, 1.0) * 9.0;
  const int i = std::min(static_cast<int>(t), 8);
  const double f = t - i;
  std::array<float, 3> c{};
  for (int ch = 0; ch < 3; ++ch)
    c[ch] =
        static_cast<float>((kAnchors[i][ch] + f * (kAnchors[i + 1][ch] - kAnchors[i][ch])) / 255.0);
  return c;
}

Tensor overlay_heatmap(const Tensor& image, const Tensor& heat, double lo, double hi,
                       double alpha) {
  const char* op = "overlay_heatmap";
  check_plain(op, image);
  check_plain(op, heat);
  MMGRAD_CHECK(
      image.is_floating_point() &&
          (image.dim() == 2 || (image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3))),
      op, ": expects a float image [H, W] or [C, H, W] with C = 1 or 3, got ", describe(image));
  MMGRAD_CHECK(
      heat.is_floating_point() && (heat.dim() == 2 || (heat.dim() == 3 && heat.size(0) == 1)), op,
      ": expects a float heat map [h, w] or [1, h, w], got ", describe(heat));
  MMGRAD_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo < hi, op,
               ": the colour scale needs finite lo < hi, got lo = ", lo, ", hi = ", hi);
  MMGRAD_CHECK(alpha >= 0 && alpha <= 1, op, ": alpha must be in [0, 1], got ", alpha);
  const int64_t H = image.size(-2 + image.dim()), W = image.size(-1 + image.dim());
  const int64_t h = heat.size(-2 + heat.dim()), w = heat.size(-1 + heat.dim());
  MMGRAD_CHECK(H > 0 && W > 0 && h > 0 && w > 0, op, ": empty image or heat map: image ",
               describe(image), ", heat ", describe(heat));
  // The heat map at the image's resolution: bilinear upsampling (a smooth map; each coarse
  // value sits at the centre of the region it covers, as F.interpolate(align_corners=False)).
  Tensor heat3 = heat.reshape({1, h, w});
  if (h != H || w != W) heat3 = resize_bilinear(heat3, H, W);
  const std::vector<float> hv = heat3.to_vector<float>();
  const std::vector<float> iv = image.to_vector<float>();
  const int64_t plane = H * W;
  const bool rgb = image.dim() == 3 && image.size(0) == 3;
  Tensor out = Tensor::empty({3, H, W}, kFloat32);
  float* o = out.data_ptr<float>();
  const auto a = static_cast<float>(alpha);
  for (int64_t i = 0; i < plane; ++i) {
    const float grey =
        rgb ? 0.299f * iv[i] + 0.587f * iv[plane + i] + 0.114f * iv[2 * plane + i] : iv[i];
    const std::array<float, 3> c = viridis((hv[i] - lo) / (hi - lo));
    for (int ch = 0; ch < 3; ++ch) o[ch * plane + i] = (1.0f - a) * grey + a * c[ch];
  }
  return out;
}

namespace {

std::string csv_quoted(const std::string& s) {
  std::string q = "\"";
  for (char ch : s) {
    if (ch == '"') q += '"';
    q += ch;
  }
  return q + "\"";
}

std::string short_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3g", v);
  return buf;
}

}  // namespace

void save_image_grid(const std::vector<Tensor>& images, int64_t ncols, const std::string& path,
                     const GridOptions& opt) {
  const char* op = "save_image_grid";
  const std::vector<std::string>& labels = opt.labels;
  const int scale = opt.scale;
  MMGRAD_CHECK(!images.empty(), op, ": no images given");
  MMGRAD_CHECK(ncols > 0, op, ": ncols must be positive, got ", ncols);
  MMGRAD_CHECK(scale >= 1 && scale <= 32, op, ": scale must be in [1, 32], got ", scale);
  MMGRAD_CHECK(labels.empty() || labels.size() == images.size(), op, ": got ", labels.size(),
               " labels for ", images.size(), " images (give one per image, or none)");
  MMGRAD_CHECK(opt.marked.empty() || opt.marked.size() == images.size(), op, ": got ",
               opt.marked.size(), " marks for ", images.size(),
               " images (give one per image, or none)");
  if (opt.colorbar)
    MMGRAD_CHECK(std::isfinite(opt.colorbar->lo) && std::isfinite(opt.colorbar->hi) &&
                     opt.colorbar->lo < opt.colorbar->hi,
                 op, ": the colour bar needs finite lo < hi, got lo = ", opt.colorbar->lo,
                 ", hi = ", opt.colorbar->hi);
  constexpr int kPad = 4;
  constexpr int kBarWidth = 100;  // colour bar, font pixels
  constexpr int kHeaderMinWidth = 200;
  const int fs = scale >= 4 ? 2 : 1;  // font pixel size
  const int line_h = 12 * fs;         // stb_easy_font's line advance
  const bool any_marked = std::find(opt.marked.begin(), opt.marked.end(), true) != opt.marked.end();
  const int m = any_marked ? 3 : 0;  // room for the red frame around each tile
  auto is_marked = [&](size_t i) { return !opt.marked.empty() && opt.marked[i]; };

  std::vector<Rgb> tiles;
  tiles.reserve(images.size());
  int64_t tile_h = 0, tile_w = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    tiles.push_back(to_rgb(images[i], i, op));
    tile_h = std::max(tile_h, tiles.back().h * scale);
    tile_w = std::max(tile_w, tiles.back().w * scale);
  }
  // Cell width: the tile, or the widest label line (up to the wrap width) plus a margin of
  // kTextMargin font pixels on each side, so that the text of neighbouring cells never reads as
  // one line; then every label is wrapped to the text column, so no line is wider than its cell.
  // (The column is never narrower than the widest character: a character always fits.)
  constexpr int kTextMargin = 3;
  int64_t natural_w = 0;
  for (const std::string& l : labels)
    for (const std::string& line : wrap_label(l, INT32_MAX, SIZE_MAX))
      natural_w = std::max<int64_t>(natural_w, label_text_width(line) * int64_t{fs});
  const int64_t content_w =
      labels.empty() ? tile_w + 2 * m
                     : std::max(tile_w + 2 * m, std::min<int64_t>(natural_w, kLabelWrapWidth * fs) +
                                                    2 * kTextMargin * fs);
  const int text_w = static_cast<int>(content_w / fs) - 2 * kTextMargin;  // font pixels
  std::vector<std::vector<std::string>> lines(images.size());
  for (size_t i = 0; i < labels.size(); ++i) lines[i] = wrap_label(labels[i], text_w);
  const int64_t cell_w = content_w + kPad;
  const int64_t n = static_cast<int64_t>(images.size());
  const int64_t cols = std::min(ncols, n);
  const int64_t rows = (n + cols - 1) / cols;
  // Each row is as tall as its tiles and the label with the most lines in that row, so one long
  // label makes its own row taller, not every row. row_y[r]: the top of row r below the header.
  std::vector<int64_t> row_y(static_cast<size_t>(rows) + 1, 0);
  for (int64_t r = 0; r < rows; ++r) {
    size_t most = 0;
    for (int64_t i = r * cols; i < std::min(n, (r + 1) * cols); ++i)
      most = std::max(most, lines[static_cast<size_t>(i)].size());
    const int64_t label_h = labels.empty() ? 0 : static_cast<int64_t>(most) * line_h + 2;
    row_y[r + 1] = row_y[r] + tile_h + 2 * m + label_h + kPad;
  }

  // The header: title, mark legend, colour bar; wrapped to the grid's width (at least
  // kHeaderMinWidth font pixels, so a narrow grid still gets a readable title).
  const bool has_header = !opt.title.empty() || !opt.mark_legend.empty() || opt.colorbar;
  const int64_t header_w =
      has_header ? std::max<int64_t>(cols * cell_w - kPad, kHeaderMinWidth * fs) : 0;
  const int hw = static_cast<int>(header_w / fs);  // in font pixels
  const int swatch = 14;                           // legend swatch + gap, font pixels
  std::vector<std::string> title_lines, legend_lines, bar_lines;
  if (!opt.title.empty()) title_lines = wrap_label(opt.title, hw);
  if (!opt.mark_legend.empty()) legend_lines = wrap_label(opt.mark_legend, hw - swatch);
  std::string bar_lo, bar_hi;
  if (opt.colorbar) {
    if (!opt.colorbar->label.empty()) bar_lines = wrap_label(opt.colorbar->label, hw);
    bar_lo = short_number(opt.colorbar->lo);
    bar_hi = short_number(opt.colorbar->hi);
  }
  const int64_t header_lines =
      static_cast<int64_t>(title_lines.size() + legend_lines.size() + bar_lines.size()) +
      (opt.colorbar ? 1 : 0);
  const int64_t header_h = has_header ? header_lines * line_h + 2 * fs : 0;

  const int64_t W = kPad + std::max(cols * cell_w, header_w + kPad);
  const int64_t H = kPad + header_h + row_y[rows];
  MMGRAD_CHECK(W <= 32768 && H <= 32768, op, ": the grid would be ", W, "x", H,
               " pixels; use fewer images, more columns, shorter labels or a smaller scale");

  Bitmap b{static_cast<int>(W), static_cast<int>(H), 3, {}};
  b.px.assign(static_cast<size_t>(W * H * 3), 255);
  int y = kPad;
  for (const std::string& l : title_lines) {
    draw_text(b, l, kPad, y, fs);
    y += line_h;
  }
  for (size_t k = 0; k < legend_lines.size(); ++k) {
    if (k == 0) draw_frame(b, kPad, y, kPad + 10 * fs, y + 10 * fs, 2 * fs, kMarkRed);
    draw_text(b, legend_lines[k], kPad + swatch * fs, y, fs, kMarkRed);
    y += line_h;
  }
  for (const std::string& l : bar_lines) {
    draw_text(b, l, kPad, y, fs);
    y += line_h;
  }
  if (opt.colorbar) {
    // lo [gradient] hi, the gradient as wide as fits (kBarWidth font pixels at most).
    const int lo_w = label_text_width(bar_lo), hi_w = label_text_width(bar_hi);
    const int bar_w = std::max(10, std::min(kBarWidth, hw - lo_w - hi_w - 8));
    draw_text(b, bar_lo, kPad, y, fs);
    const int bx = kPad + (lo_w + 4) * fs;
    for (int x = 0; x < bar_w * fs; ++x) {
      const std::array<float, 3> c = viridis(bar_w * fs > 1 ? x / (bar_w * fs - 1.0) : 0.0);
      fill_rect(b, bx + x, y, bx + x + 1, y + 8 * fs,
                Colour{to_byte(c[0]), to_byte(c[1]), to_byte(c[2])});
    }
    draw_text(b, bar_hi, bx + (bar_w + 4) * fs, y, fs);
    y += line_h;
  }

  const int64_t grid_top = kPad + header_h;
  std::ostringstream csv;
  csv << "index,row,col,label,marked\n";
  for (int64_t i = 0; i < n; ++i) {
    int64_t r = i / cols, c = i % cols;
    int64_t x0 = kPad + c * cell_w, y0 = grid_top + row_y[r];
    const Rgb& t = tiles[i];
    int64_t ox = x0 + (content_w - t.w * scale) / 2;
    int64_t oy = y0 + m + (tile_h - t.h * scale) / 2;
    for (int64_t yy = 0; yy < t.h * scale; ++yy)
      for (int64_t xx = 0; xx < t.w * scale; ++xx) {
        const float* s = &t.v[((yy / scale) * t.w + xx / scale) * 3];
        uint8_t* p = b.at(static_cast<int>(oy + yy), static_cast<int>(ox + xx));
        for (int ch = 0; ch < 3; ++ch) p[ch] = to_byte(s[ch]);
      }
    const bool mk = is_marked(static_cast<size_t>(i));
    if (mk)
      draw_frame(b, static_cast<int>(ox - m), static_cast<int>(oy - m),
                 static_cast<int>(ox + t.w * scale + m), static_cast<int>(oy + t.h * scale + m), m,
                 kMarkRed);
    for (size_t l = 0; l < lines[i].size(); ++l) {
      int lw = label_text_width(lines[i][l]) * fs;
      int tx = static_cast<int>(x0 + (content_w - lw) / 2);
      int ty = static_cast<int>(y0 + tile_h + 2 * m + 2 + static_cast<int64_t>(l) * line_h);
      draw_text(b, lines[i][l], tx, ty, fs, mk ? kMarkRed : kInk);
    }
    std::string flat = labels.empty() ? std::string() : labels[i];
    for (size_t p = 0; (p = flat.find('\n', p)) != std::string::npos;) flat.replace(p, 1, " / ");
    csv << i << ',' << r << ',' << c << ',' << csv_quoted(flat) << ',' << (mk ? 1 : 0) << '\n';
  }
  write_bitmap(b, path, op);
  if (!labels.empty() || !opt.marked.empty())
    write_file_atomic(std::filesystem::path(path).replace_extension(".csv").string(), csv.str(),
                      op);
}

void save_image_grid(const std::vector<Tensor>& images, int64_t ncols, const std::string& path,
                     const std::vector<std::string>& labels, int scale) {
  GridOptions opt;
  opt.labels = labels;
  opt.scale = scale;
  save_image_grid(images, ncols, path, opt);
}

void save_image_grid(const Tensor& batch, int64_t ncols, const std::string& path,
                     const std::vector<std::string>& labels, int scale) {
  MMGRAD_CHECK(batch.defined() && (batch.dim() == 3 || batch.dim() == 4),
               "save_image_grid: ", "expects a batch [N, C, H, W] or [N, H, W], got ",
               batch.defined() ? describe(batch) : std::string("an undefined tensor"));
  std::vector<Tensor> images;
  images.reserve(static_cast<size_t>(batch.size(0)));
  for (int64_t i = 0; i < batch.size(0); ++i) images.push_back(batch.select(0, i));
  save_image_grid(images, ncols, path, labels, scale);
}

}  // namespace mmgrad::data
