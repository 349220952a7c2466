// Lesson 03: matmul. The forward on a product small enough to do by hand, the backward derived
// from the index formula and checked against a plain loop, a finite-difference check of the taped
// matmul (and of a deliberately broken one, which must fail), `linear` (x · wᵀ with w stored
// (out, in)) by hand and against finite differences, how OpenMP splits rows between threads, and
// the naive loop against Eigen. Exits non-zero if any check fails.
//
//   build/lessons/lesson_03
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "engine/gradcheck.h"
#include "engine/matmul.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "lessons/lesson_common.h"

using namespace foundry;

namespace {

using lesson::check;
using lesson::failures;

void print_matrix(const char* label, const Tensor& t) {
  std::printf("%s =", label);
  for (int i = 0; i < t.dim(0); i++) {
    std::printf(" [");
    for (int j = 0; j < t.dim(1); j++) std::printf(j ? " %g" : "%g", t.at({i, j}));
    std::printf("]");
  }
  std::printf("\n");
}

Tensor random_matrix(int rows, int cols, Rng& rng) {
  Tensor t({rows, cols});  // (rows, cols)
  for (real& v : t.data) v = static_cast<real>(rng.normal());
  return t;
}

// ANCHOR: backward_loops
// The backward straight from the index formulas, one multiply-add at a time:
//   out_ij = Σ_k a_ik b_kj   ⇒   da_ik = Σ_j dout_ij b_kj,   db_kj = Σ_i a_ik dout_ij
void matmul_backward_loops(real* da, real* db, const real* dout, const real* a, const real* b, int M, int K, int N) {
  for (int i = 0; i < M; i++)
    for (int k = 0; k < K; k++)
      for (int j = 0; j < N; j++) {
        da[i * K + k] += dout[i * N + j] * b[k * N + j];
        db[k * N + j] += a[i * K + k] * dout[i * N + j];
      }
}
// ANCHOR_END: backward_loops

// ANCHOR: broken_matmul
// A matmul whose backward forgets db: exactly the kind of bug the gradient check exists for.
Var matmul_without_db(Tape& tape, Var a, Var b) {
  int M = tape.value(a).dim(0), K = tape.value(a).dim(1), N = tape.value(b).dim(1);
  Var out = tape.record("matmul_without_db", {a.id, b.id}, {M, N});
  matmul_forward(tape.mutable_value(out).ptr(), tape.value(a).ptr(), tape.value(b).ptr(), M, K, N);
  tape.set_backward(out, [&tape, a, b, out, M, K, N] {
    matmul_backward(tape.grad(a).ptr(), nullptr, tape.grad(out).ptr(), tape.value(a).ptr(), tape.value(b).ptr(), M, K,
                    N);
  });
  return out;
}
// ANCHOR_END: broken_matmul

// Best of `reps` runs, in GFLOP/s: a product of (M, K) and (K, N) does 2·M·K·N flops.
template <class F>
double gflops(F run, int M, int K, int N, int reps) {
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    auto start = std::chrono::steady_clock::now();
    run();
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    best = std::min(best, took.count());
  }
  return 2.0 * M * K * N / best / 1e9;
}

}  // namespace

