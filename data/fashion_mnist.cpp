#include "mmgrad/data/fashion_mnist.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "mmgrad/core/error.h"
#include "mmgrad/core/file_util.h"
#include "mmgrad/data/gzip_source.h"

namespace mmgrad::data {

namespace fs = std::filesystem;

namespace {

constexpr uint32_t kImagesMagic = 2051;  // 0x00000803: unsigned byte data, 3 dimensions
constexpr uint32_t kLabelsMagic = 2049;  // 0x00000801: unsigned byte data, 1 dimension
constexpr const char* kDefaultDir = "/usr/share/datasets/fashion-mnist";

uint32_t big_endian_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Reads the 4-byte magic plus `ndims` 4-byte sizes and checks the magic.
// Reads the 4-byte magic, checks it, then the `ndims` 4-byte sizes.
std::vector<uint32_t> read_header(GzipSource& src, uint32_t want_magic, int ndims, const char* op) {
  uint8_t buf[12];
  src.read_exact(buf, 4, "the IDX magic number");
  uint32_t magic = big_endian_u32(buf);
  MMGRAD_CHECK(magic == want_magic, op, ": '", src.path(), "' is not an IDX file of the expected ",
               "kind: magic number ", magic, ", expected ", want_magic,
               want_magic == kImagesMagic ? " (unsigned-byte images, 3 dims)"
                                          : " (unsigned-byte labels, 1 dim)");
  src.read_exact(buf, 4 * static_cast<size_t>(ndims), "the IDX header");
  std::vector<uint32_t> dims(ndims);
  for (int i = 0; i < ndims; ++i) dims[i] = big_endian_u32(buf + 4 * i);
  return dims;
}

// A header must not make us allocate more than the file can possibly hold.
void check_plausible(const GzipSource& src, uint64_t payload, const char* what, int64_t count,
                     const char* op) {
  const uint64_t header = src.bytes_out();
  if (!src.compressed()) {
    MMGRAD_CHECK(header + payload <= src.file_size(), op, ": '", src.path(), "' is truncated (or ",
                 "its header is corrupt): it declares ", count, " ", what, " (", payload,
                 " bytes) but only ", src.file_size() - header, " bytes follow the header");
    return;
  }
  MMGRAD_CHECK(payload <= src.max_decompressed_size(), op, ": '", src.path(), "' declares ", count,
               " ", what, " (", payload, " bytes) but a ", src.file_size(),
               "-byte gzip file cannot hold that many (corrupt header?)");
}

int64_t clamp_limit(const char* op, int64_t limit, int64_t count) {
  MMGRAD_CHECK(limit >= -1, op, ": limit must be -1 (all) or >= 0, got ", limit);
  return limit < 0 ? count : std::min(limit, count);
}

struct ImagesFile {
  Tensor images;
  int64_t count = 0;  // examples the header declares (before the limit)
};

ImagesFile read_images(GzipSource& src, int64_t limit, const char* op) {
  const std::string& path = src.path();
  std::vector<uint32_t> d = read_header(src, kImagesMagic, 3, op);
  int64_t count = d[0], rows = d[1], cols = d[2];
  MMGRAD_CHECK(rows > 0 && cols > 0 && rows <= 65536 && cols <= 65536, op, ": '", path,
               "' declares images of ", rows, "x", cols, " pixels (corrupt header?)");
  uint64_t pixels = static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols);
  // The header is read before any allocation: a corrupt count must not ask for terabytes.
  check_plausible(src, static_cast<uint64_t>(count) * pixels, "images", count, op);
  int64_t n = clamp_limit(op, limit, count);

  Tensor images = Tensor::empty({n, 1, rows, cols}, kFloat32);
  float* out = images.data_ptr<float>();
  advise_huge_pages(out, static_cast<size_t>(images.numel()) * sizeof(float));
  // Decompress in slices and convert each while it is still in cache: one pass, no full-size
  // byte buffer.
  const uint64_t total = static_cast<uint64_t>(n) * pixels;
  std::vector<uint8_t> buf(std::min<uint64_t>(total, uint64_t{1} << 20));
  for (uint64_t done = 0; done < total;) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), total - done));
    src.read_exact(buf.data(), want, "the pixel data");
    constexpr float kScale = 1.0f / 255.0f;
    float* o = out + done;
    for (size_t i = 0; i < want; ++i) o[i] = static_cast<float>(buf[i]) * kScale;
    done += want;
  }
  if (n == count) {
    // The whole file was wanted: make sure it ends here (and let zlib verify the CRC-32).
    uint64_t extra = src.skip_rest();
    MMGRAD_CHECK(extra == 0, op, ": '", path, "' has ", extra, " bytes after the ", count,
                 " images its header declares (corrupt or not an IDX image file)");
  }
  return {images, count};
}

struct LabelsFile {
  Tensor labels;
  int64_t count = 0;
};

void check_num_classes(int64_t num_classes, const char* op) {
  MMGRAD_CHECK(num_classes > 0 && num_classes <= 256, op,
               ": num_classes must be in [1, 256] for byte labels, got ", num_classes);
}

