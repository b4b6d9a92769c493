// Fuzz target: image files (data/image.cpp: decode_image, what load_image runs on a file's
// bytes; stb_image underneath: PNG, JPEG, BMP, TGA, GIF, PSD, HDR, PIC, PGM/PPM).
#include <cmath>

#include "fuzz_util.h"
#include "mmgrad/data/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mmgrad;
  fuzz::expect_ok_or_error([&] {
    // The file's own channel count; a decodable file is then also converted to 1-4 channels
    // (the conversion paths are where stb 2.27 read past its buffer on 16-bit PGM files).
    Tensor img = data::decode_image(data, size, 0);
    for (int c = 1; c <= 4; ++c) {
      Tensor conv = data::decode_image(data, size, c);
      if (conv.size(0) != c || conv.size(1) != img.size(1) || conv.size(2) != img.size(2))
        std::abort();
    }
    // Every value is a pixel / 255 (or / 65535): in [0, 1].
    for (float v : img.to_vector<float>())
      if (!(v >= 0.0f && v <= 1.0f)) std::abort();
  });
  return 0;
}
