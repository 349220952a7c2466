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
#include <vector>

namespace foundry {

// --- fp16 -------------------------------------------------------------------------------------

// Round to nearest even. NaN stays NaN (quieted, the top mantissa bits kept), ±inf stays ±inf.
uint16_t fp32_to_fp16(float value);
// Exact: every fp16 value is an fp32 value.
float fp16_to_fp32(uint16_t bits);

// --- the block formats --------------------------------------------------------------------------

constexpr int QK = 32;  // values per block, both formats

struct BlockQ8_0 {
  uint16_t d;     // scale, fp16 bits
  int8_t qs[QK];  // values, x_j = d · qs[j]
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

// --- a quantized matrix and its matrix-vector product -------------------------------------------
//
// A weight matrix (N, K), stored as N rows of K / QK blocks, row after row: the layout of a
// ggml tensor of this type, and of the U8 tensors of a quantized model file.
struct QuantMatrix {
  QuantType type = QuantType::q8_0;
  int rows = 0;                 // N
  int cols = 0;                 // K, a multiple of QK
  std::vector<uint8_t> blocks;  // rows · quant_row_bytes(type, cols) bytes
  size_t row_bytes() const { return quant_row_bytes(type, cols); }
};

// Quantizes a row-major (N, K) float matrix row by row (the reference rules above).
QuantMatrix quantize_matrix(QuantType type, const float* w, int N, int K);
// The floats the blocks stand for, (N, K) row-major.
void dequantize_matrix(const QuantMatrix& m, float* out);

// ANCHOR: quant_dot_definition
// out (N) = W (N, K) · x (K) for a quantized W, as llama.cpp computes it: x is first quantized to
// Q8_0 blocks (the same rules as a weight row), then each output is
//
//   out_n = Σ_b  d_w(n, b) · d_x(b) · S(n, b),   S(n, b) = Σ_{j<32} q_w(n, b, j) · q_x(b, j)
//
// where S is an exact integer (|S| ≤ 32 · 128 · 127 < 2^24, so it converts to float exactly) and
// the product of two fp16 scales is exact in fp32 (11 + 11 significant bits). The only rounding
// is in the sum over blocks, so that sum's order is part of the definition: block b goes into
// accumulator b mod 8 by a fused multiply-add, and the 8 accumulators are added pairwise
// ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)). The SIMD kernel computes eight blocks' S at
// once and does exactly these operations, so every kernel gives the same bits.
// ANCHOR_END: quant_dot_definition

// The kernels that can run here.
enum class QuantKernel {
  portable,    // plain C++ integer loops, any CPU
  avx_vnni,    // VEX-encoded vpdpbusd on 256-bit registers (Intel Alder Lake, Sapphire Rapids and later)
  avx512_vnni  // EVEX vpdpbusd on 256-bit registers (AVX512-VNNI with AVX512-VL: Ice Lake, Zen 4, Zen 5)
};
const char* quant_kernel_name(QuantKernel kernel);
// The fastest kernel this CPU supports, chosen once at run time (cpuid), unless the environment
// variable FOUNDRY_QUANT_PORTABLE=1 forces the portable loops (so the tests can cover both).
QuantKernel quant_kernel();

// Scratch for the quantized activations of one product; reused between calls, so that the decode
// loop does not allocate.
struct QuantScratch {
  std::vector<BlockQ8_0> x_blocks;  // K / QK
  std::vector<float> x_scale;       // K / QK: d_x as fp32
  std::vector<int32_t> x_sum;       // K / QK: Σ_j q_x(b, j), for Q4_0's offset of 8
};

// Prepares x (K) for products with any matrix of K columns: quantizes it into `scratch`.
void quantize_activations(const float* x, int K, QuantScratch& scratch);

// out rows [r0, r1) of W · x, with x prepared by quantize_activations. `kernel` picks the code.
void quant_matvec_rows(float* out, const QuantMatrix& w, const QuantScratch& x, int r0, int r1, QuantKernel kernel);

// The naive twin: the definition above, one integer product at a time (tests compare every
// kernel against it bit for bit).
void quant_matvec_naive(float* out, const QuantMatrix& w, const float* x);

}  // namespace foundry
