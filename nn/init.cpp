// Parameter initialisation: random fills straight into the tensor's memory (Philox, the same
// counters whatever the thread count), all under NoGradGuard.
#include "mmgrad/nn/init.h"

#include <cmath>
#include <vector>

#include "mmgrad/autograd/grad_mode.h"
#include "mmgrad/kernels/backend.h"

namespace mmgrad::nn::init {
namespace {

void check_target(const char* op, const Tensor& t) {
  MMGRAD_CHECK(t.defined(), "init.", op, ": the tensor is undefined");
  MMGRAD_CHECK(t.is_floating_point(), "init.", op, ": needs a floating-point tensor, got ",
               describe(t));
}

// Fills t from the generator: in place when t is contiguous, else through a temporary.
void fill_random(const char* op, Tensor& t, RandomDist dist, double a, double b, Generator* gen) {
  check_target(op, t);
  NoGradGuard no_grad;
  if (t.numel() == 0) return;
  Generator& g = gen ? *gen : default_generator();
  Tensor dst = t.is_contiguous() ? t : Tensor::empty(t.shape(), t.options());
  uint64_t offset = g.advance(static_cast<uint64_t>(dst.numel()));
  backend(dst.device()).random(dist, dst.desc(), g.seed(), offset, a, b);
  if (dst.same(t))
    t.storage()->bump_version();
  else
    t.copy_(dst);
}

int64_t fan(const Tensor& t, FanMode mode) {
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  return mode == FanMode::FanIn ? fan_in : fan_out;
}

}  // namespace

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t) {
  MMGRAD_CHECK(t.defined() && t.dim() >= 2,
               "init: fan in and fan out need a weight with at least 2 dimensions, got ",
               describe(t));
  int64_t receptive = 1;
  for (int d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

double calculate_gain(const std::string& nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "conv2d" || nonlinearity == "sigmoid" ||
      nonlinearity == "gelu")
    return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  fail(cat_str("init.calculate_gain: unknown nonlinearity '", nonlinearity,
               "' (expected linear, conv2d, sigmoid, tanh, relu, leaky_relu or gelu)"));
}

Tensor uniform_(Tensor t, double a, double b, Generator* gen) {
  MMGRAD_CHECK(a <= b, "init.uniform_: empty interval [", a, ", ", b, ")");
  fill_random("uniform_", t, RandomDist::Uniform, a, b, gen);
  return t;
}

Tensor normal_(Tensor t, double mean, double std, Generator* gen) {
  MMGRAD_CHECK(std >= 0, "init.normal_: std must be >= 0, got ", std);
  fill_random("normal_", t, RandomDist::Normal, mean, std, gen);
  return t;
}

Tensor constant_(Tensor t, double value) {
  check_target("constant_", t);
  NoGradGuard no_grad;
  t.fill_(value);
  return t;
}

Tensor zeros_(Tensor t) { return constant_(t, 0.0); }
Tensor ones_(Tensor t) { return constant_(t, 1.0); }

Tensor trunc_normal_(Tensor t, double mean, double std, double a, double b, Generator* gen) {
  check_target("trunc_normal_", t);
  MMGRAD_CHECK(std > 0 && a < b, "init.trunc_normal_: needs std > 0 and a < b, got std ", std,
               ", [", a, ", ", b, "]");
  MMGRAD_CHECK(a <= mean + 3 * std && b >= mean - 3 * std, "init.trunc_normal_: [", a, ", ", b,
               "] is more than 3 std from the mean ", mean,
               "; almost every draw would be rejected");
  NoGradGuard no_grad;
  // Rejection sampling on the host: draw N(mean, std), redraw the values outside [a, b]. Each
  // round keeps at least ~1/400 of the remaining draws (bounds within 3 std), so it ends fast.
  Generator& g = gen ? *gen : default_generator();
  std::vector<double> v = Tensor::randn({t.numel()}, kFloat64, &g).to_vector<double>();
  std::vector<size_t> bad;
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = mean + std * v[i];
    if (v[i] < a || v[i] > b) bad.push_back(i);
  }
  while (!bad.empty()) {
    std::vector<double> r =
        Tensor::randn({static_cast<int64_t>(bad.size())}, kFloat64, &g).to_vector<double>();
    std::vector<size_t> still;
    for (size_t j = 0; j < bad.size(); ++j) {
      double x = mean + std * r[j];
      if (x < a || x > b)
        still.push_back(bad[j]);
      else
        v[bad[j]] = x;
    }
    bad.swap(still);
  }
  t.copy_(Tensor::from_vector(v, t.shape(), TensorOptions(t.dtype()).device(t.device())));
  return t;
}

Tensor kaiming_uniform_(Tensor t, double a, FanMode mode, const std::string& nonlinearity,
                        Generator* gen) {
  check_target("kaiming_uniform_", t);
  int64_t f = fan(t, mode);
  MMGRAD_CHECK(f > 0, "init.kaiming_uniform_: zero fan for ", describe(t));
  // Var(U(-b, b)) = b^2 / 3; choose b so that the variance is gain^2 / fan.
  double bound = calculate_gain(nonlinearity, a) * std::sqrt(3.0 / static_cast<double>(f));
  return uniform_(t, -bound, bound, gen);
}

Tensor kaiming_normal_(Tensor t, double a, FanMode mode, const std::string& nonlinearity,
                       Generator* gen) {
  check_target("kaiming_normal_", t);
  int64_t f = fan(t, mode);
  MMGRAD_CHECK(f > 0, "init.kaiming_normal_: zero fan for ", describe(t));
  return normal_(t, 0.0, calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(f)), gen);
}

Tensor xavier_uniform_(Tensor t, double gain, Generator* gen) {
  check_target("xavier_uniform_", t);
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  MMGRAD_CHECK(fan_in + fan_out > 0, "init.xavier_uniform_: zero fans for ", describe(t));
  double bound = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  return uniform_(t, -bound, bound, gen);
}

Tensor xavier_normal_(Tensor t, double gain, Generator* gen) {
  check_target("xavier_normal_", t);
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  MMGRAD_CHECK(fan_in + fan_out > 0, "init.xavier_normal_: zero fans for ", describe(t));
  return normal_(t, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)), gen);
}

}  // namespace mmgrad::nn::init
