// The model: the weights, their initialization, and the forward pass recorded on the tape.
#include "model/model.h"

#include <cmath>
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

// Every tensor of `w` with its file name, in file order. One function serves the values and
// the gradients, so the two lists can never disagree.
std::vector<std::pair<std::string, Tensor*>> named_tensors(ModelWeights& w) {
  std::vector<std::pair<std::string, Tensor*>> list;
  list.emplace_back("tok_embeddings.weight", &w.tok_embeddings);
  for (size_t i = 0; i < w.layers.size(); i++) {
    LayerWeights& l = w.layers[i];
    std::string p = "layers." + std::to_string(i) + ".";
    list.emplace_back(p + "attention_norm.weight", &l.attention_norm);
    list.emplace_back(p + "attention.wq.weight", &l.wq);
    list.emplace_back(p + "attention.wk.weight", &l.wk);
    list.emplace_back(p + "attention.wv.weight", &l.wv);
    list.emplace_back(p + "attention.wo.weight", &l.wo);
    list.emplace_back(p + "ffn_norm.weight", &l.ffn_norm);
    list.emplace_back(p + "feed_forward.w1.weight", &l.w1);
    list.emplace_back(p + "feed_forward.w3.weight", &l.w3);
    list.emplace_back(p + "feed_forward.w2.weight", &l.w2);
  }
  list.emplace_back("norm.weight", &w.norm);
  if (w.output.size() > 0) list.emplace_back("output.weight", &w.output);  // absent when tied
  return list;
}

// ANCHOR: model_shapes
ModelWeights allocate_weights(const ModelConfig& c) {
  int C = c.dim, F = c.hidden_dim, V = c.vocab_size;
  int q_dim = c.n_heads * c.head_size();  // NH·HS (= C)
  int kv_dim = c.kv_dim();                // NKV·HS
  ModelWeights w;
  w.tok_embeddings = Tensor({V, C});
  w.layers.resize(c.n_layers);
  for (LayerWeights& l : w.layers) {
    l.attention_norm = Tensor({C});
    l.wq = Tensor({q_dim, C});
    l.wk = Tensor({kv_dim, C});
    l.wv = Tensor({kv_dim, C});
    l.wo = Tensor({C, q_dim});
    l.ffn_norm = Tensor({C});
    l.w1 = Tensor({F, C});
    l.w3 = Tensor({F, C});
    l.w2 = Tensor({C, F});
  }
  w.norm = Tensor({C});
  if (!c.tie_embeddings) w.output = Tensor({V, C});
  return w;
}
// ANCHOR_END: model_shapes

}  // namespace

std::vector<NamedTensor> Model::parameters() {
  std::vector<std::pair<std::string, Tensor*>> values = named_tensors(weights);
  std::vector<std::pair<std::string, Tensor*>> gradients = named_tensors(grads);
  if (values.size() != gradients.size()) {
    throw std::logic_error("Model::parameters: weights and gradients hold different tensor lists");
  }
  std::vector<NamedTensor> list;
  for (size_t i = 0; i < values.size(); i++) list.push_back({values[i].first, values[i].second, gradients[i].second});
  return list;
}

void Model::zero_grad() {
  std::vector<std::pair<std::string, Tensor*>> list = named_tensors(grads);
  const long count = static_cast<long>(list.size());
#pragma omp parallel for schedule(dynamic)  // whole tensors per thread: no two write the same one
  for (long k = 0; k < count; ++k) list[k].second->fill(0);
}

size_t Model::num_parameters() const {
  // named_tensors only reads through the pointers it returns here
  ModelWeights& w = const_cast<ModelWeights&>(weights);
  size_t n = 0;
  for (auto& named : named_tensors(w)) n += named.second->size();
  return n;
}

Model make_model(const ModelConfig& config) {
  validate(config);
  Model m;
  m.config = config;
  m.weights = allocate_weights(config);
  m.grads = allocate_weights(config);
  int HS = config.head_size();
  m.rope_cos = Tensor({config.max_seq_len, HS / 2});
  m.rope_sin = Tensor({config.max_seq_len, HS / 2});
  rope_tables(m.rope_cos.ptr(), m.rope_sin.ptr(), config.max_seq_len, HS, config.rope_theta);
  return m;
}

