#include "engine/matmul.h"

#include <Eigen/Core>
#include <algorithm>
#include <stdexcept>

#include "engine/bf16.h"
#include "engine/matmul_bf16.h"
#include "engine/parallel.h"

namespace foundry {

namespace {
MatmulPrecision g_precision = MatmulPrecision::fp32;
Bf16Kernel g_bf16_kernel = Bf16Kernel::emulated;  // chosen when bf16 is set

// ANCHOR: bf16_dispatch
// When the precision is bf16, runs out (M, N) = a (M, K) · b (K, N) (or +=) as a bf16 product
// and returns true. a and b are read through strides, so transposed operands are never copied
// as floats. The double build never gets here (set_matmul_precision refuses bf16 there).
#ifndef FOUNDRY_REAL_DOUBLE
bool bf16_product(float* out, StridedMatrix a, StridedMatrix b, long M, long K, long N, bool accumulate) {
  if (g_precision != MatmulPrecision::bf16) return false;
  bf16_gemm(g_bf16_kernel, out, N, a, b, M, K, N, accumulate);
  return true;
}
#else
struct StridedDouble {
  StridedDouble(const double* d, long rs, long cs, const bf16* = nullptr) : data(d), row_stride(rs), col_stride(cs) {}
  const double* data;
  long row_stride, col_stride;
};
bool bf16_product(double*, StridedDouble, StridedDouble, long, long, long, bool) { return false; }
#endif
// ANCHOR_END: bf16_dispatch

#ifndef FOUNDRY_REAL_DOUBLE
// A backward pass feeds dout (n numbers) to two products. The oneDNN kernel works on bf16
// copies of its operands; rounding dout once here saves it one of the two conversions. The other
// kernels round as they pack, so they get nullptr and do what they always did.
const bf16* round_once(const float* dout, long n) {
  if (g_bf16_kernel != Bf16Kernel::onednn) return nullptr;
  static thread_local std::vector<bf16> rounded;
  rounded.resize(static_cast<size_t>(n));
  floats_to_bf16(dout, rounded.data(), n);
  return rounded.data();
}
#else
const bf16* round_once(const double*, long) { return nullptr; }
#endif

using RowMajor = Eigen::Matrix<real, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Map = Eigen::Map<RowMajor>;
using ConstMap = Eigen::Map<const RowMajor>;

enum class Write { overwrite, accumulate };  // out = lhs · rhs, or out += lhs · rhs

// Start of block p when `len` rows (or columns) are cut into `parts` blocks. Large blocks start
// on a multiple of 16, one AVX-512 register of floats, so no block begins mid-vector.
long block_start(long len, int p, int parts) {
  if (p == parts) return len;
  long start = len * p / parts;
  return len >= 64L * parts ? start / 16 * 16 : start;
}

// ANCHOR: split_product
// out (R, C) = lhs (R, X) · rhs (X, C), or +=. lhs and rhs are maps, possibly transposed: Eigen
// reads a transposed map in place, so no product ever copies its operands.
//
// Threads: we cut out into blocks of rows (or columns) and each thread runs Eigen's
// single-threaded GEMM on the blocks it takes. No element of out is written by two threads and
// no thread waits for another until the end. (Eigen can thread a product by itself, but its
// threads share packed panels and spin-wait on each other; on a 2-core machine with anything
// else running, that made a two-thread product up to 100 times slower. See BENCHMARKS.md.)
//
// Why a few blocks per thread, taken as they come (schedule(dynamic)), and not one each: when
// another program shares a core with one of our threads, that thread runs at about half speed.
// With one fixed block each, the step waits for the slow half, and two threads are no faster
// than one. With blocks handed out on demand the thread on the free core simply takes more of
// them. The block boundaries depend only on the shape and the thread count, never on which
// thread ran which block, so the numbers are the same from run to run.
template <typename Lhs, typename Rhs>
void split_product(Map out, const Lhs& lhs, const Rhs& rhs, Write mode) {
  const long rows = out.rows(), cols = out.cols(), depth = lhs.cols();
  // Cut along the longer side: rows for (B·T, C) activations, columns for a single row (one
  // token at a time in generation).
  const bool by_rows = rows >= cols;
  const long len = by_rows ? rows : cols;
  // One thread inside a parallel region (nested threads only fight over the cores) and for
  // small products, where starting threads costs more than it saves. Eigen itself stays on one
  // thread below the same 100k multiply-adds or when called from a parallel region, so it never
  // starts threads of its own here.
  const bool small = !worth_threads(Work::product, double(rows) * double(cols) * double(depth));
  const int threads = (in_parallel() || small) ? 1 : static_cast<int>(std::min<long>(num_threads(), len));
  const int parts = blocks_for(len, threads, 32);  // engine/parallel.h
  // subtle: noalias() tells Eigen that out does not overlap lhs or rhs, so it writes the result
  // straight into out instead of into a temporary that it would then copy.
  auto run_block = [&](int p) {
    const long first = block_start(len, p, parts), count = block_start(len, p + 1, parts) - first;
    if (by_rows) {
      if (mode == Write::overwrite) out.middleRows(first, count).noalias() = lhs.middleRows(first, count) * rhs;
      else out.middleRows(first, count).noalias() += lhs.middleRows(first, count) * rhs;
    } else {
      if (mode == Write::overwrite) out.middleCols(first, count).noalias() = lhs * rhs.middleCols(first, count);
      else out.middleCols(first, count).noalias() += lhs * rhs.middleCols(first, count);
    }
  };
  if (threads == 1) {
    run_block(0);
    return;
  }
  // The blocks of out are disjoint: no two threads write the same element.
  if (split_dynamically()) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int p = 0; p < parts; p++) {
      pin_worker_thread();
      run_block(p);
    }
  } else {
#pragma omp parallel for schedule(static, 1) num_threads(threads)
    for (int p = 0; p < parts; p++) {
      pin_worker_thread();
      run_block(p);
    }
  }
}
// ANCHOR_END: split_product
}  // namespace

