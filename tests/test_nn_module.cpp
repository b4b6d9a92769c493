// nn::Module: registration and names, traversal, train/eval, to(), zero_grad, state dicts,
// printing; init functions; Linear, Sequential and the activations (with gradient checks).
#include <doctest/doctest.h>

#include <cmath>

#include "nn_test_util.h"

using namespace mmgrad;
using doctest::Contains;

namespace {

// A two-layer network written the way a user would write one.
struct Net : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc2;
  Net(int64_t in = 4, int64_t hidden = 8, int64_t out = 2) {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(in, hidden));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(hidden, out));
  }
  std::string name() const override { return "Net"; }
  Tensor forward(const Tensor& x) override { return fc2->forward(relu(fc1->forward(x))); }
};

// A module with a float and an int64 buffer next to a parameter.
struct WithBuffers : nn::Module {
  Tensor scale, stats, steps;
  WithBuffers() {
    scale = register_parameter("scale", Tensor::ones({3}));
    stats = register_buffer("stats", Tensor::zeros({3}));
    steps = register_buffer("steps", Tensor::zeros({}, kInt64));
  }
  std::string name() const override { return "WithBuffers"; }
};

std::vector<std::string> names_of(const std::vector<std::pair<std::string, Tensor>>& v) {
  std::vector<std::string> out;
  for (auto& [n, t] : v) out.push_back(n);
  return out;
}

}  // namespace

