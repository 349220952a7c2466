// The LLaMA-style model: weights, gradients, and the forward pass on the tape.
//
//   ids (B, T) → tok_embeddings → L × block → norm (RMSNorm) → output projection → logits (B, T, V)
//   block:  h   = x + attention(attention_norm(x))
//           out = h + feed_forward(ffn_norm(h))
//
// Weight names and shapes are those of the original LLaMA release; each linear weight is
// stored (out_features, in_features) and applied as y = x · Wᵀ.
#pragma once

#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/tape.h"
#include "engine/tensor.h"
#include "model/config.h"

namespace foundry {

// ANCHOR: layer_weights
struct LayerWeights {
  Tensor attention_norm;  // (C)          RMSNorm gain before attention
  Tensor wq;              // (NH·HS, C)   queries; head h owns rows [h·HS, (h+1)·HS)
  Tensor wk;              // (NKV·HS, C)  keys
  Tensor wv;              // (NKV·HS, C)  values
  Tensor wo;              // (C, NH·HS)   attention output projection
  Tensor ffn_norm;        // (C)          RMSNorm gain before the feed-forward
  Tensor w1;              // (F, C)       SwiGLU gate
  Tensor w3;              // (F, C)       SwiGLU up
  Tensor w2;              // (C, F)       SwiGLU down
};

struct ModelWeights {
  Tensor tok_embeddings;             // (V, C)
  std::vector<LayerWeights> layers;  // L of them
  Tensor norm;                       // (C)  final RMSNorm gain
  Tensor output;                     // (V, C), or empty (size 0) when the embedding is tied
};
// ANCHOR_END: layer_weights

// A parameter's file name ("layers.0.attention.wq.weight") with its value and gradient.
struct NamedTensor {
  std::string name;
  Tensor* value;
  Tensor* grad;
};

struct Model {
  ModelConfig config;
  ModelWeights weights;
  ModelWeights grads;  // same shapes as weights; backward accumulates into them
  Tensor rope_cos;     // (max_seq_len, HS/2) cos(pos · theta^(−2i/HS)), computed once
  Tensor rope_sin;     // (max_seq_len, HS/2)

  // Every parameter once, in a fixed order (the order of the model file): the embedding, then
  // each layer's tensors in LayerWeights order, then norm, then output if untied.
  std::vector<NamedTensor> parameters();
  void zero_grad();
  size_t num_parameters() const;
};

// Allocates every weight and gradient for `config` (validated first), all zero, and the RoPE tables.
Model make_model(const ModelConfig& config);

// Seeded initialization: see model.cpp for the scheme and why.
void init_weights(Model& model, Rng& rng);

// ids: B·T token ids, row-major (B, T). Returns logits (B, T, V).
Var model_logits(Tape& tape, Model& model, const std::vector<int>& ids, int B, int T);

// The two halves of model_logits, for code that needs the leaves (the gradient checks):
// model_leaves records one param leaf per parameters() entry, in that order (value and gradient
// from the model); model_logits with `leaves` runs the forward from any such list of leaves.
std::vector<Var> model_leaves(Tape& tape, Model& model);
Var model_logits(Tape& tape, const Model& model, const std::vector<Var>& leaves, const std::vector<int>& ids, int B,
                 int T);
// Mean cross-entropy over all B·T positions of the logits against `targets` (B·T ids). Shape ().
Var model_loss(Tape& tape, Model& model, const std::vector<int>& ids, const std::vector<int>& targets, int B, int T);

}  // namespace foundry
