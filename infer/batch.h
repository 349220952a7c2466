// The batched forward: one pass over many positions of many sequences, each sequence with its
// own KV cache. This is what continuous batching (serve/) and batched prompt prefill run.
//
// A "row" is one token of one sequence at one position. A step of the server has a row for
// every sequence that is decoding (its last token) plus, for a sequence that has just arrived,
// a run of rows for its prompt (positions length .. length + P − 1 of its cache):
//
//   rows (R):  [seq A pos 17] [seq B pos 3] [seq C pos 0] [seq C pos 1] ... [seq C pos P−1]
//
// Per layer, every row's q, k and v come from one pass over the weights; the keys and values
// go into their own sequence's cache, then every row attends over its own cache up to its own
// position, then one more pass over the weights does wo and the feed-forward for all rows.
//
// Why it pays: decoding one sequence reads every weight once per token and does one
// multiply-add with it (arithmetic intensity ≈ 1 multiply-add per 4 bytes); the CPU waits on
// memory. With R rows, a block of weights is read from memory once, stays in the core's cache,
// and serves all R rows: R multiply-adds per weight fetched from memory.
//
// Results do not depend on the batch: a row's numbers are computed by exactly the arithmetic
// decode_step does for it alone (the same matrix-vector kernel on each row, or the quantized
// one for the weights a quantized model holds as blocks; the weight blocks split at multiples
// of 8 rows so every output row goes through the same kernel path; the same attention, norm,
// RoPE and SwiGLU functions on one row at a time). So a request gets the same
// bits whether it runs alone or beside seven others, and a prompt prefilled in one pass leaves
// the same cache and logits as feeding it one token at a time.
#pragma once

#include <vector>

#include "engine/tensor.h"
#include "infer/kv_cache.h"
#include "model/model.h"

namespace foundry {

// An empty cache with room for max_seq_len positions: 2 · L · NKV · HS · max_seq_len numbers.
KVCache make_kv_cache(const ModelConfig& config);

// One token of one sequence. Rows of the same cache must come in a run of consecutive
// positions starting at cache->length (the call appends them); the cache must stay alive and
// untouched by anyone else during the call.
struct BatchRow {
  KVCache* cache;
  int token;
  bool want_logits;  // only rows whose next token is wanted pay for the (V, C) output projection
};

// The scratch buffers of up to `capacity` rows, allocated once (see DecodeState for one row).
struct BatchState {
  int capacity = 0;
  Tensor x, xn, q, k, v, att, proj, gate, up, hidden;  // (capacity, width) each
  Tensor rstd;                                         // (1)
  Tensor scores;                                       // (threads, NH, max_seq_len): one per thread
  Tensor logits;                                       // (capacity, V): rows with want_logits, in order
  std::vector<int> pos;                                // (capacity) each row's position
  std::vector<QuantScratch> quant;                     // (capacity) a quantized model's activations, per row
};

BatchState make_batch_state(const ModelConfig& config, int capacity);

// Runs the rows (1 .. capacity of them), appends their keys and values to their caches and
// returns the logits of the rows with want_logits, in row order: (count, V), valid until the
// next call. Throws std::invalid_argument for a bad row (token outside [0, V), a cache that
// would pass max_seq_len, rows of one cache out of order) before touching any cache.
const real* forward_batch(BatchState& state, const Model& model, const std::vector<BatchRow>& rows);

// out (R, N): row r = w (N, K) · x_r (K) for the R rows of x (R, K). The rows of w are taken in
// blocks small enough to stay in the core's cache while all R inputs use them; each output
// element is the same number matvec computes for that input alone.
void matvec_batch(real* out, const real* w, const real* x, int R, int N, int K, int threads);

// The same for a quantized w (engine/quant.h), read block by block: each row of x is quantized
// into its own scratch[r] (as quant_matvec does for one vector), then blocks of w's rows serve
// all R rows, each output element the number quant_matvec computes for that input alone.
// Float build only, like quant_matvec.
void quant_matvec_batch(real* out, const QuantMatrix& w, const real* x, int R, QuantScratch* scratch, int threads);

}  // namespace foundry
