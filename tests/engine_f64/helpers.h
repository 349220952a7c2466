// Small helpers shared by the double-precision engine tests.
#pragma once

#include <catch2/catch.hpp>

#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "tests/common/test_helpers.h"

namespace foundry {
namespace test {

// The tolerance every backward is held to in the double build.
constexpr double kGradTol = 1e-6;

// Runs the checker and asserts it passed, printing its report on failure.
inline GradCheckResult require_grads_ok(const GradCheckFn& forward, std::vector<Tensor*> inputs,
                                        const std::vector<std::string>& names = {}, GradCheckOptions options = {}) {
  GradCheckResult r = check_gradients(forward, inputs, names, options);
  INFO(r.str());
  REQUIRE(r.checked > 0);
  REQUIRE(r.passed(kGradTol));
  return r;
}

}  // namespace test
}  // namespace foundry
