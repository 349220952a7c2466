// Block quantization: fp16 conversion and the reference Q8_0 / Q4_0 row quantizers. The rules
// and layouts are written down in quant.h.
#include "engine/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace foundry {

namespace {

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Shifts m right by `shift` bits (1..31), rounding to nearest with ties to even.
uint32_t shift_round_even(uint32_t m, int shift) {
  const uint32_t kept = m >> shift;
  const uint32_t rest = m & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  return kept + ((rest > half || (rest == half && (kept & 1))) ? 1 : 0);
}

void check_row_length(int64_t k, const char* what) {
  if (k < 0 || k % QK != 0) {
    throw std::invalid_argument(std::string(what) + ": row length " + std::to_string(k) +
                                " is not a multiple of the block size " + std::to_string(QK));
  }
}

// The checks both quantizers share: finite inputs, a scale fp16 can hold.
void check_block(const float* x, int64_t block, float d, const char* what) {
  for (int j = 0; j < QK; ++j) {
    if (!std::isfinite(x[j])) {
      throw std::invalid_argument(std::string(what) + ": value " + std::to_string(x[j]) + " at index " +
                                  std::to_string(block * QK + j) + " is not finite");
    }
  }
  if (std::fabs(d) > 65504.0f) {
    throw std::invalid_argument(std::string(what) + ": block " + std::to_string(block) + " needs scale " +
                                std::to_string(d) + ", beyond fp16's largest value 65504");
  }
}

}  // namespace

uint16_t fp32_to_fp16(float value) {
  const uint32_t x = float_bits(value);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t a = x & 0x7fffffffu;  // magnitude bits
  if (a >= 0x7f800000u) {              // inf or NaN
    if (a == 0x7f800000u) return sign | 0x7c00u;
    return static_cast<uint16_t>(sign | 0x7c00u | 0x0200u | ((a >> 13) & 0x03ffu));  // quiet NaN
  }
  if (a >= 0x47800000u) return sign | 0x7c00u;  // ≥ 65536: beyond rounding range, infinity
  if (a >= 0x38800000u) {
    // Normal in fp16 (≥ 2^-14): rebias the exponent (127 → 15) and round the 23-bit mantissa to
    // 10 bits. A carry out of the mantissa correctly bumps the exponent, up to infinity
    // (0x7c00) for values from 65520 on.
    return static_cast<uint16_t>(sign | shift_round_even(a - 0x38000000u, 13));
  }
  if (a < 0x33000000u) return sign;  // below 2^-25 (half the smallest subnormal): zero
  // Subnormal in fp16: the value is n · 2^-24 with n < 1024. With the implicit bit restored,
  // the fp32 value is m · 2^(e − 150), so n = m · 2^(e − 126): shift right by 126 − e (14..24).
  // Rounding up to 1024 gives exactly the encoding of the smallest normal, 0x0400.
  const int e = static_cast<int>(a >> 23);
  const uint32_t m = (a & 0x007fffffu) | 0x00800000u;
  return static_cast<uint16_t>(sign | shift_round_even(m, 126 - e));
}

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x03ffu;
  if (exponent == 0x1f) return bits_float(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
  if (exponent != 0) return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
  if (mantissa == 0) return bits_float(sign);  // ±0
  // Subnormal n · 2^-24: normalize, moving the leading bit up to the implicit position.
  uint32_t e = 113;  // the exponent 2^-14 as fp32 biased, before normalizing
  while ((mantissa & 0x0400u) == 0) {
    mantissa <<= 1;
    --e;
  }
  return bits_float(sign | (e << 23) | ((mantissa & 0x03ffu) << 13));
}

const char* quant_type_name(QuantType type) { return type == QuantType::q8_0 ? "q8_0" : "q4_0"; }

QuantType parse_quant_type(const std::string& text) {
  if (text == "q8_0") return QuantType::q8_0;
  if (text == "q4_0") return QuantType::q4_0;
  throw std::invalid_argument("unknown quantization type '" + text + "' (expected q8_0 or q4_0)");
}

size_t quant_block_bytes(QuantType type) {
  return type == QuantType::q8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0);
}

size_t quant_row_bytes(QuantType type, int64_t k) {
  check_row_length(k, "quant_row_bytes");
  return static_cast<size_t>(k / QK) * quant_block_bytes(type);
}

// ANCHOR: quantize_q8_0
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t k) {
  check_row_length(k, "quantize_row_q8_0");
  for (int64_t b = 0; b < k / QK; ++b) {
    const float* xb = x + b * QK;
    float amax = 0.0f;
    for (int j = 0; j < QK; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    check_block(xb, b, d, "quantize_row_q8_0");
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    // |xb[j] · id| ≤ 127 up to one rounding, so the int8 cast cannot overflow.
    for (int j = 0; j < QK; ++j) y[b].qs[j] = static_cast<int8_t>(std::round(xb[j] * id));
  }
}
// ANCHOR_END: quantize_q8_0

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t k) {
  check_row_length(k, "dequantize_row_q8_0");
  for (int64_t b = 0; b < k / QK; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < QK; ++j) y[b * QK + j] = d * static_cast<float>(x[b].qs[j]);
  }
}

// ANCHOR: quantize_q4_0
void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t k) {
  check_row_length(k, "quantize_row_q4_0");
  for (int64_t b = 0; b < k / QK; ++b) {
    const float* xb = x + b * QK;
    float amax = 0.0f;  // largest magnitude
    float m = 0.0f;     // the value that has it, with its sign; the first of a tie
    for (int j = 0; j < QK; ++j) {
      if (amax < std::fabs(xb[j])) {
        amax = std::fabs(xb[j]);
        m = xb[j];
      }
    }
    const float d = m / -8.0f;
    check_block(xb, b, d, "quantize_row_q4_0");
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < QK / 2; ++j) {
      // x · id lies in [−8, 8] (up to one rounding), so + 8.5 lies in about [0.5, 16.5]:
      // truncation rounds halves up, and only the far end (16) needs the clamp to 15.
      const int lo = std::min(15, static_cast<int>(xb[j] * id + 8.5f));
      const int hi = std::min(15, static_cast<int>(xb[j + QK / 2] * id + 8.5f));
      y[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}
// ANCHOR_END: quantize_q4_0

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t k) {
  check_row_length(k, "dequantize_row_q4_0");
  for (int64_t b = 0; b < k / QK; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < QK / 2; ++j) {
      y[b * QK + j] = d * static_cast<float>((x[b].qs[j] & 0x0f) - 8);
      y[b * QK + j + QK / 2] = d * static_cast<float>((x[b].qs[j] >> 4) - 8);
    }
  }
}

void quantize_row(QuantType type, const float* x, void* blocks, int64_t k) {
  if (type == QuantType::q8_0) {
    quantize_row_q8_0(x, static_cast<BlockQ8_0*>(blocks), k);
  } else {
    quantize_row_q4_0(x, static_cast<BlockQ4_0*>(blocks), k);
  }
}

void dequantize_row(QuantType type, const void* blocks, float* y, int64_t k) {
  if (type == QuantType::q8_0) {
    dequantize_row_q8_0(static_cast<const BlockQ8_0*>(blocks), y, k);
  } else {
    dequantize_row_q4_0(static_cast<const BlockQ4_0*>(blocks), y, k);
  }
}

}  // namespace foundry
