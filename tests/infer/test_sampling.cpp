// Sampling functions on distributions small enough to check by hand.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>

#include "infer/sampling.h"

using namespace foundry;

namespace {
std::vector<int> ids_of(const std::vector<TokenProb>& c) {
  std::vector<int> ids;
  for (const TokenProb& t : c) ids.push_back(t.id);
  return ids;
}
std::vector<TokenProb> from_probs(const std::vector<double>& p) {
  std::vector<TokenProb> c;
  for (size_t i = 0; i < p.size(); i++) c.push_back({p[i], static_cast<int>(i)});
  return c;
}
}  // namespace

TEST_CASE("sample_greedy: argmax, lowest id on ties", "[sampling]") {
  std::vector<real> a = {1, 3, 2, 3};
  CHECK(sample_greedy(a.data(), 4) == 1);
  std::vector<real> b = {-5, -4, -4.5f};
  CHECK(sample_greedy(b.data(), 3) == 1);
  std::vector<real> flat = {7, 7, 7};
  CHECK(sample_greedy(flat.data(), 3) == 0);
  std::vector<real> last = {0, 0, 1};
  CHECK(sample_greedy(last.data(), 3) == 2);
}

TEST_CASE("softmax_with_temperature: logits log(1..4) give 0.1..0.4, sharpened and flattened", "[sampling]") {
  std::vector<real> logits = {std::log(1.0f), std::log(2.0f), std::log(3.0f), std::log(4.0f)};
  std::vector<TokenProb> c;
  softmax_with_temperature(c, logits.data(), 4, 1.0);
  REQUIRE(c.size() == 4);
  for (int i = 0; i < 4; i++) {
    CHECK(c[i].id == i);
    CHECK(c[i].prob == Approx((i + 1) / 10.0).epsilon(1e-6));
  }
  // T = 0.5 doubles the logits: probabilities ∝ 1, 4, 9, 16.
  softmax_with_temperature(c, logits.data(), 4, 0.5);
  for (int i = 0; i < 4; i++) CHECK(c[i].prob == Approx((i + 1.0) * (i + 1.0) / 30.0).epsilon(1e-6));
  // T = 2 halves them: ∝ sqrt(1..4).
  softmax_with_temperature(c, logits.data(), 4, 2.0);
  double z = 1 + std::sqrt(2.0) + std::sqrt(3.0) + 2;
  for (int i = 0; i < 4; i++) CHECK(c[i].prob == Approx(std::sqrt(i + 1.0) / z).epsilon(1e-6));
  // Huge logits do not overflow.
  std::vector<real> big = {1e4f, 1e4f};
  softmax_with_temperature(c, big.data(), 2, 1.0);
  CHECK(c[0].prob == Approx(0.5));
  CHECK_THROWS_AS(softmax_with_temperature(c, logits.data(), 4, 0.0), std::invalid_argument);
}

TEST_CASE("keep_top_k keeps the k most probable, ties to the lower id", "[sampling]") {
  std::vector<TokenProb> c = from_probs({0.1, 0.4, 0.2, 0.3});
  keep_top_k(c, 2);
  CHECK(ids_of(c) == std::vector<int>{1, 3});
  CHECK(c[0].prob == 0.4);
  std::vector<TokenProb> tie = from_probs({0.25, 0.25, 0.5, 0.0});
  keep_top_k(tie, 2);
  CHECK(ids_of(tie) == std::vector<int>{2, 0});
  std::vector<TokenProb> all = from_probs({0.1, 0.4, 0.2, 0.3});
  keep_top_k(all, 0);  // off: everything, sorted
  CHECK(ids_of(all) == std::vector<int>{1, 3, 2, 0});
  std::vector<TokenProb> more = from_probs({0.1, 0.9});
  keep_top_k(more, 5);
  CHECK(ids_of(more) == std::vector<int>{1, 0});
}

