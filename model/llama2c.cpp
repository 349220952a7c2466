#include "model/llama2c.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "common/file_io.h"

namespace foundry {

Model load_llama2c_checkpoint(const std::string& path) {
  const std::string bytes = read_file(path, "llama2.c checkpoint");

  const char* names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  if (bytes.size() < 7 * sizeof(int32_t)) {
    throw std::invalid_argument(path + ": " + std::to_string(bytes.size()) +
                                " bytes, too short for the 28-byte llama2.c header");
  }
  int32_t h[7];
  std::memcpy(h, bytes.data(), sizeof h);
  for (int i = 0; i < 7; i++) {
    // subtle: INT32_MIN has no positive counterpart, so a "negative vocab_size" of INT32_MIN
    // cannot be negated; it is refused with the other impossible values.
    if (h[i] == 0 || (h[i] < 0 && i != 5) || h[i] == INT32_MIN) {
      throw std::invalid_argument(path + ": header field " + names[i] + " = " + std::to_string(h[i]) +
                                  ", expected a positive number (is this a llama2.c legacy checkpoint?)");
    }
  }
  ModelConfig c;
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.tie_embeddings = h[5] > 0;  // negative: an untied classifier follows the RoPE tables
  c.vocab_size = h[5] > 0 ? h[5] : -h[5];
  c.max_seq_len = h[6];
  c.norm_eps = 1e-5;     // what run.c hard-codes
  c.rope_theta = 10000;  // likewise
  try {
    validate(c);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(path + ": the header describes an invalid model: " + e.what());
  }

  // Count the floats the header promises before touching any of them. validate() bounds every
  // field (dim <= 2^16, hidden_dim <= 2^18, n_layers <= 2^10, ...), so this count stays far
  // below 2^64: a forged header cannot wrap it around to the file's real size.
  // Every parameter of the table (the file holds exactly those, in its own order), plus the
  // legacy RoPE tables.
  size_t C = c.dim, F = c.hidden_dim, V = c.vocab_size, KV = c.kv_dim(), HS = c.head_size();
  size_t expected = parameter_count(c) + 2 * (size_t)c.max_seq_len * (HS / 2);
  size_t have = (bytes.size() - sizeof h) / sizeof(float);
  if ((bytes.size() - sizeof h) % sizeof(float) != 0 || have != expected) {
    throw std::invalid_argument(path + ": " + std::to_string(bytes.size()) + " bytes hold " + std::to_string(have) +
                                " floats after the header, but the header (" + std::to_string(c.dim) + " dim, " +
                                std::to_string(c.n_layers) + " layers, vocab " + std::to_string(h[5]) + ") needs " +
                                std::to_string(expected));
  }

  Model model = make_model(c);
  const char* cursor = bytes.data() + sizeof h;
  // Copies the next n floats into dst, or skips them when dst is null.
  auto take = [&](real* dst, size_t n) {
    if (dst) {
      for (size_t i = 0; i < n; i++) {
        float v;
        std::memcpy(&v, cursor + i * sizeof(float), sizeof(float));
        dst[i] = static_cast<real>(v);
      }
    }
    cursor += n * sizeof(float);
  };
  // One kind of tensor for every layer in turn: the file groups by kind, we group by layer.
  auto take_per_layer = [&](Tensor* LayerWeights::*member, size_t n) {
    for (LayerWeights& lw : model.weights.layers) take((lw.*member)->ptr(), n);
  };
  ModelWeights& w = model.weights;
  take(w.tok_embeddings->ptr(), V * C);
  take_per_layer(&LayerWeights::attention_norm, C);
  take_per_layer(&LayerWeights::wq, C * C);
  take_per_layer(&LayerWeights::wk, KV * C);
  take_per_layer(&LayerWeights::wv, KV * C);
  take_per_layer(&LayerWeights::wo, C * C);
  take_per_layer(&LayerWeights::ffn_norm, C);
  take_per_layer(&LayerWeights::w1, F * C);
  take_per_layer(&LayerWeights::w2, C * F);  // subtle: the file stores w2 before w3
  take_per_layer(&LayerWeights::w3, F * C);
  take(w.norm->ptr(), C);
  take(nullptr, 2 * (size_t)c.max_seq_len * (HS / 2));  // the legacy RoPE tables
  if (!c.tie_embeddings) take(w.output->ptr(), V * C);
  return model;
}

}  // namespace foundry
