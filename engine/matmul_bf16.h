// Matrix products with bfloat16 inputs and float32 accumulation: the products of mixed-precision
// training (engine/matmul.h calls these when the matmul precision is bf16).
//
//   out (M, N) = round(a) (M, K) · round(b) (K, N)      or  out += ...
//
// where round() is float_to_bf16 (engine/bf16.h) and every product and sum is float32. A product
// of two bf16 numbers has at most 16 significant bits, so it is exact in float32; the only
// rounding after the inputs' is the float32 accumulation, as in an fp32 product.
//
// Kernels, chosen at run time from what the CPU has (bf16_kernel_default):
//   avx512_bf16  our kernel around `vdpbf16ps` (AVX512-BF16: AMD Zen 4 and later, Intel Cooper
//                Lake, Sapphire Rapids and later): each instruction multiplies 16 pairs of bf16
//                pairs and adds both products to 16 float sums, 64 floating-point operations.
//   emulated     any CPU: the inputs are rounded to bf16 and widened back to float, then the
//                float32 product runs. The same numbers as the hardware (up to summation order and
//                subnormals), and no faster than fp32: it exists so that bf16 training runs, and is
//                tested, everywhere.
//   naive        the definition, three loops (tests and lesson 21).
// FOUNDRY_BF16_KERNEL=emulated (or naive, avx512_bf16) in the environment forces a kernel; a
// kernel the CPU lacks is refused with a message.
#pragma once

#include <string>

namespace foundry {

enum class Bf16Kernel { naive, emulated, avx512_bf16 };

const char* bf16_kernel_name(Bf16Kernel k);  // "naive", "emulated", "avx512_bf16"
bool cpu_has_avx512_bf16();                  // the CPU and the OS (AVX-512 state saved) both support it
bool cpu_has_amx_bf16();                     // reported by model-info; no kernel of ours uses AMX tiles yet
bool bf16_kernel_available(Bf16Kernel k);

// The kernel for this CPU, or the one FOUNDRY_BF16_KERNEL names. Throws std::invalid_argument
// for an unknown name or a kernel this CPU cannot run.
Bf16Kernel bf16_kernel_default();
// One line for headers and model-info: "avx512_bf16 (vdpbf16ps)" or "emulated (no bf16 units: ...)".
std::string bf16_kernel_description(Bf16Kernel k);

// A read-only matrix of floats anywhere in memory: element (i, j) is data[i * row_stride + j * col_stride].
// A row-major (R, C) buffer is {p, C, 1}; its transpose, read in place, is {p, 1, C}.
struct StridedMatrix {
  const float* data;
  long row_stride, col_stride;
  float at(long i, long j) const { return data[i * row_stride + j * col_stride]; }
};

// out (M, N), rows ldo floats apart, = round(a) (M, K) · round(b) (K, N), or += when accumulate.
// Threads: out is cut into one block of rows (or columns) per thread, as the float products do.
void bf16_gemm(Bf16Kernel kernel, float* out, long ldo, StridedMatrix a, StridedMatrix b, long M, long K, long N,
               bool accumulate);

}  // namespace foundry