TEST_CASE("keep_top_p keeps the smallest prefix reaching p, the crossing token included", "[sampling]") {
  // Sorted: id 2 (0.5), id 0 (0.25), id 1 (0.125), id 3 (0.125); exact in binary.
  auto run = [](double p) {
    std::vector<TokenProb> c = from_probs({0.25, 0.125, 0.5, 0.125});
    keep_top_p(c, p);
    return ids_of(c);
  };
  CHECK(run(0.3) == std::vector<int>{2});     // 0.5 ≥ 0.3 already
  CHECK(run(0.5) == std::vector<int>{2});     // reaching p exactly is enough
  CHECK(run(0.6) == std::vector<int>{2, 0});  // 0.5 < 0.6 ≤ 0.75: token 0 crosses
  CHECK(run(0.75) == std::vector<int>{2, 0});
  CHECK(run(0.8) == std::vector<int>{2, 0, 1});     // the tie 1/3 goes to the lower id
  CHECK(run(1.0) == std::vector<int>{0, 1, 2, 3});  // off: untouched, not even sorted
  std::vector<TokenProb> c = from_probs({1.0});
  CHECK_THROWS_AS(keep_top_p(c, 0.0), std::invalid_argument);
  CHECK_THROWS_AS(keep_top_p(c, 1.5), std::invalid_argument);
}

TEST_CASE("top-p after top-k measures the renormalized top-k mass", "[sampling]") {
  std::vector<TokenProb> c = from_probs({0.5, 0.25, 0.125, 0.125});
  keep_top_k(c, 2);  // {0: 0.5, 1: 0.25}, renormalized {2/3, 1/3}
  keep_top_p(c, 0.6);
  // 0.5 / 0.75 = 0.667 ≥ 0.6: token 0 alone. (Against the unrenormalized 0.5 it would keep two.)
  CHECK(ids_of(c) == std::vector<int>{0});
}

TEST_CASE("draw picks each candidate with probability prob / total", "[sampling]") {
  std::vector<TokenProb> c = {{2.0, 7}, {1.0, 3}, {1.0, 9}};  // weights: draw renormalizes
  Rng rng(5);
  std::map<int, int> counts;
  const int n = 40000;
  for (int i = 0; i < n; i++) counts[draw(c, rng)]++;
  REQUIRE(counts.size() == 3);
  CHECK(counts[7] / double(n) == Approx(0.5).margin(0.015));
  CHECK(counts[3] / double(n) == Approx(0.25).margin(0.015));
  CHECK(counts[9] / double(n) == Approx(0.25).margin(0.015));
  // A zero-probability candidate is never drawn.
  std::vector<TokenProb> z = {{0.0, 1}, {1.0, 2}, {0.0, 3}};
  for (int i = 0; i < 1000; i++) REQUIRE(draw(z, rng) == 2);
  CHECK_THROWS_AS(draw({}, rng), std::invalid_argument);
}

TEST_CASE("Sampler: greedy at temperature 0, reproducible from the seed, filters applied", "[sampling]") {
  std::vector<real> logits = {0.0f, 2.0f, 1.0f, 2.0f, -1.0f};
  Sampler greedy({0.0, 0, 1.0}, 1);
  for (int i = 0; i < 5; i++) CHECK(greedy.sample(logits.data(), 5) == 1);

  Sampler a({1.0, 0, 1.0}, 99), b({1.0, 0, 1.0}, 99), c({1.0, 0, 1.0}, 100);
  std::vector<int> sa, sb, sc;
  for (int i = 0; i < 50; i++) {
    sa.push_back(a.sample(logits.data(), 5));
    sb.push_back(b.sample(logits.data(), 5));
    sc.push_back(c.sample(logits.data(), 5));
  }
  CHECK(sa == sb);
  CHECK(sa != sc);

  // top-k 2 at any temperature only ever returns the two best ids (1 and 3, tied).
  Sampler k2({5.0, 2, 1.0}, 3);
  std::map<int, int> seen;
  for (int i = 0; i < 2000; i++) seen[k2.sample(logits.data(), 5)]++;
  CHECK(seen.size() == 2);
  CHECK(seen.count(1) == 1);
  CHECK(seen.count(3) == 1);
  // top-p small enough keeps only the first of the sorted list: id 1 (tie with 3, lower id).
  Sampler p({1.0, 0, 0.1}, 3);
  for (int i = 0; i < 100; i++) REQUIRE(p.sample(logits.data(), 5) == 1);

  CHECK_THROWS_AS(Sampler({-1.0, 0, 1.0}), std::invalid_argument);
  CHECK_THROWS_AS(Sampler({1.0, -2, 1.0}), std::invalid_argument);
  CHECK_THROWS_AS(Sampler({1.0, 0, 0.0}), std::invalid_argument);
}
