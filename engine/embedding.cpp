#include "engine/embedding.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace foundry {

namespace {
void check_ids(const int* ids, int N, int V) {
  for (int i = 0; i < N; i++) {
    if (ids[i] < 0 || ids[i] >= V) {
      throw std::invalid_argument("embedding: token id " + std::to_string(ids[i]) + " at position " +
                                  std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(V) + ")");
    }
  }
}
}  // namespace

// ANCHOR: embedding
void embedding_forward(real* out, const int* ids, const real* table, int N, int V, int C) {
  check_ids(ids, N, V);  // before any copy: a bad id must not leave out half-written
  for (int i = 0; i < N; i++) {
    std::copy(table + (size_t)ids[i] * C, table + (size_t)(ids[i] + 1) * C, out + (size_t)i * C);
  }
}

void embedding_backward(real* dtable, const real* dout, const int* ids, int N, int C) {
  // Sequential on purpose: two positions with the same id write the same row.
  for (int i = 0; i < N; i++) {
    real* row = dtable + (size_t)ids[i] * C;
    const real* d = dout + (size_t)i * C;
    for (int c = 0; c < C; c++) row[c] += d[c];  // +=, not =: repeated ids accumulate
  }
}
// ANCHOR_END: embedding

Var embedding(Tape& tape, Var table, const std::vector<int>& ids) {
  const Tensor& W = tape.value(table);
  if (W.rank() != 2) throw std::invalid_argument("embedding: table must be (V, C), got " + shape_str(W.shape));
  int N = static_cast<int>(ids.size()), V = W.dim(0), C = W.dim(1);
  check_ids(ids.data(), N, V);  // before recording: a bad id leaves no half-built node on the tape
  Var out = tape.record("embedding", {table.id}, {N, C});
  embedding_forward(tape.mutable_value(out).ptr(), ids.data(), W.ptr(), N, V, C);
  // The ids are copied into the closure (N ints) so the caller's vector may die before backward.
  tape.set_backward(out, [&tape, table, out, ids, C] {
    embedding_backward(tape.grad(table).ptr(), tape.grad(out).ptr(), ids.data(), static_cast<int>(ids.size()), C);
  });
  return out;
}

}  // namespace foundry
