// Storage: a reference-counted block of device memory that tensors (and their views) share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "mmgrad/core/dtype.h"

namespace mmgrad {

class Storage {
 public:
  // Allocates nbytes on the device through its backend's caching allocator.
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

  // Bumped by every in-place write. Autograd records it when it saves a tensor for backward and
  // refuses to use the tensor if it changed in between (it would give silently wrong gradients).
  uint32_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_ = Device::CPU;
  uint32_t version_ = 0;
};

}  // namespace mmgrad
