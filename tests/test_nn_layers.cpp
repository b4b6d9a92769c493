// nn layers: MLP, Dropout, Conv2d, pooling, Embedding, LayerNorm, BatchNorm2d, PatchEmbed,
// ResNet. Each differentiable layer is gradient-checked in float64 with respect to its input
// and its parameters; float32 and float64 forwards agree; bad inputs name the layer.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "nn_test_util.h"

using namespace mmgrad;
using doctest::Contains;

namespace {

// Runs m in float32 on x, then converts m (in place) to float64 and runs it again.
double f32_vs_f64(nn::Module& m, const Tensor& x32) {
  Tensor y32 = m.forward(x32);
  m.to(kFloat64);
  Tensor y64 = m.forward(x32.to(kFloat64));
  m.to(kFloat32);
  return testing::max_rel_diff(y32.to(kFloat64), y64);
}

// Fills every floating parameter with N(0, 0.5^2) (so scales and shifts are not 1 and 0).
void randomize(nn::Module& m) {
  for (Tensor p : m.parameters()) nn::init::normal_(p, 0.0, 0.5);
}

std::vector<std::string> names_of(const nn::StateDict& v) {
  std::vector<std::string> out;
  for (auto& [n, t] : v) out.push_back(n);
  return out;
}

}  // namespace

// ---- MLP ---------------------------------------------------------------------------------------

TEST_CASE("MLP: structure, counts and forward") {
  manual_seed(20);
  auto mlp = std::make_shared<nn::MLP>(std::vector<int64_t>{4, 8, 8, 3}, nn::Activation::GELU);
  REQUIRE(mlp->size() == 5);  // Linear GELU Linear GELU Linear
  CHECK((*mlp)[1]->name() == "GELU");
  CHECK(mlp->num_parameters() == (4 * 8 + 8) + (8 * 8 + 8) + (8 * 3 + 3));
  CHECK(mlp->named_parameters()[2].first == "2.weight");
  Tensor x = Tensor::randn({5, 4});
  auto l0 = mlp->at<nn::Linear>(0), l2 = mlp->at<nn::Linear>(2), l4 = mlp->at<nn::Linear>(4);
  Tensor want = l4->forward(gelu(l2->forward(gelu(l0->forward(x)))));
  CHECK(testing::max_rel_diff(mlp->forward(x), want) == 0.0);
  CHECK(mlp->repr().rfind("MLP(  # 171 parameters", 0) == 0);

  auto drop = std::make_shared<nn::MLP>(std::vector<int64_t>{4, 8, 2}, nn::Activation::ReLU, 0.25);
  REQUIRE(drop->size() == 4);  // Linear ReLU Dropout Linear
  CHECK((*drop)[2]->name() == "Dropout");
  drop->eval();
  Tensor h = relu(drop->at<nn::Linear>(0)->forward(x));
  CHECK(testing::max_rel_diff(drop->forward(x), drop->at<nn::Linear>(3)->forward(h)) == 0.0);

  CHECK_THROWS_WITH_AS(nn::MLP(std::vector<int64_t>{4}), Contains("at least {in, out}"), Error);
  CHECK_THROWS_WITH_AS(nn::MLP(std::vector<int64_t>{4, 0, 2}),
                       Contains("MLP: every dimension must be positive"), Error);
  CHECK_THROWS_WITH_AS(nn::MLP(std::vector<int64_t>{4, 2}, nn::Activation::ReLU, 1.0),
                       Contains("dropout"), Error);
}

TEST_CASE("MLP: gradcheck (float64)") {
  manual_seed(21);
  auto mlp = std::make_shared<nn::MLP>(std::vector<int64_t>{3, 5, 2}, nn::Activation::Tanh);
  mlp->to(kFloat64);
  Tensor x = Tensor::randn({4, 3}, kFloat64).requires_grad_();
  auto r =
      testing::module_gradcheck(*mlp, [&](const auto& in) { return mlp->forward(in[0]); }, {x});
  CHECK_MESSAGE(r.ok, r.report);
}

// ---- Dropout -----------------------------------------------------------------------------------

