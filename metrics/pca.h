// Principal component analysis: project embeddings to 2-D/3-D for plots.
//
// The components are the top-k eigenvectors of the covariance matrix
//   C = (X - mean)^T (X - mean) / (N - 1)          [D, D]
// (our symmetric eigen-solver, metrics/eigh.h, in double precision). Each eigenvector is defined
// only up to sign, so the sign is fixed: the entry of largest magnitude is made positive (the
// first such entry on a tie). Same data, same projection, on every run and machine.
#pragma once

#include "mmgrad/tensor/tensor.h"

namespace mmgrad::metrics {

struct PCAResult {
  Tensor projected;                 // [N, k]: (x - mean) @ components^T
  Tensor components;                // [k, D]: unit rows, decreasing variance
  Tensor explained_variance;        // [k]: eigenvalues of C (variance along each component)
  Tensor explained_variance_ratio;  // [k]: share of the total variance (0 for constant data)
  Tensor mean;                      // [D]
  // Projects new data [M, D] with this fit: [M, k].
  Tensor transform(const Tensor& x) const;
};

// x: float32/float64 [N, D] with N >= 2; 1 <= k <= D. Results have x's dtype (on the CPU).
// Cost: O(N D^2) for the covariance plus O(D^3) for the eigen-solve (fine for D up to ~1000).
PCAResult pca(const Tensor& x, int64_t k);

}  // namespace mmgrad::metrics
