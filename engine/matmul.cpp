#include "engine/matmul.h"

#include <Eigen/Core>
#include <stdexcept>

namespace foundry {

namespace {
using RowMajor = Eigen::Matrix<real, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Map = Eigen::Map<RowMajor>;
using ConstMap = Eigen::Map<const RowMajor>;
}  // namespace

// ANCHOR: matmul_forward
void matmul_forward(real* out, const real* a, const real* b, int M, int K, int N) {
  ConstMap A(a, M, K), B(b, K, N);
  Map Out(out, M, N);
  Out.noalias() = A * B;  // noalias: write straight into out, no temporary
}
// ANCHOR_END: matmul_forward

// ANCHOR: matmul_backward
void matmul_backward(real* da, real* db, const real* dout, const real* a, const real* b, int M, int K, int N) {
  ConstMap dOut(dout, M, N), A(a, M, K), B(b, K, N);
  if (da) {
    Map dA(da, M, K);
    dA.noalias() += dOut * B.transpose();  // da += dout · bᵀ
  }
  if (db) {
    Map dB(db, K, N);
    dB.noalias() += A.transpose() * dOut;  // db += aᵀ · dout
  }
}
// ANCHOR_END: matmul_backward

void linear_forward(real* out, const real* x, const real* w, int M, int K, int N) {
  ConstMap X(x, M, K), W(w, N, K);
  Map Out(out, M, N);
  Out.noalias() = X * W.transpose();
}

void linear_backward(real* dx, real* dw, const real* dout, const real* x, const real* w, int M, int K, int N) {
  ConstMap dOut(dout, M, N), X(x, M, K), W(w, N, K);
  if (dx) {
    Map dX(dx, M, K);
    dX.noalias() += dOut * W;  // dx += dout · w
  }
  if (dw) {
    Map dW(dw, N, K);
    dW.noalias() += dOut.transpose() * X;  // dw += doutᵀ · x
  }
}

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
    throw std::invalid_argument("matmul: cannot multiply shapes " + shape_str(A.shape) + " and " +
                                shape_str(B.shape) + " (need (M, K) and (K, N))");
  }
  int M = A.dim(0), K = A.dim(1), N = B.dim(1);
  Var out = tape.record("matmul", {a.id, b.id}, {M, N});
  matmul_forward(tape.out(out).ptr(), A.ptr(), B.ptr(), M, K, N);
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
  linear_forward(tape.out(out).ptr(), X.ptr(), W.ptr(), M, K, N);
  tape.set_backward(out, [&tape, x, w, out, M, K, N] {
    real* dx = tape.needs_grad(x) ? tape.grad(x).ptr() : nullptr;
    real* dw = tape.needs_grad(w) ? tape.grad(w).ptr() : nullptr;
    linear_backward(dx, dw, tape.grad(out).ptr(), tape.value(x).ptr(), tape.value(w).ptr(), M, K, N);
  });
  return out;
}

}  // namespace foundry
