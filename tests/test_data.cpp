// Data: the Fashion-MNIST IDX reader (on generated files, damaged files and the real files),
// the DataLoader, train/validation split, the tokenizer and the synthetic image-caption pairs.
#include <doctest/doctest.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "file_test_util.h"
#include "mmgrad/data/fashion_mnist.h"
#include "mmgrad/data/loader.h"
#include "mmgrad/data/synthetic.h"
#include "mmgrad/data/tokenizer.h"
#include "mmgrad/mmgrad.h"

using namespace mmgrad;
using namespace mmgrad::data;
namespace fs = std::filesystem;
using mmgrad::testing::TempDir;
using mmgrad::testing::write_bytes;

namespace {

void put_be32(std::vector<uint8_t>& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v >> 24));
  b.push_back(static_cast<uint8_t>(v >> 16));
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}

// IDX image bytes: pixel (i, r, c) = (7 * i + 3 * r + c) % 256, so every position is checkable.
std::vector<uint8_t> idx_images(uint32_t n, uint32_t rows, uint32_t cols, uint32_t magic = 2051) {
  std::vector<uint8_t> b;
  put_be32(b, magic);
  put_be32(b, n);
  put_be32(b, rows);
  put_be32(b, cols);
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t r = 0; r < rows; ++r)
      for (uint32_t c = 0; c < cols; ++c)
        b.push_back(static_cast<uint8_t>((7 * i + 3 * r + c) % 256));
  return b;
}

// IDX label bytes: label i = i % 10.
std::vector<uint8_t> idx_labels(uint32_t n, uint32_t magic = 2049) {
  std::vector<uint8_t> b;
  put_be32(b, magic);
  put_be32(b, n);
  for (uint32_t i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(i % 10));
  return b;
}

std::vector<uint8_t> gzip_bytes(const std::vector<uint8_t>& raw) {
  // deflateInit2 with windowBits 15 + 16 writes the gzip wrapper (as gzip(1) does).
  z_stream s{};
  REQUIRE(deflateInit2(&s, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::vector<uint8_t> out(deflateBound(&s, raw.size()) + 64);
  s.next_in = const_cast<Bytef*>(raw.data());
  s.avail_in = static_cast<uInt>(raw.size());
  s.next_out = out.data();
  s.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&s, Z_FINISH) == Z_STREAM_END);
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

void write_gz(const std::string& path, const std::vector<uint8_t>& raw) {
  write_bytes(path, gzip_bytes(raw));
}

// A Fashion-MNIST-shaped folder: n_train / n_test 28x28 images and labels.
void write_fake_fashion(const TempDir& d, uint32_t n_train, uint32_t n_test) {
  write_gz(d.file("train-images-idx3-ubyte.gz"), idx_images(n_train, 28, 28));
  write_gz(d.file("train-labels-idx1-ubyte.gz"), idx_labels(n_train));
  write_gz(d.file("t10k-images-idx3-ubyte.gz"), idx_images(n_test, 28, 28));
  write_gz(d.file("t10k-labels-idx1-ubyte.gz"), idx_labels(n_test));
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Sets an environment variable for the scope of a test and restores it after.
struct ScopedEnv {
  std::string name;
  bool had = false;
  std::string old;
  ScopedEnv(const std::string& n, const std::string& value) : name(n) {
    if (const char* v = std::getenv(n.c_str())) had = true, old = v;
    ::setenv(n.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had)
      ::setenv(name.c_str(), old.c_str(), 1);
    else
      ::unsetenv(name.c_str());
  }
};

}  // namespace

// ---- IDX reader --------------------------------------------------------------------------------

TEST_CASE("idx: reads generated image and label files (gzip and uncompressed)") {
  TempDir d("data");
  write_gz(d.file("img.gz"), idx_images(5, 3, 4));
  write_gz(d.file("lbl.gz"), idx_labels(5));
  write_bytes(d.file("img.raw"), idx_images(5, 3, 4));

  for (const char* name : {"img.gz", "img.raw"}) {
    Tensor x = read_idx_images(d.file(name));
    CHECK(x.shape() == Shape{5, 1, 3, 4});
    CHECK(x.dtype() == kFloat32);
    std::vector<float> v = x.to_vector<float>();
    for (int i = 0; i < 5; ++i)
      for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 4; ++c)
          CHECK(v[((i * 3) + r) * 4 + c] == doctest::Approx(((7 * i + 3 * r + c) % 256) / 255.0));
  }
  Tensor y = read_idx_labels(d.file("lbl.gz"), 10);
  CHECK(y.dtype() == kInt64);
  CHECK(y.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4});

  // limit keeps the first examples; a limit above the count keeps all.
  CHECK(read_idx_images(d.file("img.gz"), 2).shape() == Shape{2, 1, 3, 4});
  CHECK(read_idx_images(d.file("img.gz"), 0).shape() == Shape{0, 1, 3, 4});
  CHECK(read_idx_labels(d.file("lbl.gz"), 10, 99).numel() == 5);
  CHECK_THROWS_WITH_AS(read_idx_images(d.file("img.gz"), -2), doctest::Contains("limit"), Error);

  // Pixel bytes 0 and 255 map to exactly 0 and 1.
  std::vector<uint8_t> ext = idx_images(1, 1, 2);
  ext[16] = 0;
  ext[17] = 255;
  write_gz(d.file("ext.gz"), ext);
  CHECK(read_idx_images(d.file("ext.gz")).to_vector<float>() == std::vector<float>{0.0f, 1.0f});

  // read_gzip_file gives the raw bytes back, or the first max_bytes of them.
  CHECK(read_gzip_file(d.file("lbl.gz")) == idx_labels(5));
  std::vector<uint8_t> head = read_gzip_file(d.file("lbl.gz"), 6), all = idx_labels(5);
  CHECK(head == std::vector<uint8_t>(all.begin(), all.begin() + 6));
}

