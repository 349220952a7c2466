// Token embedding: row lookup in a (V, C) table.
//
//   forward:   out[i, :] = table[ids[i], :]                 out (N, C)
//   backward:  dtable[ids[i], :] += dout[i, :]   for every i
//
// subtle: the backward is a scatter-ADD. When the same id appears twice in a batch, both
// positions' gradients belong to the same row; assigning instead of adding would keep only
// the last one. (A test feeds repeated ids to catch exactly that.)
#pragma once

#include <vector>

#include "engine/tape.h"

namespace foundry {

// Throws std::invalid_argument naming the position if an id is outside [0, V).
void embedding_forward(real* out, const int* ids, const real* table, int N, int V, int C);
void embedding_backward(real* dtable, const real* dout, const int* ids, int N, int C);

// table (V, C), ids of any count N -> (N, C). Use reshape for (B, T, C).
Var embedding(Tape& tape, Var table, const std::vector<int>& ids);

}  // namespace foundry
