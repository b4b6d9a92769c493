// MultiheadAttention and the transformer layers: a naive reference for attention, the mask
// conventions (causal, key padding, bool and float attn_mask), gradient checks, layer layouts
// (post-norm and pre-norm), names and parameter counts, bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "nn_test_util.h"

using namespace mmgrad;
using doctest::Contains;

namespace {

// Reference multi-head attention in plain loops (float64), batch-first inputs.
// bias(b, h, i, j) is added to the scaled score of query i and key j (-inf forbids).
struct Reference {
  Tensor output;   // [B, L, E]
  Tensor weights;  // [B, L, S], averaged over heads
};
Reference reference_mha(const nn::MultiheadAttention& m, const Tensor& q, const Tensor& k,
                        const Tensor& v, const std::function<double(int, int, int, int)>& bias) {
  const int B = int(q.size(0)), L = int(q.size(1)), S = int(k.size(1)), E = int(m.embed_dim),
            H = int(m.num_heads), D = E / H;
  auto W = m.in_proj_weight.to_vector<double>(), bvec = m.in_proj_bias.to_vector<double>();
  auto Wo = m.out_proj->weight.to_vector<double>(), bo = m.out_proj->bias.to_vector<double>();
  auto qv = q.to_vector<double>(), kv = k.to_vector<double>(), vv = v.to_vector<double>();
  // proj(x, n, block)[b][t][e] = sum_f W[block*E + e][f] x[b][t][f] + bias[block*E + e]
  auto proj = [&](const std::vector<double>& x, int n, int block) {
    std::vector<double> out(size_t(B * n * E));
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < n; ++t)
        for (int e = 0; e < E; ++e) {
          double s = bvec[block * E + e];
          for (int f = 0; f < E; ++f) s += W[(block * E + e) * E + f] * x[(b * n + t) * E + f];
          out[(b * n + t) * E + e] = s;
        }
    return out;
  };
  auto Q = proj(qv, L, 0), K = proj(kv, S, 1), V = proj(vv, S, 2);
  std::vector<double> concat(size_t(B * L * E), 0.0), wavg(size_t(B * L * S), 0.0);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < L; ++i) {
        std::vector<double> p(size_t(S));
        double mx = -INFINITY;
        for (int j = 0; j < S; ++j) {
          double s = 0;
          for (int d = 0; d < D; ++d)
            s += Q[(b * L + i) * E + h * D + d] * K[(b * S + j) * E + h * D + d];
          p[j] = s / std::sqrt(double(D)) + bias(b, h, i, j);
          mx = std::max(mx, p[j]);
        }
        double z = 0;
        for (int j = 0; j < S; ++j) z += (p[j] = std::exp(p[j] - mx));
        for (int j = 0; j < S; ++j) {
          p[j] /= z;
          wavg[(b * L + i) * S + j] += p[j] / H;
          for (int d = 0; d < D; ++d)
            concat[(b * L + i) * E + h * D + d] += p[j] * V[(b * S + j) * E + h * D + d];
        }
      }
  std::vector<double> out(size_t(B * L * E));
  for (int r = 0; r < B * L; ++r)
    for (int e = 0; e < E; ++e) {
      double s = bo[e];
      for (int f = 0; f < E; ++f) s += Wo[e * E + f] * concat[r * E + f];
      out[r * E + e] = s;
    }
  return {Tensor::from_vector(out, {B, L, E}), Tensor::from_vector(wavg, {B, L, S})};
}

double no_bias(int, int, int, int) { return 0.0; }

std::shared_ptr<nn::MultiheadAttention> make_mha(int64_t E, int64_t H, uint64_t seed) {
  manual_seed(seed);
  auto m = std::make_shared<nn::MultiheadAttention>(E, H);
  // Nonzero biases so that they are exercised (PyTorch initialises them to 0).
  nn::init::normal_(m->in_proj_bias, 0.0, 0.3);
  nn::init::normal_(m->out_proj->bias, 0.0, 0.3);
  m->to(kFloat64);
  return m;
}

}  // namespace

