// fp16 conversion and the Q8_0 / Q4_0 block formats: edge cases of the rounding, and worked
// examples whose bytes are written out by hand from llama.cpp's rules (engine/quant.h).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "engine/quant.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

using namespace foundry;

namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

#if defined(__x86_64__)
// The hardware conversion (F16C, round to nearest even), the reference our software one must match.
__attribute__((target("f16c"))) uint16_t f16c_convert(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}
#endif

}  // namespace

TEST_CASE("fp32_to_fp16 rounds to nearest even at the edges", "[quant][fp16]") {
  CHECK(fp32_to_fp16(0.0f) == 0x0000);
  CHECK(fp32_to_fp16(-0.0f) == 0x8000);
  CHECK(fp32_to_fp16(1.0f) == 0x3c00);
  CHECK(fp32_to_fp16(-2.0f) == 0xc000);
  CHECK(fp32_to_fp16(0.1f) == 0x2e66);  // 0.0999755859375
  CHECK(fp32_to_fp16(65504.0f) == 0x7bff);
  CHECK(fp32_to_fp16(65519.99f) == 0x7bff);  // below the midpoint to 65536
  CHECK(fp32_to_fp16(65520.0f) == 0x7c00);   // the midpoint ties to even: infinity
  CHECK(fp32_to_fp16(1e6f) == 0x7c00);
  CHECK(fp32_to_fp16(-1e6f) == 0xfc00);
  CHECK(fp32_to_fp16(std::numeric_limits<float>::infinity()) == 0x7c00);
  CHECK(fp32_to_fp16(-std::numeric_limits<float>::infinity()) == 0xfc00);
  const uint16_t nan = fp32_to_fp16(std::numeric_limits<float>::quiet_NaN());
  CHECK((nan & 0x7c00) == 0x7c00);
  CHECK((nan & 0x03ff) != 0);
  // Ties between neighbours 1 and 1 + 2^-10 go to the even mantissa.
  CHECK(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);
  CHECK(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);
  CHECK(fp32_to_fp16(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)) == 0x3c01);
  // Subnormals: n · 2^-24.
  CHECK(fp32_to_fp16(std::ldexp(1.0f, -14)) == 0x0400);  // smallest normal
  CHECK(fp32_to_fp16(std::ldexp(1.0f, -24)) == 0x0001);  // smallest subnormal
  CHECK(fp32_to_fp16(std::ldexp(1.0f, -25)) == 0x0000);  // tie between 0 and 2^-24: even is 0
  CHECK(fp32_to_fp16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)) == 0x0001);
  CHECK(fp32_to_fp16(3 * std::ldexp(1.0f, -25)) == 0x0002);  // 1.5 · 2^-24 ties to 2
  CHECK(fp32_to_fp16(1023 * std::ldexp(1.0f, -24)) == 0x03ff);
  CHECK(fp32_to_fp16(1023.5f * std::ldexp(1.0f, -24)) == 0x0400);  // rounds up into the normals
  CHECK(fp32_to_fp16(-std::ldexp(1.0f, -24)) == 0x8001);
  CHECK(fp32_to_fp16(1e-10f) == 0x0000);
  CHECK(fp32_to_fp16(from_bits(0x00000001)) == 0x0000);  // fp32 subnormal
}

TEST_CASE("fp16_to_fp32 is exact and round-trips every half", "[quant][fp16]") {
  CHECK(fp16_to_fp32(0x3c00) == 1.0f);
  CHECK(fp16_to_fp32(0x7bff) == 65504.0f);
  CHECK(fp16_to_fp32(0x0001) == std::ldexp(1.0f, -24));
  CHECK(fp16_to_fp32(0x03ff) == 1023 * std::ldexp(1.0f, -24));
  CHECK(fp16_to_fp32(0x0400) == std::ldexp(1.0f, -14));
  CHECK(std::signbit(fp16_to_fp32(0x8000)));
  CHECK(std::isinf(fp16_to_fp32(0x7c00)));
  CHECK(std::isnan(fp16_to_fp32(0x7e00)));
  int mismatches = 0;
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto bits = static_cast<uint16_t>(h);
    const float f = fp16_to_fp32(bits);
    if (std::isnan(f)) continue;
    if (fp32_to_fp16(f) != bits) ++mismatches;
  }
  CHECK(mismatches == 0);
}

#if defined(__x86_64__)
// CPUID leaf 1, ECX bit 29 (clang 14's __builtin_cpu_supports does not know "f16c").
static bool cpu_has_f16c() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) != 0 && (c & bit_F16C) != 0;
}

