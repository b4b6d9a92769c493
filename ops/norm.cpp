// Normalisations: L2 normalize, cosine similarity, layer norm (fused kernels), batch norm
// and group norm (composed).
#include "mmgrad/ops/norm.h"

#include <cmath>

#include "mmgrad/autograd/grad_mode.h"
#include "mmgrad/ops/common.h"
#include "mmgrad/ops/elementwise.h"
#include "mmgrad/ops/reduce.h"

namespace mmgrad {

// ---- normalize: x / max(||x||, eps) -----------------------------------------------------------
// Written as x / sqrt(max(sum(x^2), eps^2)): the same value, but where the norm is below eps the
// clamp stops the gradient *before* the sqrt, so an all-zero slice gets the gradient of x / eps
// instead of the NaN of sqrt's 1 / (2 * 0) times clamp's 0.
Tensor normalize(const Tensor& x, int64_t dim, double eps) {
  const char* op = "normalize";
  check_floating(op, x, "input");
  MMGRAD_CHECK(eps > 0.0, "normalize: eps must be positive, got ", eps);
  const int d = wrap_dim(dim, x.dim(), op);
  if (x.dim() == 0) return div(x, sqrt(clamp_min(square(x), eps * eps)));
  Tensor sumsq = sum(square(x), Shape{d}, true);
  return div(x, sqrt(clamp_min(sumsq, eps * eps)));
}

// ---- cosine_similarity: sum(a / max(||a||, eps) * b / max(||b||, eps)) ------------------------
// PyTorch's formula (aten/src/ATen/native/Distance.cpp, PyTorch 2.x): each input is divided by its
// own clamped norm, then the products are summed. So |result| <= 1 up to rounding, no product of
// norms can overflow, and two vectors with small norms (each above eps) get their true cosine.
// (The older rule, <a, b> / sqrt(max(||a||^2 ||b||^2, eps^2)), clamped the *product* of the
// norms and so pulled such pairs towards 0: norms of 1e-5 and eps 1e-8 gave 0.01 cos.)
//
// The clamp is PyTorch's: an in-place clamp_min_(eps) under no_grad, so the gradient flows
// through the norm as if it had not been clamped -- d||a||/da = a / ||a||, and 0 at a zero
// vector (linalg.vector_norm's gradient). A zero vector therefore gets a finite gradient
// (b / (eps ||b||)), and for 0 < ||a|| < eps the gradient is PyTorch's, not the derivative of
// the clamped value. ClampedNorm below is that norm, as one node.
struct ClampedNormBackward : Node {
  SavedTensor x{this}, norm{this};  // the input and its unclamped norm (keepdim)
  const char* name() const override { return "cosine_similarity"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    // d||x||/dx = x / ||x||, masked to 0 where the norm is 0 (PyTorch's norm_backward, p = 2)
    return {mul(x.get(), where(ne(norm.get(), 0.0), div(g, norm.get()), 0.0))};
  }
};

// max(||x||_2, eps) along dim d, kept as a size-1 dim; its gradient ignores the clamp.
Tensor clamped_norm(const Tensor& x, int d, double eps) {
  Tensor norm, out;
  {
    NoGradGuard no_grad;
    norm = sqrt(sum(square(x), Shape{d}, true));
    out = clamp_min(norm, eps);
  }
  if (auto node = make_node<ClampedNormBackward>(out, {x})) {
    node->x = x;
    node->norm = norm;
  }
  return out;
}

// a and b broadcast first, so a vector compared against a batch counts its norm per pair.
Tensor cosine_similarity(const Tensor& a, const Tensor& b, int64_t dim, double eps) {
  const char* op = "cosine_similarity";
  check_floating(op, a, "x1");
  check_floating(op, b, "x2");
  check_same_dtype(op, a, b);
  check_same_device(op, a, b);
  MMGRAD_CHECK(eps > 0.0, "cosine_similarity: eps must be positive, got ", eps);
  Shape shape = broadcast_shapes(op, a.shape(), b.shape());
  MMGRAD_CHECK(shape.size() > 0,
               "cosine_similarity: expected inputs with at least 1 dimension, "
               "got ",
               a.shape().str(), " and ", b.shape().str());
  const int d = wrap_dim(dim, shape.size(), op);
  Tensor ae = a.expand(shape), be = b.expand(shape);
  return sum(mul(div(ae, clamped_norm(ae, d, eps)), div(be, clamped_norm(be, d, eps))), Shape{d});
}

// ---- layer_norm ---------------------------------------------------------------------------------
// Over the trailing D = prod(normalized_shape) elements of each of the N rows:
//   xhat = (x - mean) * rstd,  rstd = 1 / sqrt(var + eps) (biased variance),  y = xhat w + b.
// Backward (fused kernel), with dxhat = dy * w:
//   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),
//   dw = sum over rows of dy * xhat,  db = sum over rows of dy.
struct LayerNormBackward : Node {
  SavedTensor x{this}, mean{this}, rstd{this},
      weight{this};  // x, weight contiguous; mean, rstd [N]
  int64_t N = 0, D = 0;
  const char* name() const override { return "layer_norm"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor& xs = x.get();
    Tensor gy = g.contiguous();
    Tensor gx = empty_as(xs, xs.shape());
    Tensor gw, gb;
    if (needs_grad(1)) gw = Tensor::zeros(input_shapes[1], g.options());
    if (needs_grad(2)) gb = Tensor::zeros(input_shapes[2], g.options());
    if (N > 0) {
      const Tensor* w = weight.defined() ? &weight.get() : nullptr;
      backend(g.device())
          .layer_norm_backward({.dtype = g.dtype(),
                                .gy = gy.raw_data(),
                                .x = xs.raw_data(),
                                .mean = mean.get().raw_data(),
                                .rstd = rstd.get().raw_data(),
                                .w = w ? w->raw_data() : nullptr,
                                .gx = gx.raw_data(),
                                .gw = gw.defined() ? gw.raw_data() : nullptr,
                                .gb = gb.defined() ? gb.raw_data() : nullptr,
                                .N = N,
                                .D = D});
    }
    return {needs_grad(0) ? gx : Tensor(), gw, gb};
  }
};

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  const char* op = "layer_norm";
  check_floating(op, x, "input");
  MMGRAD_CHECK(normalized_shape.size() > 0, "layer_norm: normalized_shape must not be empty");
  MMGRAD_CHECK(eps >= 0.0, "layer_norm: eps must be >= 0, got ", eps);
  const int k = normalized_shape.size(), lead = x.dim() - k;
  bool trailing = lead >= 0;
  for (int i = 0; trailing && i < k; ++i) trailing = x.size(lead + i) == normalized_shape[i];
  MMGRAD_CHECK(trailing, "layer_norm: normalized_shape ", normalized_shape.str(),
               " must match the trailing dimensions of the input, got input ", x.shape().str());
  const int64_t D = normalized_shape.numel();
  MMGRAD_CHECK(D > 0, "layer_norm: normalized_shape ", normalized_shape.str(), " has no elements");
  for (const Tensor* p : {&weight, &bias}) {
    if (!p->defined()) continue;
    const char* arg = p == &weight ? "weight" : "bias";
    check_same_dtype(op, x, *p);
    check_same_device(op, x, *p);
    MMGRAD_CHECK(p->shape() == normalized_shape, "layer_norm: ", arg, " of shape ",
                 p->shape().str(), " must have normalized_shape ", normalized_shape.str());
  }
  const int64_t N = x.numel() / D;
  Tensor xc = x.contiguous();
  Tensor wc = weight.defined() ? weight.contiguous() : Tensor();
  Tensor bc = bias.defined() ? bias.contiguous() : Tensor();
  Tensor y = empty_as(x, x.shape());
  Tensor mean = empty_as(x, {N});
  Tensor rstd = empty_as(x, {N});
  if (N > 0)
    backend(x.device())
        .layer_norm_forward({.dtype = x.dtype(),
                             .x = xc.raw_data(),
                             .w = wc.defined() ? wc.raw_data() : nullptr,
                             .b = bc.defined() ? bc.raw_data() : nullptr,
                             .y = y.raw_data(),
                             .mean = mean.raw_data(),
                             .rstd = rstd.raw_data(),
                             .N = N,
                             .D = D,
                             .eps = eps});
  if (auto node = make_node<LayerNormBackward>(y, {xc, wc, bc})) {
    node->x = xc;
    node->mean = mean;
    node->rstd = rstd;
    if (wc.defined()) node->weight = wc;
    node->N = N;
    node->D = D;
  }
  return y;
}