TEST_CASE("idx: two concatenated gzip members read as one stream") {
  TempDir d("data");
  std::vector<uint8_t> raw = idx_images(4, 2, 2);
  std::vector<uint8_t> a(raw.begin(), raw.begin() + 10), b(raw.begin() + 10, raw.end());
  std::vector<uint8_t> gz = gzip_bytes(a), gz2 = gzip_bytes(b);
  gz.insert(gz.end(), gz2.begin(), gz2.end());
  write_bytes(d.file("two.gz"), gz);
  CHECK(read_gzip_file(d.file("two.gz")) == raw);
  CHECK(read_idx_images(d.file("two.gz")).shape() == Shape{4, 1, 2, 2});
}

TEST_CASE("idx: truncated gzip files give a clear error at every cut point") {
  TempDir d("data");
  std::vector<uint8_t> gz = gzip_bytes(idx_images(20, 28, 28));
  const std::vector<size_t> cuts = {
      0, 1, 5, 9, 15, 30, gz.size() / 2, gz.size() - 9, gz.size() - 4, gz.size() - 1};
  for (size_t cut : cuts) {
    CAPTURE(cut);
    std::string path = d.file("cut_" + std::to_string(cut) + ".gz");
    write_bytes(path, std::vector<uint8_t>(gz.begin(), gz.begin() + cut));
    std::string msg = error_of([&] { read_idx_images(path); });
    CHECK(msg.find("read_idx_images") != std::string::npos);
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find("truncated") != std::string::npos);
  }
  // An uncompressed file cut short too.
  std::vector<uint8_t> raw = idx_images(3, 28, 28);
  raw.resize(raw.size() - 100);
  write_bytes(d.file("short.raw"), raw);
  CHECK_THROWS_WITH_AS(read_idx_images(d.file("short.raw")), doctest::Contains("truncated"), Error);
  // Labels cut inside the header.
  std::vector<uint8_t> lbl_raw = idx_labels(3);
  std::vector<uint8_t> lbl = gzip_bytes(std::vector<uint8_t>(lbl_raw.begin(), lbl_raw.begin() + 6));
  write_bytes(d.file("lbl_short.gz"), lbl);
  CHECK_THROWS_WITH_AS(read_idx_labels(d.file("lbl_short.gz"), 10), doctest::Contains("IDX header"),
                       Error);
}

TEST_CASE("idx: corrupt gzip data, trailing garbage and a bad CRC are reported") {
  TempDir d("data");
  std::vector<uint8_t> gz = gzip_bytes(idx_images(20, 28, 28));
  // Flip bits in the middle of the deflate data: either the decoder or the CRC-32 check fails.
  std::vector<uint8_t> bad = gz;
  for (size_t i = bad.size() / 2; i < bad.size() / 2 + 8; ++i) bad[i] ^= 0x5a;
  write_bytes(d.file("bad.gz"), bad);
  CHECK_THROWS_WITH_AS(read_idx_images(d.file("bad.gz")), doctest::Contains("corrupt"), Error);
  // Damage only the stored CRC-32 (the 8 trailer bytes are CRC then length).
  std::vector<uint8_t> crc = gz;
  crc[crc.size() - 8] ^= 0xff;
  write_bytes(d.file("crc.gz"), crc);
  CHECK_THROWS_WITH_AS(read_idx_images(d.file("crc.gz")), doctest::Contains("corrupt"), Error);
  // Garbage after the gzip stream.
  std::vector<uint8_t> tail = gz;
  tail.push_back(1);
  tail.push_back(2);
  tail.push_back(3);
  write_bytes(d.file("tail.gz"), tail);
  CHECK_THROWS_WITH_AS(read_idx_images(d.file("tail.gz")), doctest::Contains("garbage"), Error);
  // Extra bytes after the declared images inside the stream.
  std::vector<uint8_t> extra = idx_images(2, 28, 28);
  extra.push_back(0);
  write_gz(d.file("extra.gz"), extra);
  CHECK_THROWS_WITH_AS(read_idx_images(d.file("extra.gz")), doctest::Contains("bytes after"),
                       Error);
}

