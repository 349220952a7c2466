// The reference model configurations of the benchmarks (tiny, small and medium;
// the same sizes as configs/*.json): one helper shared by bench_model and bench_suite.
#pragma once

#include "model/config.h"

namespace foundry {

// A tied-embedding model with vocabulary 4096 and the given sizes; context = max_seq_len.
inline ModelConfig make_config(int dim, int layers, int heads, int kv_heads, int hidden, int context) {
  ModelConfig c;
  c.dim = dim;
  c.n_layers = layers;
  c.n_heads = heads;
  c.n_kv_heads = kv_heads;
  c.hidden_dim = hidden;
  c.vocab_size = 4096;
  c.max_seq_len = context;
  c.tie_embeddings = true;
  return c;
}

}  // namespace foundry
