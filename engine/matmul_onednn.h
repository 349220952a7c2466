// The oneDNN bf16 kernel behind bf16_gemm (engine/matmul_bf16.h): Intel's oneDNN library
// (Debian's libdnnl-dev), its matmul primitive with bf16 inputs and a float32 output. It earns
// its place by measurement: on the same vdpbf16ps instruction it ran our transformer products
// 1.1-2× faster than our own kernel (BENCHMARKS.md), and on CPUs with AMX tiles (Intel Sapphire
// Rapids and later) it uses them, which no kernel of ours does.
//
// Only engine/matmul_bf16.cpp calls this. The build leaves the library out when oneDNN is not
// installed, when FOUNDRY_ONEDNN=OFF, without OpenMP (Debian's oneDNN runs its threads on
// OpenMP, and without it we could not tell it how many to use), and with clang (whose OpenMP
// runtime is not the libgomp Debian's oneDNN uses); onednn_built() then says false and
// onednn_gemm is never called.
#pragma once

#include <string>

#include "engine/bf16.h"

namespace foundry {

bool onednn_built();  // was this build linked with oneDNN?

// A matrix of bf16 numbers: element (i, j) is data[i * row_stride + j * col_stride].
struct Bf16View {
  const bf16* data;
  long row_stride, col_stride;
};

// out (M, N), rows ldo floats apart, = a (M, K) · b (K, N) with float32 sums, or += when
// accumulate. Runs on num_threads() threads (one when `one_thread`). The primitive for each
// (shape, strides, accumulate, threads) is created once and kept for the life of the thread
// that asked for it: creating one costs far more than running a small product. Throws
// std::runtime_error if oneDNN cannot do the product.
void onednn_gemm(float* out, long ldo, Bf16View a, Bf16View b, long M, long K, long N, bool accumulate,
                 bool one_thread);

// oneDNN's version and the instruction set it uses on this CPU, e.g.
// "oneDNN 2.6, ISA avx512_core_bf16 (vdpbf16ps), matmul brg:avx512_core_bf16"; the last part is
// the implementation it picked for a (256 × 256) · (256 × 256) bf16 product.
std::string onednn_description();

}  // namespace foundry
