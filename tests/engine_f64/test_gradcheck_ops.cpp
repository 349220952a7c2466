// Every op's hand-written backward against central finite differences, in double precision, at
// 1e-6 relative error (engine/gradcheck.h). Shapes are small and odd on purpose: a size of 1, a
// non-square matrix or a prime dimension exposes index mix-ups that square powers of two hide.
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/embedding.h"
#include "engine/matmul.h"
#include "engine/ops.h"
#include "engine/softmax.h"
#include "tests/engine_f64/helpers.h"

using namespace foundry;
using foundry::test::random_tensor;
using foundry::test::require_grads_ok;

TEST_CASE("the double build really is double", "[gradcheck]") {
  REQUIRE(sizeof(real) == 8);
  REQUIRE(std::string(real_name()) == "float64");
}

TEST_CASE("matmul backward matches finite differences", "[gradcheck][matmul]") {
  Rng rng(1);
  SECTION("odd sizes") {
    Tensor a = random_tensor({3, 7}, rng), b = random_tensor({7, 5}, rng);  // (M, K), (K, N)
    require_grads_ok([](Tape& t, const std::vector<Var>& v) { return matmul(t, v[0], v[1]); }, {&a, &b}, {"a", "b"});
  }
  SECTION("sizes of one") {
    Tensor a = random_tensor({1, 4}, rng), b = random_tensor({4, 1}, rng);  // a row times a column
    require_grads_ok([](Tape& t, const std::vector<Var>& v) { return matmul(t, v[0], v[1]); }, {&a, &b});
  }
  SECTION("only one side needs a gradient") {
    // b enters as an input leaf: the backward must skip db (nullptr) and still get da right.
    Tensor a = random_tensor({4, 3}, rng);
    Tensor b = random_tensor({3, 6}, rng);  // (K, N), no gradient
    require_grads_ok(
        [&b](Tape& t, const std::vector<Var>& v) {
          Var vb = t.input(b, "b");
          Var out = matmul(t, v[0], vb);
          REQUIRE_FALSE(t.needs_grad(vb));
          return out;
        },
        {&a});
  }
  SECTION("a matrix times itself (value used twice)") {
    Tensor a = random_tensor({4, 4}, rng);  // out = a · a: both gradient terms land in da
    require_grads_ok([](Tape& t, const std::vector<Var>& v) { return matmul(t, v[0], v[0]); }, {&a});
  }
}

TEST_CASE("linear backward matches finite differences", "[gradcheck][matmul]") {
  Rng rng(2);
  Tensor x = random_tensor({2, 3, 5}, rng);  // (B, T, K): leading dims are flattened to M = 6 rows
  Tensor w = random_tensor({4, 5}, rng);     // (N, K)
  require_grads_ok([](Tape& t, const std::vector<Var>& v) { return linear(t, v[0], v[1]); }, {&x, &w}, {"x", "w"});
}

TEST_CASE("elementwise ops match finite differences", "[gradcheck][ops]") {
  Rng rng(3);
  Tensor a = random_tensor({3, 5}, rng), b = random_tensor({3, 5}, rng);
  SECTION("add") {
    require_grads_ok([](Tape& t, const std::vector<Var>& v) { return add(t, v[0], v[1]); }, {&a, &b});
  }
  SECTION("add(x, x): a value used twice gets 2 dout") {
    require_grads_ok([](Tape& t, const std::vector<Var>& v) { return add(t, v[0], v[0]); }, {&a});
  }
  SECTION("mul") {
    require_grads_ok([](Tape& t, const std::vector<Var>& v) { return mul(t, v[0], v[1]); }, {&a, &b});
  }
  SECTION("mul(x, x): both factors are x, so dx = 2 x dout") {
    require_grads_ok([](Tape& t, const std::vector<Var>& v) { return mul(t, v[0], v[0]); }, {&a});
  }
  SECTION("scale") {
    require_grads_ok([](Tape& t, const std::vector<Var>& v) { return scale(t, v[0], -0.7); }, {&a});
  }
  SECTION("silu, including far into both tails") {
    Tensor x = random_tensor({4, 6}, rng, 4.0);
    x[0] = 30;
    x[1] = -30;
    x[2] = 0;
    require_grads_ok([](Tape& t, const std::vector<Var>& v) { return silu(t, v[0]); }, {&x});
  }
}

