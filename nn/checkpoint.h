// Checkpoints: named tensors (a module's or an optimizer's state) in one binary file.
//
// ---- File format, version 1 ---------------------------------------------------------------------
// All integers are little-endian; there is no padding.
//
//   header (24 bytes)
//     char[8]  magic          "MMGRADCK"
//     u32      version        1
//     u64      tensor count   n
//     u32      header CRC     zlib crc32 of the 20 bytes above
//   n tensor records, each:
//     u32      name length    L, 1 <= L <= 4096
//     u8[L]    name           UTF-8, e.g. "encoder.fc1.weight" (unique within the file)
//     u8       dtype code     0 float32, 1 float64, 2 int64, 3 bool (one byte, 0 or 1)
//     u8       ndim           0..8 (0: a scalar with one element)
//     i64[nd]  dims           each >= 0 (a 0 makes an empty tensor)
//     u64      byte count     numel * element size (checked)
//     u8[...]  data           row-major (C order), little-endian elements
//     u32      record CRC     zlib crc32 of the record from the name length through the data
//   end marker (8 bytes)      "CKPT_END"; nothing may follow it
//
// Reading checks every field before using it: the magic (is this a checkpoint at all?), the
// version, the header CRC, each size against what is left of the file (so a corrupt header can
// never trigger a huge allocation or a read past the end), each record's CRC, and the end marker
// (so a file cut short exactly between two records is still caught). Every problem throws
// mmgrad::Error naming the file, the tensor (index and name) and what is wrong.
//
// Writing is atomic (core/file_util.h, the writer every file of mmgrad goes through): the file is
// written to a temporary "<path>.tmp.<k>", flushed and fsync'ed, then renamed over <path>. A failed
// save leaves any previous file at <path> intact and removes its temporary file; a killed one
// leaves its temporary, which the next save of <path> reuses or removes. The folder must exist.
//
// A whole training run (model, optimizer, scheduler, random generators, step) goes to one such
// file through optim::TrainState (optim/train_state.h), which resumes bit-identically.
#pragma once

#include <string>

#include "mmgrad/nn/state_dict.h"

namespace mmgrad {

namespace nn {
class Module;
}

inline constexpr uint32_t kCheckpointVersion = 1;

// Writes the tensors in order (any device, any layout: they are copied to the CPU, contiguous).
// Names must be non-empty, at most 4096 bytes and unique; tensors must be defined.
void save(const nn::StateDict& state, const std::string& path);
// Reads a checkpoint; tensors are placed on the CPU (or on `device`).
nn::StateDict load_state_dict(const std::string& path);
nn::StateDict load_state_dict(const std::string& path, Device device);

// A module's state_dict(); load() reads the file and calls module.load_state_dict(state, strict),
// which checks for missing, extra and mismatched tensors and leaves the module unchanged on error.
void save(const nn::Module& module, const std::string& path);
void load(nn::Module& module, const std::string& path, bool strict = true);

// An optimizer's state goes to the same files through save(optimizer, path) and
// load(optimizer, path), declared in optim/optim.h: optim/ sits above nn/, so nn/ never includes
// it.

}  // namespace mmgrad
