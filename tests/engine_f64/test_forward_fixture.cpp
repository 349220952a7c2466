// The double build reproduces the committed forward numbers (tests/engine/forward_suite.h), the
// reference that test_engine holds the float build to.
#include <catch2/catch.hpp>

#include "tests/engine/forward_suite.h"

using namespace foundry;

namespace {
const std::string kFixture = std::string(FOUNDRY_SOURCE_DIR) + "/tests/fixtures/engine/forward_f64.txt";
}

TEST_CASE("the double build reproduces the committed forward fixture", "[forward]") {
  test::Results want = test::read_results(kFixture);
  test::Results got = test::forward_suite();
  REQUIRE(got.size() == want.size());
  for (const auto& [name, values] : got) {
    INFO("case " << name);
    REQUIRE(want.count(name) == 1);
    REQUIRE(values.size() == want[name].size());
    // Only the order of additions may differ (Eigen's blocking depends on the instruction set).
    CHECK(test::relative_difference(values, want[name]) < 1e-12);
  }
}

TEST_CASE("regenerate the forward fixture", "[.regenerate]") {
  test::write_results(test::forward_suite(), kFixture);
  SUCCEED("wrote " << kFixture);
}
