// Matrix-vector products with a quantized matrix, read block by block (no float copy of the
// matrix): the kernels, the run-time choice between them, and the naive twin. The definition
// they all compute, to the bit, is in quant.h (quant_dot_definition).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "engine/quant.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FOUNDRY_QUANT_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace foundry {

namespace {

// std::round (halves away from zero) without its library call, for |v| < 2^23: v − trunc(v) is
// exact there, so comparing it with 0.5 decides the rounding exactly as roundf does.
inline float round_half_away(float v) {
  const float t = std::trunc(v);
  return std::fabs(v - t) >= 0.5f ? t + std::copysign(1.0f, v) : t;
}

// The fixed order in which the 8 accumulators are added (part of the definition).
inline float combine8(const float a[8]) { return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7])); }

// Σ_j q_w · q_x of one block, both Q8_0.
inline int32_t block_sum(const BlockQ8_0& w, const BlockQ8_0& x, int32_t) {
  int32_t s = 0;
  for (int j = 0; j < QK; ++j) s += int32_t(w.qs[j]) * int32_t(x.qs[j]);
  return s;
}

// Σ_j (n_j − 8) · q_x of one Q4_0 block, as Σ n_j q_x − 8 Σ q_x (x_sum is Σ q_x, computed once
// per vector): the form the SIMD kernel uses, and the same integer.
inline int32_t block_sum(const BlockQ4_0& w, const BlockQ8_0& x, int32_t x_sum) {
  int32_t s = 0;
  for (int j = 0; j < QK / 2; ++j) {
    s += int32_t(w.qs[j] & 0x0f) * int32_t(x.qs[j]);
    s += int32_t(w.qs[j] >> 4) * int32_t(x.qs[j + QK / 2]);
  }
  return s - 8 * x_sum;
}

template <typename Block>
void rows_portable(float* out, const QuantMatrix& w, const QuantScratch& x, int r0, int r1) {
  const int nb = w.cols / QK;
  const size_t row_bytes = w.row_bytes();
  for (int r = r0; r < r1; ++r) {
    const Block* wb = reinterpret_cast<const Block*>(w.blocks.data() + (size_t)r * row_bytes);
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int b = 0; b < nb; ++b) {
      const float d = fp16_to_fp32(wb[b].d) * x.x_scale[b];  // exact: two fp16 values
      acc[b % 8] = std::fma(d, float(block_sum(wb[b], x.x_blocks[b], x.x_sum[b])), acc[b % 8]);
    }
    out[r] = combine8(acc);
  }
}

#ifdef FOUNDRY_QUANT_X86
namespace avx_vnni {
#define FOUNDRY_TARGET __attribute__((target("avx2,fma,f16c,avxvnni")))
#define FOUNDRY_DPBUSD _mm256_dpbusd_avx_epi32
#include "engine/quant_kernels_x86.inc"
#undef FOUNDRY_TARGET
#undef FOUNDRY_DPBUSD
}  // namespace avx_vnni

namespace avx512_vnni {
#define FOUNDRY_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512vnni")))
#define FOUNDRY_DPBUSD _mm256_dpbusd_epi32
#include "engine/quant_kernels_x86.inc"
#undef FOUNDRY_TARGET
#undef FOUNDRY_DPBUSD
}  // namespace avx512_vnni

// cpuid and the OS's register saving (xgetbv): an instruction set is usable only when the CPU
// has it and the operating system saves its registers on a context switch.
uint64_t xcr0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

QuantKernel detect_kernel() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return QuantKernel::portable;
  const bool osxsave = c & (1u << 27), fma = c & (1u << 12), f16c = c & (1u << 29);
  if (!osxsave || !fma || !f16c) return QuantKernel::portable;
  const uint64_t xcr = xcr0();
  const bool os_avx = (xcr & 0x6) == 0x6;       // SSE and AVX state
  const bool os_avx512 = (xcr & 0xe6) == 0xe6;  // plus opmask and the upper ZMM registers
  if (!os_avx || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return QuantKernel::portable;
  const bool avx2 = b & (1u << 5), avx512f = b & (1u << 16), avx512vl = b & (1u << 31);
  const bool avx512vnni = c & (1u << 11);
  if (!avx2) return QuantKernel::portable;
  if (os_avx512 && avx512f && avx512vl && avx512vnni) return QuantKernel::avx512_vnni;
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4))) return QuantKernel::avx_vnni;
  return QuantKernel::portable;
}
#else
QuantKernel detect_kernel() { return QuantKernel::portable; }
#endif

}  // namespace

const char* quant_kernel_name(QuantKernel kernel) {
  switch (kernel) {
    case QuantKernel::avx_vnni:
      return "avx-vnni";
    case QuantKernel::avx512_vnni:
      return "avx512-vnni";
    default:
      return "portable";
  }
}

QuantKernel quant_kernel() {
  static const QuantKernel chosen = [] {
    const char* force = std::getenv("FOUNDRY_QUANT_PORTABLE");
    if (force && std::string(force) == "1") return QuantKernel::portable;
    return detect_kernel();
  }();
  return chosen;
}