TEST_CASE("module: parameters are registered in order under dotted names") {
  auto net = std::make_shared<Net>();
  auto np = net->named_parameters();
  CHECK(names_of(np) ==
        std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"});
  CHECK(net->fc1->weight.name() == "fc1.weight");
  CHECK(net->fc2->bias.name() == "fc2.bias");
  CHECK(net->num_parameters() == 4 * 8 + 8 + 8 * 2 + 2);
  CHECK(net->parameters().size() == 4);
  CHECK(net->parameters(/*recurse=*/false).empty());
  CHECK(net->fc1->parameters(false).size() == 2);
  for (const Tensor& p : net->parameters()) {
    CHECK(p.requires_grad());
    CHECK(p.is_leaf());
  }
  // The handle the layer keeps is the registered tensor itself.
  CHECK(net->parameters()[0].same(net->fc1->weight));

  // Registering the net inside another module renames its whole subtree.
  struct Outer : nn::Module {
    std::shared_ptr<Net> encoder;
    Tensor temperature;
    Outer() {
      temperature = register_parameter("temperature", Tensor::scalar(1.0));
      encoder = register_module("encoder", std::make_shared<Net>());
    }
  };
  auto outer = std::make_shared<Outer>();
  CHECK(outer->encoder->fc1->weight.name() == "encoder.fc1.weight");
  CHECK(outer->temperature.name() == "temperature");
  CHECK(names_of(outer->named_parameters()) ==
        std::vector<std::string>{"temperature", "encoder.fc1.weight", "encoder.fc1.bias",
                                 "encoder.fc2.weight", "encoder.fc2.bias"});
  auto mods = outer->named_modules();
  REQUIRE(mods.size() == 4);
  CHECK(mods[0].first == "");
  CHECK(mods[1].first == "encoder");
  CHECK(mods[2].first == "encoder.fc1");
  CHECK(mods[3].second->name() == "Linear");
  CHECK(outer->named_modules(false).size() == 3);
  CHECK(outer->children().size() == 1);
  CHECK(outer->named_children()[0].first == "encoder");
}

TEST_CASE("module: bad registrations are refused with clear errors") {
  auto net = std::make_shared<Net>();
  CHECK_THROWS_WITH_AS(net->register_parameter("fc1", Tensor::zeros({2})),
                       Contains("'fc1' is already used"), Error);
  CHECK_THROWS_WITH_AS(net->register_parameter("a.b", Tensor::zeros({2})),
                       Contains("must not contain '.'"), Error);
  CHECK_THROWS_WITH_AS(net->register_parameter("", Tensor::zeros({2})), Contains("empty"), Error);
  CHECK_THROWS_WITH_AS(net->register_parameter("u", Tensor()), Contains("undefined"), Error);
  CHECK_THROWS_WITH_AS(net->register_parameter("ids", Tensor::zeros({2}, kInt64)),
                       Contains("only floating-point"), Error);
  // An int64 parameter that does not require grad is fine (and so is an int64 buffer).
  net->register_parameter("ids", Tensor::zeros({2}, kInt64), /*requires_grad=*/false);
  CHECK(!net->named_parameters(/*recurse=*/false).back().second.requires_grad());
  CHECK_THROWS_WITH_AS(net->register_buffer("ids", Tensor::zeros({2})), Contains("already used"),
                       Error);
  CHECK_THROWS_WITH_AS(net->register_module("m", std::shared_ptr<nn::Linear>()),
                       Contains("is null"), Error);
  // A module cannot contain itself (directly or through a child).
  CHECK_THROWS_WITH_AS(net->register_module("self", net), Contains("cycle"), Error);
  auto outer = std::make_shared<nn::Sequential>();
  outer->push_back(net);
  CHECK_THROWS_WITH_AS(net->register_module("up", outer), Contains("cycle"), Error);
  // A parameter computed by an op is detached into a leaf.
  Tensor a = Tensor::ones({2}).requires_grad_();
  Tensor& p = net->register_parameter("derived", a * 2.0);
  CHECK(p.is_leaf());
  CHECK(p.requires_grad());
  CHECK(p.name() == "0.derived");  // net now lives at position 0 of `outer`
}

TEST_CASE("module: a shared layer is listed and counted once") {
  auto shared = std::make_shared<nn::Linear>(3, 3);
  auto seq = std::make_shared<nn::Sequential>();
  seq->push_back(shared);
  seq->push_back(std::make_shared<nn::ReLU>());
  seq->push_back(shared);
  CHECK(seq->parameters().size() == 2);
  CHECK(seq->num_parameters() == 12);
  CHECK(names_of(seq->named_parameters()) == std::vector<std::string>{"0.weight", "0.bias"});
  // The state dict has every name (as in PyTorch), so the tied structure round-trips.
  CHECK(names_of(seq->state_dict()) ==
        std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
}

TEST_CASE("module: train and eval switch the whole tree") {
  auto net = std::make_shared<Net>();
  CHECK(net->is_training());
  CHECK(net->fc1->is_training());
  net->eval();
  CHECK(!net->is_training());
  CHECK(!net->fc2->is_training());
  net->train();
  CHECK(net->fc2->is_training());
  net->fc1->eval();
  CHECK(net->is_training());
  CHECK(!net->fc1->is_training());
}

TEST_CASE("module: zero_grad drops the gradients") {
  manual_seed(1);
  auto net = std::make_shared<Net>();
  net->forward(Tensor::randn({5, 4})).sum().backward();
  for (const Tensor& p : net->parameters()) CHECK(p.grad().defined());
  net->zero_grad();
  for (const Tensor& p : net->parameters()) CHECK(!p.grad().defined());
}

TEST_CASE("module: to(kFloat64) converts in place, seen through existing handles") {
  manual_seed(2);
  auto m = std::make_shared<WithBuffers>();
  auto net = std::make_shared<Net>();
  m->register_module("net", net);
  std::vector<Tensor> held = m->parameters();  // what an optimizer would hold
  Tensor x = Tensor::randn({3, 4});
  Tensor y32 = net->forward(x);
  net->forward(x).sum().backward();
  std::vector<double> w_before = net->fc1->weight.to_vector<double>();

  m->to(kFloat64);
  for (const Tensor& p : held) {
    CHECK(p.dtype() == kFloat64);
    CHECK(p.requires_grad());
    CHECK(p.is_leaf());
  }
  CHECK(held[1].same(net->fc1->weight));
  CHECK(net->fc1->weight.name() == "net.fc1.weight");
  CHECK(net->fc1->weight.to_vector<double>() == w_before);  // float32 -> float64 is exact
  // Gradients move with their parameters; the step counter stays int64.
  CHECK(net->fc1->weight.grad().dtype() == kFloat64);
  CHECK(!m->scale.grad().defined());
  CHECK(m->stats.dtype() == kFloat64);
  CHECK(m->steps.dtype() == kInt64);
  // The converted model computes the same function in float64.
  Tensor y64 = net->forward(x.to(kFloat64));
  CHECK(y64.dtype() == kFloat64);
  CHECK(testing::max_rel_diff(y64, y32.to(kFloat64)) < 1e-5);
  // A float32 input into the float64 model is an error that says so.
  CHECK_THROWS_WITH_AS(net->forward(x), Contains("the layer's parameters are float64"), Error);
  CHECK_THROWS_WITH_AS(m->to(kInt64), Contains("floating-point dtype"), Error);
  m->to(kFloat32);
  CHECK(net->fc2->bias.dtype() == kFloat32);
  m->to(kCPU);  // same device: a no-op
  CHECK(held[1].same(net->fc1->weight));
}

TEST_CASE("tensor: set_data rebinds every handle and keeps autograd identity") {
  Tensor p = Tensor::ones({2, 2}).requires_grad_();
  p.set_name("w");
  Tensor alias = p;
  (p * 3.0).sum().backward();
  REQUIRE(p.grad().defined());
  {
    NoGradGuard g;
    p.set_data(Tensor::full({2, 2}, 5.0));
  }
  CHECK(alias.at({1, 1}) == 5.0);
  CHECK(p.grad().defined());  // same shape, dtype, device: the gradient stays
  p.set_data(Tensor::zeros({3}));
  CHECK(alias.shape() == Shape{3});
  CHECK(!alias.grad().defined());  // shape changed: the old gradient is meaningless
  CHECK(alias.requires_grad());
  CHECK(alias.name() == "w");
  CHECK_THROWS_WITH_AS(p.set_data(Tensor::zeros({3}, kInt64)), Contains("set_data"), Error);
  CHECK_THROWS_AS(p.set_data(Tensor()), Error);
}

TEST_CASE("module: state_dict lists parameters then buffers of each module, recursively") {
  auto m = std::make_shared<WithBuffers>();
  m->register_module("net", std::make_shared<Net>(2, 3, 1));
  struct Tail : nn::Module {
    Tail() {
      register_buffer("cache", Tensor::zeros({2}), /*persistent=*/false);
      register_buffer("kept", Tensor::zeros({2}));
    }
  };
  m->register_module("tail", std::make_shared<Tail>());
  auto sd = m->state_dict();
  CHECK(names_of(sd) == std::vector<std::string>{"scale", "stats", "steps", "net.fc1.weight",
                                                 "net.fc1.bias", "net.fc2.weight", "net.fc2.bias",
                                                 "tail.kept"});
  CHECK(sd[0].second.same(m->scale));  // the tensors themselves, not copies
  CHECK(names_of(m->named_buffers()) ==
        std::vector<std::string>{"stats", "steps", "tail.cache", "tail.kept"});
  CHECK(m->buffers().size() == 4);
}

TEST_CASE("module: load_state_dict round trip") {
  manual_seed(3);
  auto a = std::make_shared<Net>();
  manual_seed(4);
  auto b = std::make_shared<Net>();
  Tensor x = Tensor::randn({2, 4});
  CHECK(testing::max_rel_diff(a->forward(x), b->forward(x)) > 1e-3);
  // Copies of a's values (as a checkpoint loader would produce).
  nn::StateDict saved;
  for (auto& [n, t] : a->state_dict()) saved.emplace_back(n, t.detach().clone());
  std::vector<Tensor> held = b->parameters();
  b->load_state_dict(saved);
  CHECK(testing::max_rel_diff(a->forward(x), b->forward(x)) == 0.0);
  CHECK(held[0].same(b->fc1->weight));  // loaded in place: handles stay valid
  CHECK(b->fc1->weight.requires_grad());
  // Loading a state dict from the module itself is harmless.
  b->load_state_dict(b->state_dict());
  CHECK(testing::max_rel_diff(a->forward(x), b->forward(x)) == 0.0);
}

TEST_CASE("module: load_state_dict rejects bad state dicts and leaves the module unchanged") {
  manual_seed(5);
  auto net = std::make_shared<Net>();
  auto snapshot = [&] {
    std::vector<std::vector<double>> v;
    for (const Tensor& p : net->parameters()) v.push_back(p.to_vector<double>());
    return v;
  };
  const auto before = snapshot();
  auto good = [&] {
    nn::StateDict sd;
    for (auto& [n, t] : net->state_dict()) sd.emplace_back(n, Tensor::zeros(t.shape()));
    return sd;
  };

  SUBCASE("missing") {
    auto sd = good();
    sd.erase(sd.begin() + 2);  // fc2.weight
    CHECK_THROWS_WITH_AS(net->load_state_dict(sd), Contains("missing 'fc2.weight' ([2, 8]"), Error);
  }
  SUBCASE("unexpected") {
    auto sd = good();
    sd.emplace_back("fc3.weight", Tensor::zeros({2, 2}));
    CHECK_THROWS_WITH_AS(net->load_state_dict(sd), Contains("unexpected 'fc3.weight'"), Error);
  }
  SUBCASE("shape mismatch") {
    auto sd = good();
    sd[1].second = Tensor::zeros({9});
    CHECK_THROWS_WITH_AS(
        net->load_state_dict(sd),
        Contains("'fc1.bias' has shape [9] in the state dict but [8] in the module"), Error);
  }
  SUBCASE("shape mismatch is an error even when not strict") {
    auto sd = good();
    sd[1].second = Tensor::zeros({9});
    CHECK_THROWS_WITH_AS(net->load_state_dict(sd, false), Contains("'fc1.bias' has shape [9]"),
                         Error);
  }
  SUBCASE("dtype mismatch") {
    auto sd = good();
    sd[3].second = Tensor::zeros({2}, kFloat64);
    CHECK_THROWS_WITH_AS(net->load_state_dict(sd),
                         Contains("'fc2.bias' has dtype float64 in the state dict but float32"),
                         Error);
  }
  SUBCASE("duplicate and undefined entries") {
    auto sd = good();
    sd.push_back(sd[0]);
    CHECK_THROWS_WITH_AS(net->load_state_dict(sd), Contains("'fc1.weight' appears twice"), Error);
    sd = good();
    sd[0].second = Tensor();
    CHECK_THROWS_WITH_AS(net->load_state_dict(sd), Contains("'fc1.weight' is undefined"), Error);
  }
  SUBCASE("every problem is listed, and the label names the module") {
    auto sd = good();
    sd.erase(sd.begin());
    sd.emplace_back("extra", Tensor::zeros({1}));
    try {
      net->load_state_dict(sd);
      FAIL("no error");
    } catch (const Error& e) {
      std::string msg = e.what();
      CHECK(msg.find("Net.load_state_dict: 2 problem(s), nothing was loaded") == 0);
      CHECK(msg.find("missing 'fc1.weight'") != std::string::npos);
      CHECK(msg.find("unexpected 'extra'") != std::string::npos);
    }
  }
  CHECK(snapshot() == before);

  SUBCASE("non-strict loading takes what matches") {
    auto sd = good();
    sd.erase(sd.begin());  // no fc1.weight
    sd.emplace_back("extra", Tensor::zeros({1}));
    net->load_state_dict(sd, /*strict=*/false);
    auto after = snapshot();
    CHECK(after[0] == before[0]);  // fc1.weight untouched
    CHECK(after[1] == std::vector<double>(8, 0.0));
  }
}

TEST_CASE("module: default forward, repr and counts") {
  struct Bare : nn::Module {
    std::string name() const override { return "Bare"; }
  };
  Bare bare;
  CHECK_THROWS_WITH_AS(bare.forward(Tensor::zeros({1})),
                       Contains("Bare has no single-input forward"), Error);
  // Not owned by a shared_ptr: listing itself is refused with a clear message.
  CHECK_THROWS_WITH_AS(bare.named_modules(), Contains("std::make_shared"), Error);
  CHECK(bare.named_modules(false).empty());

  auto seq = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(4, 8), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(8, 2, false)});
  std::string r = seq->repr();
  CHECK(r ==
        "Sequential(  # 56 parameters\n"
        "  (0): Linear(in_features=4, out_features=8, bias=true)  # 40 parameters\n"
        "  (1): ReLU()\n"
        "  (2): Linear(in_features=8, out_features=2, bias=false)  # 16 parameters\n"
        ")");
  std::ostringstream os;
  os << *seq;
  CHECK(os.str() == r);
  CHECK(nn::format_count(11176512) == "11,176,512");
  CHECK(nn::format_count(999) == "999");
  CHECK(nn::format_count(1000) == "1,000");
  CHECK(nn::format_count(0) == "0");
}

