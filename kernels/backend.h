// The kernel surface: every computation an op can ask a device to do.
//
// Ops (ops/*.cpp) check their inputs, allocate outputs and record autograd nodes; then they call
// one of these methods on backend(device). The CPU backend (kernels/cpu/) implements each with
// OpenMP loops and Eigen; the CUDA backend (kernels/cuda/) with kernels and cuBLAS. The list is
// kept deliberately short (in the spirit of tinygrad): elementwise maps, broadcasting binary ops,
// reductions, GEMM and a handful of fused kernels for the hot paths. Everything else is composed
// from these by the ops.
//
// Conventions: pointers address the first element; "contiguous" arguments are row-major dense
// buffers; all sizes are in elements.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mmgrad/core/strided.h"
#include "mmgrad/kernels/element_ops.h"  // UnaryOp, BinaryOp: the elementwise op codes

namespace mmgrad {

enum class ReduceOp : uint8_t { Sum, Max, Min, ArgMax, ArgMin };

// C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b], row-major, b in [0, batch).
// op(A) is M x K: A is stored M x K with leading dimension lda, or (trans_a) K x M.
struct GemmArgs {
  DType dtype = DType::Float32;
  int64_t batch = 1, M = 0, N = 0, K = 0;
  const void* A = nullptr;
  int64_t lda = 0, stride_a = 0;  // stride_a: elements between batches (0 = shared)
  bool trans_a = false;
  const void* B = nullptr;
  int64_t ldb = 0, stride_b = 0;
  bool trans_b = false;
  void* C = nullptr;
  int64_t ldc = 0, stride_c = 0;
  double alpha = 1.0, beta = 0.0;

