// A small ResNet (He et al., "Deep residual learning for image recognition") built from
// BasicBlocks, with torchvision's parameter names (conv1, bn1, layer1.0.conv1, ...,
// layer2.0.downsample.0, fc) so its structure and counts can be compared with torchvision's.
#pragma once

#include <memory>
#include <vector>

#include "mmgrad/nn/container.h"
#include "mmgrad/nn/conv.h"
#include "mmgrad/nn/linear.h"
#include "mmgrad/nn/normalization.h"

namespace mmgrad::nn {

// out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); both convs 3x3 without bias
// (batch norm supplies the shift). The shortcut is the identity when the shape is unchanged,
// else a 1x1 conv (with the block's stride) + batch norm that projects x to the new shape.
class BasicBlock : public Module {
 public:
  BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride = 1);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "BasicBlock"; }

  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<BatchNorm2d> bn1, bn2;
  std::shared_ptr<Sequential> downsample;  // null for the identity shortcut
};

struct ResNetConfig {
  int64_t in_channels = 3;
  std::vector<int64_t> widths = {64, 128, 256, 512};  // channels of each stage
  std::vector<int64_t> blocks = {2, 2, 2, 2};         // BasicBlocks per stage
  int64_t num_classes = 0;  // > 0: a Linear head "fc"; 0: forward returns pooled features
  // true: torchvision's ImageNet stem (7x7 conv stride 2, 3x3 max pool stride 2: /4);
  // false: a 3x3 stride-1 conv and no pooling, for small images (16x16, 28x28, CIFAR-sized).
  bool imagenet_stem = true;
};

// stem -> stage 1 (stride 1) -> stages 2.. (first block stride 2) -> global average pool ->
// [fc]. Output [N, num_classes] or, as a feature extractor, [N, widths.back()].
class ResNet : public Module {
 public:
  explicit ResNet(const ResNetConfig& config);
  Tensor forward(const Tensor& x) override;
  // The pooled features [N, widths.back()] (what fc reads).
  Tensor forward_features(const Tensor& x);
  // The last stage's feature map [N, widths.back(), h, w] before global pooling: one feature
  // vector per image region (the tokens a cross-attention layer can attend to).
  Tensor forward_feature_map(const Tensor& x);
  std::string name() const override { return "ResNet"; }
  int64_t feature_dim() const { return config.widths.back(); }

  ResNetConfig config;
  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::vector<std::shared_ptr<Sequential>> stages;  // registered as layer1, layer2, ...
  std::shared_ptr<Linear> fc;                       // null when num_classes == 0
};

// The ResNet-18 shape: blocks {2, 2, 2, 2}, widths {64, 128, 256, 512}, ImageNet stem.
// With in_channels 3 and num_classes 0 it has 11,176,512 parameters (torchvision's resnet18
// minus its 1000-class fc layer).
std::shared_ptr<ResNet> resnet18(int64_t num_classes = 0, int64_t in_channels = 3,
                                 bool imagenet_stem = true);

}  // namespace mmgrad::nn