int main() {
  std::printf("[forward]\n");
  // The matrices laid out as rows (clang-format would join them).
  // clang-format off
  Tensor a({2, 3}, {1, 2, 3,
                    4, 5, 6});  // (M, K) = (2, 3)
  Tensor b({3, 2}, {7, 8,
                    9, 10,
                    11, 12});   // (K, N) = (3, 2)
  Tensor out({2, 2});           // (M, N)
  // clang-format on
  matmul_forward(out.ptr(), a.ptr(), b.ptr(), 2, 3, 2);
  print_matrix("a", a);
  print_matrix("b", b);
  print_matrix("a . b", out);
  // out[0][0] = 1·7 + 2·9 + 3·11 = 58, out[1][1] = 4·8 + 5·10 + 6·12 = 154
  check(out.at({0, 0}) == 58 && out.at({0, 1}) == 64 && out.at({1, 0}) == 139 && out.at({1, 1}) == 154,
        "Eigen's product equals the hand-computed one");

  Rng rng(3);
  Tensor big_a = random_matrix(33, 17, rng), big_b = random_matrix(17, 20, rng);  // (33, 17), (17, 20)
  Tensor fast({33, 20}), naive({33, 20});                                         // (33, 20)
  matmul_forward(fast.ptr(), big_a.ptr(), big_b.ptr(), 33, 17, 20);
  matmul_naive(naive.ptr(), big_a.ptr(), big_b.ptr(), 33, 17, 20);
  check(max_abs_diff(fast, naive) < 1e-5, "Eigen and the naive loop agree on a (33, 17) . (17, 20) product");

  std::printf("[backward]\n");
  // With dout all ones, L = Σ out, and the formulas say: da = dout · bᵀ holds the row sums of b,
  // db = aᵀ · dout holds the column sums of a.
  Tensor dout({2, 2}, 1);  // (M, N)
  Tensor da({2, 3}), db({3, 2});
  matmul_backward(da.ptr(), db.ptr(), dout.ptr(), a.ptr(), b.ptr(), 2, 3, 2);
  print_matrix("da = dout . bT", da);
  print_matrix("db = aT . dout", db);
  check(da.at({0, 0}) == 15 && da.at({1, 2}) == 23 && db.at({0, 0}) == 5 && db.at({2, 1}) == 9,
        "row sums of b and column sums of a");

  Tensor big_dout = random_matrix(33, 20, rng);  // (33, 20)
  Tensor da_fast({33, 17}), db_fast({17, 20}), da_loops({33, 17}), db_loops({17, 20});
  matmul_backward(da_fast.ptr(), db_fast.ptr(), big_dout.ptr(), big_a.ptr(), big_b.ptr(), 33, 17, 20);
  matmul_backward_loops(da_loops.ptr(), db_loops.ptr(), big_dout.ptr(), big_a.ptr(), big_b.ptr(), 33, 17, 20);
  check(max_abs_diff(da_fast, da_loops) < 1e-4 && max_abs_diff(db_fast, db_loops) < 1e-4,
        "Eigen's backward agrees with the index-formula loops");

  std::printf("[gradcheck]\n");
  // ANCHOR: gradcheck_call
  // Every element of a (4, 5) and a (5, 3), perturbed one at a time. This program runs the
  // float build, so the step is large (h = 1e-2, exact for a function linear in each input)
  // and the tolerance loose; test_engine_f64 runs the same check in double at 1e-6.
  Tensor ga = random_matrix(4, 5, rng), gb = random_matrix(5, 3, rng);  // (4, 5), (5, 3)
  GradCheckOptions options;
  options.step = 1e-2;
  GradCheckResult good =
      check_gradients([](Tape& tape, const std::vector<Var>& in) { return matmul(tape, in[0], in[1]); }, {&ga, &gb},
                      {"a", "b"}, options);
  GradCheckResult broken =
      check_gradients([](Tape& tape, const std::vector<Var>& in) { return matmul_without_db(tape, in[0], in[1]); },
                      {&ga, &gb}, {"a", "b"}, options);
  // ANCHOR_END: gradcheck_call
  std::printf("matmul: %zu elements checked, %s\n", good.checked,
              good.passed(1e-3) ? "max relative error below 1e-3: passed" : "FAILED");
  std::printf("matmul_without_db: max relative error %.2f: %s\n", broken.max_rel_error,
              broken.passed(1e-3) ? "passed (the check is blind!)" : "rejected");
  check(good.passed(1e-3), "the real backward passes the gradient check");
  check(!broken.passed(1e-3), "the broken backward is rejected");
  // The exact figures vary in their last digits with the build (not quoted by the lesson).
  std::printf("[gradcheck-detail]\n");
  std::printf("matmul: %s\n", good.str().c_str());
  std::printf("matmul_without_db: %s\n", broken.str().c_str());

  std::printf("[linear]\n");
  {
    // x holds two rows of K = 3 inputs; w holds N = 2 rows of K = 3 weights, one row per output,
    // stored (out, in) as in the model files. out[i][n] = Σ_k x[i][k] · w[n][k]: row i of x dotted
    // with row n of w, so no transpose is ever copied.
    Tensor x({2, 3}, {1, 2, 3, 4, 5, 6});   // (M, K) = (2, 3)
    Tensor w({2, 3}, {1, 0, -1, 2, 1, 0});  // (N, K) = (2, 3): out_features, in_features
    Tensor y({2, 2});                       // (M, N)
    linear_forward(y.ptr(), x.ptr(), w.ptr(), 2, 3, 2);
    print_matrix("x", x);
    print_matrix("w", w);
    print_matrix("x . wT", y);
    // y[0][0] = 1·1 + 2·0 + 3·(−1) = −2, y[1][1] = 4·2 + 5·1 + 6·0 = 13
    check(y.at({0, 0}) == -2 && y.at({0, 1}) == 4 && y.at({1, 0}) == -2 && y.at({1, 1}) == 13,
          "linear equals the hand-computed x . wT");
    Tensor wt({3, 2});  // (K, N): w transposed by hand, to compare with matmul
    for (int n = 0; n < 2; n++) {
      for (int k = 0; k < 3; k++) wt.at({k, n}) = w.at({n, k});
    }
    Tensor via_matmul({2, 2});
    matmul_forward(via_matmul.ptr(), x.ptr(), wt.ptr(), 2, 3, 2);
    check(max_abs_diff(y, via_matmul) == 0, "linear(x, w) equals matmul(x, wT)");

    // With dout all ones: dx = dout · w holds the column sums of w in every row, and
    // dw = doutᵀ · x holds the column sums of x in every row.
    Tensor dy({2, 2}, 1);  // (M, N)
    Tensor dx({2, 3}), dw({2, 3});
    linear_backward(dx.ptr(), dw.ptr(), dy.ptr(), x.ptr(), w.ptr(), 2, 3, 2);
    print_matrix("dx = dout . w", dx);
    print_matrix("dw = doutT . x", dw);
    check(dx.at({0, 0}) == 3 && dx.at({1, 2}) == -1 && dw.at({0, 0}) == 5 && dw.at({1, 2}) == 9,
          "column sums of w and of x");

    // The taped linear on a (2, 4, 5) input: the leading dimensions are folded into M = 8 rows.
    Tensor gx = random_matrix(8, 5, rng), gw = random_matrix(3, 5, rng);  // (8, 5), (N, K) = (3, 5)
    gx.shape = {2, 4, 5};                                                 // (B, T, K)
    GradCheckOptions options;
    options.step = 1e-2;
    GradCheckResult lin =
        check_gradients([](Tape& tape, const std::vector<Var>& in) { return linear(tape, in[0], in[1]); }, {&gx, &gw},
                        {"x", "w"}, options);
    std::printf("linear on (2, 4, 5) x (3, 5): %zu elements checked, %s\n", lin.checked,
                lin.passed(1e-3) ? "max relative error below 1e-3: passed" : "FAILED");
    check(lin.passed(1e-3), "linear's backward passes the gradient check");
  }

  std::printf("[threads]\n");
  // ANCHOR: static_split
  // schedule(static), OpenMP's default in GCC: M rows over P threads, in contiguous blocks of
  // M / P rows, the first M % P threads taking one row more.
  int M = 7, P = 2;
  for (int p = 0; p < P; p++) {
    int rows = M / P + (p < M % P ? 1 : 0);
    int first = p * (M / P) + std::min(p, M % P);
    std::printf("thread %d takes rows %d..%d\n", p, first, first + rows - 1);
  }
  // ANCHOR_END: static_split

  // What OpenMP really did (not quoted by the lesson: it depends on the build and the machine).
  std::printf("[threads-observed]\n");
  int saved_threads = num_threads();
  set_num_threads(P);
  std::vector<int> owner(M, -1);
#pragma omp parallel for schedule(static)
  for (int i = 0; i < M; i++) owner[i] = thread_index();
  set_num_threads(saved_threads);
  for (int i = 0; i < M; i++) std::printf("row %d ran on thread %d\n", i, owner[i]);

  // Timings: never quoted, they change from run to run.
  std::printf("[timing]\n");
  std::printf("OpenMP: %s; GFLOP/s, best of 5\n", have_openmp() ? "yes" : "no (one thread only)");
  std::printf("%-16s %-8s %10s %10s\n", "M x K x N", "threads", "naive", "Eigen");
  for (int size : {256, 512}) {
    Tensor x = random_matrix(size, size, rng), y = random_matrix(size, size, rng), z({size, size});
    for (int threads : {1, 2}) {
      if (threads > 1 && !have_openmp()) continue;
      set_num_threads(threads);
      double slow = gflops([&] { matmul_naive(z.ptr(), x.ptr(), y.ptr(), size, size, size); }, size, size, size, 5);
      double fast_rate =
          gflops([&] { matmul_forward(z.ptr(), x.ptr(), y.ptr(), size, size, size); }, size, size, size, 5);
      std::printf("%4d x %4d x %4d %-8d %10.1f %10.1f\n", size, size, size, threads, slow, fast_rate);
    }
  }
  set_num_threads(saved_threads);

  std::printf("%s\n", failures == 0 ? "all checks passed" : "SOME CHECKS FAILED");
  return failures == 0 ? 0 : 1;
}