TEST_CASE("idx: wrong magic numbers, bad headers and out-of-range labels") {
  TempDir d("data");
  write_gz(d.file("labels_as_images.gz"), idx_labels(4));
  CHECK_THROWS_WITH_AS(read_idx_images(d.file("labels_as_images.gz")),
                       doctest::Contains("magic number 2049, expected 2051"), Error);
  write_gz(d.file("images_as_labels.gz"), idx_images(2, 2, 2));
  CHECK_THROWS_WITH_AS(read_idx_labels(d.file("images_as_labels.gz"), 10),
                       doctest::Contains("magic number 2051, expected 2049"), Error);
  // A float IDX file (type byte 0x0D) is not the unsigned-byte format.
  write_gz(d.file("float.gz"), idx_images(2, 2, 2, 0x00000D03));
  CHECK_THROWS_WITH_AS(read_idx_images(d.file("float.gz")), doctest::Contains("magic"), Error);
  // Zero-sized images.
  write_gz(d.file("zero.gz"), idx_images(2, 0, 28));
  CHECK_THROWS_WITH_AS(read_idx_images(d.file("zero.gz")), doctest::Contains("0x28"), Error);
  // A header claiming far more images than the file can hold is refused before allocating.
  std::vector<uint8_t> huge = idx_images(1, 28, 28);
  huge[4] = 0x7f;  // count = 0x7f000001
  write_gz(d.file("huge.gz"), huge);
  CHECK_THROWS_WITH_AS(read_idx_images(d.file("huge.gz")), doctest::Contains("cannot hold"), Error);
  // More images declared than present (but plausible): truncated.
  std::vector<uint8_t> more = idx_images(3, 28, 28);
  more[7] = 4;  // count 4, data for 3
  write_gz(d.file("more.gz"), more);
  CHECK_THROWS_WITH_AS(read_idx_images(d.file("more.gz")), doctest::Contains("truncated"), Error);
  // A label of 10 in a 10-class file.
  std::vector<uint8_t> lbl = idx_labels(4);
  lbl[8 + 2] = 10;
  write_gz(d.file("lbl10.gz"), lbl);
  CHECK_THROWS_WITH_AS(read_idx_labels(d.file("lbl10.gz"), 10),
                       doctest::Contains("label 10 at index 2"), Error);
  // Missing file and an empty file.
  CHECK_THROWS_WITH_AS(read_idx_images(d.file("nope.gz")), doctest::Contains("cannot open"), Error);
  write_bytes(d.file("empty.gz"), {});
  CHECK_THROWS_WITH_AS(read_idx_images(d.file("empty.gz")), doctest::Contains("truncated"), Error);
}

