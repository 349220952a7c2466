#include "model/memory.h"

#include <algorithm>
#include <stdexcept>

#include "engine/linear_cross_entropy.h"
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

namespace {

// Numbers of one block's tape outside the loss: its op outputs and its saved tensors (RMSNorm's
// rstd, attention's probabilities). What recomputation holds for one block at a time.
size_t block_value_numbers(const ModelConfig& c, int B, int T) {
  size_t N = (size_t)B * T;
  size_t C = c.dim, F = c.hidden_dim;
  size_t q = (size_t)c.n_heads * c.head_size(), kv = c.kv_dim();
  const size_t outputs = 2 * N * C               // the two RMSNorms
                         + 2 * N * (q + 2 * kv)  // q, k, v and their per-head copies
                         + N * (q + kv)          // RoPE of q and k
                         + 2 * N * q + N * C     // attention output, its reshape, wo
                         + 2 * N * C             // the two residual adds
                         + 3 * N * F + N * C;    // SwiGLU gate, up, product; w2
  const size_t saved = 2 * N + (size_t)B * c.n_heads * T * T;
  return outputs + saved;
}

}  // namespace

int loss_block_rows(const ModelConfig& c, int B, int T) {
  const int rows = rows_for_budget(c.vocab_size);
  return rows >= B * T ? B * T : rows;
}

TrainingMemory estimate_training_memory(const ModelConfig& c, int B, int T, bool recompute) {
  validate(c);
  TrainingMemory m;
  m.parameters = count_parameters(c);
  m.bytes_per_number = sizeof(real);
  m.weight_bytes = m.parameters * sizeof(real);
  m.gradient_bytes = m.parameters * sizeof(real);
  m.optimizer_bytes = 2 * m.parameters * sizeof(real);
  m.activations = activation_items(c, B, T);
  size_t N = (size_t)B * T, V = c.vocab_size, C = c.dim, L = c.n_layers;
  size_t saved = saved_numbers(c, B, T);
  const size_t R = loss_block_rows(c, B, T);
  m.loss_block_rows = static_cast<int>(R);
  const bool blocked = R < N;
  if (blocked) {
    // linear_cross_entropy in blocks of R rows: one block's logits and softmax, dx and dw kept
    // from the forward, and the scalar loss; no (N, V) logits, softmax or logits' gradient.
    m.activations.pop_back();
    m.activations.pop_back();
    const size_t loss_saved = 2 * R * V + N * C + V * C;
    m.activations.push_back(
        {"loss in blocks of R rows: logits + softmax of one block (2 R, V), dx (N, C), dw (V, C), "
         "saved, + the scalar",
         loss_saved + 2});
    saved = saved - N * V + loss_saved;
  }
  size_t numbers = 0;
  for (const ActivationItem& item : m.activations) numbers += item.numbers;
  m.activation_bytes = numbers * sizeof(real);
  const size_t outputs = (numbers - saved) / 2;  // each op output has a gradient of its size
  size_t values = outputs + saved;
  size_t F = c.hidden_dim, q = (size_t)c.n_heads * c.head_size(), kv = c.kv_dim();
  const size_t branch = std::max(3 * N * F, 2 * N * q + 2 * N * kv);
  // Blocked, backward starts from (N, C) gradients: no (N, V) buffer. The pool's buffers are
  // reused best-fit, so some are larger than the gradient they hold; the bound allows for that and
  // tests check it against real pools.
  size_t pool = blocked ? 4 * N * C + branch : pooled_gradient_numbers(c, B, T);
  if (recompute) {
    // The tape keeps each block's output only (N, C); the scratch tape holds one block's
    // activations at a time, and its own pool the gradients alive inside that block.
    values = values - L * block_value_numbers(c, B, T) + L * N * C + block_value_numbers(c, B, T);
    pool = (blocked ? 4 * N * C : N * V + 3 * N * C) + (2 * N * C + branch);
  }
  m.recompute = recompute;
  m.value_bytes = values * sizeof(real);
  m.pooled_gradient_bytes = pool * sizeof(real);
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
  // Recomputation's scratch tape (Tape::scratch): the block it last recorded.
  if (const Tape* scratch = tape.scratch_if_any()) n += tape_numbers(*scratch);
  return n;
}

}  // namespace foundry
