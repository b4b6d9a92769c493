#include "17_tiny_dalle2/diffusion.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>

#include "mmgrad/mmgrad.h"

namespace mmgrad::dalle {

// ---- the prior --------------------------------------------------------------------------------

Prior::Prior(int64_t dim, int64_t hidden) {
  MMGRAD_CHECK(dim > 0 && hidden > 0, "Prior: dim ", dim, " and hidden ", hidden,
               ": expected both > 0");
  fc1 = register_module("fc1", std::make_shared<nn::Linear>(dim, hidden));
  fc2 = register_module("fc2", std::make_shared<nn::Linear>(hidden, hidden));
  fc3 = register_module("fc3", std::make_shared<nn::Linear>(hidden, dim));
}

Tensor Prior::forward(const Tensor& text_emb) {
  MMGRAD_CHECK(text_emb.defined() && text_emb.dim() == 2 && text_emb.size(1) == fc1->in_features,
               "Prior: text embeddings are ",
               text_emb.defined() ? describe(text_emb) : std::string("undefined"),
               "; expected [B, ", fc1->in_features, "]");
  // A residual on the input: the prior starts near "use the text embedding" and learns the
  // correction, which is the modality gap between CLIP's text and image clusters.
  Tensor h = silu(fc2->forward(silu(fc1->forward(text_emb))));
  return normalize(text_emb + fc3->forward(h), 1);
}

// ---- the timestep embedding --------------------------------------------------------------------

Tensor timestep_embedding(const std::vector<int64_t>& t, int64_t dim) {
  MMGRAD_CHECK(dim > 0 && dim % 2 == 0, "timestep_embedding: dim ", dim,
               ": expected a positive even size");
  const int64_t half = dim / 2, B = static_cast<int64_t>(t.size());
  std::vector<float> e(static_cast<size_t>(B * dim));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < half; ++i) {
      const double f = std::pow(10000.0, -static_cast<double>(i) / static_cast<double>(half));
      const double a = static_cast<double>(t[b]) * f;
      e[b * dim + i] = static_cast<float>(std::sin(a));
      e[b * dim + half + i] = static_cast<float>(std::cos(a));
    }
  return Tensor::from_vector(e, {B, dim});
}

// ---- the U-Net --------------------------------------------------------------------------------

std::string UNetOptions::str() const {
  std::ostringstream s;
  s << "in=" << in_channels << " base=" << base << " cond=" << cond_dim << " time=" << time_dim
    << " emb=" << emb_dim << " groups=" << groups;
  return s.str();
}

ResBlock::ResBlock(int64_t in, int64_t out, int64_t emb_dim, int64_t groups) {
  norm1 = register_module("norm1", std::make_shared<nn::GroupNorm>(groups, in));
  conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(in, out, 3, 1, 1));
  emb_proj = register_module("emb_proj", std::make_shared<nn::Linear>(emb_dim, out));
  norm2 = register_module("norm2", std::make_shared<nn::GroupNorm>(groups, out));
  conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(out, out, 3, 1, 1));
  if (in != out) skip = register_module("skip", std::make_shared<nn::Conv2d>(in, out, 1));
}

Tensor ResBlock::forward(const Tensor& x, const Tensor& emb) {
  Tensor h = conv1->forward(silu(norm1->forward(x)));
  // [B, out] -> [B, out, 1, 1]: the same shift for every pixel of a channel.
  Tensor e = emb_proj->forward(silu(emb));
  h = h + e.reshape({e.size(0), e.size(1), 1, 1});
  h = conv2->forward(silu(norm2->forward(h)));
  return (skip ? skip->forward(x) : x) + h;
}

