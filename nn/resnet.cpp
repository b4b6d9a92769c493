#include "mmgrad/nn/resnet.h"

#include "mmgrad/nn/checks.h"
#include "mmgrad/nn/init.h"
#include "mmgrad/ops/conv.h"
#include "mmgrad/ops/elementwise.h"

namespace mmgrad::nn {

BasicBlock::BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride) {
  MMGRAD_CHECK(in_channels > 0 && out_channels > 0 && stride > 0,
               "BasicBlock: channels and stride must be positive, got in ", in_channels, ", out ",
               out_channels, ", stride ", stride);
  conv1 = register_module("conv1",
                          std::make_shared<Conv2d>(in_channels, out_channels, 3, stride, 1, false));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(out_channels));
  conv2 = register_module("conv2",
                          std::make_shared<Conv2d>(out_channels, out_channels, 3, 1, 1, false));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(out_channels));
  if (stride != 1 || in_channels != out_channels) {
    downsample = register_module(
        "downsample", std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Module>>{
                          std::make_shared<Conv2d>(in_channels, out_channels, 1, stride, 0, false),
                          std::make_shared<BatchNorm2d>(out_channels)}));
  }
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor h = relu(bn1->forward(conv1->forward(x)));
  h = bn2->forward(conv2->forward(h));
  return relu(h + (downsample ? downsample->forward(x) : x));
}

ResNet::ResNet(const ResNetConfig& cfg) : config(cfg) {
  MMGRAD_CHECK(!cfg.widths.empty() && cfg.widths.size() == cfg.blocks.size(), "ResNet: widths (",
               cfg.widths.size(), " stages) and blocks (", cfg.blocks.size(),
               " stages) must be non-empty and of equal length");
  for (size_t s = 0; s < cfg.widths.size(); ++s)
    MMGRAD_CHECK(cfg.widths[s] > 0 && cfg.blocks[s] > 0, "ResNet: stage ", s + 1, " has width ",
                 cfg.widths[s], " and ", cfg.blocks[s], " blocks; both must be positive");
  MMGRAD_CHECK(cfg.in_channels > 0 && cfg.num_classes >= 0,
               "ResNet: in_channels must be "
               "positive and num_classes >= 0, got ",
               cfg.in_channels, " and ", cfg.num_classes);
  const int64_t w0 = cfg.widths[0];
  if (cfg.imagenet_stem)
    conv1 = register_module("conv1", std::make_shared<Conv2d>(cfg.in_channels, w0, 7, 2, 3, false));
  else
    conv1 = register_module("conv1", std::make_shared<Conv2d>(cfg.in_channels, w0, 3, 1, 1, false));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(w0));
  int64_t in = w0;
  for (size_t s = 0; s < cfg.widths.size(); ++s) {
    auto stage = std::make_shared<Sequential>();
    for (int64_t b = 0; b < cfg.blocks[s]; ++b) {
      int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      stage->push_back(std::make_shared<BasicBlock>(in, cfg.widths[s], stride));
      in = cfg.widths[s];
    }
    stages.push_back(register_module("layer" + std::to_string(s + 1), stage));
  }
  if (cfg.num_classes > 0)
    fc = register_module("fc", std::make_shared<Linear>(in, cfg.num_classes));
  // torchvision's initialisation: He-normal convs (fan_out, relu), batch norm 1 and 0 (already).
  apply([](Module& m) {
    if (auto* c = dynamic_cast<Conv2d*>(&m))
      init::kaiming_normal_(c->weight, 0.0, init::FanMode::FanOut, "relu");
  });
}

Tensor ResNet::forward_feature_map(const Tensor& x) {
  detail::check_input(*this, x, conv1->weight);
  MMGRAD_CHECK(x.dim() == 4 && x.size(1) == config.in_channels, label(), ": input is ", describe(x),
               "; expected [N, ", config.in_channels, ", H, W]");
  Tensor h = relu(bn1->forward(conv1->forward(x)));
  if (config.imagenet_stem) h = max_pool2d(h, 3, 2, 1);
  for (const auto& stage : stages) h = stage->forward(h);
  return h;
}

Tensor ResNet::forward_features(const Tensor& x) {
  // global average pool: [N, C, h, w] -> [N, C]
  return adaptive_avg_pool2d(forward_feature_map(x), 1).flatten(1);
}

Tensor ResNet::forward(const Tensor& x) {
  Tensor f = forward_features(x);
  return fc ? fc->forward(f) : f;
}

std::shared_ptr<ResNet> resnet18(int64_t num_classes, int64_t in_channels, bool imagenet_stem) {
  ResNetConfig cfg;
  cfg.in_channels = in_channels;
  cfg.num_classes = num_classes;
  cfg.imagenet_stem = imagenet_stem;
  return std::make_shared<ResNet>(cfg);
}

}  // namespace mmgrad::nn
