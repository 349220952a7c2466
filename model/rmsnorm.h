// RMSNorm: rescale each row to unit root-mean-square, then apply a learned per-channel gain.
//
//   forward:   r = 1 / sqrt(mean_i(x_i²) + eps)       (one number per row; eps inside the root)
//              y_i = x_i · r · w_i
//   cached:    r per row ("rstd", N numbers); x and w are the op's inputs
//   backward:  with g_i = dy_i · w_i (the gradient arriving at the normalized x̂_i = x_i · r):
//              dx_j += r · g_j − r³ · x_j · (Σ_i g_i x_i) / C
//              dw_i += Σ_rows dy_i · x_i · r
//   derivation: ∂r/∂x_j = −½ (mean(x²) + eps)^(−3/2) · 2 x_j / C = −r³ x_j / C, so
//              ∂y_i/∂x_j = w_i (r [i = j] − x_i r³ x_j / C); contract with dy_i.
//
// Unlike LayerNorm it subtracts no mean and adds no bias: one statistic per row instead of two,
// and (the LLaMA authors' finding) no loss in quality.
#pragma once

#include "engine/tape.h"

namespace foundry {

// x, out (N, C); w (C); rstd (N) receives 1 / sqrt(mean(x²) + eps) of each row.
void rmsnorm_forward(real* out, real* rstd, const real* x, const real* w, int N, int C, real eps);
// dx (N, C) and dw (C) accumulate (+=); either may be nullptr when not needed.
void rmsnorm_backward(real* dx, real* dw, const real* dout, const real* x, const real* w, const real* rstd, int N,
                      int C);

// Taped wrapper: x (..., C) with any leading dims, w (C) -> (..., C).
Var rmsnorm(Tape& tape, Var x, Var w, real eps);

}  // namespace foundry
