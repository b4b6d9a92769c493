// Printing tensors the way PyTorch does, so a learner can read them:
//   tensor([[ 0.1000, -1.2500],
//           [ 2.0000,  3.0000]], requires_grad=true)
// Large tensors are summarised with "..." (the first and last 3 entries of each long dim).
#include <cmath>
#include <cstdio>
#include <sstream>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad {
namespace {

constexpr int64_t kSummarizeAbove = 1000;  // elements
constexpr int64_t kEdgeItems = 3;

struct Format {
  bool integer = false;     // int64 / bool: print as integers
  bool scientific = false;  // very large or very small magnitudes
  int width = 1;
};

std::string fmt_value(double v, const Format& f, DType dt) {
  char buf[64];
  if (dt == DType::Bool) return v != 0 ? "True" : "False";
  if (f.integer)
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  else if (std::isnan(v))
    std::snprintf(buf, sizeof buf, "nan");
  else if (std::isinf(v))
    std::snprintf(buf, sizeof buf, v > 0 ? "inf" : "-inf");
  else if (f.scientific)
    std::snprintf(buf, sizeof buf, "%.4e", v);
  else
    std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

void print_rec(std::ostringstream& os, const std::vector<double>& v, const Shape& shape, int dim,
               int64_t offset, const Shape& cstr, const Format& f, DType dt, bool summarize,
               int indent) {
  if (shape.size() == 0) {
    os << fmt_value(v[0], f, dt);
    return;
  }
  int64_t n = shape[dim];
  bool last = dim == shape.size() - 1;
  os << "[";
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && n > 2 * kEdgeItems && i == kEdgeItems) {
      os << (last ? "..., " : "...,\n" + std::string(indent + dim + 1, ' '));
      i = n - kEdgeItems - 1;
      continue;
    }
    if (last) {
      std::string s = fmt_value(v[offset + i * cstr[dim]], f, dt);
      os << std::string(f.width > (int)s.size() ? f.width - s.size() : 0, ' ') << s;
      if (i + 1 < n) os << ", ";
    } else {
      print_rec(os, v, shape, dim + 1, offset + i * cstr[dim], cstr, f, dt, summarize, indent);
      if (i + 1 < n) {
        os << ",";
        os << std::string(shape.size() - dim - 1, '\n');
        os << std::string(indent + dim + 1, ' ');
      }
    }
  }
  os << "]";
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::vector<double> v = to_vector<double>();
  Format f;
  f.integer = dtype() == DType::Int64;
  double maxabs = 0, minabs = INFINITY;
  for (double x : v) {
    if (!std::isfinite(x)) continue;
    maxabs = std::max(maxabs, std::abs(x));
    if (x != 0) minabs = std::min(minabs, std::abs(x));
  }
  f.scientific = !f.integer && (maxabs >= 1e5 || (minabs < 1e-4 && minabs > 0));
  for (double x : v)
    f.width = std::max<int>(f.width, static_cast<int>(fmt_value(x, f, dtype()).size()));

  std::ostringstream os;
  os << "tensor(";
  bool summarize = numel() > kSummarizeAbove;
  print_rec(os, v, shape(), 0, 0, contiguous_strides(shape()), f, dtype(), summarize, 7);
  if (dtype() != DType::Float32 && dtype() != DType::Int64) os << ", dtype=" << dtype_name(dtype());
  if (device() != Device::CPU) os << ", device='" << device_name(device()) << "'";
  if (grad_fn())
    os << ", grad_fn=<" << detail::node_name(*grad_fn()) << ">";
  else if (requires_grad())
    os << ", requires_grad=true";
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace mmgrad
