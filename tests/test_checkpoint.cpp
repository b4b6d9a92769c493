// Checkpoint files: round trips, corruption and truncation detection, atomic writes (and the one
// atomic writer of core/file_util.h they use), and optimizer state that continues training
// identically.
#include <doctest/doctest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "mmgrad/core/file_util.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/nn/checkpoint.h"
#include "mmgrad/nn/linear.h"
#include "mmgrad/optim/optim.h"

using namespace mmgrad;
using doctest::Contains;
namespace fs = std::filesystem;

namespace {

// A fresh directory per test case, removed at the end.
struct CkptDir {
  fs::path dir;
  CkptDir() {
    static int counter = 0;
    dir = fs::temp_directory_path() /
          ("mmgrad_ckpt_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~CkptDir() { fs::remove_all(dir); }
  std::string operator/(const std::string& name) const { return (dir / name).string(); }
};

std::vector<char> read_chars(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_chars(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Same name, dtype, shape and bytes.
void check_same(const nn::StateDict& got, const nn::StateDict& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CAPTURE(want[i].first);
    CHECK(got[i].first == want[i].first);
    const Tensor& a = got[i].second;
    const Tensor w = want[i].second.contiguous();
    CHECK(a.dtype() == w.dtype());
    CHECK(a.shape() == w.shape());
    CHECK(a.device() == Device::CPU);
    if (a.numel() > 0) CHECK(a.is_contiguous());
    CHECK_FALSE(a.requires_grad());
    if (a.numel() > 0 && a.shape() == w.shape() && a.dtype() == w.dtype())
      CHECK(std::memcmp(a.raw_data(), w.raw_data(), a.numel() * a.element_size()) == 0);
  }
}

nn::StateDict small_state() {
  return {{"a", Tensor::from_vector({1.0f, -2.0f, 3.5f}, {3})},
          {"b.scale", Tensor::scalar(0.25, kFloat64)},
          {"c", Tensor::from_vector(std::vector<int64_t>{7, -8}, {2})}};
}

// Little-endian field appenders for hand-crafted files.
template <class T>
void put(std::vector<char>& out, T v) {
  const size_t n = out.size();
  out.resize(n + sizeof(T));
  std::memcpy(out.data() + n, &v, sizeof(T));
}

std::vector<char> header(uint64_t count, uint32_t version = 1) {
  std::vector<char> h = {'M', 'M', 'G', 'R', 'A', 'D', 'C', 'K'};
  put<uint32_t>(h, version);
  put<uint64_t>(h, count);
  put<uint32_t>(
      h, static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(h.data()), h.size())));
  return h;
}

}  // namespace

TEST_CASE("checkpoint: round trip of every dtype, 0-d, empty and non-contiguous tensors") {
  CkptDir tmp;
  const double inf = std::numeric_limits<double>::infinity();
  Tensor m = Tensor::from_vector({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3}, kFloat64);
  nn::StateDict state = {
      {"f32", Tensor::randn({3, 4, 2}, kFloat32)},
      {"f64", Tensor::from_vector({-0.0, inf, -inf, NAN, 1e-300, 1.5}, {6}, kFloat64)},
      {"i64", Tensor::from_vector(std::vector<int64_t>{std::numeric_limits<int64_t>::min(), -1, 0,
                                                       std::numeric_limits<int64_t>::max()},
                                  {2, 2})},
      {"bool", Tensor::from_vector(std::vector<bool>{true, false, true}, {3})},
      {"scalar", Tensor::scalar(3.25, kFloat32)},
      {"int_scalar", Tensor::scalar(42, kInt64)},
      {"empty", Tensor::zeros({0}, kFloat32)},
      {"empty_3d", Tensor::zeros({2, 0, 3}, kInt64)},
      {"transposed", m.t()},
      {"encoder.layers.0.attn.in_proj_weight", Tensor::ones({1, 1, 1, 1, 1, 1, 1, 1}, kFloat64)},
      {"param", Tensor::randn({5}, kFloat64).requires_grad_()},
  };
  REQUIRE_FALSE(state[8].second.is_contiguous());
  const std::string path = tmp / "model.ckpt";
  save(state, path);
  nn::StateDict loaded = load_state_dict(path);
  check_same(loaded, state);
  CHECK(loaded[8].second.to_vector<double>() == std::vector<double>{1, 4, 2, 5, 3, 6});
  CHECK(loaded[3].second.to_vector<bool>() == std::vector<bool>{true, false, true});
  CHECK(loaded[4].second.dim() == 0);
  CHECK(loaded[4].second.item() == 3.25);
  // An empty state dict is a valid checkpoint too.
  save(nn::StateDict{}, tmp / "empty.ckpt");
  CHECK(load_state_dict(tmp / "empty.ckpt").empty());
  // Saving again replaces the file; no temporary file is left behind.
  save(small_state(), path);
  check_same(load_state_dict(path, Device::CPU), small_state());
  int files = 0;
  for (const auto& e : fs::directory_iterator(tmp.dir)) {
    CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
    ++files;
  }
  CHECK(files == 2);
}

TEST_CASE("checkpoint: the file layout follows the documented format") {
  CkptDir tmp;
  const std::string path = tmp / "one.ckpt";
  save({{"w", Tensor::from_vector({1.5f, -2.0f}, {2})}}, path);
  std::vector<char> b = read_chars(path);
  // header 24 + record (4 + 1 + 1 + 1 + 8 + 8 + 8 + 4) + end marker 8
  REQUIRE(b.size() == 24 + 35 + 8);
  CHECK(std::string(b.data(), 8) == "MMGRADCK");
  uint32_t version;
  uint64_t count;
  std::memcpy(&version, &b[8], 4);
  std::memcpy(&count, &b[12], 8);
  CHECK(version == 1);
  CHECK(count == 1);
  uint32_t name_len;
  std::memcpy(&name_len, &b[24], 4);
  CHECK(name_len == 1);
  CHECK(b[28] == 'w');
  CHECK(b[29] == 0);  // float32
  CHECK(b[30] == 1);  // ndim
  int64_t dim;
  uint64_t nbytes;
  std::memcpy(&dim, &b[31], 8);
  std::memcpy(&nbytes, &b[39], 8);
  CHECK(dim == 2);
  CHECK(nbytes == 8);
  float v[2];
  std::memcpy(v, &b[47], 8);
  CHECK(v[0] == 1.5f);
  CHECK(v[1] == -2.0f);
  uint32_t crc;
  std::memcpy(&crc, &b[55], 4);
  CHECK(crc == crc32(0L, reinterpret_cast<const Bytef*>(&b[24]), 31));
  CHECK(std::string(&b[59], 8) == "CKPT_END");
}

TEST_CASE("checkpoint: truncation at every byte is an error, never a crash") {
  CkptDir tmp;
  const std::string path = tmp / "full.ckpt";
  save(small_state(), path);
  const std::vector<char> full = read_chars(path);
  REQUIRE(full.size() > 24);
  const std::string cut = tmp / "cut.ckpt";
  for (size_t len = 0; len < full.size(); ++len) {
    CAPTURE(len);
    write_chars(cut, std::vector<char>(full.begin(), full.begin() + len));
    std::string msg;
    try {
      load_state_dict(cut);
    } catch (const Error& e) {
      msg = e.what();
    }
    REQUIRE_FALSE(msg.empty());  // it threw mmgrad::Error (anything else fails the test)
    CHECK(msg.find(cut) != std::string::npos);
    const bool says_truncated = msg.find("truncated") != std::string::npos ||
                                (len == 0 && msg.find("empty") != std::string::npos);
    CHECK_MESSAGE(says_truncated, msg);
  }
  // Cut exactly after the second record: the missing record / end marker is noticed.
  write_chars(cut, std::vector<char>(full.begin(), full.end() - 8));
  CHECK_THROWS_WITH_AS(load_state_dict(cut), Contains("end marker"), Error);
  // Bytes after the end marker.
  std::vector<char> longer = full;
  longer.push_back('x');
  write_chars(cut, longer);
  CHECK_THROWS_WITH_AS(load_state_dict(cut), Contains("after the end marker"), Error);
}

TEST_CASE("checkpoint: every flipped byte is detected, data corruption names the tensor") {
  CkptDir tmp;
  const std::string path = tmp / "full.ckpt";
  save(small_state(), path);
  const std::vector<char> full = read_chars(path);
  const std::string bad = tmp / "bad.ckpt";
  for (size_t i = 0; i < full.size(); ++i) {
    CAPTURE(i);
    std::vector<char> b = full;
    b[i] = static_cast<char>(b[i] ^ 0x5A);
    write_chars(bad, b);
    CHECK_THROWS_AS(load_state_dict(bad), Error);
  }
  // The data of tensor 1 ('b.scale', a float64 scalar) starts after the header (24), record 0
  // (4 + 1 + 2 + 8 + 8 + 12 + 4 = 39) and record 1's fields (4 + 7 + 2 + 8 = 21).
  std::vector<char> b = full;
  b[24 + 39 + 21 + 3] ^= 0x01;
  write_chars(bad, b);
  CHECK_THROWS_WITH_AS(load_state_dict(bad), Contains("CRC mismatch in tensor 1 of 3 ('b.scale')"),
                       Error);
  // A flipped bit in the header's tensor count.
  b = full;
  b[12] ^= 0x02;
  write_chars(bad, b);
  CHECK_THROWS_WITH_AS(load_state_dict(bad), Contains("header CRC"), Error);
}

TEST_CASE("checkpoint: not a checkpoint, wrong version, absurd sizes") {
  CkptDir tmp;
  const std::string p = tmp / "x.ckpt";
  write_chars(p, {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '\n'});
  CHECK_THROWS_WITH_AS(load_state_dict(p), Contains("not an mmgrad checkpoint"), Error);
  write_chars(p, {'P', 'K'});
  CHECK_THROWS_WITH_AS(load_state_dict(p), Contains("not an mmgrad checkpoint"), Error);
  CHECK_THROWS_WITH_AS(load_state_dict(tmp / "missing.ckpt"), Contains("cannot open"), Error);
  CHECK_THROWS_WITH_AS(load_state_dict(tmp.dir.string()), Contains("not a regular file"), Error);

  std::vector<char> b = header(0, 7);
  b.insert(b.end(), {'C', 'K', 'P', 'T', '_', 'E', 'N', 'D'});
  write_chars(p, b);
  CHECK_THROWS_WITH_AS(load_state_dict(p), Contains("unsupported checkpoint format version 7"),
                       Error);

  // A (CRC-valid) header announcing 2^60 tensors: rejected before reserving anything.
  b = header(uint64_t{1} << 60);
  write_chars(p, b);
  CHECK_THROWS_WITH_AS(load_state_dict(p), Contains("announces"), Error);

  // Records with absurd fields. Each is caught before any allocation of that size.
  auto record = [](uint32_t name_len, uint8_t dtype, std::vector<int64_t> dims, uint64_t nbytes) {
    std::vector<char> r = header(1);
    put<uint32_t>(r, name_len);
    r.push_back('x');
    r.push_back(static_cast<char>(dtype));
    r.push_back(static_cast<char>(dims.size()));
    for (int64_t d : dims) put<int64_t>(r, d);
    put<uint64_t>(r, nbytes);
    r.insert(r.end(), 64, '\0');  // some bytes of "data"
    return r;
  };
  write_chars(p, record(1u << 30, 0, {1}, 4));
  CHECK_THROWS_WITH_AS(load_state_dict(p), Contains("name length"), Error);
  write_chars(p, record(1, 9, {1}, 4));
  CHECK_THROWS_WITH_AS(load_state_dict(p), Contains("unknown dtype code 9"), Error);
  write_chars(p, record(1, 0, {1, 1, 1, 1, 1, 1, 1, 1, 1}, 4));
  CHECK_THROWS_WITH_AS(load_state_dict(p), Contains("9 dimensions"), Error);
  write_chars(p, record(1, 0, {-3}, 4));
  CHECK_THROWS_WITH_AS(load_state_dict(p), Contains("dimension 0 of size -3"), Error);
  write_chars(p, record(1, 1, {int64_t{1} << 40, int64_t{1} << 40}, 0));
  CHECK_THROWS_WITH_AS(load_state_dict(p), Contains("impossible shape"), Error);
  write_chars(p, record(1, 0, {1 << 20}, 12));
  CHECK_THROWS_WITH_AS(load_state_dict(p), Contains("declares 12 data bytes"), Error);
  // 2^40 float64 elements = 8 TiB: consistent, but far more than the file holds.
  write_chars(p, record(1, 1, {int64_t{1} << 40}, uint64_t{8} << 40));
  CHECK_THROWS_WITH_AS(load_state_dict(p), Contains("truncated"), Error);
}

TEST_CASE("AtomicFile: the file appears whole at commit, or not at all") {
  CkptDir tmp;
  auto entries = [&] {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(tmp.dir)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  };
  const std::string path = tmp / "a.txt";
  write_file_atomic(path, "old", "test");
  {
    // Before commit the bytes sit in a temporary file beside the target; the old file is intact.
    AtomicFile f(path, "test");
    f.write("new", 3);
    f.write(" bytes", 6);
    CHECK(fs::path(f.temp_path()).parent_path() == tmp.dir);
    CHECK(fs::exists(f.temp_path()));
    CHECK(read_chars(path) == std::vector<char>{'o', 'l', 'd'});
    f.commit();
    CHECK_FALSE(fs::exists(f.temp_path()));
    CHECK_THROWS_WITH_AS(f.write("x", 1), Contains("already committed"), Error);
  }
  const std::string want = "new bytes";
  CHECK(read_chars(path) == std::vector<char>(want.begin(), want.end()));
  {
    // Abandoned (an exception between writes): the temporary goes, the file stays as it was.
    AtomicFile f(path, "test");
    f.write("half", 4);
  }
  CHECK(read_chars(path) == std::vector<char>(want.begin(), want.end()));
  CHECK(entries() == std::vector<std::string>{"a.txt"});
  // Errors start with the op and name the file; write_file_atomic creates missing folders,
  // AtomicFile alone does not.
  CHECK_THROWS_WITH_AS(AtomicFile(tmp / "no/dir/b.txt", "myop"), Contains("myop: cannot write"),
                       Error);
  CHECK_THROWS_WITH_AS(AtomicFile(tmp / "no/dir/b.txt", "myop"), Contains("no/dir/b.txt"), Error);
  write_file_atomic(tmp / "new/dir/c.txt", "c", "test");
  CHECK(read_chars(tmp / "new/dir/c.txt") == std::vector<char>{'c'});
  CHECK_THROWS_WITH_AS(write_file_atomic("", "x", "myop"), Contains("myop: empty output path"),
                       Error);
}

TEST_CASE("checkpoint: atomic writes leave no partial file behind") {
  CkptDir tmp;
  // Into a directory that does not exist: an error, and nothing is created.
  const std::string nowhere = tmp / "no/such/dir/model.ckpt";
  CHECK_THROWS_WITH_AS(save(small_state(), nowhere), Contains("no/such/dir/model.ckpt"), Error);
  CHECK_FALSE(fs::exists(tmp / "no"));

  // The target is a directory: the rename fails after the data was written; the temporary file
  // is removed and the directory untouched.
  const std::string target = tmp / "occupied";
  fs::create_directories(target);
  CHECK_THROWS_WITH_AS(save(small_state(), target), Contains("cannot rename"), Error);
  int entries = 0;
  for (const auto& e : fs::directory_iterator(tmp.dir)) {
    (void)e;
    ++entries;
  }
  CHECK(entries == 1);  // only "occupied"
  CHECK(fs::is_directory(target));

  // A failing save (bad input) keeps the previous checkpoint intact.
  const std::string path = tmp / "good.ckpt";
  save(small_state(), path);
  const std::vector<char> before = read_chars(path);
  CHECK_THROWS_WITH_AS(save({{"x", Tensor()}}, path), Contains("'x' is undefined"), Error);
  CHECK_THROWS_WITH_AS(save({{"x", Tensor::ones({1})}, {"x", Tensor::ones({1})}}, path),
                       Contains("duplicate name 'x'"), Error);
  CHECK_THROWS_WITH_AS(save({{"", Tensor::ones({1})}}, path), Contains("name of 0 bytes"), Error);
  CHECK_THROWS_WITH_AS(save({{std::string(5000, 'n'), Tensor::ones({1})}}, path),
                       Contains("name of 5000 bytes"), Error);
  CHECK(read_chars(path) == before);
}

TEST_CASE("checkpoint: loading onto a device") {
  CkptDir tmp;
  save(small_state(), tmp / "s.ckpt");
  if (!cuda_available()) {
    CHECK_THROWS_AS(load_state_dict(tmp / "s.ckpt", Device::CUDA), Error);
    MESSAGE("no CUDA device: only the error path of load_state_dict(path, kCUDA) was tested");
    return;
  }
  nn::StateDict s = load_state_dict(tmp / "s.ckpt", Device::CUDA);
  for (const auto& kv : s) CHECK(kv.second.device() == Device::CUDA);
  CHECK(s[0].second.to_vector<float>() == std::vector<float>{1.0f, -2.0f, 3.5f});
}

// ---- optimizer checkpoints ----------------------------------------------------------------------
namespace {

// A tiny least-squares model: loss = mean((x W + b - y)^2).
struct Tiny {
  Tensor w, b;
  Tiny() {
    Generator gen(7);
    w = Tensor::randn({3, 2}, kFloat32, &gen).requires_grad_();
    b = Tensor::zeros({2}, kFloat32).requires_grad_();
  }
  nn::StateDict state() const { return {{"w", w.detach()}, {"b", b.detach()}}; }
  void load(const nn::StateDict& s) {
    NoGradGuard no_grad;
    w.copy_(s.at(0).second);
    b.copy_(s.at(1).second);
  }
};

void train_steps(Tiny& m, optim::Optimizer& opt, int from, int to) {
  for (int t = from; t < to; ++t) {
    Generator gen(100 + t);
    Tensor x = Tensor::randn({8, 3}, kFloat32, &gen);
    Tensor y = Tensor::randn({8, 2}, kFloat32, &gen);
    opt.zero_grad();
    Tensor loss = square(matmul(x, m.w) + m.b - y).mean();
    loss.backward();
    opt.step();
  }
}

template <class Opt, class Options>
void check_resume(const Options& options) {
  CkptDir tmp;
  // Straight through: 6 steps.
  Tiny a;
  Opt opt_a({a.w, a.b}, options);
  train_steps(a, opt_a, 0, 6);
  // 3 steps, checkpoint model and optimizer, then a fresh model and optimizer continue.
  Tiny b;
  {
    Opt opt_b({b.w, b.b}, options);
    train_steps(b, opt_b, 0, 3);
    save(b.state(), tmp / "model.ckpt");
    save(opt_b, tmp / "optim.ckpt");
  }
  Tiny c;
  c.load(load_state_dict(tmp / "model.ckpt"));
  Opt opt_c({c.w, c.b}, options);
  load(opt_c, tmp / "optim.ckpt");
  train_steps(c, opt_c, 3, 6);
  CHECK(c.w.to_vector<float>() == a.w.to_vector<float>());  // bit for bit
  CHECK(c.b.to_vector<float>() == a.b.to_vector<float>());
  // Without the optimizer state the result differs (the test can tell).
  Tiny d;
  d.load(load_state_dict(tmp / "model.ckpt"));
  Opt opt_d({d.w, d.b}, options);
  train_steps(d, opt_d, 3, 6);
  CHECK(d.w.to_vector<float>() != a.w.to_vector<float>());
}

}  // namespace

TEST_CASE("checkpoint: optimizer save/load continues training identically") {
  SUBCASE("Adam") { check_resume<optim::Adam>(optim::AdamOptions{.lr = 0.05}); }
  SUBCASE("AdamW") {
    check_resume<optim::AdamW>(optim::AdamWOptions{.lr = 0.05, .weight_decay = 0.1});
  }
  SUBCASE("SGD momentum") {
    check_resume<optim::SGD>(optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true});
  }
}

