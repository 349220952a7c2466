#include "model/memory.h"

#include <algorithm>
#include <stdexcept>

#include "model/params.h"

namespace foundry {

size_t count_parameters(const ModelConfig& c) { return parameter_count(c); }  // the parameter table's sum

// ANCHOR: activation_items
std::vector<ActivationItem> activation_items(const ModelConfig& c, int B, int T) {
  if (B <= 0 || T <= 0) {
    throw std::invalid_argument("memory estimate: batch " + std::to_string(B) + " and context " + std::to_string(T) +
                                " must be positive");
  }
  size_t N = (size_t)B * T, L = c.n_layers;
  size_t C = c.dim, F = c.hidden_dim, V = c.vocab_size;
  size_t q = (size_t)c.n_heads * c.head_size(), kv = c.kv_dim();
  // Every op node keeps its output AND its gradient (same size): hence the factors of 2.
  return {
      {"token embedding (N, C) + reshape to (B, T, C)", 2 * (2 * N * C)},
      {"RMSNorm outputs (N, C) + rstd (N): 2 per layer + final", (2 * L + 1) * (2 * N * C + N)},
      {"q, k, v projections (N, NH*HS | NKV*HS)", L * 2 * N * (q + 2 * kv)},
      {"q, k, v reshaped to heads (copies)", L * 2 * N * (q + 2 * kv)},
      {"RoPE of q and k", L * 2 * N * (q + kv)},
      {"attention probabilities (B, NH, T, T), saved", L * (size_t)B * c.n_heads * T * T},
      {"attention output (B, T, NH, HS) + reshape", L * 2 * (2 * N * q)},
      {"attention output projection wo (N, C)", L * 2 * N * C},
      {"residual adds (N, C): 2 per layer", L * 2 * (2 * N * C)},
      {"SwiGLU gate, up, product (N, F)", L * 3 * (2 * N * F)},
      {"SwiGLU down projection w2 (N, C)", L * 2 * N * C},
      {"logits (N, V)", 2 * N * V},
      {"loss: softmax probabilities (N, V), saved, + the scalar", N * V + 2},
  };
}
// ANCHOR_END: activation_items

size_t saved_numbers(const ModelConfig& c, int B, int T) {
  size_t N = (size_t)B * T, L = c.n_layers;
  // RMSNorm's rstd (N) per norm, attention's probabilities per layer, the loss's softmax (N, V)
  return (2 * L + 1) * N + L * (size_t)B * c.n_heads * T * T + N * (size_t)c.vocab_size;
}

size_t pooled_gradient_numbers(const ModelConfig& c, int B, int T) {
  size_t N = (size_t)B * T;
  size_t C = c.dim, F = c.hidden_dim, V = c.vocab_size;
  size_t q = (size_t)c.n_heads * c.head_size(), kv = c.kv_dim();
  // Backward starts at the loss: the logits' gradient (N, V) is the first and largest buffer, and
  // it stays in the pool for the nodes after it. Inside a layer, backward holds the gradient of
  // the residual stream (N, C) and at most: in the feed-forward, those of gate, up and their
  // product (3 of (N, F)); in attention, those of its output and of q, k, v (N, NH*HS | NKV*HS).
  const size_t block = std::max(3 * N * F, 2 * N * q + 2 * N * kv);
  return N * V + N * C + block;
}

TrainingMemory estimate_training_memory(const ModelConfig& c, int B, int T) {
  validate(c);
  TrainingMemory m;
  m.parameters = count_parameters(c);
  m.bytes_per_number = sizeof(real);
  m.weight_bytes = m.parameters * sizeof(real);
  m.gradient_bytes = m.parameters * sizeof(real);
  m.optimizer_bytes = 2 * m.parameters * sizeof(real);
  m.activations = activation_items(c, B, T);
  size_t numbers = 0;
  for (const ActivationItem& item : m.activations) numbers += item.numbers;
  m.activation_bytes = numbers * sizeof(real);
  const size_t saved = saved_numbers(c, B, T);
  const size_t outputs = (numbers - saved) / 2;  // each op output has a gradient of its size
  m.value_bytes = (outputs + saved) * sizeof(real);
  m.pooled_gradient_bytes = pooled_gradient_numbers(c, B, T) * sizeof(real);
  return m;
}

size_t tape_numbers(const Tape& tape) {
  size_t n = 0;
  for (int i = 0; i < tape.size(); i++) {
    const TapeNode& node = tape.node(i);
    if (node.value != &node.own_value) continue;  // a leaf: the caller's tensor
    n += node.own_value.size();
    if (node.grad == &node.own_grad) n += node.own_grad.size();
    for (const Tensor& s : node.saved) n += s.size();
  }
  return n;
}

}  // namespace foundry