TEST_CASE("Dropout: scaled in training, identity in eval") {
  manual_seed(22);
  nn::Dropout drop(0.25);
  Tensor x = Tensor::ones({100, 100});
  Tensor y = drop.forward(x);
  auto v = y.to_vector<double>();
  int64_t zeros = 0;
  for (double e : v) {
    if (e == 0.0)
      ++zeros;
    else
      REQUIRE(e == doctest::Approx(1.0 / 0.75));
  }
  CHECK(double(zeros) / 10000.0 == doctest::Approx(0.25).epsilon(0.1));
  drop.eval();
  CHECK(drop.forward(x).same(x));
  drop.train();
  CHECK(nn::Dropout(0.0).forward(x).same(x));
  CHECK(nn::Dropout(1.0).forward(x).abs().max().item() == 0.0);
  // Same seed, same mask.
  manual_seed(5);
  Tensor a = drop.forward(x);
  manual_seed(5);
  CHECK(testing::max_rel_diff(drop.forward(x), a) == 0.0);
  CHECK_THROWS_WITH_AS(nn::Dropout(1.5), Contains("Dropout: probability p must be in [0, 1]"),
                       Error);
  CHECK(drop.extra_repr() == "p=0.25");
}

// ---- Conv2d and pooling ------------------------------------------------------------------------

TEST_CASE("Conv2d: forward matches a direct convolution") {
  manual_seed(23);
  nn::Conv2d conv(2, 3, {3, 2}, {2, 1}, {1, 0});
  Tensor x = Tensor::randn({2, 2, 5, 4});
  Tensor y = conv.forward(x);
  // OH = (5 + 2 - 3) / 2 + 1 = 3, OW = (4 - 2) / 1 + 1 = 3
  REQUIRE(y.shape() == Shape{2, 3, 3, 3});
  auto X = x.to_vector<double>(), W = conv.weight.to_vector<double>(),
       B = conv.bias.to_vector<double>(), Y = y.to_vector<double>();
  double worst = 0;
  for (int n = 0; n < 2; ++n)
    for (int o = 0; o < 3; ++o)
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
          double s = B[o];
          for (int c = 0; c < 2; ++c)
            for (int ki = 0; ki < 3; ++ki)
              for (int kj = 0; kj < 2; ++kj) {
                int r = i * 2 - 1 + ki, col = j + kj;
                if (r < 0 || r >= 5) continue;
                s += X[((n * 2 + c) * 5 + r) * 4 + col] * W[((o * 2 + c) * 3 + ki) * 2 + kj];
              }
          worst = std::max(worst, std::abs(s - Y[((n * 3 + o) * 3 + i) * 3 + j]));
        }
  CHECK(worst < 1e-5);
  // Unbatched input.
  CHECK(testing::max_rel_diff(conv.forward(x[1]), y[1]) < 1e-6);
  // PyTorch's default init bound 1/sqrt(fan_in), fan_in = 2 * 3 * 2.
  CHECK(conv.weight.abs().max().item() <= 1.0 / std::sqrt(12.0));
  CHECK(conv.extra_repr() == "2, 3, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0)");
  CHECK(conv.num_parameters() == 3 * 2 * 3 * 2 + 3);
}

TEST_CASE("Conv2d: gradcheck (float64), float32 agreement") {
  manual_seed(24);
  auto conv = std::make_shared<nn::Conv2d>(2, 3, 3, 2, 1);
  Tensor x32 = Tensor::randn({2, 2, 5, 5});
  CHECK(f32_vs_f64(*conv, x32) < 1e-5);
  conv->to(kFloat64);
  Tensor x = Tensor::randn({2, 2, 5, 5}, kFloat64).requires_grad_();
  auto r =
      testing::module_gradcheck(*conv, [&](const auto& in) { return conv->forward(in[0]); }, {x});
  CHECK_MESSAGE(r.ok, r.report);
  auto nob = std::make_shared<nn::Conv2d>(3, 2, 1, 1, 0, /*bias=*/false);
  nob->to(kFloat64);
  Tensor xc = Tensor::randn({1, 4, 4, 3}, kFloat64).requires_grad_();  // made NCHW by a permute
  r = testing::module_gradcheck(*nob,
                                [&](const auto& in) {
                                  return nob->forward(in[0].permute({0, 3, 1, 2}));
                                },
                                {xc});
  CHECK_MESSAGE(r.ok, r.report);
}

