// Fashion-MNIST: 70,000 grey 28x28 images of clothing in 10 classes (Xiao, Rasul & Vollgraf
// 2017), read from the IDX gzip files that Debian's `dataset-fashion-mnist` installs in
// /usr/share/datasets/fashion-mnist/.
//
// The IDX format (LeCun's MNIST format) is a big-endian header followed by raw bytes:
//   images: magic 0x00000803 (2051: unsigned bytes, 3 dims), count, rows, cols, pixels row-major
//   labels: magic 0x00000801 (2049: unsigned bytes, 1 dim), count, one byte per label
// Every header field, the payload size and the gzip stream itself are checked, so a truncated or
// corrupt download is reported by name instead of producing garbage images.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad::data {

enum class Split { Train, Test };

inline const char* split_name(Split s) { return s == Split::Train ? "train" : "test"; }

struct Dataset {
  Tensor images;  // float32 [N, 1, 28, 28], pixel / 255 in [0, 1]
  Tensor labels;  // int64 [N], class ids in [0, 10)
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

// The folder the Fashion-MNIST files are read from: `dir` when given, else $MMGRAD_DATA, else
// /usr/share/datasets/fashion-mnist. When the chosen folder has a `fashion-mnist/` subfolder
// holding the files, that subfolder is used (so MMGRAD_DATA may name a general data root).
std::string fashion_mnist_dir(const std::string& dir = "");
// Whether the four files exist (as .gz or uncompressed) in fashion_mnist_dir(dir).
bool fashion_mnist_available(const std::string& dir = "");

// Loads one split. limit >= 0 keeps only the first `limit` examples (and decompresses only what
// they need, which makes small --quick runs fast); -1 loads all of them.
Dataset load_fashion_mnist(Split split, const std::string& dir = "", int64_t limit = -1);

// "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
// "Ankle boot" (index = label).
const std::vector<std::string>& fashion_mnist_classes();

// ---- the pieces, for other IDX files -----------------------------------------------------------

// The decompressed bytes of a gzip file (several concatenated gzip members are joined). A file
// that does not start with the gzip magic bytes is returned as it is. max_bytes >= 0 stops once
// that many bytes are out (the rest of the file is then not checked).
std::vector<uint8_t> read_gzip_file(const std::string& path, int64_t max_bytes = -1);

// An IDX3 unsigned-byte image file as float32 [N, 1, rows, cols] in [0, 1].
Tensor read_idx_images(const std::string& path, int64_t limit = -1);
// An IDX1 unsigned-byte label file as int64 [N]; every label must be < num_classes.
Tensor read_idx_labels(const std::string& path, int64_t num_classes, int64_t limit = -1);

// The same readers over a file's bytes already in memory (gzip or raw); `name` stands for the
// path in error messages. The fuzz targets (fuzz/) call these.
Tensor decode_idx_images(std::vector<uint8_t> bytes, const std::string& name = "<memory>",
                         int64_t limit = -1);
Tensor decode_idx_labels(std::vector<uint8_t> bytes, int64_t num_classes,
                         const std::string& name = "<memory>", int64_t limit = -1);

}  // namespace mmgrad::data
