// Two moons: a 2-D toy dataset of two interleaved half circles (scikit-learn's make_moons), the
// classic first problem for a small neural network: not linearly separable, but easy to learn.
//   class 0: (cos t, sin t)              t uniform in [0, pi]  (the upper moon)
//   class 1: (1 - cos t, 0.5 - sin t)    t uniform in [0, pi]  (the lower moon, shifted right)
// plus Gaussian noise of std `noise` on both coordinates. The classes alternate (even i: 0,
// odd i: 1), so any prefix is balanced.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "mmgrad/tensor/generator.h"

namespace mmgrad::lesson {

struct Moons {
  std::vector<double> x, y;  // the two coordinates of each point
  std::vector<int> label;    // 0 or 1
  size_t size() const { return label.size(); }
};

// n points drawn from gen (its offset advances: the next call draws new points).
Moons make_moons(int64_t n, double noise, Generator& gen);

}  // namespace mmgrad::lesson
