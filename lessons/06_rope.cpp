// Lesson 06: rotary position embeddings. Prints the tables, rotates a vector, shows that the
// query-key dot product depends only on the distance between positions, and demonstrates that
// the two pairing conventions (adjacent pairs, as in LLaMA and llama2.c; half split, as in
// GPT-NeoX and Hugging Face) give the same attention scores once the rows of wq and wk are
// permuted. Exits non-zero if any check fails.
//
//   build/lessons/lesson_06
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "engine/matmul.h"
#include "engine/rng.h"
#include "lessons/lesson_common.h"
#include "model/rope.h"

using namespace foundry;

namespace {

using lesson::check;
using lesson::failures;

std::vector<real> random_vector(size_t n, Rng& rng) {
  std::vector<real> v(n);
  for (real& x : v) x = static_cast<real>(rng.normal());
  return v;
}

double dot(const real* a, const real* b, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += double(a[i]) * b[i];
  return s;
}

// ANCHOR: rope_half_split
// The other convention (GPT-NeoX, Hugging Face): pair i is (x_i, x_{i + HS/2}), the first half
// of the head against the second, with the same angle pos · theta^(−2i/HS). One head vector.
void rope_half_split(real* y, const real* x, const real* cos, const real* sin, int HS, int pos) {
  int half = HS / 2;
  const real* c = cos + (size_t)pos * half;
  const real* s = sin + (size_t)pos * half;
  for (int i = 0; i < half; i++) {
    real x0 = x[i], x1 = x[i + half];
    y[i] = x0 * c[i] - x1 * s[i];
    y[i + half] = x0 * s[i] + x1 * c[i];
  }
}
// ANCHOR_END: rope_half_split

}  // namespace