#ifdef FOUNDRY_REAL_DOUBLE
using Strided = StridedDouble;
#else
using Strided = StridedMatrix;
#endif

void set_matmul_precision(MatmulPrecision p) {
  if (p == MatmulPrecision::bf16) {
#ifdef FOUNDRY_REAL_DOUBLE
    throw std::invalid_argument("bf16 matrix products exist in the float build only (this is the double build)");
#else
    g_bf16_kernel = bf16_kernel_default();
#endif
  }
  g_precision = p;
}

MatmulPrecision matmul_precision() { return g_precision; }

const char* matmul_precision_name(MatmulPrecision p) { return p == MatmulPrecision::bf16 ? "bf16" : "fp32"; }

MatmulPrecision parse_matmul_precision(const std::string& name) {
  if (name == "fp32") return MatmulPrecision::fp32;
  if (name == "bf16") return MatmulPrecision::bf16;
  throw std::invalid_argument("precision \"" + name + "\": expected \"fp32\" or \"bf16\"");
}

std::string matmul_precision_description() {
  if (g_precision == MatmulPrecision::fp32) return std::string("fp32 products (") + real_name() + ", Eigen)";
  return "bf16 products (bf16 inputs, fp32 sums; weights, AdamW, norms, softmax and loss in fp32), kernel " +
         bf16_kernel_description(g_bf16_kernel);
}

// ANCHOR: matmul_forward
void matmul_forward(real* out, const real* a, const real* b, int M, int K, int N) {
  if (bf16_product(out, Strided{a, K, 1}, Strided{b, N, 1}, M, K, N, false)) return;
  ConstMap A(a, M, K), B(b, K, N);
  split_product(Map(out, M, N), A, B, Write::overwrite);  // out = a · b
}
// ANCHOR_END: matmul_forward

// ANCHOR: matmul_backward
void matmul_backward(real* da, real* db, const real* dout, const real* a, const real* b, int M, int K, int N) {
  if (matmul_precision() == MatmulPrecision::bf16) {
    const bf16* d16 = da && db ? round_once(dout, long(M) * N) : nullptr;  // dout rounded once for both, or nullptr
    if (da) bf16_product(da, Strided{dout, N, 1, d16}, Strided{b, 1, N}, M, N, K, true);  // da += dout · bᵀ
    if (db) bf16_product(db, Strided{a, 1, K}, Strided{dout, N, 1, d16}, K, M, N, true);  // db += aᵀ · dout
    return;
  }
  ConstMap dOut(dout, M, N), A(a, M, K), B(b, K, N);
  if (da) split_product(Map(da, M, K), dOut, B.transpose(), Write::accumulate);  // da += dout · bᵀ
  if (db) split_product(Map(db, K, N), A.transpose(), dOut, Write::accumulate);  // db += aᵀ · dout
}
// ANCHOR_END: matmul_backward

// ANCHOR: linear_forward
void linear_forward(real* out, const real* x, const real* w, int M, int K, int N) {
  if (bf16_product(out, Strided{x, K, 1}, Strided{w, 1, K}, M, K, N, false)) return;  // out = x · wᵀ
  ConstMap X(x, M, K), W(w, N, K);
  split_product(Map(out, M, N), X, W.transpose(), Write::overwrite);  // out = x · wᵀ
}
// ANCHOR_END: linear_forward

