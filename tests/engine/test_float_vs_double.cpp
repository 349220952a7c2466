// The float build computes what the double build computes: every op's forward on the fixed
// inputs of tests/engine/forward_suite.h, against the double build's numbers committed in
// tests/fixtures/engine/forward_f64.txt (test_engine_f64 checks that the double build still
// produces them).
#include <catch2/catch.hpp>

#include "tests/engine/forward_suite.h"

using namespace foundry;

TEST_CASE("the float build's forward agrees with the double build's", "[forward][float_vs_double]") {
  REQUIRE(sizeof(real) == 4);
  test::Results want = test::read_results(std::string(FOUNDRY_SOURCE_DIR) + "/tests/fixtures/engine/forward_f64.txt");
  test::Results got = test::forward_suite();
  REQUIRE(got.size() == want.size());
  for (const auto& [name, values] : got) {
    INFO("case " << name);
    REQUIRE(want.count(name) == 1);
    REQUIRE(values.size() == want[name].size());
    double rel = test::relative_difference(values, want[name]);
    INFO("norm-wise relative difference " << rel);
    // Float has 24 bits (6e-8); sums of a few hundred terms and exp/log lose a little more.
    CHECK(rel < 1e-5);
  }
}
