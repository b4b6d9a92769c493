// PCA with plain loops and our own symmetric eigen-solver (metrics/eigh.h). Eigen's
// SelfAdjointEigenSolver, used here before, made this one of the slowest files of the library to
// compile (~18 CPU-seconds); without Eigen it takes about 2.
#include "mmgrad/metrics/pca.h"

#include <algorithm>
#include <cmath>

#include "mmgrad/core/error.h"
#include "mmgrad/metrics/eigh.h"

namespace mmgrad::metrics {

namespace {

std::string what(const Tensor& t) { return t.defined() ? describe(t) : "an undefined tensor"; }

// x [rows, cols] as row-major doubles (any dtype, strides or device), checked finite.
std::vector<double> to_matrix(const Tensor& x) {
  std::vector<double> v = x.to_vector<double>();
  const int64_t cols = x.size(1);
  for (size_t i = 0; i < v.size(); ++i)
    MMGRAD_CHECK(std::isfinite(v[i]), "pca: input has a non-finite value at [",
                 static_cast<int64_t>(i) / cols, ", ", static_cast<int64_t>(i) % cols, "]");
  return v;
}

// Subtracts mean [d] from every row of m [rows, d].
void center(std::vector<double>& m, const std::vector<double>& mean) {
  const size_t d = mean.size();
  for (size_t i = 0; i < m.size(); ++i) m[i] -= mean[i % d];
}

// (m [rows, d]) @ comps^T (comps [k, d]): [rows, k], the coordinates along each component.
std::vector<double> project(const std::vector<double>& m, const std::vector<double>& comps,
                            int64_t d, int64_t k) {
  const int64_t rows = static_cast<int64_t>(m.size()) / d;
  std::vector<double> out(static_cast<size_t>(rows * k));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < k; ++c) {
      double s = 0;
      for (int64_t j = 0; j < d; ++j) s += m[r * d + j] * comps[c * d + j];
      out[r * k + c] = s;
    }
  return out;
}

Tensor to_tensor(const std::vector<double>& v, Shape shape, DType dtype) {
  return Tensor::from_vector(v, std::move(shape), dtype);
}

}  // namespace

PCAResult pca(const Tensor& x, int64_t k) {
  MMGRAD_CHECK(x.defined() && x.dim() == 2 && x.is_floating_point(),
               "pca: expects float32/float64 data [N, D], got ", what(x));
  const int64_t n = x.size(0), d = x.size(1);
  MMGRAD_CHECK(n >= 2, "pca: needs at least 2 samples, got ", describe(x));
  MMGRAD_CHECK(d >= 1 && k >= 1 && k <= d, "pca: k must be in [1, D = ", d, "], got k = ", k);
  std::vector<double> m = to_matrix(x);
  std::vector<double> mean(static_cast<size_t>(d), 0.0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < d; ++j) mean[j] += m[r * d + j];
  for (double& mu : mean) mu /= static_cast<double>(n);
  center(m, mean);
  // Covariance C = X^T X / (N - 1) of the centred X, only its lower triangle (C[i][j], j <= i:
  // all the solver reads, half the work). It is a sum of one outer product x x^T per sample;
  // taking four samples per pass over C reads and writes C a quarter as often.
  std::vector<double> cov(static_cast<size_t>(d * d), 0.0);
  int64_t r = 0;
  for (; r + 4 <= n; r += 4) {
    const double *x0 = &m[r * d], *x1 = x0 + d, *x2 = x1 + d, *x3 = x2 + d;
    for (int64_t i = 0; i < d; ++i) {
      double* ci = &cov[i * d];
      const double a0 = x0[i], a1 = x1[i], a2 = x2[i], a3 = x3[i];
      for (int64_t j = 0; j <= i; ++j) ci[j] += a0 * x0[j] + a1 * x1[j] + a2 * x2[j] + a3 * x3[j];
    }
  }
  for (; r < n; ++r) {
    const double* x0 = &m[r * d];
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j <= i; ++j) cov[i * d + j] += x0[i] * x0[j];
  }
  for (double& c : cov) c /= static_cast<double>(n - 1);
  EighResult eig = eigh(cov, d);
  // Eigenvalues come in increasing order: the last k columns, reversed, are the components.
  const std::vector<double>& values = eig.eigenvalues;
  double total = 0;
  for (double v : values) total += std::max(v, 0.0);
  std::vector<double> comps(static_cast<size_t>(k * d)), var(static_cast<size_t>(k)),
      ratio(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) {
    const int64_t col = d - 1 - i;
    double* v = &comps[i * d];
    for (int64_t j = 0; j < d; ++j) v[j] = eig.eigenvectors[j * d + col];
    // Sign rule: the entry of largest magnitude (the first one on a tie) is positive.
    int64_t arg = 0;
    for (int64_t j = 1; j < d; ++j)
      if (std::abs(v[j]) > std::abs(v[arg])) arg = j;
    if (v[arg] < 0)
      for (int64_t j = 0; j < d; ++j) v[j] = -v[j];
    var[i] = std::max(values[col], 0.0);  // rounding can leave tiny negative values
    ratio[i] = total > 0 ? var[i] / total : 0.0;
  }
  PCAResult res;
  res.projected = to_tensor(project(m, comps, d, k), {n, k}, x.dtype());
  res.components = to_tensor(comps, {k, d}, x.dtype());
  res.explained_variance = to_tensor(var, {k}, x.dtype());
  res.explained_variance_ratio = to_tensor(ratio, {k}, x.dtype());
  res.mean = to_tensor(mean, {d}, x.dtype());
  return res;
}

Tensor PCAResult::transform(const Tensor& x) const {
  MMGRAD_CHECK(components.defined(), "PCAResult::transform: no fit (call pca() first)");
  const int64_t d = components.size(1), k = components.size(0);
  MMGRAD_CHECK(x.defined() && x.dim() == 2 && x.is_floating_point() && x.size(1) == d,
               "PCAResult::transform: expects float data [M, ", d, "] like the fit, got ", what(x));
  std::vector<double> m = to_matrix(x);
  center(m, mean.to_vector<double>());
  return to_tensor(project(m, components.to_vector<double>(), d, k), {x.size(0), k}, x.dtype());
}

}  // namespace mmgrad::metrics
