// A linear layer with a low-rank adapter (LoRA): the frozen weight w plus a trainable product
// of two thin matrices, scaled by s = alpha / R.
//
//   y = x · wᵀ + s · (x · aᵀ) · bᵀ        x (M, K), w (N, K), a (R, K), b (N, R), y (M, N)
//
// (M rows, K inputs, N outputs, R the rank, as engine/matmul.h and engine/dims.h name them.)
// The adapted weight is w + s · b · a, an (N, K) matrix of rank at most R added to w; the op never
// forms it: the low-rank branch goes through the R-wide bottleneck u = x · aᵀ (M, R), which
// costs M·R·(K + N) multiply-adds instead of the M·K·N of another full product.
//
// Backward, from dy = dL/dy (M, N). Write the branch as two linears, u = x · aᵀ and
// y_low = (s·u) · bᵀ, and apply linear's rules (engine/matmul.h: dx += dy · w, dw += dyᵀ · x):
//
//   d(s·u) = dy · b             (M, N)(N, R) -> (M, R)
//   db    += dyᵀ · (s·u)        (N, M)(M, R) -> (N, R)     = s · dyᵀ · u
//   du     = s · d(s·u)         (M, R)                     the scale applies once more on the way in
//   da    += duᵀ · x            (R, M)(M, K) -> (R, K)
//   dx    += dy · w + du · a    (M, N)(N, K) + (M, R)(R, K) -> (M, K)
//   dw    += dyᵀ · x            only when w is trainable: in LoRA it is frozen and never computed
//
// With b = 0 (how an adapter starts) y is exactly x · wᵀ and da is exactly 0, while db is not:
// the first update moves b, and from then on both train.
#pragma once

#include "engine/real.h"
#include "engine/tape.h"

namespace foundry {

// us (M, R) receives s · (x · aᵀ), which the backward reads. out (M, N) is overwritten.
void lora_forward(real* out, real* us, const real* x, const real* w, const real* a, const real* b, real scale, int M,
                  int K, int N, int R);
// Gradients accumulate (+=); any of dx, dw, da, db may be nullptr when not needed. dus is (M, R)
// scratch that the function overwrites.
void lora_backward(real* dx, real* dw, real* da, real* db, real* dus, const real* dy, const real* x, const real* w,
                   const real* a, const real* b, const real* us, real scale, int M, int K, int N, int R);

// The adapter of one weight as tape leaves: a (R, K), b (N, R) and s = alpha / R. An empty one
// (no leaves) means "no adapter": the weight is used as it is.
struct LoraVars {
  Var a, b;
  real scale = 0;
  bool empty() const { return a.id < 0; }
};

// Taped: x (..., K), w (N, K), a (R, K), b (N, R) -> (..., N).
Var lora_linear(Tape& tape, Var x, Var w, Var a, Var b, real scale);
// linear(x, w) when `adapter` is empty, lora_linear with its leaves otherwise.
Var lora_linear(Tape& tape, Var x, Var w, const LoraVars& adapter);

}  // namespace foundry