TEST_CASE("fashion_mnist: loads a generated folder, counts must agree, dir and MMGRAD_DATA") {
  TempDir d("data");
  write_fake_fashion(d, 7, 3);
  Dataset train = load_fashion_mnist(Split::Train, d.path.string());
  CHECK(train.images.shape() == Shape{7, 1, 28, 28});
  CHECK(train.labels.shape() == Shape{7});
  CHECK(train.size() == 7);
  CHECK(train.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6});
  CHECK(train.images.at({6, 0, 27, 27}) == doctest::Approx(((7 * 6 + 3 * 27 + 27) % 256) / 255.0));
  Dataset test = load_fashion_mnist(Split::Test, d.path.string(), 2);
  CHECK(test.images.shape() == Shape{2, 1, 28, 28});
  CHECK(test.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 1});
  CHECK(fashion_mnist_classes().size() == 10);
  CHECK(fashion_mnist_classes()[0] == "T-shirt/top");
  CHECK(fashion_mnist_classes()[9] == "Ankle boot");

  {  // MMGRAD_DATA names the folder, or a parent holding fashion-mnist/.
    ScopedEnv env("MMGRAD_DATA", d.path.string());
    CHECK(fashion_mnist_dir() == d.path.string());
    CHECK(load_fashion_mnist(Split::Test).size() == 3);
  }
  TempDir parent("data");
  fs::create_directories(parent.path / "fashion-mnist");
  for (auto& e : fs::directory_iterator(d.path))
    fs::copy_file(e.path(), parent.path / "fashion-mnist" / e.path().filename());
  {
    ScopedEnv env("MMGRAD_DATA", parent.path.string());
    CHECK(fashion_mnist_available());
    CHECK(load_fashion_mnist(Split::Train).size() == 7);
  }

  // Mismatched counts between the image and label files.
  write_gz(d.file("train-labels-idx1-ubyte.gz"), idx_labels(6));
  CHECK_THROWS_WITH_AS(load_fashion_mnist(Split::Train, d.path.string()),
                       doctest::Contains("declares 7 images but"), Error);
  // Images of the wrong size.
  write_gz(d.file("t10k-images-idx3-ubyte.gz"), idx_images(3, 14, 14));
  CHECK_THROWS_WITH_AS(load_fashion_mnist(Split::Test, d.path.string()), doctest::Contains("28x28"),
                       Error);
  // A folder without the files.
  TempDir empty("data");
  CHECK_FALSE(fashion_mnist_available(empty.path.string()));
  CHECK_THROWS_WITH_AS(load_fashion_mnist(Split::Train, empty.path.string()),
                       doctest::Contains("dataset-fashion-mnist"), Error);
}

TEST_CASE("fashion_mnist: the real Debian files (when installed)") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fashion_mnist_available(dir)) {
    MESSAGE("[skipped: Fashion-MNIST not installed in " << dir << ", the real-file test]");
    return;
  }
  // (Load time is a benchmark matter, not a test assertion: see make bench.)
  Dataset train = load_fashion_mnist(Split::Train, dir);
  Dataset test = load_fashion_mnist(Split::Test, dir);
  CHECK(train.images.shape() == Shape{60000, 1, 28, 28});
  CHECK(test.images.shape() == Shape{10000, 1, 28, 28});
  for (const auto& [ds, per_class] : {std::pair{&train, 6000}, std::pair{&test, 1000}}) {
    std::vector<int64_t> hist(10, 0);
    for (int64_t y : ds->labels.to_vector<int64_t>()) ++hist[y];
    for (int c = 0; c < 10; ++c) CHECK(hist[c] == per_class);
  }
  // Pixels are in [0, 1] and use the whole range; the mean grey level of Fashion-MNIST's
  // training set is about 0.286.
  double lo = train.images.min().item(), hi = train.images.max().item();
  CHECK(lo == 0.0);
  CHECK(hi == 1.0);
  CHECK(train.images.mean().item() == doctest::Approx(0.286).epsilon(0.01));
  // A limited load gives the same first images.
  Dataset first = load_fashion_mnist(Split::Train, dir, 100);
  CHECK(first.images.to_vector<float>() ==
        train.images.narrow(0, 0, 100).contiguous().to_vector<float>());
}

// ---- DataLoader --------------------------------------------------------------------------------

TEST_CASE("loader: batch sizes and the last-batch policy") {
  Tensor x = Tensor::arange(0, 30, 1, kFloat32).reshape({10, 3});
  Tensor y = Tensor::arange(10);
  DataLoader keep(x, y, 4);
  CHECK(keep.size() == 3);
  std::vector<int64_t> sizes, seen;
  for (const Batch& b : keep) {
    sizes.push_back(b.size());
    auto idx = b.indices.to_vector<int64_t>();
    seen.insert(seen.end(), idx.begin(), idx.end());
    CHECK(b.inputs.shape() == Shape{b.size(), 3});
    // Rows follow the indices.
    auto xi = b.inputs.to_vector<float>();
    auto yi = b.targets.to_vector<int64_t>();
    for (size_t i = 0; i < idx.size(); ++i) {
      CHECK(yi[i] == idx[i]);
      CHECK(xi[i * 3 + 2] == static_cast<float>(idx[i] * 3 + 2));
    }
  }
  CHECK(sizes == std::vector<int64_t>{4, 4, 2});
  CHECK(seen == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});  // no shuffle: in order

  DataLoader drop(x, y, 4, false, 0, LastBatch::Drop);
  CHECK(drop.size() == 2);
  int64_t count = 0;
  for (auto b : drop) count += b.size();
  CHECK(count == 8);
  CHECK(DataLoader(x, y, 5, false, 0, LastBatch::Drop).size() == 2);  // exact division
  CHECK(DataLoader(x, y, 20, false, 0, LastBatch::Drop).size() == 0);
  CHECK(DataLoader(x, y, 20).size() == 1);
}

