// Fixtures shared by the conv2d kernel suites (test_conv_fast, test_conv_small_cin): a case
// (shapes, stride, padding, dilation), its description for failure messages, a scope that
// switches the float32 fast path on or off, and one forward + backward run.
#pragma once

#include <cstdint>
#include <string>

#include "mmgrad/kernels/cpu/cpu_backend.h"
#include "mmgrad/mmgrad.h"
#include "op_test_util.h"

namespace mmgrad::testing {

struct ConvCase {
  int64_t N, C, H, W, Cout, KH, KW;
  Pair2 stride, pad, dil;
  bool bias;
};

inline std::string describe_case(const ConvCase& c) {
  return "x [" + std::to_string(c.N) + ", " + std::to_string(c.C) + ", " + std::to_string(c.H) +
         ", " + std::to_string(c.W) + "] w [" + std::to_string(c.Cout) + ", " +
         std::to_string(c.C) + ", " + std::to_string(c.KH) + ", " + std::to_string(c.KW) +
         "] stride (" + std::to_string(c.stride.h) + ", " + std::to_string(c.stride.w) + ") pad (" +
         std::to_string(c.pad.h) + ", " + std::to_string(c.pad.w) + ") dil (" +
         std::to_string(c.dil.h) + ", " + std::to_string(c.dil.w) + ")";
}

// Switches the float32 fast path on or off for a scope, and back to what it was after.
struct FastPath {
  bool saved = cpu::conv2d_fast_path();
  explicit FastPath(bool on) { cpu::set_conv2d_fast_path(on); }
  ~FastPath() { cpu::set_conv2d_fast_path(saved); }
  FastPath(const FastPath&) = delete;
  FastPath& operator=(const FastPath&) = delete;
};

struct Grads {
  Tensor y, gx, gw, gb;
};

// y = conv2d(x, w, b) and the gradients of sum(y * g) (g a fixed random upstream gradient).
inline Grads run_conv(const ConvCase& c, DType dt, uint64_t seed) {
  Tensor x = rnd({c.N, c.C, c.H, c.W}, seed, dt).requires_grad_();
  Tensor w = rnd({c.Cout, c.C, c.KH, c.KW}, seed + 1, dt).requires_grad_();
  Tensor b = c.bias ? rnd({c.Cout}, seed + 2, dt).requires_grad_() : Tensor();
  Tensor y = conv2d(x, w, b, c.stride, c.pad, c.dil);
  Tensor g = rnd(y.shape(), seed + 3, dt);
  y.backward(g);
  return {y.detach(), x.grad(), w.grad(), c.bias ? b.grad() : Tensor()};
}

}  // namespace mmgrad::testing
