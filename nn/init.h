// Parameter initialisation (torch.nn.init). Every function fills its tensor in place under
// NoGradGuard, draws from the default generator unless given one (so manual_seed makes a model
// reproducible) and returns the tensor.
//
// Fan-in and fan-out of a weight: for [out, in] (Linear) fan_in = in, fan_out = out; for a conv
// weight [out, in, kh, kw] both are multiplied by the receptive field kh * kw.
#pragma once

#include <string>
#include <utility>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad::nn::init {

enum class FanMode { FanIn, FanOut };

// {fan_in, fan_out} of a weight with at least 2 dimensions.
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t);
// The gain that keeps activations' variance stable through a nonlinearity: "linear", "conv2d",
// "sigmoid" 1; "tanh" 5/3; "relu" sqrt(2); "leaky_relu" sqrt(2 / (1 + a^2)); "gelu" 1 (no
// closed-form gain; PyTorch has none either, 1 is the common choice).
double calculate_gain(const std::string& nonlinearity, double param = 0.01);

Tensor uniform_(Tensor t, double a = 0.0, double b = 1.0, Generator* gen = nullptr);
Tensor normal_(Tensor t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
Tensor constant_(Tensor t, double value);
Tensor zeros_(Tensor t);
Tensor ones_(Tensor t);
// Normal(mean, std) restricted to [a, b] (redrawing values outside), as ViTs initialise their
// position embeddings (std 0.02).
Tensor trunc_normal_(Tensor t, double mean = 0.0, double std = 1.0, double a = -2.0, double b = 2.0,
                     Generator* gen = nullptr);

// He et al.: U(-bound, bound) with bound = gain * sqrt(3 / fan), gain = calculate_gain(
// nonlinearity, a). With a = sqrt(5) and fan_in this is U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
// PyTorch's default for Linear and Conv2d weights.
Tensor kaiming_uniform_(Tensor t, double a = 0.0, FanMode mode = FanMode::FanIn,
                        const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
// N(0, std^2) with std = gain / sqrt(fan).
Tensor kaiming_normal_(Tensor t, double a = 0.0, FanMode mode = FanMode::FanIn,
                       const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
// Glorot & Bengio: U(-bound, bound) with bound = gain * sqrt(6 / (fan_in + fan_out)).
Tensor xavier_uniform_(Tensor t, double gain = 1.0, Generator* gen = nullptr);
// N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).
Tensor xavier_normal_(Tensor t, double gain = 1.0, Generator* gen = nullptr);

}  // namespace mmgrad::nn::init
