// Inference with a KV cache: one position at a time, each costing one position's work.
//
// The training forward (model_logits) recomputes every position of the sequence. When we
// generate, position t's keys and values never change once computed (the causal mask means no
// later token can affect them), so we keep them:
//
//   per layer l:   key[l]   (NKV, HS, max_seq_len)   k of every position so far, after RoPE
//                  value[l] (NKV, HS, max_seq_len)   v of every position so far
//                  (both stored transposed, see below)
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
// Both caches are stored transposed, one row per component of a head, so that attention works
// along rows of length T (the positions) instead of T vectors of length HS (8 for the llama2.c
// model: too short to fill a SIMD register and paying loop overhead at every position). The
// scores q · k_t become HS passes along contiguous rows that the compiler vectorizes; the
// output Σ_t p_t v_t becomes HS dot products of length T.
//
// A quantized model (model/quantize.h) takes the same path: each product whose weight the model
// holds as blocks goes through quant_matvec, which reads the blocks themselves (about 1.06 bytes
// per weight for Q8_0, 0.56 for Q4_0, against 4 for float), so a token costs that much less
// memory traffic; the embedding row of the token comes from the floats the blocks stand for.
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
  Tensor key;      // (L, NKV, HS, max_seq_len) keys after RoPE, transposed: k_t[i] at [l][g][i][t]
  Tensor value;    // (L, NKV, HS, max_seq_len) values, transposed the same way
  int length = 0;  // positions filled: the next token goes to position `length`
};

// The cache plus the scratch buffers of one position (llama2.c's RunState), allocated once.
struct DecodeState {
  KVCache cache;
  Tensor x;            // (C) the residual stream of the current position
  Tensor xn;           // (C) x after RMSNorm
  Tensor rstd;         // (1) RMSNorm's 1/rms, required by rmsnorm_forward's signature
  Tensor q;            // (NH·HS) the query
  Tensor k;            // (NKV·HS) the key, before it is written into its column of the cache
  Tensor v;            // (NKV·HS) the value, likewise
  Tensor scores;       // (NH, max_seq_len) attention scores, then probabilities, of each head
  Tensor att;          // (NH·HS) attention output, heads side by side
  Tensor proj;         // (C) output of wo, then of w2: what is added to the residual stream
  Tensor gate;         // (F) w1 · xn
  Tensor up;           // (F) w3 · xn
  Tensor hidden;       // (F) silu(gate) ⊙ up
  Tensor logits;       // (V)
  QuantScratch quant;  // a quantized model's activations, as int8 blocks (engine/quant.h)
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
//   scores_h[t] = q_h · k_t[g] / sqrt(HS),  t = 0 .. T−1,  g = h / (NH / NKV)
//   att_h = Σ_t softmax(scores_h)[t] · v_t[g]
// q, att (NH·HS); k_t, v_t (NKV, HS, max_T) transposed keys and values (the first T columns
// filled); scores (NH, max_T) scratch. Heads are split over up to `threads` threads when there is enough work.
void cached_attention_forward(real* att, real* scores, const real* q, const real* k_t, const real* v_t, int T,
                              int max_T, int NH, int NKV, int HS, int threads);

// out (N) = w (N, K) · x (K): one row through a linear layer. Splits the rows of w over up to
// `threads` threads when the product is big enough to pay for waking them.
void matvec(real* out, const real* w, const real* x, int N, int K, int threads);

// out (N) = W (N, K) · x (K) for a quantized W, read block by block (quant_matvec_rows with the
// kernel quant_kernel() chose): x is quantized into `scratch` once, then the rows are split over
// up to `threads` threads like matvec's. Float build only (the quantized kernels are fp32).
void quant_matvec(real* out, const QuantMatrix& w, const real* x, QuantScratch& scratch, int threads);
// Rows r0 .. r1−1 of that product on the calling thread: out[r] for r in [r0, r1).
void matvec_rows(real* out, const real* w, const real* x, int r0, int r1, int K);

}  // namespace foundry