TEST_CASE("loader: seeded shuffling is reproducible per epoch and covers every sample") {
  Tensor x = Tensor::arange(0, 50, 1, kFloat64).reshape({25, 2});
  auto epoch_order = [](DataLoader& dl) {
    std::vector<int64_t> o;
    for (const Batch& b : dl) {
      auto idx = b.indices.to_vector<int64_t>();
      o.insert(o.end(), idx.begin(), idx.end());
    }
    return o;
  };
  DataLoader a(x, Tensor(), 7, true, 42), b(x, Tensor(), 7, true, 42), c(x, Tensor(), 7, true, 43);
  auto a0 = epoch_order(a), a1 = epoch_order(a);
  auto b0 = epoch_order(b), b1 = epoch_order(b);
  auto c0 = epoch_order(c);
  CHECK(a0 == b0);
  CHECK(a1 == b1);
  CHECK(a0 != a1);  // a new order each epoch
  CHECK(a0 != c0);  // and per seed
  std::set<int64_t> s(a0.begin(), a0.end());
  CHECK(s.size() == 25);
  CHECK(*s.begin() == 0);
  CHECK(*s.rbegin() == 24);
  // set_epoch resumes exactly; order(e) is what the e-th epoch iterates.
  DataLoader r(x, Tensor(), 7, true, 42);
  r.set_epoch(1);
  CHECK(epoch_order(r) == a1);
  CHECK(r.order(0) == a0);
  CHECK(a.epoch() == 2);
  // Stopping an epoch early does not change the next one.
  DataLoader e(x, Tensor(), 7, true, 42);
  for (const Batch& bt : e) {
    (void)bt;
    break;
  }
  CHECK(epoch_order(e) == a1);
  // Undefined targets give undefined batch targets.
  e.set_epoch(0);
  CHECK_FALSE((*e.begin()).targets.defined());
}

TEST_CASE("loader: permutation is uniform (first position over many streams)") {
  // Fisher-Yates with a correct pick range puts each value first equally often.
  const int n = 5, trials = 5000;
  std::vector<int> first(n, 0);
  for (int t = 0; t < trials; ++t) ++first[permutation(n, 7, t)[0]];
  for (int v = 0; v < n; ++v) {
    CAPTURE(v);
    CHECK(std::abs(first[v] - trials / n) < 150);  // ~5 standard deviations
  }
  CHECK(permutation(0, 1).empty());
  CHECK(permutation(1, 1) == std::vector<int64_t>{0});
}

TEST_CASE("loader: index-only loader, non-contiguous inputs and bad arguments") {
  DataLoader idx(11, 3, true, 5);
  CHECK(idx.size() == 4);
  int64_t total = 0;
  for (const Batch& b : idx) {
    CHECK_FALSE(b.inputs.defined());
    total += b.size();
  }
  CHECK(total == 11);

  // A transposed (non-contiguous) input gathers the right rows.
  Tensor base = Tensor::arange(0, 12, 1, kFloat32).reshape({3, 4});
  Tensor xt = base.t();  // [4, 3], row i = column i of base
  DataLoader dl(xt, Tensor(), 2);
  Batch first = *dl.begin();
  CHECK(first.inputs.to_vector<float>() == std::vector<float>{0, 4, 8, 1, 5, 9});

  CHECK_THROWS_WITH_AS(DataLoader(base, Tensor::arange(2), 2), doctest::Contains("same number"),
                       Error);
  CHECK_THROWS_WITH_AS(DataLoader(base, Tensor(), 0), doctest::Contains("batch_size"), Error);
  CHECK_THROWS_WITH_AS(DataLoader(Tensor(), Tensor(), 2), doctest::Contains("DataLoader"), Error);
  DataLoader fresh(base, Tensor(), 2);
  CHECK_THROWS_WITH_AS(fresh.batch(0), doctest::Contains("no epoch"), Error);
  (void)fresh.begin();
  CHECK_THROWS_WITH_AS(fresh.batch(5), doctest::Contains("out of range"), Error);

  // take_rows by vector and by tensor; errors name the op.
  CHECK(take_rows(base, std::vector<int64_t>{2, 0}).to_vector<float>() ==
        std::vector<float>{8, 9, 10, 11, 0, 1, 2, 3});
  CHECK(take_rows(base, Tensor::from_vector(std::vector<int64_t>{1}, {1})).shape() == Shape{1, 4});
  CHECK_THROWS_WITH_AS(take_rows(base, std::vector<int64_t>{3}), doctest::Contains("take_rows"),
                       Error);
  CHECK_THROWS_WITH_AS(take_rows(base, Tensor::zeros({2})), doctest::Contains("int64"), Error);
}

