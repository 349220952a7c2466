// exp(x) written so that a loop calling it vectorizes.
//
// std::exp is a call into the C library, one number at a time: g++ only turns a loop of them
// into SIMD calls under -ffast-math, which we do not use (it would also change every other
// floating-point expression). A training step of the small config computes about 40 million
// exponentials (the loss's softmax over the vocabulary, SwiGLU forward and backward), and as
// scalar calls they took about a sixth of the step. This version is plain arithmetic, inlined,
// so g++ computes 16 of them per AVX-512 instruction. The method (Cody and Waite's, as in the
// Cephes library):
//
//   exp(x) = 2^n · exp(r),   n = round(x / ln 2),   r = x − n·ln 2  ∈ [−ln2/2, ln2/2]
//
// 2^n is built directly in the exponent bits of a float; exp(r) on that short interval is a
// degree-7 polynomial (minimax coefficients, within about 1 ulp of float). ln 2 is split in a
// high part with few bits (n·ln2_hi is exact) and a low correction, so r keeps its digits.
// Below −87.3 the true result is under the smallest normal float and we return 0 (std::exp
// would return a subnormal); above 88 we return infinity (std::exp overflows a little later, at
// 88.7). Nothing in the model comes near either end except through a softmax's shift, where 0 is
// the right answer anyway.
//
// In the double build (gradient checks) this is std::exp: the checks need every digit, and
// their speed does not matter. tests/engine/test_fast_exp.cpp holds it to 2 ulp of std::exp.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "engine/real.h"

namespace foundry {

// ANCHOR: fast_exp
inline float fast_exp_float(float x) {
  const float lo = -87.33654f, hi = 88.0f;  // exp(lo) ≈ the smallest normal float
  // Clamp first, so that everything below works on a number in [lo, hi] and n below is an
  // integer in [−126, 127]. subtle: written so that a NaN, for which every comparison is false,
  // also lands on lo; converting a NaN to an integer would be undefined behaviour. The NaN
  // comes back at the end.
  const float xc = x >= lo ? (x <= hi ? x : hi) : lo;
  // round(x / ln 2): adding 1.5·2^23 pushes the fraction out of a float's 23 mantissa bits
  // (std::floor would do, but g++ does not vectorize it without -ffast-math)
  const float shift = 12582912.0f;
  // Every multiply-add below is an explicit std::fma: left to -ffp-contract=fast, g++ and clang
  // fuse different ones and the two builds would round differently.
  const float n = std::fma(xc, 1.44269504f, shift) - shift;
  float r = std::fma(-n, 0.693359375f, xc);  // ln 2, high part: n · it is exact
  r = std::fma(-n, -2.12194440e-4f, r);      // ln 2, low part
  // exp(r) = 1 + r + r²·(1/2 + r/6 + ...), Cephes' coefficients
  float p = 1.9875691500e-4f;
  p = std::fma(p, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  p = std::fma(p * r, r, r) + 1.0f;
  // 2^n: the biased exponent n + 127 ∈ [1, 254] in bits 23..30 of a float
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  float two_n;
  std::memcpy(&two_n, &bits, sizeof two_n);
  float y = p * two_n;
  y = x < lo ? 0.0f : y;  // std::exp would give a subnormal here
  y = x > hi ? INFINITY : y;
  return x == x ? y : x;  // x is NaN: NaN out
}
// ANCHOR_END: fast_exp

inline float fast_exp(float x) { return fast_exp_float(x); }
inline double fast_exp(double x) { return std::exp(x); }  // the double build: exact std::exp

}  // namespace foundry