UNet::UNet(const UNetOptions& o) : options(o) {
  MMGRAD_CHECK(o.in_channels > 0 && o.base > 0 && o.cond_dim > 0 && o.time_dim > 0 &&
                   o.time_dim % 2 == 0 && o.emb_dim > 0 && o.groups > 0 && o.base % o.groups == 0,
               "UNet: bad options (", o.str(),
               "); expected positive sizes, an even time_dim and base divisible by groups");
  const int64_t C = o.base, E = o.emb_dim;
  time1 = register_module("time1", std::make_shared<nn::Linear>(o.time_dim, E));
  time2 = register_module("time2", std::make_shared<nn::Linear>(E, E));
  cond_proj = register_module("cond_proj", std::make_shared<nn::Linear>(o.cond_dim, E));
  conv_in = register_module("conv_in", std::make_shared<nn::Conv2d>(o.in_channels, C, 3, 1, 1));
  down1 = register_module("down1", std::make_shared<ResBlock>(C, C, E, o.groups));
  down2 = register_module("down2", std::make_shared<ResBlock>(C, 2 * C, E, o.groups));
  mid = register_module("mid", std::make_shared<ResBlock>(2 * C, 2 * C, E, o.groups));
  up2 = register_module("up2", std::make_shared<ResBlock>(4 * C, 2 * C, E, o.groups));
  up1 = register_module("up1", std::make_shared<ResBlock>(3 * C, C, E, o.groups));
  norm_out = register_module("norm_out", std::make_shared<nn::GroupNorm>(o.groups, C));
  conv_out = register_module("conv_out", std::make_shared<nn::Conv2d>(C, o.in_channels, 3, 1, 1));
  // The last conv starts at zero: the untrained model predicts "no noise" instead of a random
  // image, a common trick that steadies the first steps.
  NoGradGuard ng;
  conv_out->weight.zero_();
  conv_out->bias.zero_();
}

Tensor UNet::forward(const Tensor& x, const std::vector<int64_t>& t, const Tensor& cond) {
  const int64_t B = x.defined() && x.dim() == 4 ? x.size(0) : -1;
  MMGRAD_CHECK(
      B >= 0 && x.size(1) == options.in_channels && x.size(2) % 4 == 0 && x.size(3) % 4 == 0,
      "UNet: x is ", x.defined() ? describe(x) : std::string("undefined"), "; expected [B, ",
      options.in_channels, ", H, W] with H and W divisible by 4");
  MMGRAD_CHECK(static_cast<int64_t>(t.size()) == B && cond.defined() && cond.dim() == 2 &&
                   cond.size(0) == B && cond.size(1) == options.cond_dim,
               "UNet: ", t.size(), " timesteps and cond ",
               cond.defined() ? describe(cond) : std::string("undefined"), " for a batch of ", B,
               "; expected one step per image and cond [B, ", options.cond_dim, "]");
  Tensor temb = timestep_embedding(t, options.time_dim).to(x.device());
  Tensor emb = time2->forward(silu(time1->forward(temb))) + cond_proj->forward(cond);
  Tensor h0 = conv_in->forward(x);
  Tensor h1 = down1->forward(h0, emb);                   // [B, C, 16, 16]
  Tensor h2 = down2->forward(avg_pool2d(h1, 2), emb);    // [B, 2C, 8, 8]
  Tensor h3 = mid->forward(avg_pool2d(h2, 2), emb);      // [B, 2C, 4, 4]
  Tensor u2 = interpolate(h3, {.scale_factor = {2.0}});  // back to 8 x 8
  u2 = up2->forward(cat({u2, h2}, 1), emb);              // [B, 2C, 8, 8]
  Tensor u1 = interpolate(u2, {.scale_factor = {2.0}});  // back to 16 x 16
  u1 = up1->forward(cat({u1, h1}, 1), emb);              // [B, C, 16, 16]
  return conv_out->forward(silu(norm_out->forward(u1)));
}

// ---- the noise schedule and training loss ------------------------------------------------------

Schedule::Schedule(int64_t steps) : T(steps) {
  MMGRAD_CHECK(steps >= 2, "Schedule: ", steps, " steps; expected at least 2");
  const double s = 0.008, pi = std::numbers::pi;
  auto f = [&](double u) {
    const double c = std::cos((u + s) / (1 + s) * pi / 2);
    return c * c;
  };
  double ab = 1.0;
  for (int64_t t = 0; t < T; ++t) {
    const double beta = std::min(0.999, 1.0 - f((t + 1.0) / T) / f(static_cast<double>(t) / T));
    ab *= 1.0 - beta;
    alpha_bar.push_back(ab);
  }
}

namespace {

// Per-row coefficients as a [B, 1, 1, 1] tensor on `device`.
Tensor per_row(const std::vector<float>& v, Device device) {
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size()), 1, 1, 1}).to(device);
}

}  // namespace

