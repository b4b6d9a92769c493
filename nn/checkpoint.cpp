// Checkpoint files: the writer (atomic: temp file, fsync, rename) and the validating reader.
// The format is specified at the top of nn/checkpoint.h.
#include "mmgrad/nn/checkpoint.h"

#include <sys/stat.h>
#include <zlib.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "mmgrad/autograd/grad_mode.h"
#include "mmgrad/core/file_util.h"
#include "mmgrad/nn/module.h"

namespace mmgrad {
namespace {

static_assert(std::endian::native == std::endian::little,
              "checkpoint I/O writes host-order integers and elements; add byte swapping for a "
              "big-endian host");

constexpr char kMagic[8] = {'M', 'M', 'G', 'R', 'A', 'D', 'C', 'K'};
constexpr char kEndMarker[8] = {'C', 'K', 'P', 'T', '_', 'E', 'N', 'D'};
constexpr uint32_t kMaxNameLength = 4096;
constexpr uint64_t kHeaderBytes = 8 + 4 + 8 + 4;
// The smallest possible record: name length, a 1-byte name, dtype, ndim, byte count, CRC.
constexpr uint64_t kMinRecordBytes = 4 + 1 + 1 + 1 + 8 + 4;

uint8_t dtype_code(DType t) {
  switch (t) {
    case DType::Float32:
      return 0;
    case DType::Float64:
      return 1;
    case DType::Int64:
      return 2;
    case DType::Bool:
      return 3;
  }
  return 255;
}

// zlib's crc32 takes 32-bit lengths: feed large buffers in pieces.
uint32_t crc_update(uint32_t crc, const void* data, uint64_t n) {
  const auto* p = static_cast<const Bytef*>(data);
  while (n > 0) {
    const uInt chunk = static_cast<uInt>(std::min<uint64_t>(n, 1u << 30));
    crc = static_cast<uint32_t>(crc32(crc, p, chunk));
    p += chunk;
    n -= chunk;
  }
  return crc;
}

std::string errno_text() { return std::strerror(errno); }

// ---- writing ----------------------------------------------------------------------------------
// The bytes go through the one atomic writer (core/file_util.h: a temporary file next to <path>,
// fsync, rename, removed on any failure); this class adds the running CRC of the format.
class Writer {
 public:
  explicit Writer(const std::string& path) : file_(path, "save") {}

  void put(const void* data, uint64_t n) {
    file_.write(data, n);
    crc_ = crc_update(crc_, data, n);
  }
  template <class T>
  void put_value(T v) {
    put(&v, sizeof(v));
  }
  void start_crc() { crc_ = static_cast<uint32_t>(crc32(0L, Z_NULL, 0)); }
  uint32_t crc() const { return crc_; }
  // Flush to the disk, then atomically replace <path>.
  void commit() { file_.commit(); }

 private:
  AtomicFile file_;
  uint32_t crc_ = 0;
};

// ---- reading ----------------------------------------------------------------------------------
class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path) {
    f_ = std::fopen(path.c_str(), "rb");
    MMGRAD_CHECK(f_ != nullptr, "load_state_dict: cannot open checkpoint '", path,
                 "': ", errno_text());
    struct stat st {};
    if (::fstat(fileno(f_), &st) != 0 || !S_ISREG(st.st_mode)) {
      std::fclose(f_);
      f_ = nullptr;
      fail(cat_str("load_state_dict: '", path, "' is not a regular file"));
    }
    size_ = static_cast<uint64_t>(st.st_size);
  }
  ~Reader() {
    if (f_) std::fclose(f_);
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  uint64_t remaining() const { return size_ - pos_; }
  const std::string& path() const { return path_; }

  // Reads exactly n bytes or throws "truncated" naming `where`.
  void get(void* dst, uint64_t n, const std::string& where) {
    MMGRAD_CHECK(n <= remaining(), "load_state_dict: '", path_, "' is truncated: ", where,
                 " needs ", n, " bytes but only ", remaining(), " remain (file size ", size_, ")");
    if (n == 0) return;
    MMGRAD_CHECK(std::fread(dst, 1, n, f_) == n, "load_state_dict: reading '", path_,
                 "' failed at byte ", pos_, " (", where, "): ", errno_text());
    pos_ += n;
    crc_ = crc_update(crc_, dst, n);
  }
  template <class T>
  T get_value(const std::string& where) {
    T v;
    get(&v, sizeof(v), where);
    return v;
  }
  void start_crc() { crc_ = static_cast<uint32_t>(crc32(0L, Z_NULL, 0)); }
  uint32_t crc() const { return crc_; }

 private:
  std::string path_;
  FILE* f_ = nullptr;
  uint64_t size_ = 0, pos_ = 0;
  uint32_t crc_ = 0;
};

// "tensor 3 of 10 ('fc.weight')" for messages.
std::string record_label(uint64_t i, uint64_t n, const std::string& name) {
  std::string s = cat_str("tensor ", i, " of ", n);
  if (!name.empty()) s += cat_str(" ('", name, "')");
  return s;
}

}  // namespace

