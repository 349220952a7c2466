// The masked cross-entropy (engine/masked_loss.h) in double precision: its hand-derived backward
// against finite differences, two broken twins the check must reject, and the exact zero of a
// masked-out row's gradient.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "engine/masked_loss.h"
#include "engine/ops.h"
#include "engine/softmax.h"
#include "tests/engine_f64/helpers.h"

using namespace foundry;
using foundry::test::kGradTol;
using foundry::test::random_tensor;
using foundry::test::require_grads_ok;

namespace {

// The mutation "forgot the mask in the backward": every row pulls on its logits, as the plain
// cross-entropy would, but the loss still counts only the unmasked rows.
Var masked_ce_unmasked_backward(Tape& tape, Var logits, const std::vector<int>& targets,
                                const std::vector<uint8_t>& mask) {
  const Tensor& x = tape.value(logits);
  const int V = x.dim(-1), N = static_cast<int>(x.size() / V);
  Var out = tape.record("masked_ce_unmasked_backward", {logits.id}, {});
  Tensor& probs = tape.saved(out, 0, {N, V});
  tape.mutable_value(out)[0] = masked_cross_entropy_forward(probs.ptr(), x.ptr(), targets.data(), mask.data(), N, V);
  tape.set_backward(out, [&tape, logits, out, targets, mask, N, V] {
    std::vector<uint8_t> all(N, 1);
    Tensor p({N, V});
    softmax_forward(p.ptr(), tape.value(logits).ptr(), N, V);
    size_t M = 0;
    for (uint8_t m : mask) M += m;
    for (int i = 0; i < N; i++) {
      for (int j = 0; j < V; j++) tape.grad(logits)[(size_t)i * V + j] += p[(size_t)i * V + j] * tape.grad(out)[0] / M;
      tape.grad(logits)[(size_t)i * V + targets[i]] -= tape.grad(out)[0] / M;
    }
  });
  return out;
}

// The mutation "divided by N instead of M": right direction, wrong size whenever a row is masked.
Var masked_ce_mean_over_all(Tape& tape, Var logits, const std::vector<int>& targets, const std::vector<uint8_t>& mask) {
  const Tensor& x = tape.value(logits);
  const int V = x.dim(-1), N = static_cast<int>(x.size() / V);
  Var out = tape.record("masked_ce_mean_over_all", {logits.id}, {});
  Tensor& probs = tape.saved(out, 0, {N, V});
  tape.mutable_value(out)[0] = masked_cross_entropy_forward(probs.ptr(), x.ptr(), targets.data(), mask.data(), N, V);
  tape.set_backward(out, [&tape, logits, out, targets, mask, N, V] {
    size_t M = 0;
    for (uint8_t m : mask) M += m;
    const real scale = tape.grad(out)[0] * static_cast<real>(M) / N;  // (dloss / N) · M, then / M below
    masked_cross_entropy_backward(tape.grad(logits).ptr(), tape.node(out.id).saved[0].ptr(), targets.data(),
                                  mask.data(), scale, N, V);
  });
  return out;
}

const std::vector<int> kTargets = {3, 0, 6, 3, 1, 2};
const std::vector<uint8_t> kMask = {0, 1, 1, 0, 1, 0};

}  // namespace

TEST_CASE("masked cross-entropy matches finite differences", "[gradcheck][masked]") {
  Rng rng(21);
  SECTION("rows masked in the middle and at both ends, dloss != 1") {
    Tensor logits = random_tensor({2, 3, 7}, rng, 2.0);  // (B, T, V) -> N = 6 rows
    require_grads_ok(
        [](Tape& t, const std::vector<Var>& v) {
          return scale(t, masked_cross_entropy(t, v[0], kTargets, kMask), 1.7);
        },
        {&logits});
  }
  SECTION("every row counts: the plain cross-entropy, bit for bit") {
    Tensor logits = random_tensor({6, 7}, rng);
    std::vector<uint8_t> all(6, 1);
    require_grads_ok(
        [&all](Tape& t, const std::vector<Var>& v) { return masked_cross_entropy(t, v[0], kTargets, all); }, {&logits});
    Tape a, b;
    Tensor ga({6, 7}), gb({6, 7});
    Var la = masked_cross_entropy(a, a.param(logits, ga), kTargets, all);
    Var lb = cross_entropy(b, b.param(logits, gb), kTargets);
    a.backward(la);
    b.backward(lb);
    CHECK(a.value(la)[0] == Approx(b.value(lb)[0]).epsilon(1e-14));
    CHECK(max_abs_diff(ga, gb) < 1e-15);
  }
}

