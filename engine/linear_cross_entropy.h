// The output projection and the cross-entropy loss in one op, computed in blocks of rows, so the
// (N, V) logits and probabilities are never held whole.
//
//   logits = x · wᵀ      x (N, C), w (V, C), logits (N, V)
//   loss   = mean over the N rows of cross_entropy(logits_i, t_i)      (engine/softmax.h)
//
// Unfused, the tape keeps the logits (N, V) for the projection's backward, the softmax (N, V) for
// the loss's backward, and backward needs the logits' gradient (N, V) too: for a vocabulary of
// 4096 and a batch of 4096 positions, 3 × 64 MB, the largest buffers of a training step. Fused,
// the op walks the rows in blocks of R: for each block it computes the block's logits, their
// softmax and loss, and, right away, the block's gradient dlogits = (p − onehot) / N and what
// it gives the two inputs:
//   dx_block  = dlogits · w          (R, C): rows of dx, each block its own rows
//   dw       += dlogitsᵀ · x_block   (V, C): summed over the blocks
// Only one block's logits (R, V) exist at a time. The forward thus does the backward's work for a
// loss gradient of 1 and keeps dx (N, C) and dw (V, C); backward(dloss) only scales them by dloss
// and adds them into the inputs' gradients. No product is computed twice, so the step costs the
// same FLOPs as the unfused ops.
//
// Same result as linear + cross_entropy up to float rounding: each row's logits, softmax and loss
// are computed by the same functions, but dw's sum over the N rows is formed block by block
// (a different order of additions), and the products see other shapes. When the whole batch fits
// in one block the op IS linear + cross_entropy (the same ops on the tape, the same bits), so small
// problems are unchanged.
#pragma once

#include <vector>

#include "engine/tape.h"

namespace foundry {

struct LossBlocking {
  // Rows of logits computed at once. 0: automatic, rows_for_budget below.
  int block_rows = 0;
  // false: evaluation only; the forward skips the gradient work and backward through the op
  // is an error.
  bool with_grad = true;
};

// The automatic block: about 2^20 logits (4 MB in float) at a time, at least 1 row.
int rows_for_budget(int V);

// x (..., C), w (V, C), one target per row of x. Returns the mean loss, shape ().
Var linear_cross_entropy(Tape& tape, Var x, Var w, const std::vector<int>& targets, LossBlocking blocking = {});

}  // namespace foundry
