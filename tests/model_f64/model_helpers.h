// Helpers shared by the double-precision model tests: seeded random tensors, the gradient-check
// assertion, and a side-by-side comparison of two implementations of the same computation.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "engine/tape.h"
#include "engine/tensor.h"
#include "tests/common/test_helpers.h"

namespace foundry {
namespace model_test {

// The tolerance every backward is held to in the double build.
constexpr double kGradTol = 1e-6;
// A sabotaged backward must miss by far more than rounding: we require it to fail by this much.
constexpr double kBrokenAtLeast = 1e-3;

using test::random_tensor;

// Runs the checker and asserts it passed, printing its report either way on failure.
inline GradCheckResult require_grads_ok(const GradCheckFn& forward, std::vector<Tensor*> inputs,
                                        const std::vector<std::string>& names = {}) {
  GradCheckResult r = check_gradients(forward, inputs, names);
  INFO(r.str());
  REQUIRE(r.checked > 0);
  REQUIRE(r.passed(kGradTol));
  return r;
}

// Asserts the checker REJECTS a computation (used on deliberately broken backwards).
inline GradCheckResult require_grads_broken(const GradCheckFn& forward, std::vector<Tensor*> inputs) {
  GradCheckResult r = check_gradients(forward, inputs);
  INFO(r.str());
  REQUIRE(r.checked > 0);
  REQUIRE(r.max_rel_error > kBrokenAtLeast);
  return r;
}

// Runs `fa` and `fb` on the same inputs, seeds both outputs with the same random probe, and
// requires equal outputs and equal gradients for every input (to `tol`, relative to the size
// of the numbers). This is how a fused op is checked against its composition from primitives.
inline void require_same_computation(const GradCheckFn& fa, const GradCheckFn& fb, std::vector<Tensor*> inputs,
                                     double tol = 1e-12) {
  auto run = [&](const GradCheckFn& f, Tensor& out, std::vector<Tensor>& grads) {
    Tape tape;
    grads.clear();
    for (Tensor* x : inputs) grads.emplace_back(x->shape, 0);
    std::vector<Var> leaves;
    for (size_t k = 0; k < inputs.size(); k++) leaves.push_back(tape.param(*inputs[k], grads[k]));
    Var y = f(tape, leaves);
    out = tape.value(y);
    Rng rng(7);
    Tensor probe = random_tensor(out.shape, rng);
    tape.backward(y, probe);
  };
  Tensor out_a, out_b;
  std::vector<Tensor> grads_a, grads_b;
  run(fa, out_a, grads_a);
  run(fb, out_b, grads_b);
  REQUIRE(out_a.shape == out_b.shape);
  auto scale_of = [](const Tensor& t) {
    double m = 1e-30;
    for (real v : t.data) m = std::max(m, std::fabs(double(v)));
    return m;
  };
  INFO("outputs differ by " << max_abs_diff(out_a, out_b));
  REQUIRE(max_abs_diff(out_a, out_b) <= tol * scale_of(out_a));
  for (size_t k = 0; k < inputs.size(); k++) {
    INFO("gradient of input " << k << " differs by " << max_abs_diff(grads_a[k], grads_b[k]));
    REQUIRE(scale_of(grads_a[k]) > 1e-20);  // a zero gradient would make the comparison vacuous
    REQUIRE(max_abs_diff(grads_a[k], grads_b[k]) <= tol * scale_of(grads_a[k]));
  }
}

}  // namespace model_test
}  // namespace foundry
