#include "engine/matmul_bf16.h"

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "engine/bf16.h"
#include "engine/matmul_onednn.h"
#include "engine/parallel.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define FOUNDRY_X86 1
#endif

namespace foundry {

// ---- what the CPU has ----

namespace {

#ifdef FOUNDRY_X86
// XCR0: which register states the OS saves on a context switch. Without the AVX-512 ones
// (opmask, upper halves of zmm0-15, zmm16-31) the instructions fault even if cpuid lists them.
uint64_t os_saved_state() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;  // OSXSAVE: xgetbv allowed
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
#endif

}  // namespace

bool cpu_has_avx512_bf16() {
#ifdef FOUNDRY_X86
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & (1u << 16))) return false;  // avx512f
  const bool bf16 = __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5));     // avx512_bf16
  const uint64_t avx512_state = 0xE6;  // SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM
  return bf16 && (os_saved_state() & avx512_state) == avx512_state;
#else
  return false;
#endif
}

bool cpu_has_amx_bf16() {
#ifdef FOUNDRY_X86
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool tiles = (d & (1u << 24)) && (d & (1u << 22));  // amx_tile, amx_bf16
  const uint64_t tile_state = 0x60000;                      // XTILECFG, XTILEDATA
  return tiles && (os_saved_state() & tile_state) == tile_state;
#else
  return false;
#endif
}

const char* bf16_kernel_name(Bf16Kernel k) {
  switch (k) {
    case Bf16Kernel::naive:
      return "naive";
    case Bf16Kernel::emulated:
      return "emulated";
    case Bf16Kernel::avx512_bf16:
      return "avx512_bf16";
    case Bf16Kernel::onednn:
      return "onednn";
  }
  return "?";
}

bool bf16_kernel_available(Bf16Kernel k) {
  if (k == Bf16Kernel::avx512_bf16) return cpu_has_avx512_bf16();
  if (k == Bf16Kernel::onednn) return onednn_built();
  return true;
}

std::vector<Bf16Kernel> bf16_kernels_available() {
  std::vector<Bf16Kernel> kernels;
  for (Bf16Kernel k : {Bf16Kernel::emulated, Bf16Kernel::avx512_bf16, Bf16Kernel::onednn}) {
    if (bf16_kernel_available(k)) kernels.push_back(k);
  }
  return kernels;
}

// ANCHOR: bf16_kernel_default
Bf16Kernel bf16_kernel_default() {
  const char* forced = std::getenv("FOUNDRY_BF16_KERNEL");
  if (forced == nullptr || forced[0] == '\0') {
    // oneDNN only where the CPU has bf16 units: without them it would convert to fp32 inside,
    // as the emulated kernel does, and our emulated kernel is the documented fallback.
    const bool units = cpu_has_avx512_bf16() || cpu_has_amx_bf16();
    if (units && onednn_built()) return Bf16Kernel::onednn;
    return cpu_has_avx512_bf16() ? Bf16Kernel::avx512_bf16 : Bf16Kernel::emulated;
  }
  for (Bf16Kernel k : {Bf16Kernel::naive, Bf16Kernel::emulated, Bf16Kernel::avx512_bf16, Bf16Kernel::onednn}) {
    if (std::string(forced) != bf16_kernel_name(k)) continue;
    if (k == Bf16Kernel::onednn && !bf16_kernel_available(k)) {
      throw std::invalid_argument(
          "FOUNDRY_BF16_KERNEL=onednn: this build has no oneDNN (install libdnnl-dev and "
          "configure with -DFOUNDRY_ONEDNN=ON and OpenMP; or unset it)");
    }
    if (!bf16_kernel_available(k)) {
      throw std::invalid_argument("FOUNDRY_BF16_KERNEL=" + std::string(forced) +
                                  ": this CPU has no AVX512-BF16 instructions (unset it, or use \"emulated\")");
    }
    return k;
  }
  throw std::invalid_argument("FOUNDRY_BF16_KERNEL=" + std::string(forced) +
                              ": expected \"onednn\", \"avx512_bf16\", \"emulated\" or \"naive\"");
}
// ANCHOR_END: bf16_kernel_default

std::string bf16_kernel_description(Bf16Kernel k) {
  switch (k) {
    case Bf16Kernel::onednn: {
      // Asked once: the answer needs a primitive created, and cannot change while we run.
      static const std::string onednn = onednn_description();
      return "onednn (" + onednn + ")";
    }
    case Bf16Kernel::avx512_bf16:
      return "avx512_bf16 (vdpbf16ps)";
    case Bf16Kernel::emulated:
      return std::string("emulated (inputs rounded to bf16, fp32 products: not faster than fp32") +
             (cpu_has_avx512_bf16() ? ")" : "; this CPU has no AVX512-BF16)");
    case Bf16Kernel::naive:
      return "naive (the three-loop definition: slow, for tests)";
  }
  return "?";
}

