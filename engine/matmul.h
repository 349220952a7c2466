// Matrix products, the op that takes nearly all of a transformer's time.
//
//   matmul:  out (M, N) = a (M, K) · b (K, N)
//   linear:  out (M, N) = x (M, K) · wᵀ   with w stored (N, K) = (out_features, in_features),
//            the layout of every weight matrix in the model (PyTorch's and LLaMA's convention).
//
// Backward of out = a · b, from dL/dout_ij = dout_ij and out_ij = Σ_k a_ik b_kj:
//   dL/da_ik = Σ_j dout_ij b_kj   →  da += dout · bᵀ   (M, N)(N, K)
//   dL/db_kj = Σ_i a_ik dout_ij   →  db += aᵀ · dout   (K, M)(M, N)
// and for linear (b = wᵀ):  dx += dout · w,  dw += doutᵀ · x.
//
// The fast versions map our row-major buffers into Eigen (no copy) and let Eigen's blocked,
// vectorized GEMM do the work. Threads: the output is cut into one block of rows (or columns)
// per OpenMP thread, each computed by Eigen on one thread; called from inside a parallel loop,
// a product stays on the calling thread. The naive version is the three-loop definition, kept
// for tests and lessons.
#pragma once

#include <vector>

#include "engine/real.h"
#include "engine/tape.h"

namespace foundry {

// Gradient pointers may be nullptr when that gradient is not needed. Gradients accumulate (+=).
void matmul_forward(real* out, const real* a, const real* b, int M, int K, int N);
void matmul_backward(real* da, real* db, const real* dout, const real* a, const real* b, int M, int K, int N);
void linear_forward(real* out, const real* x, const real* w, int M, int K, int N);
void linear_backward(real* dx, real* dw, const real* dout, const real* x, const real* w, int M, int K, int N);

// The definition, one multiply-add at a time, parallel over rows of out. (M, K) · (K, N).
void matmul_naive(real* out, const real* a, const real* b, int M, int K, int N);

// Taped wrappers. matmul: a (M, K), b (K, N) -> (M, N).
// linear: x (..., K) with any leading dims, w (N, K) -> (..., N).
Var matmul(Tape& tape, Var a, Var b);
Var linear(Tape& tape, Var x, Var w);

}  // namespace foundry
