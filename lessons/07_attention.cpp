// Lesson 07: attention and the causal mask. Prints an attention matrix, shows that the future
// cannot leak into the past, measures why scores are scaled by 1/sqrt(HS), compares the fast
// kernel with the definition, checks the backward, and counts the memory the cache takes.
// Exits non-zero if any check fails.
//
//   build/lessons/lesson_07
#include <cmath>
#include <cstdio>
#include <vector>

#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "lessons/lesson_common.h"
#include "model/attention.h"

using namespace foundry;

namespace {

using lesson::check;
using lesson::failures;

Tensor random_tensor(const Shape& shape, Rng& rng) {
  Tensor t(shape);
  for (real& x : t.data) x = static_cast<real>(rng.normal());
  return t;
}

}  // namespace

int main() {
  std::printf("[matrix]\n");
  // ANCHOR: lesson_matrix
  // One sequence of 5 positions, one head of size 4.
  const int B = 1, T = 5, NH = 1, NKV = 1, HS = 4;
  Rng rng(7);
  Tensor q = random_tensor({B, T, NH, HS}, rng);   // (B, T, NH, HS)
  Tensor k = random_tensor({B, T, NKV, HS}, rng);  // (B, T, NKV, HS)
  Tensor v = random_tensor({B, T, NKV, HS}, rng);  // (B, T, NKV, HS)
  Tensor out({B, T, NH, HS});                      // (B, T, NH, HS)
  Tensor att({B, NH, T, T});                       // (B, NH, T, T) the probabilities
  attention_forward_naive(out.ptr(), att.ptr(), q.ptr(), k.ptr(), v.ptr(), B, T, NH, NKV, HS);
  // ANCHOR_END: lesson_matrix
  double worst_sum = 0, above = 0;
  for (int i = 0; i < T; i++) {
    double total = 0;
    std::printf("query %d:", i);
    for (int j = 0; j < T; j++) {
      std::printf(" %.3f", att.at({0, 0, i, j}));
      total += att.at({0, 0, i, j});
      if (j > i) above = std::max(above, std::fabs(double(att.at({0, 0, i, j}))));
    }
    std::printf("   sum %.3f\n", total);
    worst_sum = std::max(worst_sum, std::fabs(total - 1));
  }
  check(worst_sum < 1e-6, "every row sums to 1");
  check(above == 0, "everything above the diagonal is exactly 0");

  std::printf("[mask]\n");
  // Change everything about the last position and see which outputs move.
  Tensor q2 = q, k2 = k, v2 = v, out2({B, T, NH, HS}), att2({B, NH, T, T});
  for (int c = 0; c < HS; c++) {
    q2.at({0, T - 1, 0, c}) += 10;
    k2.at({0, T - 1, 0, c}) += 10;
    v2.at({0, T - 1, 0, c}) += 10;
  }
  attention_forward_naive(out2.ptr(), att2.ptr(), q2.ptr(), k2.ptr(), v2.ptr(), B, T, NH, NKV, HS);
  double past = 0;
  for (int i = 0; i < T; i++) {
    double change = 0;
    for (int c = 0; c < HS; c++)
      change = std::max(change, std::fabs(double(out2.at({0, i, 0, c}) - out.at({0, i, 0, c}))));
    std::printf("position %d: largest change of its output %.4f\n", i, change);
    if (i < T - 1) past = std::max(past, change);
  }
  check(past == 0, "changing position 4 leaves positions 0..3 bit for bit unchanged");

  std::printf("[scale]\n");
  // Dot products of random unit-variance vectors have variance HS; dividing by sqrt(HS) brings
  // it back to 1, and keeps the softmax from collapsing onto one key.
  {
    const int hs = 64, keys = 64, trials = 200;
    Rng r(11);
    double sum_sq_raw = 0, max_p_raw = 0, max_p_scaled = 0;
    std::vector<double> s(keys);
    for (int trial = 0; trial < trials; trial++) {
      std::vector<double> qv(hs);
      for (double& x : qv) x = r.normal();
      for (int j = 0; j < keys; j++) {
        double dot = 0;
        for (int c = 0; c < hs; c++) dot += qv[c] * r.normal();
        s[j] = dot;
        sum_sq_raw += dot * dot;
      }
      for (double scale : {1.0, 1 / std::sqrt(double(hs))}) {
        double m = -INFINITY, total = 0;
        for (double x : s) m = std::max(m, x * scale);
        for (double x : s) total += std::exp(x * scale - m);
        (scale == 1.0 ? max_p_raw : max_p_scaled) += 1 / total / trials;  // the largest p is exp(0) / total
      }
    }
    const double std_raw = std::sqrt(sum_sq_raw / (trials * keys));
    std::printf("HS = %d: std of q·k %.2f, of q·k/sqrt(HS) %.2f\n", hs, std_raw, std_raw / std::sqrt(double(hs)));
    std::printf("average largest probability over %d keys: unscaled %.2f, scaled %.2f\n", keys, max_p_raw,
                max_p_scaled);
    check(max_p_raw > 2 * max_p_scaled, "without the scale the softmax is far more peaked");
  }

  std::printf("[fast]\n");
  {
    const int b = 2, t = 150, nh = 4, nkv = 4, hs = 16;
    Rng r(3);
    Tensor fq = random_tensor({b, t, nh, hs}, r), fk = random_tensor({b, t, nkv, hs}, r),
           fv = random_tensor({b, t, nkv, hs}, r);
    Tensor o_fast({b, t, nh, hs}), o_naive({b, t, nh, hs}), a_fast({b, nh, t, t}), a_naive({b, nh, t, t});
    attention_forward(o_fast.ptr(), a_fast.ptr(), fq.ptr(), fk.ptr(), fv.ptr(), b, t, nh, nkv, hs);
    attention_forward_naive(o_naive.ptr(), a_naive.ptr(), fq.ptr(), fk.ptr(), fv.ptr(), b, t, nh, nkv, hs);
    check(max_abs_diff(o_fast, o_naive) < 1e-5, "the blocked kernel agrees with the definition (T = 150)");
    // The blocked kernel computes rows [i0, i1) against keys [0, i1): how much of T×T is that?
    for (int tt : {64, 256, 1024}) {
      long computed = 0;
      for (int i0 = 0; i0 < tt; i0 += 64) computed += (long)std::min(64, tt - i0) * std::min(i0 + 64, tt);
      std::printf("T = %4d: scores computed %.3f of T², needed %.3f\n", tt, double(computed) / tt / tt,
                  double(tt + 1) / (2.0 * tt));
    }
  }

  std::printf("[gradcheck]\n");
  {
    Rng r(5);
    Tensor gq = random_tensor({2, 6, 2, 4}, r), gk = random_tensor({2, 6, 2, 4}, r);
    Tensor gv = random_tensor({2, 6, 2, 4}, r);
    GradCheckOptions options;
    options.step = 1e-2;  // float: a larger step, or rounding swamps the difference
    GradCheckResult result = check_gradients(
        [](Tape& tape, const std::vector<Var>& in) { return causal_attention(tape, in[0], in[1], in[2]); },
        {&gq, &gk, &gv}, {"q", "k", "v"}, options);
    std::printf("checked %zu elements of dq, dk, dv\n", result.checked);
    check(result.passed(1e-2), "float gradient check within 1e-2 (test_model_f64 holds 1e-6 in double)");
  }

  std::printf("[memory]\n");
  {
    // The backward needs every probability: B·NH·T² numbers per layer.
    const long b = 16, nh = 8, t = 256, layers = 4;
    const double mb = double(b * nh * t * t) * sizeof(float) / 1e6;
    std::printf("small config (B 16, NH 8, T 256): %.1f MB of probabilities per layer, %.1f MB for 4 layers\n", mb,
                mb * layers);
    std::printf("at T = 1024 it would be %.1f MB per layer: it grows with T²\n", mb * 16);
  }

  std::printf("%s\n", failures == 0 ? "all checks passed" : "SOME CHECKS FAILED");
  return failures == 0 ? 0 : 1;
}
