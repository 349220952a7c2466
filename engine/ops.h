// Elementwise ops, reductions, reshapes and transposes.
//
// Each op is a forward/backward pair of free functions on raw buffers, then a thin taped
// wrapper. Backward functions ADD into their gradient buffers (+=) and skip a nullptr gradient.
// Shapes must match exactly: there is no implicit broadcasting anywhere in the project.
//
//   add:    out = a + b            da += dout,      db += dout
//   mul:    out = a ⊙ b            da += dout ⊙ b,  db += dout ⊙ a
//   scale:  out = s · x            dx += s · dout
//   sum:    out = Σ_i x_i          dx_i += dout                 (out has shape ())
//   mean:   out = Σ_i x_i / n      dx_i += dout / n
//   silu:   out = x · σ(x)         dx += dout · σ(x) · (1 + x · (1 − σ(x)))
//           since d/dx [x σ(x)] = σ(x) + x σ(x)(1 − σ(x)).
#pragma once

#include <cstddef>

#include "engine/tape.h"

namespace foundry {

void add_forward(real* out, const real* a, const real* b, size_t n);
void add_backward(real* da, real* db, const real* dout, size_t n);
void mul_forward(real* out, const real* a, const real* b, size_t n);
void mul_backward(real* da, real* db, const real* dout, const real* a, const real* b, size_t n);
void silu_forward(real* out, const real* x, size_t n);
void silu_backward(real* dx, const real* dout, const real* x, size_t n);

// Swaps axes 1 and 2 of a (D0, D1, D2, D3) tensor: out (D0, D2, D1, D3). This is the transpose
// attention needs: (B, T, NH, HS) <-> (B, NH, T, HS). Its backward is the same swap of dout,
// added into dx; swap_axes12_backward(dx, dout, D0, D1, D2, D3) takes the forward's sizes.
void swap_axes12_forward(real* out, const real* x, int D0, int D1, int D2, int D3);
void swap_axes12_backward(real* dx, const real* dout, int D0, int D1, int D2, int D3);

Var add(Tape& tape, Var a, Var b);
Var mul(Tape& tape, Var a, Var b);
Var scale(Tape& tape, Var x, real s);
Var sum(Tape& tape, Var x);
Var mean(Tape& tape, Var x);
Var silu(Tape& tape, Var x);
Var reshape(Tape& tape, Var x, const Shape& shape);  // same element count, copies
Var transpose(Tape& tape, Var x);                    // (M, N) -> (N, M)
Var swap_axes12(Tape& tape, Var x);                  // (D0, D1, D2, D3) -> (D0, D2, D1, D3)

}  // namespace foundry