TEST_CASE("Conv2d: bad input names the layer and the shapes") {
  nn::Conv2d conv(3, 4, 3);
  CHECK_THROWS_WITH_AS(conv.forward(Tensor::zeros({1, 2, 8, 8})),
                       Contains("Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1)): input is [1, 2, "
                                "8, 8] float32 cpu; expected [N, 3, H, W]"),
                       Error);
  CHECK_THROWS_WITH_AS(conv.forward(Tensor::zeros({1, 3, 2, 8})),
                       Contains("smaller than the kernel's extent 3x3"), Error);
  CHECK_THROWS_WITH_AS(conv.forward(Tensor::zeros({3, 8})), Contains("expected [N, 3, H, W]"),
                       Error);
  CHECK_THROWS_WITH_AS(nn::Conv2d(3, 4, 0),
                       Contains("kernel, stride and dilation must be positive"), Error);
}

TEST_CASE("pooling layers") {
  Tensor x = Tensor::arange(0.0, 16.0, 1.0, kFloat32).view({1, 1, 4, 4});
  CHECK(nn::MaxPool2d(2).forward(x).to_vector<double>() == std::vector<double>{5, 7, 13, 15});
  CHECK(nn::AvgPool2d(2).forward(x).to_vector<double>() ==
        std::vector<double>{2.5, 4.5, 10.5, 12.5});
  CHECK(nn::AdaptiveAvgPool2d(1).forward(x).item() == doctest::Approx(7.5));
  CHECK(nn::MaxPool2d(3, 2, 1).forward(x).shape() == Shape{1, 1, 2, 2});
  CHECK_THROWS_WITH_AS(nn::MaxPool2d(2).forward(Tensor::zeros({4, 4})),
                       Contains("MaxPool2d(kernel_size=(2, 2), stride=(0, 0), padding=(0, 0)): "
                                "input is [4, 4]"),
                       Error);
  CHECK_THROWS_WITH_AS(nn::AvgPool2d(2, 1, 2), Contains("AvgPool2d: got kernel_size"), Error);
  CHECK_THROWS_AS(nn::AdaptiveAvgPool2d(0), Error);
}

// ---- Embedding ---------------------------------------------------------------------------------

TEST_CASE("Embedding: lookup, padding row, gradcheck") {
  manual_seed(25);
  auto emb = std::make_shared<nn::Embedding>(6, 3, /*padding_idx=*/0);
  CHECK(emb->weight.select(0, 0).abs().max().item() == 0.0);
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{1, 0, 5, 1, 3, 0}, {2, 3});
  Tensor y = emb->forward(ids);
  REQUIRE(y.shape() == Shape{2, 3, 3});
  CHECK(testing::max_rel_diff(y[0][2], emb->weight[5]) == 0.0);
  CHECK(testing::max_rel_diff(y[1][0], emb->weight[1]) == 0.0);
  // The PAD row gets no gradient; a row used twice gets both contributions.
  y.sum().backward();
  Tensor g = emb->weight.grad();
  CHECK(g[0].abs().max().item() == 0.0);
  CHECK(g[1].min().item() == 2.0);
  CHECK(g[2].abs().max().item() == 0.0);
  emb->zero_grad();

  emb->to(kFloat64);
  auto r =
      testing::module_gradcheck(*emb, [&](const auto& in) { return emb->forward(in[0]); }, {ids});
  CHECK_MESSAGE(r.ok, r.report);
  CHECK(emb->extra_repr() == "6, 3, padding_idx=0");

  // N(0, 1) initialisation.
  manual_seed(26);
  nn::Embedding big(1000, 64);
  auto v = big.weight.to_vector<double>();
  double s1 = 0, s2 = 0;
  for (double e : v) s1 += e, s2 += e * e;
  CHECK(std::abs(s1 / double(v.size())) < 0.02);
  CHECK(std::sqrt(s2 / double(v.size())) == doctest::Approx(1.0).epsilon(0.02));
}

TEST_CASE("Embedding: bad input") {
  nn::Embedding emb(5, 2);
  CHECK_THROWS_WITH_AS(emb.forward(Tensor::zeros({3})),
                       Contains("Embedding(5, 2): indices are [3] float32 cpu; expected int64"),
                       Error);
  CHECK_THROWS_WITH_AS(emb.forward(Tensor::from_vector(std::vector<int64_t>{1, 5})),
                       Contains("out of range"), Error);
  CHECK_THROWS_WITH_AS(nn::Embedding(5, 2, 5), Contains("padding_idx 5"), Error);
  CHECK_THROWS_AS(nn::Embedding(0, 2), Error);
}

// ---- LayerNorm ---------------------------------------------------------------------------------