TEST_CASE("checkpoint: loading optimizer state that does not fit is refused") {
  CkptDir tmp;
  Tiny m;
  optim::Adam opt({m.w, m.b}, {.lr = 0.05});
  train_steps(m, opt, 0, 2);
  save(opt, tmp / "adam.ckpt");
  // Other parameter count, other shapes, other optimizer: errors naming the file.
  Tensor lone = Tensor::zeros({3, 2}).requires_grad_();
  optim::Adam one({lone});
  CHECK_THROWS_WITH_AS(load(one, tmp / "adam.ckpt"), Contains("adam.ckpt"), Error);
  CHECK_THROWS_WITH_AS(load(one, tmp / "adam.ckpt"), Contains("2 parameters"), Error);
  Tensor w2 = Tensor::zeros({2, 3}).requires_grad_(), b2 = Tensor::zeros({2}).requires_grad_();
  optim::Adam swapped({w2, b2});
  CHECK_THROWS_WITH_AS(load(swapped, tmp / "adam.ckpt"), Contains("state.0.exp_avg"), Error);
  CHECK(swapped.state_dict().size() == 7);  // still no state
  optim::SGD sgd({m.w, m.b}, {.lr = 0.1});
  CHECK_THROWS_WITH_AS(load(sgd, tmp / "adam.ckpt"), Contains("unexpected entry"), Error);
}

