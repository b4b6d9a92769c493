// Writes the seed corpora (fuzz/corpus/<target>/) and the known crash inputs
// (fuzz/regressions/<target>/): small valid files of every format each reader accepts, made with
// mmgrad's own writers (and stb_image_write, zlib) or by hand. The files are committed; run this
// again only to change them:
//   cmake --build build --target fuzz_make_seeds && ./build/tests/fuzz_make_seeds fuzz
#include <stb/stb_image_write.h>
#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "mmgrad/data/audio.h"
#include "mmgrad/data/tokenizer.h"
#include "mmgrad/nn/checkpoint.h"

namespace fs = std::filesystem;
using Bytes = std::string;

namespace {

fs::path root;

void put(const std::string& dir, const std::string& name, const Bytes& b) {
  fs::path d = root / dir;
  fs::create_directories(d);
  std::ofstream(d / name, std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
}

void append(void* ctx, void* data, int size) {
  static_cast<Bytes*>(ctx)->append(static_cast<const char*>(data), static_cast<size_t>(size));
}

void be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<char>((v >> s) & 0xff));
}
template <class T>
void le(Bytes& b, T v) {
  b.append(reinterpret_cast<const char*>(&v), sizeof(v));
}

Bytes gzip(const Bytes& raw) {
  z_stream s{};
  deflateInit2(&s, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  Bytes out(deflateBound(&s, raw.size()) + 64, '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  s.avail_in = static_cast<uInt>(raw.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  deflate(&s, Z_FINISH);
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

// A PNG chunk: length, type, data, CRC of type + data.
void png_chunk(Bytes& b, const char* type, const Bytes& data, uint32_t declared_len = 0) {
  be32(b, declared_len ? declared_len : static_cast<uint32_t>(data.size()));
  Bytes td = std::string(type, 4) + data;
  b += td;
  be32(b, static_cast<uint32_t>(
              crc32(0, reinterpret_cast<const Bytef*>(td.data()), static_cast<uInt>(td.size()))));
}

Bytes png_ihdr(uint32_t w, uint32_t h, int depth, int color) {
  Bytes d;
  be32(d, w);
  be32(d, h);
  d += static_cast<char>(depth);
  d += static_cast<char>(color);
  d += Bytes(3, '\0');  // compression, filter, interlace
  return d;
}

const char kPngSig[] = "\x89PNG\r\n\x1a\n";

// A 16-bit PNG stb_image_write cannot make: rows of (filter byte 0, big-endian samples).
Bytes png16(int w, int h, int channels) {
  const int color = channels == 1 ? 0 : channels == 2 ? 4 : channels == 3 ? 2 : 6;
  Bytes raw;
  for (int y = 0; y < h; ++y) {
    raw += '\0';
    for (int i = 0; i < w * channels; ++i) {
      uint16_t v = static_cast<uint16_t>((y * 7919 + i * 4099) & 0xffff);
      raw += static_cast<char>(v >> 8);
      raw += static_cast<char>(v & 0xff);
    }
  }
  Bytes z(compressBound(raw.size()), '\0');
  uLongf zn = z.size();
  compress(reinterpret_cast<Bytef*>(z.data()), &zn, reinterpret_cast<const Bytef*>(raw.data()),
           raw.size());
  z.resize(zn);
  Bytes b(kPngSig, 8);
  png_chunk(b, "IHDR", png_ihdr(w, h, 16, color));
  png_chunk(b, "IDAT", z);
  png_chunk(b, "IEND", "");
  return b;
}

void image_seeds() {
  const int w = 5, h = 3;
  for (int c = 1; c <= 4; ++c) {
    std::vector<uint8_t> px(w * h * c);
    for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 37 + 11);
    Bytes png, bmp, tga, jpg;
    stbi_write_png_to_func(append, &png, w, h, c, px.data(), w * c);
    stbi_write_bmp_to_func(append, &bmp, w, h, c, px.data());
    stbi_write_tga_to_func(append, &tga, w, h, c, px.data());
    stbi_write_jpg_to_func(append, &jpg, w, h, c, px.data(), 90);
    const std::string s = std::to_string(c);
    put("corpus/image", "c" + s + ".png", png);
    put("corpus/image", "c" + s + ".bmp", bmp);
    put("corpus/image", "c" + s + "_rle.tga", tga);
    put("corpus/image", "c" + s + ".jpg", jpg);
    put("corpus/image", "c" + s + "_16bit.png", png16(w, h, c));
  }
  {
    std::vector<uint8_t> px(w * h * 3, 200);
    Bytes tga;
    stbi_write_tga_with_rle = 0;
    stbi_write_tga_to_func(append, &tga, w, h, 3, px.data());
    stbi_write_tga_with_rle = 1;
    put("corpus/image", "c3_raw.tga", tga);
    std::vector<float> f(w * h * 3, 0.5f);
    Bytes hdr;
    stbi_write_hdr_to_func(append, &hdr, w, h, 3, f.data());
    put("corpus/image", "c3.hdr", hdr);
  }
  // A paletted PNG (colour type 3) with a tRNS chunk: 2x2, 1-bit indices into 2 colours.
  for (bool trns : {false, true}) {
    Bytes b(kPngSig, 8);
    png_chunk(b, "IHDR", png_ihdr(2, 2, 1, 3));
    png_chunk(b, "PLTE", Bytes("\xff\x00\x00\x00\x80\xff", 6));
    if (trns) png_chunk(b, "tRNS", Bytes("\x40", 1));
    const Bytes raw("\x00\x40\x00\x80", 4);  // rows: filter 0, bits 01 / 10
    Bytes z(compressBound(raw.size()), '\0');
    uLongf zn = z.size();
    compress(reinterpret_cast<Bytef*>(z.data()), &zn, reinterpret_cast<const Bytef*>(raw.data()),
             raw.size());
    z.resize(zn);
    png_chunk(b, "IDAT", z);
    png_chunk(b, "IEND", "");
    put("corpus/image", trns ? "palette_trns.png" : "palette.png", b);
  }
  // A 1x1 GIF89a (a classic minimal file: 2-colour table, one LZW-coded pixel).
  put("corpus/image", "tiny.gif",
      Bytes("GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00"
            "\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02"
            "D\x01\x00;",
            43));
  // PGM (P5) and PPM (P6), 8- and 16-bit (maxval > 255: two big-endian bytes per sample).
  auto pnm = [&](const char* magic, int c, int maxval) {
    Bytes b = std::string(magic) + "\n# a comment\n" + std::to_string(w) + " " + std::to_string(h) +
              "\n" + std::to_string(maxval) + "\n";
    for (int i = 0; i < w * h * c; ++i) {
      if (maxval > 255) b += static_cast<char>((i * 13) & 0xff);
      b += static_cast<char>((i * 29) & 0xff);
    }
    return b;
  };
  put("corpus/image", "grey8.pgm", pnm("P5", 1, 255));
  put("corpus/image", "grey16.pgm", pnm("P5", 1, 65535));
  put("corpus/image", "rgb8.ppm", pnm("P6", 3, 255));
  put("corpus/image", "rgb16.ppm", pnm("P6", 3, 1000));

  // ---- the crashes of the outside fuzz run (issue 16) ----
  // An 11-byte 16-bit PGM with no pixel data: stb's 16-bit loader asked for another channel
  // count converted it with its 8-bit routine (heap over-read).
  put("regressions/image", "pgm16_11_bytes.pgm", "P5\n1 1\n999\n");
  put("regressions/image", "pgm16_1x1.pgm", Bytes("P5\n1 1\n65535\n\x12\x34", 15));
  put("regressions/image", "ppm16_2x1.ppm", Bytes("P6 2 1 300 ", 11) + Bytes(12, '\x7f'));
  // A valid 1x1 PNG header, then an IDAT declaring 2^31 - 1 bytes that are not there.
  {
    Bytes b(kPngSig, 8);
    png_chunk(b, "IHDR", png_ihdr(1, 1, 8, 0));
    png_chunk(b, "IDAT", "", 0x7fffffff);
    put("regressions/image", "png_huge_idat_length.png", b);
  }
  // A 16384 x 16384 PNG header and a tiny IDAT.
  {
    Bytes b(kPngSig, 8);
    png_chunk(b, "IHDR", png_ihdr(16384, 16384, 8, 6));
    png_chunk(b, "IDAT", Bytes("\x78\x9c\x03\x00\x00\x00\x00\x01", 8));
    png_chunk(b, "IEND", "");
    put("regressions/image", "png_huge_dims.png", b);
  }
  // TGA headers (18 bytes) of huge images and no pixels: uncompressed and RLE truecolour.
  for (int type : {2, 10}) {
    Bytes b(18, '\0');
    b[2] = static_cast<char>(type);
    b[12] = b[13] = '\xff';          // width 65535
    b[14] = '\x00', b[15] = '\x40';  // height 16384
    b[16] = 32;
    put("regressions/image", "tga_huge_type" + std::to_string(type) + ".tga", b);
  }
  put("regressions/image", "ppm_huge_no_data.ppm", "P6\n30000 30000\n255\n");
  put("regressions/image", "pgm_short_data.pgm",
      "P5\n# 100 x 100, 10 bytes\n100 100 255\n0123456789");
  // A number past INT_MAX in a PGM header (stb 2.27 overflows an int parsing it; fuzz_image).
  put("regressions/image", "pnm_number_overflow.pgm", "P5\n99999999999 1\n255\n\x01");
  put("regressions/image", "pgm_max_dims_no_data.pgm", "P5\n16777216 16777216\n65535\n");
  // A BMP header declaring 30000 x 30000 at 32 bits per pixel, no pixel data.
  {
    Bytes b = "BM";
    le<uint32_t>(b, 54);
    le<uint32_t>(b, 0);
    le<uint32_t>(b, 54);
    le<uint32_t>(b, 40);
    le<int32_t>(b, 30000);
    le<int32_t>(b, 30000);
    le<uint16_t>(b, 1);
    le<uint16_t>(b, 32);
    le<uint32_t>(b, 0);
    b += Bytes(20, '\0');
    put("regressions/image", "bmp_huge_no_data.bmp", b);
  }
}

void idx_seeds() {
  Bytes images;
  be32(images, 2051);
  for (uint32_t v : {2u, 3u, 4u}) be32(images, v);
  for (int i = 0; i < 2 * 3 * 4; ++i) images += static_cast<char>(i * 10);
  Bytes labels;
  be32(labels, 2049);
  be32(labels, 5);
  for (int i = 0; i < 5; ++i) labels += static_cast<char>(i * 2);
  put("corpus/idx", "images.idx", images);
  put("corpus/idx", "images.idx.gz", gzip(images));
  put("corpus/idx", "labels.idx", labels);
  put("corpus/idx", "labels.idx.gz", gzip(labels));
  // Two gzip members (`cat a.gz b.gz`) make one stream.
  put("corpus/idx", "labels_two_members.gz", gzip(labels.substr(0, 6)) + gzip(labels.substr(6)));
  // Headers that declare far more than the file holds (must be refused before allocating).
  Bytes huge;
  be32(huge, 2051);
  for (uint32_t v : {0xffffffffu, 65536u, 65536u}) be32(huge, v);
  put("regressions/idx", "images_huge_count.idx", huge);
  put("regressions/idx", "images_huge_count.idx.gz", gzip(huge));
}

void checkpoint_seeds() {
  using namespace mmgrad;
  nn::StateDict state;
  state.emplace_back("fc.weight",
                     Tensor::from_vector({1.0f, -2.0f, 3.5f, 0.0f, 5.0f, 6.0f}, {2, 3}));
  state.emplace_back("scale", Tensor::scalar(2.5, kFloat64));
  state.emplace_back("step", Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 4}, {4}));
  state.emplace_back("mask",
                     Tensor::from_vector(std::vector<bool>{true, false, true, true}, {2, 2}));
  state.emplace_back("empty", Tensor::zeros({0, 3}));
  const fs::path p = root / "corpus/checkpoint/small.ckpt";
  fs::create_directories(p.parent_path());
  save(state, p.string());
  nn::StateDict one;
  one.emplace_back("w", Tensor::ones({3}));
  save(one, (root / "corpus/checkpoint/one.ckpt").string());

  // The crash of the outside fuzz run: shape [7.2e17, 0, 589824, 0] has numel 0 (so the byte
  // count, 0, passed every check) but its strides overflow int64 (UB in contiguous_strides).
  Bytes b = "MMGRADCK";
  le<uint32_t>(b, 1);
  le<uint64_t>(b, 1);
  le<uint32_t>(b, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(b.data()), 20)));
  Bytes rec;
  le<uint32_t>(rec, 1);
  rec += "w";
  rec += '\0';  // float32
  rec += '\4';  // ndim
  for (int64_t d : {int64_t{720000000000000000}, int64_t{0}, int64_t{589824}, int64_t{0}})
    le<int64_t>(rec, d);
  le<uint64_t>(rec, 0);
  le<uint32_t>(rec, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(rec.data()),
                                                static_cast<uInt>(rec.size()))));
  put("regressions/checkpoint", "strides_overflow_zero_numel.ckpt", b + rec + "CKPT_END");
}

