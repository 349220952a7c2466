// Gradient checks (double build, 1e-6 relative) of RMSNorm, RoPE, SwiGLU and the feed-forward
// network; each fused op against the same computation composed from engine primitives; and for
// each one a deliberately broken backward that the checker must reject.
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/matmul.h"
#include "engine/ops.h"
#include "model/rmsnorm.h"
#include "model/rope.h"
#include "model/swiglu.h"
#include "tests/model_f64/model_helpers.h"

using namespace foundry;
using namespace foundry::model_test;

namespace {

// ---- test-local ops ---------------------------------------------------------------------------

// y = x^(−1/2) elementwise, dx += dy · (−½) x^(−3/2). The one op the engine lacks for composing
// RMSNorm out of primitives; it gets its own gradient check below.
Var rsqrt_op(Tape& tape, Var x) {
  const Tensor& X = tape.value(x);
  Var out = tape.record("rsqrt", {x.id}, X.shape);
  for (size_t i = 0; i < X.size(); i++) tape.mutable_value(out)[i] = 1 / std::sqrt(X[i]);
  tape.set_backward(out, [&tape, x, out] {
    const Tensor& xv = tape.value(x);
    for (size_t i = 0; i < xv.size(); i++) tape.grad(x)[i] += tape.grad(out)[i] * -0.5 / (xv[i] * std::sqrt(xv[i]));
  });
  return out;
}

// Constant tensors the compositions need; they live as long as the test.
struct Constants {
  Tensor inv_c_col, eps_col, ones_row, ones_col;
};

// RMSNorm from primitives, for x (N, C), w (C): no broadcasting exists, so every broadcast is a
// matmul with a column or row of constants.
Var rmsnorm_composed(Tape& tape, Var x, Var w, real eps, Constants& k) {
  int N = tape.value(x).dim(0), C = tape.value(x).dim(1);
  k.inv_c_col = Tensor({C, 1}, real(1) / C);
  k.eps_col = Tensor({N, 1}, eps);
  k.ones_row = Tensor({1, C}, 1);
  k.ones_col = Tensor({N, 1}, 1);
  Var mean_sq = matmul(tape, mul(tape, x, x), tape.input(k.inv_c_col));         // (N, 1) mean(x²)
  Var r = rsqrt_op(tape, add(tape, mean_sq, tape.input(k.eps_col)));            // (N, 1) rstd
  Var r_wide = matmul(tape, r, tape.input(k.ones_row));                         // (N, C) r in every column
  Var w_wide = matmul(tape, tape.input(k.ones_col), reshape(tape, w, {1, C}));  // (N, C) w in every row
  return mul(tape, mul(tape, x, r_wide), w_wide);
}

// RMSNorm whose backward drops the path through r (the −r³ x (Σ g x)/C term): the classic
// mistake of treating the normalizer as a constant.
Var rmsnorm_dropped_term(Tape& tape, Var x, Var w, real eps) {
  int C = tape.value(w).dim(0);
  int N = static_cast<int>(tape.value(x).size() / C);
  Var out = tape.record("rmsnorm_dropped_term", {x.id, w.id}, tape.value(x).shape);
  Tensor& rstd = tape.saved(out, 0, {N});
  rmsnorm_forward(tape.mutable_value(out).ptr(), rstd.ptr(), tape.value(x).ptr(), tape.value(w).ptr(), N, C, eps);
  tape.set_backward(out, [&tape, x, w, out, N, C] {
    const real* r = tape.node(out.id).saved[0].ptr();
    for (int n = 0; n < N; n++)
      for (int i = 0; i < C; i++) {
        size_t j = (size_t)n * C + i;
        tape.grad(x)[j] += r[n] * tape.grad(out)[j] * tape.value(w)[i];
        tape.grad(w)[i] += tape.grad(out)[j] * tape.value(x)[j] * r[n];
      }
  });
  return out;
}

// RoPE whose backward rotates by +a instead of −a (the forward's rotation again): a sign error.
Var rope_wrong_sign(Tape& tape, Var x, const Tensor& cos, const Tensor& sin) {
  const Tensor& X = tape.value(x);
  int B = X.dim(0), T = X.dim(1), NHX = X.dim(2), HS = X.dim(3);
  Var out = tape.record("rope_wrong_sign", {x.id}, X.shape);
  rope_forward(tape.mutable_value(out).ptr(), X.ptr(), cos.ptr(), sin.ptr(), B, T, NHX, HS, 0);
  tape.set_backward(out, [&tape, x, out, &cos, &sin, B, T, NHX, HS] {
    Tensor rotated(tape.grad(out).shape);
    rope_forward(rotated.ptr(), tape.grad(out).ptr(), cos.ptr(), sin.ptr(), B, T, NHX, HS, 0);
    for (size_t i = 0; i < rotated.size(); i++) tape.grad(x)[i] += rotated[i];
  });
  return out;
}

// SwiGLU whose da forgets that a appears twice in a·σ(a): it keeps σ(a) and drops a σ'(a).
Var swiglu_dropped_term(Tape& tape, Var a, Var b) {
  Var out = tape.record("swiglu_dropped_term", {a.id, b.id}, tape.value(a).shape);
  swiglu_forward(tape.mutable_value(out).ptr(), tape.value(a).ptr(), tape.value(b).ptr(), tape.value(a).size());
  tape.set_backward(out, [&tape, a, b, out] {
    const Tensor& av = tape.value(a);
    const Tensor& bv = tape.value(b);
    for (size_t i = 0; i < av.size(); i++) {
      real sig = 1 / (1 + std::exp(-av[i]));
      tape.grad(a)[i] += tape.grad(out)[i] * bv[i] * sig;
      tape.grad(b)[i] += tape.grad(out)[i] * av[i] * sig;
    }
  });
  return out;
}

// SwiGLU whose db has the wrong sign; used inside a feed-forward network.
Var swiglu_wrong_sign(Tape& tape, Var a, Var b) {
  Var out = tape.record("swiglu_wrong_sign", {a.id, b.id}, tape.value(a).shape);
  swiglu_forward(tape.mutable_value(out).ptr(), tape.value(a).ptr(), tape.value(b).ptr(), tape.value(a).size());
  tape.set_backward(out, [&tape, a, b, out] {
    size_t n = tape.value(a).size();
    Tensor db(tape.value(b).shape);
    swiglu_backward(tape.grad(a).ptr(), db.ptr(), tape.grad(out).ptr(), tape.value(a).ptr(), tape.value(b).ptr(), n);
    for (size_t i = 0; i < n; i++) tape.grad(b)[i] -= db[i];
  });
  return out;
}

// Pair-expanded RoPE tables and the 90° pair rotation J, for RoPE composed from primitives:
// rope(x) = x ⊙ cos_wide + (x·Jᵀ) ⊙ sin_wide, with (Jx)_{2i} = −x_{2i+1}, (Jx)_{2i+1} = x_{2i}.
struct RopeConstants {
  Tensor cos_wide, sin_wide;  // (B, T, NHX, HS)
  Tensor j;                   // (HS, HS)
};

Var rope_composed(Tape& tape, Var x, const Tensor& cos, const Tensor& sin, RopeConstants& k) {
  const Tensor& X = tape.value(x);
  int B = X.dim(0), T = X.dim(1), NHX = X.dim(2), HS = X.dim(3);
  k.cos_wide = Tensor(X.shape);
  k.sin_wide = Tensor(X.shape);
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      for (int h = 0; h < NHX; h++)
        for (int d = 0; d < HS; d++) {
          k.cos_wide.at({b, t, h, d}) = cos.at({t, d / 2});
          k.sin_wide.at({b, t, h, d}) = sin.at({t, d / 2});
        }
  k.j = Tensor({HS, HS});
  for (int i = 0; i < HS / 2; i++) {
    k.j.at({2 * i, 2 * i + 1}) = -1;
    k.j.at({2 * i + 1, 2 * i}) = 1;
  }
  Var turned = linear(tape, x, tape.input(k.j));  // (B, T, NHX, HS): each pair turned by 90°
  return add(tape, mul(tape, x, tape.input(k.cos_wide)), mul(tape, turned, tape.input(k.sin_wide)));
}

struct Tables {
  Tensor cos, sin;
  Tables(int max_seq_len, int HS, double theta) : cos({max_seq_len, HS / 2}), sin({max_seq_len, HS / 2}) {
    rope_tables(cos.ptr(), sin.ptr(), max_seq_len, HS, theta);
  }
};

}  // namespace

