// Gradient checks of causal self-attention with GQA, in double precision (1e-6 relative).
// Also: the fused op against the same math composed from engine primitives, the fast kernels
// against the naive definition, and deliberately broken backwards that the check must catch.
#include <catch2/catch.hpp>

#include <cmath>
#include <deque>
#include <sstream>
#include <vector>

#include "engine/gradcheck.h"
#include "engine/matmul.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "engine/softmax.h"
#include "model/attention.h"
#include "model/rope.h"
#include "tests/common/test_helpers.h"

using namespace foundry;

namespace {

using test::random_tensor;

struct Sizes {
  int B, T, NH, NKV, HS;
};

std::string sizes_str(const Sizes& s) {
  std::ostringstream out;
  out << "B=" << s.B << " T=" << s.T << " NH=" << s.NH << " NKV=" << s.NKV << " HS=" << s.HS;
  return out.str();
}

GradCheckResult check_attention(const Sizes& s, uint64_t seed, size_t max_elements = 0) {
  Rng rng(seed);
  Tensor q = random_tensor({s.B, s.T, s.NH, s.HS}, rng);
  Tensor k = random_tensor({s.B, s.T, s.NKV, s.HS}, rng);
  Tensor v = random_tensor({s.B, s.T, s.NKV, s.HS}, rng);
  GradCheckOptions options;
  options.max_elements = max_elements;
  return check_gradients(
      [](Tape& tape, const std::vector<Var>& in) { return causal_attention(tape, in[0], in[1], in[2]); }, {&q, &k, &v},
      {"q", "k", "v"}, options);
}

// ---- a backward with a switchable bug, to prove the check can fail ---------------------------

enum class Bug { none, dk_from_first_head_only, dropped_softmax_term };

// The naive backward again, with one of two realistic mistakes switched on.
void buggy_backward(Bug bug, real* dq, real* dk, real* dv, const real* dout, const real* att, const real* q,
                    const real* k, const real* v, int B, int T, int NH, int NKV, int HS) {
  const int group = NH / NKV;
  const real scale = 1 / std::sqrt(real(HS));
  std::vector<real> dp(T);
  for (int b = 0; b < B; b++) {
    for (int h = 0; h < NH; h++) {
      const int g = h / group;
      // Bug 1: only the first query head of each group contributes to dk (the others forgotten).
      const bool add_dk = bug != Bug::dk_from_first_head_only || h % group == 0;
      for (int i = 0; i < T; i++) {
        const real* p = att + (((size_t)b * NH + h) * T + i) * T;
        const real* do_i = dout + (((size_t)b * T + i) * NH + h) * HS;
        const real* q_i = q + (((size_t)b * T + i) * NH + h) * HS;
        real dot = 0;
        for (int j = 0; j <= i; j++) {
          const real* v_j = v + (((size_t)b * T + j) * NKV + g) * HS;
          real* dv_j = dv + (((size_t)b * T + j) * NKV + g) * HS;
          dp[j] = 0;
          for (int c = 0; c < HS; c++) {
            dp[j] += do_i[c] * v_j[c];
            dv_j[c] += p[j] * do_i[c];
          }
          dot += p[j] * dp[j];
        }
        if (bug == Bug::dropped_softmax_term) dot = 0;  // Bug 2: ds = p ⊙ dp, the −p Σ p dp term lost
        real* dq_i = dq + (((size_t)b * T + i) * NH + h) * HS;
        for (int j = 0; j <= i; j++) {
          const real ds = p[j] * (dp[j] - dot) * scale;
          const real* k_j = k + (((size_t)b * T + j) * NKV + g) * HS;
          real* dk_j = dk + (((size_t)b * T + j) * NKV + g) * HS;
          for (int c = 0; c < HS; c++) {
            dq_i[c] += ds * k_j[c];
            if (add_dk) dk_j[c] += ds * q_i[c];
          }
        }
      }
    }
  }
}

Var buggy_attention(Tape& tape, Var q, Var k, Var v, Bug bug) {
  const Tensor& Q = tape.value(q);
  const int B = Q.dim(0), T = Q.dim(1), NH = Q.dim(2), HS = Q.dim(3), NKV = tape.value(k).dim(2);
  Var out = tape.record("buggy_attention", {q.id, k.id, v.id}, Q.shape);
  Tensor& att = tape.saved(out, 0, {B, NH, T, T});
  attention_forward_naive(tape.mutable_value(out).ptr(), att.ptr(), Q.ptr(), tape.value(k).ptr(), tape.value(v).ptr(),
                          B, T, NH, NKV, HS);
  tape.set_backward(out, [&tape, q, k, v, out, B, T, NH, NKV, HS, bug] {
    buggy_backward(bug, tape.grad(q).ptr(), tape.grad(k).ptr(), tape.grad(v).ptr(), tape.grad(out).ptr(),
                   tape.node(out.id).saved[0].ptr(), tape.value(q).ptr(), tape.value(k).ptr(), tape.value(v).ptr(), B,
                   T, NH, NKV, HS);
  });
  return out;
}

GradCheckResult check_buggy(Bug bug) {
  Rng rng(7);
  const Sizes s{1, 4, 4, 2, 3};
  Tensor q = random_tensor({s.B, s.T, s.NH, s.HS}, rng);
  Tensor k = random_tensor({s.B, s.T, s.NKV, s.HS}, rng);
  Tensor v = random_tensor({s.B, s.T, s.NKV, s.HS}, rng);
  return check_gradients(
      [bug](Tape& tape, const std::vector<Var>& in) { return buggy_attention(tape, in[0], in[1], in[2], bug); },
      {&q, &k, &v}, {"q", "k", "v"});
}

// ---- the same attention composed from engine primitives --------------------------------------

// Per (b, h): S = Q_h · K_gᵀ (matmul, transpose), scaled, plus a mask of −inf above the
// diagonal (add), softmax, times V_g (matmul). Each head's q and each kv head's k, v are their
// own leaves, so a kv head shared by several query heads gets its gradient summed by the tape.
struct Composed {
  std::vector<Tensor> q, k, v;     // q[b*NH+h] (T, HS); k, v [b*NKV+g] (T, HS)
  std::vector<Tensor> dq, dk, dv;  // their gradients
  Tensor mask;                     // (T, T): 0 on and below the diagonal, −inf above
};

Composed split_heads(const Tensor& q, const Tensor& k, const Tensor& v, const Sizes& s) {
  Composed c;
  auto take = [&](const Tensor& x, int heads, int b, int h) {
    Tensor t({s.T, s.HS});
    for (int i = 0; i < s.T; i++)
      for (int d = 0; d < s.HS; d++) t.at({i, d}) = x.at({b, i, h, d});
    return t;
  };
  for (int b = 0; b < s.B; b++) {
    for (int h = 0; h < s.NH; h++) c.q.push_back(take(q, s.NH, b, h));
    for (int g = 0; g < s.NKV; g++) {
      c.k.push_back(take(k, s.NKV, b, g));
      c.v.push_back(take(v, s.NKV, b, g));
    }
  }
  for (auto* list : {&c.q, &c.k, &c.v}) {
    std::vector<Tensor>& grads = list == &c.q ? c.dq : list == &c.k ? c.dk : c.dv;
    for (const Tensor& t : *list) grads.emplace_back(t.shape, 0);
  }
  c.mask = Tensor({s.T, s.T});
  for (int i = 0; i < s.T; i++)
    for (int j = i + 1; j < s.T; j++) c.mask.at({i, j}) = -INFINITY;
  return c;
}

// Returns one (T, HS) output Var per (b, h), in b-major order.
std::vector<Var> composed_attention(Tape& tape, Composed& c, const Sizes& s) {
  const int group = s.NH / s.NKV;
  std::vector<Var> k_leaf, v_leaf;
  for (size_t i = 0; i < c.k.size(); i++) {
    k_leaf.push_back(tape.param(c.k[i], c.dk[i], "k"));
    v_leaf.push_back(tape.param(c.v[i], c.dv[i], "v"));
  }
  Var mask = tape.input(c.mask, "mask");
  std::vector<Var> outs;
  for (int b = 0; b < s.B; b++) {
    for (int h = 0; h < s.NH; h++) {
      Var q = tape.param(c.q[b * s.NH + h], c.dq[b * s.NH + h], "q");
      const int kv = b * s.NKV + h / group;
      Var scores = scale(tape, matmul(tape, q, transpose(tape, k_leaf[kv])), 1 / std::sqrt(real(s.HS)));
      Var probs = softmax(tape, add(tape, scores, mask));
      outs.push_back(matmul(tape, probs, v_leaf[kv]));
    }
  }
  return outs;
}

}  // namespace

