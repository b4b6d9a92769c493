// Checker for task 10.1: the learner's fused vector against one computed in plain loops from the
// definition, then fed to the head of a lesson 10 fusion::EarlyFusion model: the logits must be
// the ones the lesson's own EarlyFusion::forward gives.
#include <algorithm>

#include "10_fusion/fusion_models.h"
#include "checks.h"

namespace mmgrad::exercises {

namespace {
// fused[b] = [mean_yx map[b, c, y, x] for c | relu(sum_t table[b, t] W[k, t] + bias[k]) for k].
Tensor by_definition(const Tensor& map, const Tensor& table, const Tensor& W, const Tensor& bias) {
  const int64_t B = map.size(0), C = map.size(1), S = map.size(2) * map.size(3);
  const int64_t T = table.size(1), H = W.size(0);
  const std::vector<double> m = map.to_vector<double>(), x = table.to_vector<double>(),
                            w = W.to_vector<double>(), b = bias.to_vector<double>();
  std::vector<double> out;
  for (int64_t i = 0; i < B; ++i) {
    for (int64_t c = 0; c < C; ++c) {
      double s = 0;
      for (int64_t p = 0; p < S; ++p) s += m[(i * C + c) * S + p];
      out.push_back(s / static_cast<double>(S));
    }
    for (int64_t k = 0; k < H; ++k) {
      double s = b[k];
      for (int64_t t = 0; t < T; ++t) s += x[i * T + t] * w[k * T + t];
      out.push_back(std::max(s, 0.0));
    }
  }
  return Tensor::from_vector(out, {B, C + H});
}
}  // namespace

void check_early_fusion(Checker& c, decltype(&early_fusion) f) {
  Generator gen(101);
  struct Case {
    int64_t B, C, h, w, T, H;
    std::string what, hint;
  };
  const std::vector<Case> cases = {
      {2, 4, 2, 2, 3, 4, "B=2, a [2, 4, 2, 2] map, 3 table features, H=4",
       "pool the map to [B, C] (the mean over h and w), encode the table to [B, H] "
       "(relu(table W^T + bias)), then join them side by side along dim 1: [B, C + H], the "
       "image part first"},
      {3, 5, 3, 2, 6, 7, "B=3, a [3, 5, 3, 2] map (h != w), 6 table features, H=7",
       "the pool is the MEAN over both spatial dims (h * w values per channel), and the table "
       "code goes through relu"},
  };
  for (const Case& k : cases) {
    Tensor map = Tensor::randn({k.B, k.C, k.h, k.w}, DType::Float32, &gen) + 0.3;
    Tensor table = Tensor::randn({k.B, k.T}, DType::Float32, &gen);
    Tensor W = Tensor::randn({k.H, k.T}, DType::Float32, &gen);
    Tensor bias = Tensor::randn({k.H}, DType::Float32, &gen);
    c.close(cat_str("fused vector for ", k.what), f(map, table, W, bias),
            by_definition(map, table, W, bias), 1e-5, 1e-5, k.hint);
  }

  // A lesson 10 model: 8-channel 4 x 4 maps, 5 table features; sample 2's image is missing
  // (a zero map). Its head reading your fused vector must give EarlyFusion::forward's logits.
  NoGradGuard no_grad;
  fusion::EarlyFusion model(5, 8);
  model.eval();  // no dropout
  const int64_t B = 4;
  fusion::FusionInput in;
  in.image = Tensor::randn({B, 8, 4, 4}, DType::Float32, &gen).abs();
  in.image.narrow(0, 2, 1).zero_();
  in.present = Tensor::from_vector({1.0, 1.0, 0.0, 1.0}, {B}, DType::Float32);
  in.table = Tensor::randn({B, 5}, DType::Float32, &gen);
  const Tensor W = model.table_encoder->weight, b = model.table_encoder->bias;
  Tensor fused = f(in.image, in.table, W, b);
  c.close("fused vector for lesson 10's EarlyFusion (C=8, H=128, sample 2 without image)", fused,
          by_definition(in.image, in.table, W, b), 1e-5, 1e-5,
          "a missing image is a zero map: its pooled part is zeros, the table part as usual");
  c.close("EarlyFusion's head on your fused vector against EarlyFusion::forward",
          model.head->forward(fused), model.forward(in), 1e-4, 1e-5,
          "the head was built for [img (C) | tab (H)]");
}

namespace {
Tensor encoded(const Tensor& table, const Tensor& W, const Tensor& b) {
  return relu(matmul(table, W.t()) + b);
}
// The table part first.
Tensor table_first(const Tensor& map, const Tensor& table, const Tensor& W, const Tensor& b) {
  return cat({encoded(table, W, b), map.mean({2, 3})}, 1);
}
// Concatenated along the batch dimension.
Tensor wrong_dim(const Tensor& map, const Tensor& table, const Tensor& W, const Tensor& b) {
  return cat({map.mean({2, 3}), encoded(table, W, b)}, 0);
}
// Flattens the map instead of pooling it: C * h * w image columns.
Tensor flattens(const Tensor& map, const Tensor& table, const Tensor& W, const Tensor& b) {
  return cat({map.flatten(1), encoded(table, W, b)}, 1);
}
// Sums over the positions instead of averaging.
Tensor sums(const Tensor& map, const Tensor& table, const Tensor& W, const Tensor& b) {
  return cat({sum(map, {2, 3}), encoded(table, W, b)}, 1);
}
// Forgets the ReLU of the table encoder.
Tensor no_relu(const Tensor& map, const Tensor& table, const Tensor& W, const Tensor& b) {
  return cat({map.mean({2, 3}), matmul(table, W.t()) + b}, 1);
}
}  // namespace

std::vector<Mutant> mutants_early_fusion() {
  return {
      {"puts the table part first", [](Checker& c) { check_early_fusion(c, &table_first); }},
      {"concatenates along the batch dimension (dim 0)",
       [](Checker& c) { check_early_fusion(c, &wrong_dim); }},
      {"flattens the map instead of pooling it",
       [](Checker& c) { check_early_fusion(c, &flattens); }},
      {"sums over the positions instead of averaging",
       [](Checker& c) { check_early_fusion(c, &sums); }},
      {"forgets the table encoder's ReLU", [](Checker& c) { check_early_fusion(c, &no_relu); }},
  };
}

}  // namespace mmgrad::exercises
