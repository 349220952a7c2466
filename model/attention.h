// Causal self-attention with grouped-query attention (GQA).
//
//   NH query heads and NKV key/value heads; NKV divides NH and query head h reads kv head
//   h / (NH / NKV), so each kv head is shared by a group of NH / NKV query heads.
//   NKV = NH is ordinary multi-head attention; NKV = 1 is multi-query attention.
//
//   scores  s_ij = q_i · k_j / sqrt(HS)          for j ≤ i (the causal mask: position i sees 0..i)
//   probs   p_ij = exp(s_ij) / Σ_{j'≤i} exp(s_ij')
//   out     o_i  = Σ_{j≤i} p_ij v_j
//
// See model/attention.cpp for the backward and its derivation.
#pragma once

#include "engine/lora.h"
#include "engine/real.h"
#include "engine/tape.h"
#include "engine/tensor.h"

namespace foundry {

// q (B, T, NH, HS), k and v (B, T, NKV, HS) -> out (B, T, NH, HS); att (B, NH, T, T) cached softmax probabilities
// query head h uses kv head h / (NH / NKV); scores scaled by 1/sqrt(HS); causal mask (position t sees 0..t)
void attention_forward(real* out, real* att, const real* q, const real* k, const real* v, int B, int T, int NH, int NKV,
                       int HS);
// dq, dk, dv accumulate (+=); dk/dv of a kv head sum over every query head that shares it
// (any of dq, dk, dv may be nullptr when that gradient is not needed)
void attention_backward(real* dq, real* dk, real* dv, const real* dout, const real* att, const real* q, const real* k,
                        const real* v, int B, int T, int NH, int NKV, int HS);

// The definition, one loop nest per formula, no parallelism or blocking: the reference the
// fast versions are tested against. Same arguments and contract as the functions above,
// except that the naive backward needs all three gradient buffers.
void attention_forward_naive(real* out, real* att, const real* q, const real* k, const real* v, int B, int T, int NH,
                             int NKV, int HS);
void attention_backward_naive(real* dq, real* dk, real* dv, const real* dout, const real* att, const real* q,
                              const real* k, const real* v, int B, int T, int NH, int NKV, int HS);

// Low-rank adapters on the four projections (engine/lora.h, model/lora.h); an empty one leaves its
// weight as it is, so the default is the plain sub-layer.
struct AttentionLora {
  LoraVars wq, wk, wv, wo;
};

// Taped wrapper: q (B, T, NH, HS), k and v (B, T, NKV, HS) -> (B, T, NH, HS).
Var causal_attention(Tape& tape, Var q, Var k, Var v);  // sizes from shapes; NH, NKV from dims 2

// The whole attention sub-layer:
//   q = x·wqᵀ, k = x·wkᵀ, v = x·wvᵀ, reshaped to heads (B, T, NH|NKV, HS); RoPE on q and k;
//   causal_attention; heads concatenated back to (B, T, NH·HS); output projection ·woᵀ.
// x (B, T, C); wq (NH·HS, C); wk, wv (NKV·HS, C); wo (C, NH·HS); rope_cos, rope_sin the
// tables of model/rope.h. `lora`: adapters on the projections (each one a lora_linear).
Var self_attention(Tape& tape, Var x /*(B,T,C)*/, Var wq, Var wk, Var wv, Var wo, const Tensor& rope_cos,
                   const Tensor& rope_sin, int n_heads, int n_kv_heads,
                   const AttentionLora& lora = {});  // -> (B, T, C)

}  // namespace foundry
