// The model: the weights, their initialization, and the forward pass recorded on the tape.
#include "model/model.h"

#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>

#include "engine/embedding.h"
#include "engine/matmul.h"
#include "engine/ops.h"
#include "engine/softmax.h"
#include "model/block.h"
#include "model/rmsnorm.h"
#include "model/rope.h"

namespace foundry {

namespace {

// Points the named views at the tensors of the list, by file name.
void bind_views(Model& m) {
  m.weights = bind_by_name<Tensor*>(m.config, [&](const std::string& name) { return &m.values[m.index_of(name)]; });
  m.grads = bind_by_name<Tensor*>(m.config, [&](const std::string& name) { return &m.gradients[m.index_of(name)]; });
}

}  // namespace

std::vector<NamedTensor> Model::parameters() {
  std::vector<NamedTensor> list;
  for (size_t k = 0; k < entries.size(); k++)
    list.push_back({entries[k].name, &values[k], &gradients[k], entries[k].decay});
  return list;
}

void Model::zero_grad() {
  const long count = static_cast<long>(gradients.size());
#pragma omp parallel for schedule(dynamic)  // whole tensors per thread: no two write the same one
  for (long k = 0; k < count; ++k) gradients[k].fill(0);
}

size_t Model::num_parameters() const {
  size_t n = 0;
  for (const Tensor& t : values) n += t.size();
  return n;
}

size_t Model::index_of(const std::string& name) const {
  auto it = index.find(name);
  if (it == index.end()) throw std::out_of_range("model: no parameter named '" + name + "'");
  return it->second;
}

Model make_model(const ModelConfig& config, const ParamTable& table) {
  validate(config);
  Model m;
  m.config = config;
  m.table = table;
  m.entries = param_entries(config, table);
  for (const ParamEntry& e : m.entries) {
    m.index[e.name] = m.values.size();
    m.values.emplace_back(e.shape);
    m.gradients.emplace_back(e.shape);
  }
  bind_views(m);
  int HS = config.head_size();
  m.rope_cos = Tensor({config.max_seq_len, HS / 2});
  m.rope_sin = Tensor({config.max_seq_len, HS / 2});
  rope_tables(m.rope_cos.ptr(), m.rope_sin.ptr(), config.max_seq_len, HS, config.rope_theta);
  return m;
}

const QuantMatrix* Model::quantized_of(const Tensor* w) const {
  if (quantized.empty() || values.empty()) return nullptr;
  std::less<const Tensor*> before;
  if (before(w, values.data()) || !before(w, values.data() + values.size())) return nullptr;
  const QuantMatrix& q = quantized[static_cast<size_t>(w - values.data())];
  return q.rows > 0 ? &q : nullptr;
}

// ANCHOR: init_weights
// Initialization (seeded, drawn in parameters() order, element by element; the parameter table
// gives each tensor its rule):
//   - every matrix (embedding, wq, wk, wv, w1, w3, untied output): normal, mean 0, std 0.02;
//   - the two matrices that write into the residual stream, wo and w2, get std 0.02 / sqrt(2L):
//     the stream is a sum of 2L branch outputs, so without the factor its variance at
//     initialization would grow with depth (the GPT-2 scheme);
//   - the RMSNorm gains are 1, so each norm starts as a pure normalization.
void init_weights(Model& model, Rng& rng) {
  const double std_dev = 0.02;
  const double residual_std = std_dev / std::sqrt(2.0 * model.config.n_layers);
  for (size_t k = 0; k < model.entries.size(); k++) {
    Tensor& value = model.values[k];
    switch (model.entries[k].init) {
      case Init::ones:
        value.fill(1);
        break;
      case Init::normal:
      case Init::residual: {
        const double s = model.entries[k].init == Init::residual ? residual_std : std_dev;
        for (real& v : value.data) v = static_cast<real>(s * rng.normal());
        break;
      }
    }
  }
}
// ANCHOR_END: init_weights

std::vector<Var> model_leaves(Tape& tape, Model& model) {
  std::vector<Var> leaves;
  for (NamedTensor& p : model.parameters()) leaves.push_back(tape.param(*p.value, *p.grad, p.name));
  return leaves;
}

ModelVars name_leaves(const Model& model, const std::vector<Var>& leaves) {
  if (leaves.size() != model.entries.size()) {
    throw std::invalid_argument("model_logits: " + std::to_string(leaves.size()) + " leaves, expected " +
                                std::to_string(model.entries.size()) + " (one per parameter, in parameters() order)");
  }
  return bind_by_name<Var>(model.config, [&](const std::string& name) { return leaves[model.index_of(name)]; });
}

namespace {

// ids (B, T) -> the final RMSNorm's output (B, T, C): model_logits below without its output
// projection, and with the choice of recomputing each block (the loss fuses the projection).
Var final_hidden(Tape& tape, const Model& model, const ModelVars& w, const std::vector<int>& ids, int B, int T,
                 bool recompute) {
  const ModelConfig& c = model.config;
  if (B <= 0 || T <= 0 || ids.size() != (size_t)B * T) {
    throw std::invalid_argument("model_logits: " + std::to_string(ids.size()) + " token ids for B = " +
                                std::to_string(B) + ", T = " + std::to_string(T) + " (need B·T > 0 ids)");
  }
  if (T > c.max_seq_len) {
    throw std::invalid_argument("model_logits: T = " + std::to_string(T) + " exceeds max_seq_len = " +
                                std::to_string(c.max_seq_len) + " (the RoPE tables end there)");
  }
  Var x = embedding(tape, w.tok_embeddings, ids);  // (B·T, C)
  x = reshape(tape, x, {B, T, c.dim});             // (B, T, C): the residual stream
  for (const LayerVars& layer : w.layers) {
    x = recompute ? transformer_block_recomputed(tape, x, layer, model) : transformer_block(tape, x, layer, model);
  }
  return rmsnorm(tape, x, w.norm, static_cast<real>(c.norm_eps));
}

}  // namespace

// ANCHOR: model_logits
Var model_logits(Tape& tape, const Model& model, const std::vector<Var>& leaves, const std::vector<int>& ids, int B,
                 int T, const std::vector<LayerLora>& lora) {
  const ModelConfig& c = model.config;
  if (B <= 0 || T <= 0 || ids.size() != (size_t)B * T) {
    throw std::invalid_argument("model_logits: " + std::to_string(ids.size()) + " token ids for B = " +
                                std::to_string(B) + ", T = " + std::to_string(T) + " (need B·T > 0 ids)");
  }
  if (T > c.max_seq_len) {
    throw std::invalid_argument("model_logits: T = " + std::to_string(T) + " exceeds max_seq_len = " +
                                std::to_string(c.max_seq_len) + " (the RoPE tables end there)");
  }
  const ModelVars w = name_leaves(model, leaves);  // w.tok_embeddings, w.layers[i].wq, ...
  if (!lora.empty() && lora.size() != w.layers.size())
    throw std::invalid_argument("model_logits: adapters for " + std::to_string(lora.size()) +
                                " layers, the model has " + std::to_string(w.layers.size()));
  Var x = embedding(tape, w.tok_embeddings, ids);  // (B·T, C)
  x = reshape(tape, x, {B, T, c.dim});             // (B, T, C): the residual stream
  const LayerLora none{};
  for (size_t i = 0; i < w.layers.size(); i++)
    x = transformer_block(tape, x, w.layers[i], model, lora.empty() ? none : lora[i]);
  x = rmsnorm(tape, x, w.norm, static_cast<real>(c.norm_eps));
  // Tied: the output projection reuses the embedding's leaf, so the table is used twice and
  // both uses add into the same gradient.
  Var out_w = c.tie_embeddings ? w.tok_embeddings : w.output;
  return linear(tape, x, out_w);  // (B, T, V)
}
// ANCHOR_END: model_logits

Var model_logits(Tape& tape, Model& model, const std::vector<int>& ids, int B, int T) {
  return model_logits(tape, model, model_leaves(tape, model), ids, B, T);
}

Var model_loss(Tape& tape, const Model& model, const std::vector<Var>& leaves, const std::vector<int>& ids,
               const std::vector<int>& targets, int B, int T, const ForwardOptions& options) {
  if (targets.size() != (size_t)B * T) {
    throw std::invalid_argument("model_loss: " + std::to_string(targets.size()) +
                                " targets for B·T = " + std::to_string((size_t)B * T) + " positions");
  }
  const ModelVars w = name_leaves(model, leaves);
  Var x = final_hidden(tape, model, w, ids, B, T, options.recompute);
  Var out_w = model.config.tie_embeddings ? w.tok_embeddings : w.output;
  return linear_cross_entropy(tape, x, out_w, targets, options.loss);  // mean over all B·T positions
}

Var model_loss(Tape& tape, Model& model, const std::vector<int>& ids, const std::vector<int>& targets, int B, int T,
               const ForwardOptions& options) {
  return model_loss(tape, model, model_leaves(tape, model), ids, targets, B, T, options);
}

}  // namespace foundry
