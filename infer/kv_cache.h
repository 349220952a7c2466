// Inference with a KV cache: one position at a time, each costing one position's work.
//
// The training forward (model_logits) recomputes every position of the sequence. When we
// generate, position t's keys and values never change once computed (the causal mask means no
// later token can affect them), so we keep them:
//
//   per layer l:   key_cache[l]   (max_seq_len, NKV·HS)   k of every position so far, after RoPE
//                  value_cache[l] (max_seq_len, NKV·HS)   v of every position so far
//
// and a new token at position pos needs only its own x (C): its q, k, v; one row of attention
// scores against the pos + 1 cached keys; the weighted sum of the cached values; the
// feed-forward of that one row; and the logits. Work per token: the matrix-vector products
// (about 2 · parameters flops) plus attention (about 4 · L · NH · HS · (pos + 1) flops),
// instead of all of it times (pos + 1) without the cache.
//
// Memory of the cache: 2 · L · NKV · HS numbers per position (this is where grouped-query
// attention pays off: NKV < NH shrinks it by NH / NKV).
//
// Nothing here allocates after make_decode_state and nothing records a tape: these are the same
// raw forward functions the model uses (rmsnorm_forward, rope_forward, swiglu_forward, linear
// algebra through engine/matmul.h) applied to one row.
#pragma once

#include <vector>

#include "engine/tensor.h"
#include "model/model.h"

namespace foundry {

// ANCHOR: decode_state
struct KVCache {
  Tensor key;    // (L, max_seq_len, NKV·HS) keys after RoPE
  Tensor value;  // (L, max_seq_len, NKV·HS)
  int length = 0;  // positions filled: the next token goes to position `length`
};

// The cache plus the scratch buffers of one position (llama2.c's RunState), allocated once.
struct DecodeState {
  KVCache cache;
  Tensor x;       // (C) the residual stream of the current position
  Tensor xn;      // (C) x after RMSNorm
  Tensor rstd;    // (1) RMSNorm's 1/rms, required by rmsnorm_forward's signature
  Tensor q;       // (NH·HS) the query
  Tensor scores;  // (NH, max_seq_len) attention scores, then probabilities, of each head
  Tensor att;     // (NH·HS) attention output, heads side by side
  Tensor proj;    // (C) output of wo, then of w2: what is added to the residual stream
  Tensor gate;    // (F) w1 · xn
  Tensor up;      // (F) w3 · xn
  Tensor hidden;  // (F) silu(gate) ⊙ up
  Tensor logits;  // (V)
};
// ANCHOR_END: decode_state

DecodeState make_decode_state(const ModelConfig& config);

// Bytes the KV cache holds per position: 2 · L · NKV · HS · sizeof(real).
size_t kv_cache_bytes_per_position(const ModelConfig& config);

// Forgets the cached positions (keeps the buffers): the next token goes to position 0.
void reset(DecodeState& state);

// Runs `token` at position state.cache.length, stores its keys and values in the cache and
// returns its logits (V), valid until the next call. Throws std::invalid_argument when the
// cache is full (position max_seq_len) or the token is outside [0, V).
const real* decode_step(DecodeState& state, const Model& model, int token);

// Attention of one query position against the cached keys and values of one layer:
//   scores_h[t] = q_h · k[t, g] / sqrt(HS),  t = 0 .. T−1,  g = h / (NH / NKV)
//   att_h = Σ_t softmax(scores_h)[t] · v[t, g]
// q, att (NH·HS); k, v (T, NKV·HS); scores (NH, max_T) scratch with rows max_T apart.
void cached_attention_forward(real* att, real* scores, const real* q, const real* k, const real* v, int T, int max_T,
                              int NH, int NKV, int HS);

// out (N) = w (N, K) · x (K): one row through a linear layer. Splits the rows of w over the
// threads when the product is big enough to pay for waking them.
void matvec(real* out, const real* w, const real* x, int N, int K);

}  // namespace foundry
