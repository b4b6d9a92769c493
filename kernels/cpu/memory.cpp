// CPU memory: a caching allocator.
//
// On these VMs a page fault costs ~12-16 us, so returning a large buffer to the OS and faulting
// it in again each training step can cost more than the arithmetic done in it. Freed blocks are
// kept in size-class free lists and handed out again; the cache is capped (MMGRAD_CPU_CACHE_MB,
// default 4096) and emptied largest-first when full.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "mmgrad/kernels/cpu/cpu_backend.h"

namespace mmgrad::cpu {
namespace {

constexpr size_t kAlign = 64;  // one cache line; AVX-512 loads

// Size classes: multiples of 64 B up to 4 KiB, then 2^k and 1.5 * 2^k (at most 33% waste).
size_t size_class(size_t n) {
  if (n <= 4096) return (n + kAlign - 1) / kAlign * kAlign;
  size_t p = 4096;
  while (p < n) {
    if (p + p / 2 >= n) return p + p / 2;
    p *= 2;
  }
  return p;
}

// The cache's lock. Its critical sections are a few loads and stores, and it is taken twice per
// tensor (allocate, deallocate): a tiny op's outputs and gradients take it several times. A
// std::mutex costs two atomic read-modify-writes and two library calls per lock and unlock; this
// lock costs one atomic exchange and one plain store. When the lock is held (by another thread),
// the waiter yields its core instead of spinning: on a loaded machine the holder may need it.
class SpinLock {
 public:
  void lock() {
    while (locked_.exchange(true, std::memory_order_acquire)) {
      while (locked_.load(std::memory_order_relaxed)) std::this_thread::yield();
    }
  }
  void unlock() { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

// Free lists of the small classes (64 B .. 4 KiB) sit in a plain array indexed by class, so the
// many small tensors of a step (scalars, biases, norms' statistics) skip the map's search.
constexpr size_t kSmallClasses = 4096 / kAlign;

struct Cache {
  SpinLock mu;
  std::vector<void*> small_blocks[kSmallClasses];    // class (i + 1) * 64 B -> blocks
  std::map<size_t, std::vector<void*>> free_blocks;  // larger size class -> blocks
  AllocatorStats stats;
  size_t cap = 0;

  Cache() {
    const char* env = std::getenv("MMGRAD_CPU_CACHE_MB");
    cap = (env ? std::strtoull(env, nullptr, 10) : 4096ull) << 20;
  }
  ~Cache() { release_all(); }

  // The free list of size class cls (a value size_class returns).
  std::vector<void*>& blocks(size_t cls) {
    return cls <= 4096 ? small_blocks[cls / kAlign - 1] : free_blocks[cls];
  }

  // Frees one cached block, the largest there is; false when the cache is empty.
  bool free_largest() {
    while (!free_blocks.empty()) {
      auto last = std::prev(free_blocks.end());
      if (last->second.empty()) {
        free_blocks.erase(last);
        continue;
      }
      std::free(last->second.back());
      last->second.pop_back();
      stats.bytes_cached -= static_cast<int64_t>(last->first);
      return true;
    }
    for (size_t i = kSmallClasses; i-- > 0;) {
      if (small_blocks[i].empty()) continue;
      std::free(small_blocks[i].back());
      small_blocks[i].pop_back();
      stats.bytes_cached -= static_cast<int64_t>((i + 1) * kAlign);
      return true;
    }
    return false;
  }

  void release_all() {
    for (auto& [size, blocks] : free_blocks)
      for (void* p : blocks) std::free(p);
    free_blocks.clear();
    for (std::vector<void*>& list : small_blocks) {
      for (void* p : list) std::free(p);
      list.clear();
    }
    stats.bytes_cached = 0;
  }
};

// The machine's physical memory in bytes (0 if unknown). No single tensor can be larger: asking
// the C library for more either fails anyway or (with overcommit, and under AddressSanitizer,
// which aborts on requests beyond its own limit) succeeds only to crash when the pages are touched.
size_t physical_memory() {
  static const size_t bytes = [] {
    long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : 0;
  }();
  return bytes;
}

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: tensors may outlive static destruction
  return *c;
}

}  // namespace

void* CpuBackend::allocate(size_t nbytes) {
  const size_t ram = physical_memory();
  MMGRAD_CHECK(ram == 0 || nbytes <= ram, "out of CPU memory allocating ", nbytes,
               " bytes: more than the ", ram, " bytes of RAM of this machine");
  size_t cls = size_class(nbytes == 0 ? 1 : nbytes);
  Cache& c = cache();
  {
    std::lock_guard<SpinLock> lock(c.mu);
    std::vector<void*>* list = nullptr;
    if (cls <= 4096) {
      list = &c.small_blocks[cls / kAlign - 1];
    } else if (auto it = c.free_blocks.find(cls); it != c.free_blocks.end()) {
      list = &it->second;
    }
    c.stats.bytes_in_use += static_cast<int64_t>(cls);
    if (list && !list->empty()) {
      void* p = list->back();
      list->pop_back();
      c.stats.bytes_cached -= static_cast<int64_t>(cls);
      c.stats.cache_hits++;
      return p;
    }
    c.stats.os_allocations++;
  }
  void* p = std::aligned_alloc(kAlign, cls);
  if (!p) {
    // Out of memory: give the cache back and try once more before failing.
    {
      std::lock_guard<SpinLock> lock(c.mu);
      c.release_all();
    }
    p = std::aligned_alloc(kAlign, cls);
    if (!p) {
      std::lock_guard<SpinLock> lock(c.mu);  // nothing was handed out: undo the counts
      c.stats.bytes_in_use -= static_cast<int64_t>(cls);
      c.stats.os_allocations--;
    }
    MMGRAD_CHECK(p != nullptr, "out of CPU memory allocating ", nbytes, " bytes");
  }
  return p;
}

void CpuBackend::deallocate(void* ptr, size_t nbytes) {
  if (!ptr) return;
  size_t cls = size_class(nbytes == 0 ? 1 : nbytes);
  Cache& c = cache();
  std::lock_guard<SpinLock> lock(c.mu);
  c.stats.bytes_in_use -= static_cast<int64_t>(cls);
  if (cls > c.cap) {
    std::free(ptr);
    return;
  }
  // Make room by freeing the largest cached blocks first.
  while (static_cast<size_t>(c.stats.bytes_cached) + cls > c.cap && c.free_largest()) {
  }
  c.blocks(cls).push_back(ptr);
  c.stats.bytes_cached += static_cast<int64_t>(cls);
}

void CpuBackend::copy_to_host(void* host_dst, const void* src, size_t nbytes) {
  if (nbytes) std::memcpy(host_dst, src, nbytes);
}
void CpuBackend::copy_from_host(void* dst, const void* host_src, size_t nbytes) {
  if (nbytes) std::memcpy(dst, host_src, nbytes);
}

AllocatorStats allocator_stats() {
  std::lock_guard<SpinLock> lock(cache().mu);
  return cache().stats;
}

void empty_cache() {
  std::lock_guard<SpinLock> lock(cache().mu);
  cache().release_all();
}

}  // namespace mmgrad::cpu
