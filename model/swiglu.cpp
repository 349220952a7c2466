#include "model/swiglu.h"

#include <cmath>

#include "engine/fast_exp.h"
#include "engine/matmul.h"
#include "engine/parallel.h"

namespace foundry {

// ANCHOR: swiglu_forward
void swiglu_forward(real* h, const real* a, const real* b, size_t n) {
#pragma omp parallel for if (worth_threads(Work::elementwise, n))  // elementwise: no two iterations share an element
  for (size_t i = 0; i < n; i++) {
    real sig = 1 / (1 + fast_exp(-a[i]));  // σ(a); fast_exp vectorizes (engine/fast_exp.h)
    h[i] = a[i] * sig * b[i];              // silu(a) ⊙ b
  }
}
// ANCHOR_END: swiglu_forward

// subtle: g++ fuses no multiply-add into the two updates below in its vectorized loop, clang would
// (and round differently), so under clang this file is compiled with -ffp-contract=off
// (model/CMakeLists.txt); fast_exp's multiply-adds are explicit std::fma, the same in both.
// ANCHOR: swiglu_backward
void swiglu_backward(real* da, real* db, const real* dh, const real* a, const real* b, size_t n) {
#pragma omp parallel for if (worth_threads(Work::elementwise, n))  // elementwise, as in the forward
  for (size_t i = 0; i < n; i++) {
    real sig = 1 / (1 + fast_exp(-a[i]));
    // in the forward this was h = a σ(a) · b
    if (db) db[i] += dh[i] * a[i] * sig;                           // ∂h/∂b = silu(a)
    if (da) da[i] += dh[i] * b[i] * sig * (1 + a[i] * (1 - sig));  // ∂h/∂a = b · silu'(a)
  }
}
// ANCHOR_END: swiglu_backward

Var swiglu(Tape& tape, Var a, Var b) {
  check_same_shape(tape.value(a), tape.value(b), "swiglu gate and up");
  Var out = tape.record("swiglu", {a.id, b.id}, tape.value(a).shape);
  swiglu_forward(tape.mutable_value(out).ptr(), tape.value(a).ptr(), tape.value(b).ptr(), tape.value(a).size());
  tape.set_backward(out, [&tape, a, b, out] {
    real* da = tape.needs_grad(a) ? tape.grad(a).ptr() : nullptr;
    real* db = tape.needs_grad(b) ? tape.grad(b).ptr() : nullptr;
    swiglu_backward(da, db, tape.grad(out).ptr(), tape.value(a).ptr(), tape.value(b).ptr(), tape.value(a).size());
  });
  return out;
}

// ANCHOR: feed_forward
Var feed_forward(Tape& tape, Var x, Var w1, Var w3, Var w2, const FeedForwardLora& lora) {
  Var gate = lora_linear(tape, x, w1, lora.w1);  // a = x · w1ᵀ   (..., F)
  Var up = lora_linear(tape, x, w3, lora.w3);    // b = x · w3ᵀ   (..., F)
  Var h = swiglu(tape, gate, up);                // silu(a) ⊙ b   (..., F)
  return lora_linear(tape, h, w2, lora.w2);      // h · w2ᵀ       (..., C)
}
// ANCHOR_END: feed_forward

}  // namespace foundry