TEST_CASE("loader: train_val_split") {
  TrainValSplit s = train_val_split(100, 0.2, 3);
  auto tr = s.train.to_vector<int64_t>(), va = s.val.to_vector<int64_t>();
  CHECK(tr.size() == 80);
  CHECK(va.size() == 20);
  CHECK(std::is_sorted(tr.begin(), tr.end()));
  CHECK(std::is_sorted(va.begin(), va.end()));
  std::set<int64_t> all(tr.begin(), tr.end());
  all.insert(va.begin(), va.end());
  CHECK(all.size() == 100);
  CHECK(train_val_split(100, 0.2, 3).val.to_vector<int64_t>() == va);
  CHECK(train_val_split(100, 0.2, 4).val.to_vector<int64_t>() != va);
  CHECK(train_val_split(10, 0.0, 3).val.numel() == 0);
  CHECK(train_val_split(3, 0.9, 3).train.numel() == 1);  // never an empty training set
  CHECK_THROWS_WITH_AS(train_val_split(10, 1.0, 0), doctest::Contains("val_fraction"), Error);
  CHECK_THROWS_WITH_AS(train_val_split(0, 0.5, 0), doctest::Contains("train_val_split"), Error);
}

// ---- Tokenizer ---------------------------------------------------------------------------------

TEST_CASE("tokenizer: splitting, vocabulary order and special tokens") {
  CHECK(Tokenizer::split("A red car, parked.") ==
        std::vector<std::string>{"a", "red", "car", ",", "parked", "."});
  CHECK(Tokenizer::split("  Two\tspaces\n(here)!") ==
        std::vector<std::string>{"two", "spaces", "(", "here", ")", "!"});
  CHECK(Tokenizer::split("").empty());

  Tokenizer tok = Tokenizer::build({"the red car", "the blue car", "The red ball"});
  // the:3, car:2, red:2, ball:1, blue:1 -> by count, ties alphabetical.
  CHECK(tok.vocab_size() == 4 + 5);
  CHECK(tok.id_to_token(0) == "<pad>");
  CHECK(tok.id_to_token(3) == "<unk>");
  CHECK(tok.id_to_token(4) == "the");
  CHECK(tok.id_to_token(5) == "car");
  CHECK(tok.id_to_token(6) == "red");
  CHECK(tok.id_to_token(7) == "ball");
  CHECK(tok.id_to_token(8) == "blue");
  CHECK(tok.token_to_id("zebra") == Tokenizer::kUnk);
  CHECK(tok.contains("red"));
  CHECK_FALSE(tok.contains("<"));

  Tokenizer small = Tokenizer::build({"a a a b b c"}, 2);
  CHECK(small.vocab_size() == 6);  // c dropped (seen once)
  CHECK(Tokenizer::build({"a a a b b c"}, 1, 1).vocab_size() == 5);
  CHECK_THROWS_WITH_AS(Tokenizer::build({}, 0), doctest::Contains("min_freq"), Error);
}

TEST_CASE("tokenizer: encode with BOS/EOS, unknown words, padding and truncation") {
  Tokenizer tok = Tokenizer::build({"a red car", "a blue ball"});
  const int64_t a = tok.token_to_id("a"), red = tok.token_to_id("red"),
                car = tok.token_to_id("car");
  CHECK(tok.encode("a red car") == std::vector<int64_t>{a, red, car});
  CHECK(tok.encode("A RED zebra", -1, true, true) ==
        std::vector<int64_t>{Tokenizer::kBos, a, red, Tokenizer::kUnk, Tokenizer::kEos});
  // Padding to max_len.
  CHECK(tok.encode("a red", 5, true, true) == std::vector<int64_t>{1, a, red, 2, 0});
  // Truncation keeps BOS and EOS.
  CHECK(tok.encode("a red car a red car", 4, true, true) == std::vector<int64_t>{1, a, red, 2});
  CHECK(tok.encode("a red car", 2) == std::vector<int64_t>{a, red});
  CHECK(tok.encode("", 3, true, false) == std::vector<int64_t>{1, 0, 0});
  CHECK_THROWS_WITH_AS(tok.encode("a", 1, true, true), doctest::Contains("max_len"), Error);

  Tensor batch = tok.encode_batch({"a red car", "a"}, -1, true, true);
  CHECK(batch.shape() == Shape{2, 5});
  CHECK(batch.to_vector<int64_t>() == std::vector<int64_t>{1, a, red, car, 2, 1, a, 2, 0, 0});
  CHECK(tok.encode_batch({"a red car", "a"}, 3).shape() == Shape{2, 3});
}