TEST_CASE("causal_attention gradients match finite differences (MHA, GQA, MQA)", "[attention][gradcheck]") {
  for (const Sizes& s : {Sizes{2, 5, 4, 4, 3}, Sizes{2, 5, 4, 2, 3}, Sizes{2, 5, 4, 1, 3}, Sizes{1, 3, 6, 3, 2}}) {
    GradCheckResult r = check_attention(s, 11);
    INFO(sizes_str(s) << ": " << r.str());
    CHECK(r.checked == (size_t)s.B * s.T * (s.NH + 2 * s.NKV) * s.HS);
    CHECK(r.passed(1e-6));
  }
}

TEST_CASE("causal_attention gradients across several query blocks", "[attention][gradcheck]") {
  // T = 70 > the kernel's 64-row query block: a full block, then a partial one that reads keys
  // of both. Sampled elements keep the check fast.
  const Sizes s{1, 70, 2, 1, 4};
  GradCheckResult r = check_attention(s, 5, 150);
  INFO(r.str());
  CHECK(r.passed(1e-6));
}

TEST_CASE("self_attention sub-layer gradients match finite differences", "[attention][gradcheck]") {
  // Head size 4: two RoPE pairs turning at different rates. NKV = NH, a GQA group of 2, and MQA.
  // One thread: thousands of tiny forwards, where starting a thread team for each projection
  // costs far more than the work (and on a busy machine, very much more).
  const int threads = num_threads();
  set_num_threads(1);
  for (int NKV : {4, 2, 1}) {
    const int B = 2, T = 4, C = 16, NH = 4, HS = C / NH, max_seq_len = 6;
    Rng rng(3);
    Tensor x = random_tensor({B, T, C}, rng);
    Tensor wq = random_tensor({NH * HS, C}, rng, 0.5);
    Tensor wk = random_tensor({NKV * HS, C}, rng, 0.5);
    Tensor wv = random_tensor({NKV * HS, C}, rng, 0.5);
    Tensor wo = random_tensor({C, NH * HS}, rng, 0.5);
    Tensor cos({max_seq_len, HS / 2}), sin({max_seq_len, HS / 2});
    rope_tables(cos.ptr(), sin.ptr(), max_seq_len, HS, 10000.0);
    GradCheckResult r = check_gradients(
        [&](Tape& tape, const std::vector<Var>& in) {
          return self_attention(tape, in[0], in[1], in[2], in[3], in[4], cos, sin, NH, NKV);
        },
        {&x, &wq, &wk, &wv, &wo}, {"x", "wq", "wk", "wv", "wo"});
    INFO("NKV = " << NKV << ": " << r.str());
    CHECK(r.checked == x.size() + wq.size() + wk.size() + wv.size() + wo.size());
    CHECK(r.passed(1e-6));
  }
  set_num_threads(threads);
}

