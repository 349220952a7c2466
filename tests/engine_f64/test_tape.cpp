// The tape itself: printing, accumulation, reuse after clear(), and its error messages.
#include <catch2/catch.hpp>

#include "engine/embedding.h"
#include "engine/matmul.h"
#include "engine/ops.h"
#include "engine/softmax.h"
#include "tests/engine_f64/helpers.h"

using namespace foundry;
using Catch::Matchers::Contains;
using foundry::test::random_tensor;

TEST_CASE("Tape::str lists id, op, shape and inputs", "[tape]") {
  Tensor x({2, 3}), w({4, 3}), dw({4, 3});
  Tape tape;
  Var vx = tape.input(x, "x");
  Var vw = tape.param(w, dw, "w");
  Var y = linear(tape, vx, vw);
  Var loss = mean(tape, silu(tape, y));
  (void)loss;
  REQUIRE(tape.size() == 6);
  REQUIRE(tape.str() ==
          "#0 x (2, 3)  (no grad)\n"
          "#1 w (4, 3)\n"
          "#2 linear (2, 4) <- #0 #1\n"
          "#3 silu (2, 4) <- #2\n"
          "#4 sum () <- #3\n"
          "#5 scale () <- #4\n");
  tape.clear();
  REQUIRE(tape.size() == 0);
  REQUIRE(tape.str().empty());
}

TEST_CASE("a node that depends on no param gets no gradient", "[tape]") {
  Tensor x({2, 2}, 1.0);
  Tape tape;
  Var vx = tape.input(x);
  Var y = scale(tape, vx, 3.0);
  REQUIRE_FALSE(tape.needs_grad(y));
  REQUIRE_THROWS_WITH(tape.grad(y), Contains("has no gradient"));
  // backward of something nothing trainable feeds is allowed and does nothing.
  REQUIRE_NOTHROW(tape.backward(y, Tensor({2, 2}, 1.0)));
}

TEST_CASE("param gradients accumulate across backward calls", "[tape]") {
  Tensor w({3}, std::vector<real>{1, 2, 3}), dw({3});
  Tape tape;
  Var loss = sum(tape, mul(tape, tape.param(w, dw), tape.param(w, dw)));  // Σ w², w as two leaves
  tape.backward(loss);
  for (int i = 0; i < 3; i++) REQUIRE(dw[i] == 2 * w[i]);
  tape.backward(loss);  // no zeroing in between: the caller's gradient keeps adding up
  for (int i = 0; i < 3; i++) REQUIRE(dw[i] == 4 * w[i]);
}

TEST_CASE("a tape reused after clear() gives identical results and reuses its buffers", "[tape]") {
  Rng rng(31);
  Tensor table = random_tensor({7, 4}, rng), w = random_tensor({7, 4}, rng);  // (V, C), (V, C)
  Tensor dtable(table.shape), dw(w.shape);
  std::vector<int> ids = {3, 1, 3, 6, 0};
  std::vector<int> targets = {1, 1, 2, 5, 6};
  Tape tape;
  auto step = [&](double& loss_out, Tensor& dtable_out, Tensor& dw_out, const real*& logits_buffer) {
    tape.clear();
    dtable.fill(0);
    dw.fill(0);
    Var x = embedding(tape, tape.param(table, dtable, "table"), ids);  // (N, C)
    Var logits = linear(tape, silu(tape, x), tape.param(w, dw, "w"));  // (N, V)
    logits_buffer = tape.value(logits).ptr();
    Var loss = cross_entropy(tape, logits, targets);
    tape.backward(loss);
    loss_out = tape.value(loss)[0];
    dtable_out = dtable;
    dw_out = dw;
  };
  double loss1, loss2;
  Tensor dtable1, dw1, dtable2, dw2;
  const real *buf1, *buf2;
  step(loss1, dtable1, dw1, buf1);
  std::string listing = tape.str();
  step(loss2, dtable2, dw2, buf2);
  REQUIRE(loss1 == loss2);  // bit for bit: same ops, same order, same buffers
  REQUIRE(max_abs_diff(dtable1, dtable2) == 0);
  REQUIRE(max_abs_diff(dw1, dw2) == 0);
  REQUIRE(buf1 == buf2);  // node outputs live in the same memory from step to step
  REQUIRE(tape.str() == listing);

  // A different, smaller graph on the same tape still computes right: stale nodes and their
  // buffers (larger than needed now) must not leak into it.
  tape.clear();
  Tensor dsmall({2, 2});
  Tensor small({2, 2}, std::vector<real>{1, 2, 3, 4});
  Var s = sum(tape, scale(tape, tape.param(small, dsmall), 2.0));
  tape.backward(s);
  REQUIRE(tape.value(s)[0] == 20);
  for (int i = 0; i < 4; i++) REQUIRE(dsmall[i] == 2);
}

TEST_CASE("a Var from before clear() is rejected, not silently reused", "[tape]") {
  Tensor x({2}, 1.0), dx({2});
  Tape tape;
  Var a = tape.param(x, dx);
  Var b = scale(tape, a, 2.0);
  tape.clear();
  tape.param(x, dx);
  REQUIRE_THROWS_WITH(tape.value(b), Contains("tape has no node 1"));
  REQUIRE_THROWS_WITH(tape.mutable_value(b), Contains("tape has no node 1"));
  REQUIRE_THROWS_AS(scale(tape, b, 2.0), std::out_of_range);
}

TEST_CASE("backward(loss) needs a scalar; a seed must match the output's shape", "[tape]") {
  Tensor x({2, 3}, 1.0), dx({2, 3});
  Tape tape;
  Var y = scale(tape, tape.param(x, dx), 2.0);
  REQUIRE_THROWS_WITH(tape.backward(y), Contains("scalar") && Contains("(2, 3)"));
  REQUIRE_THROWS_WITH(tape.backward(y, Tensor({3, 2})), Contains("(2, 3)") && Contains("(3, 2)"));
  Tensor dx_wrong({3, 2});
  REQUIRE_THROWS_WITH(tape.param(x, dx_wrong, "x"), Contains("'x'") && Contains("(2, 3)") && Contains("(3, 2)"));
}

TEST_CASE("backward passes by a node no gradient reaches; own buffers stay readable and zero", "[tape]") {
  // y = sum(w ⊙ x) is the output; z = sum(w ⊙ w) is recorded before it but not used by it.
  Tensor w({3}, {1, -2, 3}), w_grad({3}), x({3}, {4, 5, 6});
  Tape tape;
  Var vw = tape.param(w, w_grad, "w");
  Var vx = tape.input(x, "x");
  Var ww = mul(tape, vw, vw);
  Var z = sum(tape, ww);
  Var y = sum(tape, mul(tape, vw, vx));
  REQUIRE_THROWS_WITH(tape.grad(ww), Catch::Contains("not held"));  // no buffer before backward
  tape.backward(y);
  REQUIRE(w_grad.data == x.data);  // dy/dw = x; z's branch added nothing
  REQUIRE(tape.grad(z)[0] == 0);
  for (real g : tape.grad(ww).data) REQUIRE(g == 0);
  // The pooled policy gives the same parameter gradient and holds no op gradient afterwards.
  Tensor w_grad2({3});
  Tape pooled;
  pooled.set_reuse_grads(true);
  Var pw = pooled.param(w, w_grad2, "w");
  Var px = pooled.input(x, "x");
  sum(pooled, mul(pooled, pw, pw));
  pooled.backward(sum(pooled, mul(pooled, pw, px)));
  REQUIRE(w_grad2.data == w_grad.data);
  REQUIRE(pooled.grad_pool_numbers() > 0);
}