// ---- RMSNorm -----------------------------------------------------------------------------------

TEST_CASE("rmsnorm: gradients of x and w within 1e-6", "[model][rmsnorm]") {
  Rng rng(1);
  Tensor x = random_tensor({2, 3, 5}, rng);      // (B, T, C): leading dims flatten to N = 6
  Tensor w = random_tensor({5}, rng, 0.5, 1.0);  // gains around 1, none equal
  require_grads_ok([](Tape& t, const std::vector<Var>& v) { return rmsnorm(t, v[0], v[1], real(1e-5)); }, {&x, &w},
                   {"x", "w"});
}

TEST_CASE("rmsnorm: large eps (the eps term of r matters) still checks", "[model][rmsnorm]") {
  Rng rng(2);
  Tensor x = random_tensor({4, 3}, rng, 0.1);  // mean(x²) ~ 0.01, comparable with eps
  Tensor w = random_tensor({3}, rng, 0.5, 1.0);
  require_grads_ok([](Tape& t, const std::vector<Var>& v) { return rmsnorm(t, v[0], v[1], real(0.01)); }, {&x, &w});
}

TEST_CASE("rmsnorm: fused op equals its composition from primitives", "[model][rmsnorm]") {
  Rng rng(3);
  Tensor x = random_tensor({4, 6}, rng);
  Tensor w = random_tensor({6}, rng, 0.5, 1.0);
  Constants k;
  Tensor r1 = x;  // the rsqrt helper checks on its own first
  for (real& v : r1.data) v = 0.5 + v * v;
  require_grads_ok([](Tape& t, const std::vector<Var>& v) { return rsqrt_op(t, v[0]); }, {&r1});
  require_same_computation(
      [](Tape& t, const std::vector<Var>& v) { return rmsnorm(t, v[0], v[1], real(1e-3)); },
      [&k](Tape& t, const std::vector<Var>& v) { return rmsnorm_composed(t, v[0], v[1], real(1e-3), k); }, {&x, &w});
}