TEST_CASE("MultiheadAttention: parameters, names and initialisation like PyTorch") {
  manual_seed(40);
  nn::MultiheadAttention m(8, 2);
  auto np = m.named_parameters();
  REQUIRE(np.size() == 4);
  CHECK(np[0].first == "in_proj_weight");
  CHECK(np[1].first == "in_proj_bias");
  CHECK(np[2].first == "out_proj.weight");
  CHECK(np[3].first == "out_proj.bias");
  CHECK(m.num_parameters() == 3 * 64 + 24 + 64 + 8);
  CHECK(m.in_proj_bias.abs().max().item() == 0.0);
  CHECK(m.out_proj->bias.abs().max().item() == 0.0);
  // Xavier uniform over [24, 8]: bound sqrt(6 / 32).
  CHECK(m.in_proj_weight.abs().max().item() <= std::sqrt(6.0 / 32.0));
  CHECK(m.head_dim == 4);
  CHECK(m.extra_repr() == "embed_dim=8, num_heads=2, dropout=0, batch_first=true");
}

TEST_CASE("MultiheadAttention: self and cross attention match a naive reference") {
  auto m = make_mha(4, 2, 41);
  Tensor x = Tensor::randn({2, 3, 4}, kFloat64);
  SUBCASE("self-attention (one fused projection)") {
    auto [out, w] = m->forward(x, x, x);
    auto ref = reference_mha(*m, x, x, x, no_bias);
    CHECK(out.shape() == Shape{2, 3, 4});
    CHECK(w.shape() == Shape{2, 3, 3});
    CHECK(testing::max_rel_diff(out, ref.output) < 1e-12);
    CHECK(testing::max_rel_diff(w, ref.weights) < 1e-12);
    // Rows of the weights sum to 1; the single-input forward is the same output.
    CHECK(testing::max_rel_diff(w.sum({2}), Tensor::ones({2, 3}, kFloat64)) < 1e-12);
    CHECK(testing::max_rel_diff(m->forward(x), out) == 0.0);
    // Same values in different tensors take the general path: same result.
    CHECK(testing::max_rel_diff(m->forward(x, x.clone(), x.clone()).output, out) < 1e-12);
  }
  SUBCASE("cross-attention, key == value, S != L") {
    Tensor mem = Tensor::randn({2, 5, 4}, kFloat64);
    auto r = m->forward(x, mem, mem);
    auto ref = reference_mha(*m, x, mem, mem, no_bias);
    CHECK(r.output.shape() == Shape{2, 3, 4});
    CHECK(r.weights.shape() == Shape{2, 3, 5});
    CHECK(testing::max_rel_diff(r.output, ref.output) < 1e-12);
    CHECK(testing::max_rel_diff(r.weights, ref.weights) < 1e-12);
  }
  SUBCASE("cross-attention, three different tensors") {
    Tensor k = Tensor::randn({2, 5, 4}, kFloat64), v = Tensor::randn({2, 5, 4}, kFloat64);
    auto r = m->forward(x, k, v, {}, {}, /*need_weights=*/false);
    CHECK(!r.weights.defined());
    CHECK(testing::max_rel_diff(r.output, reference_mha(*m, x, k, v, no_bias).output) < 1e-12);
  }
  SUBCASE("per-head weights") {
    auto r = m->forward(x, x, x, {}, {}, true, /*average_attn_weights=*/false);
    REQUIRE(r.weights.shape() == Shape{2, 2, 3, 3});
    CHECK(testing::max_rel_diff(r.weights.mean({1}), m->forward(x, x, x).weights) < 1e-12);
  }
  SUBCASE("sequence-first layout and unbatched input") {
    auto seq_first = std::make_shared<nn::MultiheadAttention>(4, 2, 0.0, true, false);
    seq_first->to(kFloat64);
    seq_first->load_state_dict(m->state_dict());
    Tensor xs = x.transpose(0, 1);  // [L, B, E]
    auto r = seq_first->forward(xs, xs, xs);
    CHECK(r.output.shape() == Shape{3, 2, 4});
    CHECK(testing::max_rel_diff(r.output.transpose(0, 1), m->forward(x)) < 1e-12);
    CHECK(r.weights.shape() == Shape{2, 3, 3});  // weights are batch-first, as in PyTorch
    Tensor one = x[1];                           // [L, E]
    auto u = m->forward(one, one, one);
    CHECK(u.output.shape() == Shape{3, 4});
    CHECK(u.weights.shape() == Shape{3, 3});
    CHECK(testing::max_rel_diff(u.output, m->forward(x)[1]) < 1e-12);
  }
}

