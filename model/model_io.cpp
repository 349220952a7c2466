// Saving and loading model directories (see model_io.h for the layout).
#include "model/model_io.h"

#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>
#include <system_error>

#include "common/file_io.h"
#include "model/safetensors.h"

namespace foundry {

namespace {

const char* kConfigFile = "config.json";
const char* kWeightsFile = "model.safetensors";

std::string join(const std::string& dir, const char* file) { return (std::filesystem::path(dir) / file).string(); }

// The config fields a tensor's shape comes from, for messages such as
// "config.json expects (37, 16) (vocab_size = 37, dim = 16)".
std::string shape_reason(const std::string& name, const ModelConfig& c) {
  auto field = [](const char* key, int v) { return std::string(key) + " = " + std::to_string(v); };
  const std::string dim = field("dim", c.dim);
  if (name == "tok_embeddings.weight" || name == "output.weight") return field("vocab_size", c.vocab_size) + ", " + dim;
  if (name.find("_norm.weight") != std::string::npos || name == "norm.weight") return dim;
  if (name.find(".wq.") != std::string::npos || name.find(".wo.") != std::string::npos) {
    return dim + ", " + field("n_heads", c.n_heads);
  }
  if (name.find(".wk.") != std::string::npos || name.find(".wv.") != std::string::npos) {
    return dim + ", " + field("n_heads", c.n_heads) + ", " + field("n_kv_heads", c.n_kv_heads);
  }
  return dim + ", " + field("hidden_dim", c.hidden_dim);
}

}  // namespace

// ANCHOR: model_tensor_shapes
std::vector<std::pair<std::string, Shape>> model_tensor_shapes(const ModelConfig& c) {
  const int C = c.dim, F = c.hidden_dim, V = c.vocab_size;
  const int HS = c.head_size();
  std::vector<std::pair<std::string, Shape>> shapes;
  shapes.push_back({"tok_embeddings.weight", {V, C}});
  for (int i = 0; i < c.n_layers; i++) {
    const std::string p = "layers." + std::to_string(i) + ".";
    shapes.push_back({p + "attention_norm.weight", {C}});
    shapes.push_back({p + "attention.wq.weight", {c.n_heads * HS, C}});
    shapes.push_back({p + "attention.wk.weight", {c.n_kv_heads * HS, C}});
    shapes.push_back({p + "attention.wv.weight", {c.n_kv_heads * HS, C}});
    shapes.push_back({p + "attention.wo.weight", {C, c.n_heads * HS}});
    shapes.push_back({p + "ffn_norm.weight", {C}});
    shapes.push_back({p + "feed_forward.w1.weight", {F, C}});
    shapes.push_back({p + "feed_forward.w3.weight", {F, C}});
    shapes.push_back({p + "feed_forward.w2.weight", {C, F}});
  }
  shapes.push_back({"norm.weight", {C}});
  if (!c.tie_embeddings) shapes.push_back({"output.weight", {V, C}});
  return shapes;
}
// ANCHOR_END: model_tensor_shapes

// ANCHOR: save_model
void save_model(const Model& model, const std::string& dir) {
  validate(model.config);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error(dir + ": cannot create the model directory: " + ec.message());

  // subtle: parameters() hands out mutable pointers (the optimizer needs them), so it is not a
  // const member; saving only reads through them.
  std::vector<NamedTensor> params = const_cast<Model&>(model).parameters();
  const auto expected = model_tensor_shapes(model.config);
  if (params.size() != expected.size()) {
    throw std::invalid_argument(dir + ": the model has " + std::to_string(params.size()) + " tensors but its config calls for " +
                                std::to_string(expected.size()));
  }
  std::vector<std::pair<std::string, const Tensor*>> tensors;
  for (size_t i = 0; i < params.size(); i++) {
    // Refuse to write a file that load_model would reject.
    if (params[i].name != expected[i].first) {
      throw std::invalid_argument(dir + ": parameter " + std::to_string(i) + " is named '" + params[i].name +
                                  "', expected '" + expected[i].first + "'");
    }
    check_shape(params[i].value->shape, expected[i].second, dir + ": tensor '" + params[i].name + "'");
    tensors.push_back({params[i].name, params[i].value});
  }

  save_safetensors(join(dir, kWeightsFile), tensors, {{"format", "pt"}, {"producer", "llm-foundry"}});
  write_file_atomic(join(dir, kConfigFile), to_json(model.config).dump(2) + "\n");
}
// ANCHOR_END: save_model

// ANCHOR: load_model
Model load_model(const std::string& dir) {
  const std::string config_path = join(dir, kConfigFile);
  const std::string weights_path = join(dir, kWeightsFile);
  if (!std::filesystem::is_directory(dir)) throw std::runtime_error(dir + ": not a model directory");

  // The config alone first: it must be valid before it can judge the weights.
  const ModelConfig config = load_model_config(config_path);
  SafetensorsFile file = load_safetensors(weights_path);

  // Then every tensor against the config: the same set of names, each with its shape.
  const auto expected = model_tensor_shapes(config);
  std::set<std::string> expected_names;
  for (const auto& [name, shape] : expected) {
    expected_names.insert(name);
    auto it = file.tensors.find(name);
    if (it == file.tensors.end()) {
      throw std::invalid_argument(weights_path + ": missing tensor '" + name + "' (" + config_path + " has n_layers = " +
                                  std::to_string(config.n_layers) +
                                  ", tie_embeddings = " + (config.tie_embeddings ? "true" : "false") + ")");
    }
    if (it->second.shape != shape) {
      throw std::invalid_argument(weights_path + ": tensor '" + name + "' has shape " + shape_str(it->second.shape) +
                                  " but " + config_path + " expects " + shape_str(shape) + " (" +
                                  shape_reason(name, config) + ")");
    }
  }
  for (const auto& entry : file.tensors) {
    if (!expected_names.count(entry.first)) {
      std::string why = entry.first == "output.weight" ? " (" + config_path + " has tie_embeddings = true)"
                                                       : " (not part of a model with this config)";
      throw std::invalid_argument(weights_path + ": unexpected tensor '" + entry.first + "'" + why);
    }
  }

  // Everything agrees: move the weights into a fresh model. Nothing above touched it.
  Model model = make_model(config);
  for (NamedTensor& p : model.parameters()) {
    auto it = file.tensors.find(p.name);
    if (it == file.tensors.end()) {
      throw std::logic_error("load_model: Model::parameters() names '" + p.name + "', which model_tensor_shapes lacks");
    }
    check_shape(it->second.shape, p.value->shape, weights_path + ": tensor '" + p.name + "'");
    *p.value = std::move(it->second);
  }
  return model;
}
// ANCHOR_END: load_model

}  // namespace foundry
