#include "engine/linear_cross_entropy.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "engine/matmul.h"
#include "engine/parallel.h"
#include "engine/softmax.h"

namespace foundry {

int rows_for_budget(int V) { return std::max(1, (1 << 20) / std::max(1, V)); }

namespace {

// g += s · v, elementwise: backward's only work (the products ran in the forward).
void add_scaled(Tensor& g, real s, const Tensor& v) {
  real* out = g.ptr();
  const real* in = v.ptr();
  const long count = static_cast<long>(v.size());
#pragma omp parallel for if (worth_threads(Work::elementwise, count))
  for (long i = 0; i < count; i++) out[i] += s * in[i];
}

}  // namespace

Var linear_cross_entropy(Tape& tape, Var x, Var w, const std::vector<int>& targets, LossBlocking blocking) {
  const Tensor& X = tape.value(x);
  const Tensor& W = tape.value(w);
  if (X.rank() < 1 || W.rank() != 2 || X.dim(-1) != W.dim(1) || W.dim(1) == 0 || W.dim(0) == 0) {
    throw std::invalid_argument("linear_cross_entropy: input of shape " + shape_str(X.shape) +
                                " does not fit weight of shape " + shape_str(W.shape) + " (need (..., C) and (V, C))");
  }
  const int C = W.dim(1), V = W.dim(0);
  const int N = static_cast<int>(X.size() / C);
  const int rows = blocking.block_rows > 0 ? blocking.block_rows : rows_for_budget(V);
  // One block holds everything: the plain ops, so small problems keep their exact bits.
  if (rows >= N) return cross_entropy(tape, linear(tape, x, w), targets);
  if (static_cast<int>(targets.size()) != N) {
    throw std::invalid_argument("linear_cross_entropy: " + std::to_string(N) + " rows of " + shape_str(X.shape) +
                                " but " + std::to_string(targets.size()) + " targets");
  }
  for (int i = 0; i < N; i++) {
    if (targets[i] < 0 || targets[i] >= V) {
      throw std::invalid_argument("linear_cross_entropy: target " + std::to_string(targets[i]) + " at row " +
                                  std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(V) + ")");
    }
  }
  Var out = tape.record("linear_cross_entropy", {x.id, w.id}, {});
  const bool grad = blocking.with_grad && tape.needs_grad(out);
  const bool want_dx = grad && tape.needs_grad(x), want_dw = grad && tape.needs_grad(w);
  // subtle: saved(k) may grow the node's list of buffers, which moves them; asking for the
  // highest index first means no later call grows it, so the references below stay valid.
  Tensor* dw = want_dw ? &tape.saved(out, 3, {V, C}) : nullptr;  // dL/dw for dloss = 1, (V, C)
  Tensor* dx = want_dx ? &tape.saved(out, 2, {N, C}) : nullptr;  // dL/dx for dloss = 1, (N, C)
  Tensor& probs = tape.saved(out, 1, {rows, V});                 // a block's softmax, then its gradient
  Tensor& logits = tape.saved(out, 0, {rows, V});                // a block's logits (R, V)
  if (dx) dx->fill(0);
  if (dw) dw->fill(0);
  // The plain loss's backward scales by dloss / N with dloss = 1: the same number here.
  const real scale = static_cast<real>(1) / N;
  double total = 0;  // Σ of the rows' losses
  for (int r0 = 0; r0 < N; r0 += rows) {
    const int R = std::min(rows, N - r0);
    const real* xb = X.ptr() + (size_t)r0 * C;  // (R, C)
    linear_forward(logits.ptr(), xb, W.ptr(), R, C, V);
    total += cross_entropy_forward(probs.ptr(), logits.ptr(), targets.data() + r0, R, V) * R;
    if (!grad) continue;
    // dlogits = (p − onehot(t)) / N, over p in place: what cross_entropy_backward adds into zeros.
    real* d = probs.ptr();
    const int* t = targets.data() + r0;
#pragma omp parallel for if (worth_threads(Work::elementwise, (double)R * V))
    for (int i = 0; i < R; i++) {
      real* row = d + (size_t)i * V;
      for (int j = 0; j < V; j++) row[j] = row[j] * scale;
      row[t[i]] -= scale;
    }
    // dx rows of this block = dlogits · w;  dw += dlogitsᵀ · x_block
    linear_backward(dx ? dx->ptr() + (size_t)r0 * C : nullptr, dw ? dw->ptr() : nullptr, d, xb, W.ptr(), R, C, V);
  }
  tape.mutable_value(out)[0] = static_cast<real>(total / N);
  const bool with_grad = blocking.with_grad;
  tape.set_backward(out, [&tape, x, w, out, with_grad] {
    if (!with_grad) {
      throw std::logic_error("linear_cross_entropy: backward through a loss recorded for evaluation only");
    }
    const real dloss = tape.grad(out)[0];
    const TapeNode& n = tape.node(out.id);
    if (tape.needs_grad(x)) add_scaled(tape.grad(x), dloss, n.saved[2]);
    if (tape.needs_grad(w)) add_scaled(tape.grad(w), dloss, n.saved[3]);
  });
  return out;
}

}  // namespace foundry