TEST_CASE("MultiheadAttention: masks follow nn.MultiheadAttention's convention") {
  auto m = make_mha(4, 2, 42);
  const double inf = INFINITY;
  Tensor q = Tensor::randn({2, 3, 4}, kFloat64);
  Tensor kv = Tensor::randn({2, 4, 4}, kFloat64);

  SUBCASE("key_padding_mask: true keys are ignored") {
    // batch 0: last key padded; batch 1: keys 0 and 2 padded.
    Tensor pad = Tensor::from_vector(std::vector<bool>{0, 0, 0, 1, 1, 0, 1, 0}, {2, 4});
    auto r = m->forward(q, kv, kv, pad);
    auto ref = reference_mha(*m, q, kv, kv, [](int b, int, int, int j) {
      bool padded = b == 0 ? j == 3 : (j == 0 || j == 2);
      return padded ? -INFINITY : 0.0;
    });
    CHECK(testing::max_rel_diff(r.output, ref.output) < 1e-12);
    CHECK(testing::max_rel_diff(r.weights, ref.weights) < 1e-12);
    CHECK(r.weights[0].select(1, 3).abs().max().item() == 0.0);
    CHECK(r.weights[1].select(1, 0).abs().max().item() == 0.0);
    // Whatever sits at padded positions does not matter.
    Tensor kv2 = kv.clone();
    {
      NoGradGuard g;
      kv2[0][3].fill_(100.0);
      kv2[1][0].fill_(-7.0);
    }
    CHECK(testing::max_rel_diff(m->forward(q, kv2, kv2, pad).output, r.output) < 1e-12);
    // A float key padding mask is added to the scores.
    Tensor fpad = Tensor::zeros({2, 4}, kFloat64).masked_fill(pad, -inf);
    CHECK(testing::max_rel_diff(m->forward(q, kv, kv, fpad).output, r.output) < 1e-12);
  }
  SUBCASE("bool attn_mask: true = may NOT attend; float masks are added") {
    std::vector<bool> blocked = {0, 1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1};  // [L=3, S=4]
    Tensor am = Tensor::from_vector(blocked, {3, 4});
    auto r = m->forward(q, kv, kv, {}, am);
    auto ref = reference_mha(*m, q, kv, kv, [&](int, int, int i, int j) {
      return blocked[size_t(i * 4 + j)] ? -INFINITY : 0.0;
    });
    CHECK(testing::max_rel_diff(r.output, ref.output) < 1e-12);
    CHECK(testing::max_rel_diff(r.weights, ref.weights) < 1e-12);
    // A float mask with finite values shifts the scores.
    Tensor fm = Tensor::randn({3, 4}, kFloat64);
    auto fv = fm.to_vector<double>();
    auto rf = m->forward(q, kv, kv, {}, fm);
    auto reff =
        reference_mha(*m, q, kv, kv, [&](int, int, int i, int j) { return fv[size_t(i * 4 + j)]; });
    CHECK(testing::max_rel_diff(rf.output, reff.output) < 1e-12);
    // Mixed: a float attn_mask with a bool key padding mask.
    Tensor pad = Tensor::from_vector(std::vector<bool>{0, 1, 0, 0, 0, 0, 0, 1}, {2, 4});
    auto rm = m->forward(q, kv, kv, pad, fm);
    auto refm = reference_mha(*m, q, kv, kv, [&](int b, int, int i, int j) {
      bool padded = b == 0 ? j == 1 : j == 3;
      return padded ? -INFINITY : fv[size_t(i * 4 + j)];
    });
    CHECK(testing::max_rel_diff(rm.output, refm.output) < 1e-12);
  }
  SUBCASE("per-head 3-D attn_mask [B * H, L, S]") {
    Tensor am = Tensor::rand({4, 3, 4}, kFloat64) > 0.6;
    {
      NoGradGuard g;
      am.select(2, 0).fill_(0.0);  // keep key 0 visible to every query
    }
    auto a = am.to_vector<bool>();
    auto r = m->forward(q, kv, kv, {}, am);
    auto ref = reference_mha(*m, q, kv, kv, [&](int b, int h, int i, int j) {
      return a[size_t(((b * 2 + h) * 3 + i) * 4 + j)] ? -INFINITY : 0.0;
    });
    CHECK(testing::max_rel_diff(r.output, ref.output) < 1e-12);
  }
  SUBCASE("a query with every key masked attends to nothing") {
    Tensor am = Tensor::from_vector(std::vector<bool>{1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0}, {3, 4});
    auto r = m->forward(q, kv, kv, {}, am, true, false);
    CHECK(r.weights.select(2, 0).abs().max().item() == 0.0);
    // Its output is out_proj of a zero vector: the bias.
    CHECK(testing::max_rel_diff(r.output[0][0], m->out_proj->bias) < 1e-12);
  }
}