// ---- batch_norm ---------------------------------------------------------------------------------
// Per channel c of x [N, C, ...], over the n = N * prod(spatial) values of that channel:
//   training: mu = mean(x), var = mean((x - mu)^2) (biased, what normalises the batch);
//   eval:     mu, var = running_mean, running_var (folded into one scale and shift, below);
//   y = (x - mu) / sqrt(var + eps) * weight + bias.
// Composed from differentiable ops, so in training the gradient also flows through mu and var
// (the terms that make batch norm's backward differ from a fixed affine map). The running
// statistics are buffers, updated without recording:
//   running = (1 - momentum) * running + momentum * batch, with the unbiased var * n / (n - 1).
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  const char* op = "batch_norm";
  check_floating(op, x, "input");
  MMGRAD_CHECK(x.dim() >= 2,
               "batch_norm: expected input [N, C, ...] with at least 2 dimensions, "
               "got ",
               x.shape().str());
  MMGRAD_CHECK(eps >= 0.0, "batch_norm: eps must be >= 0, got ", eps);
  MMGRAD_CHECK(momentum >= 0.0 && momentum <= 1.0, "batch_norm: momentum must be in [0, 1], got ",
               momentum);
  const int64_t C = x.size(1);
  const char* names[] = {"running_mean", "running_var", "weight", "bias"};
  const Tensor* params[] = {&running_mean, &running_var, &weight, &bias};
  for (int i = 0; i < 4; ++i) {
    const Tensor& p = *params[i];
    if (!p.defined()) continue;
    check_same_dtype(op, x, p);
    check_same_device(op, x, p);
    MMGRAD_CHECK(p.dim() == 1 && p.size(0) == C, "batch_norm: ", names[i], " of shape ",
                 p.shape().str(), " must be [C] = [", C, "] for input ", x.shape().str());
  }
  MMGRAD_CHECK(running_mean.defined() == running_var.defined(),
               "batch_norm: give both running_mean and running_var, or neither");

  // Statistics reduce over every dimension but the channels; [1, C, 1, ...] broadcasts back.
  Shape dims, stat_shape{1, C};
  for (int d = 0; d < x.dim(); ++d)
    if (d != 1) dims.push_back(d);
  for (int d = 2; d < x.dim(); ++d) stat_shape.push_back(1);
  const int64_t n = C > 0 ? x.numel() / C : 0;

  const bool use_batch = training || !running_mean.defined();
  Tensor centered, var;
  if (use_batch && x.numel() == 0) {
    // An empty batch, as in PyTorch: an empty result (weight and bias get zero gradients) and
    // running statistics left as they are (a mean over no values would write NaN into them).
    centered = x;
    var = Tensor::ones(stat_shape, x.options());
  } else if (use_batch) {
    MMGRAD_CHECK(n > 1 || !training,
                 "batch_norm: expected more than 1 value per channel when "
                 "training, got input ",
                 x.shape().str());
    MMGRAD_CHECK(n > 0, "batch_norm: empty input ", x.shape().str());
    Tensor mu = mean(x, dims, true);
    centered = sub(x, mu);
    var = mean(square(centered), dims, true);
    if (training && running_mean.defined()) {
      NoGradGuard no_grad;
      Tensor unbiased = mul(var.detach(), static_cast<double>(n) / static_cast<double>(n - 1));
      Tensor rm = running_mean, rv = running_var;  // handles to the caller's buffers
      rm.mul_(1.0 - momentum).add_(mu.detach().reshape({C}), momentum);
      rv.mul_(1.0 - momentum).add_(unbiased.reshape({C}), momentum);
    }
  } else {
    // Eval with running statistics: the normalisation is a fixed affine map per channel, folded
    // as PyTorch's inference kernel folds it,
    //   scale = weight / sqrt(running_var + eps),  shift = bias - running_mean * scale,
    //   y = x * scale + shift,
    // computed on the [C] vectors, so x is read twice instead of four times. (Differentiable as
    // composed: dL/dx = g * scale, and weight and bias get theirs through scale and shift.)
    Tensor scale = pow(add(running_var, eps), -0.5);
    if (weight.defined()) scale = mul(scale, weight);
    Tensor offset = mul(running_mean, scale);
    Tensor shift = bias.defined() ? sub(bias, offset) : neg(offset);
    return add(mul(x, scale.reshape(stat_shape)), shift.reshape(stat_shape));
  }
  Tensor y = mul(centered, pow(add(var, eps), -0.5));
  if (weight.defined()) y = mul(y, weight.reshape(stat_shape));
  if (bias.defined()) y = add(y, bias.reshape(stat_shape));
  return y;
}