TEST_CASE("module: apply visits every module") {
  auto net = std::make_shared<Net>();
  int linears = 0;
  net->apply([&](nn::Module& m) {
    if (auto* lin = dynamic_cast<nn::Linear*>(&m)) {
      ++linears;
      nn::init::zeros_(lin->bias);
    }
  });
  CHECK(linears == 2);
  CHECK(net->fc2->bias.to_vector<double>() == std::vector<double>{0.0, 0.0});
  CHECK(net->modules().size() == 3);
}

// ---- init
// ----------------------------------------------------------------------------------------

TEST_CASE("init: seeded, PyTorch's default bounds for Linear") {
  manual_seed(42);
  nn::Linear a(256, 128);
  manual_seed(42);
  nn::Linear b(256, 128);
  CHECK(a.weight.to_vector<double>() == b.weight.to_vector<double>());
  CHECK(a.bias.to_vector<double>() == b.bias.to_vector<double>());
  nn::Linear c(256, 128);  // the generator moved on
  CHECK(c.weight.to_vector<double>() != a.weight.to_vector<double>());

  // U(-1/sqrt(in), 1/sqrt(in)) for both: bound 1/16; std of U(-b, b) is b / sqrt(3).
  const double bound = 1.0 / 16.0;
  auto w = a.weight.to_vector<double>();
  double mx = 0, s2 = 0, s1 = 0;
  for (double v : w) {
    mx = std::max(mx, std::abs(v));
    s1 += v;
    s2 += v * v;
  }
  const double n = static_cast<double>(w.size());
  CHECK(mx <= bound);
  CHECK(mx > 0.99 * bound);
  CHECK(std::abs(s1 / n) < 0.002);
  CHECK(std::sqrt(s2 / n) == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.02));
  for (double v : a.bias.to_vector<double>()) CHECK(std::abs(v) <= bound);
}