TEST_CASE("rmsnorm: output rows have unit root-mean-square when w = 1", "[model][rmsnorm]") {
  Rng rng(4);
  Tensor x = random_tensor({3, 8}, rng, 5.0);
  Tensor w({8}, 1), y({3, 8}), rstd({3});
  rmsnorm_forward(y.ptr(), rstd.ptr(), x.ptr(), w.ptr(), 3, 8, 0);
  for (int n = 0; n < 3; n++) {
    double ms = 0, xs = 0;
    for (int i = 0; i < 8; i++) ms += y.at({n, i}) * y.at({n, i}), xs += x.at({n, i}) * x.at({n, i});
    REQUIRE(ms / 8 == Approx(1.0).epsilon(1e-12));
    REQUIRE(rstd[n] == Approx(1 / std::sqrt(xs / 8)).epsilon(1e-12));
  }
}

TEST_CASE("rmsnorm: a backward that drops the path through r fails the check", "[model][rmsnorm][broken]") {
  Rng rng(5);
  Tensor x = random_tensor({3, 4}, rng);
  Tensor w = random_tensor({4}, rng, 0.5, 1.0);
  require_grads_broken(
      [](Tape& t, const std::vector<Var>& v) { return rmsnorm_dropped_term(t, v[0], v[1], real(1e-5)); }, {&x, &w});
}

TEST_CASE("rmsnorm: rejects a weight of the wrong size", "[model][rmsnorm]") {
  Tensor x({2, 4}), w({3});
  Tensor dw({3});
  Tape tape;
  REQUIRE_THROWS_WITH(rmsnorm(tape, tape.input(x), tape.param(w, dw), real(1e-5)),
                      Catch::Contains("rmsnorm") && Catch::Contains("(2, 4)") && Catch::Contains("(3)"));
}

// ---- RoPE --------------------------------------------------------------------------------------

