// The packed GEMM driver shared by rungs 4 and 5 of the GEMM ladder (kernels/cpu/gemm_ladder.h):
// the five loops of BLIS/GotoBLAS around a micro-kernel. Rung 4 plugs in a portable C++
// micro-kernel, rung 5 a SIMD one; the loops and the packing are the same.
#pragma once

#include <cstdint>

#include "mmgrad/kernels/cpu/gemm_ladder.h"

namespace mmgrad::cpu::ladder {

// A micro-kernel computes one MR x NR tile of C from a packed sliver of A (kc columns of MR
// rows: element (i, k) at a[k * MR + i]) and a packed sliver of B (kc rows of NR columns:
// element (k, j) at b[k * NR + j]):
//
//   C[i][j] = alpha * sum_k a(i, k) b(k, j) + beta * C[i][j]      (beta == 0: C is not read)
//
// It keeps the MR x NR sums in registers for the whole k loop, so C is read and written once
// per kc terms, and every number loaded from a or b feeds NR or MR multiply-adds.
using MicroKernelFn = void (*)(int64_t kc, const float* a, const float* b, float* C, int64_t ldc,
                               float alpha, float beta);

struct MicroKernel {
  int MR, NR;
  MicroKernelFn fn;
};

// The blocking of the loops around the micro-kernel (in elements). KC: the depth of one packed
// panel (a kc x NR sliver of B, 32 KiB for NR = 32, stays in the 48 KiB L1 cache while the ir
// loop sweeps A past it); MC: rows of A packed at a time (MC x KC floats, ~170 KiB, live in the
// 1 MiB L2); NC: columns of B packed at a time (KC x NC, 2 MiB, in the L3). MC and NC are
// rounded down to multiples of MR and NR.
struct Blocking {
  int64_t MC = 168, KC = 256, NC = 2048;
};

// C = alpha * op(A) op(B) + beta * C through packed panels and the given micro-kernel, on up to
// omp_get_max_threads() threads (one for small products). Bit-identical on any thread count.
// Rung 4's micro-kernel: portable C++, 6 x 16 (also rung 5's fallback on CPUs without AVX2).
const MicroKernel& portable_microkernel();

void sgemm_packed_with(const MicroKernel& mk, const Blocking& blk, MMGRAD_SGEMM_ARGS);

}  // namespace mmgrad::cpu::ladder