// ---- save ---------------------------------------------------------------------------------------
void save(const nn::StateDict& state, const std::string& path) {
  MMGRAD_CHECK(!path.empty(), "save: the checkpoint path is empty");
  // Validate everything before creating any file.
  std::unordered_set<std::string> names;
  for (size_t i = 0; i < state.size(); ++i) {
    const auto& [name, t] = state[i];
    MMGRAD_CHECK(!name.empty() && name.size() <= kMaxNameLength, "save: '", path, "': entry ", i,
                 " has a name of ", name.size(), " bytes (expected 1..", kMaxNameLength, ")");
    MMGRAD_CHECK(names.insert(name).second, "save: '", path, "': duplicate name '", name, "'");
    MMGRAD_CHECK(t.defined(), "save: '", path, "': tensor '", name, "' is undefined");
  }

  Writer w(path);
  w.start_crc();
  w.put(kMagic, sizeof(kMagic));
  w.put_value<uint32_t>(kCheckpointVersion);
  w.put_value<uint64_t>(state.size());
  w.put_value<uint32_t>(w.crc());

  NoGradGuard no_grad;
  for (const auto& [name, tensor] : state) {
    // A dense CPU copy only when needed (a contiguous CPU tensor is written as is).
    Tensor t = tensor.detach();
    if (!t.is_contiguous()) t = t.contiguous();
    if (t.device() != Device::CPU) t = t.cpu();
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();

    w.start_crc();
    w.put_value<uint32_t>(static_cast<uint32_t>(name.size()));
    w.put(name.data(), name.size());
    w.put_value<uint8_t>(dtype_code(t.dtype()));
    w.put_value<uint8_t>(static_cast<uint8_t>(t.dim()));
    for (int d = 0; d < t.dim(); ++d) w.put_value<int64_t>(t.size(d));
    w.put_value<uint64_t>(nbytes);
    if (nbytes > 0) w.put(t.raw_data(), nbytes);
    w.put_value<uint32_t>(w.crc());
  }
  w.put(kEndMarker, sizeof(kEndMarker));
  w.commit();
}