TEST_CASE("fp32_to_fp16 agrees with the F16C instruction on random bit patterns", "[quant][fp16]") {
  if (!cpu_has_f16c()) {
    WARN("skipped: this CPU has no F16C");
    return;
  }
  std::mt19937 gen(7);
  int mismatches = 0;
  for (int i = 0; i < 2000000; ++i) {
    // Half the patterns anywhere, half near fp16's range where the rounding cases live.
    uint32_t u = gen();
    if (i % 2) u = (u & 0x807fffffu) | ((0x66u + (u >> 23) % 0x30u) << 23);
    const float f = from_bits(u);
    const uint16_t ours = fp32_to_fp16(f);
    const uint16_t hw = f16c_convert(f);
    if (ours != hw) ++mismatches;
  }
  CHECK(mismatches == 0);
}
#endif

TEST_CASE("Q8_0 worked example: d = amax / 127, round halves away from zero", "[quant][q8_0]") {
  // amax = 127, so d = 1 exactly and q = round(x).
  std::vector<float> x(QK, 0.0f);
  x[0] = 127.0f;
  x[1] = 0.5f;    // → 1 (away from zero, not to even)
  x[2] = -0.5f;   // → −1
  x[3] = 2.5f;    // → 3
  x[4] = -2.49f;  // → −2
  x[5] = -127.0f;
  x[31] = 64.4f;  // → 64
  BlockQ8_0 block;
  quantize_row_q8_0(x.data(), &block, QK);
  CHECK(block.d == 0x3c00);
  const int8_t expected[6] = {127, 1, -1, 3, -2, -127};
  for (int j = 0; j < 6; ++j) CHECK(block.qs[j] == expected[j]);
  CHECK(block.qs[31] == 64);
  for (int j = 6; j < 31; ++j) CHECK(block.qs[j] == 0);

  // amax = 12.7: d = 0.1 in fp32, stored as fp16 0x2e66 = 0.0999755859375. The quantizer divides
  // by the fp32 d, so 12.7 → 127 and 0.35 → round(3.5) = 4; dequantizing uses the fp16 d.
  std::vector<float> y(QK, 0.0f);
  y[0] = 12.7f;
  y[1] = 0.35f;
  y[2] = -1.0f;
  quantize_row_q8_0(y.data(), &block, QK);
  CHECK(block.d == 0x2e66);
  CHECK(block.qs[0] == 127);
  CHECK(block.qs[1] == 4);
  CHECK(block.qs[2] == -10);
  std::vector<float> back(QK);
  dequantize_row_q8_0(&block, back.data(), QK);
  CHECK(back[0] == 127 * 0.0999755859375f);
  CHECK(back[2] == -10 * 0.0999755859375f);

  // An all-zero block has d = 0 and all q = 0.
  std::vector<float> zero(QK, 0.0f);
  quantize_row_q8_0(zero.data(), &block, QK);
  CHECK(block.d == 0);
  for (int j = 0; j < QK; ++j) CHECK(block.qs[j] == 0);
}

TEST_CASE("Q4_0 worked example: signed max, d = max / -8, nibble order, clamp", "[quant][q4_0]") {
  // The largest magnitude is −8 (the first element), so d = 1 and x / d + 8.5 truncated:
  std::vector<float> x(QK, 0.0f);
  x[0] = -8.0f;   // → 0   (stands for −8)
  x[1] = 7.0f;    // → 15  (7)
  x[2] = 0.5f;    // → 9   (1: halves round up)
  x[3] = -0.5f;   // → 8   (0: halves round up, towards +∞)
  x[4] = -2.5f;   // → 6   (−2)
  x[5] = 3.2f;    // → 11  (3)
  x[16] = 8.0f;   // → 16.5 → 16, clamped to 15 (7): the far end loses one step
  x[17] = -7.5f;  // → 1   (−7)
  x[31] = 1.49f;  // → 9   (1)
  BlockQ4_0 block;
  quantize_row_q4_0(x.data(), &block, QK);
  CHECK(block.d == 0x3c00);
  // Byte j: value j low, value j + 16 high. Untouched zeros are nibble 8.
  CHECK(block.qs[0] == (0 | (15 << 4)));
  CHECK(block.qs[1] == (15 | (1 << 4)));
  CHECK(block.qs[2] == (9 | (8 << 4)));
  CHECK(block.qs[3] == (8 | (8 << 4)));
  CHECK(block.qs[4] == (6 | (8 << 4)));
  CHECK(block.qs[5] == (11 | (8 << 4)));
  CHECK(block.qs[15] == (8 | (9 << 4)));
  std::vector<float> back(QK);
  dequantize_row_q4_0(&block, back.data(), QK);
  CHECK(back[0] == -8.0f);
  CHECK(back[1] == 7.0f);
  CHECK(back[2] == 1.0f);
  CHECK(back[3] == 0.0f);
  CHECK(back[4] == -2.0f);
  CHECK(back[16] == 7.0f);
  CHECK(back[17] == -7.0f);
  CHECK(back[31] == 1.0f);

  // A positive extreme gives a negative scale: 8 → d = −1, so 8 → nibble 0 → (0 − 8)(−1) = 8
  // exactly, and −8 at the far end clamps to −7.
  std::vector<float> p(QK, 0.0f);
  p[0] = 8.0f;
  p[1] = -8.0f;
  quantize_row_q4_0(p.data(), &block, QK);
  CHECK(block.d == 0xbc00);
  dequantize_row_q4_0(&block, back.data(), QK);
  CHECK(back[0] == 8.0f);
  CHECK(back[1] == -7.0f);

  // On a tie of magnitudes the first value decides the sign of d.
  std::vector<float> tie(QK, 0.0f);
  tie[0] = -3.0f;
  tie[1] = 3.0f;
  quantize_row_q4_0(tie.data(), &block, QK);
  CHECK(fp16_to_fp32(block.d) == 0.375f);
  tie[0] = 3.0f;
  tie[1] = -3.0f;
  quantize_row_q4_0(tie.data(), &block, QK);
  CHECK(fp16_to_fp32(block.d) == -0.375f);
}

