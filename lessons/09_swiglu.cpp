// Lesson 09: SwiGLU, the gated feed-forward network. Tabulates silu against relu, sizes the
// hidden layer the way LLaMA does, checks the hand-derived backward against finite differences
// of the double-precision formula (and catches a dropped term), and prints the feed-forward
// network as the tape records it. Exits non-zero if any check fails.
//
//   build/lessons/lesson_09
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/tape.h"
#include "lessons/lesson_common.h"
#include "model/config.h"
#include "model/swiglu.h"

using namespace foundry;

namespace {

using lesson::check;
using lesson::failures;

double sigmoid(double a) { return 1 / (1 + std::exp(-a)); }
double swiglu_d(double a, double b) { return a * sigmoid(a) * b; }  // the formula, in double

// ANCHOR: llama_hidden_dim
// LLaMA's rule for the hidden width: two thirds of the classic 4·C (so that three matrices
// cost about what two matrices of width 4·C did), rounded up to a multiple of `multiple_of`.
int llama_hidden_dim(int dim, int multiple_of) {
  int hidden = 2 * (4 * dim) / 3;
  return multiple_of * ((hidden + multiple_of - 1) / multiple_of);
}
// ANCHOR_END: llama_hidden_dim

}  // namespace

int main() {
  std::printf("[gate]\n");
  {
    std::printf("%6s %10s %10s %10s\n", "a", "sigma(a)", "silu(a)", "relu(a)");
    for (double a : {-6.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 6.0}) {
      std::printf("%6.2f %10.4f %10.4f %10.4f\n", a, sigmoid(a), a * sigmoid(a), std::max(a, 0.0));
    }
    // silu's minimum: d/da [a σ(a)] = σ(a)(1 + a(1 − σ(a))) = 0, found by bisection
    double lo = -3, hi = 0;
    for (int it = 0; it < 60; it++) {
      double mid = (lo + hi) / 2, s = sigmoid(mid);
      (s * (1 + mid * (1 - s)) < 0 ? lo : hi) = mid;
    }
    std::printf("silu is smallest at a = %.4f, where it is %.4f\n", lo, lo * sigmoid(lo));
    check(lo < -1.27 && lo > -1.28, "silu's minimum is near a = -1.278");
  }

  std::printf("[hidden]\n");
  {
    ModelConfig tiny;  // the defaults are the tiny reference configuration
    int F = llama_hidden_dim(tiny.dim, 32);
    long swiglu_params = 3L * tiny.dim * F, mlp_params = 2L * tiny.dim * 4 * tiny.dim;
    std::printf("C = %d: 2/3 of 4C = %d, rounded up to a multiple of 32: F = %d (configs/tiny.json: %d)\n", tiny.dim,
                2 * 4 * tiny.dim / 3, F, tiny.hidden_dim);
    std::printf("SwiGLU, three (F, C) matrices: %ld parameters\n", swiglu_params);
    std::printf("classic MLP, two (4C, C) matrices: %ld parameters\n", mlp_params);
    check(F == tiny.hidden_dim, "the tiny config follows LLaMA's rule");
  }

  std::printf("[backward]\n");
  {
    const int n = 6;
    real a[n] = {-3.0f, -1.0f, -0.2f, 0.4f, 1.5f, 4.0f};
    real b[n] = {0.5f, -1.0f, 2.0f, 1.0f, -0.3f, 0.8f};
    real dh[n] = {1.0f, 0.5f, -1.0f, 2.0f, 1.0f, -0.5f};
    real da[n] = {0}, db[n] = {0};
    swiglu_backward(da, db, dh, a, b, n);
    const double step = 1e-6;
    double err = 0, bug_err = 0;
    std::printf("%6s %6s %11s %11s %11s %11s %13s\n", "a", "b", "da", "da (f.d.)", "db", "db (f.d.)", "da, no a*s'");
    for (int i = 0; i < n; i++) {
      // central differences of dh · h, the probe loss of this element
      double da_num = dh[i] * (swiglu_d(a[i] + step, b[i]) - swiglu_d(a[i] - step, b[i])) / (2 * step);
      double db_num = dh[i] * (swiglu_d(a[i], b[i] + step) - swiglu_d(a[i], b[i] - step)) / (2 * step);
      double da_bug = dh[i] * b[i] * sigmoid(a[i]);  // forgets that a also appears inside σ(a)
      std::printf("%6.2f %6.2f %11.5f %11.5f %11.5f %11.5f %13.5f\n", a[i], b[i], da[i], da_num, db[i], db_num, da_bug);
      err = std::max({err, std::fabs(da[i] - da_num), std::fabs(db[i] - db_num)});
      bug_err = std::max(bug_err, std::fabs(da_bug - da_num));
    }
    check(err < 1e-5, "the hand-derived backward matches finite differences");
    check(bug_err > 1e-2, "the backward that drops a * sigma'(a) is caught");
  }

  std::printf("[tape]\n");
  {
    const int N = 4, C = 8, F = 12;
    Rng rng(9);
    auto random_tensor = [&rng](Shape shape) {
      Tensor t(shape);
      for (real& v : t.data) v = static_cast<real>(0.3 * rng.normal());
      return t;
    };
    Tensor x = random_tensor({N, C}), w1 = random_tensor({F, C}), w3 = random_tensor({F, C}),
           w2 = random_tensor({C, F});
    Tensor dx({N, C}), dw1({F, C}), dw3({F, C}), dw2({C, F});
    Tape tape;
    // one statement per leaf: the order of a call's arguments is unspecified in C++
    Var xv = tape.param(x, dx, "x");
    Var w1v = tape.param(w1, dw1, "w1");
    Var w3v = tape.param(w3, dw3, "w3");
    Var w2v = tape.param(w2, dw2, "w2");
    Var out = feed_forward(tape, xv, w1v, w3v, w2v);
    std::printf("%s", tape.str().c_str());
    check(tape.value(out).shape == Shape({N, C}), "the network maps (N, C) to (N, C)");
  }

  std::printf("%s\n", failures == 0 ? "all checks passed" : "SOME CHECKS FAILED");
  return failures == 0 ? 0 : 1;
}