namespace {

// ---- naive: the definition ----

// ANCHOR: bf16_naive
void gemm_naive(float* out, long ldo, StridedMatrix a, StridedMatrix b, long M, long K, long N, bool accumulate) {
  for (long i = 0; i < M; i++) {
    for (long j = 0; j < N; j++) {
      float sum = 0.0f;                                                                           // fp32 accumulation
      for (long k = 0; k < K; k++) sum += round_to_bf16(a.at(i, k)) * round_to_bf16(b.at(k, j));  // exact product
      out[i * ldo + j] = accumulate ? out[i * ldo + j] + sum : sum;
    }
  }
}
// ANCHOR_END: bf16_naive

// ---- emulated: round, widen, and run the float32 product ----

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Scratch buffers reused across calls (fresh memory is slow to touch), one set per thread.
struct Scratch {
  std::vector<float> a, b;
  std::vector<bf16> a_packed, b_packed;
};
Scratch& scratch() {
  static thread_local Scratch s;
  return s;
}

void round_into(std::vector<float>& dst, StridedMatrix m, long rows, long cols) {
  dst.resize(static_cast<size_t>(rows * cols));
  for (long i = 0; i < rows; i++) {
    for (long j = 0; j < cols; j++) dst[static_cast<size_t>(i * cols + j)] = round_to_bf16(m.at(i, j));
  }
}

void gemm_emulated(float* out, long ldo, StridedMatrix a, StridedMatrix b, long M, long K, long N, bool accumulate) {
  Scratch& s = scratch();
  round_into(s.a, a, M, K);
  round_into(s.b, b, K, N);
  Eigen::Map<const RowMajor> A(s.a.data(), M, K), B(s.b.data(), K, N);
  Eigen::Map<RowMajor, 0, Eigen::OuterStride<>> C(out, M, N, Eigen::OuterStride<>(ldo));
  if (accumulate) C.noalias() += A * B;
  else C.noalias() = A * B;
}

// ---- avx512_bf16: vdpbf16ps ----
//
// One instruction, for 16 lanes j:  c[j] += a[2j]·b[2j] + a[2j+1]·b[2j+1]   (bf16 in, fp32 out).
// So the depth k is consumed two at a time: broadcast the pair (A[i,k], A[i,k+1]) of one row to
// all 16 lanes, and lay B out so that lane j holds (B[k,j], B[k+1,j]). A micro-kernel keeps a
// block of MR rows × NR columns of out in registers (MR · NR/16 = 24 of the 32 zmm registers) and
// walks the depth: per pair of k, 2 loads of B, MR broadcasts of A, 2·MR instructions.
//
// Packing (the usual GEMM blocking): a KC-deep slab of B is rewritten into panels of NR columns,
// k-pairs interleaved as above, rounded to bf16 on the way; an MC-row block of A into panels of
// MR rows, pairs side by side. A panel of B stays in L1 while every MR-row panel of A passes
// it; the A block stays in L2. Padding with zeros (odd K, ragged edges) adds nothing to the sums.

constexpr long MR = 12, NR = 32;  // the register block: 12 rows × 2 zmm of 16 floats
constexpr long KC = 384;          // depth of a slab (even): a B panel is KC·NR·2 B = 24 KiB
constexpr long MC = 96;           // rows of an A block (a multiple of MR): 72 KiB of bf16

// B (K, N) slab k0..k0+kc, all N columns: panel p, pair q, column jj -> 2 bf16.
void pack_b(std::vector<bf16>& dst, StridedMatrix b, long k0, long kc, long N) {
  const long pairs = (kc + 1) / 2, panels = (N + NR - 1) / NR;
  dst.assign(static_cast<size_t>(panels * pairs * NR * 2), 0);
  for (long p = 0; p < panels; p++) {
    const long j0 = p * NR, cols = std::min(NR, N - j0);
    bf16* panel = dst.data() + p * pairs * NR * 2;
    for (long k = 0; k < kc; k++) {
      bf16* row = panel + (k / 2) * NR * 2 + (k & 1);
      for (long jj = 0; jj < cols; jj++) row[2 * jj] = float_to_bf16(b.at(k0 + k, j0 + jj));
    }
  }
}

// A (M, K) rows i0..i0+mc, slab k0..k0+kc: panel r, pair q, row ii -> 2 bf16.
void pack_a(std::vector<bf16>& dst, StridedMatrix a, long i0, long mc, long k0, long kc) {
  const long pairs = (kc + 1) / 2, panels = (mc + MR - 1) / MR;
  dst.assign(static_cast<size_t>(panels * pairs * MR * 2), 0);
  for (long r = 0; r < panels; r++) {
    const long rows = std::min(MR, mc - r * MR);
    bf16* panel = dst.data() + r * pairs * MR * 2;
    for (long ii = 0; ii < rows; ii++) {
      for (long k = 0; k < kc; k++)
        panel[(k / 2) * MR * 2 + 2 * ii + (k & 1)] = float_to_bf16(a.at(i0 + r * MR + ii, k0 + k));
    }
  }
}

#ifdef FOUNDRY_X86
// ANCHOR: bf16_microkernel
// c (MR, NR), rows ldc apart, = (or +=) the product of one A panel and one B panel, `pairs` deep.
__attribute__((target("avx512f,avx512bf16"))) void micro_kernel(long pairs, const bf16* a, const bf16* b, float* c,
                                                                long ldc, bool accumulate) {
  __m512 acc[MR][2];
  for (long i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (long q = 0; q < pairs; q++) {
    const __m512i b0 = _mm512_loadu_si512(b), b1 = _mm512_loadu_si512(b + 32);  // (B[k,j], B[k+1,j]), 32 columns
#pragma GCC unroll 12
    for (long i = 0; i < MR; i++) {
      int32_t pair;  // (A[i,k], A[i,k+1]) as one 32-bit lane
      std::memcpy(&pair, a + 2 * i, sizeof pair);
      const __m512i ai = _mm512_set1_epi32(pair);
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], (__m512bh)ai, (__m512bh)b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], (__m512bh)ai, (__m512bh)b1);
    }
    a += MR * 2;
    b += NR * 2;
  }
  for (long i = 0; i < MR; i++) {
    float* row = c + i * ldc;
    if (accumulate) {
      acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_loadu_ps(row));
      acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_loadu_ps(row + 16));
    }
    _mm512_storeu_ps(row, acc[i][0]);
    _mm512_storeu_ps(row + 16, acc[i][1]);
  }
}
// ANCHOR_END: bf16_microkernel