  // Setters, so that a call names its operands in a few lines:
  //   be.gemm(GemmArgs{.dtype = dt, .batch = n, .M = M, .N = N, .K = K}
  //               .a(A, lda, /*transposed=*/true).b(B, ldb).c(C, ldc)
  //               .batch_strides(0, K * N, M * N));
  GemmArgs& a(const void* data, int64_t ld, bool transposed = false) {
    A = data;
    lda = ld;
    trans_a = transposed;
    return *this;
  }
  GemmArgs& b(const void* data, int64_t ld, bool transposed = false) {
    B = data;
    ldb = ld;
    trans_b = transposed;
    return *this;
  }
  GemmArgs& c(void* data, int64_t ld) {
    C = data;
    ldc = ld;
    return *this;
  }
  // Elements between consecutive batches of A, B and C (0: one matrix shared by every batch).
  GemmArgs& batch_strides(int64_t a_stride, int64_t b_stride, int64_t c_stride) {
    stride_a = a_stride;
    stride_b = b_stride;
    stride_c = c_stride;
    return *this;
  }
};

// Geometry of a 2-D convolution / pooling window, shared by CPU and CUDA index math.
struct Conv2dGeom {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input
  int64_t KH = 1, KW = 1;              // kernel (window) size
  int64_t SH = 1, SW = 1;              // stride
  int64_t PH = 0, PW = 0;              // zero padding
  int64_t DH = 1, DW = 1;              // dilation
  int64_t OH = 0, OW = 0;              // output size
};

// ---- arguments of the fused kernels
// -------------------------------------------------------------- One struct per call, filled with
// designated initializers at the call site, so every pointer is named where it is passed:
//   backend(d).layer_norm_forward({.dtype = x.dtype(), .x = ..., .y = ..., .N = N, .D = D});
// All buffers are contiguous and row-major; sizes are in elements.

// softmax or log_softmax over the middle dimension of [outer, dim, inner].
struct SoftmaxArgs {
  DType dtype = DType::Float32;
  const void* x = nullptr;  // input [outer, dim, inner]
  void* y = nullptr;        // output, x's shape
  int64_t outer = 1, dim = 0, inner = 1;
  bool log = false;  // log_softmax instead of softmax
};

struct SoftmaxBackwardArgs {
  DType dtype = DType::Float32;
  const void* y = nullptr;   // the forward's output [outer, dim, inner]
  const void* gy = nullptr;  // gradient with respect to y
  void* gx = nullptr;        // gradient with respect to x (written)
  int64_t outer = 1, dim = 0, inner = 1;
  bool log = false;
};

// Softmax cross-entropy of logits [N, C] against class indices [N].
struct CrossEntropyArgs {
  DType dtype = DType::Float32;
  const void* logits = nullptr;     // [N, C]
  const int64_t* target = nullptr;  // [N], each in [0, C) or ignore_index
  void* loss = nullptr;             // [N] per-row loss (written)
  void* lse = nullptr;              // [N] logsumexp of each row (written, for the backward)
  int64_t N = 0, C = 0;
  int64_t ignore_index = -100;   // rows with this target get loss 0 and gradient 0
  double label_smoothing = 0.0;  // eps: target distribution (1 - eps) one_hot + eps / C
};

struct CrossEntropyBackwardArgs {
  DType dtype = DType::Float32;
  const void* logits = nullptr;     // [N, C]
  const int64_t* target = nullptr;  // [N]
  const void* lse = nullptr;        // [N] from the forward
  const void* grad_loss = nullptr;  // [N] gradient of each row's loss
  void* gx = nullptr;               // [N, C] gradient of the logits (written)
  int64_t N = 0, C = 0;
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
};

// Layer norm of x viewed as [N, D], normalised over D.
struct LayerNormArgs {
  DType dtype = DType::Float32;
  const void* x = nullptr;  // [N, D]
  const void* w = nullptr;  // [D] weight, or null (no affine)
  const void* b = nullptr;  // [D] bias, or null
  void* y = nullptr;        // [N, D] output (written)
  void* mean = nullptr;     // [N] row means (written, for the backward)
  void* rstd = nullptr;     // [N] 1 / sqrt(var + eps) per row (written)
  int64_t N = 0, D = 0;
  double eps = 1e-5;
};

struct LayerNormBackwardArgs {
  DType dtype = DType::Float32;
  const void* gy = nullptr;    // [N, D] gradient of y
  const void* x = nullptr;     // [N, D] the forward's input
  const void* mean = nullptr;  // [N] from the forward
  const void* rstd = nullptr;  // [N] from the forward
  const void* w = nullptr;     // [D] weight, or null
  void* gx = nullptr;          // [N, D] gradient of x (written)
  void* gw = nullptr;          // [D] gradient of w (overwritten), or null: not needed
  void* gb = nullptr;          // [D] gradient of b (overwritten), or null
  int64_t N = 0, D = 0;
};

// One Adam / AdamW step over n contiguous elements of a parameter and its state.
struct AdamStepArgs {
  DType dtype = DType::Float32;
  void* param = nullptr;       // [n] updated in place
  const void* grad = nullptr;  // [n]
  void* exp_avg = nullptr;     // [n] m, updated in place
  void* exp_avg_sq = nullptr;  // [n] v, updated in place
  int64_t n = 0;
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  int64_t step = 1;        // 1-based: the bias corrections use beta^step
  bool decoupled = false;  // AdamW (p -= lr * wd * p) instead of L2 (g += wd * p)
};

enum class RandomDist : uint8_t { Uniform, Normal };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;