TEST_CASE("init: the distributions have the stated moments") {
  manual_seed(7);
  auto moments = [](const Tensor& t) {
    auto v = t.to_vector<double>();
    double s1 = 0, s2 = 0;
    for (double x : v) s1 += x;
    double mean = s1 / double(v.size());
    for (double x : v) s2 += (x - mean) * (x - mean);
    return std::pair<double, double>{mean, std::sqrt(s2 / double(v.size()))};
  };
  Tensor w = Tensor::empty({200, 100});  // fan_in 100, fan_out 200
  nn::init::kaiming_normal_(w, 0.0, nn::init::FanMode::FanOut, "relu");
  auto [m1, s1] = moments(w);
  CHECK(std::abs(m1) < 0.005);
  CHECK(s1 == doctest::Approx(std::sqrt(2.0 / 200.0)).epsilon(0.02));
  nn::init::xavier_uniform_(w);
  double xb = std::sqrt(6.0 / 300.0);
  for (double v : w.to_vector<double>()) REQUIRE(std::abs(v) <= xb);
  CHECK(moments(w).second == doctest::Approx(xb / std::sqrt(3.0)).epsilon(0.02));
  nn::init::xavier_normal_(w, 2.0);
  CHECK(moments(w).second == doctest::Approx(2.0 * std::sqrt(2.0 / 300.0)).epsilon(0.02));
  nn::init::normal_(w, 3.0, 0.5);
  auto [m2, s2] = moments(w);
  CHECK(m2 == doctest::Approx(3.0).epsilon(0.01));
  CHECK(s2 == doctest::Approx(0.5).epsilon(0.02));
  nn::init::trunc_normal_(w, 0.0, 1.0, -0.5, 1.0);
  for (double v : w.to_vector<double>()) REQUIRE((v >= -0.5 && v <= 1.0));
  Tensor conv = Tensor::empty({8, 3, 3, 3});
  CHECK(nn::init::calculate_fan_in_and_fan_out(conv) == std::pair<int64_t, int64_t>{27, 72});
  nn::init::kaiming_uniform_(conv, std::sqrt(5.0));
  for (double v : conv.to_vector<double>()) REQUIRE(std::abs(v) <= 1.0 / std::sqrt(27.0));
  CHECK(nn::init::calculate_gain("tanh") == doctest::Approx(5.0 / 3.0));
  CHECK(nn::init::calculate_gain("leaky_relu", std::sqrt(5.0)) ==
        doctest::Approx(std::sqrt(1.0 / 3.0)));
  nn::init::constant_(w, 0.25);
  CHECK(w.max().item() == 0.25);
  nn::init::ones_(w);
  CHECK(w.min().item() == 1.0);
}

