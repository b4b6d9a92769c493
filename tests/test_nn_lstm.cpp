// nn::LSTM: the forward against a hand-written loop of the LSTM equations (multi-layer,
// batch_first, initial state, unbatched), float64 gradcheck through the module (inputs, initial
// state and every parameter), PyTorch's parameter names and init, dropout between layers, and
// bad inputs; CPU/CUDA parity (skipped without a GPU); and that it learns a long memory task.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core_test_util.h"  // have_gpu
#include "mmgrad/mmgrad.h"
#include "mmgrad/nn/layers.h"
#include "mmgrad/optim/optim.h"
#include "nn_test_util.h"

using namespace mmgrad;
using doctest::Contains;

namespace {

double sigm(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// The LSTM equations as plain loops over std::vector, time-major: x [T][B][I] flattened,
// h0/c0 [L][B][H] (empty: zeros). Returns output [T][B][H], h_n and c_n [L][B][H], flattened.
struct Ref {
  std::vector<double> out, h_n, c_n;
};
Ref ref_lstm(nn::LSTM& m, const std::vector<double>& x, int64_t T, int64_t B,
             const std::vector<double>& h0, const std::vector<double>& c0) {
  const int64_t H = m.hidden_size, L = m.options.num_layers;
  std::vector<double> in = x;
  int64_t I = m.input_size;
  Ref r;
  for (int64_t k = 0; k < L; ++k) {
    const auto kk = static_cast<size_t>(k);
    auto Wi = m.weight_ih[kk].to_vector<double>(), Wh = m.weight_hh[kk].to_vector<double>();
    std::vector<double> bi(static_cast<size_t>(4 * H), 0.0), bh = bi;
    if (m.options.bias) {
      bi = m.bias_ih[kk].to_vector<double>();
      bh = m.bias_hh[kk].to_vector<double>();
    }
    std::vector<double> h(static_cast<size_t>(B * H), 0.0), c = h;
    if (!h0.empty())
      for (int64_t j = 0; j < B * H; ++j) {
        h[static_cast<size_t>(j)] = h0[static_cast<size_t>(k * B * H + j)];
        c[static_cast<size_t>(j)] = c0[static_cast<size_t>(k * B * H + j)];
      }
    std::vector<double> out(static_cast<size_t>(T * B * H));
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> hn(h.size()), cn(c.size());
      for (int64_t b = 0; b < B; ++b)
        for (int64_t u = 0; u < H; ++u) {
          double z[4];  // gate pre-activations in PyTorch's order i, f, g, o
          for (int64_t q = 0; q < 4; ++q) {
            const int64_t row = q * H + u;
            double s = bi[static_cast<size_t>(row)] + bh[static_cast<size_t>(row)];
            for (int64_t j = 0; j < I; ++j)
              s += Wi[static_cast<size_t>(row * I + j)] *
                   in[static_cast<size_t>((t * B + b) * I + j)];
            for (int64_t j = 0; j < H; ++j)
              s += Wh[static_cast<size_t>(row * H + j)] * h[static_cast<size_t>(b * H + j)];
            z[q] = s;
          }
          const double ig = sigm(z[0]), fg = sigm(z[1]), gg = std::tanh(z[2]), og = sigm(z[3]);
          const auto at = static_cast<size_t>(b * H + u);
          cn[at] = fg * c[at] + ig * gg;
          hn[at] = og * std::tanh(cn[at]);
          out[static_cast<size_t>((t * B + b) * H + u)] = hn[at];
        }
      h = hn;
      c = cn;
    }
    r.h_n.insert(r.h_n.end(), h.begin(), h.end());
    r.c_n.insert(r.c_n.end(), c.begin(), c.end());
    in = out;
    I = H;
    r.out = out;
  }
  return r;
}

}  // namespace

