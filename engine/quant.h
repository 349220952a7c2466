// Block quantization: the Q8_0 and Q4_0 formats of llama.cpp (ggml), byte for byte.
//
// A row of K weights (K a multiple of 32) is cut into K / 32 blocks. Each block stores one scale
// d, as an IEEE half-precision float (fp16), and 32 small integers q; the value it stands for is
// x ≈ d · q. Nothing else: no zero point, no per-row data, so a row of blocks can be read, dot
// multiplied or copied into a GGUF file one block at a time.
//
//   Q8_0, 34 bytes:  d (fp16, 2 bytes), qs[32] (int8)            x_j = d · qs[j]
//     d = amax / 127 with amax = max |x_j|; qs[j] = round(x_j / d), halves away from zero
//     (C's roundf). 8.5 bits per weight.
//   Q4_0, 18 bytes:  d (fp16, 2 bytes), qs[16] (two 4-bit values per byte)
//     byte j holds value j in its low nibble and value j + 16 in its high nibble;
//     a nibble n stands for n − 8, so x_j = d · (n_j − 8), n_j ∈ 0..15.
//     d = m / −8, where m is the value of largest magnitude *with its sign* (the first one when
//     several tie), so m itself maps exactly to n = 0 (−8 · d = m) and the other end of the
//     range gets 7 steps; n_j = min(15, trunc(x_j / d + 8.5)). 4.5 bits per weight.
//
// The scale is computed in fp32 and divided by in fp32 (through 1/d, as llama.cpp does), then
// rounded to fp16 for storage; dequantization multiplies by the stored fp16 scale. These are
// llama.cpp's reference rules (quantize_row_q8_0_ref, quantize_row_q4_0_ref), so a row we
// quantize has the same bytes as the row llama.cpp quantizes from the same floats.
//
// fp16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. Largest finite 65504, smallest
// normal 2^-14, smallest subnormal 2^-24. fp32 -> fp16 rounds to nearest, ties to even, as the
// F16C instruction vcvtps2ph does; values of magnitude 65520 and above become infinity.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace foundry {

// --- fp16 -------------------------------------------------------------------------------------

// Round to nearest even. NaN stays NaN (quieted, the top mantissa bits kept), ±inf stays ±inf.
uint16_t fp32_to_fp16(float value);
// Exact: every fp16 value is an fp32 value.
float fp16_to_fp32(uint16_t bits);

// --- the block formats --------------------------------------------------------------------------

constexpr int QK = 32;  // values per block, both formats

struct BlockQ8_0 {
  uint16_t d;      // scale, fp16 bits
  int8_t qs[QK];   // values, x_j = d · qs[j]
};
struct BlockQ4_0 {
  uint16_t d;          // scale, fp16 bits
  uint8_t qs[QK / 2];  // byte j: value j in bits 0-3, value j + 16 in bits 4-7; x = d · (nibble − 8)
};
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block must be 34 bytes, as in llama.cpp");
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block must be 18 bytes, as in llama.cpp");

enum class QuantType { q8_0, q4_0 };

// "q8_0" / "q4_0".
const char* quant_type_name(QuantType type);
// Parses "q8_0" / "q4_0"; throws std::invalid_argument naming the text otherwise.
QuantType parse_quant_type(const std::string& text);
// Bytes of one block: 34 or 18.
size_t quant_block_bytes(QuantType type);
// Bytes of a row of k values (k a multiple of QK): k / QK blocks.
size_t quant_row_bytes(QuantType type, int64_t k);

// --- reference quantization of one row ----------------------------------------------------------
//
// x has k values, k a multiple of QK (std::invalid_argument otherwise). The quantizers also
// refuse a non-finite value and a scale too large for fp16 (|d| > 65504), naming the block:
// llama.cpp would store an infinite scale and every value of the block would be lost.

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t k);
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t k);
void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t k);
void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t k);

// Type-erased forms over raw bytes (quant_row_bytes(type, k) of them).
void quantize_row(QuantType type, const float* x, void* blocks, int64_t k);
void dequantize_row(QuantType type, const void* blocks, float* y, int64_t k);

}  // namespace foundry
