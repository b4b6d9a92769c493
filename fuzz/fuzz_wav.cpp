// Fuzz target: WAV files (data/audio.cpp: decode_wav, what read_wav runs on a file's bytes):
// the RIFF chunk walk, the "fmt " fields and the "data" size checks.
#include <cmath>

#include "fuzz_util.h"
#include "mmgrad/data/audio.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mmgrad;
  fuzz::expect_ok_or_error([&] {
    audio::Wav w = audio::decode_wav(data, size, "fuzz");
    // An accepted file: whole frames, 2 bytes per sample inside the file, values in [-1, 1).
    if (w.channels < 1 || w.samples.size() % static_cast<size_t>(w.channels) != 0 ||
        w.samples.size() * 2 > size)
      std::abort();
    for (float v : w.samples)
      if (!(v >= -1.0f && v < 1.0f)) std::abort();
  });
  return 0;
}