void linear_forward_add(real* out, const real* x, const real* w, int M, int K, int N) {
  if (bf16_product(out, Strided{x, K, 1}, Strided{w, 1, K}, M, K, N, true)) return;  // out += x · wᵀ
  ConstMap X(x, M, K), W(w, N, K);
  split_product(Map(out, M, N), X, W.transpose(), Write::accumulate);  // out += x · wᵀ
}

// ANCHOR: linear_backward
void linear_backward(real* dx, real* dw, const real* dout, const real* x, const real* w, int M, int K, int N) {
  if (matmul_precision() == MatmulPrecision::bf16) {
    const bf16* d16 = dx && dw ? round_once(dout, long(M) * N) : nullptr;  // dout rounded once for both, or nullptr
    if (dx) bf16_product(dx, Strided{dout, N, 1, d16}, Strided{w, K, 1}, M, N, K, true);  // dx += dout · w
    if (dw) bf16_product(dw, Strided{dout, 1, N, d16}, Strided{x, K, 1}, N, M, K, true);  // dw += doutᵀ · x
    return;
  }
  ConstMap dOut(dout, M, N), X(x, M, K), W(w, N, K);
  if (dx) split_product(Map(dx, M, K), dOut, W, Write::accumulate);              // dx += dout · w
  if (dw) split_product(Map(dw, N, K), dOut.transpose(), X, Write::accumulate);  // dw += doutᵀ · x
}
// ANCHOR_END: linear_backward

// ANCHOR: matmul_naive
void matmul_naive(real* out, const real* a, const real* b, int M, int K, int N) {
  // Rows of out are independent, so threads can take whole rows without ever writing the same
  // element. The i-k-j loop order walks b and out along rows (contiguous) in the inner loop.
#pragma omp parallel for
  for (int i = 0; i < M; i++) {
    real* out_row = out + (size_t)i * N;
    for (int j = 0; j < N; j++) out_row[j] = 0;
    for (int k = 0; k < K; k++) {
      real a_ik = a[(size_t)i * K + k];
      const real* b_row = b + (size_t)k * N;
      for (int j = 0; j < N; j++) out_row[j] += a_ik * b_row[j];
    }
  }
}
// ANCHOR_END: matmul_naive

// ANCHOR: matmul_taped
Var matmul(Tape& tape, Var a, Var b) {
  const Tensor& A = tape.value(a);
  const Tensor& B = tape.value(b);
  if (A.rank() != 2 || B.rank() != 2 || A.dim(1) != B.dim(0)) {
    throw std::invalid_argument("matmul: cannot multiply shapes " + shape_str(A.shape) + " and " + shape_str(B.shape) +
                                " (need (M, K) and (K, N))");
  }
  int M = A.dim(0), K = A.dim(1), N = B.dim(1);
  Var out = tape.record("matmul", {a.id, b.id}, {M, N});
  matmul_forward(tape.mutable_value(out).ptr(), A.ptr(), B.ptr(), M, K, N);
  tape.set_backward(out, [&tape, a, b, out, M, K, N] {
    real* da = tape.needs_grad(a) ? tape.grad(a).ptr() : nullptr;
    real* db = tape.needs_grad(b) ? tape.grad(b).ptr() : nullptr;
    matmul_backward(da, db, tape.grad(out).ptr(), tape.value(a).ptr(), tape.value(b).ptr(), M, K, N);
  });
  return out;
}
// ANCHOR_END: matmul_taped

Var linear(Tape& tape, Var x, Var w) {
  const Tensor& X = tape.value(x);
  const Tensor& W = tape.value(w);
  if (X.rank() < 1 || W.rank() != 2 || X.dim(-1) != W.dim(1) || W.dim(1) == 0) {
    throw std::invalid_argument("linear: input of shape " + shape_str(X.shape) + " does not fit weight of shape " +
                                shape_str(W.shape) + " (need (..., K) and (N, K))");
  }
  int K = W.dim(1), N = W.dim(0);
  int M = static_cast<int>(X.size() / K);
  Shape out_shape = X.shape;
  out_shape.back() = N;
  Var out = tape.record("linear", {x.id, w.id}, out_shape);
  linear_forward(tape.mutable_value(out).ptr(), X.ptr(), W.ptr(), M, K, N);
  tape.set_backward(out, [&tape, x, w, out, M, K, N] {
    real* dx = tape.needs_grad(x) ? tape.grad(x).ptr() : nullptr;
    real* dw = tape.needs_grad(w) ? tape.grad(w).ptr() : nullptr;
    linear_backward(dx, dw, tape.grad(out).ptr(), tape.value(x).ptr(), tape.value(w).ptr(), M, K, N);
  });
  return out;
}

}  // namespace foundry