// ---- module checkpoints -------------------------------------------------------------------------
namespace {

struct TwoLayer : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc2;
  TwoLayer(int64_t hidden = 4, bool bias2 = true) {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(3, hidden));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(hidden, 2, bias2));
  }
  std::string name() const override { return "TwoLayer"; }
  Tensor forward(const Tensor& x) override { return fc2->forward(fc1->forward(x).relu()); }
};

std::vector<std::vector<float>> values(const nn::Module& m) {
  std::vector<std::vector<float>> out;
  for (const auto& kv : m.state_dict()) out.push_back(kv.second.to_vector<float>());
  return out;
}

}  // namespace

TEST_CASE("checkpoint: module save/load round trip") {
  CkptDir tmp;
  manual_seed(1);
  auto a = std::make_shared<TwoLayer>();
  manual_seed(2);
  auto b = std::make_shared<TwoLayer>();
  REQUIRE(values(*a) != values(*b));
  save(*a, tmp / "a.ckpt");
  load(*b, tmp / "a.ckpt");
  CHECK(values(*b) == values(*a));
  // The loaded values went into b's own tensors (an optimizer's handles see them).
  CHECK_FALSE(b->fc1->weight.same(a->fc1->weight));
  Tensor x = Tensor::randn({5, 3});
  CHECK(b->forward(x).to_vector<float>() == a->forward(x).to_vector<float>());
  // The names in the file are the module's dotted names.
  nn::StateDict sd = load_state_dict(tmp / "a.ckpt");
  REQUIRE(sd.size() == 4);
  CHECK(sd[0].first == "fc1.weight");
  CHECK(sd[3].first == "fc2.bias");
}