// ---- group_norm ---------------------------------------------------------------------------------
// For sample n and group g (channels c in [g C/G, (g + 1) C/G)), over the M = (C/G) * prod(spatial)
// values of x[n, those channels, ...]:
//   mu = mean(x), var = mean((x - mu)^2) (biased), y = (x - mu) / sqrt(var + eps) * w[c] + b[c].
// Composed, with no kernel of its own: in a contiguous [N, C, ...] tensor the M values of one
// (sample, group) are consecutive, so viewing x as [N * G, M] makes each of them one row, and
// layer_norm over the last dim (no affine) is exactly the normalisation above -- its fused CPU and
// CUDA kernels, forward and backward, do the work. The per-channel weight and bias are then a
// broadcast mul and add over [1, C, 1, ...] (layer_norm's own weight would be per position in the
// row, not per channel). PyTorch also refuses a batch whose N * C / G * prod(spatial) is 1
// ("Expected more than 1 value per channel when training", a check borrowed from batch norm);
// here that input is allowed: a group of one value normalises to 0, and then gets the bias.
Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias,
                  double eps) {
  const char* op = "group_norm";
  check_floating(op, x, "input");
  MMGRAD_CHECK(x.dim() >= 2,
               "group_norm: expected input [N, C, ...] with at least 2 dimensions, got ",
               describe(x));
  MMGRAD_CHECK(eps >= 0.0, "group_norm: eps must be >= 0, got ", eps);
  const int64_t N = x.size(0), C = x.size(1);
  MMGRAD_CHECK(num_groups > 0, "group_norm: num_groups must be positive, got ", num_groups);
  MMGRAD_CHECK(C % num_groups == 0, "group_norm: the ", C, " channels of input ", x.shape().str(),
               " must be divisible by num_groups = ", num_groups);
  const char* names[] = {"weight", "bias"};
  const Tensor* params[] = {&weight, &bias};
  for (int i = 0; i < 2; ++i) {
    const Tensor& p = *params[i];
    if (!p.defined()) continue;
    check_same_dtype(op, x, p);
    check_same_device(op, x, p);
    MMGRAD_CHECK(p.dim() == 1 && p.size(0) == C, "group_norm: ", names[i], " of shape ",
                 p.shape().str(), " must be [C] = [", C, "] for input ", x.shape().str());
  }
  Shape affine_shape{1, C};  // [1, C, 1, ...]: broadcasts over the batch and the spatial dims
  for (int d = 2; d < x.dim(); ++d) affine_shape.push_back(1);

  Tensor y;
  if (x.numel() == 0) {
    // Nothing to normalise (PyTorch returns an empty result too); weight and bias, if given,
    // still take part so that their gradients are zeros, not undefined.
    y = x.clone();
  } else {
    const int64_t M = x.numel() / (N * num_groups);
    y = layer_norm(x.reshape({N * num_groups, M}), Shape{M}, {}, {}, eps).reshape(x.shape());
  }
  if (weight.defined()) y = mul(y, weight.reshape(affine_shape));
  if (bias.defined()) y = add(y, bias.reshape(affine_shape));
  return y;
}

}  // namespace mmgrad