TEST_CASE("masked cross-entropy: a masked-out row's gradient is exactly zero", "[masked]") {
  Rng rng(22);
  Tensor logits = random_tensor({6, 7}, rng, 3.0);
  Tensor grad({6, 7});
  Tape tape;
  Var loss = masked_cross_entropy(tape, tape.param(logits, grad), kTargets, kMask);
  tape.backward(loss);
  for (int i = 0; i < 6; i++) {
    double row_abs = 0;
    for (int j = 0; j < 7; j++) row_abs += std::abs(grad.at({i, j}));
    if (kMask[i]) {
      CHECK(row_abs > 0);
    } else {
      CHECK(row_abs == 0.0);  // exactly: no term of a masked row is ever computed
    }
  }
  // The loss ignores masked rows: changing their logits (or their targets) changes nothing.
  Tensor other = logits;
  for (int j = 0; j < 7; j++) other.at({0, j}) += 5.0 * j;
  std::vector<int> other_targets = kTargets;
  other_targets[3] = -1;  // never read
  Tape t2;
  Tensor g2({6, 7});
  Var l2 = masked_cross_entropy(t2, t2.param(other, g2), other_targets, kMask);
  CHECK(t2.value(l2)[0] == tape.value(loss)[0]);
  // No target at all: loss 0, no gradient, no NaN.
  Tape t3;
  Tensor g3({6, 7});
  Var l3 = masked_cross_entropy(t3, t3.param(logits, g3), kTargets, std::vector<uint8_t>(6, 0));
  t3.backward(l3);
  CHECK(t3.value(l3)[0] == 0.0);
  CHECK(max_abs_diff(g3, Tensor({6, 7})) == 0.0);
}

TEST_CASE("masked cross-entropy: the mutations are caught", "[gradcheck][masked]") {
  Rng rng(23);
  Tensor logits = random_tensor({6, 7}, rng, 2.0);
  SECTION("a backward that unmasks the masked rows fails the gradient check and the zero test") {
    auto r = check_gradients(
        [](Tape& t, const std::vector<Var>& v) { return masked_ce_unmasked_backward(t, v[0], kTargets, kMask); },
        {&logits});
    INFO(r.str());
    CHECK_FALSE(r.passed(kGradTol));
    Tensor grad({6, 7});
    Tape tape;
    tape.backward(masked_ce_unmasked_backward(tape, tape.param(logits, grad), kTargets, kMask));
    double masked_row = 0;
    for (int j = 0; j < 7; j++) masked_row += std::abs(grad.at({0, j}));
    CHECK(masked_row > 0);
  }
  SECTION("a backward that averages over all N rows fails the gradient check") {
    auto r = check_gradients(
        [](Tape& t, const std::vector<Var>& v) { return masked_ce_mean_over_all(t, v[0], kTargets, kMask); },
        {&logits});
    INFO(r.str());
    CHECK_FALSE(r.passed(kGradTol));
  }
}

TEST_CASE("masked cross-entropy: bad input is refused with the reason", "[masked]") {
  Tape tape;
  Tensor logits({2, 3}), grad({2, 3});
  Var x = tape.param(logits, grad);
  CHECK_THROWS_WITH(masked_cross_entropy(tape, x, {0}, {1, 1}), Catch::Contains("1 targets and 2 mask entries"));
  CHECK_THROWS_WITH(masked_cross_entropy(tape, x, {0, 3}, {1, 1}), Catch::Contains("target 3 at row 1"));
  CHECK_NOTHROW(masked_cross_entropy(tape, x, {0, 3}, {1, 0}));  // a masked row's target is not read
}