TEST_CASE("checkpoint: loading a mismatched, partial or broken file leaves the module unchanged") {
  CkptDir tmp;
  manual_seed(3);
  auto model = std::make_shared<TwoLayer>();
  const auto before = values(*model);

  auto wider = std::make_shared<TwoLayer>(5);
  save(*wider, tmp / "wider.ckpt");
  CHECK_THROWS_WITH_AS(load(*model, tmp / "wider.ckpt"), Contains("wider.ckpt"), Error);
  CHECK_THROWS_WITH_AS(load(*model, tmp / "wider.ckpt"), Contains("'fc1.weight' has shape [5, 3]"),
                       Error);
  CHECK(values(*model) == before);

  // Missing (the file has no fc2.bias) and extra tensors.
  auto no_bias = std::make_shared<TwoLayer>(4, false);
  save(*no_bias, tmp / "no_bias.ckpt");
  CHECK_THROWS_WITH_AS(load(*model, tmp / "no_bias.ckpt"), Contains("missing 'fc2.bias'"), Error);
  CHECK(values(*model) == before);
  CHECK_THROWS_WITH_AS(load(*no_bias, tmp / "wider.ckpt"), Contains("unexpected 'fc2.bias'"),
                       Error);
  nn::StateDict extra = model->state_dict();
  extra.emplace_back("fc3.weight", Tensor::zeros({2, 2}));
  save(extra, tmp / "extra.ckpt");
  CHECK_THROWS_WITH_AS(load(*model, tmp / "extra.ckpt"), Contains("unexpected 'fc3.weight'"),
                       Error);
  CHECK(values(*model) == before);
  // Non-strict loading takes what matches.
  load(*model, tmp / "no_bias.ckpt", /*strict=*/false);
  CHECK(model->fc1->weight.to_vector<float>() == no_bias->fc1->weight.to_vector<float>());
  CHECK(model->fc2->bias.to_vector<float>() == before[3]);

  // A dtype mismatch.
  auto f64 = std::make_shared<TwoLayer>();
  f64->to(kFloat64);
  save(*f64, tmp / "f64.ckpt");
  const auto now = values(*model);
  CHECK_THROWS_WITH_AS(load(*model, tmp / "f64.ckpt"), Contains("float64"), Error);
  // Truncated and corrupt files.
  std::vector<char> bytes = read_chars(tmp / "f64.ckpt");
  bytes.resize(bytes.size() / 2);
  write_chars(tmp / "half.ckpt", bytes);
  CHECK_THROWS_WITH_AS(load(*model, tmp / "half.ckpt"), Contains("truncated"), Error);
  write_chars(tmp / "junk.ckpt", {'{', '"', 'a', '"', ':', '1', '}'});
  CHECK_THROWS_WITH_AS(load(*model, tmp / "junk.ckpt"), Contains("not an mmgrad checkpoint"),
                       Error);
  CHECK(values(*model) == now);
}

