#include "mmgrad/data/synthetic.h"

#include <algorithm>
#include <cmath>

#include "mmgrad/core/error.h"

namespace mmgrad::data {

const std::vector<std::string>& synthetic_class_names() {
  static const std::vector<std::string> names = {"Red", "Green", "Blue", "Yellow", "Magenta"};
  return names;
}

const std::vector<std::array<float, 3>>& synthetic_class_colors() {
  static const std::vector<std::array<float, 3>> colors = {
      {1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 1, 0}, {1, 0, 1}};
  return colors;
}

const std::vector<std::array<int64_t, 8>>& synthetic_caption_patterns() {
  static const std::vector<std::array<int64_t, 8>> patterns = {
      {3, 5, 7, 0, 0, 0, 0, 0},     // "red object"
      {4, 8, 12, 0, 0, 0, 0, 0},    // "green thing"
      {6, 9, 15, 0, 0, 0, 0, 0},    // "blue item"
      {10, 11, 20, 0, 0, 0, 0, 0},  // "yellow shape"
      {13, 14, 25, 0, 0, 0, 0, 0},  // "magenta form"
  };
  return patterns;
}

SyntheticPairs make_synthetic_pairs(const SyntheticOptions& opts, Generator& gen) {
  const char* op = "make_synthetic_pairs";
  MMGRAD_CHECK(opts.n_per_class > 0, op, ": n_per_class must be positive, got ", opts.n_per_class);
  MMGRAD_CHECK(opts.image_size > 0 && opts.image_size <= 1024, op,
               ": image_size must be in [1, 1024], got ", opts.image_size);
  MMGRAD_CHECK(opts.pixel_noise_std >= 0 && std::isfinite(opts.pixel_noise_std), op,
               ": pixel_noise_std must be finite and >= 0, got ", opts.pixel_noise_std);
  MMGRAD_CHECK(opts.token_noise_prob >= 0 && opts.token_noise_prob <= 1, op,
               ": token_noise_prob must be in [0, 1], got ", opts.token_noise_prob);
  const int64_t C = kSyntheticNumClasses, T = kSyntheticCaptionLen, S = opts.image_size;
  const int64_t N = C * opts.n_per_class;
  const int64_t plane = S * S;

  // All draws come from gen in a fixed order: the pixel noise, then per token one uniform to
  // decide whether it is perturbed and one to pick the -1/0/+1 (drawn for every token so the
  // stream does not depend on the outcomes).
  Tensor images = Tensor::randn({N, 3, S, S}, kFloat32, &gen);
  Tensor coin = Tensor::rand({N, T}, kFloat64, &gen);
  Tensor pick = Tensor::rand({N, T}, kFloat64, &gen);

  float* px = images.data_ptr<float>();
  const float noise = static_cast<float>(opts.pixel_noise_std);
  const std::vector<double> u = coin.to_vector<double>(), v = pick.to_vector<double>();
  std::vector<int64_t> captions(static_cast<size_t>(N * T)), labels(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    const int64_t c = i / opts.n_per_class;  // class by class, as the notebook's loops
    labels[i] = c;
    for (int64_t ch = 0; ch < 3; ++ch) {
      float* p = px + (i * 3 + ch) * plane;
      const float colour = synthetic_class_colors()[c][ch];
      for (int64_t k = 0; k < plane; ++k) p[k] = colour + noise * p[k];
    }
    for (int64_t j = 0; j < T; ++j) {
      int64_t tok = synthetic_caption_patterns()[c][j];
      if (tok > 0 && u[i * T + j] < opts.token_noise_prob) {
        // np.random.randint(-1, 2): uniform over {-1, 0, 1}.
        tok += std::min<int64_t>(static_cast<int64_t>(v[i * T + j] * 3.0), 2) - 1;
      }
      captions[i * T + j] = tok;
    }
  }
  return SyntheticPairs{images, Tensor::from_vector(captions, {N, T}),
                        Tensor::from_vector(labels, {N})};
}

SyntheticPairs make_synthetic_pairs(const SyntheticOptions& opts, uint64_t seed) {
  Generator gen(seed);
  return make_synthetic_pairs(opts, gen);
}

}  // namespace mmgrad::data
