// The checker must be able to say no. Each test here builds a taped op whose backward has one of
// the classic bugs (a dropped term, a wrong sign, = instead of +=, a NaN) and asserts that
// check_gradients rejects it. If one of these ever passes, every other gradient test is worthless.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "engine/ops.h"
#include "tests/engine_f64/helpers.h"

using namespace foundry;
using foundry::test::kGradTol;
using foundry::test::random_tensor;

namespace {

// silu with a broken backward: it keeps the σ(x) term of d/dx [x σ(x)] = σ(x) + x σ(x)(1 − σ(x))
// and drops the second one, the mistake of forgetting that x appears twice in x · σ(x).
Var silu_dropped_term(Tape& tape, Var x) {
  const Tensor& X = tape.value(x);
  Var out = tape.record("silu_dropped_term", {x.id}, X.shape);
  silu_forward(tape.mutable_value(out).ptr(), X.ptr(), X.size());
  tape.set_backward(out, [&tape, x, out] {
    const Tensor& xv = tape.value(x);
    Tensor& dx = tape.grad(x);
    const Tensor& dout = tape.grad(out);
    for (size_t i = 0; i < dx.size(); i++) dx[i] += dout[i] / (1 + std::exp(-xv[i]));  // σ(x) only
  });
  return out;
}

// mul whose backward assigns (=) instead of adding (+=): correct when each input is used once,
// wrong as soon as a value feeds two places.
Var mul_assigns(Tape& tape, Var a, Var b) {
  Var out = tape.record("mul_assigns", {a.id, b.id}, tape.value(a).shape);
  mul_forward(tape.mutable_value(out).ptr(), tape.value(a).ptr(), tape.value(b).ptr(), tape.value(a).size());
  tape.set_backward(out, [&tape, a, b, out] {
    Tensor& da = tape.grad(a);
    Tensor& db = tape.grad(b);
    const Tensor& dout = tape.grad(out);
    for (size_t i = 0; i < dout.size(); i++) da[i] = dout[i] * tape.value(b)[i];
    for (size_t i = 0; i < dout.size(); i++) db[i] = dout[i] * tape.value(a)[i];
  });
  return out;
}

// scale with a sign error in its backward.
Var scale_wrong_sign(Tape& tape, Var x, real s) {
  Var out = tape.record("scale_wrong_sign", {x.id}, tape.value(x).shape);
  for (size_t i = 0; i < tape.value(x).size(); i++) tape.mutable_value(out)[i] = s * tape.value(x)[i];
  tape.set_backward(out, [&tape, x, out, s] {
    for (size_t i = 0; i < tape.grad(x).size(); i++) tape.grad(x)[i] -= s * tape.grad(out)[i];
  });
  return out;
}

// An op whose backward produces NaN.
Var nan_backward(Tape& tape, Var x) {
  Var out = tape.record("nan_backward", {x.id}, tape.value(x).shape);
  tape.mutable_value(out).data = tape.value(x).data;
  tape.set_backward(out, [&tape, x] {
    for (real& g : tape.grad(x).data) g += std::numeric_limits<real>::quiet_NaN();
  });
  return out;
}

}  // namespace

TEST_CASE("the checker rejects a backward that drops a term", "[gradcheck][broken]") {
  Rng rng(21);
  Tensor x = random_tensor({3, 4}, rng, 2.0);
  GradCheckResult good = check_gradients([](Tape& t, const std::vector<Var>& v) { return silu(t, v[0]); }, {&x});
  GradCheckResult bad =
      check_gradients([](Tape& t, const std::vector<Var>& v) { return silu_dropped_term(t, v[0]); }, {&x}, {"x"});
  INFO("correct silu: " << good.str());
  INFO("broken silu:  " << bad.str());
  REQUIRE(good.passed(kGradTol));
  REQUIRE_FALSE(bad.passed(kGradTol));
  // Not a near miss: the dropped term is of the same size as the kept one.
  REQUIRE(bad.max_rel_error > 1e-2);
  // The report names the input and the element it found worst.
  REQUIRE(bad.worst.find("input 0 (x) element") != std::string::npos);
  // The checker restored the input it perturbed.
  Rng again(21);
  Tensor x0 = random_tensor({3, 4}, again, 2.0);
  REQUIRE(max_abs_diff(x, x0) == 0);
}

TEST_CASE("the checker rejects = instead of += when a value is used twice", "[gradcheck][broken]") {
  Rng rng(22);
  Tensor a = random_tensor({2, 3}, rng);
  Tensor b = random_tensor({2, 3}, rng);
  // Used once each, the assigning backward happens to be right...
  GradCheckResult once =
      check_gradients([](Tape& t, const std::vector<Var>& v) { return mul_assigns(t, v[0], v[1]); }, {&a, &b});
  INFO(once.str());
  REQUIRE(once.passed(kGradTol));
  // ...but x ⊙ x must give 2 x dout, and the second assignment overwrites the first.
  GradCheckResult twice =
      check_gradients([](Tape& t, const std::vector<Var>& v) { return mul_assigns(t, v[0], v[0]); }, {&a});
  INFO(twice.str());
  REQUIRE_FALSE(twice.passed(kGradTol));
}

TEST_CASE("the checker rejects a wrong sign", "[gradcheck][broken]") {
  Rng rng(23);
  Tensor x = random_tensor({5}, rng);
  GradCheckResult r =
      check_gradients([](Tape& t, const std::vector<Var>& v) { return scale_wrong_sign(t, v[0], 0.5); }, {&x});
  INFO(r.str());
  REQUIRE_FALSE(r.passed(kGradTol));
  // analytic = -numeric, so the error is |2g| against a denominator |g|: exactly 2.
  CHECK(r.max_rel_error == Approx(2.0));
}

TEST_CASE("the checker rejects NaN gradients", "[gradcheck][broken]") {
  Rng rng(24);
  Tensor x = random_tensor({4}, rng);
  GradCheckResult r = check_gradients([](Tape& t, const std::vector<Var>& v) { return nan_backward(t, v[0]); }, {&x});
  INFO(r.str());
  REQUIRE_FALSE(r.passed(kGradTol));
  REQUIRE(std::isinf(r.max_rel_error));
}

TEST_CASE("a check of nothing does not pass", "[gradcheck]") {
  Tensor empty({0});
  GradCheckResult r = check_gradients([](Tape& t, const std::vector<Var>& v) { return scale(t, v[0], 2.0); }, {&empty});
  REQUIRE(r.checked == 0);
  REQUIRE_FALSE(r.passed(1.0));
}

TEST_CASE("the checker samples large inputs reproducibly", "[gradcheck]") {
  Rng rng(25);
  Tensor a = random_tensor({6, 9}, rng);
  GradCheckOptions opts;
  opts.max_elements = 10;
  auto fwd = [](Tape& t, const std::vector<Var>& v) { return add(t, mul(t, v[0], v[0]), v[0]); };
  GradCheckResult r1 = check_gradients(fwd, {&a}, {}, opts);
  GradCheckResult r2 = check_gradients(fwd, {&a}, {}, opts);
  REQUIRE(r1.checked == 10);
  REQUIRE(r1.passed(kGradTol));
  REQUIRE(r1.worst == r2.worst);  // same seed, same sample, same report
  REQUIRE(r1.max_abs_error == r2.max_abs_error);
}
