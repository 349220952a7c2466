// grow_vocab: see resize_vocab.h for the initialisation and why.
#include "model/resize_vocab.h"

#include <stdexcept>
#include <string>
#include <vector>

namespace foundry {

Model grow_vocab(const Model& model, int new_vocab) {
  const int V = model.config.vocab_size;
  if (new_vocab < V)
    throw std::invalid_argument("grow_vocab: the new vocabulary (" + std::to_string(new_vocab) +
                                ") is smaller than the model's (" + std::to_string(V) + ")");
  ModelConfig config = model.config;
  config.vocab_size = new_vocab;
  Model grown = make_model(config, model.table);
  for (size_t k = 0; k < model.entries.size(); ++k) {
    const Tensor& old = model.values[k];
    Tensor& now = grown.values[grown.index_of(model.entries[k].name)];
    // Only a tensor that grew has rows to fill; its first dimension is V (params.h: (V, C)).
    std::copy(old.data.begin(), old.data.end(), now.data.begin());
    if (now.size() == old.size()) continue;
    const int C = old.dim(-1);
    std::vector<double> mean(C, 0.0);
    for (int v = 0; v < V; ++v)
      for (int c = 0; c < C; ++c) mean[c] += old.data[(size_t)v * C + c];
    for (int v = V; v < new_vocab; ++v)
      for (int c = 0; c < C; ++c) now.data[(size_t)v * C + c] = static_cast<real>(mean[c] / V);
  }
  return grown;
}

}  // namespace foundry
