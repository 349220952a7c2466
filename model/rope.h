// Rotary position embedding (RoPE): position enters attention by rotating queries and keys.
//
// Within each head of size HS, the adjacent pairs (x_{2i}, x_{2i+1}), i = 0 .. HS/2 − 1, are
// rotated by the angle  a = pos · theta^(−2i/HS)  (the pairing of the original LLaMA release
// and of llama2.c; GPT-NeoX and Hugging Face pair i with i + HS/2 instead, see lesson 06):
//
//   forward:   y_{2i}   = x_{2i} cos a − x_{2i+1} sin a
//              y_{2i+1} = x_{2i} sin a + x_{2i+1} cos a          (y = R(a) x, a 2×2 rotation)
//   cached:    nothing per step; cos/sin tables (max_seq_len, HS/2) are computed once per model
//   backward:  dx = R(a)ᵀ dy = R(−a) dy:
//              dx_{2i}   += dy_{2i} cos a + dy_{2i+1} sin a
//              dx_{2i+1} += −dy_{2i} sin a + dy_{2i+1} cos a
//   derivation: y is linear in x with matrix R(a), so dL/dx = R(a)ᵀ dL/dy, and the transpose
//              of a rotation is the rotation by the opposite angle.
//
// Why it encodes relative position: q at position m and k at position n become R(m·f) q and
// R(n·f) k, and their dot product is qᵀ R(m·f)ᵀ R(n·f) k = qᵀ R((n − m)·f) k: only n − m survives.
#pragma once

#include "engine/tape.h"

namespace foundry {

// cos/sin (max_seq_len, HS/2): entry (pos, i) holds cos/sin(pos · theta^(−2i/HS)).
void rope_tables(real* cos, real* sin, int max_seq_len, int HS, double theta);

// x, out (B, T, NHX, HS), where NHX is the number of heads of this tensor (NH for queries, NKV
// for keys). Row t is at position pos0 + t (pos0 > 0 when a KV cache already holds pos0
// positions). out may equal x: each pair is read completely before it is written.
void rope_forward(real* out, const real* x, const real* cos, const real* sin, int B, int T, int NHX, int HS, int pos0);
// dx += R(−a) dout. dx may not equal dout.
void rope_backward(real* dx, const real* dout, const real* cos, const real* sin, int B, int T, int NHX, int HS,
                   int pos0);

// Taped wrapper: x (B, T, NHX, HS) at positions 0 .. T − 1 -> (B, T, NHX, HS). The tables are
// the model's (max_seq_len, HS/2) cos/sin and must outlive backward().
Var rope(Tape& tape, Var x, const Tensor& cos, const Tensor& sin);

}  // namespace foundry
