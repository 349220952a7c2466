// Tensor basics, shape errors that name both shapes, and the seeded random generator.
#include <catch2/catch.hpp>

#include <cmath>
#include <set>

#include "engine/embedding.h"
#include "engine/matmul.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "engine/softmax.h"
#include "engine/tensor.h"

using namespace foundry;
using Catch::Matchers::Contains;

TEST_CASE("Tensor: shape, row-major layout, value semantics", "[tensor]") {
  Tensor t({2, 3, 4});  // (B, T, C)
  REQUIRE(t.size() == 24);
  REQUIRE(t.rank() == 3);
  REQUIRE(t.dim(0) == 2);
  REQUIRE(t.dim(-1) == 4);
  REQUIRE(t.dim(-3) == 2);
  for (real v : t.data) REQUIRE(v == 0);
  // Element (b, t, c) sits at (b * T + t) * C + c.
  t.at({1, 2, 3}) = 7;
  REQUIRE(t[(1 * 3 + 2) * 4 + 3] == 7);
  REQUIRE(flat_index(t.shape, {1, 0, 2}) == 14);

  Tensor copy = t;  // a copy owns its own numbers
  copy.at({1, 2, 3}) = -1;
  REQUIRE(t.at({1, 2, 3}) == 7);

  Tensor scalar(Shape{});
  REQUIRE(scalar.size() == 1);
  REQUIRE(shape_str(scalar.shape) == "()");
  REQUIRE(shape_str({2, 3}) == "(2, 3)");
  REQUIRE(shape_numel({5, 0, 3}) == 0);

  Tensor filled({3}, 2.5);
  filled.fill(-1);
  for (real v : filled.data) REQUIRE(v == -1);
}

TEST_CASE("Tensor: resize keeps the allocation, reshaped copies", "[tensor]") {
  Tensor t({4, 8});
  const real* before = t.ptr();
  t.resize({2, 8});
  REQUIRE(t.shape == Shape{2, 8});
  REQUIRE(t.size() == 16);
  t.resize({4, 8});
  REQUIRE(t.ptr() == before);  // grew back within capacity: no new memory

  Tensor r = t.reshaped({8, 4});
  REQUIRE(r.shape == Shape{8, 4});
  REQUIRE(r.ptr() != t.ptr());
  REQUIRE_THROWS_WITH(t.reshaped({5, 5}), Contains("(4, 8)") && Contains("(5, 5)"));
  // A bad shape throws before anything changes.
  REQUIRE_THROWS_AS(t.resize({-1, 2}), std::invalid_argument);
  REQUIRE(t.shape == Shape{4, 8});
}

TEST_CASE("Tensor: bad indices and value counts are errors, not garbage", "[tensor]") {
  Tensor t({2, 3});
  REQUIRE_THROWS_WITH(t.at({2, 0}), Contains("(2, 3)"));
  REQUIRE_THROWS_WITH(t.at({0}), Contains("rank 1") && Contains("(2, 3)"));
  REQUIRE_THROWS_AS(t.dim(2), std::out_of_range);
  REQUIRE_THROWS_WITH(Tensor({2, 2}, std::vector<real>{1, 2, 3}), Contains("(2, 2)") && Contains("got 3"));
  REQUIRE_THROWS_WITH(check_shape({2, 3}, {3, 2}, "weights"),
                      Contains("weights") && Contains("(2, 3)") && Contains("(3, 2)"));
}

TEST_CASE("max_abs_diff finds the largest difference and does not hide NaN", "[tensor]") {
  Tensor a({3}, std::vector<real>{1, 2, 3});
  Tensor b({3}, std::vector<real>{1, 2.5, 2});
  REQUIRE(max_abs_diff(a, b) == 1.0);
  b[0] = std::nan("");
  REQUIRE(std::isnan(max_abs_diff(a, b)));
  REQUIRE_THROWS_WITH(max_abs_diff(a, Tensor({2})), Contains("(3)") && Contains("(2)"));
}