LabelsFile read_labels(GzipSource& src, int64_t num_classes, int64_t limit, const char* op) {
  check_num_classes(num_classes, op);
  const std::string& path = src.path();
  std::vector<uint32_t> d = read_header(src, kLabelsMagic, 1, op);
  int64_t count = d[0];
  check_plausible(src, static_cast<uint64_t>(count), "labels", count, op);
  int64_t n = clamp_limit(op, limit, count);
  std::vector<uint8_t> bytes(static_cast<size_t>(n));
  src.read_exact(bytes.data(), bytes.size(), "the labels");
  Tensor labels = Tensor::empty({n}, kInt64);
  int64_t* out = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    MMGRAD_CHECK(bytes[i] < num_classes, op, ": '", path, "' has label ", int{bytes[i]},
                 " at index ", i, ", outside [0, ", num_classes, ") (corrupt file?)");
    out[i] = bytes[i];
  }
  if (n == count) {
    uint64_t extra = src.skip_rest();
    MMGRAD_CHECK(extra == 0, op, ": '", path, "' has ", extra, " bytes after the ", count,
                 " labels its header declares (corrupt or not an IDX label file)");
  }
  return {labels, count};
}

bool files_present(const fs::path& dir) {
  for (const char* stem : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
    std::error_code ec;
    if (!fs::exists(dir / (std::string(stem) + ".gz"), ec) && !fs::exists(dir / stem, ec))
      return false;
  }
  return true;
}

// <dir>/<stem>.gz, or the uncompressed <dir>/<stem> when only that exists.
std::string locate(const std::string& dir, const std::string& stem, const char* op) {
  fs::path gz = fs::path(dir) / (stem + ".gz");
  fs::path raw = fs::path(dir) / stem;
  std::error_code ec;
  if (fs::exists(gz, ec)) return gz.string();
  if (fs::exists(raw, ec)) return raw.string();
  fail(cat_str(op, ": cannot find '", gz.string(), "' (install the Debian package ",
               "dataset-fashion-mnist, or point MMGRAD_DATA or the dir argument at a folder ",
               "holding the Fashion-MNIST IDX files)"));
}

}  // namespace

std::string fashion_mnist_dir(const std::string& dir) {
  std::string base = dir;
  if (base.empty()) {
    const char* env = std::getenv("MMGRAD_DATA");
    base = (env && *env) ? env : kDefaultDir;
  }
  fs::path sub = fs::path(base) / "fashion-mnist";
  if (!files_present(base) && files_present(sub)) return sub.string();
  return base;
}

bool fashion_mnist_available(const std::string& dir) {
  return files_present(fashion_mnist_dir(dir));
}

namespace {

ImagesFile read_images(const std::string& path, int64_t limit, const char* op) {
  GzipSource src(path, op);
  return read_images(src, limit, op);
}

LabelsFile read_labels(const std::string& path, int64_t num_classes, int64_t limit,
                       const char* op) {
  check_num_classes(num_classes, op);  // before opening the file, as always
  GzipSource src(path, op);
  return read_labels(src, num_classes, limit, op);
}

}  // namespace

Tensor read_idx_images(const std::string& path, int64_t limit) {
  return read_images(path, limit, "read_idx_images").images;
}

Tensor read_idx_labels(const std::string& path, int64_t num_classes, int64_t limit) {
  return read_labels(path, num_classes, limit, "read_idx_labels").labels;
}

Tensor decode_idx_images(std::vector<uint8_t> bytes, const std::string& name, int64_t limit) {
  GzipSource src(std::move(bytes), name, "read_idx_images");
  return read_images(src, limit, "read_idx_images").images;
}

Tensor decode_idx_labels(std::vector<uint8_t> bytes, int64_t num_classes, const std::string& name,
                         int64_t limit) {
  check_num_classes(num_classes, "read_idx_labels");
  GzipSource src(std::move(bytes), name, "read_idx_labels");
  return read_labels(src, num_classes, limit, "read_idx_labels").labels;
}

std::vector<uint8_t> read_gzip_file(const std::string& path, int64_t max_bytes) {
  MMGRAD_CHECK(max_bytes >= -1, "read_gzip_file: max_bytes must be -1 (all) or >= 0, got ",
               max_bytes);
  GzipSource src(path, "read_gzip_file");
  std::vector<uint8_t> out;
  size_t chunk = size_t{1} << 20;
  for (;;) {
    size_t want = chunk;
    if (max_bytes >= 0) want = std::min<size_t>(want, static_cast<size_t>(max_bytes) - out.size());
    if (want == 0) break;
    size_t old = out.size();
    out.resize(old + want);
    size_t got = src.read(out.data() + old, want);
    out.resize(old + got);
    if (got < want) break;
  }
  return out;
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                 "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

Dataset load_fashion_mnist(Split split, const std::string& dir, int64_t limit) {
  const char* op = "load_fashion_mnist";
  MMGRAD_CHECK(limit >= -1, op, ": limit must be -1 (all) or >= 0, got ", limit);
  std::string folder = fashion_mnist_dir(dir);
  std::string prefix = split == Split::Train ? "train" : "t10k";
  std::string img_path = locate(folder, prefix + "-images-idx3-ubyte", op);
  std::string lbl_path = locate(folder, prefix + "-labels-idx1-ubyte", op);

  ImagesFile img = read_images(img_path, limit, op);
  LabelsFile lbl = read_labels(lbl_path, 10, limit, op);
  MMGRAD_CHECK(img.images.size(2) == 28 && img.images.size(3) == 28, op, ": '", img_path,
               "' holds ", img.images.size(2), "x", img.images.size(3),
               " images; Fashion-MNIST images are 28x28");
  MMGRAD_CHECK(img.count == lbl.count, op, ": '", img_path, "' declares ", img.count,
               " images but '", lbl_path, "' declares ", lbl.count, " labels");
  return Dataset{img.images, lbl.labels};
}

}  // namespace mmgrad::data
