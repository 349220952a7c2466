// The LoRA linear: forward and backward side by side (the derivation is in lora.h).
#include "engine/lora.h"

#include <stdexcept>
#include <string>

#include "engine/matmul.h"

namespace foundry {

// ANCHOR: lora_forward
void lora_forward(real* out, real* us, const real* x, const real* w, const real* a, const real* b, real scale, int M,
                  int K, int N, int R) {
  linear_forward(out, x, w, M, K, N);                                      // y = x · wᵀ             (M, N)
  linear_forward(us, x, a, M, K, R);                                       // u = x · aᵀ             (M, R)
  for (size_t i = 0; i < static_cast<size_t>(M) * R; i++) us[i] *= scale;  // s·u
  linear_forward_add(out, us, b, M, R, N);                                 // y += (s·u) · bᵀ        (M, N)
}
// ANCHOR_END: lora_forward

// ANCHOR: lora_backward
void lora_backward(real* dx, real* dw, real* da, real* db, real* dus, const real* dy, const real* x, const real* w,
                   const real* a, const real* b, const real* us, real scale, int M, int K, int N, int R) {
  // The main path, y = x · wᵀ: dx += dy · w, and dw += dyᵀ · x only if w trains.
  linear_backward(dx, dw, dy, x, w, M, K, N);
  if (!dx && !da && !db) return;
  // The second linear of the branch, y_low = (s·u) · bᵀ: d(s·u) = dy · b, db += dyᵀ · (s·u).
  const size_t MR = static_cast<size_t>(M) * R;
  for (size_t i = 0; i < MR; i++) dus[i] = 0;
  linear_backward(dus, db, dy, us, b, M, R, N);
  if (!dx && !da) return;
  // Through the scale: du = s · d(s·u). Then the first linear, u = x · aᵀ: da += duᵀ · x, dx += du · a.
  for (size_t i = 0; i < MR; i++) dus[i] *= scale;
  linear_backward(dx, da, dus, x, a, M, K, R);
}
// ANCHOR_END: lora_backward

Var lora_linear(Tape& tape, Var x, Var w, Var a, Var b, real scale) {
  const Tensor& X = tape.value(x);
  const Tensor& W = tape.value(w);
  const Tensor& A = tape.value(a);
  const Tensor& Bm = tape.value(b);
  if (X.rank() < 1 || W.rank() != 2 || A.rank() != 2 || Bm.rank() != 2 || W.dim(1) == 0 || X.dim(-1) != W.dim(1) ||
      A.dim(1) != W.dim(1) || Bm.dim(0) != W.dim(0) || Bm.dim(1) != A.dim(0) || A.dim(0) == 0) {
    throw std::invalid_argument("lora_linear: x " + shape_str(X.shape) + ", w " + shape_str(W.shape) + ", a " +
                                shape_str(A.shape) + ", b " + shape_str(Bm.shape) +
                                " do not fit (need x (..., K), w (N, K), a (R, K), b (N, R) with R >= 1)");
  }
  const int K = W.dim(1), N = W.dim(0), R = A.dim(0);
  const int M = static_cast<int>(X.size() / K);
  Shape out_shape = X.shape;
  out_shape.back() = N;
  Var out = tape.record("lora_linear", {x.id, w.id, a.id, b.id}, out_shape);
  // subtle: slot 1 first, so that making it cannot move slot 0 while we hold a reference to it.
  tape.saved(out, 1, {M, R});               // the backward's scratch d(s·u), reused from step to step
  Tensor& us = tape.saved(out, 0, {M, R});  // s · (x · aᵀ), for the backward
  lora_forward(tape.mutable_value(out).ptr(), us.ptr(), X.ptr(), W.ptr(), A.ptr(), Bm.ptr(), scale, M, K, N, R);
  tape.set_backward(out, [&tape, x, w, a, b, out, scale, M, K, N, R] {
    real* dx = tape.needs_grad(x) ? tape.grad(x).ptr() : nullptr;
    real* dw = tape.needs_grad(w) ? tape.grad(w).ptr() : nullptr;
    real* da = tape.needs_grad(a) ? tape.grad(a).ptr() : nullptr;
    real* db = tape.needs_grad(b) ? tape.grad(b).ptr() : nullptr;
    Tensor& dus = tape.saved(out, 1, {M, R});  // allocated by the forward: same shape, nothing moves
    lora_backward(dx, dw, da, db, dus.ptr(), tape.grad(out).ptr(), tape.value(x).ptr(), tape.value(w).ptr(),
                  tape.value(a).ptr(), tape.value(b).ptr(), tape.node(out.id).saved[0].ptr(), scale, M, K, N, R);
  });
  return out;
}

Var lora_linear(Tape& tape, Var x, Var w, const LoraVars& adapter) {
  if (adapter.empty()) return linear(tape, x, w);
  return lora_linear(tape, x, w, adapter.a, adapter.b, adapter.scale);
}

}  // namespace foundry
