// Properties of causal self-attention with GQA in the float build: the mask really masks, the
// attention rows are probability distributions, GQA is MHA with duplicated kv heads, and the
// answer does not depend on the number of threads.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "engine/parallel.h"
#include "engine/rng.h"
#include "model/attention.h"
#include "tests/common/test_helpers.h"

using namespace foundry;

namespace {

using test::random_tensor;

struct Run {
  Tensor out, att, dq, dk, dv;
};

// Forward and backward of the fast kernels with the given output gradient.
Run run(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout) {
  const int B = q.dim(0), T = q.dim(1), NH = q.dim(2), HS = q.dim(3), NKV = k.dim(2);
  Run r{Tensor(q.shape), Tensor({B, NH, T, T}), Tensor(q.shape), Tensor(k.shape), Tensor(v.shape)};
  attention_forward(r.out.ptr(), r.att.ptr(), q.ptr(), k.ptr(), v.ptr(), B, T, NH, NKV, HS);
  attention_backward(r.dq.ptr(), r.dk.ptr(), r.dv.ptr(), dout.ptr(), r.att.ptr(), q.ptr(), k.ptr(), v.ptr(), B, T, NH,
                     NKV, HS);
  return r;
}

}  // namespace

TEST_CASE("the causal mask: changing a later position never changes an earlier output", "[attention]") {
  const int B = 2, T = 100, NH = 4, NKV = 2, HS = 8, t0 = 70;  // t0 sits in the second query block
  Rng rng(1);
  Tensor q = random_tensor({B, T, NH, HS}, rng);
  Tensor k = random_tensor({B, T, NKV, HS}, rng);
  Tensor v = random_tensor({B, T, NKV, HS}, rng);
  Tensor dout(q.shape);
  Run before = run(q, k, v, dout);
  // Change query, key and value of position t0 (in batch row 1 only).
  for (int d = 0; d < HS; d++) {
    for (int h = 0; h < NH; h++) q.at({1, t0, h, d}) += 3;
    for (int g = 0; g < NKV; g++) {
      k.at({1, t0, g, d}) -= 2;
      v.at({1, t0, g, d}) += 5;
    }
  }
  Run after = run(q, k, v, dout);
  double earlier = 0, at_t0 = 0, other_row = 0;
  for (int t = 0; t < T; t++) {
    for (int h = 0; h < NH; h++) {
      for (int d = 0; d < HS; d++) {
        double diff = std::fabs(after.out.at({1, t, h, d}) - before.out.at({1, t, h, d}));
        if (t < t0) earlier = std::max(earlier, diff);
        if (t == t0) at_t0 = std::max(at_t0, diff);
        other_row = std::max(other_row, double(std::fabs(after.out.at({0, t, h, d}) - before.out.at({0, t, h, d}))));
      }
    }
  }
  CHECK(earlier == 0);  // bit for bit: the future is not even read
  CHECK(other_row == 0);
  CHECK(at_t0 > 0.1);  // while position t0 itself does change
}

TEST_CASE("attention rows are probability distributions over the past", "[attention]") {
  const int B = 2, T = 130, NH = 3, NKV = 1, HS = 16;
  Rng rng(2);
  Tensor q = random_tensor({B, T, NH, HS}, rng);
  Tensor k = random_tensor({B, T, NKV, HS}, rng);
  Tensor v = random_tensor({B, T, NKV, HS}, rng);
  // Large scores too: the row maximum is subtracted before exp, so nothing overflows.
  for (real& x : q.data) x *= 30;
  Run r = run(q, k, v, Tensor(q.shape));
  double worst_sum = 0, above = 0, min_p = 1;
  int not_finite = 0;
  for (int b = 0; b < B; b++) {
    for (int h = 0; h < NH; h++) {
      for (int i = 0; i < T; i++) {
        double total = 0;
        for (int j = 0; j < T; j++) {
          real p = r.att.at({b, h, i, j});
          if (!std::isfinite(p)) not_finite++;
          if (j <= i) {
            total += p;
            min_p = std::min(min_p, double(p));
          } else {
            above = std::max(above, double(std::fabs(p)));
          }
        }
        worst_sum = std::max(worst_sum, std::fabs(total - 1));
      }
    }
  }
  CHECK(not_finite == 0);
  CHECK(worst_sum < 1e-5);
  CHECK(above == 0);  // exactly zero probability on the future
  CHECK(min_p >= 0);
  // Row 0 can only look at itself.
  CHECK(r.att.at({0, 0, 0, 0}) == Approx(1.0));
}