TEST_CASE("LSTM: forward matches a hand-written loop of the equations") {
  manual_seed(7);
  const int64_t T = 5, B = 3, I = 4, H = 6;
  for (int64_t layers : {1, 3})
    for (bool bias : {true, false})
      for (bool batch_first : {false, true})
        for (bool with_state : {false, true}) {
          CAPTURE(layers);
          CAPTURE(bias);
          CAPTURE(batch_first);
          CAPTURE(with_state);
          nn::LSTM m(I, H, {.num_layers = layers, .bias = bias, .batch_first = batch_first});
          m.to(kFloat64);
          Tensor x = Tensor::randn({T, B, I}, kFloat64);  // time-major
          nn::LSTMState s;
          if (with_state)
            s = {Tensor::randn({layers, B, H}, kFloat64), Tensor::randn({layers, B, H}, kFloat64)};
          Ref r = ref_lstm(m, x.to_vector<double>(), T, B,
                           with_state ? s.h.to_vector<double>() : std::vector<double>(),
                           with_state ? s.c.to_vector<double>() : std::vector<double>());
          nn::LSTMOutput y = m.forward(batch_first ? x.transpose(0, 1) : x, s);
          CHECK(y.output.shape() == (batch_first ? Shape{B, T, H} : Shape{T, B, H}));
          CHECK(y.output.is_contiguous());
          CHECK(y.h_n.shape() == Shape{layers, B, H});
          CHECK(y.c_n.shape() == Shape{layers, B, H});
          Tensor out_tm = batch_first ? y.output.transpose(0, 1) : y.output;
          CHECK(testing::max_rel_diff(out_tm.contiguous(),
                                      Tensor::from_vector(r.out, Shape{T, B, H})) < 1e-12);
          CHECK(testing::max_rel_diff(y.h_n, Tensor::from_vector(r.h_n, Shape{layers, B, H})) <
                1e-12);
          CHECK(testing::max_rel_diff(y.c_n, Tensor::from_vector(r.c_n, Shape{layers, B, H})) <
                1e-12);
          // h_n of the last layer is the output at the last step
          CHECK(testing::max_rel_diff(y.h_n.select(0, layers - 1), out_tm.select(0, T - 1)) == 0);
        }
}

TEST_CASE(
    "LSTM: unbatched input, running in two halves, empty batch, float32, the single-output "
    "forward") {
  manual_seed(8);
  nn::LSTM m(3, 4, {.num_layers = 2, .batch_first = true});
  m.to(kFloat64);
  Tensor x = Tensor::randn({6, 3}, kFloat64);  // [T, I]
  nn::LSTMOutput y = m.forward(x, {});
  CHECK(y.output.shape() == Shape{6, 4});
  CHECK(y.h_n.shape() == Shape{2, 4});
  nn::LSTMOutput yb = m.forward(x.unsqueeze(0), {});  // batch of one, batch_first
  CHECK(testing::max_rel_diff(y.output, yb.output.squeeze(0)) == 0);
  CHECK(testing::max_rel_diff(y.c_n, yb.c_n.squeeze(1)) == 0);
  // the state carries the sequence on: steps 0-2, then 3-5 from the returned state
  nn::LSTMOutput a = m.forward(narrow(x, 0, 0, 3), {});
  nn::LSTMOutput b = m.forward(narrow(x, 0, 3, 3), a.state());
  CHECK(testing::max_rel_diff(b.output, narrow(y.output, 0, 3, 3)) < 1e-14);
  CHECK(testing::max_rel_diff(b.h_n, y.h_n) < 1e-14);
  CHECK(testing::max_rel_diff(m.forward(x), y.output) == 0);
  // an empty batch gives empty outputs, as PyTorch
  nn::LSTMOutput e = m.forward(Tensor::zeros({0, 4, 3}, kFloat64), {});
  CHECK(e.output.shape() == Shape{0, 4, 4});
  CHECK(e.h_n.shape() == Shape{2, 0, 4});
  // float32 agrees with float64 to rounding
  Tensor y64 = m.forward(x);
  m.to(kFloat32);
  CHECK(testing::max_rel_diff(m.forward(x.to(kFloat32)).to(kFloat64), y64) < 1e-5);
}

