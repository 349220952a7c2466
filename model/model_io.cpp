// Saving and loading model directories (see model_io.h for the layout).
#include "model/model_io.h"

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>
#include <system_error>

#include "common/file_io.h"
#include "model/quantize.h"
#include "model/safetensors.h"

namespace foundry {

namespace {

const char* kConfigFile = "config.json";
const char* kWeightsFile = "model.safetensors";
const char* kQuantKey = "quantization";  // metadata: the block type of every U8 tensor

// The quantized tensor of entry k, as the file stores it: U8, shape (N, bytes per row).
ByteTensor quantized_bytes(const QuantMatrix& q) {
  return ByteTensor{{q.rows, static_cast<int>(q.row_bytes())}, q.blocks};
}

// Reads a U8 tensor as the blocks of `name` (expected shape `shape`, float (N, K)), checking
// everything a corrupt or foreign file could get wrong; `where` names the file.
QuantMatrix blocks_from_file(ByteTensor&& t, QuantType type, const std::string& name, const Shape& shape,
                             const std::string& where) {
  const std::string what = where + ": tensor '" + name + "' (" + quant_type_name(type) + " blocks)";
  if (shape.size() != 2 || shape[1] % QK != 0) {
    throw std::invalid_argument(what +
                                ": only matrices with rows of whole 32-value blocks are quantized, but this "
                                "tensor has shape " +
                                shape_str(shape));
  }
  const int N = shape[0], K = shape[1];
  const Shape want = {N, static_cast<int>(quant_row_bytes(type, K))};
  if (t.shape != want) {
    throw std::invalid_argument(what + ": U8 shape " + shape_str(t.shape) + ", expected " + shape_str(want) + " (" +
                                std::to_string(N) + " rows of " + std::to_string(K / QK) + " blocks of " +
                                std::to_string(quant_block_bytes(type)) + " bytes)");
  }
  QuantMatrix q;
  q.type = type;
  q.rows = N;
  q.cols = K;
  q.blocks = std::move(t.data);
  // A scale of infinity or NaN would turn its whole block into NaN at run time: refuse it here.
  const size_t block_bytes = quant_block_bytes(type);
  for (size_t off = 0; off < q.blocks.size(); off += block_bytes) {
    const uint16_t d = static_cast<uint16_t>(q.blocks[off] | (q.blocks[off + 1] << 8));
    if ((d & 0x7c00) == 0x7c00) {
      throw std::invalid_argument(what + ": block " + std::to_string(off / block_bytes) + " has scale bits 0x" +
                                  [](uint16_t v) {
                                    char buf[8];
                                    std::snprintf(buf, sizeof buf, "%04x", v);
                                    return std::string(buf);
                                  }(d) +
                                  ", an fp16 infinity or NaN");
    }
  }
  return q;
}

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
  std::vector<ByteTensor> blocks;  // the quantized tensors' bytes, in file order
  std::vector<std::pair<std::string, const ByteTensor*>> byte_tensors;
  std::map<std::string, std::string> metadata = {{"format", "pt"}, {"producer", "llm-foundry"}};
  if (!model.quantized.empty()) {
    if (model.quantized.size() != params.size()) {
      throw std::invalid_argument(dir + ": the model has " + std::to_string(model.quantized.size()) +
                                  " quantized slots for " + std::to_string(params.size()) + " tensors");
    }
    blocks.reserve(params.size());  // pointers into it are kept: no reallocation
  }
  for (size_t i = 0; i < params.size(); i++) {
    // Refuse to write a file that load_model would reject.
    if (params[i].name != expected[i].first) {
      throw std::invalid_argument(dir + ": parameter " + std::to_string(i) + " is named '" + params[i].name +
                                  "', expected '" + expected[i].first + "'");
    }
    check_shape(params[i].value->shape, expected[i].second, dir + ": tensor '" + params[i].name + "'");
    if (!model.quantized.empty() && model.quantized[i].rows > 0) {
      const QuantMatrix& q = model.quantized[i];
      const std::string type = quant_type_name(q.type);
      if (metadata.count(kQuantKey) && metadata[kQuantKey] != type) {
        throw std::invalid_argument(dir + ": tensor '" + params[i].name + "' is " + type + " but others are " +
                                    metadata[kQuantKey] + "; a model file holds one block type");
      }
      metadata[kQuantKey] = type;
      blocks.push_back(quantized_bytes(q));
      byte_tensors.push_back({params[i].name, &blocks.back()});
    } else {
      tensors.push_back({params[i].name, params[i].value});
    }
  }

  save_safetensors(join(dir, kWeightsFile), tensors, metadata, byte_tensors);
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
    if (file.bytes.count(name)) continue;  // quantized: checked below
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
  std::vector<std::string> file_names;
  for (const auto& entry : file.tensors) file_names.push_back(entry.first);
  for (const auto& entry : file.bytes) file_names.push_back(entry.first);
  for (const std::string& name : file_names) {
    if (!expected_names.count(name)) {
      std::string why = name == "output.weight" ? " (" + config_path + " has tie_embeddings = true)"
                                                : " (not part of a model with this config)";
      throw std::invalid_argument(weights_path + ": unexpected tensor '" + name + "'" + why);
    }
  }

  // Quantized tensors: U8 blocks of the type the metadata names.
  std::vector<QuantMatrix> quantized;
  if (!file.bytes.empty()) {
    auto type_it = file.metadata.find(kQuantKey);
    if (type_it == file.metadata.end()) {
      throw std::invalid_argument(weights_path + ": tensor '" + file.bytes.begin()->first +
                                  "' is U8 (quantized blocks) but the metadata has no \"" + kQuantKey +
                                  "\" entry naming the block type (q8_0 or q4_0)");
    }
    QuantType type;
    try {
      type = parse_quant_type(type_it->second);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(weights_path + ": metadata \"" + kQuantKey + "\": " + e.what());
    }
    quantized.resize(expected.size());
    for (size_t k = 0; k < expected.size(); ++k) {
      auto it = file.bytes.find(expected[k].name);
      if (it == file.bytes.end()) continue;
      quantized[k] = blocks_from_file(std::move(it->second), type, expected[k].name, expected[k].shape, weights_path);
    }
  }

  // Everything agrees: move the weights into a fresh model. Nothing above touched it.
  Model model = make_model(config, table);
  for (NamedTensor& p : model.parameters()) {
    const size_t k = model.index_of(p.name);
    if (!quantized.empty() && quantized[k].rows > 0) {
      std::vector<float> floats(p.value->data.size());
      dequantize_matrix(quantized[k], floats.data());
      for (size_t i = 0; i < floats.size(); ++i) p.value->data[i] = static_cast<real>(floats[i]);
      continue;
    }
    auto it = file.tensors.find(p.name);
    if (it == file.tensors.end()) {
      throw std::logic_error("load_model: Model::parameters() names '" + p.name + "', which model_tensor_shapes lacks");
    }
    check_shape(it->second.shape, p.value->shape, weights_path + ": tensor '" + p.name + "'");
    *p.value = std::move(it->second);
  }
  model.quantized = std::move(quantized);
  return model;
}

}  // namespace foundry
