// The LLaMA-style model: weights, gradients, and the forward pass on the tape.
//
//   ids (B, T) → tok_embeddings → L × block → norm (RMSNorm) → output projection → logits (B, T, V)
//   block:  h   = x + attention(attention_norm(x))
//           out = h + feed_forward(ffn_norm(h))
//
// Weight names and shapes are those of the original LLaMA release (the parameter table,
// model/params.h); each linear weight is stored (out_features, in_features) and applied as y = x · Wᵀ.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "engine/linear_cross_entropy.h"
#include "engine/lora.h"
#include "engine/quant.h"
#include "engine/rng.h"
#include "engine/tape.h"
#include "engine/tensor.h"
#include "model/config.h"
#include "model/params.h"

namespace foundry {

// One layer's tensors by name, for the code that computes with them: T is Tensor* for the
// weights and gradients, Var for the tape leaves. Shapes and everything else about the tensors
// are in the parameter table (model/params.h); bind_by_name below says which row each field is.
// ANCHOR: layer_weights
template <typename T>
struct LayerOf {
  T attention_norm;  // (C)          RMSNorm gain before attention
  T wq;              // (NH·HS, C)   queries; head h owns rows [h·HS, (h+1)·HS)
  T wk;              // (NKV·HS, C)  keys
  T wv;              // (NKV·HS, C)  values
  T wo;              // (C, NH·HS)   attention output projection
  T ffn_norm;        // (C)          RMSNorm gain before the feed-forward
  T w1;              // (F, C)       SwiGLU gate
  T w3;              // (F, C)       SwiGLU up
  T w2;              // (C, F)       SwiGLU down
};

template <typename T>
struct ModelOf {
  T tok_embeddings;                // (V, C)
  std::vector<LayerOf<T>> layers;  // L of them
  T norm;                          // (C)  final RMSNorm gain
  T output;                        // (V, C), or null (T{}) when the embedding is tied
};
// ANCHOR_END: layer_weights

using LayerWeights = LayerOf<Tensor*>;
using ModelWeights = ModelOf<Tensor*>;
using LayerVars = LayerOf<Var>;
using ModelVars = ModelOf<Var>;
// Low-rank adapters of one layer, one per linear weight (engine/lora.h, model/lora.h); the gains'
// entries and the weights without an adapter stay empty.
using LayerLora = LayerOf<LoraVars>;

// The fields above from a lookup by file name: get("layers.0.attention.wq.weight") and so on.
template <typename T, typename Get>
ModelOf<T> bind_by_name(const ModelConfig& c, Get get) {
  ModelOf<T> m;
  m.tok_embeddings = get("tok_embeddings.weight");
  for (int i = 0; i < c.n_layers; i++) {
    const std::string p = "layers." + std::to_string(i) + ".";
    auto g = [&](const char* name) { return get(p + name); };
    m.layers.push_back({g("attention_norm.weight"), g("attention.wq.weight"), g("attention.wk.weight"),
                        g("attention.wv.weight"), g("attention.wo.weight"), g("ffn_norm.weight"),
                        g("feed_forward.w1.weight"), g("feed_forward.w3.weight"), g("feed_forward.w2.weight")});
  }
  m.norm = get("norm.weight");
  m.output = c.tie_embeddings ? T{} : get("output.weight");
  return m;
}

// A parameter's file name ("layers.0.attention.wq.weight") with its value and gradient, and
// whether AdamW decays it: the parameter table says so for a model's parameters; a list made by
// hand gets the usual rule, matrices decay and gains do not.
struct NamedTensor {
  std::string name;
  Tensor* value;
  Tensor* grad;
  bool decay = value->rank() == 2;
};

struct Model {
  ModelConfig config;
  ParamTable table;                               // llama_param_table(), unless a test extends it
  std::vector<ParamEntry> entries;                // the table expanded for config: one per tensor, in file order
  std::unordered_map<std::string, size_t> index;  // file name -> position in entries
  std::vector<Tensor> values;                     // entries[k]'s weights
  std::vector<Tensor> gradients;                  // entries[k]'s gradient, same shape; backward accumulates here
  ModelWeights weights;                           // the weights by name (pointers into values)
  ModelWeights grads;                             // the gradients by name (pointers into gradients)
  Tensor rope_cos;                                // (max_seq_len, HS/2) cos(pos · theta^(−2i/HS)), computed once
  Tensor rope_sin;                                // (max_seq_len, HS/2)
  // Quantized inference (engine/quant.h): empty for a float model; after quantize_model, or
  // when loaded from a quantized directory, one per entry: quantized[k] holds entries[k]'s
  // blocks (rows == 0 for a tensor kept in float, such as a gain) and values[k] the floats
  // those blocks stand for, which the batched forward on the tape uses. decode_step reads the
  // blocks themselves.
  std::vector<QuantMatrix> quantized;

