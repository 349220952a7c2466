// The fast matmul (Eigen on row-major maps) against the naive three-loop definition and against
// a double-precision reference, on awkward sizes, at one and at two threads.
#include <catch2/catch.hpp>

#include <cmath>
#include <tuple>

#include "engine/matmul.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "tests/common/test_helpers.h"

using namespace foundry;

namespace {

using test::random_tensor;

// out (M, N) = a (M, K) · b (K, N) with op(a), op(b) chosen by the flags, in double.
// a_t: a is stored (K, M); b_t: b is stored (N, K).
std::vector<double> reference(const Tensor& a, const Tensor& b, int M, int K, int N, bool a_t, bool b_t) {
  std::vector<double> out((size_t)M * N, 0.0);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = 0;
      for (int k = 0; k < K; k++) {
        double av = a_t ? a[(size_t)k * M + i] : a[(size_t)i * K + k];
        double bv = b_t ? b[(size_t)j * K + k] : b[(size_t)k * N + j];
        s += av * bv;
      }
      out[(size_t)i * N + j] = s;
    }
  return out;
}

// Error of a float dot product of K standard-normal terms, relative to its typical size sqrt(K).
// Each partial sum is rounded (2^-24 of about sqrt(K)) and K such roundings add up like a random
// walk, so the expected error is near 2^-24 · sqrt(K) of the scale: we allow four times that.
double max_rel_error(const real* got, const std::vector<double>& want, int K) {
  double worst = 0;
  for (size_t i = 0; i < want.size(); i++) {
    double err = std::fabs(double(got[i]) - want[i]) / (std::sqrt(double(K)) + std::fabs(want[i]));
    if (!(err <= worst)) worst = err;  // written so that a NaN wins
  }
  return worst / std::sqrt(double(K));
}

constexpr double kTol = 4 * 0x1p-24;  // about 2.4e-7

}  // namespace

TEST_CASE("matmul: Eigen and naive agree with a double reference on odd sizes", "[matmul]") {
  Rng rng(5);
  auto [M, K, N] = GENERATE(std::make_tuple(1, 1, 1), std::make_tuple(1, 17, 1), std::make_tuple(7, 13, 5),
                            std::make_tuple(33, 65, 17), std::make_tuple(127, 3, 255), std::make_tuple(130, 257, 67));
  INFO("M=" << M << " K=" << K << " N=" << N);
  Tensor a = random_tensor({M, K}, rng), b = random_tensor({K, N}, rng);
  Tensor fast({M, N}, real(99)), naive({M, N}, real(99));  // 99: forward must overwrite, not add
  matmul_forward(fast.ptr(), a.ptr(), b.ptr(), M, K, N);
  matmul_naive(naive.ptr(), a.ptr(), b.ptr(), M, K, N);
  std::vector<double> want = reference(a, b, M, K, N, false, false);
  CHECK(max_rel_error(fast.ptr(), want, K) < kTol);
  CHECK(max_rel_error(naive.ptr(), want, K) < kTol);

  // linear: x (M, K) · wᵀ with w stored (N, K).
  Tensor w = random_tensor({N, K}, rng);
  Tensor lin({M, N}, real(99));
  linear_forward(lin.ptr(), a.ptr(), w.ptr(), M, K, N);
  CHECK(max_rel_error(lin.ptr(), reference(a, w, M, K, N, false, true), K) < kTol);
}

TEST_CASE("matmul and linear backward accumulate the right products", "[matmul]") {
  Rng rng(6);
  auto [M, K, N] = GENERATE(std::make_tuple(1, 1, 1), std::make_tuple(9, 31, 4), std::make_tuple(70, 33, 129));
  INFO("M=" << M << " K=" << K << " N=" << N);
  Tensor a = random_tensor({M, K}, rng), b = random_tensor({K, N}, rng), dout = random_tensor({M, N}, rng);
  Tensor da({M, K}, real(1)), db({K, N}, real(1));  // start at 1: the backward must add (+=)
  matmul_backward(da.ptr(), db.ptr(), dout.ptr(), a.ptr(), b.ptr(), M, K, N);
  std::vector<double> want_da = reference(dout, b, M, N, K, false, true);  // dout · bᵀ
  std::vector<double> want_db = reference(a, dout, K, M, N, true, false);  // aᵀ · dout
  for (double& v : want_da) v += 1;
  for (double& v : want_db) v += 1;
  CHECK(max_rel_error(da.ptr(), want_da, N) < kTol);
  CHECK(max_rel_error(db.ptr(), want_db, M) < kTol);

  // linear: w (N, K); dx += dout · w, dw += doutᵀ · x.
  Tensor w = random_tensor({N, K}, rng);
  Tensor dx({M, K}, real(1)), dw({N, K}, real(1));
  linear_backward(dx.ptr(), dw.ptr(), dout.ptr(), a.ptr(), w.ptr(), M, K, N);
  std::vector<double> want_dx = reference(dout, w, M, N, K, false, false);
  std::vector<double> want_dw = reference(dout, a, N, M, K, true, false);
  for (double& v : want_dx) v += 1;
  for (double& v : want_dw) v += 1;
  CHECK(max_rel_error(dx.ptr(), want_dx, N) < kTol);
  CHECK(max_rel_error(dw.ptr(), want_dw, M) < kTol);

  // A nullptr gradient is skipped, the other one still computed.
  Tensor only_db({K, N});
  matmul_backward(nullptr, only_db.ptr(), dout.ptr(), a.ptr(), b.ptr(), M, K, N);
  for (double& v : want_db) v -= 1;
  CHECK(max_rel_error(only_db.ptr(), want_db, M) < kTol);
}

