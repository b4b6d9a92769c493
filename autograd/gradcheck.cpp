#include "mmgrad/autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "mmgrad/autograd/grad_mode.h"
#include "mmgrad/kernels/backend.h"

namespace mmgrad {
namespace {

// A contiguous copy of t that is a fresh leaf (same dtype and device).
Tensor fresh_leaf(const Tensor& t) {
  Tensor c = Tensor::empty(t.shape(), t.options());
  if (t.numel() > 0) backend(t.device()).copy(t.desc(), c.desc());
  return c;
}

double read_element(const Tensor& t, int64_t i) {
  double v = 0;
  backend(t.device()).copy_to_host(&v, static_cast<double*>(t.raw_data()) + i, sizeof(double));
  return v;
}

void write_element(const Tensor& t, int64_t i, double v) {
  backend(t.device()).copy_from_host(static_cast<double*>(t.raw_data()) + i, &v, sizeof(double));
}

// The values of fn's output on the host, checked to keep the shape it had at the start.
std::vector<double> output_values(const Tensor& out, size_t n) {
  std::vector<double> o = out.to_vector<double>();
  MMGRAD_CHECK(o.size() == n, "gradcheck: the function returned ", o.size(),
               " elements for a perturbed input, but ", n, " at first");
  return o;
}

}  // namespace

GradcheckResult gradcheck(const GradFn& fn, const std::vector<Tensor>& inputs, double eps,
                          double tol) {
  GradcheckResult r;
  std::vector<Tensor> leaves;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    MMGRAD_CHECK(x.defined(), "gradcheck: input ", i, " is undefined");
    if (x.requires_grad())
      MMGRAD_CHECK(x.dtype() == DType::Float64, "gradcheck: input ", i, " is ", describe(x),
                   "; finite differences need float64 inputs");
    Tensor leaf = fresh_leaf(x);
    if (x.requires_grad()) leaf.requires_grad_(true);
    leaves.push_back(leaf);
  }

  // Analytic gradients.
  Tensor out = fn(leaves);
  MMGRAD_CHECK(out.defined() && out.is_floating_point(),
               "gradcheck: the function must return a floating-point tensor");
  Generator gen(12345);
  Tensor w = Tensor::randn(out.shape(), out.options(), &gen);
  std::vector<double> wv = w.to_vector<double>();
  MMGRAD_CHECK(out.requires_grad(),
               "gradcheck: the output does not depend on any input that "
               "requires grad");
  out.backward(w);

  NoGradGuard no_grad;
  for (size_t i = 0; i < leaves.size(); ++i) {
    if (!inputs[i].requires_grad()) continue;
    const Tensor& x = leaves[i];
    Tensor g = x.grad();
    std::vector<double> analytic = g.defined()
                                       ? g.to_vector<double>()
                                       : std::vector<double>(static_cast<size_t>(x.numel()), 0.0);
    for (int64_t j = 0; j < x.numel(); ++j) {
      double orig = read_element(x, j);
      write_element(x, j, orig + eps);
      std::vector<double> plus = output_values(fn(leaves), wv.size());
      write_element(x, j, orig - eps);
      std::vector<double> minus = output_values(fn(leaves), wv.size());
      write_element(x, j, orig);
      // Difference element by element before weighting: outputs that do not depend on x_j
      // cancel exactly, so large constant outputs (a masked_fill with 1e4) add no rounding
      // error, as they would in L(x + eps) - L(x - eps).
      double numeric = 0;
      for (size_t k = 0; k < wv.size(); ++k) numeric += wv[k] * (plus[k] - minus[k]);
      numeric /= 2 * eps;
      double a = analytic[static_cast<size_t>(j)];
      double err = std::abs(a - numeric) / std::max({1.0, std::abs(a), std::abs(numeric)});
      double e = std::isnan(err) ? INFINITY : err;
      if (r.worst_input < 0 || e > r.max_error) {
        r.max_error = e;
        r.worst_input = static_cast<int>(i);
        r.worst_index = j;
        r.worst_analytic = a;
        r.worst_numeric = numeric;
      }
      ++r.elements_checked;
    }
  }
  r.ok = r.max_error <= tol;
  std::ostringstream os;
  os.precision(10);
  if (r.worst_input < 0) {
    os << "gradcheck: no input requires grad; nothing checked";
  } else {
    os << "gradcheck " << (r.ok ? "passed" : "FAILED") << ": " << r.elements_checked
       << " elements, worst error " << r.max_error << " at input " << r.worst_input << " index "
       << leaves[r.worst_input].shape().unravel(r.worst_index).str() << " (analytic "
       << r.worst_analytic << ", numeric " << r.worst_numeric << ")";
  }
  r.report = os.str();
  return r;
}

}  // namespace mmgrad