QuantMatrix quantize_matrix(QuantType type, const float* w, int N, int K) {
  QuantMatrix m;
  m.type = type;
  m.rows = N;
  m.cols = K;
  m.blocks.resize((size_t)N * quant_row_bytes(type, K));
  for (int r = 0; r < N; ++r) quantize_row(type, w + (size_t)r * K, m.blocks.data() + r * m.row_bytes(), K);
  return m;
}

void dequantize_matrix(const QuantMatrix& m, float* out) {
  for (int r = 0; r < m.rows; ++r) {
    dequantize_row(m.type, m.blocks.data() + r * m.row_bytes(), out + (size_t)r * m.cols, m.cols);
  }
}

void quantize_activations(const float* x, int K, QuantScratch& s) {
  if (K % QK != 0) {
    throw std::invalid_argument("quantize_activations: length " + std::to_string(K) + " is not a multiple of " +
                                std::to_string(QK));
  }
  const int nb = K / QK;
  s.x_blocks.resize(nb);
  s.x_scale.resize(nb);
  s.x_sum.resize(nb);
  for (int b = 0; b < nb; ++b) {
    const float* xb = x + (size_t)b * QK;
    float amax = 0.0f;
    bool finite = true;
    for (int j = 0; j < QK; ++j) {
      finite = finite && std::isfinite(xb[j]);
      amax = std::max(amax, std::fabs(xb[j]));
    }
    BlockQ8_0& out = s.x_blocks[b];
    int32_t sum = 0;
    if (!finite) {
      // A NaN or infinity upstream: a NaN scale carries it to every output, as the float
      // product would, instead of casting a NaN to int8 (undefined).
      out.d = 0x7e00;
      std::memset(out.qs, 0, sizeof out.qs);
    } else {
      // The rules of quantize_row_q8_0 (llama.cpp quantizes activations the same way).
      const float d = amax / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      out.d = fp32_to_fp16(d);
      for (int j = 0; j < QK; ++j) {
        out.qs[j] = static_cast<int8_t>(round_half_away(xb[j] * id));
        sum += out.qs[j];
      }
    }
    s.x_scale[b] = fp16_to_fp32(out.d);
    s.x_sum[b] = sum;
  }
}

void quant_matvec_rows(float* out, const QuantMatrix& w, const QuantScratch& x, int r0, int r1, QuantKernel kernel) {
  if (static_cast<int>(x.x_blocks.size()) * QK != w.cols) {
    throw std::invalid_argument("quant_matvec_rows: the activations have " + std::to_string(x.x_blocks.size() * QK) +
                                " values but the matrix has " + std::to_string(w.cols) + " columns");
  }
  const bool q4 = w.type == QuantType::q4_0;
#ifdef FOUNDRY_QUANT_X86
  if (kernel == QuantKernel::avx512_vnni) {
    return q4 ? avx512_vnni::rows<BlockQ4_0>(out, w, x, r0, r1) : avx512_vnni::rows<BlockQ8_0>(out, w, x, r0, r1);
  }
  if (kernel == QuantKernel::avx_vnni) {
    return q4 ? avx_vnni::rows<BlockQ4_0>(out, w, x, r0, r1) : avx_vnni::rows<BlockQ8_0>(out, w, x, r0, r1);
  }
#endif
  (void)kernel;
  return q4 ? rows_portable<BlockQ4_0>(out, w, x, r0, r1) : rows_portable<BlockQ8_0>(out, w, x, r0, r1);
}

// ANCHOR: quant_matvec_naive
void quant_matvec_naive(float* out, const QuantMatrix& w, const float* x) {
  QuantScratch s;
  quantize_activations(x, w.cols, s);
  const int nb = w.cols / QK;
  for (int r = 0; r < w.rows; ++r) {
    const uint8_t* row = w.blocks.data() + r * w.row_bytes();
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int b = 0; b < nb; ++b) {
      // Weight b's integers and scale, straight from the layout in quant.h.
      int q[QK];
      uint16_t d_bits;
      if (w.type == QuantType::q8_0) {
        const auto& blk = reinterpret_cast<const BlockQ8_0*>(row)[b];
        for (int j = 0; j < QK; ++j) q[j] = blk.qs[j];  // NOLINT(bugprone-signed-char-misuse): signed int8 weights
        d_bits = blk.d;
      } else {
        const auto& blk = reinterpret_cast<const BlockQ4_0*>(row)[b];
        for (int j = 0; j < QK / 2; ++j) {
          q[j] = (blk.qs[j] & 0x0f) - 8;
          q[j + QK / 2] = (blk.qs[j] >> 4) - 8;
        }
        d_bits = blk.d;
      }
      int32_t S = 0;
      for (int j = 0; j < QK; ++j) S += q[j] * s.x_blocks[b].qs[j];
      const float d = fp16_to_fp32(d_bits) * fp16_to_fp32(s.x_blocks[b].d);
      acc[b % 8] = std::fma(d, float(S), acc[b % 8]);
    }
    out[r] = combine8(acc);
  }
}
// ANCHOR_END: quant_matvec_naive

}  // namespace foundry