TEST_CASE("init: fills parameters without recording, non-contiguous views, bad input") {
  Tensor p = Tensor::zeros({4, 6}).requires_grad_();
  nn::init::uniform_(p, -1.0, 1.0);  // no NoGradGuard needed by the caller
  CHECK(p.is_leaf());
  CHECK(p.abs().max().item() > 0.0);
  Tensor q = Tensor::zeros({4, 6});
  nn::init::constant_(q.t(), 2.0);  // a transposed view, handed by value, fills q
  CHECK(q.min().item() == 2.0);
  nn::init::normal_(q.narrow(1, 0, 3));
  CHECK(q.narrow(1, 3, 3).min().item() == 2.0);
  CHECK(q.narrow(1, 0, 3).max().item() != 2.0);
  CHECK_THROWS_WITH_AS(nn::init::kaiming_uniform_(Tensor::zeros({5})),
                       Contains("at least 2 dimensions"), Error);
  CHECK_THROWS_WITH_AS(nn::init::normal_(Tensor::zeros({2}, kInt64)), Contains("floating-point"),
                       Error);
  CHECK_THROWS_WITH_AS(nn::init::calculate_gain("swish"), Contains("unknown nonlinearity"), Error);
  CHECK_THROWS_AS(nn::init::uniform_(Tensor::zeros({2}), 1.0, 0.0), Error);
  CHECK_THROWS_AS(nn::init::trunc_normal_(Tensor::zeros({2}), 0.0, 1.0, 5.0, 6.0), Error);
}

