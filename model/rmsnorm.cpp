#include "model/rmsnorm.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/parallel.h"

namespace foundry {

// ANCHOR: rmsnorm_forward
void rmsnorm_forward(real* out, real* rstd, const real* x, const real* w, int N, int C, real eps) {
// rows are independent: own out row, own rstd
#pragma omp parallel for if (worth_threads(Work::elementwise, double(N) * C))
  for (int n = 0; n < N; n++) {
    const real* xn = x + (size_t)n * C;
    real* yn = out + (size_t)n * C;
    double sum_sq = 0;  // in double: C squares summed in float would lose the last digits
    for (int i = 0; i < C; i++) sum_sq += double(xn[i]) * xn[i];
    real r = static_cast<real>(1.0 / std::sqrt(sum_sq / C + eps));  // eps inside the root
    rstd[n] = r;
    for (int i = 0; i < C; i++) yn[i] = xn[i] * r * w[i];
  }
}
// ANCHOR_END: rmsnorm_forward

// ANCHOR: rmsnorm_backward
void rmsnorm_backward(real* dx, real* dw, const real* dout, const real* x, const real* w, const real* rstd, int N,
                      int C) {
  if (dx) {
#pragma omp parallel for if (worth_threads(Work::elementwise, double(N) * C))  // rows are independent for dx
    for (int n = 0; n < N; n++) {
      const real* xn = x + (size_t)n * C;
      const real* dyn = dout + (size_t)n * C;
      real* dxn = dx + (size_t)n * C;
      real r = rstd[n];
      double dot = 0;  // Σ_i g_i x_i with g_i = dy_i w_i
      for (int i = 0; i < C; i++) dot += double(dyn[i]) * w[i] * xn[i];
      real coef = static_cast<real>(r * r * r * dot / C);
      // in the forward this was y_i = x_i · r · w_i: the first term holds r fixed, the second
      // is the path through r, which every x_j of the row feeds
      for (int i = 0; i < C; i++) dxn[i] += r * dyn[i] * w[i] - coef * xn[i];
    }
  }
  if (dw) {
    // subtle: every row adds into the same dw, so this sum over rows stays on one thread (a
    // parallel loop over rows would race); the inner loop over channels vectorizes.
    for (int n = 0; n < N; n++) {
      const real* xn = x + (size_t)n * C;
      const real* dyn = dout + (size_t)n * C;
      real r = rstd[n];
      for (int i = 0; i < C; i++) dw[i] += dyn[i] * xn[i] * r;  // dy_i · x̂_i
    }
  }
}
// ANCHOR_END: rmsnorm_backward

// ANCHOR: rmsnorm_taped
Var rmsnorm(Tape& tape, Var x, Var w, real eps) {
  const Tensor& X = tape.value(x);
  const Tensor& W = tape.value(w);
  if (X.rank() < 1 || W.rank() != 1 || X.dim(-1) != W.dim(0)) {
    throw std::invalid_argument("rmsnorm: input of shape " + shape_str(X.shape) + " does not fit weight of shape " +
                                shape_str(W.shape) + " (need (..., C) and (C))");
  }
  int C = W.dim(0);
  int N = static_cast<int>(X.size() / C);
  Var out = tape.record("rmsnorm", {x.id, w.id}, X.shape);
  Tensor& rstd = tape.saved(out, 0, {N});  // (N) reused from step to step
  rmsnorm_forward(tape.mutable_value(out).ptr(), rstd.ptr(), X.ptr(), W.ptr(), N, C, eps);
  tape.set_backward(out, [&tape, x, w, out, N, C] {
    real* dx = tape.needs_grad(x) ? tape.grad(x).ptr() : nullptr;
    real* dw = tape.needs_grad(w) ? tape.grad(w).ptr() : nullptr;
    rmsnorm_backward(dx, dw, tape.grad(out).ptr(), tape.value(x).ptr(), tape.value(w).ptr(),
                     tape.node(out.id).saved[0].ptr(), N, C);
  });
  return out;
}
// ANCHOR_END: rmsnorm_taped

}  // namespace foundry
