// Philox4x32-10: the counter-based random number generator behind every random tensor.
//
// A counter-based generator turns (key, counter) into random bits with a fixed bijection, so
// element i of a random tensor depends only on (seed, offset + i): the same numbers come out on
// 1 or 2 CPU threads and on the GPU. (Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3", SC 2011.) Written once here and used by both backends.
#pragma once

#include <cmath>
#include <cstdint>

#include "mmgrad/core/strided.h"

namespace mmgrad::philox {

struct U32x4 {
  uint32_t v[4];
};

MMGRAD_HD U32x4 philox4x32(uint64_t counter, uint64_t seed) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = 0x243F6A88u, c3 = 0x85A308D3u;  // fixed "stream" words (digits of pi)
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return U32x4{{c0, c1, c2, c3}};
}

// A double in [0, 1) with 53 random bits from two 32-bit words.
MMGRAD_HD double to_unit(uint32_t hi, uint32_t lo) {
  uint64_t bits = (static_cast<uint64_t>(hi) << 21) ^ (lo >> 11);
  return static_cast<double>(bits & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

MMGRAD_HD double uniform(uint64_t counter, uint64_t seed) {
  U32x4 r = philox4x32(counter, seed);
  return to_unit(r.v[0], r.v[1]);
}

// Box-Muller: two uniforms -> one standard normal. 1 - u keeps the log argument in (0, 1].
MMGRAD_HD double normal(uint64_t counter, uint64_t seed) {
  U32x4 r = philox4x32(counter, seed);
  double u1 = 1.0 - to_unit(r.v[0], r.v[1]);
  double u2 = to_unit(r.v[2], r.v[3]);
  // (::-qualified: inside namespace mmgrad, an unqualified log would also find mmgrad::log)
  return ::sqrt(-2.0 * ::log(u1)) * ::cos(6.283185307179586476925 * u2);
}

// The sample of dtype T at `counter`, as both backends write it: uniform in [a, b), or normal with
// mean a and std b. The affine step is one explicit fused multiply-add, so the CPU and the GPU
// round it identically whatever each compiler would otherwise contract.
template <class T>
MMGRAD_HD T uniform_sample(uint64_t counter, uint64_t seed, double a, double b) {
  T v = static_cast<T>(fma(b - a, uniform(counter, seed), a));
  // rounding (e.g. to float32) can land exactly on b; keep the interval half-open. Both bounds
  // are converted before the comparison, not in its branches: a conversion that may raise a
  // floating-point flag cannot be moved out of a branch, and that branch kept the compiler
  // from vectorising the CPU loop over elements (3x slower for float32; same values).
  const T lo = static_cast<T>(a), hi = static_cast<T>(b);
  return v < hi ? v : lo;
}
template <class T>
MMGRAD_HD T normal_sample(uint64_t counter, uint64_t seed, double mean, double std) {
  return static_cast<T>(fma(std, normal(counter, seed), mean));
}

}  // namespace mmgrad::philox
