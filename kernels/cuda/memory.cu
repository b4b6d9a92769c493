// CUDA memory: a caching allocator, host <-> device copies, synchronisation.
//
// cudaMalloc and cudaFree are slow (cudaFree also synchronises the whole device), so blocks are
// never given back during training: a freed block goes to a free list of its size class and
// serves the next request of that class. A training step allocates the same sizes every time,
// so from the second step on every allocation is a cache hit (allocator_stats() counts the
// cudaMalloc calls; tests/test_cuda.cpp checks a steady-state loop makes none). When cudaMalloc
// runs out of memory the cache is emptied and the allocation tried once more.
//
// Reusing a block at once is safe because all work runs in order on one stream (see
// cuda_backend.h): whatever reads the block before it was freed runs before whatever the new
// owner queues.
#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <vector>

#include "mmgrad/kernels/cuda/cuda_common.cuh"

namespace mmgrad::cuda {
namespace {

constexpr size_t kGranule = 512;  // cudaMalloc aligns to 256 B; small classes step by 512 B

// Size classes: multiples of 512 B up to 1 MiB, then 2^k and 1.5 * 2^k (at most 33% waste).
size_t size_class(size_t n) {
  if (n <= (size_t{1} << 20)) return (n + kGranule - 1) / kGranule * kGranule;
  size_t p = size_t{1} << 20;
  while (p < n) {
    if (p + p / 2 >= n) return p + p / 2;
    p *= 2;
  }
  return p;
}

struct Cache {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> free_blocks;  // size class -> blocks
  AllocatorStats stats;

  // Gives every cached block back to the driver; the caller holds mu.
  void release_all() {
    for (auto& [size, blocks] : free_blocks)
      for (void* p : blocks) {
        cudaFree(p);  // errors here would only mean the context is gone; nothing to do
        stats.cuda_free_calls++;
      }
    free_blocks.clear();
    stats.bytes_cached = 0;
  }
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: tensors may outlive static destruction
  return *c;
}

}  // namespace

void* CudaBackend::allocate(size_t nbytes) {
  const size_t cls = size_class(nbytes == 0 ? 1 : nbytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.free_blocks.find(cls);
  if (it != c.free_blocks.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    c.stats.bytes_cached -= static_cast<int64_t>(cls);
    c.stats.bytes_in_use += static_cast<int64_t>(cls);
    c.stats.cache_hits++;
    return p;
  }
  void* p = nullptr;
  c.stats.cuda_malloc_calls++;
  cudaError_t e = cudaMalloc(&p, cls);
  if (e == cudaErrorMemoryAllocation) {
    // Out of memory: give the cache back and try once more before failing.
    cudaGetLastError();
    c.release_all();
    c.stats.cuda_malloc_calls++;
    e = cudaMalloc(&p, cls);
  }
  if (e != cudaSuccess) {
    cudaGetLastError();
    fail(cat_str("cuda allocate: cudaMalloc of ", cls, " bytes (for ", nbytes,
                 " requested) failed with ", cudaGetErrorName(e), ": ", cudaGetErrorString(e), " (",
                 c.stats.bytes_in_use, " bytes in use by tensors)"));
  }
  c.stats.bytes_in_use += static_cast<int64_t>(cls);
  return p;
}

void CudaBackend::deallocate(void* ptr, size_t nbytes) {
  if (!ptr) return;
  const size_t cls = size_class(nbytes == 0 ? 1 : nbytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.stats.bytes_in_use -= static_cast<int64_t>(cls);
  c.free_blocks[cls].push_back(ptr);
  c.stats.bytes_cached += static_cast<int64_t>(cls);
}

// cudaMemcpy on the legacy default stream waits for the kernels queued before it, so the bytes
// copied are the finished results. An error from an earlier kernel surfaces here; running with
// MMGRAD_CUDA_SYNC=1 makes each launch wait, naming the kernel that failed.
void CudaBackend::copy_to_host(void* host_dst, const void* src, size_t nbytes) {
  if (nbytes == 0) return;
  check_cuda(cudaMemcpy(host_dst, src, nbytes, cudaMemcpyDeviceToHost),
             "copy to host (cudaMemcpy device -> host; an earlier kernel may have failed)");
}

void CudaBackend::copy_from_host(void* dst, const void* host_src, size_t nbytes) {
  if (nbytes == 0) return;
  check_cuda(cudaMemcpy(dst, host_src, nbytes, cudaMemcpyHostToDevice),
             "copy to device (cudaMemcpy host -> device)");
}

void CudaBackend::synchronize() {
  check_cuda(cudaDeviceSynchronize(), "synchronize (cudaDeviceSynchronize; a kernel failed)");
}

AllocatorStats allocator_stats() {
  std::lock_guard<std::mutex> lock(cache().mu);
  return cache().stats;
}

void empty_cache() {
  std::lock_guard<std::mutex> lock(cache().mu);
  cache().release_all();
}

}  // namespace mmgrad::cuda
