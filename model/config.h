// ModelConfig: the architecture's numbers, as stored in a model directory's config.json.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/config_fields.h"

namespace foundry {

struct ModelConfig {
  int dim = 128;               // C: width of the residual stream
  int n_layers = 4;            // L: transformer blocks
  int n_heads = 4;             // NH: query heads; HS = dim / n_heads
  int n_kv_heads = 4;          // NKV: key/value heads, dividing n_heads (NKV < NH is GQA)
  int vocab_size = 4096;       // V
  int hidden_dim = 352;        // F: SwiGLU hidden width
  int max_seq_len = 64;        // longest context (T) the RoPE tables cover
  double norm_eps = 1e-5;      // RMSNorm's epsilon, inside the square root
  double rope_theta = 10000;   // RoPE base: pair i turns at pos · theta^(−2i/HS)
  bool tie_embeddings = true;  // output projection shares tok_embeddings' matrix

  int head_size() const { return dim / n_heads; }          // HS
  int kv_dim() const { return n_kv_heads * head_size(); }  // NKV · HS
};

// Every field of ModelConfig with its JSON name, range and help (model/config_fields.h): the one
// declaration that parsing, validation, to_json and configs/README.md's model table come from.
// The upper limits are far above any model this project trains (LLaMA-3 405B has dim 16384,
// 126 layers, a 128K context); they exist so that a corrupt or hostile config.json is refused
// before anything is allocated.
const std::vector<ConfigField<ModelConfig>>& model_config_fields();

// Throws std::invalid_argument naming the field, its value and what was expected (a size out of
// its range, n_heads not dividing dim, n_kv_heads not dividing n_heads, odd head size).
void validate(const ModelConfig& config);

// JSON with exactly the fields above. Parsing rejects unknown keys, wrong types and integers out
// of range, naming the key and the value; missing keys keep their defaults only when
// `require_all` is false. `where` (a file name) starts every error message.
nlohmann::json to_json(const ModelConfig& config);
ModelConfig model_config_from_json(const nlohmann::json& j, const std::string& where, bool require_all = true);

// Reads and validates a model directory's config.json. (A training config nests these fields
// under "model"; train/train_config.h reads that.)
ModelConfig load_model_config(const std::string& path);

}  // namespace foundry
