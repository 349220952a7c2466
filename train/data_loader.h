// Batches for the causal language-modelling objective.
//
// A language model predicts token t+1 from tokens 0..t. So a batch row is a window of T + 1
// consecutive tokens: the first T are the inputs and the last T (the same window shifted by one)
// are the targets. Position t of the row is then trained to predict the token that follows it,
// and the causal mask makes sure it only sees tokens 0..t while doing so.
//
// Two batch orders (which windows, in which order; not to be confused with token sampling at
// generation time, infer/sampler.h):
//   random      each row starts at o = rng.below(n − T), a uniform offset drawn from the seeded
//               generator, so the window [o, o + T] lies inside the file. This is training's default.
//   sequential  batch k, row b starts at o = ((k·B + b)·T) mod n and reads the file as a ring:
//               inputs tokens[(o + t) mod n], targets tokens[(o + t + 1) mod n] for t in [0, T).
//               Consecutive rows tile the file without overlap and wrap at its end. Evaluation
//               uses this mode, always from k = 0, so every evaluation sees the same tokens.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/rng.h"

namespace foundry {

enum class BatchOrder { random, sequential };

// "random" or "sequential" (the config key training.sampling); throws std::invalid_argument
// naming `field` otherwise.
BatchOrder batch_order_from_string(const std::string& s, const std::string& field);
std::string to_string(BatchOrder order);

struct Batch {
  std::vector<int> inputs;   // (B, T) row-major
  std::vector<int> targets;  // (B, T) inputs shifted left by one token
};

// ANCHOR: data_loader
struct DataLoader {
  const std::vector<int>* tokens = nullptr;  // (n) the whole split, borrowed
  int B = 0;                                 // rows per batch
  int T = 0;                                 // tokens per row
  BatchOrder order = BatchOrder::random;
  Rng rng = Rng(1);         // random order: where windows start (saved in checkpoints)
  uint64_t next_batch = 0;  // sequential order: k of the next batch (saved in checkpoints)
};
// ANCHOR_END: data_loader

// Throws std::invalid_argument when the split is too short for one row (n < T + 1 tokens).
DataLoader make_data_loader(const std::vector<int>& tokens, int B, int T, BatchOrder order, uint64_t seed,
                            const std::string& what);

// Points a loader at `tokens` with rows (B, T) in `order`, keeping its position (rng and
// next_batch): how a loader restored from a checkpoint gets its tokens back. Same checks as above.
void attach_tokens(DataLoader& loader, const std::vector<int>& tokens, int B, int T, BatchOrder order,
                   const std::string& what);

// Fills `batch` (reusing its buffers) with the next batch and advances the loader.
void next_batch(DataLoader& loader, Batch& batch);

// Sequential mode without a loader: batch k, rows B, length T.
void sequential_batch(const std::vector<int>& tokens, uint64_t k, int B, int T, Batch& batch);

}  // namespace foundry