void gemm_avx512_bf16(float* out, long ldo, StridedMatrix a, StridedMatrix b, long M, long K, long N, bool accumulate) {
  Scratch& s = scratch();
  float edge[MR * NR];  // a ragged block is computed here, then its valid part copied out
  if (K == 0) {
    for (long i = 0; i < M; i++) {
      if (!accumulate) std::fill(out + i * ldo, out + i * ldo + N, 0.0f);
    }
    return;
  }
  for (long k0 = 0; k0 < K; k0 += KC) {
    const long kc = std::min(KC, K - k0), pairs = (kc + 1) / 2;
    const bool add = accumulate || k0 > 0;  // later slabs add to what the first wrote
    pack_b(s.b_packed, b, k0, kc, N);
    for (long i0 = 0; i0 < M; i0 += MC) {
      const long mc = std::min(MC, M - i0);
      pack_a(s.a_packed, a, i0, mc, k0, kc);
      for (long j0 = 0; j0 < N; j0 += NR) {
        const bf16* b_panel = s.b_packed.data() + (j0 / NR) * pairs * NR * 2;
        const long cols = std::min(NR, N - j0);
        for (long r0 = 0; r0 < mc; r0 += MR) {
          const bf16* a_panel = s.a_packed.data() + (r0 / MR) * pairs * MR * 2;
          const long rows = std::min(MR, mc - r0);
          float* c = out + (i0 + r0) * ldo + j0;
          if (rows == MR && cols == NR) {
            micro_kernel(pairs, a_panel, b_panel, c, ldo, add);
            continue;
          }
          micro_kernel(pairs, a_panel, b_panel, edge, NR, false);
          for (long i = 0; i < rows; i++) {
            for (long j = 0; j < cols; j++) c[i * ldo + j] = add ? c[i * ldo + j] + edge[i * NR + j] : edge[i * NR + j];
          }
        }
      }
    }
  }
}
#endif

// ---- onednn: bf16 copies of the operands, then oneDNN's matmul primitive ----

