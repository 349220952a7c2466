// The parameter table: every tensor of the model, described once.
//
// A row says what the tensor is called in model files, its shape in terms of the config, how it
// is initialized and whether AdamW decays it. Everything that needs to know the model's tensors
// reads the table: make_model allocates from it, Model::parameters() lists its tensors in its
// order (the order of the model file), model files take their names and shapes from it, the
// parameter count and the llama2.c size check sum it, init_weights follows its init rule, AdamW
// its decay flag, and model_leaves records one tape leaf per tensor. Adding a tensor to the model
// is one row here; the forward pass then uses it by name (LayerOf in model.h).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "model/config.h"

namespace foundry {

// ANCHOR: param_spec
// The sizes a shape is made of (engine/dims.h): C = dim, Q = NH·HS (= C), KV = NKV·HS,
// F = hidden_dim, V = vocab_size.
enum class Dim { C, Q, KV, F, V };

// How init_weights starts a tensor: normal(0, 0.02); normal(0, 0.02 / sqrt(2L)) for the two
// projections that write into the residual stream; all ones for the RMSNorm gains.
enum class Init { normal, residual, ones };

// How often a tensor occurs: once; once per layer (stored as "layers.<i>.<name>"); or once but
// only when the output projection is not tied to the embedding.
enum class Scope { model, layer, untied };

struct ParamSpec {
  std::string name;  // the LLaMA name in model files (a per-layer one without "layers.<i>.")
  Scope scope;
  std::vector<Dim> shape;  // each linear weight is (out_features, in_features)
  Init init;
  bool decay;  // AdamW weight decay: the matrices decay, the gains do not
};
using ParamTable = std::vector<ParamSpec>;
// ANCHOR_END: param_spec

// The model's table. The file lists the rows in this order, with the block of per-layer rows
// repeated for layer 0, 1, ..., L−1 where it stands.
const ParamTable& llama_param_table();

// One tensor of a model with a given config: a row of the table at one layer.
struct ParamEntry {
  std::string name;  // its name in model files: "tok_embeddings.weight", "layers.3.attention.wq.weight"
  Shape shape;
  Init init;
  bool decay;
  int layer;   // -1 outside the layers
  size_t row;  // its row in the table
};

// The table expanded for `config`, in file order. Throws std::invalid_argument when the table's
// per-layer rows are not contiguous or two rows share a name.
std::vector<ParamEntry> param_entries(const ModelConfig& config, const ParamTable& table = llama_param_table());

// The size of one dimension letter for `config`, and the config fields it comes from (for
// messages such as "(vocab_size = 37, dim = 16)").
int dim_size(Dim d, const ModelConfig& config);
std::string shape_reason(const ParamSpec& spec, const ModelConfig& config);

// How many numbers the model holds, without allocating it: the sum over param_entries.
size_t parameter_count(const ModelConfig& config, const ParamTable& table = llama_param_table());

}  // namespace foundry