  // ---- memory ------------------------------------------------------------------------------
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* ptr, size_t nbytes) = 0;
  virtual void copy_to_host(void* host_dst, const void* src, size_t nbytes) = 0;
  virtual void copy_from_host(void* dst, const void* host_src, size_t nbytes) = 0;
  virtual void synchronize() = 0;

  // ---- elementwise -------------------------------------------------------------------------
  virtual void fill(const Strided& out, double value) = 0;
  // out = src (same shape; converts dtype; either may be non-contiguous)
  virtual void copy(const Strided& src, const Strided& out) = 0;
  virtual void unary(UnaryOp op, const Strided& in, const Strided& out, double alpha,
                     double beta) = 0;
  // a, b already broadcast to out's shape (stride 0 on broadcast dims)
  virtual void binary(BinaryOp op, const Strided& a, const Strided& b, const Strided& out) = 0;
  // out = cond ? a : b (cond is Bool; all broadcast to out's shape)
  virtual void where(const Strided& cond, const Strided& a, const Strided& b,
                     const Strided& out) = 0;

  // ---- reductions --------------------------------------------------------------------------
  // out has in's rank with each reduced dimension of size 1. ArgMax/ArgMin reduce exactly one
  // dimension and write Int64.
  virtual void reduce(ReduceOp op, const Strided& in, const Strided& out) = 0;

  // ---- matrix multiply ---------------------------------------------------------------------
  virtual void gemm(const GemmArgs& g) = 0;

  // ---- random numbers ----------------------------------------------------------------------
  // Fills a contiguous buffer from the counter-based Philox generator: element i uses counter
  // (offset + i), so results depend on neither thread count nor device.
  // Uniform in [a, b); Normal with mean a and std b.
  virtual void random(RandomDist dist, const Strided& out, uint64_t seed, uint64_t offset, double a,
                      double b) = 0;

  // ---- indexing ----------------------------------------------------------------------------
  // A contiguous source viewed as [outer, src_dim, inner]; idx (Int64, n_idx entries, each in
  // [0, src_dim), checked by the op) picks slices: out[o, i, k] = src[o, idx[i], k].
  virtual void index_select(DType dtype, const void* src, const int64_t* idx, void* out,
                            int64_t outer, int64_t src_dim, int64_t inner, int64_t n_idx) = 0;
  // The adjoint: dst[o, idx[i], k] += src[o, i, k] (repeated indices accumulate).
  virtual void index_add(DType dtype, const void* src, const int64_t* idx, void* dst, int64_t outer,
                         int64_t dst_dim, int64_t inner, int64_t n_idx) = 0;
  // Along one dimension of contiguous tensors viewed as [outer, dim, inner]:
  // gather: out[o, j, k] = src[o, idx[o, j, k], k]   (idx and out: [outer, idx_dim, inner])
  virtual void gather(DType dtype, const void* src, const int64_t* idx, void* out, int64_t outer,
                      int64_t src_dim, int64_t idx_dim, int64_t inner) = 0;
  // scatter_add: dst[o, idx[o, j, k], k] += src[o, j, k]
  virtual void scatter_add(DType dtype, const void* src, const int64_t* idx, void* dst,
                           int64_t outer, int64_t dst_dim, int64_t idx_dim, int64_t inner) = 0;
  // Sorts each row of a contiguous [rows, n] buffer; writes values and original positions.
  // k < n keeps only the first k of each sorted row (top-k); outputs are [rows, k].
  virtual void sort_rows(DType dtype, const void* in, void* values, int64_t* indices, int64_t rows,
                         int64_t n, int64_t k, bool descending) = 0;

  // ---- softmax family (the arguments are documented with their structs above) -------------
  // y = softmax(x) or log_softmax(x), numerically stable (subtract the max first).
  virtual void softmax_forward(const SoftmaxArgs& a) = 0;
  // softmax:     gx = y * (gy - sum(gy * y))
  // log_softmax: gx = gy - exp(y) * sum(gy)
  virtual void softmax_backward(const SoftmaxBackwardArgs& a) = 0;
  // Fused softmax cross-entropy:
  // loss[n] = -sum_c q[n,c] * log_softmax(x)[n,c], q = (1-eps) one_hot + eps / C; rows whose
  // target == ignore_index get loss 0. Also writes lse[n] = logsumexp(x[n]) for the backward.
  virtual void cross_entropy_forward(const CrossEntropyArgs& a) = 0;
  // gx[n,c] = g[n] * (softmax(x)[n,c] - q[n,c]); 0 for ignored rows.
  virtual void cross_entropy_backward(const CrossEntropyBackwardArgs& a) = 0;

  // ---- layer norm ----------------------------------------------------------------------------
  // y = (x - mean) * rstd * w + b; writes mean[N], rstd[N] for the backward.
  virtual void layer_norm_forward(const LayerNormArgs& a) = 0;
  // gx always; gw, gb (when not null) are overwritten with sums over N.
  virtual void layer_norm_backward(const LayerNormBackwardArgs& a) = 0;

  // ---- convolution and pooling (NCHW, contiguous) ------------------------------------------
  // cols[n] is [C*KH*KW, OH*OW]: the receptive field of every output pixel as a column.
  virtual void im2col(DType dtype, const void* x, void* cols, const Conv2dGeom& g) = 0;
  // The adjoint of im2col: gx (zeroed by the caller) += scatter of cols.
  virtual void col2im(DType dtype, const void* cols, void* gx, const Conv2dGeom& g) = 0;
  // Max pooling: y [N, C, OH, OW], and a record of each window's winner for the backward. How
  // the record is laid out is the backend's business (the op only allocates and keeps it):
  // max_pool2d_record_bytes says how many bytes it takes. The default layout, which any backend
  // may use, is int64 [N, C, OH, OW]: the flat h*W+w index of each window's max
  // (kernel_math.h's max_pool_value). A backend may keep something smaller for shapes it has a
  // dedicated kernel for (the CPU: one byte per window of a float32 2x2/2 pool).
  virtual int64_t max_pool2d_record_bytes(DType dtype, const Conv2dGeom& g) {
    (void)dtype;
    return g.N * g.C * g.OH * g.OW * static_cast<int64_t>(sizeof(int64_t));
  }
  // record may be null (no graph will run the backward): y alone, the same values.
  virtual void max_pool2d_forward(DType dtype, const void* x, void* y, void* record,
                                  const Conv2dGeom& g) = 0;
  // gx [N, C, H, W] (written whole, no zeroing needed): gy routed to each window's winner, 0 at
  // pixels that won no window; record as written by max_pool2d_forward for the same g.
  virtual void max_pool2d_backward(DType dtype, const void* gy, const void* record, void* gx,
                                   const Conv2dGeom& g) = 0;
  // Average over each window; padded cells count towards the divisor (PyTorch's default).
  virtual void avg_pool2d_forward(DType dtype, const void* x, void* y, const Conv2dGeom& g) = 0;
  virtual void avg_pool2d_backward(DType dtype, const void* gy, void* gx, const Conv2dGeom& g) = 0;
  // Adaptive average pooling to (OH, OW): window i spans [floor(i*H/OH), ceil((i+1)*H/OH)).
  virtual void adaptive_avg_pool2d_forward(DType dtype, const void* x, void* y,
                                           const Conv2dGeom& g) = 0;
  virtual void adaptive_avg_pool2d_backward(DType dtype, const void* gy, void* gx,
                                            const Conv2dGeom& g) = 0;

  // ---- dropout -----------------------------------------------------------------------------
  // A fused dropout, where a backend has one for dtype (has_fused_dropout; ops/dropout.cpp
  // otherwise composes Tensor::rand, where and mul, with the same bits). x, y, keep contiguous,
  // n elements: u_i = philox::uniform_sample(offset + i, seed, 0, 1) (what Tensor::rand draws at
  // that generator state), keep[i] = (u_i >= p) as one byte, y[i] = x[i] * (keep[i] ? scale : 0).
  virtual bool has_fused_dropout(DType dtype) const {
    (void)dtype;
    return false;
  }
  virtual void dropout_forward(DType dtype, const void* x, void* y, uint8_t* keep, int64_t n,
                               uint64_t seed, uint64_t offset, float p, float scale);
  // gx[i] = g[i] * (keep[i] ? scale : 0).
  virtual void dropout_backward(DType dtype, const void* g, const uint8_t* keep, void* gx,
                                int64_t n, float scale);

  // ---- optimizer ---------------------------------------------------------------------------
  // One fused Adam / AdamW step (see AdamStepArgs).
  virtual void adam_step(const AdamStepArgs& a) = 0;
};

// The backend for a device. CUDA: throws mmgrad::Error when mmgrad was built without CUDA or
// no GPU is present.
Backend& backend(Device d);
bool cuda_available();

// Threads the CPU kernels (and Eigen's GEMM) use: OpenMP's team size, by default one per core
// (or OMP_NUM_THREADS). set_num_threads(n) needs n >= 1.
int get_num_threads();
void set_num_threads(int n);

}  // namespace mmgrad
