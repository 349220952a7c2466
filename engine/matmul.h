// Matrix products, the op that takes nearly all of a transformer's time.
//
//   matmul:  out (M, N) = a (M, K) · b (K, N)
//   linear:  out (M, N) = x (M, K) · wᵀ   with w stored (N, K) = (out_features, in_features),
//            the layout of every weight matrix in the model (PyTorch's and LLaMA's convention).
//
// Backward of out = a · b, from dL/dout_ij = dout_ij and out_ij = Σ_k a_ik b_kj:
//   dL/da_ik = Σ_j dout_ij b_kj   →  da += dout · bᵀ   (M, N)(N, K)
//   dL/db_kj = Σ_i a_ik dout_ij   →  db += aᵀ · dout   (K, M)(M, N)
// and for linear (b = wᵀ):  dx += dout · w,  dw += doutᵀ · x.
//
// The fast versions map our row-major buffers into Eigen (no copy) and let Eigen's blocked,
// vectorized GEMM do the work. Threads: the output is cut into one block of rows (or columns)
// per OpenMP thread, each computed by Eigen on one thread; called from inside a parallel loop,
// a product stays on the calling thread. The naive version is the three-loop definition, kept
// for tests and lessons.
//
// Precision: with set_matmul_precision(MatmulPrecision::bf16) every product below except the
// naive one rounds its two inputs to bfloat16 and accumulates in float32 (engine/matmul_bf16.h
// picks the kernel for the CPU). Only the products change: whatever produced their inputs, and
// whatever reads their float32 outputs (norms, softmax, the loss, the optimizer), stays fp32.
// A weight is rounded where it is used, so it is read as round(w) by the forward and both
// backward products of a step: rounding is a pure function, the same bits as rounding the fp32
// master weights once per step into a bf16 copy, which the optimizer never sees.
#pragma once

#include <string>
#include <vector>

#include "engine/real.h"
#include "engine/tape.h"

namespace foundry {

// ANCHOR: matmul_precision
enum class MatmulPrecision { fp32, bf16 };
// Process-wide, like the thread count. Setting bf16 picks the bf16 kernel (bf16_kernel_default)
// and throws std::invalid_argument if FOUNDRY_BF16_KERNEL names one this CPU cannot run, or in the
// double build (whose products exist for gradient checks, in double precision only).
void set_matmul_precision(MatmulPrecision p);
MatmulPrecision matmul_precision();
// ANCHOR_END: matmul_precision
// "fp32" or "bf16"; parse_matmul_precision throws std::invalid_argument on anything else.
const char* matmul_precision_name(MatmulPrecision p);
MatmulPrecision parse_matmul_precision(const std::string& name);
// One line for headers: "fp32 products (float32, Eigen)" or "bf16 products (...), kernel avx512_bf16 (vdpbf16ps)".
std::string matmul_precision_description();

// Sets the precision for one scope and restores the previous one when it ends.
struct MatmulPrecisionScope {
  explicit MatmulPrecisionScope(MatmulPrecision p) : previous(matmul_precision()) { set_matmul_precision(p); }
  // Restoring a precision that was already in force is never refused, so this cannot throw.
  ~MatmulPrecisionScope() { set_matmul_precision(previous); }  // NOLINT(bugprone-exception-escape)
  MatmulPrecisionScope(const MatmulPrecisionScope&) = delete;
  MatmulPrecisionScope& operator=(const MatmulPrecisionScope&) = delete;
  MatmulPrecision previous;
};

// Gradient pointers may be nullptr when that gradient is not needed. Gradients accumulate (+=).
void matmul_forward(real* out, const real* a, const real* b, int M, int K, int N);
void matmul_backward(real* da, real* db, const real* dout, const real* a, const real* b, int M, int K, int N);
void linear_forward(real* out, const real* x, const real* w, int M, int K, int N);
void linear_forward_add(real* out, const real* x, const real* w, int M, int K, int N);  // out += x · wᵀ
void linear_backward(real* dx, real* dw, const real* dout, const real* x, const real* w, int M, int K, int N);

// The definition, one multiply-add at a time, parallel over rows of out. (M, K) · (K, N).
void matmul_naive(real* out, const real* a, const real* b, int M, int K, int N);

// Taped wrappers. matmul: a (M, K), b (K, N) -> (M, N).
// linear: x (..., K) with any leading dims, w (N, K) -> (..., N).
Var matmul(Tape& tape, Var a, Var b);
Var linear(Tape& tape, Var x, Var w);

}  // namespace foundry