TEST_CASE("reductions match finite differences", "[gradcheck][ops]") {
  Rng rng(4);
  Tensor x = random_tensor({2, 3, 4}, rng);
  SECTION("sum") {
    require_grads_ok([](Tape& t, const std::vector<Var>& v) { return sum(t, v[0]); }, {&x});
  }
  SECTION("mean") {
    require_grads_ok([](Tape& t, const std::vector<Var>& v) { return mean(t, v[0]); }, {&x});
  }
}

TEST_CASE("reshapes and transposes match finite differences", "[gradcheck][ops]") {
  Rng rng(5);
  SECTION("reshape") {
    Tensor x = random_tensor({2, 6}, rng);
    require_grads_ok([](Tape& t, const std::vector<Var>& v) { return reshape(t, v[0], {3, 2, 2}); }, {&x});
  }
  SECTION("transpose") {
    Tensor x = random_tensor({3, 5}, rng);
    require_grads_ok([](Tape& t, const std::vector<Var>& v) { return transpose(t, v[0]); }, {&x});
  }
  SECTION("swap_axes12: (B, T, NH, HS) -> (B, NH, T, HS)") {
    Tensor x = random_tensor({2, 3, 4, 5}, rng);
    require_grads_ok([](Tape& t, const std::vector<Var>& v) { return swap_axes12(t, v[0]); }, {&x});
  }
  SECTION("a transpose used with its source: x + transpose(transpose(x))") {
    Tensor x = random_tensor({3, 4}, rng);
    require_grads_ok([](Tape& t, const std::vector<Var>& v) { return add(t, v[0], transpose(t, transpose(t, v[0]))); },
                     {&x});
  }
}

TEST_CASE("embedding backward scatter-adds, so repeated ids accumulate", "[gradcheck][embedding]") {
  Rng rng(6);
  Tensor table = random_tensor({5, 3}, rng);  // (V, C)
  SECTION("distinct ids") {
    std::vector<int> ids = {4, 0, 2};
    require_grads_ok([&ids](Tape& t, const std::vector<Var>& v) { return embedding(t, v[0], ids); }, {&table});
  }
  SECTION("repeated ids, and rows never used (their gradient must stay zero)") {
    std::vector<int> ids = {1, 3, 1, 1, 0, 3};
    require_grads_ok([&ids](Tape& t, const std::vector<Var>& v) { return embedding(t, v[0], ids); }, {&table});
    // And directly: with dout = 1 everywhere, row r's gradient is the number of times r occurs.
    Tape tape;
    Tensor dtable({5, 3});
    Var out = embedding(tape, tape.param(table, dtable), ids);
    tape.backward(out, Tensor({6, 3}, 1.0));
    for (int c = 0; c < 3; c++) {
      CHECK(dtable.at({0, c}) == 1);
      CHECK(dtable.at({1, c}) == 3);
      CHECK(dtable.at({2, c}) == 0);
      CHECK(dtable.at({3, c}) == 2);
      CHECK(dtable.at({4, c}) == 0);
    }
  }
}

TEST_CASE("softmax and log-softmax match finite differences", "[gradcheck][softmax]") {
  Rng rng(7);
  Tensor x = random_tensor({2, 3, 5}, rng, 2.0);  // rank 3: rows are the last dimension
  SECTION("softmax") {
    require_grads_ok([](Tape& t, const std::vector<Var>& v) { return softmax(t, v[0]); }, {&x});
  }
  SECTION("log_softmax") {
    require_grads_ok([](Tape& t, const std::vector<Var>& v) { return log_softmax(t, v[0]); }, {&x});
  }
  SECTION("a single column: softmax is the constant 1, its gradient 0") {
    Tensor one = random_tensor({4, 1}, rng);
    require_grads_ok([](Tape& t, const std::vector<Var>& v) { return softmax(t, v[0]); }, {&one});
  }
}

TEST_CASE("cross-entropy matches finite differences", "[gradcheck][softmax]") {
  Rng rng(8);
  SECTION("ordinary logits, a repeated target") {
    Tensor logits = random_tensor({4, 7}, rng, 2.0);  // (N, V)
    std::vector<int> targets = {3, 0, 6, 3};
    require_grads_ok([&targets](Tape& t, const std::vector<Var>& v) { return cross_entropy(t, v[0], targets); },
                     {&logits});
  }
  SECTION("leading dims are flattened into rows") {
    Tensor logits = random_tensor({2, 3, 5}, rng);  // (B, T, V) -> N = 6 rows
    std::vector<int> targets = {0, 1, 2, 3, 4, 0};
    require_grads_ok([&targets](Tape& t, const std::vector<Var>& v) { return cross_entropy(t, v[0], targets); },
                     {&logits});
  }
  SECTION("a scaled loss: dloss != 1 reaches the logits") {
    Tensor logits = random_tensor({3, 4}, rng);
    std::vector<int> targets = {1, 2, 3};
    require_grads_ok(
        [&targets](Tape& t, const std::vector<Var>& v) { return scale(t, cross_entropy(t, v[0], targets), 2.5); },
        {&logits});
  }
}

