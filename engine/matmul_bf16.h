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
//   onednn       oneDNN's matmul primitive (engine/matmul_onednn.h), in builds linked with it
//                (Debian's libdnnl-dev): vdpbf16ps, or AMX tiles on CPUs that have them. The
//                default where the CPU has bf16 units: it measured fastest (BENCHMARKS.md).
//   avx512_bf16  our kernel around `vdpbf16ps` (AVX512-BF16: AMD Zen 4 and later, Intel Cooper
//                Lake, Sapphire Rapids and later): each instruction multiplies 16 pairs of bf16
//                pairs and adds both products to 16 float sums, 64 floating-point operations.
//                The default on such CPUs in a build without oneDNN.
//   emulated     any CPU: the inputs are rounded to bf16 and widened back to float, then the
//                float32 product runs. The same numbers as the hardware (up to summation order and
//                subnormals), and no faster than fp32: it exists so that bf16 training runs, and is
//                tested, everywhere.
//   naive        the definition, three loops (tests and lesson 21).
// FOUNDRY_BF16_KERNEL=onednn (or avx512_bf16, emulated, naive) in the environment forces a
// kernel; one this CPU or this build lacks is refused with a message.
#pragma once

#include <string>
#include <vector>

#include "engine/bf16.h"

namespace foundry {

enum class Bf16Kernel { naive, emulated, avx512_bf16, onednn };

const char* bf16_kernel_name(Bf16Kernel k);  // "naive", "emulated", "avx512_bf16", "onednn"
bool cpu_has_avx512_bf16();                  // the CPU and the OS (AVX-512 state saved) both support it
bool cpu_has_amx_bf16();                     // the CPU and the OS support AMX tiles (oneDNN uses them)
bool bf16_kernel_available(Bf16Kernel k);    // onednn: this build has oneDNN; avx512_bf16: the CPU has it
// Every kernel this build and CPU can run, naive excepted (tests run each of them).
std::vector<Bf16Kernel> bf16_kernels_available();

// The kernel for this CPU, or the one FOUNDRY_BF16_KERNEL names. Throws std::invalid_argument
// for an unknown name or a kernel this CPU cannot run.
Bf16Kernel bf16_kernel_default();
// One line for headers and model-info: "avx512_bf16 (vdpbf16ps)", "onednn (oneDNN 2.6, ISA
// avx512_core_bf16 (vdpbf16ps), ...)" or "emulated (... not faster than fp32 ...)".
std::string bf16_kernel_description(Bf16Kernel k);

// A read-only matrix of floats anywhere in memory: element (i, j) is data[i * row_stride + j * col_stride].
// A row-major (R, C) buffer is {p, C, 1}; its transpose, read in place, is {p, 1, C}.
// `rounded`, when set, holds float_to_bf16 of every element at the same strides: a caller that
// feeds one matrix to two products (dout in a linear layer's backward) rounds it once, and the
// oneDNN kernel reads it instead of rounding its own copy. The other kernels ignore it.
struct StridedMatrix {
  StridedMatrix(const float* d, long rs, long cs, const bf16* r = nullptr)
      : data(d), row_stride(rs), col_stride(cs), rounded(r) {}
  const float* data;
  long row_stride, col_stride;
  const bf16* rounded;
  float at(long i, long j) const { return data[i * row_stride + j * col_stride]; }
};

// out (M, N), rows ldo floats apart, = round(a) (M, K) · round(b) (K, N), or += when accumulate.
// Threads: out is cut into one block of rows (or columns) per thread, as the float products do.
void bf16_gemm(Bf16Kernel kernel, float* out, long ldo, StridedMatrix a, StridedMatrix b, long M, long K, long N,
               bool accumulate);

}  // namespace foundry
