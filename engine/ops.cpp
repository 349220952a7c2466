#include "engine/ops.h"

#include <cmath>
#include <stdexcept>

#include "engine/parallel.h"

namespace foundry {

// ANCHOR: parallel_elementwise
namespace {
void copy_elements(real* out, const real* x, size_t n) {
  const long count = static_cast<long>(n);
#pragma omp parallel for if (worth_threads(Work::elementwise, count))
  for (long i = 0; i < count; i++) out[i] = x[i];
}
}  // namespace

// The elementwise loops are split over threads when long (the residual stream of a training
// batch is a million numbers): every index is written by exactly one thread.
void add_forward(real* out, const real* a, const real* b, size_t n) {
  const long count = static_cast<long>(n);
#pragma omp parallel for if (worth_threads(Work::elementwise, count))
  for (long i = 0; i < count; i++) out[i] = a[i] + b[i];
}
// ANCHOR_END: parallel_elementwise

void add_backward(real* da, real* db, const real* dout, size_t n) {
  const long count = static_cast<long>(n);
#pragma omp parallel for if (worth_threads(Work::elementwise, count))
  for (long i = 0; i < count; i++) {
    if (da) da[i] += dout[i];
    if (db) db[i] += dout[i];
  }
}

void mul_forward(real* out, const real* a, const real* b, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}

void mul_backward(real* da, real* db, const real* dout, const real* a, const real* b, size_t n) {
  if (da)
    for (size_t i = 0; i < n; i++) da[i] += dout[i] * b[i];
  if (db)
    for (size_t i = 0; i < n; i++) db[i] += dout[i] * a[i];
}

// ANCHOR: silu
void silu_forward(real* out, const real* x, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = x[i] / (1 + std::exp(-x[i]));  // x · σ(x)
}

void silu_backward(real* dx, const real* dout, const real* x, size_t n) {
  for (size_t i = 0; i < n; i++) {
    real sig = 1 / (1 + std::exp(-x[i]));
    dx[i] += dout[i] * sig * (1 + x[i] * (1 - sig));  // σ(x) + x σ(x) (1 − σ(x))
  }
}
// ANCHOR_END: silu

// ANCHOR: swap_axes12_forward
void swap_axes12_forward(real* out, const real* x, int D0, int D1, int D2, int D3) {
  for (int a = 0; a < D0; a++)
    for (int i = 0; i < D1; i++)
      for (int j = 0; j < D2; j++) {
        const real* src = x + (((size_t)a * D1 + i) * D2 + j) * D3;  // x[a, i, j, :]
        real* dst = out + (((size_t)a * D2 + j) * D1 + i) * D3;      // out[a, j, i, :]
        for (int k = 0; k < D3; k++) dst[k] = src[k];
      }
}
// ANCHOR_END: swap_axes12_forward

void swap_axes12_backward(real* dx, const real* dout, int D0, int D1, int D2, int D3) {
  for (int a = 0; a < D0; a++)
    for (int i = 0; i < D1; i++)
      for (int j = 0; j < D2; j++) {
        real* dst = dx + (((size_t)a * D1 + i) * D2 + j) * D3;
        const real* src = dout + (((size_t)a * D2 + j) * D1 + i) * D3;
        for (int k = 0; k < D3; k++) dst[k] += src[k];
      }
}

namespace {
real* grad_or_null(Tape& tape, Var v) { return tape.needs_grad(v) ? tape.grad(v).ptr() : nullptr; }
}  // namespace

// ANCHOR: add_taped
Var add(Tape& tape, Var a, Var b) {
  check_same_shape(tape.value(a), tape.value(b), "add");
  Var out = tape.record("add", {a.id, b.id}, tape.value(a).shape);
  add_forward(tape.mutable_value(out).ptr(), tape.value(a).ptr(), tape.value(b).ptr(), tape.value(a).size());
  tape.set_backward(out, [&tape, a, b, out] {
    add_backward(grad_or_null(tape, a), grad_or_null(tape, b), tape.grad(out).ptr(), tape.grad(out).size());
  });
  return out;
}
// ANCHOR_END: add_taped

// ANCHOR: mul_taped
Var mul(Tape& tape, Var a, Var b) {
  check_same_shape(tape.value(a), tape.value(b), "mul");
  Var out = tape.record("mul", {a.id, b.id}, tape.value(a).shape);
  mul_forward(tape.mutable_value(out).ptr(), tape.value(a).ptr(), tape.value(b).ptr(), tape.value(a).size());
  tape.set_backward(out, [&tape, a, b, out] {
    mul_backward(grad_or_null(tape, a), grad_or_null(tape, b), tape.grad(out).ptr(), tape.value(a).ptr(),
                 tape.value(b).ptr(), tape.grad(out).size());
  });
  return out;
}
// ANCHOR_END: mul_taped

Var scale(Tape& tape, Var x, real s) {
  const Tensor& X = tape.value(x);
  Var out = tape.record("scale", {x.id}, X.shape);
  Tensor& Y = tape.mutable_value(out);
  for (size_t i = 0; i < X.size(); i++) Y[i] = s * X[i];
  tape.set_backward(out, [&tape, x, out, s] {
    Tensor& dx = tape.grad(x);
    const Tensor& dout = tape.grad(out);
    for (size_t i = 0; i < dx.size(); i++) dx[i] += s * dout[i];
  });
  return out;
}

Var sum(Tape& tape, Var x) {
  const Tensor& X = tape.value(x);
  Var out = tape.record("sum", {x.id}, {});
  double acc = 0;  // accumulate in double: a float running sum of many terms loses digits
  for (size_t i = 0; i < X.size(); i++) acc += X[i];
  tape.mutable_value(out)[0] = static_cast<real>(acc);
  tape.set_backward(out, [&tape, x, out] {
    Tensor& dx = tape.grad(x);
    real d = tape.grad(out)[0];
    for (size_t i = 0; i < dx.size(); i++) dx[i] += d;
  });
  return out;
}

Var mean(Tape& tape, Var x) {
  size_t n = tape.value(x).size();
  if (n == 0) throw std::invalid_argument("mean of an empty tensor");
  return scale(tape, sum(tape, x), real(1) / static_cast<real>(n));
}

Var silu(Tape& tape, Var x) {
  const Tensor& X = tape.value(x);
  Var out = tape.record("silu", {x.id}, X.shape);
  silu_forward(tape.mutable_value(out).ptr(), X.ptr(), X.size());
  tape.set_backward(out, [&tape, x, out] {
    silu_backward(tape.grad(x).ptr(), tape.grad(out).ptr(), tape.value(x).ptr(), tape.value(x).size());
  });
  return out;
}

Var reshape(Tape& tape, Var x, const Shape& shape) {
  const Tensor& X = tape.value(x);
  if (shape_numel(shape) != X.size()) {
    throw std::invalid_argument("reshape: cannot view shape " + shape_str(X.shape) + " as " + shape_str(shape));
  }
  Var out = tape.record("reshape", {x.id}, shape);
  copy_elements(tape.mutable_value(out).ptr(), X.ptr(), X.size());
  tape.set_backward(
      out, [&tape, x, out] { add_backward(tape.grad(x).ptr(), nullptr, tape.grad(out).ptr(), tape.grad(out).size()); });
  return out;
}

Var transpose(Tape& tape, Var x) {
  const Tensor& X = tape.value(x);
  if (X.rank() != 2) throw std::invalid_argument("transpose: needs a 2-D tensor, got shape " + shape_str(X.shape));
  int M = X.dim(0), N = X.dim(1);
  Var out = tape.record("transpose", {x.id}, {N, M});
  // A 2-D transpose is the 4-D axis swap with the outer and inner sizes set to 1.
  swap_axes12_forward(tape.mutable_value(out).ptr(), X.ptr(), 1, M, N, 1);
  tape.set_backward(
      out, [&tape, x, out, M, N] { swap_axes12_backward(tape.grad(x).ptr(), tape.grad(out).ptr(), 1, M, N, 1); });
  return out;
}

Var swap_axes12(Tape& tape, Var x) {
  const Tensor& X = tape.value(x);
  if (X.rank() != 4) throw std::invalid_argument("swap_axes12: needs a 4-D tensor, got shape " + shape_str(X.shape));
  int D0 = X.dim(0), D1 = X.dim(1), D2 = X.dim(2), D3 = X.dim(3);
  Var out = tape.record("swap_axes12", {x.id}, {D0, D2, D1, D3});
  swap_axes12_forward(tape.mutable_value(out).ptr(), X.ptr(), D0, D1, D2, D3);
  tape.set_backward(out, [&tape, x, out, D0, D1, D2, D3] {
    swap_axes12_backward(tape.grad(x).ptr(), tape.grad(out).ptr(), D0, D1, D2, D3);
  });
  return out;
}

}  // namespace foundry