TEST_CASE("matmul gives the same numbers at one and at two threads", "[matmul][threads]") {
  Rng rng(7);
  const int M = 300, K = 200, N = 150;  // big enough that Eigen really splits the work
  Tensor a = random_tensor({M, K}, rng), b = random_tensor({K, N}, rng), w = random_tensor({N, K}, rng);
  Tensor dout = random_tensor({M, N}, rng);
  struct Outputs {
    Tensor fast, naive, lin, da, db, dx, dw;
  };
  auto compute = [&](int threads) {
    set_num_threads(threads);
    Outputs o{Tensor({M, N}), Tensor({M, N}), Tensor({M, N}), Tensor({M, K}),
              Tensor({K, N}), Tensor({M, K}), Tensor({N, K})};
    matmul_forward(o.fast.ptr(), a.ptr(), b.ptr(), M, K, N);
    matmul_naive(o.naive.ptr(), a.ptr(), b.ptr(), M, K, N);
    linear_forward(o.lin.ptr(), a.ptr(), w.ptr(), M, K, N);
    matmul_backward(o.da.ptr(), o.db.ptr(), dout.ptr(), a.ptr(), b.ptr(), M, K, N);
    linear_backward(o.dx.ptr(), o.dw.ptr(), dout.ptr(), a.ptr(), w.ptr(), M, K, N);
    return o;
  };
  int before = num_threads();
  Outputs one = compute(1);
  Outputs two = compute(2);
  set_num_threads(before);
  // The naive loop gives each output row to one thread and sums in the same order: identical.
  REQUIRE(max_abs_diff(one.naive, two.naive) == 0);
  // Eigen may split the K sum differently with more threads; allow float rounding only.
  CHECK(max_abs_diff(one.fast, two.fast) < 1e-4);
  CHECK(max_abs_diff(one.lin, two.lin) < 1e-4);
  CHECK(max_abs_diff(one.da, two.da) < 1e-4);
  CHECK(max_abs_diff(one.db, two.db) < 1e-4);
  CHECK(max_abs_diff(one.dx, two.dx) < 1e-4);
  CHECK(max_abs_diff(one.dw, two.dw) < 1e-4);
  CHECK(max_abs_diff(one.fast, one.naive) < 1e-3);

  // The blocks of a two-thread product are handed to whichever thread is free (split_product),
  // so which thread computes which block changes from run to run; the numbers must not.
  for (int run = 0; run < 3; run++) {
    set_num_threads(2);
    Outputs again = compute(2);
    set_num_threads(before);
    REQUIRE(max_abs_diff(two.fast, again.fast) == 0);
    REQUIRE(max_abs_diff(two.lin, again.lin) == 0);
    REQUIRE(max_abs_diff(two.da, again.da) == 0);
    REQUIRE(max_abs_diff(two.db, again.db) == 0);
    REQUIRE(max_abs_diff(two.dx, again.dx) == 0);
    REQUIRE(max_abs_diff(two.dw, again.dw) == 0);
  }
}

TEST_CASE("matmul splits wide outputs by columns and stays on one thread when nested", "[matmul][threads]") {
  Rng rng(8);
  // One row and many columns (a single token in generation): the output is cut by columns.
  const int M = 3, K = 700, N = 333;  // 700k multiply-adds: large enough to be split
  Tensor a = random_tensor({M, K}, rng), w = random_tensor({N, K}, rng), b = random_tensor({K, N}, rng);
  Tensor lin({M, N}), mm({M, N});
  linear_forward(lin.ptr(), a.ptr(), w.ptr(), M, K, N);
  matmul_forward(mm.ptr(), a.ptr(), b.ptr(), M, K, N);
  CHECK(max_rel_error(lin.ptr(), reference(a, w, M, K, N, false, true), K) < kTol);
  CHECK(max_rel_error(mm.ptr(), reference(a, b, M, K, N, false, false), K) < kTol);

  // Called from inside a parallel loop (as attention does per head), each product runs on its
  // calling thread and still computes the same numbers.
  std::vector<Tensor> outs(4, Tensor({M, N}));
#pragma omp parallel for
  for (int i = 0; i < 4; i++) linear_forward(outs[i].ptr(), a.ptr(), w.ptr(), M, K, N);
  for (const Tensor& o : outs) CHECK(max_abs_diff(o, lin) < 1e-4);
}