TEST_CASE("checkpoint: module + Adam resume gives the same parameters as training straight") {
  CkptDir tmp;
  auto batch = [](int t) {
    Generator gen(500 + t);
    Tensor x = Tensor::randn({8, 3}, kFloat32, &gen);
    Tensor y = Tensor::randn({8, 2}, kFloat32, &gen);
    return std::make_pair(x, y);
  };
  auto train = [&](TwoLayer& m, optim::Optimizer& opt, int from, int to) {
    for (int t = from; t < to; ++t) {
      auto [x, y] = batch(t);
      opt.zero_grad();
      square(m.forward(x) - y).mean().backward();
      optim::clip_grad_norm_(m.parameters(), 0.5);
      opt.step();
    }
  };
  manual_seed(11);
  auto a = std::make_shared<TwoLayer>();
  manual_seed(11);
  auto b = std::make_shared<TwoLayer>();
  REQUIRE(values(*a) == values(*b));
  optim::AdamW opt_a(a->parameters(), {.lr = 0.02});
  train(*a, opt_a, 0, 8);
  {
    optim::AdamW opt_b(b->parameters(), {.lr = 0.02});
    train(*b, opt_b, 0, 4);
    save(*b, tmp / "model.ckpt");
    save(opt_b, tmp / "optim.ckpt");
  }
  manual_seed(99);  // a differently initialised model: everything must come from the files
  auto c = std::make_shared<TwoLayer>();
  optim::AdamW opt_c(c->parameters(), {.lr = 0.02});
  load(*c, tmp / "model.ckpt");
  load(opt_c, tmp / "optim.ckpt");
  train(*c, opt_c, 4, 8);
  CHECK(values(*c) == values(*a));
}
