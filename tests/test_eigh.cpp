// The symmetric eigen-solver behind PCA (metrics/eigh.h): matrices whose eigen-decomposition is
// known in closed form (1 x 1, diagonal, 2 x 2, the tridiagonal [-1, 2, -1] matrix, Q diag(w) Q^T
// with a chosen spectrum, repeated eigenvalues included), random symmetric matrices up to
// 256 x 256 checked by A v = lambda v and V^T V = I, extreme scales, and bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "mmgrad/core/error.h"
#include "mmgrad/metrics/eigh.h"

// Everything in its own namespace, with no using-directive: the suites are compiled several
// files per compiler run (a unity build), where file-scope names would meet other suites'.
namespace mmgrad::metrics::eigh_test {

namespace {

using Matrix = std::vector<double>;  // n x n, row-major

Matrix random_symmetric(int64_t n, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> normal;
  Matrix a(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) a[i * n + j] = a[j * n + i] = normal(gen);
  return a;
}

// A random orthogonal matrix: Gram-Schmidt (done twice, for orthogonality to rounding) on the
// columns of a Gaussian matrix.
Matrix random_orthogonal(int64_t n, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> normal;
  Matrix q(static_cast<size_t>(n * n));
  for (double& x : q) x = normal(gen);
  for (int64_t j = 0; j < n; ++j)
    for (int pass = 0; pass < 2; ++pass) {
      for (int64_t p = 0; p < j; ++p) {
        double dot = 0;
        for (int64_t i = 0; i < n; ++i) dot += q[i * n + j] * q[i * n + p];
        for (int64_t i = 0; i < n; ++i) q[i * n + j] -= dot * q[i * n + p];
      }
      double norm = 0;
      for (int64_t i = 0; i < n; ++i) norm += q[i * n + j] * q[i * n + j];
      for (int64_t i = 0; i < n; ++i) q[i * n + j] /= std::sqrt(norm);
    }
  return q;
}

// Q diag(w) Q^T: the symmetric matrix with eigenvalues w and eigenvectors the columns of Q.
Matrix with_spectrum(const Matrix& q, const std::vector<double>& w) {
  const int64_t n = static_cast<int64_t>(w.size());
  Matrix a(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < n; ++k) a[i * n + j] += q[i * n + k] * w[k] * q[j * n + k];
  return a;
}

double max_abs(const Matrix& a) {
  double m = 0;
  for (double x : a) m = std::max(m, std::abs(x));
  return m;
}

// The defining properties, with tolerances relative to the size of A:
//   A v_j = w_j v_j for every column v_j of V, V^T V = I, w ascending.
void check_decomposition(const Matrix& a, int64_t n, const EighResult& r, double tol = 1e-12) {
  REQUIRE(r.eigenvalues.size() == static_cast<size_t>(n));
  REQUIRE(r.eigenvectors.size() == static_cast<size_t>(n * n));
  const Matrix& v = r.eigenvectors;
  const double scale = std::max(max_abs(a), 1e-300) * static_cast<double>(n);
  double residual = 0, ortho = 0;
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t i = 0; i < n; ++i) {
      double av = 0;
      for (int64_t k = 0; k < n; ++k) av += a[i * n + k] * v[k * n + j];
      residual = std::max(residual, std::abs(av - r.eigenvalues[j] * v[i * n + j]));
    }
    for (int64_t p = 0; p < n; ++p) {
      double dot = 0;
      for (int64_t i = 0; i < n; ++i) dot += v[i * n + j] * v[i * n + p];
      ortho = std::max(ortho, std::abs(dot - (p == j ? 1.0 : 0.0)));
    }
    if (j > 0) CHECK(r.eigenvalues[j - 1] <= r.eigenvalues[j]);
  }
  CHECK(residual <= tol * scale);
  CHECK(ortho <= tol * static_cast<double>(n));
}

}  // namespace

TEST_CASE("eigh: 1 x 1, zero, diagonal and scaled identity matrices") {
  EighResult one = eigh({-3.5}, 1);
  CHECK(one.eigenvalues == std::vector<double>{-3.5});
  CHECK(one.eigenvectors == std::vector<double>{1.0});
  // The zero matrix: eigenvalues 0 and the identity.
  EighResult zero = eigh(Matrix(9, 0.0), 3);
  CHECK(zero.eigenvalues == std::vector<double>{0, 0, 0});
  CHECK(zero.eigenvectors == std::vector<double>{1, 0, 0, 0, 1, 0, 0, 0, 1});
  // diag(3, -1, 2, 0): eigenvalues sorted, eigenvectors the unit vectors e_i (up to sign).
  const std::vector<double> diag = {3, -1, 2, 0};
  Matrix d(16, 0.0);
  for (int i = 0; i < 4; ++i) d[i * 4 + i] = diag[i];
  EighResult r = eigh(d, 4);
  CHECK(r.eigenvalues == std::vector<double>{-1, 0, 2, 3});
  const int source[4] = {1, 3, 2, 0};  // where each sorted eigenvalue sits on the diagonal
  for (int j = 0; j < 4; ++j)
    for (int i = 0; i < 4; ++i)
      CHECK(std::abs(r.eigenvectors[i * 4 + j]) == (i == source[j] ? 1.0 : 0.0));
  // 2.5 I (every eigenvalue repeated): any orthonormal basis is right.
  Matrix c(25, 0.0);
  for (int i = 0; i < 5; ++i) c[i * 5 + i] = 2.5;
  EighResult rc = eigh(c, 5);
  for (double w : rc.eigenvalues) CHECK(w == doctest::Approx(2.5).epsilon(1e-15));
  check_decomposition(c, 5, rc);
}