Tensor add_noise(const Schedule& s, const Tensor& x0, const std::vector<int64_t>& t,
                 const Tensor& eps) {
  MMGRAD_CHECK(
      x0.dim() == 4 && static_cast<int64_t>(t.size()) == x0.size(0) && eps.shape() == x0.shape(),
      "add_noise: x0 ", describe(x0), ", eps ", describe(eps), ", ", t.size(),
      " steps; expected [B, C, H, W], eps of the same shape and B steps");
  std::vector<float> a(t.size()), b(t.size());
  for (size_t i = 0; i < t.size(); ++i) {
    MMGRAD_CHECK(t[i] >= 0 && t[i] < s.T, "add_noise: step ", t[i], " outside [0, ", s.T, ")");
    a[i] = static_cast<float>(std::sqrt(s.alpha_bar[t[i]]));
    b[i] = static_cast<float>(std::sqrt(1.0 - s.alpha_bar[t[i]]));
  }
  return x0 * per_row(a, x0.device()) + eps * per_row(b, x0.device());
}

Tensor denoising_loss(UNet& model, const Schedule& s, const Tensor& x0, const Tensor& cond,
                      const std::vector<bool>& drop, Generator& gen) {
  const int64_t B = x0.size(0);
  MMGRAD_CHECK(static_cast<int64_t>(drop.size()) == B, "denoising_loss: ", drop.size(),
               " drop flags for a batch of ", B);
  const std::vector<int64_t> t =
      Tensor::randint(0, s.T, {B}, DType::Int64, &gen).to_vector<int64_t>();
  Tensor eps = Tensor::randn(x0.shape(), {}, &gen).to(x0.device());
  std::vector<float> keep(static_cast<size_t>(B));
  for (int64_t i = 0; i < B; ++i) keep[i] = drop[i] ? 0.0f : 1.0f;
  Tensor c = cond * Tensor::from_vector(keep, {B, 1}).to(cond.device());
  Tensor pred = model.forward(add_noise(s, x0, t, eps), t, c);
  return mse_loss(pred, eps);
}

// ---- sampling ---------------------------------------------------------------------------------

Tensor ddim_sample(UNet& model, const Schedule& s, const Tensor& cond, const SampleOptions& o,
                   uint64_t seed, int64_t channels, int64_t size) {
  MMGRAD_CHECK(o.steps >= 1 && o.steps <= s.T, "ddim_sample: ", o.steps, " steps; expected 1 to ",
               s.T);
  MMGRAD_CHECK(std::isfinite(o.guidance) && o.guidance >= 0, "ddim_sample: guidance ", o.guidance,
               "; expected a finite scale >= 0");
  NoGradGuard ng;
  const bool was_training = model.is_training();
  model.eval();
  const int64_t B = cond.size(0);
  const Device dev = cond.device();
  Generator gen(seed);
  Tensor x = Tensor::randn({B, channels, size, size}, {}, &gen).to(dev);
  // The steps visited: T-1 and then evenly spaced down to 0.
  std::vector<int64_t> ts;
  for (int64_t k = o.steps - 1; k >= 0; --k)
    ts.push_back(k * (s.T - 1) / std::max<int64_t>(1, o.steps - 1));
  if (o.steps == 1) ts = {s.T - 1};
  const Tensor none = Tensor::zeros(cond.shape()).to(dev);
  for (size_t k = 0; k < ts.size(); ++k) {
    const int64_t t = ts[k];
    const std::vector<int64_t> tv(static_cast<size_t>(B), t);
    Tensor eps;
    if (o.guidance == 1.0) {
      eps = model.forward(x, tv, cond);
    } else if (o.guidance == 0.0) {
      eps = model.forward(x, tv, none);
    } else {
      // Conditional and unconditional predictions in one batch of 2B.
      std::vector<int64_t> t2(static_cast<size_t>(2 * B), t);
      Tensor both = model.forward(cat({x, x}, 0), t2, cat({cond, none}, 0));
      Tensor ec = both.narrow(0, 0, B), eu = both.narrow(0, B, B);
      eps = eu + (ec - eu) * o.guidance;
    }
    const double ab = s.alpha_bar[t];
    const double ab_prev = k + 1 < ts.size() ? s.alpha_bar[ts[k + 1]] : 1.0;
    Tensor x0 = clamp((x - eps * std::sqrt(1 - ab)) * (1.0 / std::sqrt(ab)), -1.0, 1.0);
    // The noise consistent with the clipped x0 estimate, carried to the earlier step.
    eps = (x - x0 * std::sqrt(ab)) * (1.0 / std::sqrt(1 - ab));
    x = x0 * std::sqrt(ab_prev) + eps * std::sqrt(1 - ab_prev);
  }
  model.train(was_training);
  return clamp(x, -1.0, 1.0);
}

}  // namespace mmgrad::dalle