TEST_CASE("tokenizer: decode round trip and strip_special") {
  Tokenizer tok = Tokenizer::build({"a red car, parked (outside).", "a blue ball!"});
  for (const std::string& s :
       {std::string("a red car, parked (outside)."), std::string("a blue ball!")}) {
    CHECK(tok.decode(tok.encode(s, 16, true, true)) == s);
    CHECK(tok.decode(tok.encode(s)) == s);
  }
  std::vector<int64_t> ids = tok.encode("a red car", 6, true, true);
  CHECK(tok.decode(ids, false) == "<bos> a red car <eos> <pad>");
  CHECK(tok.decode(tok.encode("a zebra")) == "a <unk>");
  // decode stops at EOS.
  std::vector<int64_t> after = {1, tok.token_to_id("a"), 2, tok.token_to_id("red")};
  CHECK(tok.decode(after) == "a");
  CHECK(Tokenizer::strip_special(after) == std::vector<int64_t>{tok.token_to_id("a")});
  Tensor batch = tok.encode_batch({"a red car", "a blue ball!"}, 8, true, true);
  CHECK(tok.decode_batch(batch) == std::vector<std::string>{"a red car", "a blue ball!"});
  CHECK(tok.decode(batch.select(0, 1).contiguous()) == "a blue ball!");
  CHECK_THROWS_WITH_AS(tok.decode(std::vector<int64_t>{999}), doctest::Contains("999"), Error);
  CHECK_THROWS_WITH_AS(tok.decode_batch(Tensor::zeros({2})), doctest::Contains("decode_batch"),
                       Error);
}

