// The seed notebook's synthetic image-caption pairs (its MiniCLIP section): five colour classes,
// each image a 3x16x16 patch of the class colour plus Gaussian noise, each caption 8 token ids
// from a class pattern with a little random token noise.
//
// How this matches the notebook (000_*.txt, "Create synthetic training data"):
//  - classes, in order: Red [1,0,0], Green [0,1,0], Blue [0,0,1], Yellow [1,1,0], Magenta [1,0,1];
//  - image[c][y][x] = colour[c] + N(0, 0.2) per pixel and channel, float32, not clipped;
//  - caption patterns (vocab_size 50, length 8, 0 = padding):
//      [3,5,7,0,0,0,0,0] [4,8,12,0,...] [6,9,15,0,...] [10,11,20,0,...] [13,14,25,0,...];
//  - caption noise: each non-zero token, with probability 0.2, gets randint(-1, 2) added, i.e.
//    -1, 0 or +1 with equal chance (so a token changes with probability 0.2 * 2/3);
//  - samples are ordered class by class, n_per_class each (the notebook uses 20: 100 pairs);
//    labels[i] is the class.
// The random numbers come from mmgrad's Philox generator instead of NumPy's, so the values
// differ from a notebook run while the distribution is the same. Note that the notebook's
// token 0 is padding, which coincides with Tokenizer::kPad; its ids are not Tokenizer ids.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad::data {

struct SyntheticPairs {
  Tensor images;    // float32 [N, 3, S, S]
  Tensor captions;  // int64 [N, 8]
  Tensor labels;    // int64 [N]
};

struct SyntheticOptions {
  int64_t n_per_class = 20;
  int64_t image_size = 16;
  double pixel_noise_std = 0.2;   // std of the Gaussian pixel noise
  double token_noise_prob = 0.2;  // chance that a non-zero token gets a random -1/0/+1
};

inline constexpr int64_t kSyntheticNumClasses = 5;
inline constexpr int64_t kSyntheticCaptionLen = 8;
inline constexpr int64_t kSyntheticVocabSize = 50;

// Generated from gen (its offset advances), or from a fresh Generator(seed).
SyntheticPairs make_synthetic_pairs(const SyntheticOptions& opts, Generator& gen);
SyntheticPairs make_synthetic_pairs(const SyntheticOptions& opts = {}, uint64_t seed = 0);

// "Red", "Green", "Blue", "Yellow", "Magenta".
const std::vector<std::string>& synthetic_class_names();
// RGB in [0, 1] per class.
const std::vector<std::array<float, 3>>& synthetic_class_colors();
// The 8-token caption pattern per class.
const std::vector<std::array<int64_t, 8>>& synthetic_caption_patterns();

}  // namespace mmgrad::data
