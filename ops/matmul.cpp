// matmul: forward through one (batched) GEMM; backward through two more.
//
//   C = A B          dL/dA = dL/dC B^T        dL/dB = A^T dL/dC
//
// The transposes are views (swapped strides), and the GEMM kernel reads a transposed operand in
// place, so the backward copies nothing. Broadcast batch dims are summed back with sum_to.
#include "mmgrad/ops/matmul.h"

#include <algorithm>

#include "mmgrad/ops/common.h"
#include "mmgrad/ops/shape.h"

namespace mmgrad {
namespace {

// How one operand enters the GEMM: pointer, leading dimension, transposition, batch stride.
struct Operand {
  Tensor holder;  // keeps a materialised copy alive when one was needed
  const void* ptr = nullptr;
  int64_t ld = 0, batch_stride = 0;
  bool trans = false;
};

// Layout of the matrix part of t: rows r, cols c with strides sr, sc. Row-major means each row
// is contiguous and rows do not overlap (a leading dimension >= c); column-major the same for
// columns (the GEMM reads it as a transposed operand).
bool is_row_major(int64_t r, int64_t c, int64_t sr, int64_t sc) {
  return (sc == 1 || c == 1) && (r == 1 || sr >= c);
}
bool is_col_major(int64_t r, int64_t c, int64_t sr, int64_t sc) {
  return (sr == 1 || r == 1) && (c == 1 || sc >= r);
}

// The single stride between consecutive matrices when the batch dims collapse into one
// progression (contiguous, or fully broadcast with stride 0); false otherwise.
bool batch_stride_of(const Tensor& t, int64_t* stride) {
  int nb = t.dim() - 2;
  int64_t expected = -1;
  for (int d = nb - 1; d >= 0; --d) {
    if (t.size(d) == 1) continue;
    if (expected < 0) {
      *stride = t.stride(d);
      expected = t.stride(d);
    }
    if (t.stride(d) != expected) return false;
    expected *= t.size(d);
  }
  if (expected < 0) *stride = 0;
  return true;
}

// Reads x (already expanded to batch shape + [rows, cols]) as a GEMM operand, without copying
// when the layout allows it; otherwise from a contiguous copy.
Operand as_operand(const Tensor& x) {
  const int n = x.dim();
  auto layout_ok = [&](const Tensor& t) {
    int64_t r = t.size(n - 2), c = t.size(n - 1), sr = t.stride(n - 2), sc = t.stride(n - 1);
    int64_t bs;
    return (is_row_major(r, c, sr, sc) || is_col_major(r, c, sr, sc)) && batch_stride_of(t, &bs);
  };
  Operand op;
  if (layout_ok(x)) {
    op.holder = x;
  } else {
    // A copy is needed (the batch dims do not collapse into one stride). Copy the matrices in
    // the order their elements are stored: a transposed view (attention's k^T, whose rows are
    // 16-float runs of k) is copied run by run and used transposed, instead of gathered one
    // element per stride into row-major order.
    const int64_t r = x.size(n - 2), c = x.size(n - 1), sr = x.stride(n - 2), sc = x.stride(n - 1);
    const bool col_major = is_col_major(r, c, sr, sc) && !is_row_major(r, c, sr, sc);
    op.holder = col_major ? x.transpose(-1, -2).contiguous().transpose(-1, -2) : x.contiguous();
  }
  const Tensor& t = op.holder;
  int64_t r = t.size(n - 2), c = t.size(n - 1), sr = t.stride(n - 2), sc = t.stride(n - 1);
  op.ptr = t.raw_data();
  if (is_row_major(r, c, sr, sc)) {
    op.trans = false;
    op.ld = r == 1 ? std::max<int64_t>(c, 1) : sr;
  } else {
    op.trans = true;
    op.ld = c == 1 ? std::max<int64_t>(r, 1) : sc;
  }
  batch_stride_of(t, &op.batch_stride);
  return op;
}

// C[..., M, N] = A[..., M, K] B[..., K, N] for inputs of rank >= 2 (no autograd).
Tensor matmul_kernel(const Tensor& a, const Tensor& b) {
  int na = a.dim(), nb = b.dim();
  int64_t M = a.size(na - 2), K = a.size(na - 1), N = b.size(nb - 1);
  Shape batch_a(a.shape().begin(), a.shape().end() - 2);
  Shape batch_b(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes("matmul", batch_a, batch_b);
  Shape sa = batch, sb = batch, so = batch;
  sa.push_back(M);
  sa.push_back(K);
  sb.push_back(K);
  sb.push_back(N);
  so.push_back(M);
  so.push_back(N);
  Tensor out = Tensor::empty(so, a.options());
  if (out.numel() == 0) return out;
  // Broadcast batch dims by expanding (a view); an operand already of its full shape is used as
  // is (no new tensor handles: this keeps small products, e.g. 64 x 64, near Eigen's own speed).
  auto full = [](const Tensor& t, const Shape& s) {
    return t.shape() == s ? t : t.detach().expand(s);
  };
  Operand A = as_operand(full(a, sa));
  Operand B = as_operand(full(b, sb));
  backend(a.device())
      .gemm(GemmArgs{.dtype = a.dtype(), .batch = batch.numel(), .M = M, .N = N, .K = K}
                .a(A.ptr, A.ld, A.trans)
                .b(B.ptr, B.ld, B.trans)
                .c(out.raw_data(), N)
                .batch_strides(A.batch_stride, B.batch_stride, M * N));
  return out;
}

}  // namespace

struct MatmulBackward : Node {
  SavedTensor a{this}, b{this};
  // b is a plain matrix stored transposed (linear's weight.t()): its gradient is computed in the
  // same layout, as (g^T a)^T, so that it arrives at the weight as a contiguous [out, in] matrix
  // (the transpose's backward undoes the view) instead of being copied there element by element.
  bool b_transposed_matrix = false;
  const char* name() const override { return "matmul"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor ga, gb;
    if (needs_grad(0)) ga = sum_to(matmul_kernel(g, b.get().transpose(-1, -2)), input_shapes[0]);
    if (needs_grad(1)) {
      const Tensor& av = a.get();
      if (b_transposed_matrix && av.dim() == 2 && g.dim() == 2)
        gb = matmul_kernel(g.transpose(-1, -2), av).transpose(-1, -2);
      else
        gb = sum_to(matmul_kernel(av.transpose(-1, -2), g), input_shapes[1]);
    }
    return {ga, gb};
  }
};

Tensor matmul(const Tensor& a, const Tensor& b) {
  const char* op = "matmul";
  check_floating(op, a, "a");
  check_floating(op, b, "b");
  check_same_device(op, a, b);
  check_same_dtype(op, a, b);
  MMGRAD_CHECK(a.dim() >= 1 && b.dim() >= 1, op, ": both arguments need at least 1 dimension, got ",
               a.shape().str(), " and ", b.shape().str());
  // Checked here, on the shapes the caller passed (the vector cases below recurse on reshaped
  // operands, whose shapes would only confuse the message).
  const int64_t k_b = b.dim() == 1 ? b.size(0) : b.size(-2);
  MMGRAD_CHECK(a.size(-1) == k_b, op, ": inner dimensions differ: got ", a.shape().str(), " and ",
               b.shape().str(), " (", a.size(-1), " != ", k_b, ")");
  // Batch dims (all but the last two) broadcast; say so with the caller's full shapes.
  for (int i = 3; i <= std::min(a.dim(), b.dim()); ++i) {
    int64_t da = a.size(-i), db = b.size(-i);
    MMGRAD_CHECK(da == db || da == 1 || db == 1, op, ": batch dimensions of ", a.shape().str(),
                 " and ", b.shape().str(), " cannot be broadcast together (dimension ", -i, ": ",
                 da, " vs ", db, ")");
  }
  // Vectors become matrices (a row on the left, a column on the right) and the extra dim is
  // removed from the result, as in PyTorch; vector . vector is a 0-d dot product.
  if (a.dim() == 1 && b.dim() == 1) return matmul(a.unsqueeze(0), b.unsqueeze(1)).reshape({});
  if (a.dim() == 1) return matmul(a.unsqueeze(0), b).squeeze(-2);
  if (b.dim() == 1) return matmul(a, b.unsqueeze(-1)).squeeze(-1);
  Tensor out = matmul_kernel(a, b);
  if (auto node = make_node<MatmulBackward>(out, {a, b})) {
    if (node->needs_grad(1)) node->a = a;
    if (node->needs_grad(0)) node->b = b;
    node->b_transposed_matrix = b.dim() == 2 && b.size(0) > 1 && b.size(1) > 1 &&
                                b.stride(0) == 1 && b.stride(1) == b.size(0);
  }
  return out;
}

Tensor Tensor::matmul(const Tensor& other) const { return mmgrad::matmul(*this, other); }

}  // namespace mmgrad
