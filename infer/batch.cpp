// The batched forward. See batch.h for what a row is and why the results do not depend on the batch.
#include "infer/batch.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>

#include "engine/parallel.h"
#include "engine/quant.h"
#include "model/rmsnorm.h"
#include "model/rope.h"
#include "model/swiglu.h"

namespace foundry {

KVCache make_kv_cache(const ModelConfig& c) {
  validate(c);
  KVCache cache;
  cache.key = Tensor({c.n_layers, c.n_kv_heads, c.head_size(), c.max_seq_len});
  cache.value = Tensor({c.n_layers, c.n_kv_heads, c.head_size(), c.max_seq_len});
  return cache;
}

BatchState make_batch_state(const ModelConfig& c, int capacity) {
  validate(c);
  if (capacity < 1) throw std::invalid_argument("make_batch_state: capacity " + std::to_string(capacity) + " < 1");
  BatchState s;
  s.capacity = capacity;
  const int HS = c.head_size();
  s.x = Tensor({capacity, c.dim});
  s.xn = Tensor({capacity, c.dim});
  s.q = Tensor({capacity, c.n_heads * HS});
  s.k = Tensor({capacity, c.kv_dim()});
  s.v = Tensor({capacity, c.kv_dim()});
  s.att = Tensor({capacity, c.n_heads * HS});
  s.proj = Tensor({capacity, c.dim});
  s.gate = Tensor({capacity, c.hidden_dim});
  s.up = Tensor({capacity, c.hidden_dim});
  s.hidden = Tensor({capacity, c.hidden_dim});
  s.rstd = Tensor({1});
  s.scores = Tensor({std::max(1, num_threads()), c.n_heads, c.max_seq_len});
  s.logits = Tensor({capacity, c.vocab_size});
  s.pos.assign(capacity, 0);
  s.quant.resize(capacity);
  return s;
}

// ANCHOR: matvec_batch
// Calls run_rows(r0, r1) for blocks of the N weight rows, each about the size of a core's L2 share
// (row_bytes per row) and a whole number of 8-row groups: the matrix-vector kernels handle rows 8
// at a time and only the last few rows of a matrix differently, so with block edges at multiples
// of 8 every output row takes the path it takes for one vector alone, and gives the same bits.
// `work` (multiply-adds) decides whether threads are worth starting.
template <typename RunRows>
static void for_each_row_block(int N, size_t row_bytes, double work, int threads, const RunRows& run_rows) {
  constexpr size_t kBlockBytes = 128 * 1024;
  const int block = std::max(8, (int)(kBlockBytes / std::max<size_t>(row_bytes, 1)) / 8 * 8);
  const int blocks = (N + block - 1) / block;
  auto run_block = [&](int b) {
    const int r0 = b * block;
    run_rows(r0, std::min(N, r0 + block));
  };
  const bool split = threads > 1 && blocks > 1 && worth_threads(Work::matvec, work);
  if (!split) {
    for (int b = 0; b < blocks; b++) run_block(b);
    return;
  }
  // Each thread owns whole blocks of output rows: no two threads write the same element.
#pragma omp parallel for num_threads(std::min(threads, blocks)) schedule(static)
  for (int b = 0; b < blocks; b++) run_block(b);
}

void matvec_batch(real* out, const real* w, const real* x, int R, int N, int K, int threads) {
  for_each_row_block(N, sizeof(real) * std::max(K, 1), double(N) * K * R, threads, [&](int r0, int r1) {
    // These rows of w are read from memory once and then from the cache for every input row.
    for (int r = 0; r < R; r++) matvec_rows(out + (size_t)r * N, w, x + (size_t)r * K, r0, r1, K);
  });
}
// ANCHOR_END: matvec_batch

// A template so that `if constexpr` discards the float-only branch in the double build, as in
// quant_matvec (kv_cache.cpp).
template <typename T>
static void quant_matvec_batch_of(T* out, const QuantMatrix& w, const T* x, int R, QuantScratch* scratch, int threads) {
  if constexpr (!std::is_same<T, float>::value) {
    (void)out, (void)w, (void)x, (void)R, (void)scratch, (void)threads;
    throw std::logic_error("quant_matvec_batch: quantized models run in the float build");
  } else {
    const int N = w.rows, K = w.cols;
    for (int r = 0; r < R; r++) quantize_activations(x + (size_t)r * K, K, scratch[r]);
    const QuantKernel kernel = quant_kernel();
    // The blocks of matvec_batch, counted in the quantized bytes. Each output row is one dot
    // product over its own blocks, so any split gives the same bits.
    for_each_row_block(N, w.row_bytes(), double(N) * K * R, threads, [&](int r0, int r1) {
      for (int r = 0; r < R; r++) quant_matvec_rows(out + (size_t)r * N, w, scratch[r], r0, r1, kernel);
    });
  }
}

void quant_matvec_batch(real* out, const QuantMatrix& w, const real* x, int R, QuantScratch* scratch, int threads) {
  quant_matvec_batch_of(out, w, x, R, scratch, threads);
}

namespace {
// out (R, N) = w · x_r for every row: through the blocks when the model holds w quantized (what
// decode_step's project does for one row), else through the floats.
void project_batch(BatchState& s, real* out, const Model& model, const Tensor* w, const real* x, int R, int N, int K,
                   int threads) {
  if (const QuantMatrix* q = model.quantized_of(w)) {
    quant_matvec_batch(out, *q, x, R, s.quant.data(), threads);
  } else {
    matvec_batch(out, w->ptr(), x, R, N, K, threads);
  }
}
}  // namespace

// ANCHOR: forward_batch
const real* forward_batch(BatchState& s, const Model& model, const std::vector<BatchRow>& rows) {
  const ModelConfig& c = model.config;
  const ModelWeights& w = model.weights;
  const int C = c.dim, NH = c.n_heads, NKV = c.n_kv_heads, HS = c.head_size(), F = c.hidden_dim, V = c.vocab_size;
  const int kv_dim = c.kv_dim(), max_T = c.max_seq_len, QD = NH * HS;
  const int R = (int)rows.size();
  if (R < 1 || R > s.capacity) {
    throw std::invalid_argument("forward_batch: " + std::to_string(R) + " rows, expected 1 .. " +
                                std::to_string(s.capacity) + " (the batch state's capacity)");
  }
  // Every row's position, checked before any cache changes: a bad row must not leave half a
  // step written into the other sequences' caches.
  std::unordered_map<const KVCache*, int> next_pos;
  for (int r = 0; r < R; r++) {
    const BatchRow& row = rows[r];
    if (row.token < 0 || row.token >= V) {
      throw std::invalid_argument("forward_batch: row " + std::to_string(r) + ": token id " +
                                  std::to_string(row.token) + " is outside the vocabulary [0, " + std::to_string(V) +
                                  ")");
    }
    auto it = next_pos.try_emplace(row.cache, row.cache->length).first;
    if (it->second >= max_T) {
      throw std::invalid_argument("forward_batch: row " + std::to_string(r) + ": the KV cache is full: position " +
                                  std::to_string(it->second) + " is past max_seq_len = " + std::to_string(max_T));
    }
    s.pos[r] = it->second++;
  }

  // As in decode_step: the elementwise work of one row is too small for threads; only the
  // products and the attention of all rows get them.
  const int threads = num_threads();
  struct RestoreThreads {
    int n;
    ~RestoreThreads() { set_num_threads(n); }
  } restore{threads};
  set_num_threads(1);
  // A batch state made before the thread count went up has scratch for fewer threads.
  if (s.scores.shape[0] < threads) s.scores = Tensor({threads, NH, max_T});

  const real eps = static_cast<real>(c.norm_eps);
  const real* cos = model.rope_cos.ptr();
  const real* sin = model.rope_sin.ptr();
  real* x = s.x.ptr();
  for (int r = 0; r < R; r++) {
    const real* emb = w.tok_embeddings->ptr() + (size_t)rows[r].token * C;
    std::copy(emb, emb + C, x + (size_t)r * C);
  }
  auto norm_rows = [&](const Tensor* gain) {
    for (int r = 0; r < R; r++)
      rmsnorm_forward(s.xn.ptr() + (size_t)r * C, s.rstd.ptr(), x + (size_t)r * C, gain->ptr(), 1, C, eps);
  };
  auto add_to_stream = [&] {
    for (size_t i = 0; i < (size_t)R * C; i++) x[i] += s.proj[i];
  };

  for (int l = 0; l < c.n_layers; l++) {
    const LayerWeights& lw = w.layers[l];
    const size_t layer_offset = (size_t)l * kv_dim * max_T;  // this layer's (NKV, HS, max_T) block of a cache

    norm_rows(lw.attention_norm);
    project_batch(s, s.q.ptr(), model, lw.wq, s.xn.ptr(), R, QD, C, threads);
    project_batch(s, s.k.ptr(), model, lw.wk, s.xn.ptr(), R, kv_dim, C, threads);
    project_batch(s, s.v.ptr(), model, lw.wv, s.xn.ptr(), R, kv_dim, C, threads);
    for (int r = 0; r < R; r++) {
      real* q = s.q.ptr() + (size_t)r * QD;
      real* k = s.k.ptr() + (size_t)r * kv_dim;
      const real* v = s.v.ptr() + (size_t)r * kv_dim;
      rope_forward(q, q, cos, sin, 1, 1, NH, HS, s.pos[r]);
      rope_forward(k, k, cos, sin, 1, 1, NKV, HS, s.pos[r]);
      real* key_layer = rows[r].cache->key.ptr() + layer_offset;
      real* value_layer = rows[r].cache->value.ptr() + layer_offset;
      for (int j = 0; j < kv_dim; j++) {
        key_layer[(size_t)j * max_T + s.pos[r]] = k[j];
        value_layer[(size_t)j * max_T + s.pos[r]] = v[j];
      }
    }
    // Every key and value of this step is in its cache now, so a prompt row at position p sees
    // the rows before it (and none after: it reads only positions 0 .. p).
    const int attention_threads =
        (threads > 1 && R > 1 && worth_threads(Work::decode_attention, double(NH) * HS * (s.pos[R - 1] + 1) * R))
            ? std::min({threads, R, s.scores.shape[0]})
            : 1;
#pragma omp parallel for num_threads(attention_threads) schedule(dynamic)
    for (int r = 0; r < R; r++) {
      const int t = attention_threads > 1 ? thread_index() : 0;
      cached_attention_forward(s.att.ptr() + (size_t)r * QD, s.scores.ptr() + (size_t)t * NH * max_T,
                               s.q.ptr() + (size_t)r * QD, rows[r].cache->key.ptr() + layer_offset,
                               rows[r].cache->value.ptr() + layer_offset, s.pos[r] + 1, max_T, NH, NKV, HS,
                               attention_threads > 1 ? 1 : threads);
    }
    project_batch(s, s.proj.ptr(), model, lw.wo, s.att.ptr(), R, C, QD, threads);
    add_to_stream();

    norm_rows(lw.ffn_norm);
    project_batch(s, s.gate.ptr(), model, lw.w1, s.xn.ptr(), R, F, C, threads);
    project_batch(s, s.up.ptr(), model, lw.w3, s.xn.ptr(), R, F, C, threads);
    for (int r = 0; r < R; r++) {
      const size_t o = (size_t)r * F;
      swiglu_forward(s.hidden.ptr() + o, s.gate.ptr() + o, s.up.ptr() + o, F);
    }
    project_batch(s, s.proj.ptr(), model, lw.w2, s.hidden.ptr(), R, C, F, threads);
    add_to_stream();
  }

  // Only the rows that want logits go through the final norm and the (V, C) projection,
  // gathered side by side so the projection is one batched pass.
  int n_out = 0;
  for (int r = 0; r < R; r++) {
    if (!rows[r].want_logits) continue;
    rmsnorm_forward(s.xn.ptr() + (size_t)n_out * C, s.rstd.ptr(), x + (size_t)r * C, w.norm->ptr(), 1, C, eps);
    n_out++;
  }
  const Tensor* out_w = c.tie_embeddings ? w.tok_embeddings : w.output;
  if (n_out > 0) project_batch(s, s.logits.ptr(), model, out_w, s.xn.ptr(), n_out, V, C, threads);
  for (const auto& [cache, pos] : next_pos) const_cast<KVCache*>(cache)->length = pos;
  return s.logits.ptr();
}
// ANCHOR_END: forward_batch

}  // namespace foundry