TEST_CASE("LayerNorm: normalises the trailing dims") {
  manual_seed(27);
  nn::LayerNorm ln(6);
  CHECK(ln.weight.to_vector<double>() == std::vector<double>(6, 1.0));
  CHECK(ln.bias.to_vector<double>() == std::vector<double>(6, 0.0));
  Tensor x = Tensor::randn({3, 6}) * 3.0 + 1.0;
  Tensor y = ln.forward(x);
  CHECK(y.mean({1}).abs().max().item() < 1e-5);
  CHECK(y.var({1}, 0).max().item() == doctest::Approx(1.0).epsilon(1e-3));
  // Two normalised dims and no affine parameters.
  nn::LayerNorm ln2(Shape{2, 3}, 1e-5, /*elementwise_affine=*/false);
  CHECK(ln2.parameters().empty());
  Tensor y2 = ln2.forward(x.view({3, 2, 3}));
  CHECK(testing::max_rel_diff(y2.view({3, 6}), y) < 1e-5);
  CHECK(ln.extra_repr() == "[6], eps=1e-05, elementwise_affine=true");
  CHECK_THROWS_WITH_AS(ln.forward(Tensor::zeros({3, 5})),
                       Contains("LayerNorm([6], eps=1e-05, elementwise_affine=true): input is [3, "
                                "5] float32 cpu; its trailing dims must be [6]"),
                       Error);
  CHECK_THROWS_AS(nn::LayerNorm(Shape{}), Error);
}

TEST_CASE("LayerNorm: gradcheck (float64), float32 agreement") {
  manual_seed(28);
  auto ln = std::make_shared<nn::LayerNorm>(Shape{2, 3});
  randomize(*ln);
  CHECK(f32_vs_f64(*ln, Tensor::randn({4, 2, 3})) < 1e-5);
  ln->to(kFloat64);
  Tensor x = Tensor::randn({4, 2, 3}, kFloat64).requires_grad_();
  auto r = testing::module_gradcheck(*ln, [&](const auto& in) { return ln->forward(in[0]); }, {x});
  CHECK_MESSAGE(r.ok, r.report);
}

// ---- BatchNorm2d -------------------------------------------------------------------------------

TEST_CASE("BatchNorm2d: batch statistics, running statistics, eval mode") {
  manual_seed(29);
  nn::BatchNorm2d bn(3);
  CHECK(names_of(bn.state_dict()) == std::vector<std::string>{"weight", "bias", "running_mean",
                                                              "running_var",
                                                              "num_batches_tracked"});
  CHECK(bn.num_parameters() == 6);
  Tensor x = Tensor::randn({4, 3, 2, 2}) * 2.0 + 0.5;
  Tensor y = bn.forward(x);
  // Per channel: mean 0 and biased variance 1 over (N, H, W).
  CHECK(y.mean({0, 2, 3}).abs().max().item() < 1e-5);
  CHECK(testing::max_rel_diff(y.var({0, 2, 3}, 0), Tensor::ones({3})) < 1e-3);
  // running = 0.9 * running + 0.1 * batch statistic (unbiased variance).
  Tensor m = x.mean({0, 2, 3}), v = x.var({0, 2, 3}, 1);
  CHECK(testing::max_rel_diff(bn.running_mean, m * 0.1) < 1e-6);
  CHECK(testing::max_rel_diff(bn.running_var, v * 0.1 + 0.9) < 1e-6);
  CHECK(bn.num_batches_tracked.item() == 1);
  bn.forward(x);
  CHECK(bn.num_batches_tracked.item() == 2);
  CHECK(testing::max_rel_diff(bn.running_mean, m * 0.19) < 1e-6);

  // Eval: a fixed per-channel affine map with the running statistics; no updates.
  bn.eval();
  randomize(bn);
  Tensor rm = bn.running_mean.clone(), rv = bn.running_var.clone();
  Tensor ye = bn.forward(x);
  Tensor want = (x - rm.view({1, 3, 1, 1})) / (rv.view({1, 3, 1, 1}) + 1e-5).sqrt() *
                    bn.weight.view({1, 3, 1, 1}) +
                bn.bias.view({1, 3, 1, 1});
  CHECK(testing::max_rel_diff(ye, want) < 1e-5);
  CHECK(testing::max_rel_diff(bn.running_mean, rm) == 0.0);
  CHECK(bn.num_batches_tracked.item() == 2);
  // A single value per channel is fine in eval mode, an error in training.
  CHECK(bn.forward(Tensor::randn({1, 3, 1, 1})).shape() == Shape{1, 3, 1, 1});
  bn.train();
  CHECK_THROWS_WITH_AS(bn.forward(Tensor::randn({1, 3, 1, 1})),
                       Contains("more than one value per channel"), Error);
  CHECK_THROWS_WITH_AS(bn.forward(Tensor::randn({2, 4, 2, 2})),
                       Contains("BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=true, "
                                "track_running_stats=true): input is [2, 4, 2, 2] float32 cpu; "
                                "expected [N, 3, H, W]"),
                       Error);
  bn.reset_running_stats();
  CHECK(bn.running_var.to_vector<double>() == std::vector<double>(3, 1.0));
  CHECK(bn.num_batches_tracked.item() == 0);

  // Without running statistics: batch statistics in eval mode too, and no buffers.
  nn::BatchNorm2d free(3, 1e-5, 0.1, /*affine=*/false, /*track_running_stats=*/false);
  CHECK(free.state_dict().empty());
  free.eval();
  CHECK(free.forward(x).mean({0, 2, 3}).abs().max().item() < 1e-5);
}

