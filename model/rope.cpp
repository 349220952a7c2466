#include "model/rope.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/parallel.h"

namespace foundry {

// ANCHOR: rope_tables
void rope_tables(real* cos, real* sin, int max_seq_len, int HS, double theta) {
  int half = HS / 2;
  for (int pos = 0; pos < max_seq_len; pos++) {
    for (int i = 0; i < half; i++) {
      // Pair i turns at frequency theta^(−2i/HS): pair 0 once per position, the last pair
      // theta^((HS−2)/HS) times slower (nearly theta for a large HS). In double, so long
      // contexts do not lose the angle's digits.
      double freq = std::pow(theta, -2.0 * i / HS);
      double angle = pos * freq;
      cos[(size_t)pos * half + i] = static_cast<real>(std::cos(angle));
      sin[(size_t)pos * half + i] = static_cast<real>(std::sin(angle));
    }
  }
}
// ANCHOR_END: rope_tables

// ANCHOR: rope_forward
void rope_forward(real* out, const real* x, const real* cos, const real* sin, int B, int T, int NHX, int HS, int pos0) {
  int half = HS / 2;
  // Every (b, t) row is independent and writes only its own NHX·HS outputs.
#pragma omp parallel for if (worth_threads(Work::elementwise, double(B) * T * NHX * HS))
  for (int bt = 0; bt < B * T; bt++) {
    int pos = pos0 + bt % T;
    const real* c = cos + (size_t)pos * half;  // this position's angles, one per pair
    const real* s = sin + (size_t)pos * half;
    for (int h = 0; h < NHX; h++) {
      const real* xh = x + ((size_t)bt * NHX + h) * HS;
      real* yh = out + ((size_t)bt * NHX + h) * HS;
      for (int i = 0; i < half; i++) {
        // subtle: read both halves of the pair before writing, so out == x (in place) works.
        real x0 = xh[2 * i], x1 = xh[2 * i + 1];
        // x0·c − x1·s and x0·s + x1·c, with the fused multiply-add written out: left to
        // -ffp-contract=fast, g++ and clang fuse different products and round differently.
        yh[2 * i] = std::fma(x0, c[i], -(x1 * s[i]));
        yh[2 * i + 1] = std::fma(x0, s[i], x1 * c[i]);
      }
    }
  }
}
// ANCHOR_END: rope_forward

// ANCHOR: rope_backward
void rope_backward(real* dx, const real* dout, const real* cos, const real* sin, int B, int T, int NHX, int HS,
                   int pos0) {
  int half = HS / 2;
// rows (b, t) independent, as in the forward
#pragma omp parallel for if (worth_threads(Work::elementwise, double(B) * T * NHX * HS))
  for (int bt = 0; bt < B * T; bt++) {
    int pos = pos0 + bt % T;
    const real* c = cos + (size_t)pos * half;
    const real* s = sin + (size_t)pos * half;
    for (int h = 0; h < NHX; h++) {
      const real* dyh = dout + ((size_t)bt * NHX + h) * HS;
      real* dxh = dx + ((size_t)bt * NHX + h) * HS;
      for (int i = 0; i < half; i++) {
        real dy0 = dyh[2 * i], dy1 = dyh[2 * i + 1];
        // the transpose of the forward's rotation: the same cos, the sine's sign flipped
        // (fma written out, as in the forward)
        dxh[2 * i] += std::fma(dy0, c[i], dy1 * s[i]);
        dxh[2 * i + 1] += std::fma(-dy0, s[i], dy1 * c[i]);
      }
    }
  }
}
// ANCHOR_END: rope_backward

// ANCHOR: rope_taped
Var rope(Tape& tape, Var x, const Tensor& cos, const Tensor& sin) {
  const Tensor& X = tape.value(x);
  if (X.rank() != 4 || X.dim(3) % 2 != 0) {
    throw std::invalid_argument("rope: input must be (B, T, NHX, HS) with an even head size, got " +
                                shape_str(X.shape));
  }
  int B = X.dim(0), T = X.dim(1), NHX = X.dim(2), HS = X.dim(3);
  if (cos.rank() != 2 || cos.dim(1) != HS / 2 || cos.shape != sin.shape) {
    throw std::invalid_argument("rope: tables of shape " + shape_str(cos.shape) + " / " + shape_str(sin.shape) +
                                " do not fit head size " + std::to_string(HS) + " (need (max_seq_len, " +
                                std::to_string(HS / 2) + "))");
  }
  if (T > cos.dim(0)) {
    throw std::invalid_argument("rope: sequence of " + std::to_string(T) + " positions exceeds the tables' " +
                                std::to_string(cos.dim(0)) + " (max_seq_len)");
  }
  Var out = tape.record("rope", {x.id}, X.shape);
  rope_forward(tape.mutable_value(out).ptr(), X.ptr(), cos.ptr(), sin.ptr(), B, T, NHX, HS, 0);
  const Tensor* c = &cos;  // the model's tables; they outlive the step
  const Tensor* s = &sin;
  tape.set_backward(out, [&tape, x, out, c, s, B, T, NHX, HS] {
    rope_backward(tape.grad(x).ptr(), tape.grad(out).ptr(), c->ptr(), s->ptr(), B, T, NHX, HS, 0);
  });
  return out;
}
// ANCHOR_END: rope_taped

}  // namespace foundry
