// Properties of the components in the float build, the precision users train in: RoPE keeps
// lengths and makes the q·k product depend on relative position only; RMSNorm is scale
// invariant; SwiGLU gates.
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/rng.h"
#include "model/rmsnorm.h"
#include "model/rope.h"
#include "model/swiglu.h"
#include "tests/common/test_helpers.h"

using namespace foundry;

namespace {

using test::random_tensor;

// Rotates one head vector (HS numbers) to position `pos` with the model's tables.
std::vector<real> rotate(const Tensor& x, const Tensor& cos, const Tensor& sin, int pos) {
  int HS = x.dim(0);
  std::vector<real> out(HS);
  rope_forward(out.data(), x.ptr(), cos.ptr(), sin.ptr(), 1, 1, 1, HS, pos);
  return out;
}

double dot(const std::vector<real>& a, const std::vector<real>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); i++) s += double(a[i]) * b[i];
  return s;
}

}  // namespace

TEST_CASE("rope (float): q.k depends only on the distance between positions", "[model][rope]") {
  const int HS = 16, max_len = 64;
  Tensor cos({max_len, HS / 2}), sin({max_len, HS / 2});
  rope_tables(cos.ptr(), sin.ptr(), max_len, HS, 10000.0);
  Rng rng(1);
  Tensor q = random_tensor({HS}, rng), k = random_tensor({HS}, rng);
  double at_3_and_7 = dot(rotate(q, cos, sin, 7), rotate(k, cos, sin, 3));
  double at_40_and_44 = dot(rotate(q, cos, sin, 44), rotate(k, cos, sin, 40));
  double at_3_and_8 = dot(rotate(q, cos, sin, 8), rotate(k, cos, sin, 3));
  REQUIRE(at_3_and_7 == Approx(at_40_and_44).margin(1e-4));
  REQUIRE(std::fabs(at_3_and_7 - at_3_and_8) > 1e-3);  // another distance, another score
  // and a rotation never changes a vector's length
  REQUIRE(dot(rotate(q, cos, sin, 50), rotate(q, cos, sin, 50)) ==
          Approx(dot(rotate(q, cos, sin, 0), rotate(q, cos, sin, 0))).epsilon(1e-5));
}

TEST_CASE("rmsnorm (float): scaling a row does not change the output", "[model][rmsnorm]") {
  Rng rng(2);
  Tensor x = random_tensor({2, 32}, rng), w = random_tensor({32}, rng);
  Tensor x10 = x;
  for (real& v : x10.data) v *= 10;
  Tensor y({2, 32}), y10({2, 32}), r({2}), r10({2});
  rmsnorm_forward(y.ptr(), r.ptr(), x.ptr(), w.ptr(), 2, 32, 1e-6f);
  rmsnorm_forward(y10.ptr(), r10.ptr(), x10.ptr(), w.ptr(), 2, 32, 1e-6f);
  REQUIRE(max_abs_diff(y, y10) < 1e-5);
  REQUIRE(r[0] == Approx(10 * r10[0]).epsilon(1e-5));
}

TEST_CASE("swiglu (float): a very negative gate closes, a large one passes a*b", "[model][swiglu]") {
  real a[3] = {-30, 0, 30}, b[3] = {2, 2, 2}, h[3];
  swiglu_forward(h, a, b, 3);
  REQUIRE(std::fabs(h[0]) < 1e-10);
  REQUIRE(h[1] == 0);
  REQUIRE(h[2] == Approx(60).epsilon(1e-6));
}