void tokenizer_seeds() {
  using namespace mmgrad;
  data::Tokenizer tok = data::Tokenizer::build(
      {"A red car, parked.", "Two dogs (brown) play in the snow!", "a red bus; 3 people"});
  const fs::path p = root / "corpus/tokenizer/vocab.txt";
  fs::create_directories(p.parent_path());
  tok.save(p.string());
  put("corpus/tokenizer", "specials_only_crlf.txt",
      "mmgrad-vocab 1 4\r\n<pad>\r\n<bos>\r\n<eos>\r\n<unk>\r\n");
  put("corpus/tokenizer", "caption.txt", "A small cat sits on a mat, looking at the camera.\n");
}

// WAV: a mono 16-bit file from mmgrad's writer, a stereo one with a LIST chunk of odd size
// before "data", and one cut in the middle of its samples (rejected: the seed of that path).
void wav_seeds() {
  std::vector<float> tone(400);
  for (size_t i = 0; i < tone.size(); ++i)
    tone[i] = static_cast<float>(0.5 * std::sin(0.3 * static_cast<double>(i)));
  const Bytes mono = mmgrad::audio::encode_wav(tone, 8000);
  put("corpus/wav", "mono_8k.wav", mono);
  Bytes stereo = mono.substr(0, 36);
  stereo[22] = 2;  // channels
  stereo += std::string("LIST\x03\x00\x00\x00", 8) + "abc" + '\0' + mono.substr(36);
  put("corpus/wav", "stereo_list.wav", stereo);
  put("corpus/wav", "truncated.wav", mono.substr(0, 300));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <fuzz folder>\n", argv[0]);
    return 2;
  }
  root = argv[1];
  image_seeds();
  idx_seeds();
  checkpoint_seeds();
  tokenizer_seeds();
  wav_seeds();
  std::printf("seeds written under %s\n", root.string().c_str());
  return 0;
}