TEST_CASE("GQA with NKV = NH is standard multi-head attention", "[attention]") {
  // With one query head per kv head, head h must read kv head h: compare against the
  // definition head by head (naive, whose indexing is plain).
  const int B = 1, T = 20, NH = 4, HS = 8;
  Rng rng(3);
  Tensor q = random_tensor({B, T, NH, HS}, rng);
  Tensor k = random_tensor({B, T, NH, HS}, rng);
  Tensor v = random_tensor({B, T, NH, HS}, rng);
  Run r = run(q, k, v, Tensor(q.shape));
  // Head h alone, as a one-head problem on its own slices.
  double worst = 0;
  for (int h = 0; h < NH; h++) {
    Tensor qh({B, T, 1, HS}), kh({B, T, 1, HS}), vh({B, T, 1, HS}), oh({B, T, 1, HS}), att({B, 1, T, T});
    for (int t = 0; t < T; t++) {
      for (int d = 0; d < HS; d++) {
        qh.at({0, t, 0, d}) = q.at({0, t, h, d});
        kh.at({0, t, 0, d}) = k.at({0, t, h, d});
        vh.at({0, t, 0, d}) = v.at({0, t, h, d});
      }
    }
    attention_forward_naive(oh.ptr(), att.ptr(), qh.ptr(), kh.ptr(), vh.ptr(), B, T, 1, 1, HS);
    for (int t = 0; t < T; t++)
      for (int d = 0; d < HS; d++)
        worst = std::max(worst, double(std::fabs(oh.at({0, t, 0, d}) - r.out.at({0, t, h, d}))));
  }
  CHECK(worst < 1e-5);
}

TEST_CASE("GQA equals MHA with every kv head duplicated for its query heads", "[attention]") {
  const int B = 2, T = 90, NH = 6, NKV = 2, HS = 8, group = NH / NKV;
  Rng rng(4);
  Tensor q = random_tensor({B, T, NH, HS}, rng);
  Tensor k = random_tensor({B, T, NKV, HS}, rng);
  Tensor v = random_tensor({B, T, NKV, HS}, rng);
  Tensor dout = random_tensor(q.shape, rng);
  // k_dup[:, :, h] = k[:, :, h / group]: what GQA does implicitly, done explicitly.
  Tensor k_dup({B, T, NH, HS}), v_dup({B, T, NH, HS});
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      for (int h = 0; h < NH; h++)
        for (int d = 0; d < HS; d++) {
          k_dup.at({b, t, h, d}) = k.at({b, t, h / group, d});
          v_dup.at({b, t, h, d}) = v.at({b, t, h / group, d});
        }
  Run gqa = run(q, k, v, dout);
  Run mha = run(q, k_dup, v_dup, dout);
  CHECK(max_abs_diff(gqa.out, mha.out) < 1e-5);
  CHECK(max_abs_diff(gqa.att, mha.att) < 1e-6);
  CHECK(max_abs_diff(gqa.dq, mha.dq) < 1e-4);
  // The gradient of a shared kv head is the sum of the gradients of its copies.
  double worst_k = 0, worst_v = 0;
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      for (int g = 0; g < NKV; g++)
        for (int d = 0; d < HS; d++) {
          double sum_k = 0, sum_v = 0;
          for (int h = g * group; h < (g + 1) * group; h++) {
            sum_k += mha.dk.at({b, t, h, d});
            sum_v += mha.dv.at({b, t, h, d});
          }
          worst_k = std::max(worst_k, std::fabs(sum_k - gqa.dk.at({b, t, g, d})));
          worst_v = std::max(worst_v, std::fabs(sum_v - gqa.dv.at({b, t, g, d})));
        }
  CHECK(worst_k < 1e-4);
  CHECK(worst_v < 1e-4);
}