TEST_CASE("rope: tables hold cos/sin of pos * theta^(-2i/HS)", "[model][rope]") {
  Tables tab(6, 8, 10000.0);
  for (int pos : {0, 1, 5})
    for (int i = 0; i < 4; i++) {
      double angle = pos * std::pow(10000.0, -2.0 * i / 8);
      REQUIRE(tab.cos.at({pos, i}) == Approx(std::cos(angle)).epsilon(1e-14));
      REQUIRE(tab.sin.at({pos, i}) == Approx(std::sin(angle)).epsilon(1e-14));
    }
  REQUIRE(tab.cos.at({0, 3}) == 1.0);  // position 0 is not rotated
}

TEST_CASE("rope: gradient within 1e-6 (queries with 3 heads, keys with 1)", "[model][rope]") {
  Tables tab(5, 4, 100.0);  // small theta so the slow pairs turn visibly too
  Rng rng(6);
  Tensor q = random_tensor({2, 4, 3, 4}, rng);
  Tensor k = random_tensor({2, 4, 1, 4}, rng);
  require_grads_ok([&](Tape& t, const std::vector<Var>& v) { return rope(t, v[0], tab.cos, tab.sin); }, {&q});
  require_grads_ok([&](Tape& t, const std::vector<Var>& v) { return rope(t, v[0], tab.cos, tab.sin); }, {&k});
}

TEST_CASE("rope: fused op equals x*cos + turn90(x)*sin from primitives", "[model][rope]") {
  Tables tab(5, 6, 50.0);
  Rng rng(7);
  Tensor x = random_tensor({2, 5, 2, 6}, rng);
  RopeConstants k;
  require_same_computation(
      [&](Tape& t, const std::vector<Var>& v) { return rope(t, v[0], tab.cos, tab.sin); },
      [&](Tape& t, const std::vector<Var>& v) { return rope_composed(t, v[0], tab.cos, tab.sin, k); }, {&x});
}

TEST_CASE("rope: in place, and pos0 continues the sequence (the KV-cache path)", "[model][rope]") {
  Tables tab(8, 4, 10000.0);
  Rng rng(8);
  Tensor x = random_tensor({1, 6, 2, 4}, rng);
  Tensor full(x.shape);
  rope_forward(full.ptr(), x.ptr(), tab.cos.ptr(), tab.sin.ptr(), 1, 6, 2, 4, 0);
  Tensor inplace = x;
  rope_forward(inplace.ptr(), inplace.ptr(), tab.cos.ptr(), tab.sin.ptr(), 1, 6, 2, 4, 0);
  REQUIRE(max_abs_diff(full, inplace) == 0);
  // position 4 alone, as a generator with 4 cached positions would rotate it
  Tensor one({1, 1, 2, 4}), rotated({1, 1, 2, 4});
  for (int i = 0; i < 8; i++) one[i] = x[4 * 8 + i];
  rope_forward(rotated.ptr(), one.ptr(), tab.cos.ptr(), tab.sin.ptr(), 1, 1, 2, 4, 4);
  for (int i = 0; i < 8; i++) REQUIRE(rotated[i] == full[4 * 8 + i]);
}

TEST_CASE("rope: the backward undoes the forward (rotation by -a)", "[model][rope]") {
  Tables tab(4, 4, 10000.0);
  Rng rng(9);
  Tensor x = random_tensor({2, 4, 1, 4}, rng);
  Tensor y(x.shape), back(x.shape);
  rope_forward(y.ptr(), x.ptr(), tab.cos.ptr(), tab.sin.ptr(), 2, 4, 1, 4, 0);
  rope_backward(back.ptr(), y.ptr(), tab.cos.ptr(), tab.sin.ptr(), 2, 4, 1, 4, 0);
  REQUIRE(max_abs_diff(back, x) < 1e-14);
  REQUIRE(max_abs_diff(y, x) > 0.1);  // and the forward did rotate something
}

TEST_CASE("rope: a backward with the wrong sign of the angle fails the check", "[model][rope][broken]") {
  Tables tab(4, 4, 100.0);
  Rng rng(10);
  Tensor x = random_tensor({1, 4, 2, 4}, rng);
  require_grads_broken([&](Tape& t, const std::vector<Var>& v) { return rope_wrong_sign(t, v[0], tab.cos, tab.sin); },
                       {&x});
}

