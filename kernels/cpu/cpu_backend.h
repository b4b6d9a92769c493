// The CPU backend: OpenMP loops and Eigen GEMM. Each group of methods lives in its own file in
// kernels/cpu/ (memory.cpp, elementwise.cpp, reduce.cpp, gemm.cpp, ...).
#pragma once

#include "mmgrad/kernels/backend.h"

namespace mmgrad::cpu {

// Statistics of the CPU caching allocator (see memory.cpp).
struct AllocatorStats {
  int64_t os_allocations = 0;  // blocks obtained from the OS (page faults follow these)
  int64_t cache_hits = 0;      // allocations served from the cache
  int64_t bytes_cached = 0;    // bytes held in the cache, ready for reuse
  int64_t bytes_in_use = 0;    // bytes handed out to live tensors
};
AllocatorStats allocator_stats();
// Returns every cached block to the OS.
void empty_cache();

// ---- float32 conv2d on the GEMM ladder's micro-kernel (kernels/cpu/conv_fast.cpp) ----
// g is the whole problem (g.N images [C, H, W], kernel, stride, padding, dilation, OH x OW);
// w is [Cout, C, KH, KW], y and gy [N, Cout, OH, OW], all contiguous. bias may be null.
// The results do not depend on the thread count (same bits).
void conv2d_fast_forward(const float* x, const float* w, const float* bias, float* y,
                         const Conv2dGeom& g, int64_t Cout);
// gx (written, not accumulated) = dL/dx for upstream gradient gy.
void conv2d_fast_backward_input(const float* gy, const float* w, float* gx, const Conv2dGeom& g,
                                int64_t Cout);
// gw (written) = dL/dW = sum over images and pixels of gy x the input's receptive fields.
void conv2d_fast_backward_weight(const float* x, const float* gy, float* gw, const Conv2dGeom& g,
                                 int64_t Cout);
// Whether conv2d (ops/conv.cpp) takes this path for float32 CPU tensors (the default). Off, it
// runs im2col + Backend::gemm. The environment variable MMGRAD_CONV_FAST=0 starts a program with
// it off.
void set_conv2d_fast_path(bool on);
bool conv2d_fast_path();

// ---- float32 conv2d with C <= 3 input channels (kernels/cpu/conv_small_cin.cpp) ----
// Direct convolution for first layers; conv2d_fast_forward and conv2d_fast_backward_weight route
// here when conv2d_small_cin(g). Same arguments and contracts as theirs.
bool conv2d_small_cin(const Conv2dGeom& g);
void conv2d_small_cin_forward(const float* x, const float* w, const float* bias, float* y,
                              const Conv2dGeom& g, int64_t Cout);
void conv2d_small_cin_backward_weight(const float* x, const float* gy, float* gw,
                                      const Conv2dGeom& g, int64_t Cout);

// ---- float32 2x2 stride-2 unpadded max pool (kernels/cpu/max_pool2x2.cpp) ----
// x [N*C planes of H x W] -> y [.. OH x OW] and which [.. OH x OW]: each window's winner as its
// position in the window (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right); which must
// have kWhichSlack readable bytes past its end (or be null: y alone). Backward: gx (written, not
// accumulated). Same outputs and gradient bits as the general max_pool2d kernels.
inline constexpr int64_t kWhichSlack = 16;
void max_pool2x2_forward(const float* x, float* y, uint8_t* which, const Conv2dGeom& g);
void max_pool2x2_backward(const float* gy, const uint8_t* which, float* gx, const Conv2dGeom& g);

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::CPU; }

  void* allocate(size_t nbytes) override;
  void deallocate(void* ptr, size_t nbytes) override;
  void copy_to_host(void* host_dst, const void* src, size_t nbytes) override;
  void copy_from_host(void* dst, const void* host_src, size_t nbytes) override;
  void synchronize() override {}

  void fill(const Strided& out, double value) override;
  void copy(const Strided& src, const Strided& out) override;
  void unary(UnaryOp op, const Strided& in, const Strided& out, double alpha, double beta) override;
  void binary(BinaryOp op, const Strided& a, const Strided& b, const Strided& out) override;
  void where(const Strided& cond, const Strided& a, const Strided& b, const Strided& out) override;
  void reduce(ReduceOp op, const Strided& in, const Strided& out) override;
  void gemm(const GemmArgs& g) override;
  void random(RandomDist dist, const Strided& out, uint64_t seed, uint64_t offset, double a,
              double b) override;

  void index_select(DType dtype, const void* src, const int64_t* idx, void* out, int64_t outer,
                    int64_t src_dim, int64_t inner, int64_t n_idx) override;
  void index_add(DType dtype, const void* src, const int64_t* idx, void* dst, int64_t outer,
                 int64_t dst_dim, int64_t inner, int64_t n_idx) override;
  void gather(DType dtype, const void* src, const int64_t* idx, void* out, int64_t outer,
              int64_t src_dim, int64_t idx_dim, int64_t inner) override;
  void scatter_add(DType dtype, const void* src, const int64_t* idx, void* dst, int64_t outer,
                   int64_t dst_dim, int64_t idx_dim, int64_t inner) override;
  void sort_rows(DType dtype, const void* in, void* values, int64_t* indices, int64_t rows,
                 int64_t n, int64_t k, bool descending) override;

  void softmax_forward(const SoftmaxArgs& a) override;
  void softmax_backward(const SoftmaxBackwardArgs& a) override;
  void cross_entropy_forward(const CrossEntropyArgs& a) override;
  void cross_entropy_backward(const CrossEntropyBackwardArgs& a) override;

  void layer_norm_forward(const LayerNormArgs& a) override;
  void layer_norm_backward(const LayerNormBackwardArgs& a) override;

  void im2col(DType dtype, const void* x, void* cols, const Conv2dGeom& g) override;
  void col2im(DType dtype, const void* cols, void* gx, const Conv2dGeom& g) override;
  // float32 2x2/2 unpadded pools keep one byte per window (max_pool2x2.cpp); others int64.
  int64_t max_pool2d_record_bytes(DType dtype, const Conv2dGeom& g) override;
  void max_pool2d_forward(DType dtype, const void* x, void* y, void* record,
                          const Conv2dGeom& g) override;
  void max_pool2d_backward(DType dtype, const void* gy, const void* record, void* gx,
                           const Conv2dGeom& g) override;
  void avg_pool2d_forward(DType dtype, const void* x, void* y, const Conv2dGeom& g) override;
  void avg_pool2d_backward(DType dtype, const void* gy, void* gx, const Conv2dGeom& g) override;
  void adaptive_avg_pool2d_forward(DType dtype, const void* x, void* y,
                                   const Conv2dGeom& g) override;
  void adaptive_avg_pool2d_backward(DType dtype, const void* gy, void* gx,
                                    const Conv2dGeom& g) override;

  // float32 (kernels/cpu/dropout.cpp).
  bool has_fused_dropout(DType dtype) const override { return dtype == DType::Float32; }
  void dropout_forward(DType dtype, const void* x, void* y, uint8_t* keep, int64_t n, uint64_t seed,
                       uint64_t offset, float p, float scale) override;
  void dropout_backward(DType dtype, const void* g, const uint8_t* keep, void* gx, int64_t n,
                        float scale) override;

  void adam_step(const AdamStepArgs& a) override;
};

}  // namespace mmgrad::cpu
