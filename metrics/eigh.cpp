// The symmetric eigen-solver, in three steps (the classic method of EISPACK's tred2 + tql2, also
// what LAPACK's dsyev and Eigen's SelfAdjointEigenSolver do; see Golub & Van Loan, "Matrix
// Computations", sections 8.3 and 8.4):
//
//   1. Householder tridiagonalisation: A = Q T Q^T with Q orthogonal and T tridiagonal (non-zero
//      only on the diagonal and the two diagonals beside it). O(n^3), done once.
//   2. Implicit QL iteration with Wilkinson shifts on T: a sequence of plane rotations G drives
//      the off-diagonal of T to zero, T = S diag(w) S^T with S = G_1 G_2 ... G_r. Each sweep
//      costs O(n) for T (plus O(n^2) to apply its rotations to the vectors), and a shift near an
//      eigenvalue makes the last off-diagonal entry shrink cubically: ~2 sweeps per eigenvalue.
//   3. A = (Q S) diag(w) (Q S)^T: the eigenvectors are the columns of Z = Q S. Sort by w.
//
// Why not simply "find the eigenvectors one by one" (power iteration)? It converges slowly when
// two eigenvalues are close, and deflating one vector after another loses orthogonality. The
// orthogonal transformations used here keep V orthonormal to rounding, whatever the spectrum.
//
// Everything runs in one thread in a fixed order: the same matrix gives the same bits on every
// run and thread count.
#include "mmgrad/metrics/eigh.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "mmgrad/core/error.h"