TEST_CASE("eigh: 2 x 2 matrices against the closed form") {
  // [[a, b], [b, c]]: w = (a + c) / 2 -+ sqrt(((a - c) / 2)^2 + b^2), and (b, w - a) is an
  // eigenvector of w.
  const double cases[][3] = {{2, 1, 2}, {1, 0.5, -3}, {0, 1e-3, 0}, {5, -2, 1}, {1e6, 1, 1e-6}};
  for (const auto& m : cases) {
    const double a = m[0], b = m[1], c = m[2];
    CAPTURE(a);
    CAPTURE(b);
    CAPTURE(c);
    const double mid = (a + c) / 2, rad = std::hypot((a - c) / 2, b);
    const double w[2] = {mid - rad, mid + rad};
    EighResult r = eigh({a, b, b, c}, 2);
    for (int j = 0; j < 2; ++j) {
      CHECK(r.eigenvalues[j] == doctest::Approx(w[j]).epsilon(1e-14).scale(std::abs(mid) + rad));
      // The solver's column j is parallel to (b, w - a): |cos| = 1.
      const double ex = b, ey = w[j] - a, norm = std::hypot(ex, ey);
      const double cosine = (r.eigenvectors[j] * ex + r.eigenvectors[2 + j] * ey) / norm;
      CHECK(std::abs(cosine) == doctest::Approx(1.0).epsilon(1e-12));
    }
    check_decomposition({a, b, b, c}, 2, r);
  }
}

TEST_CASE("eigh: the tridiagonal [-1, 2, -1] matrix has eigenvalues 2 - 2 cos(k pi / (n + 1))") {
  // The second-difference matrix; its eigenvectors are sine waves, sin(i k pi / (n + 1)).
  const int64_t n = 50;
  Matrix a(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    a[i * n + i] = 2;
    if (i > 0) a[i * n + i - 1] = a[(i - 1) * n + i] = -1;
  }
  EighResult r = eigh(a, n);
  const double pi = std::numbers::pi;
  for (int64_t k = 1; k <= n; ++k) {
    CHECK(r.eigenvalues[k - 1] ==
          doctest::Approx(2 - 2 * std::cos(k * pi / (n + 1))).epsilon(1e-13).scale(1));
    // Column k - 1 is +-sqrt(2 / (n + 1)) sin(i k pi / (n + 1)), i = 1 .. n.
    double dot = 0;
    for (int64_t i = 0; i < n; ++i)
      dot += r.eigenvectors[i * n + k - 1] * std::sqrt(2.0 / (n + 1)) *
             std::sin(static_cast<double>((i + 1) * k) * pi / (n + 1));
    CHECK(std::abs(dot) == doctest::Approx(1.0).epsilon(1e-12));
  }
  check_decomposition(a, n, r);
}