TEST_CASE("cross-entropy stays finite and correct for logits around +-1e4", "[gradcheck][softmax]") {
  Rng rng(9);
  const int N = 4, V = 6;
  Tensor small = random_tensor({N, V}, rng);  // (N, V) ordinary logits
  std::vector<int> targets = {2, 5, 0, 2};
  // Shift every row by +-1e4. Softmax and cross-entropy are unchanged by adding a constant to a
  // row, so loss and gradient must equal those of the small logits. A naive exp(1e4) is inf.
  Tensor big = small;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < V; j++) big.at({i, j}) += (i % 2 ? -1e4 : 1e4);

  auto loss_and_grad = [](const Tensor& logits, const std::vector<int>& ids, Tensor& dlogits) {
    Tape tape;
    dlogits = Tensor(logits.shape);
    Var loss = cross_entropy(tape, tape.param(logits, dlogits), ids);
    tape.backward(loss);
    return tape.value(loss)[0];
  };
  Tensor d_small, d_big;
  double l_small = loss_and_grad(small, targets, d_small);
  double l_big = loss_and_grad(big, targets, d_big);
  REQUIRE(std::isfinite(l_big));
  CHECK(l_big == Approx(l_small).epsilon(1e-9));
  REQUIRE(max_abs_diff(d_big, d_small) < 1e-12);

  // Spread-out logits (1e4 apart within a row): the loss is a huge but finite number and the
  // gradient is a clean one-hot difference, never NaN.
  Tensor spread({1, 3}, std::vector<real>{1e4, -1e4, 0});
  Tensor d_spread;
  double l_spread = loss_and_grad(spread, {2}, d_spread);  // target 2 (value 0) vs max 1e4
  REQUIRE(std::isfinite(l_spread));
  CHECK(l_spread == Approx(1e4).epsilon(1e-12));
  CHECK(d_spread[0] == Approx(1.0));  // p = 1 on the max
  CHECK(d_spread[1] == Approx(0.0));
  CHECK(d_spread[2] == Approx(-1.0));  // the one-hot term of the target

  // And the finite-difference check itself at +-1e4, with the default step. This needs the
  // forward to compute (m - x_t) + log z rather than m + log z - x_t: the latter rounds at the
  // scale of 1e4 (about 2e-12), which a step of 1e-5 turns into a gradient error near 1e-7.
  require_grads_ok([&targets](Tape& t, const std::vector<Var>& v) { return cross_entropy(t, v[0], targets); }, {&big});
}

TEST_CASE("a small network: every op chained, weights used twice", "[gradcheck]") {
  // embedding -> linear -> silu -> mul with itself -> linear with the tied embedding table
  // -> log_softmax ... and cross-entropy. The table is used twice (tied weights), so its
  // gradient is the sum of the embedding scatter and the output projection.
  Rng rng(10);
  Tensor table = random_tensor({6, 4}, rng, 0.5);  // (V, C)
  Tensor w1 = random_tensor({5, 4}, rng, 0.5);     // (F, C)
  Tensor w2 = random_tensor({4, 5}, rng, 0.5);     // (C, F)
  std::vector<int> ids = {1, 4, 1, 0, 5};
  std::vector<int> targets = {4, 1, 0, 5, 1};
  require_grads_ok(
      [&](Tape& t, const std::vector<Var>& v) {
        Var x = embedding(t, v[0], ids);         // (N, C)
        Var h = silu(t, linear(t, x, v[1]));     // (N, F)
        Var h2 = add(t, h, mul(t, h, h));        // (N, F) h used three times
        Var y = add(t, x, linear(t, h2, v[2]));  // (N, C) residual
        Var logits = linear(t, y, v[0]);         // (N, V) tied to the embedding table
        return cross_entropy(t, logits, targets);
      },
      {&table, &w1, &w2}, {"table", "w1", "w2"});
}
