#include "10_fusion/fusion_models.h"

#include "mmgrad/autograd/grad_mode.h"
#include "mmgrad/core/error.h"
#include "mmgrad/nn/init.h"
#include "mmgrad/ops/elementwise.h"
#include "mmgrad/ops/index.h"
#include "mmgrad/ops/reduce.h"

namespace mmgrad::fusion {

nn::ResNetConfig backbone_config() {
  nn::ResNetConfig c;
  c.in_channels = 1;
  c.widths = {16, 32, 64};
  c.blocks = {1, 1, 1};
  c.num_classes = 0;
  c.imagenet_stem = true;  // 7x7 stride-2 conv + 3x3 stride-2 max pool: cheap on 32x64 traces
  return c;
}

std::shared_ptr<nn::ResNet> make_backbone() {
  return std::make_shared<nn::ResNet>(backbone_config());
}

void recalibrate_batch_norm(nn::Module& m, const Tensor& images, int64_t batch) {
  MMGRAD_CHECK(images.defined() && images.dim() == 4 && images.size(0) > 1 && batch > 1,
               "recalibrate_batch_norm: needs images [N > 1, C, H, W] and batch > 1, got ",
               images.defined() ? describe(images) : "undefined", " and batch ", batch);
  std::vector<std::pair<nn::BatchNorm2d*, double>> bns;
  for (const auto& sub : m.modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(sub.get())) {
      bns.emplace_back(bn, bn->momentum);
      bn->reset_running_stats();
    }
  NoGradGuard no_grad;
  m.train();
  int64_t k = 0;
  for (int64_t s = 0; s < images.size(0); s += batch) {
    const int64_t n = std::min(batch, images.size(0) - s);
    if (n < 2) break;  // batch statistics need more than one sample
    ++k;
    for (auto& [bn, momentum] : bns) bn->momentum = 1.0 / static_cast<double>(k);
    m.forward(images.narrow(0, s, n));
  }
  for (auto& [bn, momentum] : bns) bn->momentum = momentum;
  m.eval();
}

void freeze(nn::Module& m) {
  for (Tensor& p : m.parameters()) p.requires_grad_(false);
  m.eval();
}

bool is_frozen(nn::Module& m) {
  for (const Tensor& p : m.parameters())
    if (p.requires_grad()) return false;
  for (const auto& sub : m.modules(false))
    if (sub->is_training()) return false;
  return !m.is_training();
}

Tensor extract_feature_maps(nn::ResNet& backbone, const Tensor& images, int64_t batch) {
  MMGRAD_CHECK(images.defined() && images.dim() == 4, "extract_feature_maps: images must be ",
               "[N, C, H, W], got ", images.defined() ? describe(images) : "undefined");
  MMGRAD_CHECK(batch > 0, "extract_feature_maps: batch must be positive, got ", batch);
  NoGradGuard no_grad;  // frozen: nothing to differentiate, so record no graph
  std::vector<Tensor> parts;
  for (int64_t s = 0; s < images.size(0); s += batch) {
    int64_t n = std::min(batch, images.size(0) - s);
    parts.push_back(backbone.forward_feature_map(images.narrow(0, s, n)));
  }
  MMGRAD_CHECK(!parts.empty(), "extract_feature_maps: got no images (", describe(images), ")");
  return parts.size() == 1 ? parts[0] : cat(parts, 0);
}

Tensor FusionModel::forward(const Tensor& x) {
  fail(cat_str(name(), ": takes a FusionInput (image map, present flags, table), not one tensor ",
               describe(x)));
}

namespace {

void check_input(const FusionModel& m, const FusionInput& in, bool needs_image) {
  MMGRAD_CHECK(in.table.defined() && in.table.dim() == 2, m.name(), ": table must be [B, T], got ",
               in.table.defined() ? describe(in.table) : "undefined");
  const int64_t b = in.table.size(0);
  MMGRAD_CHECK(in.present.defined() && in.present.dim() == 1 && in.present.size(0) == b, m.name(),
               ": present must be [", b, "], got ",
               in.present.defined() ? describe(in.present) : "undefined");
  if (needs_image)
    MMGRAD_CHECK(in.image.defined() && in.image.dim() == 4 && in.image.size(0) == b, m.name(),
                 ": image must be a feature map [", b, ", C, h, w], got ",
                 in.image.defined() ? describe(in.image) : "undefined");
}

// The same head for every model: in -> 256 -> 128 -> 3, ReLU and dropout 0.3 in between.
std::shared_ptr<nn::MLP> fusion_head(int64_t in) {
  return std::make_shared<nn::MLP>(std::vector<int64_t>{in, 256, 128, kNumClasses},
                                   nn::Activation::ReLU, kDropout);
}

}  // namespace

// ---- tabular only ---------------------------------------------------------------------------

TabularOnly::TabularOnly(int64_t table_dim) {
  table_encoder =
      register_module("table_encoder", std::make_shared<nn::Linear>(table_dim, kTableHidden));
  head = register_module("head", fusion_head(kTableHidden));
}

Tensor TabularOnly::forward(const FusionInput& in) {
  check_input(*this, in, false);
  return head->forward(relu(table_encoder->forward(in.table)));
}

// ---- early fusion ---------------------------------------------------------------------------

EarlyFusion::EarlyFusion(int64_t table_dim, int64_t image_channels) {
  table_encoder =
      register_module("table_encoder", std::make_shared<nn::Linear>(table_dim, kTableHidden));
  head = register_module("head", fusion_head(image_channels + kTableHidden));
}

Tensor EarlyFusion::forward(const FusionInput& in) {
  check_input(*this, in, true);
  // Global average pool of the frozen map = the backbone's feature vector (zero if missing).
  Tensor img = in.image.mean({2, 3});
  Tensor tab = relu(table_encoder->forward(in.table));
  return head->forward(cat({img, tab}, 1));
}

// ---- late fusion ----------------------------------------------------------------------------

LateFusion::LateFusion(int64_t table_dim, int64_t image_channels) {
  table_encoder =
      register_module("table_encoder", std::make_shared<nn::Linear>(table_dim, kTableHidden));
  table_head = register_module(
      "table_head", std::make_shared<nn::MLP>(std::vector<int64_t>{kTableHidden, 128, kNumClasses},
                                              nn::Activation::ReLU, kDropout));
  image_head = register_module(
      "image_head",
      std::make_shared<nn::MLP>(std::vector<int64_t>{image_channels, 128, kNumClasses},
                                nn::Activation::ReLU, kDropout));
}

Tensor LateFusion::forward(const FusionInput& in) {
  check_input(*this, in, true);
  Tensor tab_logits = table_head->forward(relu(table_encoder->forward(in.table)));
  Tensor img_logits = image_head->forward(in.image.mean({2, 3}));
  // Average over the modalities that are present: (table + p * image) / (1 + p).
  Tensor p = in.present.unsqueeze(1);
  return (tab_logits + img_logits * p) / (p + 1.0);
}

// ---- cross-attention fusion ------------------------------------------------------------------

CrossAttentionFusion::CrossAttentionFusion(int64_t table_dim, int64_t image_channels,
                                           int64_t tokens_, int64_t d_, int64_t heads)
    : tokens(tokens_), d(d_) {
  MMGRAD_CHECK(tokens > 0 && d > 0 && heads > 0 && d % heads == 0, "CrossAttentionFusion: ",
               "tokens, d and heads must be positive with d divisible by heads, got ", tokens, ", ",
               d, ", ", heads);
  table_encoder =
      register_module("table_encoder", std::make_shared<nn::Linear>(table_dim, kTableHidden));
  query_proj = register_module("query_proj", std::make_shared<nn::Linear>(kTableHidden, d));
  token_proj = register_module("token_proj", std::make_shared<nn::Linear>(image_channels, d));
  pos_embedding =
      register_parameter("pos_embedding", nn::init::normal_(Tensor::empty({tokens, d}), 0.0, 0.02));
  attention = register_module("attention", std::make_shared<nn::MultiheadAttention>(d, heads));
  head = register_module("head", fusion_head(kTableHidden + d));
}

Tensor CrossAttentionFusion::forward(const FusionInput& in) {
  check_input(*this, in, true);
  MMGRAD_CHECK(in.image.size(2) * in.image.size(3) == tokens, name(), ": feature map ",
               describe(in.image), " has ", in.image.size(2) * in.image.size(3),
               " positions; the model was built for ", tokens);
  const int64_t b = in.table.size(0);
  Tensor tab = relu(table_encoder->forward(in.table));       // [B, 128]
  Tensor q = query_proj->forward(tab).unsqueeze(1);          // [B, 1, d]
  Tensor regions = in.image.flatten(2).transpose(1, 2);      // [B, h*w, C]
  Tensor kv = token_proj->forward(regions) + pos_embedding;  // [B, h*w, d]
  // A missing image: every key is padding, so the query attends to nothing (output 0).
  Tensor missing = in.present.eq(0.0).unsqueeze(1).expand({b, tokens});  // [B, h*w] bool
  nn::MultiheadAttentionOutput att = attention->forward(q, kv, kv, missing);
  last_weights = att.weights.squeeze(1).detach();                   // [B, h*w]
  Tensor answer = att.output.squeeze(1) * in.present.unsqueeze(1);  // zero vector if missing
  return head->forward(cat({tab, answer}, 1));
}

std::shared_ptr<FusionModel> make_fusion_model(const std::string& kind, int64_t table_dim,
                                               int64_t image_channels, int64_t tokens) {
  if (kind == "tabular") return std::make_shared<TabularOnly>(table_dim);
  if (kind == "early") return std::make_shared<EarlyFusion>(table_dim, image_channels);
  if (kind == "late") return std::make_shared<LateFusion>(table_dim, image_channels);
  if (kind == "cross_attention")
    return std::make_shared<CrossAttentionFusion>(table_dim, image_channels, tokens);
  fail(cat_str("make_fusion_model: unknown kind '", kind,
               "'; expected tabular, early, late or cross_attention"));
}

Tensor FusionSystem::predict(const Tensor& images, const Tensor& present, const Tensor& table) {
  MMGRAD_CHECK(backbone && model, "FusionSystem::predict: backbone and model must be set");
  MMGRAD_CHECK(present.defined() && present.dim() == 1 && images.defined() && images.dim() == 4 &&
                   present.size(0) == images.size(0),
               "FusionSystem::predict: images [B, 1, H, W] and present [B] expected, got ",
               describe(images), " and ", present.defined() ? describe(present) : "undefined");
  Tensor maps = backbone->forward_feature_map(images);
  // Zero feature vectors for missing images (the backbone of a blank image is not zero).
  maps = maps * present.reshape({-1, 1, 1, 1});
  return model->forward(FusionInput{maps, present, table});
}

}  // namespace mmgrad::fusion
