#include "mmgrad/nn/normalization.h"

#include "mmgrad/autograd/grad_mode.h"
#include "mmgrad/nn/checks.h"
#include "mmgrad/ops/norm.h"

namespace mmgrad::nn {

LayerNorm::LayerNorm(const Shape& normalized_shape, double eps, bool elementwise_affine,
                     bool with_bias)
    : normalized_shape(normalized_shape), eps(eps) {
  MMGRAD_CHECK(!normalized_shape.empty(), "LayerNorm: normalized_shape must not be empty");
  for (int64_t d : normalized_shape)
    MMGRAD_CHECK(d > 0, "LayerNorm: normalized_shape ", normalized_shape.str(),
                 " must have positive sizes");
  MMGRAD_CHECK(eps > 0, "LayerNorm: eps must be positive, got ", eps);
  if (elementwise_affine) {
    weight = register_parameter("weight", Tensor::ones(normalized_shape));
    if (with_bias) bias = register_parameter("bias", Tensor::zeros(normalized_shape));
  }
}

Tensor LayerNorm::forward(const Tensor& x) {
  detail::check_input(*this, x, weight);
  const int k = normalized_shape.size();
  bool ok = x.dim() >= k;
  for (int i = 0; ok && i < k; ++i) ok = x.size(x.dim() - k + i) == normalized_shape[i];
  MMGRAD_CHECK(ok, label(), ": input is ", describe(x), "; its trailing dims must be ",
               normalized_shape.str());
  return layer_norm(x, normalized_shape, weight, bias, eps);
}

std::string LayerNorm::extra_repr() const {
  return cat_str(normalized_shape.str(), ", eps=", eps,
                 ", elementwise_affine=", weight.defined() ? "true" : "false");
}

BatchNorm2d::BatchNorm2d(int64_t num_features, double eps, double momentum, bool affine,
                         bool track_running_stats)
    : num_features(num_features),
      eps(eps),
      momentum(momentum),
      track_running_stats(track_running_stats) {
  MMGRAD_CHECK(num_features > 0, "BatchNorm2d: num_features must be positive, got ", num_features);
  MMGRAD_CHECK(eps > 0, "BatchNorm2d: eps must be positive, got ", eps);
  MMGRAD_CHECK(momentum >= 0 && momentum <= 1, "BatchNorm2d: momentum must be in [0, 1], got ",
               momentum);
  if (affine) {
    weight = register_parameter("weight", Tensor::ones({num_features}));
    bias = register_parameter("bias", Tensor::zeros({num_features}));
  }
  if (track_running_stats) {
    running_mean = register_buffer("running_mean", Tensor::zeros({num_features}));
    running_var = register_buffer("running_var", Tensor::ones({num_features}));
    num_batches_tracked = register_buffer("num_batches_tracked", Tensor::zeros({}, kInt64));
  }
}

void BatchNorm2d::reset_running_stats() {
  if (!track_running_stats) return;
  NoGradGuard no_grad;
  running_mean.zero_();
  running_var.fill_(1.0);
  num_batches_tracked.zero_();
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  detail::check_input(*this, x, weight.defined() ? weight : running_mean);
  MMGRAD_CHECK(x.dim() == 4 && x.size(1) == num_features, label(), ": input is ", describe(x),
               "; expected [N, ", num_features, ", H, W]");
  // Without running statistics there is nothing else to normalise with: batch statistics are
  // used in eval mode too (PyTorch's rule).
  const bool use_batch_stats = is_training() || !track_running_stats;
  // (An empty batch is fine: an empty result, running statistics untouched, as in PyTorch.)
  const int64_t per_channel = x.size(0) * x.size(2) * x.size(3);
  MMGRAD_CHECK(!use_batch_stats || per_channel > 1 || per_channel == 0, label(), ": input is ",
               describe(x),
               "; batch statistics need more than one value per channel (use eval mode for a "
               "single 1x1 sample)");
  Tensor out =
      batch_norm(x, running_mean, running_var, weight, bias, use_batch_stats, momentum, eps);
  if (is_training() && track_running_stats) {
    NoGradGuard no_grad;
    num_batches_tracked.add_(Tensor::ones({}, num_batches_tracked.options()));
  }
  return out;
}

std::string BatchNorm2d::extra_repr() const {
  return cat_str(num_features, ", eps=", eps, ", momentum=", momentum,
                 ", affine=", weight.defined() ? "true" : "false",
                 ", track_running_stats=", track_running_stats ? "true" : "false");
}

GroupNorm::GroupNorm(int64_t num_groups, int64_t num_channels, double eps, bool affine)
    : num_groups(num_groups), num_channels(num_channels), eps(eps) {
  MMGRAD_CHECK(num_groups > 0 && num_channels > 0,
               "GroupNorm: num_groups and num_channels must be positive, got ", num_groups, " and ",
               num_channels);
  MMGRAD_CHECK(num_channels % num_groups == 0, "GroupNorm: num_channels = ", num_channels,
               " must be divisible by num_groups = ", num_groups);
  MMGRAD_CHECK(eps > 0, "GroupNorm: eps must be positive, got ", eps);
  if (affine) {
    weight = register_parameter("weight", Tensor::ones({num_channels}));
    bias = register_parameter("bias", Tensor::zeros({num_channels}));
  }
}

Tensor GroupNorm::forward(const Tensor& x) {
  detail::check_input(*this, x, weight);
  MMGRAD_CHECK(x.dim() >= 2 && x.size(1) == num_channels, label(), ": input is ", describe(x),
               "; expected [N, ", num_channels, ", ...]");
  return group_norm(x, num_groups, weight, bias, eps);
}

std::string GroupNorm::extra_repr() const {
  return cat_str(num_groups, ", ", num_channels, ", eps=", eps,
                 ", affine=", weight.defined() ? "true" : "false");
}

}  // namespace mmgrad::nn