// m (rows, cols) rounded into dst, in m's own layout where it has one (rows or columns
// contiguous), so that the copy reads memory in order and oneDNN reads the copy through strides.
Bf16View round_copy(std::vector<bf16>& dst, StridedMatrix m, long rows, long cols) {
  if (m.rounded != nullptr) return Bf16View{m.rounded, m.row_stride, m.col_stride};
  dst.resize(static_cast<size_t>(rows * cols));
  if (m.col_stride == 1 || cols == 1) {  // rows contiguous: the copy is row-major
    for (long i = 0; i < rows; i++) floats_to_bf16(m.data + i * m.row_stride, dst.data() + i * cols, cols);
    return Bf16View{dst.data(), cols, 1};
  }
  if (m.row_stride == 1 || rows == 1) {  // columns contiguous: the copy is column-major
    for (long j = 0; j < cols; j++) floats_to_bf16(m.data + j * m.col_stride, dst.data() + j * rows, rows);
    return Bf16View{dst.data(), 1, rows};
  }
  for (long i = 0; i < rows; i++) {
    for (long j = 0; j < cols; j++) dst[static_cast<size_t>(i * cols + j)] = float_to_bf16(m.at(i, j));
  }
  return Bf16View{dst.data(), cols, 1};
}

void gemm_onednn(float* out, long ldo, StridedMatrix a, StridedMatrix b, long M, long K, long N, bool accumulate,
                 bool one_thread) {
  if (K == 0) {  // an empty sum: zeros (oneDNN is not asked about zero-sized products)
    for (long i = 0; i < M && !accumulate; i++) std::fill(out + i * ldo, out + i * ldo + N, 0.0f);
    return;
  }
  Scratch& s = scratch();
  const Bf16View a16 = round_copy(s.a_packed, a, M, K), b16 = round_copy(s.b_packed, b, K, N);
  onednn_gemm(out, ldo, a16, b16, M, K, N, accumulate, one_thread);
}

void gemm_one_thread(Bf16Kernel kernel, float* out, long ldo, StridedMatrix a, StridedMatrix b, long M, long K, long N,
                     bool accumulate) {
  switch (kernel) {
    case Bf16Kernel::naive:
      return gemm_naive(out, ldo, a, b, M, K, N, accumulate);
    case Bf16Kernel::emulated:
      return gemm_emulated(out, ldo, a, b, M, K, N, accumulate);
    case Bf16Kernel::avx512_bf16:
#ifdef FOUNDRY_X86
      return gemm_avx512_bf16(out, ldo, a, b, M, K, N, accumulate);
#else
      break;
#endif
    case Bf16Kernel::onednn:
      return gemm_onednn(out, ldo, a, b, M, K, N, accumulate, true);
  }
  throw std::logic_error("bf16_gemm: kernel not available on this CPU");
}

}  // namespace

void bf16_gemm(Bf16Kernel kernel, float* out, long ldo, StridedMatrix a, StridedMatrix b, long M, long K, long N,
               bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (!bf16_kernel_available(kernel)) {
    throw std::invalid_argument(kernel == Bf16Kernel::onednn ? "bf16_gemm: this build has no oneDNN"
                                                             : "bf16_gemm: this CPU has no AVX512-BF16 instructions");
  }
  const bool small = !worth_threads(Work::product, double(M) * double(N) * double(K));
  // oneDNN divides the product among the threads itself (on OpenMP, num_threads() of them).
  if (kernel == Bf16Kernel::onednn) return gemm_onednn(out, ldo, a, b, M, K, N, accumulate, in_parallel() || small);
  // The threads as in the float products (engine/matmul.cpp): one block of rows, or of columns
  // when out is wider than tall, per thread; each block is a product of its own.
  const bool by_rows = M >= N;
  const long len = by_rows ? M : N;
  const int parts = (in_parallel() || small) ? 1 : static_cast<int>(std::min<long>(num_threads(), len));
  auto run_block = [&](int p) {
    // Blocks start on a multiple of MR rows (or NR columns) so that only the last is ragged.
    const long unit = by_rows ? MR : NR;
    const long first = std::min(len, (len * p / parts + unit - 1) / unit * unit);
    const long last = p + 1 == parts ? len : std::min(len, (len * (p + 1) / parts + unit - 1) / unit * unit);
    if (last <= first) return;
    if (by_rows) {
      const StridedMatrix a_rows{a.data + first * a.row_stride, a.row_stride, a.col_stride};
      gemm_one_thread(kernel, out + first * ldo, ldo, a_rows, b, last - first, K, N, accumulate);
    } else {
      const StridedMatrix b_cols{b.data + first * b.col_stride, b.row_stride, b.col_stride};
      gemm_one_thread(kernel, out + first, ldo, a, b_cols, M, K, last - first, accumulate);
    }
  };
  if (parts == 1) {
    run_block(0);
    return;
  }
#pragma omp parallel for schedule(static, 1)  // one block per thread; the blocks of out are disjoint
  for (int p = 0; p < parts; p++) run_block(p);
}

}  // namespace foundry
