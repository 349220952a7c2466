// fast_exp (engine/fast_exp.h), the vectorizable exponential of the float build, against its
// naive twin std::exp: within 2 ulp over the whole range the model uses, exact at 0, the right
// limits at both ends, NaN passed through.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "engine/fast_exp.h"

using namespace foundry;

TEST_CASE("fast_exp: within 2 ulp of std::exp from -87 to 88", "[fast_exp]") {
  double worst_ulp = 0, worst_x = 0;
  for (double x = -87.0; x < 88.0; x += 1.0 / 1024 + 1e-7) {  // ~180k points, not on a grid of ln 2
    const float xf = static_cast<float>(x);
    const double exact = std::exp(static_cast<double>(xf));
    const float rounded = static_cast<float>(exact);
    const double ulp = std::nextafter(rounded, std::numeric_limits<float>::infinity()) - rounded;
    const double err = std::fabs(double(fast_exp_float(xf)) - exact) / ulp;
    if (err > worst_ulp) worst_ulp = err, worst_x = xf;
  }
  INFO("worst error " << worst_ulp << " ulp at x = " << worst_x);
  REQUIRE(worst_ulp < 2.0);
}

TEST_CASE("fast_exp: limits, zero and NaN", "[fast_exp]") {
  REQUIRE(fast_exp_float(0.0f) == 1.0f);
  REQUIRE(fast_exp_float(-1e4f) == 0.0f);  // a softmax's masked or far-below-max entries
  REQUIRE(fast_exp_float(-88.0f) == 0.0f);
  REQUIRE(std::isinf(fast_exp_float(100.0f)));
  REQUIRE(std::isinf(fast_exp_float(std::numeric_limits<float>::infinity())));
  REQUIRE(fast_exp_float(-std::numeric_limits<float>::infinity()) == 0.0f);
  REQUIRE(std::isnan(fast_exp_float(std::nanf(""))));
  // the double overload is std::exp itself (the gradient checks' build)
  REQUIRE(fast_exp(0.5) == std::exp(0.5));
}

TEST_CASE("fast_exp: a loop of them gives the same numbers as one at a time", "[fast_exp]") {
  // The vectorized loop and a scalar call must agree bit for bit: same arithmetic, same order.
  float in[37], out[37];
  for (int i = 0; i < 37; i++) in[i] = -20.0f + 1.1f * i;
  for (int i = 0; i < 37; i++) out[i] = fast_exp(in[i]);
  for (int i = 0; i < 37; i++) {
    volatile float x = in[i];  // volatile: computed alone, not in a vector
    REQUIRE(out[i] == fast_exp_float(x));
  }
}

// Every input is defined behaviour: the sanitizer build (-fsanitize=undefined) runs this test and
// fails on a NaN converted to an integer or a negative number shifted, which is what an unclamped
// NaN or a huge value would reach.
TEST_CASE("fast_exp: NaN, infinities and huge values give the right answer, defined", "[fast_exp]") {
  const float inf = std::numeric_limits<float>::infinity(), big = std::numeric_limits<float>::max();
  const float nans[] = {std::nanf(""), -std::nanf(""), std::numeric_limits<float>::signaling_NaN(), inf - inf};
  for (float x : nans) REQUIRE(std::isnan(fast_exp_float(x)));
  for (float x : {88.5f, 1e10f, 1e30f, big, inf}) {
    INFO("x = " << x);
    REQUIRE(fast_exp_float(x) == inf);
  }
  for (float x : {-87.5f, -1e10f, -1e30f, -big, -inf}) {
    INFO("x = " << x);
    REQUIRE(fast_exp_float(x) == 0.0f);
  }
  const float tiny = std::numeric_limits<float>::denorm_min();
  for (float x : {tiny, -tiny, -0.0f}) REQUIRE(fast_exp_float(x) == 1.0f);
  // and in a vectorized loop, NaN and huge values mixed with ordinary ones, as in a softmax row
  // of a diverged model
  float in[40], out[40];
  for (int i = 0; i < 40; i++) {
    const float specials[] = {std::nanf(""), inf, -inf, big, -big};
    in[i] = i % 3 == 0 ? specials[(i / 3) % 5] : -10.0f + 0.5f * i;
  }
  for (int i = 0; i < 40; i++) out[i] = fast_exp(in[i]);
  for (int i = 0; i < 40; i++) {
    INFO("x = " << in[i]);
    if (std::isnan(in[i])) {
      REQUIRE(std::isnan(out[i]));
    } else {
      REQUIRE(out[i] == fast_exp_float(in[i]));
      REQUIRE(out[i] >= 0.0f);
    }
  }
}
