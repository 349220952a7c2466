// Causal self-attention with grouped-query attention (GQA).
//
// Forward, for one batch row b and one query head h reading kv head g = h / (NH / NKV), with
// q_i, k_j, v_j the HS-vectors at positions i and j:
//   s_ij = q_i · k_j / sqrt(HS)                         scores, only for j ≤ i (causal mask)
//   p_ij = exp(s_ij − m_i) / Σ_{j'≤i} exp(s_ij' − m_i)   m_i = max_{j≤i} s_ij;  p_ij = 0 for j > i
//   o_i  = Σ_{j≤i} p_ij v_j
// Cached: the probabilities p (B, NH, T, T), zero above the diagonal. q, k, v are the inputs.
//
// Backward, given do_i = dL/do_i:
//   dv_j += Σ_i p_ij do_i                 (o is linear in v)
//   dp_ij = do_i · v_j
//   ds_ij = p_ij (dp_ij − Σ_j' p_ij' dp_ij')   (the softmax backward, row by row)
//   dq_i += Σ_j ds_ij k_j / sqrt(HS)
//   dk_j += Σ_i ds_ij q_i / sqrt(HS)
// Derivation of ds: ∂p_ij'/∂s_ij = p_ij' ([j = j'] − p_ij), so
//   ds_ij = Σ_j' dp_ij' p_ij' ([j = j'] − p_ij) = p_ij dp_ij − p_ij Σ_j' p_ij' dp_ij'.
// The mask needs no backward of its own: p_ij = 0 above the diagonal makes ds_ij and the
// contribution to dv_j vanish there.
//
// GQA: k_j and v_j of kv head g appear in the scores and outputs of every query head of group g,
// so their gradients are the SUM over those NH / NKV query heads.
//
// The fast kernels work on one (b, h) pair at a time, on blocks of kQueryBlock query rows: a
// block of rows [i0, i1) only ever sees keys [0, i1), so the products below the diagonal are
// done with Eigen's GEMM on strided maps of q, k, v (a head's HS numbers are contiguous, a
// head's rows are NH·HS apart) and most of the masked upper triangle is never computed.
#include "model/attention.h"

#include <Eigen/Core>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/matmul.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "model/rope.h"

