// Lesson 10's models: the frozen vision backbone and four ways to predict the finishing class
// from (trace features, table row).
//
// Every fusion model reads a FusionInput: the frozen backbone's feature map of the trace (zeros
// when the image is missing), a 0/1 flag per sample saying whether the image is there, and the
// standardised table row. They differ in WHERE the two modalities meet:
//
//   TabularOnly           no image at all: table -> Linear(T, 128) -> ReLU -> head
//   EarlyFusion           pool the map to one vector, concatenate it with the encoded table,
//                         and let one MLP head see both: [img (C) | table (128)] -> 256 -> 128
//                         -> 3, ReLU and dropout 0.3 between (the design document's network)
//   LateFusion            one small classifier per modality; their logits are averaged (over the
//                         modalities that are present): the modalities never see each other
//   CrossAttentionFusion  the encoded table asks a question (the query) and attends over the
//                         trace's regions (keys/values = the map's h x w positions, each with a
//                         learned position embedding); the answer is concatenated with the table
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "10_fusion/fusion_sim.h"
#include "mmgrad/nn/layers.h"

namespace mmgrad::fusion {

// The vision backbone: a small ResNet for grey traces (1 channel), no classifier head.
nn::ResNetConfig backbone_config();
std::shared_ptr<nn::ResNet> make_backbone();

// Batch norm's running statistics are an exponential average taken WHILE the weights were still
// changing, so after a short training run they describe an older network, and eval mode (which
// uses them) can be far worse than training mode. This recomputes them at the final weights: one
// pass over `images` in training mode without a graph, with every BatchNorm2d's momentum set to
// 1/k for the k-th batch, which makes each running statistic the plain average of the batches'
// statistics (what PyTorch's torch.optim.swa_utils.update_bn does). Leaves m in eval mode.
void recalibrate_batch_norm(nn::Module& m, const Tensor& images, int64_t batch = 256);

// Freezes a module: no parameter requires grad any more (so backward computes nothing for them
// and no optimizer accepts them) and the module is in eval mode (batch norm uses its running
// statistics, so the features do not depend on the rest of the batch).
void freeze(nn::Module& m);
// True when no parameter of m requires grad and every module in it is in eval mode.
bool is_frozen(nn::Module& m);

// The backbone's feature maps [N, C, h, w] of images [N, 1, H, W], computed without recording
// a graph, `batch` images at a time. The images may live on any device; so do the maps.
Tensor extract_feature_maps(nn::ResNet& backbone, const Tensor& images, int64_t batch = 256);

struct FusionInput {
  Tensor image;    // float32 [B, C, h, w] frozen feature map; zeros where the image is missing
  Tensor present;  // float32 [B]: 1 = the image is there, 0 = missing (or dropped in training)
  Tensor table;    // float32 [B, T] standardised table features
};

class FusionModel : public nn::Module {
 public:
  using nn::Module::forward;
  // Logits [B, 3].
  virtual Tensor forward(const FusionInput& in) = 0;
  Tensor forward(const Tensor& x) override;  // throws: these models take a FusionInput
};

inline constexpr int64_t kTableHidden = 128;  // Linear(T, 128): the table encoder
inline constexpr double kDropout = 0.3;

class TabularOnly : public FusionModel {
 public:
  explicit TabularOnly(int64_t table_dim);
  Tensor forward(const FusionInput& in) override;
  std::string name() const override { return "TabularOnly"; }
  std::shared_ptr<nn::Linear> table_encoder;
  std::shared_ptr<nn::MLP> head;  // 128 -> 256 -> 128 -> 3
};

class EarlyFusion : public FusionModel {
 public:
  EarlyFusion(int64_t table_dim, int64_t image_channels);
  Tensor forward(const FusionInput& in) override;
  std::string name() const override { return "EarlyFusion"; }
  std::shared_ptr<nn::Linear> table_encoder;
  std::shared_ptr<nn::MLP> head;  // C + 128 -> 256 -> 128 -> 3
};

class LateFusion : public FusionModel {
 public:
  LateFusion(int64_t table_dim, int64_t image_channels);
  Tensor forward(const FusionInput& in) override;
  std::string name() const override { return "LateFusion"; }
  std::shared_ptr<nn::Linear> table_encoder;
  std::shared_ptr<nn::MLP> table_head;  // 128 -> 128 -> 3
  std::shared_ptr<nn::MLP> image_head;  // C -> 128 -> 3
};

class CrossAttentionFusion : public FusionModel {
 public:
  // tokens = h * w of the feature map; d = attention width.
  CrossAttentionFusion(int64_t table_dim, int64_t image_channels, int64_t tokens, int64_t d = 64,
                       int64_t heads = 4);
  Tensor forward(const FusionInput& in) override;
  // The attention weights of the last forward [B, tokens] (for a figure): where the table
  // looked in the trace.
  Tensor last_weights;
  std::string name() const override { return "CrossAttentionFusion"; }
  int64_t tokens, d;
  std::shared_ptr<nn::Linear> table_encoder;
  std::shared_ptr<nn::Linear> query_proj;  // 128 -> d
  std::shared_ptr<nn::Linear> token_proj;  // C -> d
  Tensor pos_embedding;                    // [tokens, d]
  std::shared_ptr<nn::MultiheadAttention> attention;
  std::shared_ptr<nn::MLP> head;  // 128 + d -> 256 -> 128 -> 3
};

// "tabular", "early", "late" or "cross_attention".
std::shared_ptr<FusionModel> make_fusion_model(const std::string& kind, int64_t table_dim,
                                               int64_t image_channels, int64_t tokens);

// The whole system for inference: image batch -> frozen backbone -> fusion model.
struct FusionSystem {
  std::shared_ptr<nn::ResNet> backbone;  // frozen
  std::shared_ptr<FusionModel> model;
  // images [B, 1, H, W] (zeros where missing), present [B], table [B, T] -> logits [B, 3].
  Tensor predict(const Tensor& images, const Tensor& present, const Tensor& table);
};

}  // namespace mmgrad::fusion
