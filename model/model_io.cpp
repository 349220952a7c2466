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

}  // namespace

std::vector<std::pair<std::string, Shape>> model_tensor_shapes(const ModelConfig& c, const ParamTable& table) {
  std::vector<std::pair<std::string, Shape>> shapes;
  for (const ParamEntry& e : param_entries(c, table)) shapes.push_back({e.name, e.shape});
  return shapes;
}

void save_model(const Model& model, const std::string& dir) {
  validate(model.config);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error(dir + ": cannot create the model directory: " + ec.message());

  // subtle: parameters() hands out mutable pointers (the optimizer needs them), so it is not a
  // const member; saving only reads through them.
  std::vector<NamedTensor> params = const_cast<Model&>(model).parameters();
  const auto expected = model_tensor_shapes(model.config, model.table);
  if (params.size() != expected.size()) {
    throw std::invalid_argument(dir + ": the model has " + std::to_string(params.size()) +
                                " tensors but its config calls for " + std::to_string(expected.size()));
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

Model load_model(const std::string& dir, const ParamTable& table) {
  const std::string config_path = join(dir, kConfigFile);
  const std::string weights_path = join(dir, kWeightsFile);
  if (!std::filesystem::is_directory(dir)) throw std::runtime_error(dir + ": not a model directory");

  // The config alone first: it must be valid before it can judge the weights.
  const ModelConfig config = load_model_config(config_path);
  SafetensorsFile file = load_safetensors(weights_path);

  // Then every tensor against the config: the same set of names, each with its shape.
  const std::vector<ParamEntry> expected = param_entries(config, table);
  std::set<std::string> expected_names;
  for (const ParamEntry& e : expected) {
    const std::string& name = e.name;
    const Shape& shape = e.shape;
    expected_names.insert(name);
    auto it = file.tensors.find(name);
    if (it == file.tensors.end()) {
      throw std::invalid_argument(weights_path + ": missing tensor '" + name + "' (" + config_path +
                                  " has n_layers = " + std::to_string(config.n_layers) +
                                  ", tie_embeddings = " + (config.tie_embeddings ? "true" : "false") + ")");
    }
    if (it->second.shape != shape) {
      throw std::invalid_argument(weights_path + ": tensor '" + name + "' has shape " + shape_str(it->second.shape) +
                                  " but " + config_path + " expects " + shape_str(shape) + " (" +
                                  shape_reason(table[e.row], config) + ")");
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
  Model model = make_model(config, table);
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

}  // namespace foundry