TEST_CASE("BatchNorm2d: gradcheck in training and eval mode (float64), to(kFloat64)") {
  manual_seed(30);
  auto bn = std::make_shared<nn::BatchNorm2d>(2);
  randomize(*bn);
  CHECK(f32_vs_f64(*bn, Tensor::randn({3, 2, 2, 3})) < 1e-5);
  bn->to(kFloat64);
  CHECK(bn->running_mean.dtype() == kFloat64);
  CHECK(bn->num_batches_tracked.dtype() == kInt64);
  Tensor x = Tensor::randn({3, 2, 2, 3}, kFloat64).requires_grad_();
  auto fn = [&](const auto& in) { return bn->forward(in[0]); };
  auto r = testing::module_gradcheck(*bn, fn, {x});
  CHECK_MESSAGE(r.ok, r.report);
  bn->eval();
  r = testing::module_gradcheck(*bn, fn, {x});
  CHECK_MESSAGE(r.ok, r.report);
}

// ---- PatchEmbed --------------------------------------------------------------------------------

TEST_CASE("PatchEmbed: CLS token first, patches row by row, positions added") {
  manual_seed(31);
  nn::PatchEmbed pe(/*img_size=*/{4, 6}, /*patch_size=*/2, /*in_channels=*/3, /*embed_dim=*/5);
  CHECK(pe.num_patches() == 6);
  CHECK(names_of(pe.state_dict()) ==
        std::vector<std::string>{"cls_token", "pos_embed", "proj.weight", "proj.bias"});
  CHECK(pe.pos_embed.shape() == Shape{1, 7, 5});
  CHECK(pe.pos_embed.abs().max().item() <= 0.04);
  Tensor x = Tensor::randn({2, 3, 4, 6});
  Tensor y = pe.forward(x);
  REQUIRE(y.shape() == Shape{2, 7, 5});
  Tensor pos = pe.pos_embed[0];
  for (int b = 0; b < 2; ++b) {
    CHECK(testing::max_rel_diff(y[b][0], pe.cls_token[0][0] + pos[0]) < 1e-6);
    // Token 1 + r * 3 + c is the patch at grid row r, column c.
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 3; ++c) {
        Tensor patch = x[b].narrow(1, 2 * r, 2).narrow(2, 2 * c, 2);  // [3, 2, 2]
        Tensor proj = (pe.proj->weight * patch.unsqueeze(0)).sum({1, 2, 3}) + pe.proj->bias;
        CHECK(testing::max_rel_diff(y[b][1 + r * 3 + c], proj + pos[1 + r * 3 + c]) < 1e-5);
      }
  }
  CHECK_THROWS_WITH_AS(pe.forward(Tensor::randn({2, 3, 4, 4})),
                       Contains("input is [2, 3, 4, 4] float32 cpu; expected [B, 3, 4, 6]"), Error);
  CHECK_THROWS_WITH_AS(nn::PatchEmbed(5, 2, 3, 4), Contains("multiple of the patch size"), Error);
}

TEST_CASE("PatchEmbed: gradcheck (float64)") {
  manual_seed(32);
  auto pe = std::make_shared<nn::PatchEmbed>(4, 2, 2, 3);
  pe->to(kFloat64);
  Tensor x = Tensor::randn({2, 2, 4, 4}, kFloat64).requires_grad_();
  auto r = testing::module_gradcheck(*pe, [&](const auto& in) { return pe->forward(in[0]); }, {x});
  CHECK_MESSAGE(r.ok, r.report);
}

