// How much memory a training step needs: an estimate derived from what the tape stores.
//
//   weights      P numbers                    P = count_parameters(config)
//   gradients    P numbers                    (ModelWeights grads, same shapes)
//   AdamW        2P numbers                   (first and second moment of every parameter)
//   activations  every buffer the tape keeps for one forward + backward at batch B, context T:
//                each op node's output, what it saves for the backward (RMSNorm's rstd,
//                attention's probabilities, the loss's softmax), and the op gradients.
//
// The op gradients depend on the tape's mode. The default tape gives every op node a gradient
// as large as its output, for the whole step (activation_bytes, total_bytes: what the lessons'
// tapes hold). Training pools them (Tape::set_reuse_grads): a gradient exists only while
// backward needs it, and its buffer then serves another node, so the pool holds only the
// gradients alive at once (training_tape_bytes, training_bytes: what `foundry train` and
// `foundry model-info` print).
//
// The outputs and saved tensors are counted exactly: activation_items() lists the tape's nodes
// for this model op by op, and tests record the real forward on a tape and require the counts to
// agree. The pool is bounded from above and checked against a real training step's pool.
// Attention's (B, NH, T, T) probabilities grow with T², everything else with B·T; for a large
// vocabulary the logits and the loss's softmax (2 · B·T·V numbers, and the logits' gradient in
// the pool) are the largest items.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "engine/tape.h"
#include "model/config.h"

namespace foundry {

// Parameters of a model with this config, without allocating it (matches Model::num_parameters).
size_t count_parameters(const ModelConfig& config);

// One line of the activation breakdown: a group of tape buffers and how many numbers they hold.
struct ActivationItem {
  std::string what;
  size_t numbers;
};

// The default tape's buffers for one training step at batch B and context T, grouped: every
// op node's output and gradient, and the saved tensors.
std::vector<ActivationItem> activation_items(const ModelConfig& config, int B, int T);

// The numbers of the saved tensors alone (RMSNorm's rstd, attention's probabilities, the loss's
// softmax); the rest of activation_items is outputs and their gradients, half and half.
size_t saved_numbers(const ModelConfig& config, int B, int T);

// An upper bound on the numbers training's pooled gradient buffers hold (Tape::set_reuse_grads).
size_t pooled_gradient_numbers(const ModelConfig& config, int B, int T);

struct TrainingMemory {
  size_t parameters = 0;        // P
  size_t bytes_per_number = 0;  // sizeof(real): 4 in the float build
  size_t weight_bytes = 0;
  size_t gradient_bytes = 0;
  size_t optimizer_bytes = 0;        // AdamW: two moments per parameter
  size_t activation_bytes = 0;       // the default tape: outputs, saved tensors, a gradient per op node
  size_t value_bytes = 0;            // outputs and saved tensors only
  size_t pooled_gradient_bytes = 0;  // training's gradient pool
  std::vector<ActivationItem> activations;
  int loss_block_rows = 0;  // rows of logits at a time in the loss (B·T: not blocked)
  bool recompute = false;   // value_bytes and pooled_gradient_bytes with activation recomputation
  // With the default tape.
  size_t total_bytes() const { return weight_bytes + gradient_bytes + optimizer_bytes + activation_bytes; }
  // With the tape training uses: outputs, saved tensors and the gradient pool.
  size_t training_tape_bytes() const { return value_bytes + pooled_gradient_bytes; }
  size_t training_bytes() const { return weight_bytes + gradient_bytes + optimizer_bytes + training_tape_bytes(); }
};

// `recompute`: training.recompute (model/block.h), each block's activations alive one block at a
// time. The loss runs in blocks of loss_block_rows rows (engine/linear_cross_entropy.h) when B·T
// rows of logits exceed the automatic budget; then activation_items' two (N, V) lines are replaced
// by the blocked loss's buffers.
TrainingMemory estimate_training_memory(const ModelConfig& config, int B, int T, bool recompute = false);

// Rows of logits the training loss computes at once (B·T when they all fit in one block).
int loss_block_rows(const ModelConfig& config, int B, int T);

// Numbers a tape holds right now in its recorded op nodes: outputs, gradients and saved
// tensors (leaves point at the caller's tensors and own nothing). What the estimate predicts.
// A pooled tape's free gradient buffers are not in its nodes: add Tape::grad_pool_numbers().
size_t tape_numbers(const Tape& tape);

}  // namespace foundry