TEST_CASE("MultiheadAttention: causal masking hides the future") {
  auto m = make_mha(4, 2, 43);
  Tensor x = Tensor::randn({2, 5, 4}, kFloat64);
  auto r = m->forward(x, x, x, {}, {}, true, true, /*is_causal=*/true);
  auto ref =
      reference_mha(*m, x, x, x, [](int, int, int i, int j) { return j > i ? -INFINITY : 0.0; });
  CHECK(testing::max_rel_diff(r.output, ref.output) < 1e-12);
  // The explicit mask (PyTorch's generate_square_subsequent_mask, bool) is the same thing.
  Tensor cm = nn::causal_mask(5, 5);
  CHECK(cm.to_vector<bool>()[1] == true);   // (0, 1): the future
  CHECK(cm.to_vector<bool>()[5] == false);  // (1, 0): the past
  CHECK(testing::max_rel_diff(m->forward(x, x, x, {}, cm).output, r.output) < 1e-12);
  // Changing tokens 3 and 4 leaves outputs 0..2 unchanged, and changes output 3.
  Tensor x2 = x.clone();
  {
    NoGradGuard g;
    x2.narrow(1, 3, 2).copy_(Tensor::randn({2, 2, 4}, kFloat64));
  }
  Tensor r2 = m->forward(x2, x2, x2, {}, {}, false, true, true).output;
  CHECK(testing::max_rel_diff(r2.narrow(1, 0, 3), r.output.narrow(1, 0, 3)) < 1e-12);
  CHECK(testing::max_rel_diff(r2.narrow(1, 3, 1), r.output.narrow(1, 3, 1)) > 1e-3);
  // Without the mask the first outputs would change.
  CHECK(testing::max_rel_diff(m->forward(x2).narrow(1, 0, 3), m->forward(x).narrow(1, 0, 3)) >
        1e-3);
}

TEST_CASE("MultiheadAttention: gradcheck (float64) with masks, self and cross") {
  auto m = make_mha(4, 2, 44);
  Tensor x = Tensor::randn({2, 3, 4}, kFloat64).requires_grad_();
  Tensor pad = Tensor::from_vector(std::vector<bool>{0, 0, 1, 0, 0, 0}, {2, 3});
  auto r = testing::module_gradcheck(
      *m,
      [&](const auto& in) {
        return m->forward(in[0], in[0], in[0], pad, {}, true, true, /*is_causal=*/true).output;
      },
      {x});
  CHECK_MESSAGE(r.ok, r.report);
  // The weights are differentiable too.
  r = testing::module_gradcheck(
      *m, [&](const auto& in) { return m->forward(in[0], in[0], in[0]).weights; }, {x});
  CHECK_MESSAGE(r.ok, r.report);
  Tensor q = Tensor::randn({2, 2, 4}, kFloat64).requires_grad_();
  Tensor mem = Tensor::randn({2, 3, 4}, kFloat64).requires_grad_();
  r = testing::module_gradcheck(
      *m, [&](const auto& in) { return m->forward(in[0], in[1], in[1]).output; }, {q, mem});
  CHECK_MESSAGE(r.ok, r.report);
}

