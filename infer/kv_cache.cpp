// The one-position forward pass with a KV cache. See kv_cache.h for the math and the memory.
#include "infer/kv_cache.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "engine/fast_exp.h"
#include "engine/parallel.h"
#include "model/rmsnorm.h"
#include "model/rope.h"
#include "model/swiglu.h"

namespace foundry {

namespace {

using ArrayMap = Eigen::Map<Eigen::Array<real, Eigen::Dynamic, 1>>;
using Vector = Eigen::Matrix<real, Eigen::Dynamic, 1>;
using RowMajor = Eigen::Matrix<real, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMajorMap = Eigen::Map<const RowMajor>;
using StridedRowsMap = Eigen::Map<const RowMajor, 0, Eigen::OuterStride<>>;

}  // namespace

DecodeState make_decode_state(const ModelConfig& c) {
  validate(c);
  int HS = c.head_size();
  DecodeState s;
  s.cache.key = Tensor({c.n_layers, c.n_kv_heads, HS, c.max_seq_len});
  s.cache.value = Tensor({c.n_layers, c.n_kv_heads, HS, c.max_seq_len});
  s.x = Tensor({c.dim});
  s.xn = Tensor({c.dim});
  s.rstd = Tensor({1});
  s.q = Tensor({c.n_heads * HS});
  s.k = Tensor({c.kv_dim()});
  s.v = Tensor({c.kv_dim()});
  s.scores = Tensor({c.n_heads, c.max_seq_len});
  s.att = Tensor({c.n_heads * HS});
  s.proj = Tensor({c.dim});
  s.gate = Tensor({c.hidden_dim});
  s.up = Tensor({c.hidden_dim});
  s.hidden = Tensor({c.hidden_dim});
  s.logits = Tensor({c.vocab_size});
  return s;
}

size_t kv_cache_bytes_per_position(const ModelConfig& c) {
  return 2 * (size_t)c.n_layers * c.kv_dim() * sizeof(real);  // K and V, every layer
}

void reset(DecodeState& state) { state.cache.length = 0; }

// ANCHOR: matvec
// One block of rows of out = w · x through Eigen's matrix-vector kernel, which keeps several
// rows' dot products in SIMD registers at once and sums each register in a few shuffles.
void matvec_rows(real* out, const real* w, const real* x, int r0, int r1, int K) {
  ConstRowMajorMap W(w + (size_t)r0 * K, r1 - r0, K);  // rows r0 .. r1−1 of w
  Eigen::Map<const Vector> X(x, K);
  Eigen::Map<Vector> Out(out + r0, r1 - r0);
  Out.noalias() = W * X;
}

void matvec(real* out, const real* w, const real* x, int N, int K, int threads) {
  const int team = worth_threads(Work::matvec, double(N) * K) ? threads : 1;
  if (team <= 1) {
    matvec_rows(out, w, x, 0, N, K);
    return;
  }
  // A few blocks per thread, taken on demand, as the training products do (split_product).
  const int chunks = blocks_for(N, team, 64);
  // Each chunk owns a block of output rows, so no two threads write the same element. The
  // blocks start at multiples of 8 rows: the kernel works through rows 8 at a time and treats
  // only the last few rows of its block differently, so every row then gets the same bits
  // however the rows are split (matvec_batch in batch.cpp relies on it).
  auto edge = [&](int chunk) { return chunk == chunks ? N : (int)((size_t)N * chunk / chunks) / 8 * 8; };
#pragma omp parallel for num_threads(team) schedule(dynamic)
  for (int chunk = 0; chunk < chunks; chunk++) {
    pin_worker_thread();
    matvec_rows(out, w, x, edge(chunk), edge(chunk + 1), K);
  }
}
// ANCHOR_END: matvec

// ANCHOR: quant_matvec
// A template so that `if constexpr` discards the float-only branch in the double build (in a
// plain function both branches are compiled, and the kernels take float).
template <typename T>
void quant_matvec_of(T* out, const QuantMatrix& w, const T* x, QuantScratch& scratch, int threads) {
  if constexpr (!std::is_same<T, float>::value) {
    (void)out, (void)w, (void)x, (void)scratch, (void)threads;
    throw std::logic_error("quant_matvec: quantized models run in the float build");
  } else {
    quantize_activations(x, w.cols, scratch);
    const QuantKernel kernel = quant_kernel();
    // The work is the blocks read; use matvec's threshold on the same count of weights.
    const int team = worth_threads(Work::matvec, double(w.rows) * w.cols) ? threads : 1;
    if (team <= 1) {
      quant_matvec_rows(out, w, scratch, 0, w.rows, kernel);
      return;
    }
    const int chunks = blocks_for(w.rows, team, 64);  // as matvec: a few blocks per thread, on demand
#pragma omp parallel for num_threads(team) schedule(dynamic)
    for (int chunk = 0; chunk < chunks; chunk++) {
      pin_worker_thread();
      quant_matvec_rows(out, w, scratch, (int)((size_t)w.rows * chunk / chunks),
                        (int)((size_t)w.rows * (chunk + 1) / chunks), kernel);
    }
  }
}
void quant_matvec(real* out, const QuantMatrix& w, const real* x, QuantScratch& scratch, int threads) {
  quant_matvec_of(out, w, x, scratch, threads);
}
// ANCHOR_END: quant_matvec

namespace {

// y = W · x through the blocks when the model holds W quantized, else through matvec.
void project(real* out, const Model& model, const Tensor* w, const real* x, int N, int K, QuantScratch& scratch,
             int threads) {
  if (const QuantMatrix* q = model.quantized_of(w)) {
    quant_matvec(out, *q, x, scratch, threads);
  } else {
    matvec(out, w->ptr(), x, N, K, threads);
  }
}

}  // namespace

// ANCHOR: cached_attention_forward
// Query heads h0 .. h1−1 of cached_attention_forward (kv_cache.h has the formulas).
static void attend_heads(real* att, real* scores, const real* q, const real* k_t, const real* v_t, int T, int max_T,
                         int h0, int h1, int NH, int NKV, int HS) {
  int group = NH / NKV;  // query heads per kv head
  real scale = static_cast<real>(1.0 / std::sqrt(double(HS)));
  for (int h = h0; h < h1; h++) {
    int g = h / group;  // the kv head this query head reads
    const real* qh = q + (size_t)h * HS;
    const real* kh = k_t + (size_t)g * HS * max_T;  // (HS, max_T): row i holds component i of every key
    const real* vh = v_t + (size_t)g * HS * max_T;  // (HS, max_T) likewise for the values
    real* s = scores + (size_t)h * max_T;
    // scores s_t = q · k_t / sqrt(HS) for every cached position t = 0 .. T−1 (all of them: the
    // cache only holds the past, so the causal mask has nothing left to hide), as HS passes
    // along contiguous rows of length T.
    for (int t = 0; t < T; t++) s[t] = 0;
    for (int i = 0; i < HS; i++) {
      real qi = qh[i] * scale;
      const real* ki = kh + (size_t)i * max_T;
      for (int t = 0; t < T; t++) s[t] += qi * ki[t];
    }
    // softmax over the T scores. subtle: every step here gives the same bits wherever the
    // scores sit in memory. A library exp or sum over a buffer of unknown alignment handles the
    // first few elements apart from the rest (until an aligned address), so the result would
    // depend on the buffer's address, and a sequence would get different bits alone (decode_step)
    // and batched (forward_batch, its own buffers). fast_exp is elementwise arithmetic, the same
    // in a SIMD lane as alone, and the sum keeps 8 running totals by index, not by address.
    // The maximum keeps 8 running maxima too: a maximum is exact in any order, and g++ will not
    // vectorize a one-accumulator std::max chain (it must keep its NaN and signed-zero rules).
    real mx[8] = {s[0], s[0], s[0], s[0], s[0], s[0], s[0], s[0]};
    int m8 = 0;
    for (; m8 + 8 <= T; m8 += 8)
      for (int j = 0; j < 8; j++) mx[j] = std::max(mx[j], s[m8 + j]);
    real m = std::max(std::max(std::max(mx[0], mx[1]), std::max(mx[2], mx[3])),
                      std::max(std::max(mx[4], mx[5]), std::max(mx[6], mx[7])));
    for (; m8 < T; m8++) m = std::max(m, s[m8]);
    for (int t = 0; t < T; t++) s[t] = fast_exp(s[t] - m);
    real lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int t8 = 0;
    for (; t8 + 8 <= T; t8 += 8)
      for (int j = 0; j < 8; j++) lanes[j] += s[t8 + j];
    real total = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    for (; t8 < T; t8++) total += s[t8];
    const real inv = 1 / total;
    for (int t = 0; t < T; t++) s[t] *= inv;
    ArrayMap p(s, T);
    // out_h[i] = Σ_t p_t v_t[i]: HS dot products of length T, one per row of the value cache,
    // through Eigen's matrix-vector kernel.
    StridedRowsMap V(vh, HS, T, Eigen::OuterStride<>(max_T));  // (HS, T), rows max_T apart
    Eigen::Map<Vector> out(att + (size_t)h * HS, HS);
    out.noalias() = V * p.matrix();
  }
}

void cached_attention_forward(real* att, real* scores, const real* q, const real* k_t, const real* v_t, int T,
                              int max_T, int NH, int NKV, int HS, int threads) {
  int chunks = (threads > 1 && worth_threads(Work::decode_attention, double(NH) * T * HS)) ? std::min(threads, NH) : 1;
  if (chunks == 1) {
    attend_heads(att, scores, q, k_t, v_t, T, max_T, 0, NH, NH, NKV, HS);
    return;
  }
  // Each chunk owns a range of heads: its own rows of scores and its own outputs.
#pragma omp parallel for num_threads(chunks)
  for (int c = 0; c < chunks; c++) {
    pin_worker_thread();
    attend_heads(att, scores, q, k_t, v_t, T, max_T, NH * c / chunks, NH * (c + 1) / chunks, NH, NKV, HS);
  }
}
// ANCHOR_END: cached_attention_forward

// ANCHOR: decode_step
const real* decode_step(DecodeState& s, const Model& model, int token) {
  const ModelConfig& c = model.config;
  const ModelWeights& w = model.weights;
  int C = c.dim, NH = c.n_heads, NKV = c.n_kv_heads, HS = c.head_size(), F = c.hidden_dim, V = c.vocab_size;
  int kv_dim = c.kv_dim(), max_T = c.max_seq_len;
  int pos = s.cache.length;
  if (pos >= max_T) {
    throw std::invalid_argument("decode_step: the KV cache is full: position " + std::to_string(pos) +
                                " is past max_seq_len = " + std::to_string(max_T));
  }
  if (token < 0 || token >= V) {
    throw std::invalid_argument("decode_step: token id " + std::to_string(token) + " is outside the vocabulary [0, " +
                                std::to_string(V) + ")");
  }
  // subtle: the elementwise steps of one position (RMSNorm, RoPE, SwiGLU: a few hundred
  // numbers) are far too small to split over threads, yet their functions open an OpenMP loop;
  // waking a second thread for them costs more than the work, and on a busy machine much more.
  // So the thread count drops to 1 for this call and only the big products get `threads`.
  int threads = num_threads();
  struct RestoreThreads {
    int n;
    ~RestoreThreads() { set_num_threads(n); }
  } restore{threads};
  set_num_threads(1);

  real eps = static_cast<real>(c.norm_eps);
  const real* cos = model.rope_cos.ptr();
  const real* sin = model.rope_sin.ptr();
  real* x = s.x.ptr();

  // The residual stream starts as the token's row of the embedding table.
  const real* emb = w.tok_embeddings->ptr() + (size_t)token * C;
  for (int i = 0; i < C; i++) x[i] = emb[i];

  for (int l = 0; l < c.n_layers; l++) {
    const LayerWeights& lw = w.layers[l];
    // This layer's cache, and the row of it that this position fills.
    real* key_layer = s.cache.key.ptr() + (size_t)l * kv_dim * max_T;      // (NKV, HS, max_T)
    real* value_layer = s.cache.value.ptr() + (size_t)l * kv_dim * max_T;  // (NKV, HS, max_T)

    // Attention: q, k, v of this position; k (after RoPE) and v go into column pos of the caches.
    rmsnorm_forward(s.xn.ptr(), s.rstd.ptr(), x, lw.attention_norm->ptr(), 1, C, eps);
    project(s.q.ptr(), model, lw.wq, s.xn.ptr(), NH * HS, C, s.quant, threads);
    project(s.k.ptr(), model, lw.wk, s.xn.ptr(), kv_dim, C, s.quant, threads);
    project(s.v.ptr(), model, lw.wv, s.xn.ptr(), kv_dim, C, s.quant, threads);
    rope_forward(s.q.ptr(), s.q.ptr(), cos, sin, 1, 1, NH, HS, pos);  // in place, at position pos
    rope_forward(s.k.ptr(), s.k.ptr(), cos, sin, 1, 1, NKV, HS, pos);
    for (int j = 0; j < kv_dim; j++) {  // j = g·HS + i: row j of the (NKV·HS, max_T) layer
      key_layer[(size_t)j * max_T + pos] = s.k[j];
      value_layer[(size_t)j * max_T + pos] = s.v[j];
    }
    cached_attention_forward(s.att.ptr(), s.scores.ptr(), s.q.ptr(), key_layer, value_layer, pos + 1, max_T, NH, NKV,
                             HS, threads);
    project(s.proj.ptr(), model, lw.wo, s.att.ptr(), C, NH * HS, s.quant, threads);
    for (int i = 0; i < C; i++) x[i] += s.proj[i];  // h = x + attention(...)

    // Feed-forward: x += w2 · (silu(w1 · xn) ⊙ (w3 · xn)).
    rmsnorm_forward(s.xn.ptr(), s.rstd.ptr(), x, lw.ffn_norm->ptr(), 1, C, eps);
    project(s.gate.ptr(), model, lw.w1, s.xn.ptr(), F, C, s.quant, threads);
    project(s.up.ptr(), model, lw.w3, s.xn.ptr(), F, C, s.quant, threads);
    swiglu_forward(s.hidden.ptr(), s.gate.ptr(), s.up.ptr(), F);
    project(s.proj.ptr(), model, lw.w2, s.hidden.ptr(), C, F, s.quant, threads);
    for (int i = 0; i < C; i++) x[i] += s.proj[i];
  }

  rmsnorm_forward(s.xn.ptr(), s.rstd.ptr(), x, w.norm->ptr(), 1, C, eps);
  // Tied embeddings: the output projection is the embedding table itself.
  const Tensor* out_w = c.tie_embeddings ? w.tok_embeddings : w.output;
  project(s.logits.ptr(), model, out_w, s.xn.ptr(), V, C, s.quant, threads);
  s.cache.length = pos + 1;
  return s.logits.ptr();
}
// ANCHOR_END: decode_step

}  // namespace foundry