namespace foundry {

namespace {

using RowMajor = Eigen::Matrix<real, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Strided = Eigen::OuterStride<>;
using Map = Eigen::Map<RowMajor, 0, Strided>;
using ConstMap = Eigen::Map<const RowMajor, 0, Strided>;
using ArrayMap = Eigen::Map<Eigen::Array<real, Eigen::Dynamic, 1>>;
using ConstArrayMap = Eigen::Map<const Eigen::Array<real, Eigen::Dynamic, 1>>;
using AlignedVector = Eigen::Matrix<real, Eigen::Dynamic, 1>;  // Eigen allocates it aligned
using AlignedArrayMap = Eigen::Map<Eigen::Array<real, Eigen::Dynamic, 1>, Eigen::AlignedMax>;

// subtle: Eigen vectorizes exp, max and sum over a plain Map only after peeling the first few
// elements up to an aligned address, and computes those few with the scalar std::exp and in
// another order. The result would then depend on where malloc put the buffer (last bits only,
// but enough to break bit-for-bit reproducibility). The softmax therefore runs on rows of an
// aligned scratch buffer whose row stride is a whole number of 64-byte lines.
int aligned_stride(int n) {
  const int per_line = static_cast<int>(64 / sizeof(real));
  return (n + per_line - 1) / per_line * per_line;
}

// Query rows per block. Small enough that the wasted triangle above the diagonal of each block
// is small; large enough that each GEMM is big enough to run near peak.
constexpr int kQueryBlock = 64;

// The multiply-adds of one call, B·NH·T²·HS: tiny calls (gradient checks, one-token generation
// steps) stay on one thread (engine/parallel.h). Used only in OpenMP pragmas, hence maybe_unused.
[[maybe_unused]] double attention_work(int B, int T, int NH, int HS) { return double(B) * NH * T * T * HS; }

void check_heads(int NH, int NKV, const char* where) {
  if (NH <= 0 || NKV <= 0 || NH % NKV != 0) {
    throw std::invalid_argument(std::string(where) + ": n_kv_heads = " + std::to_string(NKV) +
                                " must be positive and divide n_heads = " + std::to_string(NH));
  }
}

}  // namespace

void attention_forward_naive(real* out, real* att, const real* q, const real* k, const real* v, int B, int T, int NH,
                             int NKV, int HS) {
  check_heads(NH, NKV, "attention_forward_naive");
  // ANCHOR: kv_group
  const int kv_group = NH / NKV;  // query heads per kv head
  const real scale = 1 / std::sqrt(static_cast<real>(HS));
  for (int b = 0; b < B; b++) {
    for (int h = 0; h < NH; h++) {
      const int g = h / kv_group;  // the kv head this query head reads
      // ANCHOR_END: kv_group
      for (int i = 0; i < T; i++) {
        const real* q_i = q + (((size_t)b * T + i) * NH + h) * HS;
        real* p = att + (((size_t)b * NH + h) * T + i) * T;  // row i of the (T, T) matrix of head h
        // ANCHOR: attention_scores
        // scores against positions 0..i only: the causal mask
        real m = -INFINITY;
        for (int j = 0; j <= i; j++) {
          const real* k_j = k + (((size_t)b * T + j) * NKV + g) * HS;
          real s = 0;
          for (int c = 0; c < HS; c++) s += q_i[c] * k_j[c];
          p[j] = s * scale;
          m = std::max(m, p[j]);
        }
        // ANCHOR_END: attention_scores
        // ANCHOR: attention_softmax
        // softmax over j ≤ i, shifted by the row maximum so that exp never overflows
        real total = 0;
        for (int j = 0; j <= i; j++) {
          p[j] = std::exp(p[j] - m);
          total += p[j];
        }
        for (int j = 0; j <= i; j++) p[j] /= total;
        for (int j = i + 1; j < T; j++) p[j] = 0;  // the future gets probability exactly 0
        // ANCHOR_END: attention_softmax
        // ANCHOR: attention_weighted_sum
        // o_i = Σ_j p_ij v_j
        real* o_i = out + (((size_t)b * T + i) * NH + h) * HS;
        for (int c = 0; c < HS; c++) o_i[c] = 0;
        for (int j = 0; j <= i; j++) {
          const real* v_j = v + (((size_t)b * T + j) * NKV + g) * HS;
          for (int c = 0; c < HS; c++) o_i[c] += p[j] * v_j[c];
        }
        // ANCHOR_END: attention_weighted_sum
      }
    }
  }
}

// ANCHOR: attention_backward_naive
void attention_backward_naive(real* dq, real* dk, real* dv, const real* dout, const real* att, const real* q,
                              const real* k, const real* v, int B, int T, int NH, int NKV, int HS) {
  check_heads(NH, NKV, "attention_backward_naive");
  const int kv_group = NH / NKV;
  const real scale = 1 / std::sqrt(static_cast<real>(HS));
  std::vector<real> dp(T);  // dL/dp for one row
  for (int b = 0; b < B; b++) {
    for (int h = 0; h < NH; h++) {
      const int g = h / kv_group;
      for (int i = 0; i < T; i++) {
        const real* p = att + (((size_t)b * NH + h) * T + i) * T;
        const real* do_i = dout + (((size_t)b * T + i) * NH + h) * HS;
        const real* q_i = q + (((size_t)b * T + i) * NH + h) * HS;
        // in the forward: o_i = Σ_j p_ij v_j
        real dot = 0;  // Σ_j p_ij dp_ij
        for (int j = 0; j <= i; j++) {
          const real* v_j = v + (((size_t)b * T + j) * NKV + g) * HS;
          real* dv_j = dv + (((size_t)b * T + j) * NKV + g) * HS;
          dp[j] = 0;
          for (int c = 0; c < HS; c++) {
            dp[j] += do_i[c] * v_j[c];
            // subtle: += because every query head of the group adds into the same dv_j
            dv_j[c] += p[j] * do_i[c];
          }
          dot += p[j] * dp[j];
        }
        // in the forward: p_i = softmax(s_i) and s_ij = q_i · k_j / sqrt(HS)
        real* dq_i = dq + (((size_t)b * T + i) * NH + h) * HS;
        for (int j = 0; j <= i; j++) {
          const real ds = p[j] * (dp[j] - dot) * scale;
          const real* k_j = k + (((size_t)b * T + j) * NKV + g) * HS;
          real* dk_j = dk + (((size_t)b * T + j) * NKV + g) * HS;
          for (int c = 0; c < HS; c++) {
            dq_i[c] += ds * k_j[c];
            dk_j[c] += ds * q_i[c];  // summed over the query heads of the group, like dv
          }
        }
      }
    }
  }
}
// ANCHOR_END: attention_backward_naive

// ANCHOR: attention_forward
void attention_forward(real* out, real* att, const real* q, const real* k, const real* v, int B, int T, int NH, int NKV,
                       int HS) {
  check_heads(NH, NKV, "attention_forward");
  const int kv_group = NH / NKV;
  const real scale = 1 / std::sqrt(static_cast<real>(HS));
  // (b, h) pairs are independent: each writes only its own (T, T) block of att and its own
  // head's columns of out. Eigen's GEMM sees it is inside a parallel region and stays on one thread.
  // The pairs are handed out as threads come for them (schedule(dynamic)), so a thread that
  // shares its core with another program takes fewer (engine/matmul.cpp's split_product).
#pragma omp parallel for schedule(dynamic) if (worth_threads(Work::attention, attention_work(B, T, NH, HS)))
  for (int bh = 0; bh < B * NH; bh++) {
    pin_worker_thread();
    const int b = bh / NH, h = bh % NH, g = h / kv_group;
    // A head's (T, HS) matrix inside a (B, T, heads, HS) tensor: rows are heads·HS apart.
    ConstMap Q(q + ((size_t)b * T * NH + h) * HS, T, HS, Strided(NH * HS));
    ConstMap K(k + ((size_t)b * T * NKV + g) * HS, T, HS, Strided(NKV * HS));
    ConstMap V(v + ((size_t)b * T * NKV + g) * HS, T, HS, Strided(NKV * HS));
    Map O(out + ((size_t)b * T * NH + h) * HS, T, HS, Strided(NH * HS));
    real* P = att + (size_t)bh * T * T;  // (T, T), row-major
    // Scores of one block of query rows, (kQueryBlock, ld) with 64-byte aligned rows.
    // thread_local: allocated once per thread for the life of the program, not on every call.
    thread_local AlignedVector scores;
    const int ld = aligned_stride(T);
    if (scores.size() < (Eigen::Index)kQueryBlock * ld) scores.resize((Eigen::Index)kQueryBlock * ld);
    for (int i0 = 0; i0 < T; i0 += kQueryBlock) {
      const int i1 = std::min(i0 + kQueryBlock, T), n = i1 - i0;
      // S[i0:i1, 0:i1] = Q[i0:i1] · K[0:i1]ᵀ / sqrt(HS): keys past i1 are all masked for this block
      Map S(scores.data(), n, i1, Strided(ld));
      S.noalias() = (Q.middleRows(i0, n) * K.topRows(i1).transpose()) * scale;
      for (int i = i0; i < i1; i++) {
        AlignedArrayMap s(scores.data() + (size_t)(i - i0) * ld, i + 1);  // the positions query i sees: 0..i
        const real m = s.maxCoeff();
        s = (s - m).exp();  // ≤ 1, and exp(0) = 1 for the maximum, so the sum is ≥ 1
        const real total = s.sum();
        real* p = P + (size_t)i * T;
        for (int j = 0; j <= i; j++) p[j] = s[j] / total;
        std::fill(p + i + 1, p + T, real(0));  // subtle: zero the future, the backward reads full rows
      }
      // O[i0:i1] = P[i0:i1, 0:i1] · V[0:i1]
      ConstMap Pb(P + (size_t)i0 * T, n, i1, Strided(T));
      O.middleRows(i0, n).noalias() = Pb * V.topRows(i1);
    }
  }
}
// ANCHOR_END: attention_forward

// ANCHOR: attention_backward
void attention_backward(real* dq, real* dk, real* dv, const real* dout, const real* att, const real* q, const real* k,
                        const real* v, int B, int T, int NH, int NKV, int HS) {
  check_heads(NH, NKV, "attention_backward");
  const int kv_group = NH / NKV;
  const real scale = 1 / std::sqrt(static_cast<real>(HS));
  const bool need_ds = dq || dk;  // dv alone does not need the softmax backward
  // subtle: parallel over (b, kv head), NOT (b, query head). All kv_group query heads of a group
  // add into the same rows of dk and dv; if two threads ran two heads of one group they would
  // race on those += and lose updates. One thread per (b, g) runs the group's heads in turn, and
  // writes dq only for those heads, so no two threads ever write the same gradient element.
#pragma omp parallel for schedule(dynamic) if (worth_threads(Work::attention, attention_work(B, T, NH, HS)))
  for (int bg = 0; bg < B * NKV; bg++) {
    pin_worker_thread();
    const int b = bg / NKV, g = bg % NKV;
    // Scratch for one block of dL/dp, then of ds, (kQueryBlock, T). thread_local: allocated once
    // per thread for the life of the program, not on every call.
    thread_local std::vector<real> scratch;
    if (scratch.size() < (size_t)kQueryBlock * T) scratch.resize((size_t)kQueryBlock * T);
    ConstMap K(k + ((size_t)b * T * NKV + g) * HS, T, HS, Strided(NKV * HS));
    ConstMap V(v + ((size_t)b * T * NKV + g) * HS, T, HS, Strided(NKV * HS));
    for (int h = g * kv_group; h < (g + 1) * kv_group; h++) {
      ConstMap Q(q + ((size_t)b * T * NH + h) * HS, T, HS, Strided(NH * HS));
      ConstMap dO(dout + ((size_t)b * T * NH + h) * HS, T, HS, Strided(NH * HS));
      const real* P = att + ((size_t)b * NH + h) * T * T;
      for (int i0 = 0; i0 < T; i0 += kQueryBlock) {
        const int i1 = std::min(i0 + kQueryBlock, T), n = i1 - i0;
        ConstMap Pb(P + (size_t)i0 * T, n, i1, Strided(T));  // P[i0:i1, 0:i1]
        // in the forward: O = P · V, so dV += Pᵀ · dO and dP = dO · Vᵀ
        if (dv) {
          Map dV(dv + ((size_t)b * T * NKV + g) * HS, T, HS, Strided(NKV * HS));
          dV.topRows(i1).noalias() += Pb.transpose() * dO.middleRows(i0, n);
        }
        if (!need_ds) continue;
        Map dS(scratch.data(), n, i1, Strided(i1));
        dS.noalias() = dO.middleRows(i0, n) * V.topRows(i1).transpose();  // dP for now
        // in the forward: p_i = softmax(s_i); ds_ij = p_ij (dp_ij − Σ_j' p_ij' dp_ij'), the
        // 1/sqrt(HS) of the scores folded in. Zeros of p above the diagonal zero ds there.
        for (int r = 0; r < n; r++) {
          ConstArrayMap p(P + (size_t)(i0 + r) * T, i1);
          ArrayMap ds(scratch.data() + (size_t)r * i1, i1);
          const real dot = (p * ds).sum();  // a product expression: Eigen sums it without address-dependent peeling
          ds = p * (ds - dot) * scale;
        }
        // in the forward: S = Q · Kᵀ, so dQ += dS · K and dK += dSᵀ · Q
        if (dq) {
          Map dQ(dq + ((size_t)b * T * NH + h) * HS, T, HS, Strided(NH * HS));
          dQ.middleRows(i0, n).noalias() += dS * K.topRows(i1);
        }
        if (dk) {
          Map dK(dk + ((size_t)b * T * NKV + g) * HS, T, HS, Strided(NKV * HS));
          dK.topRows(i1).noalias() += dS.transpose() * Q.middleRows(i0, n);  // summed over the group
        }
      }
    }
  }
}
// ANCHOR_END: attention_backward

// ANCHOR: causal_attention
Var causal_attention(Tape& tape, Var q, Var k, Var v) {
  const Tensor& Q = tape.value(q);
  const Tensor& K = tape.value(k);
  const Tensor& V = tape.value(v);
  if (Q.rank() != 4 || K.rank() != 4 || V.rank() != 4) {
    throw std::invalid_argument("causal_attention: q " + shape_str(Q.shape) + ", k " + shape_str(K.shape) + ", v " +
                                shape_str(V.shape) + " must all be 4-D: (B, T, NH, HS) and (B, T, NKV, HS)");
  }
  const int B = Q.dim(0), T = Q.dim(1), NH = Q.dim(2), HS = Q.dim(3), NKV = K.dim(2);
  if (K.shape != V.shape || K.dim(0) != B || K.dim(1) != T || K.dim(3) != HS || NKV <= 0 || NH % NKV != 0) {
    throw std::invalid_argument("causal_attention: k " + shape_str(K.shape) + " and v " + shape_str(V.shape) +
                                " do not fit q " + shape_str(Q.shape) +
                                " (need both (B, T, NKV, HS) with the B, T, HS of q and NKV dividing NH)");
  }
  Var out = tape.record("causal_attention", {q.id, k.id, v.id}, Q.shape);
  Tensor& att = tape.saved(out, 0, {B, NH, T, T});  // the softmax probabilities, for the backward
  attention_forward(tape.mutable_value(out).ptr(), att.ptr(), Q.ptr(), K.ptr(), V.ptr(), B, T, NH, NKV, HS);
  tape.set_backward(out, [&tape, q, k, v, out, B, T, NH, NKV, HS] {
    real* dq = tape.needs_grad(q) ? tape.grad(q).ptr() : nullptr;
    real* dk = tape.needs_grad(k) ? tape.grad(k).ptr() : nullptr;
    real* dv = tape.needs_grad(v) ? tape.grad(v).ptr() : nullptr;
    attention_backward(dq, dk, dv, tape.grad(out).ptr(), tape.node(out.id).saved[0].ptr(), tape.value(q).ptr(),
                       tape.value(k).ptr(), tape.value(v).ptr(), B, T, NH, NKV, HS);
  });
  return out;
}
// ANCHOR_END: causal_attention

// ANCHOR: self_attention
Var self_attention(Tape& tape, Var x, Var wq, Var wk, Var wv, Var wo, const Tensor& rope_cos, const Tensor& rope_sin,
                   int n_heads, int n_kv_heads, const AttentionLora& lora) {
  const Tensor& X = tape.value(x);
  if (X.rank() != 3) throw std::invalid_argument("self_attention: x must be (B, T, C), got " + shape_str(X.shape));
  check_heads(n_heads, n_kv_heads, "self_attention");
  const int B = X.dim(0), T = X.dim(1), C = X.dim(2);
  const int NH = n_heads, NKV = n_kv_heads;
  const int HS = tape.value(wq).rank() == 2 ? tape.value(wq).dim(0) / NH : 0;
  check_shape(tape.value(wq).shape, {NH * HS, C}, "self_attention: wq (NH·HS, C)");
  check_shape(tape.value(wk).shape, {NKV * HS, C}, "self_attention: wk (NKV·HS, C)");
  check_shape(tape.value(wv).shape, {NKV * HS, C}, "self_attention: wv (NKV·HS, C)");
  check_shape(tape.value(wo).shape, {C, NH * HS}, "self_attention: wo (C, NH·HS)");
  // Projections. Row block h of wq makes the HS numbers of head h, so the (B, T, NH·HS) output
  // already is (B, T, NH, HS) in memory: the reshape only changes the shape. (lora_linear is
  // linear when the sub-layer has no adapters, lesson 24.)
  Var q = reshape(tape, lora_linear(tape, x, wq, lora.wq), {B, T, NH, HS});   // (B, T, NH, HS)
  Var k = reshape(tape, lora_linear(tape, x, wk, lora.wk), {B, T, NKV, HS});  // (B, T, NKV, HS)
  Var v = reshape(tape, lora_linear(tape, x, wv, lora.wv), {B, T, NKV, HS});  // (B, T, NKV, HS)
  // Position enters here and only here: queries and keys are rotated, values are not.
  q = rope(tape, q, rope_cos, rope_sin);
  k = rope(tape, k, rope_cos, rope_sin);
  Var y = causal_attention(tape, q, k, v);   // (B, T, NH, HS)
  y = reshape(tape, y, {B, T, NH * HS});     // heads side by side again
  return lora_linear(tape, y, wo, lora.wo);  // (B, T, C)
}
// ANCHOR_END: self_attention

}  // namespace foundry
