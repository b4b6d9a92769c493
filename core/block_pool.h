// BlockPool: a per-thread cache of freed small blocks, for the objects every op creates.
//
// Each op on a tensor creates a few small heap objects: the output's TensorImpl and Storage (the
// state behind a Tensor handle, tensor/tensor.h) and, when it is recorded, its autograd Node.
// Each is one malloc and one free, and on a 1-element tensor those calls are a good part of an
// op's whole cost (the C library's malloc and free run ~150 instructions per pair). So these
// objects are made with std::allocate_shared and a PoolAllocator: a freed block goes onto a
// small free list of its thread and its size, and the next object of that size takes it back in
// a few instructions. A block freed on another thread than the one that allocated it simply
// joins that other thread's list: every block of a size is interchangeable.
//
// Only what fits a size class is pooled (at most kMaxPooledBytes), at most kBlocksPerSize per
// size and thread; the rest goes to operator new/delete as usual. Under AddressSanitizer the
// pool is off, so a use after free of these objects is still reported.
#pragma once

#include <cstddef>
#include <new>

namespace mmgrad {

namespace detail {

inline constexpr size_t kMaxPooledBytes = 1024;
inline constexpr int kBlocksPerSize = 16;

#if defined(__SANITIZE_ADDRESS__)
#define MMGRAD_BLOCK_POOL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MMGRAD_BLOCK_POOL 0
#endif
#endif
#ifndef MMGRAD_BLOCK_POOL
#define MMGRAD_BLOCK_POOL 1
#endif

// The free blocks of one size on one thread: plain data, so the thread_local needs no
// construction guard and stays usable to the thread's very end.
struct FreeBlocks {
  void* blocks[kBlocksPerSize];
  int n;
  bool reaper_armed;  // a Reaper will return the blocks when the thread exits
  bool closed;        // the Reaper ran: blocks freed from now on go straight to operator delete
};

template <size_t Bytes>
inline thread_local FreeBlocks t_free_blocks{};

// Returns a thread's cached blocks of one size to operator delete when the thread exits.
template <size_t Bytes>
struct Reaper {
  ~Reaper() {
    FreeBlocks& list = t_free_blocks<Bytes>;
    while (list.n > 0) ::operator delete(list.blocks[--list.n]);
    list.closed = true;
  }
};

template <size_t Bytes>
void arm_reaper() {
  thread_local Reaper<Bytes> reaper;  // constructed (and its exit hook registered) once
  (void)reaper;
  t_free_blocks<Bytes>.reaper_armed = true;
}

}  // namespace detail

// A std allocator (for std::allocate_shared) that recycles single blocks of up to
// kMaxPooledBytes through the thread's free list for their size.
template <class T>
struct PoolAllocator {
  using value_type = T;
  PoolAllocator() = default;
  template <class U>
  PoolAllocator(const PoolAllocator<U>&) {}  // NOLINT(google-explicit-constructor): rebinding

  static constexpr bool kPooled = MMGRAD_BLOCK_POOL && sizeof(T) <= detail::kMaxPooledBytes &&
                                  alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__;

  T* allocate(size_t n) {
    if constexpr (kPooled) {
      if (n == 1) {
        detail::FreeBlocks& list = detail::t_free_blocks<sizeof(T)>;
        if (list.n > 0) return static_cast<T*>(list.blocks[--list.n]);
      }
    }
    return static_cast<T*>(::operator new(n * sizeof(T)));
  }
  void deallocate(T* p, size_t n) {
    if constexpr (kPooled) {
      if (n == 1) {
        detail::FreeBlocks& list = detail::t_free_blocks<sizeof(T)>;
        if (list.n < detail::kBlocksPerSize && !list.closed) {
          if (!list.reaper_armed) detail::arm_reaper<sizeof(T)>();
          list.blocks[list.n++] = p;
          return;
        }
      }
    }
    ::operator delete(p);
  }
  template <class U>
  bool operator==(const PoolAllocator<U>&) const {
    return true;
  }
};

}  // namespace mmgrad
