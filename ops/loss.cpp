// Losses: softmax cross-entropy (fused kernels) and mean squared error (composed).
#include "mmgrad/ops/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "mmgrad/ops/common.h"
#include "mmgrad/ops/elementwise.h"
#include "mmgrad/ops/index_check.h"
#include "mmgrad/ops/reduce.h"

namespace mmgrad {

// ---- cross_entropy
// -------------------------------------------------------------------------------- Per row n with
// logits x and smoothed target distribution q = (1 - eps) one_hot(t) + eps / C:
//   loss[n] = -sum_c q_c log softmax(x)_c = logsumexp(x) - sum_c q_c x_c
//   d loss[n] / d x_c = softmax(x)_c - q_c
// The forward kernel keeps lse[n] = logsumexp(x) so the backward needs no second reduction.
// Rows whose target is ignore_index have loss 0 and gradient 0.
struct CrossEntropyBackward : Node {
  SavedTensor logits{this}, target{this}, lse{this};  // [M, C], [M], [M], all contiguous
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
  const char* name() const override { return "cross_entropy"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor& x = logits.get();
    const Tensor& t = target.get();
    const Tensor& l = lse.get();
    Tensor gc = g.contiguous();
    Tensor gx = empty_as(x, x.shape());
    const int64_t M = x.size(0), C = x.size(1);
    if (gx.numel() > 0)
      backend(x.device())
          .cross_entropy_backward({.dtype = x.dtype(),
                                   .logits = x.raw_data(),
                                   .target = t.data_ptr<int64_t>(),
                                   .lse = l.raw_data(),
                                   .grad_loss = gc.raw_data(),
                                   .gx = gx.raw_data(),
                                   .N = M,
                                   .C = C,
                                   .ignore_index = ignore_index,
                                   .label_smoothing = label_smoothing});
    return {gx};
  }
};

Tensor cross_entropy(const Tensor& logits, const Tensor& target,
                     const CrossEntropyOptions& options) {
  const char* op = "cross_entropy";
  check_floating(op, logits, "input");
  check_dtype(op, target, DType::Int64, "target");
  check_same_device(op, logits, target);
  const double eps = options.label_smoothing;
  MMGRAD_CHECK(eps >= 0.0 && eps <= 1.0, "cross_entropy: label_smoothing must be in [0, 1], got ",
               eps);
  MMGRAD_CHECK(logits.dim() >= 1,
               "cross_entropy: expected input [C], [N, C] or [N, C, d1, ...], "
               "got a 0-d tensor");

  // Bring every layout to rows of C logits: [C] -> [1, C]; [N, C, d1..dk] -> [N*d1*..*dk, C]
  // (classes moved last, as the kernel reads one contiguous row per sample).
  const int64_t C = logits.dim() == 1 ? logits.size(0) : logits.size(1);
  Shape want_target;  // the target shape that matches the input
  for (int d = 0; d < logits.dim(); ++d)
    if (d != (logits.dim() == 1 ? 0 : 1)) want_target.push_back(logits.size(d));
  MMGRAD_CHECK(target.shape() == want_target, "cross_entropy: target of shape ",
               target.shape().str(), " does not match input ", logits.shape().str(),
               ": expected target ", want_target.str(),
               " (class indices; the input's class dimension is ", logits.dim() == 1 ? 0 : 1, ")");
  // No classes is allowed only with no rows (an empty batch: [0, 0] logits, as PyTorch allows);
  // a row with no class to pick has no loss.
  const int64_t rows_n = want_target.numel();
  MMGRAD_CHECK(C > 0 || rows_n == 0, "cross_entropy: the input has no classes (shape ",
               logits.shape().str(), ")");
  Tensor rows;
  if (logits.dim() == 1) {
    rows = logits.reshape({1, C});
  } else if (logits.dim() == 2) {
    rows = logits;
  } else {
    Shape perm{0};
    for (int d = 2; d < logits.dim(); ++d) perm.push_back(d);
    perm.push_back(1);
    rows = logits.permute(perm).reshape({rows_n, C});  // explicit sizes: -1 is ambiguous if C = 0
  }
  rows = rows.contiguous();
  Tensor t = target.detach().reshape({-1}).contiguous();
  const int64_t counted = check_index_values(op, t, C, "target", options.ignore_index);

  const int64_t M = rows.size(0);
  Tensor loss = empty_as(rows, {M});
  Tensor lse = empty_as(rows, {M});
  if (M > 0)
    backend(rows.device())
        .cross_entropy_forward({.dtype = rows.dtype(),
                                .logits = rows.raw_data(),
                                .target = t.data_ptr<int64_t>(),
                                .loss = loss.raw_data(),
                                .lse = lse.raw_data(),
                                .N = M,
                                .C = C,
                                .ignore_index = options.ignore_index,
                                .label_smoothing = eps});
  if (auto node = make_node<CrossEntropyBackward>(loss, {rows})) {
    node->logits = rows;
    node->target = t;
    node->lse = lse;
    node->ignore_index = options.ignore_index;
    node->label_smoothing = eps;
  }

  switch (options.reduction) {
    case Reduction::None:
      return loss.reshape(want_target);
    case Reduction::Sum:
      return sum(loss);
    case Reduction::Mean:
      break;
  }
  // Mean over the targets that count. With none (every target ignored, or no rows) this is
  // 0 / 0 = NaN, as in PyTorch; the gradient is still 0, since ignored rows get none.
  const double scale =
      counted > 0 ? 1.0 / static_cast<double>(counted) : std::numeric_limits<double>::quiet_NaN();
  return mul(sum(loss), scale);
}

// ---- mse_loss
// --------------------------------------------------------------------------------------- (input -
// target)^2 reduced; composed of differentiable ops, so both arguments get gradients: d/d input = 2
// (input - target) [/ n for the mean], d/d target = the negative.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  const char* op = "mse_loss";
  check_floating(op, input, "input");
  check_floating(op, target, "target");
  check_same_dtype(op, input, target);
  check_same_device(op, input, target);
  MMGRAD_CHECK(input.shape() == target.shape(), "mse_loss: input ", input.shape().str(),
               " and target ", target.shape().str(),
               " must have the same shape (no broadcasting, to avoid silent mistakes)");
  Tensor sq = square(sub(input, target));
  switch (reduction) {
    case Reduction::None:
      return sq;
    case Reduction::Sum:
      return sum(sq);
    case Reduction::Mean:
      break;
  }
  return mean(sq);  // of an empty input: NaN, as in PyTorch (0 / 0; see ops/reduce.h)
}

}  // namespace mmgrad

