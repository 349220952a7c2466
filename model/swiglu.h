// SwiGLU: the gated feed-forward network of LLaMA.
//
//   a = x · w1ᵀ (gate, (N, F)),  b = x · w3ᵀ (up, (N, F))
//   forward:   h = silu(a) ⊙ b,  silu(a) = a · σ(a),  σ(a) = 1 / (1 + e^(−a))
//              out = h · w2ᵀ (down, (N, C))
//   cached:    nothing beyond the inputs a and b
//   backward:  db += dh ⊙ silu(a)
//              da += dh ⊙ b ⊙ σ(a) (1 + a (1 − σ(a)))
//   derivation: product rule on silu(a) · b; d silu/da = σ(a) + a σ'(a) and σ' = σ (1 − σ).
//
// The gate a decides, per hidden unit and per token, how much of the "up" value b passes:
// silu(a) ≈ 0 for very negative a (closed), ≈ a for large a (open, and growing).
#pragma once

#include <cstddef>

#include "engine/lora.h"
#include "engine/tape.h"

namespace foundry {

// h, a, b: n elements each (any shape, elementwise).
void swiglu_forward(real* h, const real* a, const real* b, size_t n);
// da, db accumulate (+=); either may be nullptr.
void swiglu_backward(real* da, real* db, const real* dh, const real* a, const real* b, size_t n);

// Taped wrappers. swiglu: a, b of one shape -> that shape.
// feed_forward: x (..., C); w1, w3 (F, C); w2 (C, F) -> (..., C) = w2(swiglu(x·w1ᵀ, x·w3ᵀ)).
Var swiglu(Tape& tape, Var a, Var b);
// `lora`: adapters on the three weights (engine/lora.h); empty ones leave them as they are.
struct FeedForwardLora {
  LoraVars w1, w3, w2;
};
Var feed_forward(Tape& tape, Var x, Var w1, Var w3, Var w2, const FeedForwardLora& lora = {});

}  // namespace foundry