namespace mmgrad::metrics {

namespace {

// Row-major n x n storage: at(m, n, i, j) is m[i][j].
inline double& at(std::vector<double>& m, int64_t n, int64_t i, int64_t j) { return m[i * n + j]; }

// Step 1. Reduce the full symmetric matrix `a` (n x n, row-major, both triangles filled) to
// tridiagonal form T = Q^T A Q. On return diag[i] = T[i][i], off[i] = T[i + 1][i] (off[n - 1] = 0)
// and zt holds Q^T (row r of zt is column r of Q).
//
// Step k (k = 0 .. n - 3) zeroes column k below its sub-diagonal. Let x = A[k+1 .., k] (length
// m = n - k - 1). A Householder reflection H = I - beta v v^T, beta = 2 / (v^T v), with
//   v = x - alpha e_1,   alpha = -sign(x_0) ||x||
// maps x to alpha e_1 (the sign of alpha is opposite to x_0's so that v_0 = x_0 + sign(x_0) ||x||
// adds two numbers of the same sign: no cancellation). P = diag(I_{k+1}, H) is symmetric and
// orthogonal, and A <- P A P leaves rows/columns 0 .. k - 1 alone, puts (alpha, 0, .., 0) in
// column k (and row k) below (right of) the diagonal, and changes the trailing block B to H B H.
// Expanding H B H with p = beta B v and w = p - (beta / 2)(v^T p) v gives a symmetric rank-2
// update, O(m^2) instead of the O(m^3) of two matrix products:
//   H B H = B - v w^T - w v^T.
// After all steps T = P_{n-3} .. P_0 A P_0 .. P_{n-3}, so A = Q T Q^T with Q = P_0 P_1 .. P_{n-3}.
void tridiagonalise(std::vector<double>& a, int64_t n, std::vector<double>& diag,
                    std::vector<double>& off, std::vector<double>& zt) {
  std::vector<std::vector<double>> vs(static_cast<size_t>(std::max<int64_t>(n - 2, 0)));
  std::vector<double> betas(vs.size(), 0.0);
  std::vector<double> p(static_cast<size_t>(n)), w(static_cast<size_t>(n));
  for (int64_t k = 0; k + 2 < n; ++k) {
    const int64_t m = n - k - 1, o = k + 1;  // the trailing block is rows/columns o .. n - 1
    // x = A[o .., k], read from row k (A is symmetric, and a row is contiguous).
    const double* x = &at(a, n, k, o);
    double norm2 = 0;
    for (int64_t t = 0; t < m; ++t) norm2 += x[t] * x[t];
    if (norm2 == 0) continue;  // the column is already zero below the diagonal: P_k = I
    const double alpha = x[0] > 0 ? -std::sqrt(norm2) : std::sqrt(norm2);
    std::vector<double>& v = vs[static_cast<size_t>(k)];
    v.assign(x, x + m);
    v[0] -= alpha;
    // v^T v = ||x||^2 - 2 alpha x_0 + alpha^2 = 2 (||x||^2 - alpha x_0), computed without
    // another pass over v.
    const double beta = 1 / (norm2 - alpha * x[0]);
    betas[static_cast<size_t>(k)] = beta;
    // p = beta B v, then w = p - (beta / 2)(v^T p) v.
    double vp = 0;
    for (int64_t r = 0; r < m; ++r) {
      const double* brow = &at(a, n, o + r, o);
      double s = 0;
      for (int64_t c = 0; c < m; ++c) s += brow[c] * v[c];
      p[r] = beta * s;
      vp += v[r] * p[r];
    }
    for (int64_t r = 0; r < m; ++r) w[r] = p[r] - 0.5 * beta * vp * v[r];
    // B <- B - v w^T - w v^T (kept symmetric: both triangles are updated the same way).
    for (int64_t r = 0; r < m; ++r) {
      double* brow = &at(a, n, o + r, o);
      for (int64_t c = 0; c < m; ++c) brow[c] -= v[r] * w[c] + w[r] * v[c];
    }
    // Column k (and row k) are now (alpha, 0, .., 0) below (right of) the diagonal.
    at(a, n, o, k) = at(a, n, k, o) = alpha;
    for (int64_t t = 1; t < m; ++t) at(a, n, o + t, k) = at(a, n, k, o + t) = 0;
  }
  for (int64_t i = 0; i < n; ++i) {
    diag[i] = at(a, n, i, i);
    off[i] = i + 1 < n ? at(a, n, i + 1, i) : 0.0;
  }
  // Q^T = P_{n-3} .. P_1 P_0, built from the right end: start from I and multiply by P_k on the
  // right for k = n - 3 down to 0. Before the product with P_k the matrix is still the identity
  // in rows and columns 0 .. k + 1, and P_k touches only columns k + 1 .., so only the block
  // [k+1 .., k+1 ..] changes: M <- M - beta (M v) v^T, a row-by-row update (contiguous).
  std::fill(zt.begin(), zt.end(), 0.0);
  for (int64_t i = 0; i < n; ++i) at(zt, n, i, i) = 1;
  for (int64_t k = n - 3; k >= 0; --k) {
    const std::vector<double>& v = vs[static_cast<size_t>(k)];
    if (v.empty()) continue;  // P_k = I
    const int64_t m = n - k - 1, o = k + 1;
    const double beta = betas[static_cast<size_t>(k)];
    for (int64_t r = o; r < n; ++r) {
      double* row = &at(zt, n, r, o);
      double s = 0;
      for (int64_t c = 0; c < m; ++c) s += row[c] * v[c];
      s *= beta;
      for (int64_t c = 0; c < m; ++c) row[c] -= s * v[c];
    }
  }
}

// Step 2. Eigenvalues of the symmetric tridiagonal T (diagonal d, off-diagonal e with
// e[i] = T[i + 1][i], e[n - 1] = 0), by the implicit QL algorithm with Wilkinson shifts. On
// return d holds the eigenvalues (unsorted); each plane rotation applied to T is also applied to
// the rows of zt (= the columns of Z = Q S), which turns Q^T into the eigenvectors, one per row.
//
// One QL sweep on the block l .. m (between two negligible off-diagonals) is, in exact
// arithmetic, "T - sigma I = Q L (Q orthogonal, L lower triangular), then T <- L Q + sigma I":
// a similarity transform (L Q = Q^T (T - sigma I) Q), so the eigenvalues stay, while e[l]
// shrinks by a factor ~ |lambda - sigma| / |lambda' - sigma| for the eigenvalue lambda nearest
// to sigma. The shift sigma is the eigenvalue of the leading 2 x 2 block [[d_l, e_l], [e_l,
// d_{l+1}]] nearer to d_l (Wilkinson's shift): it tracks lambda ever more closely, and e[l] goes
// to zero cubically. "Implicit": Q is never formed; the first rotation is chosen as the explicit
// method's would be, and the rest chase the bulge it creates back along the band (Francis; the
// implicit-Q theorem says the result is the same transform).
void tridiagonal_ql(std::vector<double>& d, std::vector<double>& e, int64_t n,
                    std::vector<double>& zt) {
  const double eps = std::numeric_limits<double>::epsilon();
  const double tiny = std::numeric_limits<double>::min();
  // ~2 sweeps per eigenvalue are typical; 60 means something is badly wrong (it does not
  // happen for finite input, but an eigen-solver must not loop forever).
  const int max_sweeps = 60;
  for (int64_t l = 0; l < n; ++l) {
    for (int sweep = 0;; ++sweep) {
      // Find the first negligible off-diagonal e[m], m >= l: there T splits into independent
      // blocks, and we work on the block l .. m. "Negligible" is relative to its neighbours on
      // the diagonal (it changes them by less than rounding does).
      int64_t m = l;
      for (; m + 1 < n; ++m) {
        const double dd = std::abs(d[m]) + std::abs(d[m + 1]);
        if (std::abs(e[m]) <= eps * dd || std::abs(e[m]) < tiny) break;
      }
      if (m == l) break;  // e[l] is negligible: d[l] is an eigenvalue
      MMGRAD_CHECK(sweep < max_sweeps, "eigh: the QL iteration did not converge for eigenvalue ", l,
                   " of a [", n, ", ", n, "] matrix after ", max_sweeps, " sweeps");
      // The Wilkinson shift sigma, written in the form that avoids cancellation:
      //   g = (d_{l+1} - d_l) / (2 e_l),  sigma = d_l - e_l / (g + sign(g) sqrt(g^2 + 1)),
      // and g <- d_m - sigma starts the sweep at the bottom of the block.
      double g = (d[l + 1] - d[l]) / (2 * e[l]);
      double r = std::hypot(g, 1.0);
      g = d[m] - d[l] + e[l] / (g + std::copysign(r, g));
      double s = 1, c = 1, p = 0;
      bool split = false;
      // Rotations in the planes (i, i + 1) for i = m - 1 down to l: each zeroes the bulge the
      // previous one left outside the band. (c, s) = (cos, sin) of the angle.
      for (int64_t i = m - 1; i >= l; --i) {
        const double f = s * e[i], b = c * e[i];
        r = std::hypot(f, g);
        e[i + 1] = r;
        if (r == 0) {
          // The bulge vanished (an off-diagonal underflowed): T has split at i + 1. Undo the
          // pending shift on d[i + 1] and start again on the smaller block.
          d[i + 1] -= p;
          e[m] = 0;
          split = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - p;
        r = (d[i] - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
        // The same rotation on the eigenvector estimates: columns i and i + 1 of Z, i.e. rows i
        // and i + 1 of zt.
        double* zi = &at(zt, n, i, 0);
        double* zi1 = &at(zt, n, i + 1, 0);
        for (int64_t t = 0; t < n; ++t) {
          const double z1 = zi1[t];
          zi1[t] = s * zi[t] + c * z1;
          zi[t] = c * zi[t] - s * z1;
        }
      }
      if (split) continue;
      d[l] -= p;
      e[l] = g;
      e[m] = 0;
    }
  }
}

}  // namespace

EighResult eigh(const std::vector<double>& a, int64_t n) {
  MMGRAD_CHECK(n >= 1 && static_cast<int64_t>(a.size()) == n * n,
               "eigh: expects a square [n, n] matrix with n >= 1 as n * n values, got n = ", n,
               " and ", a.size(), " values");
  // Fill both triangles from the lower one, and scale by the largest magnitude: working with
  // entries in [-1, 1] keeps squares and sums far from overflow and underflow. Eigenvectors do
  // not change under scaling; eigenvalues scale with the matrix and are scaled back at the end.
  double scale = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      const double x = a[static_cast<size_t>(i * n + j)];
      MMGRAD_CHECK(std::isfinite(x), "eigh: the matrix has a non-finite value (", x, ") at [", i,
                   ", ", j, "] of a [", n, ", ", n, "] matrix");
      scale = std::max(scale, std::abs(x));
    }
  EighResult res;
  res.eigenvalues.assign(static_cast<size_t>(n), 0.0);
  res.eigenvectors.assign(static_cast<size_t>(n * n), 0.0);
  if (scale == 0) {  // the zero matrix: eigenvalues 0, the identity as eigenvectors
    for (int64_t i = 0; i < n; ++i) res.eigenvectors[static_cast<size_t>(i * n + i)] = 1;
    return res;
  }
  std::vector<double> m(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j)
      at(m, n, i, j) = at(m, n, j, i) = a[static_cast<size_t>(i * n + j)] / scale;

  std::vector<double> d(static_cast<size_t>(n)), e(static_cast<size_t>(n));
  std::vector<double> zt(static_cast<size_t>(n * n));
  tridiagonalise(m, n, d, e, zt);
  tridiagonal_ql(d, e, n, zt);

  // Step 3: ascending order (a stable sort: equal eigenvalues keep the order the iteration left
  // them in, so the result depends on nothing but the input), scale back, and write the
  // eigenvectors as columns.
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return d[x] < d[y]; });
  for (int64_t j = 0; j < n; ++j) {
    const int64_t src = order[j];
    res.eigenvalues[j] = d[src] * scale;
    for (int64_t i = 0; i < n; ++i) res.eigenvectors[i * n + j] = at(zt, n, src, i);
  }
  return res;
}

}  // namespace mmgrad::metrics