TEST_CASE("LSTM: gradcheck (float64) through inputs, initial state and every parameter") {
  manual_seed(9);
  for (bool batch_first : {false, true}) {
    CAPTURE(batch_first);
    auto m = std::make_shared<nn::LSTM>(
        3, 4, nn::LSTMOptions{.num_layers = 2, .batch_first = batch_first});
    m->to(kFloat64);
    // T = 4 steps, B = 2
    Tensor x =
        Tensor::randn(batch_first ? Shape{2, 4, 3} : Shape{4, 2, 3}, kFloat64).requires_grad_();
    Tensor h0 = Tensor::randn({2, 2, 4}, kFloat64).requires_grad_();
    Tensor c0 = Tensor::randn({2, 2, 4}, kFloat64).requires_grad_();
    // every output (all steps, h_n, c_n) enters the checked loss
    auto fn = [&](const std::vector<Tensor>& in) {
      nn::LSTMOutput y = m->forward(in[0], {in[1], in[2]});
      return cat({y.output.reshape({-1}), y.h_n.reshape({-1}), y.c_n.reshape({-1})}, 0);
    };
    auto r = testing::module_gradcheck(*m, fn, {x, h0, c0});
    CHECK_MESSAGE(r.ok, r.report);
    CHECK(r.elements_checked ==
          24 + 16 + 16 + (48 + 64 + 32) + (64 + 64 + 32));  // x, h0, c0, layers
  }
  // without initial state and without bias, unbatched
  auto m = std::make_shared<nn::LSTM>(2, 3, nn::LSTMOptions{.bias = false});
  m->to(kFloat64);
  Tensor x = Tensor::randn({5, 2}, kFloat64).requires_grad_();
  auto r = testing::module_gradcheck(*m,
                                     [&](const std::vector<Tensor>& in) {
                                       nn::LSTMOutput y = m->forward(in[0], {});
                                       return cat({y.output.reshape({-1}), y.c_n.reshape({-1})}, 0);
                                     },
                                     {x});
  CHECK_MESSAGE(r.ok, r.report);
}

TEST_CASE("LSTM: PyTorch's parameter names, shapes, init and repr") {
  manual_seed(10);
  nn::LSTM m(5, 8, {.num_layers = 2});
  std::vector<std::string> names;
  for (auto& [name, t] : m.state_dict()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                          "bias_hh_l0", "weight_ih_l1", "weight_hh_l1",
                                          "bias_ih_l1", "bias_hh_l1"});
  CHECK(m.weight_ih[0].shape() == Shape{32, 5});
  CHECK(m.weight_ih[1].shape() == Shape{32, 8});
  CHECK(m.weight_hh[1].shape() == Shape{32, 8});
  CHECK(m.bias_hh[1].shape() == Shape{32});
  CHECK(m.num_parameters() == 32 * 5 + 32 * 8 + 32 + 32 + 32 * 8 + 32 * 8 + 32 + 32);
  const double bound = 1.0 / std::sqrt(8.0);
  double largest = 0;
  for (const Tensor& p : m.parameters())
    for (double v : p.to_vector<double>()) largest = std::max(largest, std::abs(v));
  CHECK(largest <= bound);
  CHECK(largest > 0.9 * bound);  // drawn over the whole range, not a narrower one
  CHECK(m.label() == "LSTM(5, 8, num_layers=2)");
  nn::LSTM nb(5, 8, {.bias = false, .batch_first = true, .dropout = 0.25});
  CHECK(nb.state_dict().size() == 2);
  CHECK(nb.label() == "LSTM(5, 8, bias=false, batch_first=true, dropout=0.25)");
}

TEST_CASE("LSTM: dropout between layers only in training mode") {
  manual_seed(11);
  nn::LSTM m(3, 16, {.num_layers = 2, .dropout = 0.5});
  Tensor x = Tensor::randn({4, 2, 3});
  m.eval();
  Tensor e1 = m.forward(x), e2 = m.forward(x);
  CHECK(testing::max_rel_diff(e1, e2) == 0);
  m.train();
  Tensor t1 = m.forward(x);
  CHECK(testing::max_rel_diff(t1, e1) > 1e-3);
  // one layer: nothing to drop between layers, training is deterministic
  nn::LSTM one(3, 4, {.dropout = 0.5});
  CHECK(testing::max_rel_diff(one.forward(x), one.forward(x)) == 0);
}

