// CPU memory: a caching allocator.
//
// On these VMs a page fault costs ~12-16 us, so returning a large buffer to the OS and faulting
// it in again each training step can cost more than the arithmetic done in it. Freed blocks are
// kept in size-class free lists and handed out again (above 4 KiB also to a request of a smaller
// class, see kMaxLendRatio); the cache is capped (MMGRAD_CPU_CACHE_MB, default 4096) and emptied
// largest-first when full.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
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

// A request above 4 KiB that finds no free block of its class may take one of a larger class up
// to this many times its size (the smallest there is). A training step frees and allocates
// tensors of many sizes; with exact classes only, blocks freed by one phase (say the forward's
// 16 MiB activations) sit idle while the next phase (the backward's 8 MiB gradients) asks the OS
// for more, and the process holds far more than it ever uses at once (lesson 04's large CLIP:
// 338 MB obtained for 212 MB at most in use). A lent block wastes at most half of itself while
// the tensor lives, but it is memory the process holds already, where a new block would be pages
// faulted in on top of it; freed, it goes back to its own class.
constexpr size_t kMaxLendRatio = 2;

struct Cache {
  SpinLock mu;
  std::vector<void*> small_blocks[kSmallClasses];    // class (i + 1) * 64 B -> blocks
  std::map<size_t, std::vector<void*>> free_blocks;  // larger size class -> blocks
  std::unordered_map<void*, size_t> lent;            // block -> its class, where larger than asked
  AllocatorStats stats;
  size_t cap = 0;

  Cache() {
    const char* env = std::getenv("MMGRAD_CPU_CACHE_MB");
    cap = (env ? std::strtoull(env, nullptr, 10) : 4096ull) << 20;
  }
  ~Cache() { release_all(); }

  // A cached block for class cls, or null: one of that class, else (above 4 KiB) one of the
  // smallest larger class up to kMaxLendRatio times as large, lent (see `lent`). Counts it.
  void* take(size_t cls) {
    std::vector<void*>* list = nullptr;
    size_t got = cls;
    if (cls <= 4096) {
      list = &small_blocks[cls / kAlign - 1];
    } else {
      for (auto it = free_blocks.lower_bound(cls);
           it != free_blocks.end() && it->first <= kMaxLendRatio * cls; ++it) {
        if (it->second.empty()) continue;
        list = &it->second;
        got = it->first;
        break;
      }
    }
    if (!list || list->empty()) return nullptr;
    void* p = list->back();
    list->pop_back();
    if (got != cls) lent.emplace(p, got);
    stats.bytes_in_use += static_cast<int64_t>(got);
    stats.bytes_cached -= static_cast<int64_t>(got);
    stats.cache_hits++;
    return p;
  }

  // The class a block freed as class cls really has: a lent block goes back to its own list.
  size_t lent_class(void* p, size_t cls) {
    if (cls <= 4096 || lent.empty()) return cls;
    auto it = lent.find(p);
    if (it == lent.end()) return cls;
    const size_t real = it->second;
    lent.erase(it);
    return real;
  }

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
    if (void* p = c.take(cls)) return p;
    c.stats.bytes_in_use += static_cast<int64_t>(cls);
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
  cls = c.lent_class(ptr, cls);
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
