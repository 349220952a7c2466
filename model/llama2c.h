// Reading Andrej Karpathy's llama2.c checkpoints (the legacy "version 0" .bin format).
//
// Layout, all little-endian:
//   header   7 × int32: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
//            (a negative vocab_size means the classifier is NOT tied to the embedding and is
//            stored at the very end)
//   weights  float32, grouped by kind across all layers, each matrix (out, in):
//            token embedding (V, C)
//            attention RMSNorm gains (L, C)
//            wq (L, C, C), wk (L, NKV·HS, C), wv (L, NKV·HS, C), wo (L, C, C)
//            ffn RMSNorm gains (L, C)
//            w1 (L, F, C), w2 (L, C, F), w3 (L, F, C)
//            final RMSNorm gain (C)
//            two RoPE tables (seq_len, HS/2), cos then sin: skipped, we compute our own
//            classifier (V, C), only when vocab_size was negative
//
// The architecture is exactly ours (RMSNorm with eps 1e-5 inside the root, RoPE on adjacent
// pairs with theta 10000, GQA, SwiGLU), so conversion only regroups the tensors by layer.
#pragma once

#include <string>

#include "model/model.h"

namespace foundry {

// Reads and validates a legacy llama2.c checkpoint. Throws std::invalid_argument naming the
// file and the field when the header is invalid or the file size disagrees with it, and
// std::runtime_error when the file cannot be read.
Model load_llama2c_checkpoint(const std::string& path);

}  // namespace foundry
