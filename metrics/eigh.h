// Eigen-decomposition of a real symmetric matrix, A = V diag(w) V^T (torch.linalg.eigh's name and
// conventions: eigenvalues in ascending order, eigenvector j in column j of V, only the lower
// triangle of A read).
//
// Our own small solver (metrics/eigh.cpp explains the math): Householder reduction to a
// tridiagonal matrix, then the implicit QL algorithm with Wilkinson shifts, all in double
// precision. PCA (metrics/pca.h) is its user. It replaces Eigen's SelfAdjointEigenSolver, whose
// templates cost ~16 CPU-seconds to compile; metrics/eigh.cpp compiles in about 2.
//
// Divergence from torch.linalg.eigh: plain row-major doubles in and out (no Tensor, no batch, no
// autograd), since it is a tool for analysis code, not an op. Each eigenvector is defined only up
// to sign (and, for a repeated eigenvalue, only the space they span is defined): callers that
// need a fixed sign choose it themselves, as pca() does.
#pragma once

#include <cstdint>
#include <vector>

namespace mmgrad::metrics {

struct EighResult {
  std::vector<double> eigenvalues;   // [n], ascending
  std::vector<double> eigenvectors;  // [n, n] row-major: column j is the unit eigenvector of
                                     // eigenvalues[j]; the columns are orthonormal
};

// a: [n, n] row-major with n >= 1. Only the lower triangle (a[i * n + j] with j <= i) is read;
// the matrix is taken to be symmetric. Throws mmgrad::Error naming "eigh" for a size that is not
// n * n, a non-finite entry, or (it should not happen) no convergence.
// Cost: about 9 n^3 flops (n = 512: ~0.1 s on one core).
EighResult eigh(const std::vector<double>& a, int64_t n);

}  // namespace mmgrad::metrics