TEST_CASE("a deliberately broken attention backward fails the gradient check", "[attention][gradcheck]") {
  GradCheckResult good = check_buggy(Bug::none);
  INFO("correct copy: " << good.str());
  CHECK(good.passed(1e-6));  // the test's copy is right when no bug is switched on
  GradCheckResult dk = check_buggy(Bug::dk_from_first_head_only);
  INFO("dk from one head of the group: " << dk.str());
  CHECK(dk.max_rel_error > 1e-2);
  CHECK(dk.worst.find("(k)") != std::string::npos);  // and it is k whose gradient is wrong
  GradCheckResult term = check_buggy(Bug::dropped_softmax_term);
  INFO("dropped softmax term: " << term.str());
  CHECK(term.max_rel_error > 1e-2);
}

TEST_CASE("fused attention equals the same math composed from engine primitives", "[attention]") {
  for (const Sizes& s : {Sizes{2, 6, 4, 4, 3}, Sizes{2, 6, 4, 2, 3}, Sizes{1, 6, 3, 1, 4}}) {
    INFO(sizes_str(s));
    Rng rng(21);
    Tensor q = random_tensor({s.B, s.T, s.NH, s.HS}, rng);
    Tensor k = random_tensor({s.B, s.T, s.NKV, s.HS}, rng);
    Tensor v = random_tensor({s.B, s.T, s.NKV, s.HS}, rng);
    Tensor dout = random_tensor({s.B, s.T, s.NH, s.HS}, rng);
    Tensor dq(q.shape), dk(k.shape), dv(v.shape);

    Tape fused_tape;
    Var y = causal_attention(fused_tape, fused_tape.param(q, dq), fused_tape.param(k, dk), fused_tape.param(v, dv));
    fused_tape.backward(y, dout);
    const Tensor& out = fused_tape.value(y);

    Composed c = split_heads(q, k, v, s);
    Tape tape;
    std::vector<Var> outs = composed_attention(tape, c, s);
    // Seed every head's output with its slice of dout, and compare the forward on the way.
    double max_out = 0;
    for (int b = 0; b < s.B; b++) {
      for (int h = 0; h < s.NH; h++) {
        const Tensor& o = tape.value(outs[b * s.NH + h]);
        for (int i = 0; i < s.T; i++)
          for (int d = 0; d < s.HS; d++) max_out = std::max(max_out, std::fabs(o.at({i, d}) - out.at({b, i, h, d})));
      }
    }
    CHECK(max_out < 1e-12);
    // One scalar loss over all heads, L = Σ_heads Σ o ⊙ dout_head, so the tape sums shared kv heads.
    std::deque<Tensor> probes;  // a deque: the tape keeps pointers, growing it moves nothing
    Var total;
    for (int b = 0; b < s.B; b++) {
      for (int h = 0; h < s.NH; h++) {
        Tensor& probe = probes.emplace_back(Shape{s.T, s.HS});
        for (int i = 0; i < s.T; i++)
          for (int d = 0; d < s.HS; d++) probe.at({i, d}) = dout.at({b, i, h, d});
        Var term = sum(tape, mul(tape, outs[b * s.NH + h], tape.input(probe, "dout")));
        total = total.id < 0 ? term : add(tape, total, term);
      }
    }
    tape.backward(total);
    double max_dq = 0, max_dk = 0, max_dv = 0;
    for (int b = 0; b < s.B; b++) {
      for (int i = 0; i < s.T; i++) {
        for (int d = 0; d < s.HS; d++) {
          for (int h = 0; h < s.NH; h++)
            max_dq = std::max(max_dq, std::fabs(c.dq[b * s.NH + h].at({i, d}) - dq.at({b, i, h, d})));
          for (int g = 0; g < s.NKV; g++) {
            max_dk = std::max(max_dk, std::fabs(c.dk[b * s.NKV + g].at({i, d}) - dk.at({b, i, g, d})));
            max_dv = std::max(max_dv, std::fabs(c.dv[b * s.NKV + g].at({i, d}) - dv.at({b, i, g, d})));
          }
        }
      }
    }
    CHECK(max_dq < 1e-12);
    CHECK(max_dk < 1e-12);
    CHECK(max_dv < 1e-12);
  }
}