int main() {
  std::printf("[tables]\n");
  {
    const int HS = 8, max_len = 101;
    std::vector<real> cos((size_t)max_len * HS / 2), sin(cos.size());
    rope_tables(cos.data(), sin.data(), max_len, HS, 10000.0);
    std::printf("HS = %d, theta = 10000: pair i turns by theta^(-2i/HS) radians per position\n", HS);
    std::printf("%4s %12s %16s %14s %14s\n", "pair", "rad/position", "period (pos.)", "cos at pos 1", "cos at pos 100");
    for (int i = 0; i < HS / 2; i++) {
      double freq = std::pow(10000.0, -2.0 * i / HS);
      std::printf("%4d %12.6f %16.1f %14.4f %14.4f\n", i, freq, 2 * M_PI / freq, cos[1 * HS / 2 + i],
                  cos[100 * HS / 2 + i]);
    }
    check(cos[0] == 1 && sin[0] == 0, "position 0 is not rotated");
  }

  // One set of tables for the rest: head size 8, 64 positions.
  const int HS = 8, max_len = 64;
  std::vector<real> cos((size_t)max_len * HS / 2), sin(cos.size());
  rope_tables(cos.data(), sin.data(), max_len, HS, 10000.0);
  auto rotate = [&](const std::vector<real>& x, int pos) {
    std::vector<real> y(HS);
    rope_forward(y.data(), x.data(), cos.data(), sin.data(), 1, 1, 1, HS, pos);  // one head at `pos`
    return y;
  };

  std::printf("[rotation]\n");
  {
    std::vector<real> x = {1, 0, 1, 0, 1, 0, 1, 0};
    std::vector<real> y = rotate(x, 1);
    std::printf("x          ");
    for (real v : x) std::printf(" %7.4f", v);
    std::printf("\nat pos 1   ");
    for (real v : y) std::printf(" %7.4f", v);
    std::printf("\n|x| = %.4f, |rope(x)| = %.4f\n", std::sqrt(dot(x.data(), x.data(), HS)),
                std::sqrt(dot(y.data(), y.data(), HS)));
    check(std::fabs(dot(y.data(), y.data(), HS) - dot(x.data(), x.data(), HS)) < 1e-5, "a rotation keeps the length");
  }

  std::printf("[relative]\n");
  {
    Rng rng(6);
    std::vector<real> q = random_vector(HS, rng), k = random_vector(HS, rng);
    std::printf("%-28s %10s\n", "query at m, key at n", "score");
    double first = 0, worst = 0;
    for (int m : {3, 10, 50}) {
      int n = m - 2;
      std::vector<real> qm = rotate(q, m), kn = rotate(k, n);
      double s = dot(qm.data(), kn.data(), HS);
      std::printf("m = %2d, n = %2d (m - n = 2)   %10.5f\n", m, n, s);
      if (m == 3) first = s;
      worst = std::max(worst, std::fabs(s - first));
    }
    std::vector<real> q3 = rotate(q, 3), k0 = rotate(k, 0);
    double other = dot(q3.data(), k0.data(), HS);
    std::printf("m =  3, n =  0 (m - n = 3)   %10.5f\n", other);
    check(worst < 1e-5, "the score depends on m - n only");
    check(std::fabs(other - first) > 1e-3, "another distance gives another score");
  }

  std::printf("[conventions]\n");
  {
    // A tiny attention input: T positions, model width C, NH heads of HS.
    const int T = 5, NH = 2, C = NH * HS;
    Rng rng(7);
    std::vector<real> x = random_vector((size_t)T * C, rng);   // (T, C)
    std::vector<real> wq = random_vector((size_t)C * C, rng);  // (NH·HS, C)
    std::vector<real> wk = random_vector((size_t)C * C, rng);  // (NH·HS, C)

    // ANCHOR: permute_rows
    // Row d of a head in the adjacent layout becomes row perm[d] in the half-split layout:
    // element 2i of a pair goes to i, element 2i+1 to i + HS/2. Applied to every head of wq, wk.
    std::vector<int> perm(HS);
    for (int i = 0; i < HS / 2; i++) perm[2 * i] = i, perm[2 * i + 1] = i + HS / 2;
    auto permute_rows = [&](const std::vector<real>& w) {
      std::vector<real> out(w.size());
      for (int h = 0; h < NH; h++)
        for (int d = 0; d < HS; d++) std::copy_n(&w[(size_t)(h * HS + d) * C], C, &out[(size_t)(h * HS + perm[d]) * C]);
      return out;
    };
    // ANCHOR_END: permute_rows

    // scores[h][t][u] = rope(q_t) · rope(k_u) for head h, with a given convention and weights
    auto scores = [&](const std::vector<real>& wq_, const std::vector<real>& wk_, bool half_split) {
      std::vector<real> q((size_t)T * C), k((size_t)T * C);
      linear_forward(q.data(), x.data(), wq_.data(), T, C, C);  // (T, NH, HS)
      linear_forward(k.data(), x.data(), wk_.data(), T, C, C);
      for (int t = 0; t < T; t++)
        for (int h = 0; h < NH; h++) {
          real* qh = &q[((size_t)t * NH + h) * HS];
          real* kh = &k[((size_t)t * NH + h) * HS];
          std::vector<real> tmp(HS);
          if (half_split) {
            rope_half_split(tmp.data(), qh, cos.data(), sin.data(), HS, t), std::copy(tmp.begin(), tmp.end(), qh);
            rope_half_split(tmp.data(), kh, cos.data(), sin.data(), HS, t), std::copy(tmp.begin(), tmp.end(), kh);
          } else {
            rope_forward(qh, qh, cos.data(), sin.data(), 1, 1, 1, HS, t);  // in place
            rope_forward(kh, kh, cos.data(), sin.data(), 1, 1, 1, HS, t);
          }
        }
      std::vector<double> s;
      for (int h = 0; h < NH; h++)
        for (int t = 0; t < T; t++)
          for (int u = 0; u < T; u++)
            s.push_back(dot(&q[((size_t)t * NH + h) * HS], &k[((size_t)u * NH + h) * HS], HS));
      return s;
    };
    auto max_diff = [](const std::vector<double>& a, const std::vector<double>& b) {
      double m = 0;
      for (size_t i = 0; i < a.size(); i++) m = std::max(m, std::fabs(a[i] - b[i]));
      return m;
    };
    std::vector<double> adjacent = scores(wq, wk, false);
    std::vector<double> half_same_weights = scores(wq, wk, true);
    std::vector<double> half_permuted = scores(permute_rows(wq), permute_rows(wk), true);
    std::printf("perm (adjacent row -> half-split row):");
    for (int d = 0; d < HS; d++) std::printf(" %d", perm[d]);
    std::printf("\nhead 0, query 4, keys 0..4, adjacent pairs:         ");
    for (int u = 0; u < T; u++) std::printf(" %8.3f", adjacent[4 * T + u]);
    std::printf("\nsame, half split, rows of wq and wk permuted:       ");
    for (int u = 0; u < T; u++) std::printf(" %8.3f", half_permuted[4 * T + u]);
    std::printf("\nsame, half split, weights NOT permuted:             ");
    for (int u = 0; u < T; u++) std::printf(" %8.3f", half_same_weights[4 * T + u]);
    std::printf("\nlargest score difference: permuted %.4f, not permuted %.2f\n", max_diff(adjacent, half_permuted),
                max_diff(adjacent, half_same_weights));
    check(max_diff(adjacent, half_permuted) < 1e-4, "half split with permuted wq, wk = adjacent pairs");
    check(max_diff(adjacent, half_same_weights) > 0.1, "without the permutation the scores differ");
  }

  std::printf("[backward]\n");
  {
    Rng rng(8);
    const int B = 2, T = 6, NHX = 3, n = B * T * NHX * HS;
    std::vector<real> x = random_vector(n, rng), g = random_vector(n, rng), y(n), dx(n, 0), back(n, 0);
    rope_forward(y.data(), x.data(), cos.data(), sin.data(), B, T, NHX, HS, 0);
    rope_backward(dx.data(), g.data(), cos.data(), sin.data(), B, T, NHX, HS, 0);
    double lhs = dot(y.data(), g.data(), n), rhs = dot(x.data(), dx.data(), n);
    std::printf("<rope(x), g> = %.5f, <x, rope_backward(g)> = %.5f\n", lhs, rhs);
    check(std::fabs(lhs - rhs) < 1e-3, "the backward is the transpose of the forward");
    rope_backward(back.data(), y.data(), cos.data(), sin.data(), B, T, NHX, HS, 0);
    double err = 0;
    for (int i = 0; i < n; i++) err = std::max(err, double(std::fabs(back[i] - x[i])));
    check(err < 1e-5, "rotating back by -a recovers x (the transpose of a rotation is its inverse)");
  }

  std::printf("%s\n", failures == 0 ? "all checks passed" : "SOME CHECKS FAILED");
  return failures == 0 ? 0 : 1;
}
