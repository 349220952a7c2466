#include "model/config.h"

#include <fstream>
#include <stdexcept>

namespace foundry {

void validate(const ModelConfig& c) {
  auto fail = [](const std::string& field, const std::string& value, const std::string& why) {
    throw std::invalid_argument("model config: " + field + " = " + value + ": " + why);
  };
  auto positive = [&](const char* field, int v) {
    if (v <= 0) fail(field, std::to_string(v), "must be a positive integer");
  };
  positive("dim", c.dim);
  positive("n_layers", c.n_layers);
  positive("n_heads", c.n_heads);
  positive("n_kv_heads", c.n_kv_heads);
  positive("vocab_size", c.vocab_size);
  positive("hidden_dim", c.hidden_dim);
  positive("max_seq_len", c.max_seq_len);
  if (c.dim % c.n_heads != 0) {
    fail("n_heads", std::to_string(c.n_heads), "must divide dim = " + std::to_string(c.dim));
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    fail("n_kv_heads", std::to_string(c.n_kv_heads), "must divide n_heads = " + std::to_string(c.n_heads));
  }
  if (c.head_size() % 2 != 0) {
    fail("dim / n_heads", std::to_string(c.head_size()), "the head size must be even: RoPE rotates pairs");
  }
  if (!(c.norm_eps > 0)) fail("norm_eps", std::to_string(c.norm_eps), "must be > 0");
  if (!(c.rope_theta > 1)) fail("rope_theta", std::to_string(c.rope_theta), "must be > 1");
}

nlohmann::json to_json(const ModelConfig& c) {
  return {{"dim", c.dim},
          {"n_layers", c.n_layers},
          {"n_heads", c.n_heads},
          {"n_kv_heads", c.n_kv_heads},
          {"vocab_size", c.vocab_size},
          {"hidden_dim", c.hidden_dim},
          {"max_seq_len", c.max_seq_len},
          {"norm_eps", c.norm_eps},
          {"rope_theta", c.rope_theta},
          {"tie_embeddings", c.tie_embeddings}};
}

ModelConfig model_config_from_json(const nlohmann::json& j, const std::string& where, bool require_all) {
  if (!j.is_object()) throw std::invalid_argument(where + ": the model config must be a JSON object");
  ModelConfig c;
  auto get_int = [&](const char* key, int& out) {
    if (!j.contains(key)) {
      if (require_all) throw std::invalid_argument(where + ": missing field '" + key + "'");
      return;
    }
    const nlohmann::json& v = j.at(key);
    if (!v.is_number_integer()) {
      throw std::invalid_argument(where + ": field '" + key + "' must be an integer, got " + v.dump());
    }
    out = v.get<int>();
  };
  auto get_double = [&](const char* key, double& out) {
    if (!j.contains(key)) {
      if (require_all) throw std::invalid_argument(where + ": missing field '" + key + "'");
      return;
    }
    const nlohmann::json& v = j.at(key);
    if (!v.is_number()) throw std::invalid_argument(where + ": field '" + key + "' must be a number, got " + v.dump());
    out = v.get<double>();
  };
  for (auto it = j.begin(); it != j.end(); ++it) {
    static const char* known[] = {"dim",        "n_layers",    "n_heads",  "n_kv_heads", "vocab_size",
                                  "hidden_dim", "max_seq_len", "norm_eps", "rope_theta", "tie_embeddings"};
    bool ok = false;
    for (const char* k : known) ok = ok || it.key() == k;
    if (!ok) throw std::invalid_argument(where + ": unknown field '" + it.key() + "' in the model config");
  }
  get_int("dim", c.dim);
  get_int("n_layers", c.n_layers);
  get_int("n_heads", c.n_heads);
  get_int("n_kv_heads", c.n_kv_heads);
  get_int("vocab_size", c.vocab_size);
  get_int("hidden_dim", c.hidden_dim);
  get_int("max_seq_len", c.max_seq_len);
  get_double("norm_eps", c.norm_eps);
  get_double("rope_theta", c.rope_theta);
  if (j.contains("tie_embeddings")) {
    if (!j.at("tie_embeddings").is_boolean()) {
      throw std::invalid_argument(where + ": field 'tie_embeddings' must be true or false, got " +
                                  j.at("tie_embeddings").dump());
    }
    c.tie_embeddings = j.at("tie_embeddings").get<bool>();
  } else if (require_all) {
    throw std::invalid_argument(where + ": missing field 'tie_embeddings'");
  }
  try {
    validate(c);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(where + ": " + e.what());
  }
  return c;
}

ModelConfig load_model_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open the model config");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(path + ": not valid JSON: " + e.what());
  }
  return model_config_from_json(j, path);
}

}  // namespace foundry