namespace {

// The mutation "forgot the weights in the backward": every row of positive weight pulls as if its
// weight were 1 (the masked backward over w_i > 0), while the loss is the weighted one.
Var weighted_ce_unweighted_backward(Tape& tape, Var logits, const std::vector<int>& targets,
                                    const std::vector<real>& weight) {
  const Tensor& x = tape.value(logits);
  const int V = x.dim(-1), N = static_cast<int>(x.size() / V);
  Var out = tape.record("weighted_ce_unweighted_backward", {logits.id}, {});
  Tensor& probs = tape.saved(out, 0, {N, V});
  tape.mutable_value(out)[0] =
      weighted_cross_entropy_forward(probs.ptr(), x.ptr(), targets.data(), weight.data(), N, V);
  tape.set_backward(out, [&tape, logits, out, targets, weight, N, V] {
    std::vector<uint8_t> mask(N);
    for (int i = 0; i < N; i++) mask[i] = weight[i] > 0;
    masked_cross_entropy_backward(tape.grad(logits).ptr(), tape.node(out.id).saved[0].ptr(), targets.data(),
                                  mask.data(), tape.grad(out)[0], N, V);
  });
  return out;
}

// The mutation "divided by the count of weighted rows instead of the sum of the weights".
Var weighted_ce_mean_over_count(Tape& tape, Var logits, const std::vector<int>& targets,
                                const std::vector<real>& weight) {
  const Tensor& x = tape.value(logits);
  const int V = x.dim(-1), N = static_cast<int>(x.size() / V);
  Var out = tape.record("weighted_ce_mean_over_count", {logits.id}, {});
  Tensor& probs = tape.saved(out, 0, {N, V});
  tape.mutable_value(out)[0] =
      weighted_cross_entropy_forward(probs.ptr(), x.ptr(), targets.data(), weight.data(), N, V);
  tape.set_backward(out, [&tape, logits, out, targets, weight, N, V] {
    double W = 0, M = 0;
    for (real w : weight) W += w, M += w > 0;
    weighted_cross_entropy_backward(tape.grad(logits).ptr(), tape.node(out.id).saved[0].ptr(), targets.data(),
                                    weight.data(), static_cast<real>(tape.grad(out)[0] * W / M), N, V);
  });
  return out;
}

const std::vector<real> kWeights = {0, 1, 3, 0, 0.5, 0};

}  // namespace

TEST_CASE("weighted cross-entropy matches finite differences", "[gradcheck][masked]") {
  Rng rng(24);
  Tensor logits = random_tensor({2, 3, 7}, rng, 2.0);
  require_grads_ok(
      [](Tape& t, const std::vector<Var>& v) {
        return scale(t, weighted_cross_entropy(t, v[0], kTargets, kWeights), 1.3);
      },
      {&logits});
}

TEST_CASE("weighted cross-entropy: weights 0/1 are the masked loss; weight 0 gives exactly zero gradient", "[masked]") {
  Rng rng(25);
  Tensor logits = random_tensor({6, 7}, rng, 3.0);
  std::vector<real> bits(kMask.begin(), kMask.end());
  Tape a, b;
  Tensor ga({6, 7}), gb({6, 7});
  Var la = weighted_cross_entropy(a, a.param(logits, ga), kTargets, bits);
  Var lb = masked_cross_entropy(b, b.param(logits, gb), kTargets, kMask);
  a.backward(la);
  b.backward(lb);
  CHECK(a.value(la)[0] == Approx(b.value(lb)[0]).epsilon(1e-14));
  CHECK(max_abs_diff(ga, gb) < 1e-15);

  Tape t;
  Tensor g({6, 7});
  Var l = weighted_cross_entropy(t, t.param(logits, g), kTargets, kWeights);
  t.backward(l);
  for (int i = 0; i < 6; i++) {
    double row_abs = 0;
    for (int j = 0; j < 7; j++) row_abs += std::abs(g.at({i, j}));
    if (kWeights[i] > 0) {
      CHECK(row_abs > 0);
    } else {
      CHECK(row_abs == 0.0);  // exactly
    }
  }
  // A weighted mean: scaling every weight changes neither the loss nor the gradient.
  std::vector<real> doubled = kWeights;
  for (real& w : doubled) w *= 2;
  Tape t2;
  Tensor g2({6, 7});
  Var l2 = weighted_cross_entropy(t2, t2.param(logits, g2), kTargets, doubled);
  t2.backward(l2);
  CHECK(t2.value(l2)[0] == Approx(t.value(l)[0]).epsilon(1e-14));
  CHECK(max_abs_diff(g, g2) < 1e-15);
  CHECK_THROWS_WITH(weighted_cross_entropy(t2, t2.param(logits, g2), kTargets, {0, 1, -1, 0, 1, 0}),
                    Catch::Contains("weight -1"));
}

TEST_CASE("weighted cross-entropy: the mutations are caught", "[gradcheck][masked]") {
  Rng rng(26);
  Tensor logits = random_tensor({6, 7}, rng, 2.0);
  SECTION("a backward that ignores the weights") {
    auto r = check_gradients(
        [](Tape& t, const std::vector<Var>& v) { return weighted_ce_unweighted_backward(t, v[0], kTargets, kWeights); },
        {&logits});
    INFO(r.str());
    CHECK_FALSE(r.passed(kGradTol));
  }
  SECTION("a backward that divides by the count instead of the total weight") {
    auto r = check_gradients(
        [](Tape& t, const std::vector<Var>& v) { return weighted_ce_mean_over_count(t, v[0], kTargets, kWeights); },
        {&logits});
    INFO(r.str());
    CHECK_FALSE(r.passed(kGradTol));
  }
}
