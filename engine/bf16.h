// bfloat16: the top half of a float32.
//
//   float32   s eeeeeeee mmmmmmmmmmmmmmmmmmmmmmm    1 + 8 + 23 bits
//   bfloat16  s eeeeeeee mmmmmmm                    1 + 8 + 7 bits
//
// Same sign, same 8-bit exponent (so the same range, about 1e-38 to 3e38: no loss scaling as
// fp16 needs), 7 stored mantissa bits instead of 23: 8 significant bits counting the implicit
// one, a relative rounding error of at most 2^-9 ≈ 0.2%. Widening is exact (append 16 zero bits);
// narrowing rounds.
//
// Rounding to nearest, ties to even, on the bit pattern: adding 0x7FFF plus the lowest kept bit
// and dropping the low 16 bits rounds the magnitude to the nearest bf16, a tie to the one whose
// last kept bit is 0. It works across the whole line because float bit patterns of one sign are
// ordered like their values: a carry out of the mantissa steps the exponent up (1.11111111b·2^e
// rounds to 2^(e+1)), out of the largest finite value it gives infinity (the IEEE overflow
// result under round-to-nearest), and subnormals are evenly spaced integers like any binade.
// Only NaN needs care: adding could carry a NaN's payload into an infinity, so a NaN is
// returned quiet instead (top mantissa bit set), keeping its sign.
#pragma once

#include <cstdint>
#include <cstring>

namespace foundry {

using bf16 = uint16_t;  // the 16 bits of a bfloat16 number; arithmetic widens to float first

// ANCHOR: bf16_convert
inline bf16 float_to_bf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<bf16>((bits >> 16) | 0x0040u);  // NaN: stay NaN
  const uint32_t lowest_kept_bit = (bits >> 16) & 1u;
  bits += 0x7FFFu + lowest_kept_bit;  // round half to even: a tie rounds up only from an odd value
  return static_cast<bf16>(bits >> 16);
}

inline float bf16_to_float(bf16 h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;  // exact: the dropped bits were zeros
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

// x rounded to the nearest bfloat16, as a float: what a bf16 product sees of x.
inline float round_to_bf16(float x) { return bf16_to_float(float_to_bf16(x)); }
// ANCHOR_END: bf16_convert

// float_to_bf16 on n numbers, dst[i] = float_to_bf16(src[i]): the same bits, written without a
// branch so that the compiler turns the loop into vector instructions (16 numbers at a time
// with AVX-512). A product of depth K does 2·K operations per number of an operand, a few
// nanoseconds on bf16 units; converting that number one at a time would be a visible part of it.
inline void floats_to_bf16(const float* src, bf16* dst, long n) {
  for (long i = 0; i < n; i++) {
    uint32_t bits;
    std::memcpy(&bits, src + i, sizeof bits);
    const uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    const uint32_t quiet_nan = (bits >> 16) | 0x0040u;
    dst[i] = static_cast<bf16>((bits & 0x7FFFFFFFu) > 0x7F800000u ? quiet_nan : rounded);
  }
}

}  // namespace foundry