// ---- load ---------------------------------------------------------------------------------------
nn::StateDict load_state_dict(const std::string& path) {
  Reader r(path);
  const std::string& p = r.path();

  // Header. A file that does not start with the magic is not a checkpoint at all; one that is
  // shorter than the magic but agrees with it so far is a truncated checkpoint.
  char magic[8] = {};
  const uint64_t have = std::min<uint64_t>(r.remaining(), sizeof(magic));
  r.start_crc();
  r.get(magic, have, "the magic number");
  MMGRAD_CHECK(std::memcmp(magic, kMagic, have) == 0, "load_state_dict: '", p,
               "' is not an mmgrad checkpoint (bad magic number; expected the file to start with "
               "\"MMGRADCK\")");
  MMGRAD_CHECK(have > 0, "load_state_dict: '", p, "' is empty (0 bytes): not a checkpoint");
  MMGRAD_CHECK(have == sizeof(magic), "load_state_dict: '", p, "' is truncated: only ", have,
               " bytes, inside the header");
  const auto version = r.get_value<uint32_t>("the header (format version)");
  MMGRAD_CHECK(version == kCheckpointVersion, "load_state_dict: '", p,
               "' has unsupported checkpoint format version ", version,
               " (this build reads version ", kCheckpointVersion, ")");
  const auto count = r.get_value<uint64_t>("the header (tensor count)");
  const uint32_t header_crc = r.crc();
  const auto stored_header_crc = r.get_value<uint32_t>("the header (CRC)");
  MMGRAD_CHECK(stored_header_crc == header_crc, "load_state_dict: '", p,
               "' is corrupt: header CRC mismatch");
  MMGRAD_CHECK(count <= r.remaining() / kMinRecordBytes, "load_state_dict: '", p,
               "' is corrupt or truncated: the header announces ", count, " tensors but only ",
               r.remaining(), " bytes follow");

  nn::StateDict out;
  out.reserve(count);
  std::unordered_set<std::string> names;
  for (uint64_t i = 0; i < count; ++i) {
    std::string label = record_label(i, count, "");
    r.start_crc();
    const auto name_len = r.get_value<uint32_t>(label + ", name length");
    MMGRAD_CHECK(name_len >= 1 && name_len <= kMaxNameLength, "load_state_dict: '", p,
                 "' is corrupt: ", label, " has a name length of ", name_len, " (expected 1..",
                 kMaxNameLength, ")");
    std::string name(name_len, '\0');
    r.get(name.data(), name_len, label + ", name");
    label = record_label(i, count, name);

    const auto code = r.get_value<uint8_t>(label + ", dtype");
    MMGRAD_CHECK(code <= 3, "load_state_dict: '", p, "' is corrupt: ", label,
                 " has unknown dtype code ", static_cast<int>(code));
    const DType dtype = code == 0   ? DType::Float32
                        : code == 1 ? DType::Float64
                        : code == 2 ? DType::Int64
                                    : DType::Bool;
    const auto ndim = r.get_value<uint8_t>(label + ", ndim");
    MMGRAD_CHECK(ndim <= kMaxDims, "load_state_dict: '", p, "' is corrupt: ", label, " has ",
                 static_cast<int>(ndim), " dimensions (at most ", kMaxDims, ")");
    Shape shape;
    // numel * element size must stay representable; the byte count check below then bounds it
    // by the file size, so no corrupt header can make us allocate more than the file holds.
    const uint64_t limit = std::numeric_limits<int64_t>::max() / 8;
    uint64_t numel = 1;
    for (int d = 0; d < ndim; ++d) {
      const auto dim = r.get_value<int64_t>(label + ", dims");
      MMGRAD_CHECK(dim >= 0 && static_cast<uint64_t>(dim) <= limit, "load_state_dict: '", p,
                   "' is corrupt: ", label, " has dimension ", d, " of size ", dim);
      shape.push_back(dim);
      if (numel != 0 && dim != 0) {
        MMGRAD_CHECK(numel <= limit / static_cast<uint64_t>(dim), "load_state_dict: '", p,
                     "' is corrupt: ", label, " has an impossible shape ", shape.str(), "...");
      }
      numel *= static_cast<uint64_t>(dim);
    }
    // Its strides must fit in int64 too, also when a 0 makes numel 0: [7.2e17, 0, 589824, 0]
    // passed every count check and overflowed in contiguous_strides (core/shape.h).
    MMGRAD_CHECK(layout_fits(shape), "load_state_dict: '", p, "' is corrupt: ", label,
                 " has an impossible shape ", shape.str(), " (its strides overflow int64)");
    const uint64_t expected_bytes = numel * dtype_size(dtype);
    const auto nbytes = r.get_value<uint64_t>(label + ", byte count");
    MMGRAD_CHECK(nbytes == expected_bytes, "load_state_dict: '", p, "' is corrupt: ", label, " (",
                 shape.str(), " ", dtype_name(dtype), ") declares ", nbytes,
                 " data bytes, expected ", expected_bytes);
    // Checked before allocating: a truncated file never causes a large allocation.
    MMGRAD_CHECK(nbytes <= r.remaining(), "load_state_dict: '", p, "' is truncated: ", label,
                 " needs ", nbytes, " data bytes but only ", r.remaining(), " remain");
    Tensor t = Tensor::empty(shape, dtype);
    r.get(nbytes > 0 ? t.raw_data() : nullptr, nbytes, label + ", data");
    const uint32_t crc = r.crc();
    const auto stored = r.get_value<uint32_t>(label + ", CRC");
    MMGRAD_CHECK(stored == crc, "load_state_dict: '", p, "' is corrupt: CRC mismatch in ", label);
    if (dtype == DType::Bool) {
      // Bools must be 0 or 1 (anything else would break logical ops); the CRC was fine, so
      // this is a writer bug or a deliberately crafted file.
      const auto* b = static_cast<const uint8_t*>(t.raw_data());
      for (uint64_t k = 0; k < numel; ++k)
        MMGRAD_CHECK(b[k] <= 1, "load_state_dict: '", p, "' is corrupt: ", label,
                     " holds a bool value ", static_cast<int>(b[k]));
    }
    MMGRAD_CHECK(names.insert(name).second, "load_state_dict: '", p, "' is corrupt: ", label,
                 " repeats a name");
    out.emplace_back(std::move(name), std::move(t));
  }

  char end[8];
  r.get(end, sizeof(end), "the end marker");
  MMGRAD_CHECK(std::memcmp(end, kEndMarker, sizeof(end)) == 0, "load_state_dict: '", p,
               "' is corrupt: bad end marker after ", count, " tensors");
  MMGRAD_CHECK(r.remaining() == 0, "load_state_dict: '", p, "' is corrupt: ", r.remaining(),
               " unexpected bytes after the end marker");
  return out;
}

nn::StateDict load_state_dict(const std::string& path, Device device) {
  nn::StateDict state = load_state_dict(path);
  if (device == Device::CPU) return state;
  for (auto& kv : state) kv.second = kv.second.to(device);
  return state;
}

// ---- modules ------------------------------------------------------------------------------------
void save(const nn::Module& module, const std::string& path) { save(module.state_dict(), path); }

void load(nn::Module& module, const std::string& path, bool strict) {
  nn::StateDict state = load_state_dict(path);
  try {
    module.load_state_dict(state, strict);  // validates everything before copying anything
  } catch (const Error& e) {
    fail(cat_str("load: checkpoint '", path, "': ", e.what()));
  }
}

}  // namespace mmgrad
