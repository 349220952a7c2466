#include "train/data_loader.h"

#include <stdexcept>

namespace foundry {

BatchOrder batch_order_from_string(const std::string& s, const std::string& field) {
  if (s == "random") return BatchOrder::random;
  if (s == "sequential") return BatchOrder::sequential;
  throw std::invalid_argument(field + " = \"" + s + "\": expected \"random\" or \"sequential\"");
}

std::string to_string(BatchOrder order) { return order == BatchOrder::random ? "random" : "sequential"; }

void attach_tokens(DataLoader& loader, const std::vector<int>& tokens, int B, int T, BatchOrder order,
                   const std::string& what) {
  if (B <= 0 || T <= 0) throw std::invalid_argument(what + ": batch size and context must be positive");
  if (tokens.size() < static_cast<size_t>(T) + 1) {
    throw std::invalid_argument(what + ": " + std::to_string(tokens.size()) + " tokens are too few for one row of " +
                                std::to_string(T) + " inputs and their targets (need at least " +
                                std::to_string(T + 1) + ")");
  }
  loader.tokens = &tokens;
  loader.B = B;
  loader.T = T;
  loader.order = order;
}

DataLoader make_data_loader(const std::vector<int>& tokens, int B, int T, BatchOrder order, uint64_t seed,
                            const std::string& what) {
  DataLoader loader;
  attach_tokens(loader, tokens, B, T, order, what);
  loader.rng = Rng(seed);
  return loader;
}

// ANCHOR: sequential_batch
void sequential_batch(const std::vector<int>& tokens, uint64_t k, int B, int T, Batch& batch) {
  const uint64_t n = tokens.size();
  batch.inputs.resize(static_cast<size_t>(B) * T);
  batch.targets.resize(static_cast<size_t>(B) * T);
  for (int b = 0; b < B; ++b) {
    // o = ((k·B + b)·T) mod n; the file is read as a ring, so a row may wrap past its end.
    const uint64_t o = ((k * B + b) * T) % n;
    for (int t = 0; t < T; ++t) {
      batch.inputs[b * T + t] = tokens[(o + t) % n];
      batch.targets[b * T + t] = tokens[(o + t + 1) % n];  // the next token: inputs shifted by one
    }
  }
}
// ANCHOR_END: sequential_batch

// ANCHOR: next_batch
void next_batch(DataLoader& loader, Batch& batch) {
  if (loader.order == BatchOrder::sequential) {
    sequential_batch(*loader.tokens, loader.next_batch, loader.B, loader.T, batch);
    loader.next_batch++;
    return;
  }
  const std::vector<int>& tokens = *loader.tokens;
  const int B = loader.B, T = loader.T;
  batch.inputs.resize(static_cast<size_t>(B) * T);
  batch.targets.resize(static_cast<size_t>(B) * T);
  for (int b = 0; b < B; ++b) {
    // Any o in [0, n − T) leaves room for T inputs and the one extra target after them.
    const size_t o = loader.rng.below(tokens.size() - T);
    for (int t = 0; t < T; ++t) {
      batch.inputs[b * T + t] = tokens[o + t];
      batch.targets[b * T + t] = tokens[o + t + 1];
    }
  }
}
// ANCHOR_END: next_batch

}  // namespace foundry