// ---- ResNet ------------------------------------------------------------------------------------

TEST_CASE("ResNet: parameter counts (hand-computed small config, ResNet-18)") {
  manual_seed(33);
  nn::ResNetConfig cfg;
  cfg.in_channels = 3;
  cfg.widths = {4, 8};
  cfg.blocks = {1, 1};
  cfg.num_classes = 5;
  cfg.imagenet_stem = false;
  auto small = std::make_shared<nn::ResNet>(cfg);
  // stem: conv 3*4*9 = 108, bn 8
  // layer1.0 (4 -> 4): convs 2 * 4*4*9 = 288, bns 16                          -> 304
  // layer2.0 (4 -> 8, stride 2): conv1 4*8*9 = 288, conv2 8*8*9 = 576, bns 32,
  //   downsample conv 4*8 = 32 + bn 16                                       -> 944
  // fc: 8*5 + 5 = 45
  CHECK(small->num_parameters() == 108 + 8 + 304 + 944 + 45);
  auto sd = names_of(small->state_dict());
  auto has = [&](const std::string& n) { return std::find(sd.begin(), sd.end(), n) != sd.end(); };
  CHECK(has("layer2.0.downsample.0.weight"));
  CHECK(has("layer2.0.downsample.1.running_var"));
  CHECK(has("layer1.0.bn2.num_batches_tracked"));
  CHECK(!has("layer1.0.downsample.0.weight"));
  CHECK(has("fc.bias"));
  CHECK(small->stages.size() == 2);

  auto r18 = nn::resnet18();
  CHECK(r18->num_parameters() == 11176512);  // torchvision resnet18 (11,689,512) minus its fc
  CHECK(r18->feature_dim() == 512);
  CHECK(nn::resnet18(10)->num_parameters() == 11176512 + 512 * 10 + 10);
  CHECK(r18->repr().rfind("ResNet(  # 11,176,512 parameters", 0) == 0);
}

TEST_CASE("ResNet: forward shapes, train and eval") {
  manual_seed(34);
  nn::ResNetConfig cfg;
  cfg.in_channels = 1;
  cfg.widths = {4, 8, 8};
  cfg.blocks = {1, 2, 1};
  cfg.num_classes = 3;
  cfg.imagenet_stem = false;
  nn::ResNet net(cfg);
  Tensor x = Tensor::randn({2, 1, 8, 8});
  CHECK(net.forward(x).shape() == Shape{2, 3});
  CHECK(net.forward_features(x).shape() == Shape{2, 8});
  net.eval();
  Tensor a = net.forward(x);
  CHECK(testing::max_rel_diff(net.forward(x), a) == 0.0);  // eval: deterministic, no updates
  // The ImageNet stem divides the resolution by 4 before the stages.
  auto r18 = nn::resnet18(0, 3);
  r18->eval();
  CHECK(r18->forward(Tensor::randn({1, 3, 32, 32})).shape() == Shape{1, 512});
  CHECK_THROWS_WITH_AS(
      net.forward(Tensor::randn({2, 3, 8, 8})),
      Contains("ResNet(): input is [2, 3, 8, 8] float32 cpu; expected [N, 1, H, W]"), Error);
  cfg.blocks = {1};
  CHECK_THROWS_WITH_AS(nn::ResNet{cfg}, Contains("equal length"), Error);
}

TEST_CASE("ResNet: gradcheck of a tiny network (float64, training mode)") {
  manual_seed(35);
  nn::ResNetConfig cfg;
  cfg.in_channels = 2;
  cfg.widths = {2, 3};
  cfg.blocks = {1, 1};
  cfg.num_classes = 2;
  cfg.imagenet_stem = false;
  auto net = std::make_shared<nn::ResNet>(cfg);
  CHECK(f32_vs_f64(*net, Tensor::randn({2, 2, 4, 4})) < 1e-5);
  net->to(kFloat64);
  Tensor x = Tensor::randn({2, 2, 4, 4}, kFloat64).requires_grad_();
  auto r =
      testing::module_gradcheck(*net, [&](const auto& in) { return net->forward(in[0]); }, {x});
  CHECK_MESSAGE(r.ok, r.report);
}