TEST_CASE("LSTM: bad input is an mmgrad::Error naming the layer") {
  nn::LSTM m(3, 4, {.num_layers = 2});
  auto throws_with = [](auto&& f, const char* text) {
    CHECK_THROWS_WITH_AS(f(), Contains(text), Error);
  };
  throws_with(
      [&] {
        m.forward(Tensor::zeros({5, 2, 4}));
      },
      "LSTM(3, 4, num_layers=2): input is [5, 2, 4] float32 cpu; expected [T, B, 3]");
  throws_with([&] { m.forward(Tensor::zeros({3})); }, "expected [T, B, 3] (or unbatched [T, 3])");
  throws_with([&] { m.forward(Tensor::zeros({1, 5, 2, 3})); }, "expected [T, B, 3]");
  throws_with([&] { m.forward(Tensor::zeros({0, 2, 3})); }, "has no time steps");
  throws_with(
      [&] {
        m.forward(Tensor::zeros({5, 2, 3}, kFloat64));
      },
      "but the layer's parameters are float32");
  throws_with([&] { m.forward(Tensor::zeros({5, 2, 3}, kInt64)); }, "floating-point");
  throws_with(
      [&] {
        m.forward(Tensor::zeros({5, 2, 3}), {Tensor::zeros({2, 2, 4}), Tensor()});
      },
      "give both h_0 and c_0 or neither");
  throws_with(
      [&] {
        m.forward(Tensor::zeros({5, 2, 3}), {Tensor::zeros({1, 2, 4}), Tensor::zeros({2, 2, 4})});
      },
      "h_0 is [1, 2, 4] float32 cpu; expected [2, 2, 4]");
  throws_with(
      [&] {
        m.forward(Tensor::zeros({5, 3}), {Tensor::zeros({2, 4}), Tensor::zeros({2, 1, 4})});
      },
      "c_0 is [2, 1, 4] float32 cpu; expected [2, 4]");
  throws_with([&] { nn::LSTM(0, 4); }, "LSTM: input_size, hidden_size and num_layers must be");
  throws_with([&] { nn::LSTM(3, 4, {.num_layers = 0}); }, "num_layers 0");
  throws_with([&] { nn::LSTM(3, 4, {.dropout = 1.0}); }, "LSTM: dropout must be in [0, 1)");
}

TEST_CASE("LSTM: CPU and CUDA agree, forward and gradients (skipped without a GPU)") {
  if (!testing::have_gpu("LSTM CPU/CUDA parity")) return;
  manual_seed(12);
  const nn::LSTMOptions opt{.num_layers = 2, .batch_first = true};
  nn::LSTM cpu(5, 8, opt), gpu(5, 8, opt);
  gpu.to(kCUDA);
  gpu.load_state_dict(cpu.state_dict());
  Tensor x = Tensor::randn({3, 7, 5});
  Tensor h0 = Tensor::randn({2, 3, 8}), c0 = Tensor::randn({2, 3, 8});
  auto run = [&](nn::LSTM& m, Device dev) {
    Tensor xl = x.to(dev).detach().requires_grad_();
    nn::LSTMOutput y = m.forward(xl, {h0.to(dev), c0.to(dev)});
    Tensor loss = add(sum(mul(y.output, y.output)), sum(mul(y.c_n, y.h_n)));
    loss.backward();
    std::vector<Tensor> out = {y.output, y.h_n, y.c_n, xl.grad()};
    for (const Tensor& p : m.parameters()) out.push_back(p.grad());
    for (Tensor& t : out) t = t.to(kCPU);
    return out;
  };
  std::vector<Tensor> a = run(cpu, kCPU), b = run(gpu, kCUDA);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(testing::max_rel_diff(b[i], a[i]) < 1e-4);
  }
}

TEST_CASE("LSTM: learns to carry the first input across the whole sequence") {
  // The first step holds a bit (+1 or -1), the next T-1 steps only noise; after the last step a
  // linear head must tell the bit. Only a memory that survives T steps can do better than chance.
  manual_seed(13);
  const int64_t T = 12, B = 64, H = 16;
  auto batch = [&](Tensor& x, Tensor& bit) {
    bit = sub(mul(Tensor::rand({B, 1}).lt(0.5).to(kFloat32), 2.0), Tensor::ones({B, 1}));
    Tensor noise = Tensor::randn({B, T - 1, 1});
    x = cat({bit.unsqueeze(1), noise}, 1);  // [B, T, 1], batch_first
  };
  auto lstm = std::make_shared<nn::LSTM>(1, H, nn::LSTMOptions{.batch_first = true});
  auto head = std::make_shared<nn::Linear>(H, 1);
  std::vector<Tensor> params = lstm->parameters();
  for (const Tensor& p : head->parameters()) params.push_back(p);
  optim::Adam opt(params, {.lr = 1e-2});
  auto predict = [&](const Tensor& x) {
    return head->forward(lstm->forward(x, {}).h_n.select(0, 0));
  };
  Tensor x, bit;
  for (int step = 0; step < 300; ++step) {
    batch(x, bit);
    Tensor loss = mse_loss(predict(x), bit);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  NoGradGuard no_grad;
  batch(x, bit);
  const double acc = predict(x).gt(0.0).eq(bit.gt(0.0)).to(kFloat32).mean().item();
  MESSAGE("recall accuracy after 300 steps: " << acc);
  CHECK(acc >= 0.95);
}