TEST_CASE("attention gives the same numbers on 1 thread and on all of them", "[attention]") {
  const int B = 3, T = 70, NH = 4, NKV = 2, HS = 8;
  Rng rng(5);
  Tensor q = random_tensor({B, T, NH, HS}, rng);
  Tensor k = random_tensor({B, T, NKV, HS}, rng);
  Tensor v = random_tensor({B, T, NKV, HS}, rng);
  Tensor dout = random_tensor(q.shape, rng);
  const int threads = num_threads();
  Run many = run(q, k, v, dout);
  set_num_threads(1);
  Run one = run(q, k, v, dout);
  set_num_threads(threads);
  // Each (b, head) pair, and each (b, kv head) group in the backward, is computed by one thread
  // in a fixed order, so the split over threads cannot change a single bit.
  CHECK(max_abs_diff(many.out, one.out) == 0);
  CHECK(max_abs_diff(many.dq, one.dq) == 0);
  CHECK(max_abs_diff(many.dk, one.dk) == 0);
  CHECK(max_abs_diff(many.dv, one.dv) == 0);
}

TEST_CASE("causal_attention rejects shapes that do not fit", "[attention]") {
  Tape tape;
  Tensor q({1, 4, 4, 8}), k3({1, 4, 3, 8}), k2({1, 4, 2, 8}), v_short({1, 3, 2, 8}), flat({4, 32});
  CHECK_THROWS_WITH(causal_attention(tape, tape.input(q), tape.input(k3), tape.input(k3)),
                    Catch::Contains("NKV dividing NH"));
  CHECK_THROWS_WITH(causal_attention(tape, tape.input(q), tape.input(k2), tape.input(v_short)),
                    Catch::Contains("do not fit q"));
  CHECK_THROWS_WITH(causal_attention(tape, tape.input(flat), tape.input(k2), tape.input(k2)),
                    Catch::Contains("must all be 4-D"));
  CHECK_NOTHROW(causal_attention(tape, tape.input(q), tape.input(k2), tape.input(k2)));
}

TEST_CASE("self_attention rejects weights of the wrong shape", "[attention]") {
  const int B = 1, T = 3, C = 8, NH = 2, NKV = 1, HS = C / NH;
  Tensor x({B, T, C}), wq({NH * HS, C}), wk({NKV * HS, C}), wv({NKV * HS, C}), wo({C, NH * HS});
  Tensor wk_mha({NH * HS, C});  // what NKV = NH would need, passed with NKV = 1
  Tensor cos({4, HS / 2}), sin({4, HS / 2});
  Tape tape;
  Var vx = tape.input(x), vq = tape.input(wq), vk = tape.input(wk), vv = tape.input(wv), vo = tape.input(wo);
  CHECK_NOTHROW(self_attention(tape, vx, vq, vk, vv, vo, cos, sin, NH, NKV));
  CHECK_THROWS_WITH(self_attention(tape, vx, vq, tape.input(wk_mha), vv, vo, cos, sin, NH, NKV), Catch::Contains("wk"));
  CHECK_THROWS_WITH(self_attention(tape, vx, vq, vk, vv, vo, cos, sin, NH, 3), Catch::Contains("n_kv_heads = 3"));
  CHECK_THROWS_WITH(self_attention(tape, vx, vq, vk, vv, vk, cos, sin, NH, NKV), Catch::Contains("wo"));
}