TEST_CASE("MultiheadAttention: dropout on the weights only in training") {
  manual_seed(45);
  auto m = std::make_shared<nn::MultiheadAttention>(4, 2, /*dropout=*/0.5);
  Tensor x = Tensor::randn({2, 6, 4});
  Tensor a = m->forward(x), b = m->forward(x);
  CHECK(testing::max_rel_diff(a, b) > 1e-4);  // different masks
  m->eval();
  CHECK(testing::max_rel_diff(m->forward(x), m->forward(x)) == 0.0);
}

TEST_CASE("MultiheadAttention: bad input names the layer and the shapes") {
  nn::MultiheadAttention m(4, 2);
  Tensor x = Tensor::randn({2, 3, 4});
  CHECK_THROWS_WITH_AS(nn::MultiheadAttention(6, 4),
                       Contains("embed_dim (6) must be a positive multiple of num_heads (4)"),
                       Error);
  CHECK_THROWS_WITH_AS(
      m.forward(Tensor::randn({2, 3, 5})),
      Contains("MultiheadAttention(embed_dim=4, num_heads=2, dropout=0, "
               "batch_first=true): query, key and value must end in embed_dim = 4"),
      Error);
  CHECK_THROWS_WITH_AS(m.forward(Tensor::randn({3, 4, 4, 4})),
                       Contains("expected all [batch, seq, embed_dim]"), Error);
  CHECK_THROWS_WITH_AS(m.forward(x, Tensor::randn({3, 5, 4}), Tensor::randn({3, 5, 4})),
                       Contains("batch sizes or key/value lengths differ"), Error);
  CHECK_THROWS_WITH_AS(m.forward(x, x, x, Tensor::zeros({2, 4}, kBool)),
                       Contains("key_padding_mask is [2, 4] bool cpu; expected [batch, source_len] "
                                "= [2, 3]"),
                       Error);
  CHECK_THROWS_WITH_AS(m.forward(x, x, x, {}, Tensor::zeros({3, 2}, kBool)),
                       Contains("attn_mask is [3, 2] bool cpu; expected [target_len, source_len] "
                                "= [3, 3]"),
                       Error);
  CHECK_THROWS_WITH_AS(m.forward(x, x, x, {}, Tensor::zeros({3, 3}, kInt64)),
                       Contains("expected bool (true = masked out) or float32"), Error);
  CHECK_THROWS_WITH_AS(m.forward(x.to(kFloat64)),
                       Contains("but the layer's parameters are float32"), Error);
}

// ---- transformer layers ------------------------------------------------------------------------

TEST_CASE("TransformerEncoderLayer: post-norm and pre-norm layouts") {
  manual_seed(46);
  for (bool norm_first : {false, true}) {
    CAPTURE(norm_first);
    auto layer = std::make_shared<nn::TransformerEncoderLayer>(8, 2, 16, 0.0, nn::Activation::GELU,
                                                               norm_first);
    Tensor x = Tensor::randn({2, 5, 8});
    auto ff = [&](const Tensor& h) {
      return layer->linear2->forward(gelu(layer->linear1->forward(h)));
    };
    auto sa = [&](const Tensor& h) { return layer->self_attn->forward(h); };
    Tensor want;
    if (norm_first) {
      Tensor h = x + sa(layer->norm1->forward(x));
      want = h + ff(layer->norm2->forward(h));
    } else {
      Tensor h = layer->norm1->forward(x + sa(x));
      want = layer->norm2->forward(h + ff(h));
    }
    CHECK(testing::max_rel_diff(layer->forward(x), want) < 1e-6);
  }
}

