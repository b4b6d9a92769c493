// Fuzz target: IDX files, gzip-compressed or raw (data/fashion_mnist.cpp: decode_idx_images and
// decode_idx_labels, what read_idx_images / read_idx_labels / load_fashion_mnist run on a file's
// bytes; data/gzip_source.cpp underneath).
#include <vector>

#include "fuzz_util.h"
#include "mmgrad/data/fashion_mnist.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mmgrad;
  const std::vector<uint8_t> bytes(data, data + size);
  fuzz::expect_ok_or_error([&] {
    Tensor images = data::decode_idx_images(bytes);
    if (images.dim() != 4 || images.size(1) != 1) std::abort();
  });
  // A limit stops early: the rest of the file is not read (nor checked).
  fuzz::expect_ok_or_error([&] { data::decode_idx_images(bytes, "<memory>", 2); });
  fuzz::expect_ok_or_error([&] {
    Tensor labels = data::decode_idx_labels(bytes, 10);
    for (int64_t v : labels.to_vector<int64_t>())
      if (v < 0 || v >= 10) std::abort();
  });
  fuzz::expect_ok_or_error([&] { data::decode_idx_labels(bytes, 256, "<memory>", 1); });
  return 0;
}