TEST_CASE("fast attention kernels agree with the naive definition", "[attention]") {
  // T = 150: two full 64-row query blocks and a partial one.
  for (const Sizes& s : {Sizes{2, 150, 4, 2, 8}, Sizes{1, 150, 3, 3, 5}, Sizes{3, 7, 2, 1, 4}}) {
    INFO(sizes_str(s));
    Rng rng(99);
    Tensor q = random_tensor({s.B, s.T, s.NH, s.HS}, rng);
    Tensor k = random_tensor({s.B, s.T, s.NKV, s.HS}, rng);
    Tensor v = random_tensor({s.B, s.T, s.NKV, s.HS}, rng);
    Tensor dout = random_tensor(q.shape, rng);
    Tensor out_fast(q.shape), out_naive(q.shape), att_fast({s.B, s.NH, s.T, s.T}), att_naive(att_fast.shape);
    attention_forward(out_fast.ptr(), att_fast.ptr(), q.ptr(), k.ptr(), v.ptr(), s.B, s.T, s.NH, s.NKV, s.HS);
    attention_forward_naive(out_naive.ptr(), att_naive.ptr(), q.ptr(), k.ptr(), v.ptr(), s.B, s.T, s.NH, s.NKV, s.HS);
    CHECK(max_abs_diff(out_fast, out_naive) < 1e-12);
    CHECK(max_abs_diff(att_fast, att_naive) < 1e-14);
    // Both backwards start from the same nonzero gradients: they must ADD, not overwrite.
    Tensor dq_fast = random_tensor(q.shape, rng), dk_fast = random_tensor(k.shape, rng),
           dv_fast = random_tensor(v.shape, rng);
    Tensor dq_naive = dq_fast, dk_naive = dk_fast, dv_naive = dv_fast;
    attention_backward(dq_fast.ptr(), dk_fast.ptr(), dv_fast.ptr(), dout.ptr(), att_fast.ptr(), q.ptr(), k.ptr(),
                       v.ptr(), s.B, s.T, s.NH, s.NKV, s.HS);
    attention_backward_naive(dq_naive.ptr(), dk_naive.ptr(), dv_naive.ptr(), dout.ptr(), att_naive.ptr(), q.ptr(),
                             k.ptr(), v.ptr(), s.B, s.T, s.NH, s.NKV, s.HS);
    CHECK(max_abs_diff(dq_fast, dq_naive) < 1e-11);
    CHECK(max_abs_diff(dk_fast, dk_naive) < 1e-11);
    CHECK(max_abs_diff(dv_fast, dv_naive) < 1e-11);
  }
}