TEST_CASE("TransformerEncoderLayer: names and PyTorch's parameter count") {
  manual_seed(47);
  nn::TransformerEncoderLayer big(512, 8);  // PyTorch: 3,152,384 parameters
  CHECK(big.num_parameters() == 3152384);
  auto np = big.named_parameters();
  std::vector<std::string> names;
  for (auto& [n, t] : np) names.push_back(n);
  CHECK(names == std::vector<std::string>{"self_attn.in_proj_weight", "self_attn.in_proj_bias",
                                          "self_attn.out_proj.weight", "self_attn.out_proj.bias",
                                          "linear1.weight", "linear1.bias", "linear2.weight",
                                          "linear2.bias", "norm1.weight", "norm1.bias",
                                          "norm2.weight", "norm2.bias"});
  nn::TransformerLayerOptions o;
  o.d_model = 8;
  o.nhead = 2;
  o.dim_feedforward = 16;
  auto enc = std::make_shared<nn::TransformerEncoder>(o, 3, /*final_norm=*/true);
  const int64_t per_layer = (3 * 64 + 24 + 64 + 8) + (8 * 16 + 16) + (16 * 8 + 8) + 4 * 8;
  CHECK(enc->num_parameters() == 3 * per_layer + 16);
  auto sd = enc->state_dict();
  CHECK(sd.front().first == "layers.0.self_attn.in_proj_weight");
  CHECK(sd.back().first == "norm.bias");
  CHECK(enc->layers->at<nn::TransformerEncoderLayer>(2)->linear1->weight.name() ==
        "layers.2.linear1.weight");
  CHECK(enc->forward(Tensor::randn({2, 4, 8})).shape() == Shape{2, 4, 8});
  CHECK_THROWS_WITH_AS(nn::TransformerEncoderLayer(6, 4),
                       Contains("d_model (6) must be a positive multiple of nhead (4)"), Error);
  CHECK_THROWS_AS(nn::TransformerEncoder(o, 0), Error);
}

TEST_CASE("TransformerEncoder: causal stack and key padding") {
  manual_seed(48);
  nn::TransformerLayerOptions o;
  o.d_model = 8;
  o.nhead = 2;
  o.dim_feedforward = 16;
  o.dropout = 0.1;
  auto enc = std::make_shared<nn::TransformerEncoder>(o, 2);
  enc->eval();
  Tensor x = Tensor::randn({2, 5, 8});
  Tensor y = enc->forward(x, {}, {}, /*is_causal=*/true);
  Tensor x2 = x.clone();
  {
    NoGradGuard g;
    x2.narrow(1, 2, 3).copy_(Tensor::randn({2, 3, 8}));
  }
  Tensor y2 = enc->forward(x2, {}, {}, true);
  CHECK(testing::max_rel_diff(y2.narrow(1, 0, 2), y.narrow(1, 0, 2)) < 1e-6);
  CHECK(testing::max_rel_diff(y2.narrow(1, 2, 1), y.narrow(1, 2, 1)) > 1e-3);
  // Padded tokens do not influence the others.
  Tensor pad = Tensor::from_vector(std::vector<bool>{0, 0, 0, 1, 1, 0, 0, 0, 0, 1}, {2, 5});
  Tensor yp = enc->forward(x, {}, pad);
  Tensor x3 = x.clone();
  {
    NoGradGuard g;
    x3[0].narrow(0, 3, 2).fill_(9.0);
    x3[1][4].fill_(-9.0);
  }
  Tensor yp3 = enc->forward(x3, {}, pad);
  CHECK(testing::max_rel_diff(yp3[0].narrow(0, 0, 3), yp[0].narrow(0, 0, 3)) < 1e-6);
  CHECK(testing::max_rel_diff(yp3[1].narrow(0, 0, 4), yp[1].narrow(0, 0, 4)) < 1e-6);
}

TEST_CASE("TransformerEncoderLayer: gradcheck post-norm and pre-norm (float64)") {
  for (bool norm_first : {false, true}) {
    CAPTURE(norm_first);
    manual_seed(49);
    auto layer = std::make_shared<nn::TransformerEncoderLayer>(
        4, 2, 6, 0.0, norm_first ? nn::Activation::GELU : nn::Activation::ReLU, norm_first);
    for (Tensor p : layer->parameters()) nn::init::normal_(p, 0.0, 0.5);
    layer->to(kFloat64);
    Tensor x = Tensor::randn({2, 3, 4}, kFloat64).requires_grad_();
    Tensor pad = Tensor::from_vector(std::vector<bool>{0, 0, 0, 0, 1, 0}, {2, 3});
    auto r = testing::module_gradcheck(
        *layer, [&](const auto& in) { return layer->forward(in[0], {}, pad, norm_first); }, {x});
    CHECK_MESSAGE(r.ok, r.report);
  }
}