  Model() = default;
  // Moving keeps the tensors where they are, so the named pointers stay valid; a copy would
  // point into the original, so there is none.
  Model(Model&&) = default;
  Model& operator=(Model&&) = default;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // Every parameter once, in entries order (the order of the model file).
  std::vector<NamedTensor> parameters();
  void zero_grad();
  size_t num_parameters() const;
  // The index in entries of the tensor with this file name; throws std::out_of_range if none.
  size_t index_of(const std::string& name) const;
  // The blocks of the weight `w` (one of the tensors in values), or nullptr when it is float.
  const QuantMatrix* quantized_of(const Tensor* w) const;
};

// Allocates every weight and gradient of the table for `config` (validated first), all zero,
// and the RoPE tables.
Model make_model(const ModelConfig& config, const ParamTable& table = llama_param_table());

// Seeded initialization: see model.cpp for the scheme and why.
void init_weights(Model& model, Rng& rng);

// ids: B·T token ids, row-major (B, T). Returns logits (B, T, V).
Var model_logits(Tape& tape, Model& model, const std::vector<int>& ids, int B, int T);

// The two halves of model_logits, for code that needs the leaves (the gradient checks):
// model_leaves records one param leaf per parameters() entry, in that order (value and gradient
// from the model); model_logits with `leaves` runs the forward from any such list of leaves.
// name_leaves gives a list's leaves their names: v.tok_embeddings, v.layers[i].wq, ...
// `lora`: empty, or one LayerLora per layer whose adapters join that layer's linears (model/lora.h).
std::vector<Var> model_leaves(Tape& tape, Model& model);
ModelVars name_leaves(const Model& model, const std::vector<Var>& leaves);
Var model_logits(Tape& tape, const Model& model, const std::vector<Var>& leaves, const std::vector<int>& ids, int B,
                 int T, const std::vector<LayerLora>& lora = {});
// How model_loss runs the forward. Neither choice changes what is computed: recomputation gives
// the same bits, the loss's blocks the same loss up to float rounding (engine/linear_cross_entropy.h).
struct ForwardOptions {
  bool recompute = false;  // each block keeps only its output and is re-run in backward (model/block.h)
  LossBlocking loss;       // rows of logits at a time (0: automatic) and whether backward will follow
};

// Mean cross-entropy over all B·T positions of the logits against `targets` (B·T ids). Shape ().
// The output projection and the loss are one blocked op (linear_cross_entropy), so the (B·T, V)
// logits exist only one block of rows at a time.
Var model_loss(Tape& tape, Model& model, const std::vector<int>& ids, const std::vector<int>& targets, int B, int T,
               const ForwardOptions& options = {});
// The same from a list of leaves (model_leaves), for the gradient checks.
Var model_loss(Tape& tape, const Model& model, const std::vector<Var>& leaves, const std::vector<int>& ids,
               const std::vector<int>& targets, int B, int T, const ForwardOptions& options = {});

}  // namespace foundry
