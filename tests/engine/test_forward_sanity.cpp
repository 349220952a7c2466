// Forward-only sanity of the float build: properties each op must have whatever its backward.
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/embedding.h"
#include "engine/ops.h"
#include "engine/softmax.h"

using namespace foundry;

TEST_CASE("softmax rows are probabilities, also for logits of +-1e4", "[forward]") {
  Tensor x({3, 4}, std::vector<real>{0, 1, 2, 3, 1e4f, -1e4f, 0, 1e4f, -1e4f, -1e4f, -1e4f, -1e4f});
  Tensor p({3, 4});
  softmax_forward(p.ptr(), x.ptr(), 3, 4);
  for (int i = 0; i < 3; i++) {
    double total = 0;
    for (int j = 0; j < 4; j++) {
      REQUIRE(std::isfinite(p.at({i, j})));
      REQUIRE(p.at({i, j}) >= 0);
      total += p.at({i, j});
    }
    CHECK(total == Approx(1.0).epsilon(1e-6));
  }
  CHECK(p.at({1, 0}) == Approx(0.5));  // two equal maxima share the mass
  CHECK(p.at({1, 3}) == Approx(0.5));
  CHECK(p.at({2, 2}) == Approx(0.25));  // all equal: uniform
  CHECK(p.at({0, 3}) / p.at({0, 2}) == Approx(std::exp(1.0)));

  Tensor y({3, 4});
  log_softmax_forward(y.ptr(), x.ptr(), 3, 4);
  for (size_t i = 0; i < y.size(); i++) {
    REQUIRE(std::isfinite(y[i]));
    CHECK(y[i] <= 0);
  }
  CHECK(y.at({1, 1}) == Approx(-2e4 - std::log(2.0)));  // far below the max, and still exact
}

TEST_CASE("cross-entropy: log V for uniform logits, finite at +-1e4", "[forward]") {
  const int N = 2, V = 8;
  Tensor zeros({N, V}), probs({N, V});
  std::vector<int> targets = {3, 7};
  CHECK(cross_entropy_forward(probs.ptr(), zeros.ptr(), targets.data(), N, V) == Approx(std::log(8.0)));

  Tensor big({1, 3}, std::vector<real>{1e4f, -1e4f, 0});
  Tensor p({1, 3});
  std::vector<int> t = {1};
  double loss = cross_entropy_forward(p.ptr(), big.ptr(), t.data(), 1, 3);
  REQUIRE(std::isfinite(loss));
  CHECK(loss == Approx(2e4));

  Tensor d({1, 3});
  cross_entropy_backward(d.ptr(), p.ptr(), t.data(), 1, 1, 3);
  for (real v : d.data) REQUIRE(std::isfinite(v));
  CHECK(d[0] == Approx(1));
  CHECK(d[1] == Approx(-1));
}

TEST_CASE("silu, swap_axes12 and embedding forward", "[forward]") {
  Tensor x({5}, std::vector<real>{0, 1, -1, 100, -100});
  Tensor y({5});
  silu_forward(y.ptr(), x.ptr(), 5);
  CHECK(y[0] == 0);
  CHECK(y[1] == Approx(1 / (1 + std::exp(-1.0))));
  CHECK(y[2] == Approx(-1 / (1 + std::exp(1.0))));
  CHECK(y[3] == Approx(100));
  CHECK(y[4] == Approx(0).margin(1e-30));
  REQUIRE(std::isfinite(y[4]));

  // (D0, D1, D2, D3) = (1, 2, 3, 2): out[0, j, i, :] = x[0, i, j, :]
  Tensor h({1, 2, 3, 2});
  for (size_t i = 0; i < h.size(); i++) h[i] = real(i);
  Tensor s({1, 3, 2, 2});
  swap_axes12_forward(s.ptr(), h.ptr(), 1, 2, 3, 2);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 2; k++) REQUIRE(s.at({0, j, i, k}) == h.at({0, i, j, k}));

  Tensor table({3, 2}, std::vector<real>{1, 2, 3, 4, 5, 6});  // (V, C)
  std::vector<int> ids = {2, 0, 2};
  Tensor e({3, 2});
  embedding_forward(e.ptr(), ids.data(), table.ptr(), 3, 3, 2);
  REQUIRE(e.data == std::vector<real>{5, 6, 1, 2, 5, 6});
}