TEST_CASE("rope: rejects sequences longer than the tables and odd head sizes", "[model][rope]") {
  Tables tab(4, 4, 10000.0);
  Tape tape;
  Tensor too_long({1, 5, 1, 4}), odd({1, 2, 1, 3});
  REQUIRE_THROWS_WITH(rope(tape, tape.input(too_long), tab.cos, tab.sin), Catch::Contains("max_seq_len"));
  REQUIRE_THROWS_WITH(rope(tape, tape.input(odd), tab.cos, tab.sin), Catch::Contains("even head size"));
}

// ---- SwiGLU and the feed-forward network -------------------------------------------------------

TEST_CASE("swiglu: gradients of gate and up within 1e-6", "[model][swiglu]") {
  Rng rng(11);
  Tensor a = random_tensor({2, 3, 4}, rng, 2.0);  // wide spread: gates closed and open
  Tensor b = random_tensor({2, 3, 4}, rng);
  require_grads_ok([](Tape& t, const std::vector<Var>& v) { return swiglu(t, v[0], v[1]); }, {&a, &b}, {"a", "b"});
}

TEST_CASE("swiglu: fused op equals silu(a) * b from primitives", "[model][swiglu]") {
  Rng rng(12);
  Tensor a = random_tensor({3, 5}, rng, 2.0);
  Tensor b = random_tensor({3, 5}, rng);
  require_same_computation([](Tape& t, const std::vector<Var>& v) { return swiglu(t, v[0], v[1]); },
                           [](Tape& t, const std::vector<Var>& v) { return mul(t, silu(t, v[0]), v[1]); }, {&a, &b});
}

TEST_CASE("swiglu: a backward that drops a*sigma'(a) fails the check", "[model][swiglu][broken]") {
  Rng rng(13);
  Tensor a = random_tensor({2, 4}, rng, 2.0);
  Tensor b = random_tensor({2, 4}, rng);
  require_grads_broken([](Tape& t, const std::vector<Var>& v) { return swiglu_dropped_term(t, v[0], v[1]); }, {&a, &b});
}

TEST_CASE("feed_forward: gradients of x, w1, w3, w2 within 1e-6", "[model][swiglu]") {
  Rng rng(14);
  Tensor x = random_tensor({2, 3, 4}, rng);     // (B, T, C)
  Tensor w1 = random_tensor({6, 4}, rng, 0.5);  // (F, C)
  Tensor w3 = random_tensor({6, 4}, rng, 0.5);  // (F, C)
  Tensor w2 = random_tensor({4, 6}, rng, 0.5);  // (C, F)
  require_grads_ok([](Tape& t, const std::vector<Var>& v) { return feed_forward(t, v[0], v[1], v[2], v[3]); },
                   {&x, &w1, &w3, &w2}, {"x", "w1", "w3", "w2"});
}

TEST_CASE("feed_forward: equals w2(silu(x w1^T) * (x w3^T)) from primitives", "[model][swiglu]") {
  Rng rng(15);
  Tensor x = random_tensor({5, 4}, rng);
  Tensor w1 = random_tensor({6, 4}, rng, 0.5), w3 = random_tensor({6, 4}, rng, 0.5),
         w2 = random_tensor({4, 6}, rng, 0.5);
  require_same_computation([](Tape& t, const std::vector<Var>& v) { return feed_forward(t, v[0], v[1], v[2], v[3]); },
                           [](Tape& t, const std::vector<Var>& v) {
                             return linear(t, mul(t, silu(t, linear(t, v[0], v[1])), linear(t, v[0], v[2])), v[3]);
                           },
                           {&x, &w1, &w3, &w2});
}

TEST_CASE("feed_forward: a wrong sign inside its SwiGLU backward fails the check", "[model][swiglu][broken]") {
  Rng rng(16);
  Tensor x = random_tensor({3, 4}, rng);
  Tensor w1 = random_tensor({6, 4}, rng, 0.5), w3 = random_tensor({6, 4}, rng, 0.5),
         w2 = random_tensor({4, 6}, rng, 0.5);
  require_grads_broken(
      [](Tape& t, const std::vector<Var>& v) {
        return linear(t, swiglu_wrong_sign(t, linear(t, v[0], v[1]), linear(t, v[0], v[2])), v[3]);
      },
      {&x, &w1, &w3, &w2});
}
