// The pieces of lesson 17's tiny DALL-E 2 (unCLIP) that are not CLIP itself: the prior (text
// embedding -> image embedding), the sinusoidal timestep embedding, a small U-Net that predicts
// the noise in a noisy image given the timestep and an image embedding, the DDPM noise schedule
// and a DDIM sampler with classifier-free guidance.
//
//   dalle::Schedule sched(1000);                         // alpha_bar(t), cosine schedule
//   auto unet = std::make_shared<dalle::UNet>(dalle::UNetOptions{});
//   Tensor loss = dalle::denoising_loss(*unet, sched, x0, cond, drop_mask, gen);  // training
//   Tensor x = dalle::ddim_sample(*unet, sched, cond, {.steps = 20, .guidance = 3.0}, seed);
//
// Every composed op here is differentiable mmgrad (conv2d, group_norm, silu, interpolate,
// avg_pool2d, linear): no new kernel.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mmgrad/nn/layers.h"
#include "mmgrad/tensor/generator.h"

namespace mmgrad::dalle {

// ---- the prior --------------------------------------------------------------------------------

// A small MLP from a unit text embedding [B, D] to a unit image embedding [B, D]:
// normalize(x + Linear(hidden, D)(SiLU(Linear(hidden, hidden)(SiLU(Linear(D, hidden)(x)))))),
// a residual, so it starts near "use the text embedding" and learns the correction.
// DALL-E 2's prior is a diffusion model (or autoregressive) that SAMPLES an image embedding;
// this one is deterministic and trained to maximise the cosine to the true image embedding, so
// it learns the mean direction of the images a caption describes (a divergence: stated in the
// lesson).
class Prior : public nn::Module {
 public:
  Prior(int64_t dim, int64_t hidden);
  Tensor forward(const Tensor& text_emb) override;
  std::string name() const override { return "Prior"; }

  std::shared_ptr<nn::Linear> fc1, fc2, fc3;
};

// ---- the timestep embedding --------------------------------------------------------------------

// The transformer's sinusoidal position code, used for the diffusion step t (DDPM): for
// i < dim / 2, e[i] = sin(t * f_i) and e[dim/2 + i] = cos(t * f_i), f_i = 10000^(-i / (dim/2)).
// Nearby steps get similar codes, far ones different codes, at every scale. float32 [B, dim].
Tensor timestep_embedding(const std::vector<int64_t>& t, int64_t dim);

// ---- the U-Net --------------------------------------------------------------------------------

struct UNetOptions {
  int64_t in_channels = 1;
  int64_t base = 16;      // channels at full resolution; 2 * base at 1/2 and 1/4
  int64_t cond_dim = 32;  // size of the conditioning (CLIP image) embedding
  int64_t time_dim = 32;  // size of the sinusoidal timestep code
  int64_t emb_dim = 64;   // the joint (time + condition) embedding fed to every block
  int64_t groups = 4;     // GroupNorm groups
  std::string str() const;
};

// A residual block that also reads the embedding: h = conv(silu(gn(x))); h += W emb (one bias
// per channel, broadcast over the pixels: how the block learns "which step, which picture");
// h = conv(silu(gn(h))); out = skip(x) + h (skip: 1x1 conv when the channel count changes).
class ResBlock : public nn::Module {
 public:
  ResBlock(int64_t in, int64_t out, int64_t emb_dim, int64_t groups);
  Tensor forward(const Tensor& x, const Tensor& emb);  // x [B, in, H, W], emb [B, emb_dim]
  using nn::Module::forward;
  std::string name() const override { return "ResBlock"; }

  std::shared_ptr<nn::GroupNorm> norm1, norm2;
  std::shared_ptr<nn::Conv2d> conv1, conv2, skip;
  std::shared_ptr<nn::Linear> emb_proj;
};

// The denoiser eps_theta(x_t, t, c) for 16 x 16 images:
//   conv_in -> block 16x16 (base) -> avg pool -> block 8x8 (2 base) -> avg pool -> block 4x4
//   -> upsample (nearest) + skip 8x8 -> block -> upsample + skip 16x16 -> block -> conv_out.
// The skips (concatenated channels) carry the fine detail past the coarse middle. The joint
// embedding is MLP(timestep code) + Linear(condition); a zero condition means "no caption"
// (classifier-free guidance trains the model with it sometimes).
class UNet : public nn::Module {
 public:
  explicit UNet(const UNetOptions& options);
  // x [B, C, 16, 16] (any size divisible by 4), t one step per row, cond [B, cond_dim]
  // -> predicted noise, the shape of x.
  Tensor forward(const Tensor& x, const std::vector<int64_t>& t, const Tensor& cond);
  using nn::Module::forward;
  std::string name() const override { return "UNet"; }
  std::string extra_repr() const override { return options.str(); }

  UNetOptions options;
  std::shared_ptr<nn::Linear> time1, time2, cond_proj;
  std::shared_ptr<nn::Conv2d> conv_in, conv_out;
  std::shared_ptr<ResBlock> down1, down2, mid, up2, up1;
  std::shared_ptr<nn::GroupNorm> norm_out;
};

// ---- the noise schedule and training loss ------------------------------------------------------

// alpha_bar(t) = prod_{s <= t} (1 - beta_s): how much of the clean image is left at step t,
// x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps. The cosine schedule (Nichol & Dhariwal
// 2021): alpha_bar(t) = cos^2(((t + 1) / T + s) / (1 + s) * pi / 2) / cos^2(s / (1 + s) pi / 2),
// s = 0.008, with each beta capped at 0.999; it destroys small images more gently than DDPM's
// linear betas.
struct Schedule {
  explicit Schedule(int64_t steps);
  int64_t T;
  std::vector<double> alpha_bar;  // [T]
};

// x_t for clean images x0 [B, C, H, W] at steps t with the given noise eps (same shape as x0).
Tensor add_noise(const Schedule& s, const Tensor& x0, const std::vector<int64_t>& t,
                 const Tensor& eps);

// The DDPM training objective (the "simple" loss): draw t uniform in [0, T) and eps ~ N(0, I)
// per image, and return mean ||eps - eps_theta(x_t, t, c)||^2. Rows of cond with drop[i] true
// are replaced by zeros (classifier-free guidance's unconditional training).
Tensor denoising_loss(UNet& model, const Schedule& s, const Tensor& x0, const Tensor& cond,
                      const std::vector<bool>& drop, Generator& gen);

// ---- sampling ---------------------------------------------------------------------------------

struct SampleOptions {
  int64_t steps = 20;     // DDIM steps (a subsequence of the T training steps)
  double guidance = 1.0;  // s: eps = eps_uncond + s (eps_cond - eps_uncond); 1 = no guidance,
                          // 0 = unconditional
};

// DDIM (Song et al. 2021, eta = 0: deterministic given the starting noise): from x_T ~ N(0, I),
// at each chosen step predict eps, estimate x_0 = (x_t - sqrt(1 - ab) eps) / sqrt(ab) (clipped to
// [-1, 1]), then jump to the earlier step t' along the same noise: x_t' = sqrt(ab') x_0 +
// sqrt(1 - ab') eps. cond [B, cond_dim]; the starting noise comes from Generator(seed).
// Returns [B, C, H, W] in [-1, 1]; runs without gradient, in eval mode.
Tensor ddim_sample(UNet& model, const Schedule& s, const Tensor& cond, const SampleOptions& o,
                   uint64_t seed, int64_t channels = 1, int64_t size = 16);

}  // namespace mmgrad::dalle