TEST_CASE("quantize then dequantize stays within half a step per value", "[quant]") {
  std::mt19937 gen(3);
  std::normal_distribution<float> dist(0.0f, 0.05f);
  const int k = 8 * QK;
  std::vector<float> x(k);
  for (float& v : x) v = dist(gen);
  std::vector<BlockQ8_0> q8(k / QK);
  std::vector<BlockQ4_0> q4(k / QK);
  quantize_row_q8_0(x.data(), q8.data(), k);
  quantize_row_q4_0(x.data(), q4.data(), k);
  std::vector<float> y8(k), y4(k);
  dequantize_row_q8_0(q8.data(), y8.data(), k);
  dequantize_row_q4_0(q4.data(), y4.data(), k);
  for (int b = 0; b < k / QK; ++b) {
    const float d8 = std::fabs(fp16_to_fp32(q8[b].d));
    const float d4 = std::fabs(fp16_to_fp32(q4[b].d));
    for (int j = 0; j < QK; ++j) {
      const int i = b * QK + j;
      // Half a step, plus what the fp16 rounding of the scale moves the largest value (2^-11 relative).
      CHECK(std::fabs(y8[i] - x[i]) <= 0.5f * d8 + 127 * d8 * 1e-3f);
      // Q4_0 loses up to one whole step at the clamped far end.
      CHECK(std::fabs(y4[i] - x[i]) <= 1.0f * d4 + 8 * d4 * 1e-3f);
    }
  }
  // The type-erased forms write the same bytes.
  std::vector<uint8_t> raw(quant_row_bytes(QuantType::q4_0, k));
  quantize_row(QuantType::q4_0, x.data(), raw.data(), k);
  CHECK(std::memcmp(raw.data(), q4.data(), raw.size()) == 0);
  CHECK(quant_row_bytes(QuantType::q8_0, 64) == 68);
  CHECK(quant_row_bytes(QuantType::q4_0, 64) == 36);
}

TEST_CASE("quantizers refuse bad rows with a clear error", "[quant]") {
  std::vector<float> x(QK + 1, 1.0f);
  std::vector<BlockQ8_0> q(2);
  CHECK_THROWS_WITH(quantize_row_q8_0(x.data(), q.data(), QK + 1), Catch::Contains("not a multiple"));
  x[5] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(quantize_row_q8_0(x.data(), q.data(), QK), Catch::Contains("not finite"));
  x[5] = 1e7f;
  CHECK_THROWS_WITH(quantize_row_q8_0(x.data(), q.data(), QK), Catch::Contains("65504"));
  CHECK(parse_quant_type("q4_0") == QuantType::q4_0);
  CHECK_THROWS_WITH(parse_quant_type("q5_1"), Catch::Contains("q5_1"));
}

namespace {

// A random matrix quantized as `type`, with the extremes the kernels must survive: a row of
// q8_0 value −128 (a file may hold it, our quantizer never writes it) and an all-zero row.
QuantMatrix random_matrix(QuantType type, int N, int K, std::mt19937& gen) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> w((size_t)N * K);
  for (float& v : w) v = dist(gen);
  for (int k = 0; k < K; ++k) w[K + k] = 0.0f;  // row 1 all zero
  QuantMatrix m = quantize_matrix(type, w.data(), N, K);
  if (type == QuantType::q8_0 && N > 2) {
    auto* row = reinterpret_cast<BlockQ8_0*>(m.blocks.data() + 2 * m.row_bytes());
    for (int b = 0; b < K / QK; ++b) std::fill(std::begin(row[b].qs), std::end(row[b].qs), int8_t(-128));
  }
  return m;
}

}  // namespace