// ---- reference: layer norm as plain loops -------------------------------------------------------
// The definition of the math, for reading and for testing the kernels against
// (tests/test_reference_kernels.cpp); the op above runs the backend's fused kernels instead.

namespace mmgrad::reference {

std::vector<double> layer_norm(const std::vector<double>& x, int64_t N, int64_t D,
                               const std::vector<double>& w, const std::vector<double>& b,
                               double eps) {
  std::vector<double> y(static_cast<size_t>(N * D));
  for (int64_t n = 0; n < N; ++n) {
    const double* row = &x[n * D];
    double mean = 0;
    for (int64_t i = 0; i < D; ++i) mean += row[i];
    mean /= static_cast<double>(D);
    double var = 0;  // biased: divided by D, not D - 1
    for (int64_t i = 0; i < D; ++i) var += (row[i] - mean) * (row[i] - mean);
    var /= static_cast<double>(D);
    for (int64_t i = 0; i < D; ++i) {
      const double xhat = (row[i] - mean) / std::sqrt(var + eps);
      y[n * D + i] = xhat * (w.empty() ? 1.0 : w[i]) + (b.empty() ? 0.0 : b[i]);
    }
  }
  return y;
}

LayerNormGrads layer_norm_backward(const std::vector<double>& x, const std::vector<double>& dy,
                                   int64_t N, int64_t D, const std::vector<double>& w, double eps) {
  // y_i = xhat_i w_i + b_i with xhat_i = (x_i - mean) * rstd, rstd = 1 / sqrt(var + eps). The
  // mean and the variance depend on every x_j of the row, so
  //   d xhat_i / d x_j = rstd * ([i == j] - 1/D - xhat_i xhat_j / D)
  // and dx_j = sum_i dy_i w_i (d xhat_i / d x_j): the full Jacobian product, O(D^2) per row,
  // not the rearranged O(D) form of the kernels.
  LayerNormGrads g;
  g.dx.assign(static_cast<size_t>(N * D), 0.0);
  g.dw.assign(static_cast<size_t>(D), 0.0);
  g.db.assign(static_cast<size_t>(D), 0.0);
  const double Dd = static_cast<double>(D);
  for (int64_t n = 0; n < N; ++n) {
    const double* row = &x[n * D];
    const double* dyr = &dy[n * D];
    double mean = 0, var = 0;
    for (int64_t i = 0; i < D; ++i) mean += row[i];
    mean /= Dd;
    for (int64_t i = 0; i < D; ++i) var += (row[i] - mean) * (row[i] - mean);
    var /= Dd;
    const double rstd = 1.0 / std::sqrt(var + eps);
    std::vector<double> xhat(static_cast<size_t>(D));
    for (int64_t i = 0; i < D; ++i) xhat[i] = (row[i] - mean) * rstd;
    for (int64_t i = 0; i < D; ++i) {
      g.dw[i] += dyr[i] * xhat[i];  // d y_i / d w_i = xhat_i
      g.db[i] += dyr[i];            // d y_i / d b_i = 1
    }
    for (int64_t j = 0; j < D; ++j) {
      double s = 0;
      for (int64_t i = 0; i < D; ++i) {
        const double dxhat = dyr[i] * (w.empty() ? 1.0 : w[i]);
        s += dxhat * rstd * ((i == j ? 1.0 : 0.0) - 1.0 / Dd - xhat[i] * xhat[j] / Dd);
      }
      g.dx[n * D + j] = s;
    }
  }
  return g;
}

}  // namespace mmgrad::reference
