// The one-position forward pass with a KV cache. See kv_cache.h for the math and the memory.
#include "infer/kv_cache.h"

#include <Eigen/Core>
#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/matmul.h"
#include "engine/parallel.h"
#include "model/rmsnorm.h"
#include "model/rope.h"
#include "model/swiglu.h"

namespace foundry {

namespace {

using RowMajor = Eigen::Matrix<real, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// Rows of one kv head inside the cache: T rows of HS numbers, kv_dim numbers apart.
using StridedRows = Eigen::Map<const RowMajor, 0, Eigen::OuterStride<>>;
using Vector = Eigen::Matrix<real, Eigen::Dynamic, 1>;
using ArrayMap = Eigen::Map<Eigen::Array<real, Eigen::Dynamic, 1>>;

// Below these sizes (multiply-adds) a product is done on one thread: waking a second thread
// costs about a microsecond, as much as a few ten thousand multiply-adds. Measured with
// bench/bench_generate (see BENCHMARKS.md); the llama2.c model (dim 64) never crosses them.
constexpr size_t kParallelMatvecWork = size_t(1) << 16;
constexpr size_t kParallelAttentionWork = size_t(1) << 15;

}  // namespace

DecodeState make_decode_state(const ModelConfig& c) {
  validate(c);
  int HS = c.head_size();
  DecodeState s;
  s.cache.key = Tensor({c.n_layers, c.max_seq_len, c.kv_dim()});
  s.cache.value = Tensor({c.n_layers, c.max_seq_len, c.kv_dim()});
  s.x = Tensor({c.dim});
  s.xn = Tensor({c.dim});
  s.rstd = Tensor({1});
  s.q = Tensor({c.n_heads * HS});
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
void matvec(real* out, const real* w, const real* x, int N, int K) {
  int chunks = (size_t)N * K >= kParallelMatvecWork ? num_threads() : 1;
  if (chunks <= 1) {
    linear_forward(out, x, w, 1, K, N);  // one row: Eigen takes its matrix-vector path
    return;
  }
  // Each chunk owns a block of output rows, so no two threads write the same element.
#pragma omp parallel for
  for (int chunk = 0; chunk < chunks; chunk++) {
    int r0 = (int)((size_t)N * chunk / chunks), r1 = (int)((size_t)N * (chunk + 1) / chunks);
    linear_forward(out + r0, x, w + (size_t)r0 * K, 1, K, r1 - r0);
  }
}
// ANCHOR_END: matvec

// ANCHOR: cached_attention_forward
void cached_attention_forward(real* att, real* scores, const real* q, const real* k, const real* v, int T, int max_T,
                              int NH, int NKV, int HS) {
  int kv_dim = NKV * HS;
  int group = NH / NKV;  // query heads per kv head
  real scale = static_cast<real>(1.0 / std::sqrt(double(HS)));
  bool parallel = (size_t)NH * T * HS >= kParallelAttentionWork;
  // Heads are independent: each writes its own row of scores and its own HS outputs.
#pragma omp parallel for if (parallel)
  for (int h = 0; h < NH; h++) {
    int g = h / group;  // the kv head this query head reads
    StridedRows K(k + (size_t)g * HS, T, HS, Eigen::OuterStride<>(kv_dim));  // (T, HS)
    StridedRows V(v + (size_t)g * HS, T, HS, Eigen::OuterStride<>(kv_dim));  // (T, HS)
    Eigen::Map<const Vector> qh(q + (size_t)h * HS, HS);
    Eigen::Map<Vector> s(scores + (size_t)h * max_T, T);
    // scores: one dot product per cached position, t = 0 .. T−1 (all of them: the cache only
    // holds the past, so the causal mask has nothing left to hide)
    s.noalias() = K * qh;
    s *= scale;
    // softmax over the T scores; Eigen's exp works on whole SIMD registers
    ArrayMap p(s.data(), T);
    real m = p.maxCoeff();
    p = (p - m).exp();
    real inv_total = 1 / p.sum();
    // out_h = Σ_t p_t v_t, then divided by Σ_t p_t
    Eigen::Map<Vector> out(att + (size_t)h * HS, HS);
    out.noalias() = V.transpose() * s;
    out *= inv_total;
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
  real eps = static_cast<real>(c.norm_eps);
  const real* cos = model.rope_cos.ptr();
  const real* sin = model.rope_sin.ptr();
  real* x = s.x.ptr();

  // The residual stream starts as the token's row of the embedding table.
  const real* emb = w.tok_embeddings.ptr() + (size_t)token * C;
  for (int i = 0; i < C; i++) x[i] = emb[i];

  for (int l = 0; l < c.n_layers; l++) {
    const LayerWeights& lw = w.layers[l];
    // This layer's cache, and the row of it that this position fills.
    real* key_layer = s.cache.key.ptr() + (size_t)l * max_T * kv_dim;      // (max_T, NKV·HS)
    real* value_layer = s.cache.value.ptr() + (size_t)l * max_T * kv_dim;  // (max_T, NKV·HS)
    real* k = key_layer + (size_t)pos * kv_dim;                             // (NKV·HS)
    real* v = value_layer + (size_t)pos * kv_dim;                           // (NKV·HS)

    // Attention: q, k, v of this position; k and v go straight into the cache.
    rmsnorm_forward(s.xn.ptr(), s.rstd.ptr(), x, lw.attention_norm.ptr(), 1, C, eps);
    matvec(s.q.ptr(), lw.wq.ptr(), s.xn.ptr(), NH * HS, C);
    matvec(k, lw.wk.ptr(), s.xn.ptr(), kv_dim, C);
    matvec(v, lw.wv.ptr(), s.xn.ptr(), kv_dim, C);
    rope_forward(s.q.ptr(), s.q.ptr(), cos, sin, 1, 1, NH, HS, pos);  // in place, at position pos
    rope_forward(k, k, cos, sin, 1, 1, NKV, HS, pos);
    cached_attention_forward(s.att.ptr(), s.scores.ptr(), s.q.ptr(), key_layer, value_layer, pos + 1, max_T, NH, NKV, HS);
    matvec(s.proj.ptr(), lw.wo.ptr(), s.att.ptr(), C, NH * HS);
    for (int i = 0; i < C; i++) x[i] += s.proj[i];  // h = x + attention(...)

    // Feed-forward: x += w2 · (silu(w1 · xn) ⊙ (w3 · xn)).
    rmsnorm_forward(s.xn.ptr(), s.rstd.ptr(), x, lw.ffn_norm.ptr(), 1, C, eps);
    matvec(s.gate.ptr(), lw.w1.ptr(), s.xn.ptr(), F, C);
    matvec(s.up.ptr(), lw.w3.ptr(), s.xn.ptr(), F, C);
    swiglu_forward(s.hidden.ptr(), s.gate.ptr(), s.up.ptr(), F);
    matvec(s.proj.ptr(), lw.w2.ptr(), s.hidden.ptr(), C, F);
    for (int i = 0; i < C; i++) x[i] += s.proj[i];
  }

  rmsnorm_forward(s.xn.ptr(), s.rstd.ptr(), x, w.norm.ptr(), 1, C, eps);
  // Tied embeddings: the output projection is the embedding table itself.
  const Tensor& out_w = c.tie_embeddings ? w.tok_embeddings : w.output;
  matvec(s.logits.ptr(), out_w.ptr(), s.xn.ptr(), V, C);
  s.cache.length = pos + 1;
  return s.logits.ptr();
}
// ANCHOR_END: decode_step

}  // namespace foundry