TEST_CASE("shape mismatches in ops name both shapes", "[tensor][ops]") {
  Tensor a({2, 3}), b({4, 5}), c({3, 2}), w({5, 4}), table({6, 3}), cube({2, 2, 2}), empty({0});
  Tape tape;
  Var va = tape.input(a), vb = tape.input(b), vc = tape.input(c), vw = tape.input(w), vt = tape.input(table);
  Var vcube = tape.input(cube), vempty = tape.input(empty);
  REQUIRE_THROWS_WITH(matmul(tape, va, vb), Contains("(2, 3)") && Contains("(4, 5)"));
  REQUIRE_THROWS_WITH(linear(tape, va, vw), Contains("(2, 3)") && Contains("(5, 4)"));
  REQUIRE_THROWS_WITH(add(tape, va, vc), Contains("add") && Contains("(2, 3)") && Contains("(3, 2)"));
  REQUIRE_THROWS_WITH(mul(tape, va, vc), Contains("mul") && Contains("(2, 3)") && Contains("(3, 2)"));
  REQUIRE_THROWS_WITH(reshape(tape, va, {4, 2}), Contains("(2, 3)") && Contains("(4, 2)"));
  REQUIRE_THROWS_WITH(transpose(tape, vcube), Contains("(2, 2, 2)"));
  REQUIRE_THROWS_WITH(swap_axes12(tape, va), Contains("(2, 3)"));
  REQUIRE_THROWS_WITH(embedding(tape, vt, {0, 6}), Contains("token id 6") && Contains("position 1"));
  REQUIRE_THROWS_WITH(cross_entropy(tape, va, {0}), Contains("(2, 3)") && Contains("1 targets"));
  REQUIRE_THROWS_WITH(cross_entropy(tape, va, {0, 3}), Contains("target 3") && Contains("row 1"));
  REQUIRE_THROWS_WITH(mean(tape, vempty), Contains("empty"));
  // Every rejected op threw before recording: only the leaves are on the tape.
  REQUIRE(tape.size() == 5 + 2);
}

TEST_CASE("Rng: same seed, same numbers; a copied state resumes identically", "[rng]") {
  Rng a(123), b(123), c(124);
  std::vector<uint64_t> xa, xb, xc;
  for (int i = 0; i < 100; i++) {
    xa.push_back(a.next_u64());
    xb.push_back(b.next_u64());
    xc.push_back(c.next_u64());
  }
  REQUIRE(xa == xb);
  REQUIRE(xa != xc);  // neighbouring seeds give unrelated streams

  // Copy mid-stream, with a Box-Muller spare pending: the copy continues exactly like the original.
  Rng r(7);
  r.normal();  // draws a pair, leaves one spare
  REQUIRE(r.has_spare);
  Rng snapshot = r;
  for (int i = 0; i < 50; i++) {
    REQUIRE(r.normal() == snapshot.normal());
    REQUIRE(r.uniform() == snapshot.uniform());
    REQUIRE(r.below(1000) == snapshot.below(1000));
  }
}

TEST_CASE("Rng: a known first value pins the algorithm", "[rng]") {
  // xoshiro256** seeded through splitmix64; the value was computed with an independent reference
  // implementation of both (a few lines of Python big-int arithmetic). If this changes, every
  // seeded run in the project (initial weights, batches, samples) changes with it.
  Rng r(0);
  uint64_t first = r.next_u64();
  Rng r2(0);
  REQUIRE(r2.next_u64() == first);
  REQUIRE(first != 0);
  CHECK(first == 0x99ec5f36cb75f2b4ULL);
}

TEST_CASE("Rng: distributions have the right ranges and moments", "[rng]") {
  Rng r(99);
  const int n = 200000;
  double sum = 0, sum_sq = 0, usum = 0;
  std::set<uint64_t> seen;
  for (int i = 0; i < n; i++) {
    double z = r.normal();
    sum += z;
    sum_sq += z * z;
    double u = r.uniform();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    usum += u;
    uint64_t k = r.below(7);
    REQUIRE(k < 7);
    seen.insert(k);
  }
  CHECK(std::fabs(sum / n) < 0.01);           // mean 0 (standard error 0.0022)
  CHECK(std::fabs(sum_sq / n - 1.0) < 0.02);  // variance 1
  CHECK(std::fabs(usum / n - 0.5) < 0.005);
  REQUIRE(seen.size() == 7);
  REQUIRE_THROWS_AS(r.below(0), std::invalid_argument);
}

TEST_CASE("edge cases: const access, a loss over no rows, thread queries", "[tensor][rng]") {
  const Tensor t({2, 2}, std::vector<real>{1, 2, 3, 4});
  REQUIRE(t.at({1, 0}) == 3);
  Tensor none({0, 5});
  Tape tape;
  REQUIRE_THROWS_WITH(cross_entropy(tape, tape.input(none), {}), Contains("(0, 5)") && Contains("no rows"));
  // Outside a parallel region we are thread 0 of however many a parallel loop would use.
  REQUIRE(thread_index() == 0);
  REQUIRE_FALSE(in_parallel());
  REQUIRE(num_threads() >= 1);
  if (!have_openmp()) REQUIRE(num_threads() == 1);
}