TEST_CASE("eigh: a chosen spectrum Q diag(w) Q^T is recovered, repeated eigenvalues included") {
  SUBCASE("distinct eigenvalues: the eigenvectors are Q's columns up to sign") {
    const int64_t n = 8;
    const std::vector<double> w = {-4, -1, -0.5, 0, 0.25, 1, 3, 10};
    Matrix q = random_orthogonal(n, 7);
    Matrix a = with_spectrum(q, w);
    EighResult r = eigh(a, n);
    for (int64_t j = 0; j < n; ++j) {
      CHECK(r.eigenvalues[j] == doctest::Approx(w[j]).epsilon(1e-13).scale(10));
      double dot = 0;
      for (int64_t i = 0; i < n; ++i) dot += r.eigenvectors[i * n + j] * q[i * n + j];
      CHECK(std::abs(dot) == doctest::Approx(1.0).epsilon(1e-12));
    }
    check_decomposition(a, n, r);
  }
  SUBCASE("repeated eigenvalues: the right values, and an orthonormal basis of each space") {
    const int64_t n = 7;
    const std::vector<double> w = {-2, 1, 1, 1, 5, 5, 5};
    Matrix q = random_orthogonal(n, 11);
    Matrix a = with_spectrum(q, w);
    EighResult r = eigh(a, n);
    for (int64_t j = 0; j < n; ++j)
      CHECK(r.eigenvalues[j] == doctest::Approx(w[j]).epsilon(1e-13).scale(5));
    // Columns 1 .. 3 span the same space as Q's columns 1 .. 3: each projects onto it fully.
    for (int64_t j = 1; j <= 3; ++j) {
      double in_space = 0;
      for (int64_t p = 1; p <= 3; ++p) {
        double dot = 0;
        for (int64_t i = 0; i < n; ++i) dot += r.eigenvectors[i * n + j] * q[i * n + p];
        in_space += dot * dot;
      }
      CHECK(in_space == doctest::Approx(1.0).epsilon(1e-12));
    }
    check_decomposition(a, n, r);
  }
  SUBCASE("rank one: u u^T has eigenvalues 0 (n - 1 times) and ||u||^2") {
    const std::vector<double> u = {1, -2, 0.5, 3};
    Matrix a(16);
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) a[i * 4 + j] = u[i] * u[j];
    EighResult r = eigh(a, 4);
    for (int j = 0; j < 3; ++j) CHECK(std::abs(r.eigenvalues[j]) < 1e-14 * 14.25);
    CHECK(r.eigenvalues[3] == doctest::Approx(14.25).epsilon(1e-14));
    check_decomposition(a, 4, r);
  }
}

TEST_CASE("eigh: random symmetric matrices up to 256 x 256") {
  for (int64_t n : {2, 3, 5, 17, 64, 129, 256}) {
    CAPTURE(n);
    Matrix a = random_symmetric(n, static_cast<uint64_t>(100 + n));
    EighResult r = eigh(a, n);
    check_decomposition(a, n, r);
    // Invariants: the trace is the sum of the eigenvalues, ||A||_F^2 the sum of their squares.
    double trace = 0, frob = 0, sum = 0, sum_sq = 0;
    for (int64_t i = 0; i < n; ++i) trace += a[i * n + i];
    for (double x : a) frob += x * x;
    for (double w : r.eigenvalues) {
      sum += w;
      sum_sq += w * w;
    }
    CHECK(sum == doctest::Approx(trace).scale(static_cast<double>(n)).epsilon(1e-12));
    CHECK(sum_sq == doctest::Approx(frob).epsilon(1e-12));
  }
  // The same matrix gives the same bits (one thread, a fixed order).
  Matrix a = random_symmetric(40, 3);
  EighResult r1 = eigh(a, 40), r2 = eigh(a, 40);
  CHECK(r1.eigenvalues == r2.eigenvalues);
  CHECK(r1.eigenvectors == r2.eigenvectors);
}

TEST_CASE("eigh: only the lower triangle is read, and extreme scales work") {
  const int64_t n = 6;
  Matrix a = random_symmetric(n, 5);
  EighResult r = eigh(a, n);
  // Anything above the diagonal, even NaN, is ignored (torch.linalg.eigh's UPLO = 'L').
  Matrix lower = a;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) lower[i * n + j] = (i + j) % 2 ? NAN : 1e300;
  EighResult rl = eigh(lower, n);
  CHECK(rl.eigenvalues == r.eigenvalues);
  CHECK(rl.eigenvectors == r.eigenvectors);
  // The matrix is scaled to entries in [-1, 1] first: 1e200 A and 1e-200 A neither overflow nor
  // underflow, and have the eigenvalues of A times the factor.
  for (double factor : {1e200, 1e-200}) {
    CAPTURE(factor);
    Matrix s = a;
    for (double& x : s) x *= factor;
    EighResult rs = eigh(s, n);
    for (int64_t j = 0; j < n; ++j)
      CHECK(rs.eigenvalues[j] / factor == doctest::Approx(r.eigenvalues[j]).epsilon(1e-13));
    check_decomposition(s, n, rs);
  }
}

TEST_CASE("eigh: bad input is a clear error naming eigh") {
  CHECK_THROWS_WITH_AS(eigh({}, 0), doctest::Contains("eigh: expects a square [n, n] matrix"),
                       Error);
  CHECK_THROWS_WITH_AS(eigh({1, 2, 3}, 2), doctest::Contains("got n = 2 and 3 values"), Error);
  Matrix a = random_symmetric(3, 1);
  a[2 * 3 + 1] = NAN;
  CHECK_THROWS_WITH_AS(eigh(a, 3), doctest::Contains("eigh: the matrix has a non-finite value"),
                       Error);
  CHECK_THROWS_WITH_AS(eigh(a, 3), doctest::Contains("at [2, 1] of a [3, 3] matrix"), Error);
  a[2 * 3 + 1] = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH_AS(eigh(a, 3), doctest::Contains("non-finite value (inf)"), Error);
}

}  // namespace mmgrad::metrics::eigh_test