// ---- reference: softmax cross-entropy as plain loops --------------------------------------------
// The definition of the math, for reading and for testing the kernels against
// (tests/test_reference_kernels.cpp); the op above runs the backend's fused kernels instead.

namespace mmgrad::reference {

namespace {

// log(sum_c exp(x_c)) of one row, shifted by the maximum so that no exp overflows.
double logsumexp(const double* row, int64_t C) {
  double m = row[0];
  for (int64_t c = 1; c < C; ++c) m = std::max(m, row[c]);
  double sum = 0;
  for (int64_t c = 0; c < C; ++c) sum += std::exp(row[c] - m);
  return m + std::log(sum);
}

// The smoothed target distribution q_c = (1 - eps) [c == target] + eps / C.
double target_prob(int64_t c, int64_t target, int64_t C, double eps) {
  return (1.0 - eps) * (c == target ? 1.0 : 0.0) + eps / static_cast<double>(C);
}

}  // namespace

std::vector<double> cross_entropy(const std::vector<double>& logits,
                                  const std::vector<int64_t>& target, int64_t N, int64_t C,
                                  int64_t ignore_index, double label_smoothing) {
  // loss_n = -sum_c q_c log p_c with log p_c = x_c - logsumexp(x)
  std::vector<double> loss(static_cast<size_t>(N), 0.0);
  for (int64_t n = 0; n < N; ++n) {
    if (target[n] == ignore_index) continue;
    const double* row = &logits[n * C];
    const double lse = logsumexp(row, C);
    for (int64_t c = 0; c < C; ++c)
      loss[n] -= target_prob(c, target[n], C, label_smoothing) * (row[c] - lse);
  }
  return loss;
}

std::vector<double> cross_entropy_backward(const std::vector<double>& logits,
                                           const std::vector<int64_t>& target,
                                           const std::vector<double>& g, int64_t N, int64_t C,
                                           int64_t ignore_index, double label_smoothing) {
  // d loss_n / d x_c = p_c - q_c (sum_c q_c = 1), times the row's incoming gradient g_n
  std::vector<double> dx(static_cast<size_t>(N * C), 0.0);
  for (int64_t n = 0; n < N; ++n) {
    if (target[n] == ignore_index) continue;
    const double* row = &logits[n * C];
    const double lse = logsumexp(row, C);
    for (int64_t c = 0; c < C; ++c) {
      const double p = std::exp(row[c] - lse);
      dx[n * C + c] = g[n] * (p - target_prob(c, target[n], C, label_smoothing));
    }
  }
  return dx;
}

}  // namespace mmgrad::reference
