// GCC 12 reports false "(may be) used uninitialized" warnings inside its own AVX-512 intrinsics
// headers when Eigen's products are inlined (the same known GCC issue CMakeLists.txt silences
// for kernels/cpu/gemm.cpp; the sanitizer build shows the -Wuninitialized form). They must be
// off before the intrinsics headers are first seen.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "mmgrad/metrics/pca.h"

#include <Eigen/Core>
#include <Eigen/Eigenvalues>  // only the symmetric eigen-solver (Eigen/Dense would parse all of Eigen)
#include <cmath>

#include "mmgrad/core/error.h"

namespace mmgrad::metrics {

namespace {

using MatrixRM = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

std::string what(const Tensor& t) { return t.defined() ? describe(t) : "an undefined tensor"; }

MatrixRM to_matrix(const Tensor& x) {
  MatrixRM m(x.size(0), x.size(1));
  std::vector<double> v = x.to_vector<double>();  // any dtype, strides or device
  std::copy(v.begin(), v.end(), m.data());
  for (Eigen::Index i = 0; i < m.size(); ++i)
    MMGRAD_CHECK(std::isfinite(m.data()[i]), "pca: input has a non-finite value at [", i / m.cols(),
                 ", ", i % m.cols(), "]");
  return m;
}

Tensor from_matrix(const MatrixRM& m, DType dtype) {
  std::vector<double> v(m.data(), m.data() + m.size());
  return Tensor::from_vector(v, {m.rows(), m.cols()}, dtype);
}

Tensor from_vec(const Eigen::VectorXd& m, DType dtype) {
  std::vector<double> v(m.data(), m.data() + m.size());
  return Tensor::from_vector(v, {m.size()}, dtype);
}

}  // namespace

PCAResult pca(const Tensor& x, int64_t k) {
  MMGRAD_CHECK(x.defined() && x.dim() == 2 && x.is_floating_point(),
               "pca: expects float32/float64 data [N, D], got ", what(x));
  const int64_t n = x.size(0), d = x.size(1);
  MMGRAD_CHECK(n >= 2, "pca: needs at least 2 samples, got ", describe(x));
  MMGRAD_CHECK(d >= 1 && k >= 1 && k <= d, "pca: k must be in [1, D = ", d, "], got k = ", k);
  MatrixRM m = to_matrix(x);
  Eigen::RowVectorXd mean = m.colwise().mean();
  m.rowwise() -= mean;
  // Only the lower triangle is needed by the solver; rankUpdate computes just that (half the
  // work of a full X^T X).
  Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(d, d);
  cov.selfadjointView<Eigen::Lower>().rankUpdate(m.transpose(), 1.0 / static_cast<double>(n - 1));
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(cov);
  MMGRAD_CHECK(eig.info() == Eigen::Success, "pca: the eigen-solver did not converge for ",
               describe(x));
  // Eigenvalues come in increasing order: the last k columns, reversed, are the components.
  const Eigen::VectorXd& values = eig.eigenvalues();
  double total = values.cwiseMax(0.0).sum();
  MatrixRM comps(k, d);
  Eigen::VectorXd var(k), ratio(k);
  for (int64_t i = 0; i < k; ++i) {
    Eigen::Index col = d - 1 - i;
    Eigen::VectorXd v = eig.eigenvectors().col(col);
    Eigen::Index arg = 0;
    for (Eigen::Index j = 1; j < d; ++j)
      if (std::abs(v[j]) > std::abs(v[arg])) arg = j;
    if (v[arg] < 0) v = -v;
    comps.row(i) = v.transpose();
    var[i] = std::max(values[col], 0.0);  // rounding can leave tiny negative values
    ratio[i] = total > 0 ? var[i] / total : 0.0;
  }
  MatrixRM proj = m * comps.transpose();
  PCAResult r;
  r.projected = from_matrix(proj, x.dtype());
  r.components = from_matrix(comps, x.dtype());
  r.explained_variance = from_vec(var, x.dtype());
  r.explained_variance_ratio = from_vec(ratio, x.dtype());
  r.mean = from_vec(mean.transpose(), x.dtype());
  return r;
}

Tensor PCAResult::transform(const Tensor& x) const {
  MMGRAD_CHECK(components.defined(), "PCAResult::transform: no fit (call pca() first)");
  const int64_t d = components.size(1);
  MMGRAD_CHECK(x.defined() && x.dim() == 2 && x.is_floating_point() && x.size(1) == d,
               "PCAResult::transform: expects float data [M, ", d, "] like the fit, got ", what(x));
  MatrixRM m = to_matrix(x);
  std::vector<double> mv = mean.to_vector<double>(), cv = components.to_vector<double>();
  Eigen::Map<const Eigen::RowVectorXd> mu(mv.data(), d);
  Eigen::Map<const MatrixRM> comps(cv.data(), components.size(0), d);
  m.rowwise() -= mu;
  return from_matrix(m * comps.transpose(), x.dtype());
}

}  // namespace mmgrad::metrics
