// Input checks shared by the layers: errors start with the layer's label, e.g.
//   "Linear(in_features=4, out_features=8, bias=true): input is [2, 5] float32 cpu; expected ..."
#pragma once

#include "mmgrad/nn/module.h"

namespace mmgrad::nn::detail {

// x is defined, floating point, and has the dtype and device of the layer's parameter `like`
// (when defined): a float64 input into a float32 layer is an error, not a silent conversion.
inline void check_input(const Module& m, const Tensor& x, const Tensor& like,
                        const char* arg = "input") {
  MMGRAD_CHECK(x.defined(), m.label(), ": ", arg, " is an undefined tensor");
  MMGRAD_CHECK(x.is_floating_point(), m.label(), ": ", arg, " is ", describe(x),
               "; expected a floating-point tensor");
  if (!like.defined()) return;
  MMGRAD_CHECK(x.dtype() == like.dtype() && x.device() == like.device(), m.label(), ": ", arg,
               " is ", describe(x), " but the layer's parameters are ", dtype_name(like.dtype()),
               " ", device_name(like.device()),
               "; convert one of them (module.to(...) or x.to(...))");
}

}  // namespace mmgrad::nn::detail