TEST_CASE("TransformerDecoderLayer: layout, memory masks, causal target, gradcheck") {
  manual_seed(50);
  auto dec = std::make_shared<nn::TransformerDecoderLayer>(4, 2, 6, 0.0);
  for (Tensor p : dec->parameters()) nn::init::normal_(p, 0.0, 0.5);
  dec->to(kFloat64);
  CHECK(dec->named_parameters()[4].first == "multihead_attn.in_proj_weight");
  CHECK(dec->num_parameters() == 2 * (3 * 16 + 12 + 16 + 4) + (4 * 6 + 6) + (6 * 4 + 4) + 6 * 4);
  Tensor tgt = Tensor::randn({2, 3, 4}, kFloat64);
  Tensor mem = Tensor::randn({2, 4, 4}, kFloat64);

  // Post-norm layout, written out with the submodules.
  auto ff = [&](const Tensor& h) { return dec->linear2->forward(relu(dec->linear1->forward(h))); };
  Tensor h = dec->norm1->forward(
      tgt + dec->self_attn->forward(tgt, tgt, tgt, {}, {}, false, true, true).output);
  h = dec->norm2->forward(h + dec->multihead_attn->forward(h, mem, mem).output);
  h = dec->norm3->forward(h + ff(h));
  Tensor y = dec->forward(tgt, mem, {}, {}, {}, {}, /*tgt_is_causal=*/true);
  CHECK(testing::max_rel_diff(y, h) < 1e-12);

  // Causal target: later target tokens do not change earlier outputs; memory always matters.
  Tensor tgt2 = tgt.clone();
  {
    NoGradGuard g;
    tgt2.narrow(1, 2, 1).fill_(3.0);
  }
  Tensor y2 = dec->forward(tgt2, mem, {}, {}, {}, {}, true);
  CHECK(testing::max_rel_diff(y2.narrow(1, 0, 2), y.narrow(1, 0, 2)) < 1e-12);
  Tensor mem2 = mem * 2.0;
  CHECK(testing::max_rel_diff(dec->forward(tgt, mem2, {}, {}, {}, {}, true), y) > 1e-3);
  // Padded memory positions are ignored.
  Tensor mpad = Tensor::from_vector(std::vector<bool>{0, 0, 0, 1, 0, 1, 0, 0}, {2, 4});
  Tensor ym = dec->forward(tgt, mem, {}, {}, {}, mpad);
  Tensor mem3 = mem.clone();
  {
    NoGradGuard g;
    mem3[0][3].fill_(50.0);
    mem3[1][1].fill_(-50.0);
  }
  CHECK(testing::max_rel_diff(dec->forward(tgt, mem3, {}, {}, {}, mpad), ym) < 1e-12);

  Tensor t = tgt.clone().requires_grad_();
  Tensor mm = mem.clone().requires_grad_();
  auto r = testing::module_gradcheck(
      *dec, [&](const auto& in) { return dec->forward(in[0], in[1], {}, {}, {}, mpad, true); },
      {t, mm});
  CHECK_MESSAGE(r.ok, r.report);

  CHECK_THROWS_WITH_AS(dec->forward(tgt, Tensor()), Contains("memory (the encoder output)"), Error);
  CHECK_THROWS_WITH_AS(static_cast<nn::Module&>(*dec).forward(tgt),
                       Contains("TransformerDecoderLayer has no single-input forward"), Error);

  nn::TransformerLayerOptions o;
  o.d_model = 4;
  o.nhead = 2;
  o.dim_feedforward = 6;
  o.norm_first = true;
  nn::TransformerDecoder stack(o, 2, true);
  CHECK(stack.forward(Tensor::randn({1, 3, 4}), Tensor::randn({1, 2, 4})).shape() ==
        Shape{1, 3, 4});
  CHECK(stack.state_dict().back().first == "norm.bias");
}
