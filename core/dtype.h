// Element types and devices: the two tags every tensor and every kernel carries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "mmgrad/core/error.h"

namespace mmgrad {

enum class DType : uint8_t { Float32, Float64, Int64, Bool };

inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;
inline constexpr DType kInt64 = DType::Int64;
inline constexpr DType kBool = DType::Bool;  // stored as one byte (0 or 1)

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::Float32:
      return 4;
    case DType::Float64:
      return 8;
    case DType::Int64:
      return 8;
    case DType::Bool:
      return 1;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32:
      return "float32";
    case DType::Float64:
      return "float64";
    case DType::Int64:
      return "int64";
    case DType::Bool:
      return "bool";
  }
  return "?";
}

inline bool is_floating(DType t) { return t == DType::Float32 || t == DType::Float64; }

enum class Device : uint8_t { CPU, CUDA };
inline constexpr Device kCPU = Device::CPU;
inline constexpr Device kCUDA = Device::CUDA;

inline const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

// "cpu" or "cuda" (as lessons take it from --device).
inline Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::CPU;
  if (s == "cuda" || s == "cuda:0" || s == "gpu") return Device::CUDA;
  fail(cat_str("unknown device '", s, "': expected 'cpu' or 'cuda'"));
}

// ---- from a runtime dtype to a C++ type (host code of both backends) ----------------------------

// Calls f(T{}) with T the C++ type of a floating dtype; the error names `what` (the kernel)
// otherwise.
template <class F>
decltype(auto) dispatch_floating(DType dt, const char* what, F&& f) {
  switch (dt) {
    case DType::Float32:
      return f(float{});
    case DType::Float64:
      return f(double{});
    default:
      fail(cat_str(what, ": expected a floating dtype, got ", dtype_name(dt)));
  }
}

// Calls f(T{}) for every dtype (Bool as uint8_t).
template <class F>
decltype(auto) dispatch_all(DType dt, F&& f) {
  switch (dt) {
    case DType::Float32:
      return f(float{});
    case DType::Float64:
      return f(double{});
    case DType::Int64:
      return f(int64_t{});
    case DType::Bool:
      return f(uint8_t{});
  }
  return f(float{});
}

}  // namespace mmgrad
