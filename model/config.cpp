#include "model/config.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace foundry {

namespace {

// In messages: "model config: dim = 0" when checking a config built in code, "field 'dim'" when
// reading one (after the file name).
const FieldNaming kChecking{"", ""};
const FieldNaming kReading{"field '", "'"};

std::string unknown_model_field(const std::string& key) {
  return "unknown field '" + bounded_text(key) + "' in the model config";
}

}  // namespace

const std::vector<ConfigField<ModelConfig>>& model_config_fields() {
  using F = ConfigField<ModelConfig>;
  const double inf = INFINITY;
  static const std::vector<F> fields = {
      {"dim", &ModelConfig::dim, {1, 65536}, "", "C, the width of the residual stream"},
      {"n_layers", &ModelConfig::n_layers, {1, 1024}, "", "L, transformer blocks"},
      {"n_heads",
       &ModelConfig::n_heads,
       {1, 1024},
       "divides `dim`",
       "NH, query heads; head size HS = dim / n_heads, which must be even (RoPE rotates pairs)"},
      {"n_kv_heads",
       &ModelConfig::n_kv_heads,
       {1, 1024},
       "divides `n_heads`",
       "NKV, key/value heads; fewer than `n_heads` is grouped-query attention"},
      {"vocab_size", &ModelConfig::vocab_size, {1, 1048576}, "", "V; every token id in the data must be below it"},
      {"hidden_dim", &ModelConfig::hidden_dim, {1, 262144}, "", "F, the SwiGLU hidden width"},
      {"max_seq_len",
       &ModelConfig::max_seq_len,
       {1, 131072},
       "",
       "the longest context the RoPE tables (and the KV cache) cover; `training.seq_len` may not exceed it"},
      {"norm_eps", &ModelConfig::norm_eps, {0, inf, true}, "", "RMSNorm's epsilon, inside the square root"},
      {"rope_theta",
       &ModelConfig::rope_theta,
       {1, inf, true},
       "",
       "RoPE base: pair i of a head turns at pos · theta^(−2i/HS)"},
      {"tie_embeddings",
       &ModelConfig::tie_embeddings,
       {},
       "",
       "the output projection reuses the token embedding matrix"},
  };
  return fields;
}

void validate(const ModelConfig& c) {
  validate_fields(c, model_config_fields(), kChecking, "model config: ");
  auto fail = [](const std::string& field, const std::string& value, const std::string& why) {
    throw std::invalid_argument("model config: " + field + " = " + value + ": " + why);
  };
  if (c.dim % c.n_heads != 0) {
    fail("n_heads", std::to_string(c.n_heads), "must divide dim = " + std::to_string(c.dim));
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    fail("n_kv_heads", std::to_string(c.n_kv_heads), "must divide n_heads = " + std::to_string(c.n_heads));
  }
  if (c.head_size() % 2 != 0) {
    fail("dim / n_heads", std::to_string(c.head_size()), "the head size must be even: RoPE rotates pairs");
  }
}

nlohmann::json to_json(const ModelConfig& c) { return fields_to_json(c, model_config_fields()); }

ModelConfig model_config_from_json(const nlohmann::json& j, const std::string& where, bool require_all) {
  if (!j.is_object()) throw std::invalid_argument(where + ": the model config must be a JSON object");
  ModelConfig c;
  fields_from_json(c, j, model_config_fields(), kReading, where + ": ", require_all, unknown_model_field);
  try {
    validate(c);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(where + ": " + e.what());
  }
  return c;
}

ModelConfig load_model_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open the model config");
  std::ostringstream text;
  text << in.rdbuf();
  return model_config_from_json(parse_json_text(text.str(), path), path);
}

}  // namespace foundry