TEST_CASE("tokenizer: save/load round trip and corrupt vocabulary files") {
  TempDir d("data");
  Tokenizer tok = Tokenizer::build({"the red car", "the blue car", "é café"});
  tok.save(d.file("vocab.txt"));
  Tokenizer back = Tokenizer::load(d.file("vocab.txt"));
  CHECK(back.vocab_size() == tok.vocab_size());
  for (int64_t i = 0; i < tok.vocab_size(); ++i) CHECK(back.id_to_token(i) == tok.id_to_token(i));
  CHECK(back.encode("the café car") == tok.encode("the café car"));

  std::ifstream in(d.file("vocab.txt"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto write_text = [&](const std::string& name, const std::string& s) {
    std::ofstream(d.file(name), std::ios::binary) << s;
    return d.file(name);
  };
  // Truncated: last lines missing, or cut mid-line.
  std::string cut_lines = text.substr(0, text.rfind('\n', text.size() - 2) + 1);
  CHECK_THROWS_WITH_AS(Tokenizer::load(write_text("a.txt", cut_lines)),
                       doctest::Contains("truncated"), Error);
  CHECK_THROWS_WITH_AS(Tokenizer::load(write_text("b.txt", text.substr(0, text.size() - 2))),
                       doctest::Contains("truncated"), Error);
  CHECK_THROWS_WITH_AS(Tokenizer::load(write_text("c.txt", "hello\nworld\n")),
                       doctest::Contains("not an mmgrad vocabulary"), Error);
  CHECK_THROWS_WITH_AS(Tokenizer::load(write_text(
                           "d.txt", "mmgrad-vocab 1 6\n<pad>\n<bos>\n<eos>\n<unk>\nred\nred\n")),
                       doctest::Contains("appears twice"), Error);
  CHECK_THROWS_WITH_AS(Tokenizer::load(write_text(
                           "e.txt", "mmgrad-vocab 1 5\n<pad>\n<bos>\n<eos>\n<unk>\nRed car\n")),
                       doctest::Contains("not a single lowercase token"), Error);
  CHECK_THROWS_WITH_AS(
      Tokenizer::load(write_text("f.txt", "mmgrad-vocab 1 4\n<pad>\n<eos>\n<bos>\n<unk>\n")),
      doctest::Contains("special token"), Error);
  CHECK_THROWS_WITH_AS(Tokenizer::load(write_text("g.txt", "mmgrad-vocab 1 x4\n")),
                       doctest::Contains("malformed header"), Error);
  CHECK_THROWS_WITH_AS(
      Tokenizer::load(write_text("h.txt", "mmgrad-vocab 1 5\n<pad>\n<bos>\n<eos>\n<unk>\n\n")),
      doctest::Contains("line 6"), Error);
  CHECK_THROWS_WITH_AS(Tokenizer::load(d.file("missing.txt")), doctest::Contains("cannot open"),
                       Error);
}

// ---- Synthetic image-caption pairs -------------------------------------------------------------

TEST_CASE("synthetic: shapes, class order and per-class colour statistics") {
  SyntheticPairs p = make_synthetic_pairs({}, 0);
  CHECK(p.images.shape() == Shape{100, 3, 16, 16});
  CHECK(p.images.dtype() == kFloat32);
  CHECK(p.captions.shape() == Shape{100, 8});
  CHECK(p.captions.dtype() == kInt64);
  CHECK(p.labels.shape() == Shape{100});
  auto labels = p.labels.to_vector<int64_t>();
  for (int i = 0; i < 100; ++i) CHECK(labels[i] == i / 20);

  SyntheticOptions opts;
  opts.n_per_class = 60;
  SyntheticPairs big = make_synthetic_pairs(opts, 11);
  std::vector<float> v = big.images.to_vector<float>();
  const int plane = 256, per_class = 60;
  double sq = 0;
  int64_t count = 0;
  for (int c = 0; c < 5; ++c)
    for (int ch = 0; ch < 3; ++ch) {
      double sum = 0;
      for (int i = c * per_class; i < (c + 1) * per_class; ++i)
        for (int k = 0; k < plane; ++k) {
          double x = v[(i * 3 + ch) * plane + k];
          sum += x;
          double r = x - synthetic_class_colors()[c][ch];
          sq += r * r;
          ++count;
        }
      CAPTURE(c);
      CAPTURE(ch);
      // 15360 values per mean: standard error 0.2 / sqrt(15360) = 0.0016.
      CHECK(std::abs(sum / (per_class * plane) - synthetic_class_colors()[c][ch]) < 0.01);
    }
  double noise_std = std::sqrt(sq / static_cast<double>(count));
  CHECK(noise_std == doctest::Approx(0.2).epsilon(0.02));  // 230k samples: std error ~0.0003
}

TEST_CASE("synthetic: caption patterns and token noise rate") {
  SyntheticOptions opts;
  opts.n_per_class = 400;
  SyntheticPairs p = make_synthetic_pairs(opts, 5);
  auto cap = p.captions.to_vector<int64_t>();
  int changed = 0, plus = 0, minus = 0, tokens = 0;
  for (int i = 0; i < 2000; ++i) {
    const auto& pat = synthetic_caption_patterns()[i / 400];
    for (int j = 0; j < 8; ++j) {
      int64_t t = cap[i * 8 + j];
      if (pat[j] == 0) {
        CHECK(t == 0);  // padding is never perturbed
        continue;
      }
      ++tokens;
      CHECK(std::abs(t - pat[j]) <= 1);
      CHECK(t < kSyntheticVocabSize);
      changed += t != pat[j];
      plus += t == pat[j] + 1;
      minus += t == pat[j] - 1;
    }
  }
  // P(change) = 0.2 * 2/3: 6000 tokens, standard error 0.0044.
  CHECK(static_cast<double>(changed) / tokens == doctest::Approx(0.2 * 2 / 3).epsilon(0.15));
  CHECK(std::abs(plus - minus) < 120);  // +1 and -1 equally likely (~4.5 standard deviations)
}

TEST_CASE("synthetic: seeded and reproducible, bad options rejected") {
  SyntheticPairs a = make_synthetic_pairs({}, 3), b = make_synthetic_pairs({}, 3),
                 c = make_synthetic_pairs({}, 4);
  CHECK(a.images.to_vector<float>() == b.images.to_vector<float>());
  CHECK(a.captions.to_vector<int64_t>() == b.captions.to_vector<int64_t>());
  CHECK(a.images.to_vector<float>() != c.images.to_vector<float>());
  // The Generator overload advances the generator: two calls differ.
  Generator gen(9);
  SyntheticPairs g1 = make_synthetic_pairs({}, gen), g2 = make_synthetic_pairs({}, gen);
  CHECK(g1.images.to_vector<float>() != g2.images.to_vector<float>());
  SyntheticOptions bad;
  bad.n_per_class = 0;
  CHECK_THROWS_WITH_AS(make_synthetic_pairs(bad, 0), doctest::Contains("n_per_class"), Error);
  bad = {};
  bad.token_noise_prob = 1.5;
  CHECK_THROWS_WITH_AS(make_synthetic_pairs(bad, 0), doctest::Contains("token_noise_prob"), Error);
  // No noise: images are exactly the class colours, captions exactly the patterns.
  SyntheticOptions clean;
  clean.pixel_noise_std = 0;
  clean.token_noise_prob = 0;
  SyntheticPairs z = make_synthetic_pairs(clean, 1);
  CHECK(z.images.at({45, 1, 3, 3}) == 0.0);  // class 2 (blue): green channel 0
  CHECK(z.images.at({45, 2, 3, 3}) == 1.0);
  CHECK(z.captions.at({99, 2}) == 25);
}