// ---- Linear, Sequential, activations -----------------------------------------------------------

TEST_CASE("Linear: forward matches x W^T + b, leading dims folded") {
  manual_seed(8);
  nn::Linear lin(3, 5);
  Tensor x = Tensor::randn({2, 4, 3});
  Tensor y = lin.forward(x);
  CHECK(y.shape() == Shape{2, 4, 5});
  auto xv = x.to_vector<double>(), wv = lin.weight.to_vector<double>(),
       bv = lin.bias.to_vector<double>(), yv = y.to_vector<double>();
  double worst = 0;
  for (int r = 0; r < 8; ++r)
    for (int o = 0; o < 5; ++o) {
      double s = bv[o];
      for (int i = 0; i < 3; ++i) s += xv[r * 3 + i] * wv[o * 3 + i];
      worst = std::max(worst, std::abs(s - yv[r * 5 + o]));
    }
  CHECK(worst < 1e-6);
  CHECK(lin.forward(Tensor::randn({3})).shape() == Shape{5});
  // A non-contiguous input gives the same result as its contiguous copy.
  Tensor xt = Tensor::randn({3, 6}).t();
  CHECK(testing::max_rel_diff(lin.forward(xt), lin.forward(xt.contiguous())) < 1e-6);
  nn::Linear nob(3, 2, false);
  CHECK(!nob.bias.defined());
  CHECK(nob.parameters().size() == 1);
}

TEST_CASE("Linear: gradcheck w.r.t. input and parameters (float64)") {
  manual_seed(9);
  auto lin = std::make_shared<nn::Linear>(3, 4);
  lin->to(kFloat64);
  Tensor x = Tensor::randn({2, 5, 3}, kFloat64).requires_grad_();
  auto r =
      testing::module_gradcheck(*lin, [&](const auto& in) { return lin->forward(in[0]); }, {x});
  CHECK_MESSAGE(r.ok, r.report);
  CHECK(r.elements_checked == 30 + 12 + 4);
  // Non-contiguous input (transposed view made inside the function).
  Tensor xt = Tensor::randn({3, 4}, kFloat64).requires_grad_();
  r = testing::module_gradcheck(*lin, [&](const auto& in) { return lin->forward(in[0].t()); },
                                {xt});
  CHECK_MESSAGE(r.ok, r.report);
}

TEST_CASE("Linear: bad input names the layer and the shapes") {
  nn::Linear lin(3, 4);
  CHECK_THROWS_WITH_AS(lin.forward(Tensor::zeros({2, 5})),
                       Contains("Linear(in_features=3, out_features=4, bias=true): input is [2, 5] "
                                "float32 cpu; expected [..., 3]"),
                       Error);
  CHECK_THROWS_WITH_AS(lin.forward(Tensor::zeros({2, 3}, kInt64)),
                       Contains("expected a floating-point tensor"), Error);
  CHECK_THROWS_WITH_AS(lin.forward(Tensor()), Contains("undefined"), Error);
  CHECK_THROWS_WITH_AS(nn::Linear(0, 3), Contains("must be positive"), Error);
  CHECK_THROWS_WITH_AS(nn::linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 3}), Tensor::zeros({3})),
                       Contains("linear: bias must be [4]"), Error);
}

