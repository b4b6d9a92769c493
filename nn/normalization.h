// Normalisation layers: LayerNorm (per sample, over the trailing dims), BatchNorm2d (per
// channel, over the batch and the spatial dims, with running statistics for eval mode) and
// GroupNorm (per sample and group of channels, over those channels and the spatial dims).
#pragma once

#include "mmgrad/nn/module.h"

namespace mmgrad::nn {

// y = (x - mean) / sqrt(var + eps) * weight + bias, the statistics taken over the trailing
// dims given by normalized_shape (biased variance). weight = 1, bias = 0 initially.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(const Shape& normalized_shape, double eps = 1e-5,
                     bool elementwise_affine = true, bool bias = true);
  explicit LayerNorm(int64_t normalized_dim, double eps = 1e-5, bool elementwise_affine = true,
                     bool bias = true)
      : LayerNorm(Shape{normalized_dim}, eps, elementwise_affine, bias) {}
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "LayerNorm"; }
  std::string extra_repr() const override;

  Shape normalized_shape;
  double eps;
  Tensor weight, bias;  // undefined without elementwise_affine (bias also without bias)
};

// Training: normalises each channel with the batch's mean and (biased) variance and updates
//   running_mean = (1 - momentum) running_mean + momentum batch_mean
//   running_var  = (1 - momentum) running_var  + momentum batch_var_unbiased
// Eval: normalises with the running statistics (a fixed affine map per channel).
// Buffers: running_mean [C] (0), running_var [C] (1), num_batches_tracked (int64 scalar).
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1,
                       bool affine = true, bool track_running_stats = true);
  // x [N, C, H, W] -> same shape. In training mode N * H * W must be > 1.
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "BatchNorm2d"; }
  std::string extra_repr() const override;
  void reset_running_stats();

  int64_t num_features;
  double eps, momentum;
  bool track_running_stats;
  Tensor weight, bias;                                    // [C], undefined without affine
  Tensor running_mean, running_var, num_batches_tracked;  // undefined without tracking
};

// As torch.nn.GroupNorm(num_groups, num_channels, eps, affine): splits the channels of an
// [N, C, ...] input into num_groups groups and normalises each (sample, group) over its channels
// and spatial positions (ops/norm.h group_norm), then scales and shifts each channel by weight
// [C] (1 initially) and bias [C] (0). No running statistics: training and eval compute the same.
class GroupNorm : public Module {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
  // x [N, C, ...] (any number of spatial dims, none included) -> same shape.
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "GroupNorm"; }
  std::string extra_repr() const override;

  int64_t num_groups, num_channels;
  double eps;
  Tensor weight, bias;  // [C], undefined without affine
};

}  // namespace mmgrad::nn