// ANCHOR: init_weights
// Initialization (seeded, drawn in parameters() order, element by element):
//   - every matrix (embedding, wq, wk, wv, w1, w3, untied output): normal, mean 0, std 0.02;
//   - the two matrices that write into the residual stream, wo and w2, get std 0.02 / sqrt(2L):
//     the stream is a sum of 2L branch outputs, so without the factor its variance at
//     initialization would grow with depth (the GPT-2 scheme);
//   - the RMSNorm gains are 1, so each norm starts as a pure normalization.
void init_weights(Model& model, Rng& rng) {
  const double std_dev = 0.02;
  const double residual_std = std_dev / std::sqrt(2.0 * model.config.n_layers);
  for (NamedTensor& p : model.parameters()) {
    const std::string& name = p.name;
    bool is_norm = name.find("norm.weight") != std::string::npos;
    bool is_residual_out = name.find("attention.wo.") != std::string::npos ||
                           name.find("feed_forward.w2.") != std::string::npos;
    if (is_norm) {
      p.value->fill(1);
      continue;
    }
    double s = is_residual_out ? residual_std : std_dev;
    for (real& v : p.value->data) v = static_cast<real>(s * rng.normal());
  }
}
// ANCHOR_END: init_weights

std::vector<Var> model_leaves(Tape& tape, Model& model) {
  std::vector<Var> leaves;
  for (NamedTensor& p : model.parameters()) leaves.push_back(tape.param(*p.value, *p.grad, p.name));
  return leaves;
}

// ANCHOR: model_logits
Var model_logits(Tape& tape, const Model& model, const std::vector<Var>& leaves, const std::vector<int>& ids, int B,
                 int T) {
  const ModelConfig& c = model.config;
  if (B <= 0 || T <= 0 || ids.size() != (size_t)B * T) {
    throw std::invalid_argument("model_logits: " + std::to_string(ids.size()) + " token ids for B = " +
                                std::to_string(B) + ", T = " + std::to_string(T) + " (need B·T > 0 ids)");
  }
  if (T > c.max_seq_len) {
    throw std::invalid_argument("model_logits: T = " + std::to_string(T) + " exceeds max_seq_len = " +
                                std::to_string(c.max_seq_len) + " (the RoPE tables end there)");
  }
  size_t expected = 1 + 9 * (size_t)c.n_layers + 1 + (c.tie_embeddings ? 0 : 1);
  if (leaves.size() != expected) {
    throw std::invalid_argument("model_logits: " + std::to_string(leaves.size()) + " leaves, expected " +
                                std::to_string(expected) + " (one per parameter, in parameters() order)");
  }
  // leaves follow parameters(): embedding, 9 per layer, final norm, output when untied
  Var tok = leaves[0];
  Var x = embedding(tape, tok, ids);    // (B·T, C)
  x = reshape(tape, x, {B, T, c.dim});  // (B, T, C): the residual stream
  for (int i = 0; i < c.n_layers; i++) {
    const Var* l = &leaves[1 + 9 * (size_t)i];
    LayerVars lv{l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7], l[8]};
    x = transformer_block(tape, x, lv, model);
  }
  Var norm = leaves[1 + 9 * (size_t)c.n_layers];
  x = rmsnorm(tape, x, norm, static_cast<real>(c.norm_eps));
  // Tied: the output projection reuses the embedding's leaf, so the table is used twice and
  // both uses add into the same gradient.
  Var out_w = c.tie_embeddings ? tok : leaves.back();
  return linear(tape, x, out_w);  // (B, T, V)
}
// ANCHOR_END: model_logits

Var model_logits(Tape& tape, Model& model, const std::vector<int>& ids, int B, int T) {
  return model_logits(tape, model, model_leaves(tape, model), ids, B, T);
}

Var model_loss(Tape& tape, Model& model, const std::vector<int>& ids, const std::vector<int>& targets, int B, int T) {
  if (targets.size() != (size_t)B * T) {
    throw std::invalid_argument("model_loss: " + std::to_string(targets.size()) + " targets for B·T = " +
                                std::to_string((size_t)B * T) + " positions");
  }
  Var logits = model_logits(tape, model, ids, B, T);
  return cross_entropy(tape, logits, targets);  // mean over all B·T positions
}

}  // namespace foundry
