// Lesson 21: mixed precision. bfloat16 against float16 and float32, bit by bit; rounding to
// nearest even; why master weights stay float32; and a small product in bf16 against fp32:
//
//   [formats]         numbers in float32, bfloat16 and float16: bits, value, what is lost
//   [rounding]        ties to even, checked against the definition
//   [master_weights]  a thousand small updates to a weight kept in fp32 and to one kept in bf16
//   [gemm]            a (64 × 256) · (256 × 48) product: naive bf16, the fast kernel, fp32, exact
//   [speed]           fp32 against bf16 products on one core (volatile: the lesson does not quote it)
//
// Exits non-zero if a check fails.
//
//   build/lessons/lesson_21
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "engine/bf16.h"
#include "engine/matmul.h"
#include "engine/matmul_bf16.h"
#include "engine/parallel.h"
#include "engine/quant.h"
#include "engine/rng.h"
#include "lessons/lesson_common.h"

using namespace foundry;

namespace {

uint32_t float_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

// float16 (1 sign, 5 exponent, 10 mantissa bits), rounded to nearest even by the engine's fp16
// conversion (engine/quant.h, the format of llama.cpp's block scales), as a double: only to show
// what fp16 keeps. Normal numbers have 11 significant bits; below 2^-14 the spacing stops
// shrinking (subnormals, down to 2^-24); from 65520 on, the result is infinity.
double round_to_fp16(double x) { return fp16_to_fp32(fp32_to_fp16(static_cast<float>(x))); }

std::string bits(uint32_t u, int n, int sign_exp_split, int exp_mant_split) {
  std::string s;
  for (int i = n - 1; i >= 0; i--) {
    s += ((u >> i) & 1) ? '1' : '0';
    if (i == n - sign_exp_split || i == n - exp_mant_split) s += ' ';
  }
  return s;
}

void print_formats() {
  std::printf("[formats]\n");
  std::printf("          sign exponent mantissa   range (normal)         significant bits\n");
  std::printf("float32   1    8        23         1.2e-38 .. 3.4e38      24\n");
  std::printf("bfloat16  1    8        7          1.2e-38 .. 3.4e38       8\n");
  std::printf("float16   1    5        10         6.1e-05 .. 65504       11\n\n");
  for (float x : {1.0f / 3.0f, 3.14159265f, 1e-8f, 70000.0f}) {
    const bf16 h = float_to_bf16(x);
    std::printf("x = %.9g\n", double(x));
    std::printf("  float32   %s  %.9g\n", bits(float_bits(x), 32, 1, 9).c_str(), double(x));
    std::printf("  bfloat16  %s                  %.9g\n", bits(h, 16, 1, 9).c_str(), double(bf16_to_float(h)));
    std::printf("  float16   %.9g\n", round_to_fp16(x));
  }
  std::printf("\n");
  // bf16 keeps fp32's range: a gradient of 1e-8 survives, where fp16 flushes it to zero (that is
  // why fp16 training multiplies the loss by a scale factor first, and bf16 training does not).
  lesson::check(bf16_to_float(float_to_bf16(1e-8f)) != 0 && round_to_fp16(1e-8) == 0,
                "1e-8 survives in bf16 and underflows to 0 in fp16");
  lesson::check(std::isfinite(bf16_to_float(float_to_bf16(70000.0f))) && std::isinf(round_to_fp16(70000.0)),
                "70000 is finite in bf16 and overflows in fp16");
}

void print_rounding() {
  std::printf("[rounding]\n");
  // Around 1 the bf16 numbers are 2^-7 = 0.0078125 apart; the halfway points are ties.
  const float one = 1.0f, step = std::ldexp(1.0f, -7);
  struct Example {
    float x;
    const char* what;
  };
  const Example examples[] = {
      {one + step / 4, "a quarter step above 1: down"},
      {one + step / 2, "halfway between 1 (even) and 1 + 2^-7 (odd): to 1, the even one"},
      {one + 3 * step / 2, "halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): up"},
      {std::nextafter(one + step / 2, 2.0f), "just above halfway: up"},
      {3.4e38f, "above the largest bf16 by more than half a step: infinity"},
  };
  bool all_ok = true;
  for (const Example& e : examples) {
    const float r = round_to_bf16(e.x);
    // The definition: the nearer neighbour, the even one on a tie.
    const float below = bf16_to_float(static_cast<bf16>(float_bits(e.x) >> 16));
    const float above = bf16_to_float(static_cast<bf16>((float_bits(e.x) >> 16) + 1));
    // Past the largest bf16 the next number up is 2^128 (infinity, if the exponent had room).
    const double above_value = std::isinf(above) ? std::ldexp(1.0, 128) : double(above);
    const double d_below = double(e.x) - double(below), d_above = above_value - double(e.x);
    const bool even_below = ((float_bits(below) >> 16) & 1) == 0;
    const float want = d_below < d_above ? below : d_above < d_below ? above : even_below ? below : above;
    all_ok = all_ok && (r == want || (std::isinf(r) && std::isinf(want)));
    std::printf("%-14.9g -> %-12.9g %s\n", double(e.x), double(r), e.what);
  }
  lesson::check(all_ok, "float_to_bf16 rounds to the nearest, ties to even");
}

// ANCHOR: master_weights
// A weight of 1.0 gets 1000 updates of +0.001 (what lr · AdamW's step often is). In fp32 they add
// up to 2. Kept in bf16, each update is smaller than half the spacing of bf16 numbers near 1
// (2^-8 ≈ 0.0039), so w + 0.001 rounds back to w: every single update is lost.
void print_master_weights() {
  std::printf("[master_weights]\n");
  float w32 = 1.0f;
  bf16 w16 = float_to_bf16(1.0f);
  for (int step = 0; step < 1000; step++) {
    w32 += 0.001f;
    w16 = float_to_bf16(bf16_to_float(w16) + 0.001f);
  }
  std::printf("after 1000 updates of +0.001 to 1.0: fp32 weight %.4f, bf16 weight %.4f\n", double(w32),
              double(bf16_to_float(w16)));
  lesson::check(std::fabs(w32 - 2.0f) < 1e-3f && bf16_to_float(w16) == 1.0f,
                "updates survive in fp32 master weights and vanish in bf16 weights");
}
// ANCHOR_END: master_weights

double max_relative(const std::vector<float>& got, const std::vector<double>& exact, const std::vector<double>& mag) {
  double worst = 0;
  for (size_t i = 0; i < got.size(); i++) worst = std::max(worst, std::fabs(got[i] - exact[i]) / mag[i]);
  return worst;
}

void print_gemm() {
  std::printf("[gemm]\n");
  const int M = 64, K = 256, N = 48;
  Rng rng(21);
  std::vector<float> a(size_t(M) * K), b(size_t(K) * N);
  for (float& v : a) v = static_cast<float>(rng.normal());
  for (float& v : b) v = static_cast<float>(rng.normal());
  // The exact product in double, and Σ|a_ik b_kj| to measure errors against.
  std::vector<double> exact(size_t(M) * N, 0.0), mag(size_t(M) * N, 0.0);
  for (int i = 0; i < M; i++) {
    for (int j = 0; j < N; j++) {
      for (int k = 0; k < K; k++) {
        exact[size_t(i) * N + j] += double(a[size_t(i) * K + k]) * b[size_t(k) * N + j];
        mag[size_t(i) * N + j] += std::fabs(double(a[size_t(i) * K + k]) * b[size_t(k) * N + j]);
      }
    }
  }
  std::vector<float> fp32(size_t(M) * N), naive(size_t(M) * N), fast(size_t(M) * N);
  matmul_forward(fp32.data(), a.data(), b.data(), M, K, N);
  const StridedMatrix A{a.data(), K, 1}, B{b.data(), N, 1};
  bf16_gemm(Bf16Kernel::naive, naive.data(), N, A, B, M, K, N, false);
  bf16_gemm(bf16_kernel_default(), fast.data(), N, A, B, M, K, N, false);
  const double e32 = max_relative(fp32, exact, mag), e16 = max_relative(naive, exact, mag);
  std::printf("(%d x %d) . (%d x %d), error against the exact product, worst over elements, in units of sum|a b|:\n", M,
              K, K, N);
  // (The fp32 figure depends on the order Eigen's kernel for this CPU adds in: shown as a bound.)
  std::printf("  fp32 product         %s   (float rounding of the sums: about 2^-24 each)\n",
              e32 < 1e-6 ? "< 1e-06" : "> 1e-06");
  std::printf("  bf16 product, naive  %.1e   (each input rounded: up to 2^-8 per term)\n", e16);
  double agree = 0;
  for (size_t i = 0; i < fast.size(); i++) agree = std::max(agree, std::fabs(fast[i] - naive[i]) / mag[i]);
  lesson::check(e16 < std::ldexp(1.0, -8) && e16 > 100 * e32, "bf16 errors are bf16-sized, fp32 errors fp32-sized");
  lesson::check(agree <= K * std::ldexp(1.0, -23), "the fast bf16 kernel agrees with the naive one to float rounding");
}

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void print_speed() {
  std::printf("[speed]\n");
  set_num_threads(1);
  const int M = 1024, K = 512, N = 1376;
  std::vector<float> x(size_t(M) * K, 0.5f), w(size_t(N) * K, 0.25f), out(size_t(M) * N);
  auto time_it = [&] {
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
      const double t0 = seconds_now();
      linear_forward(out.data(), x.data(), w.data(), M, K, N);
      best = std::min(best, seconds_now() - t0);
    }
    return 2.0 * M * K * N / best / 1e9;
  };
  const double f = time_it();
  double b;
  {
    MatmulPrecisionScope bf16_products(MatmulPrecision::bf16);
    std::printf("%s\n", matmul_precision_description().c_str());
    b = time_it();
  }
  std::printf("(%d x %d) . (%d x %d)ᵀ at one thread: fp32 %.0f GFLOP/s, bf16 %.0f GFLOP/s (%.2fx)\n", M, K, N, K, f, b,
              b / f);
}

}  // namespace

int main() {
  print_formats();
  print_rounding();
  print_master_weights();
  print_gemm();
  print_speed();
  return lesson::failures == 0 ? 0 : 1;
}