TEST_CASE("every quantized matvec kernel equals the naive twin bit for bit", "[quant][matvec]") {
  const QuantKernel best = quant_kernel();
  INFO("kernel chosen here: " << quant_kernel_name(best));
  std::vector<QuantKernel> kernels = {QuantKernel::portable};
  if (best != QuantKernel::portable) kernels.push_back(best);
  std::mt19937 gen(11);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (QuantType type : {QuantType::q8_0, QuantType::q4_0}) {
    // Row lengths of 1 to 19 blocks: every remainder of the eight-block groups.
    for (int nb = 1; nb <= 19; ++nb) {
      const int N = 5, K = nb * QK;
      QuantMatrix m = random_matrix(type, N, K, gen);
      std::vector<float> x(K);
      for (float& v : x) v = dist(gen);
      x[0] = 127.0f;  // one large activation: its block's others round to small integers
      std::vector<float> naive(N), fast(N);
      quant_matvec_naive(naive.data(), m, x.data());
      QuantScratch scratch;
      quantize_activations(x.data(), K, scratch);
      for (QuantKernel kernel : kernels) {
        std::fill(fast.begin(), fast.end(), -1.0f);
        quant_matvec_rows(fast.data(), m, scratch, 0, N, kernel);
        for (int r = 0; r < N; ++r) {
          INFO(quant_type_name(type) << " blocks " << nb << " row " << r << " kernel " << quant_kernel_name(kernel));
          CHECK(std::memcmp(&fast[r], &naive[r], sizeof(float)) == 0);
        }
      }
      CHECK(naive[1] == 0.0f);
    }
  }
}

TEST_CASE("the quantized matvec is close to the float product of the dequantized matrix", "[quant][matvec]") {
  std::mt19937 gen(5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int N = 16, K = 256;
  for (QuantType type : {QuantType::q8_0, QuantType::q4_0}) {
    std::vector<float> w((size_t)N * K), x(K);
    for (float& v : w) v = dist(gen);
    for (float& v : x) v = dist(gen);
    QuantMatrix m = quantize_matrix(type, w.data(), N, K);
    std::vector<float> deq((size_t)N * K);
    dequantize_matrix(m, deq.data());
    std::vector<float> out(N);
    quant_matvec_naive(out.data(), m, x.data());
    for (int r = 0; r < N; ++r) {
      double exact = 0, norm = 0;
      for (int k = 0; k < K; ++k) {
        exact += double(deq[(size_t)r * K + k]) * x[k];
        norm += std::fabs(double(deq[(size_t)r * K + k]) * x[k]);
      }
      // The only extra error is the activations' 8-bit rounding: at most half a step (amax / 254)
      // per value, a fraction of a percent of the sum of magnitudes.
      CHECK(std::fabs(out[r] - exact) <= 0.01 * norm);
    }
  }
}

TEST_CASE("activations with a NaN give NaN, not undefined integer casts", "[quant][matvec]") {
  std::mt19937 gen(1);
  QuantMatrix m = random_matrix(QuantType::q8_0, 3, 64, gen);
  std::vector<float> x(64, 1.0f);
  x[40] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> out(3);
  quant_matvec_naive(out.data(), m, x.data());
  CHECK(std::isnan(out[0]));
}

TEST_CASE("activations are quantized exactly like a Q8_0 weight row", "[quant][matvec]") {
  std::mt19937 gen(9);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  const int K = 64 * QK;
  std::vector<float> x(K);
  for (float& v : x) v = dist(gen);
  // Blocks whose values land exactly on halves: amax 127 makes d = 1, so x·(1/d) = x.
  for (int j = 0; j < QK; ++j) x[j] = (j == 0) ? 127.0f : (j % 2 ? 0.5f : -2.5f) + float(j % 7);
  QuantScratch s;
  quantize_activations(x.data(), K, s);
  std::vector<BlockQ8_0> ref(K / QK);
  quantize_row_q8_0(x.data(), ref.data(), K);
  CHECK(std::memcmp(s.x_blocks.data(), ref.data(), ref.size() * sizeof(BlockQ8_0)) == 0);
  for (int b = 0; b < K / QK; ++b) {
    int sum = 0;
    for (int j = 0; j < QK; ++j) sum += ref[b].qs[j];
    CHECK(s.x_sum[b] == sum);
    CHECK(s.x_scale[b] == fp16_to_fp32(ref[b].d));
  }
}