TEST_CASE("Sequential: chains forwards, reports where an error happened") {
  manual_seed(10);
  auto l1 = std::make_shared<nn::Linear>(4, 6);
  auto l2 = std::make_shared<nn::Linear>(6, 3);
  nn::Sequential seq;
  seq.push_back(l1);
  seq.push_back(std::make_shared<nn::GELU>());
  auto back = seq.push_back(l2);
  CHECK(back.get() == l2.get());
  CHECK(seq.size() == 3);
  Tensor x = Tensor::randn({5, 4});
  CHECK(testing::max_rel_diff(seq.forward(x), l2->forward(gelu(l1->forward(x)))) == 0.0);
  CHECK(seq(x).shape() == Shape{5, 3});
  CHECK(seq.at<nn::Linear>(2)->out_features == 3);
  CHECK_THROWS_WITH_AS(seq.at<nn::Linear>(1), Contains("is a GELU"), Error);
  CHECK_THROWS_WITH_AS(seq[7], Contains("index 7 is out of range for 3"), Error);
  CHECK_THROWS_WITH_AS(seq.forward(Tensor::randn({5, 5})),
                       Contains("Sequential[0]: Linear(in_features=4"), Error);
  nn::Sequential empty;
  CHECK(empty.forward(x).same(x));
  // Nested containers prefix their positions.
  nn::Sequential outer;
  outer.push_back(std::make_shared<nn::Identity>());
  outer.push_back(std::make_shared<nn::Sequential>(
      std::initializer_list<std::shared_ptr<nn::Module>>{std::make_shared<nn::Linear>(2, 2)}));
  CHECK_THROWS_WITH_AS(outer.forward(x), Contains("Sequential[1]: Sequential[0]: Linear"), Error);
  CHECK(outer.named_parameters()[0].first == "1.0.weight");
}

TEST_CASE("Sequential: gradcheck of Linear-GELU-Linear-Tanh (float64)") {
  manual_seed(11);
  auto seq = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(3, 4), std::make_shared<nn::GELU>(),
      std::make_shared<nn::Linear>(4, 2), std::make_shared<nn::Tanh>()});
  seq->to(kFloat64);
  Tensor x = Tensor::randn({3, 3}, kFloat64).requires_grad_();
  auto r =
      testing::module_gradcheck(*seq, [&](const auto& in) { return seq->forward(in[0]); }, {x});
  CHECK_MESSAGE(r.ok, r.report);
}

TEST_CASE("activations and Flatten") {
  Tensor x = Tensor::from_vector({-2.0, -0.5, 0.0, 1.5}, {2, 2});
  CHECK(nn::ReLU().forward(x).to_vector<double>() == std::vector<double>{0, 0, 0, 1.5});
  CHECK(testing::max_rel_diff(nn::GELU().forward(x), gelu(x)) == 0.0);
  CHECK(testing::max_rel_diff(nn::Sigmoid().forward(x), sigmoid(x)) == 0.0);
  CHECK(nn::Identity().forward(x).same(x));
  CHECK(nn::activate(x, nn::parse_activation("relu")).to_vector<double>() ==
        std::vector<double>{0, 0, 0, 1.5});
  CHECK(nn::make_activation(nn::Activation::GELU)->name() == "GELU");
  CHECK(std::string(nn::activation_name(nn::Activation::Tanh)) == "tanh");
  CHECK_THROWS_WITH_AS(nn::parse_activation("swish"), Contains("unknown activation 'swish'"),
                       Error);
  Tensor img = Tensor::zeros({2, 3, 4, 5});
  CHECK(nn::Flatten().forward(img).shape() == Shape{2, 60});
  CHECK(nn::Flatten(0).forward(img).shape() == Shape{120});
  CHECK(nn::Flatten(1, 2).forward(img).shape() == Shape{2, 12, 5});
  CHECK(nn::Flatten().extra_repr() == "start_dim=1, end_dim=-1");
}

TEST_CASE("module_gradcheck itself fails on a wrong gradient") {
  // A forward that hides the weight from autograd (detach) has a zero analytic gradient for it
  // but a nonzero numeric one: the checker must notice.
  manual_seed(12);
  auto lin = std::make_shared<nn::Linear>(2, 2);
  lin->to(kFloat64);
  Tensor x = Tensor::randn({3, 2}, kFloat64).requires_grad_();
  auto r = testing::module_gradcheck(
      *lin, [&](const auto& in) { return nn::linear(in[0], lin->weight.detach(), lin->bias); },
      {x});
  CHECK(!r.ok);
  CHECK(r.report.find("weight") != std::string::npos);
}
