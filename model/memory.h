// How much memory a training step needs: an estimate derived from what the tape stores.
//
//   weights      P numbers                    P = count_parameters(config)
//   gradients    P numbers                    (ModelWeights grads, same shapes)
//   AdamW        2P numbers                   (first and second moment of every parameter)
//   activations  every buffer the tape keeps for one forward + backward at batch B, context T:
//                each op node's output and its gradient (same size), plus what it saves for
//                the backward (RMSNorm's rstd, attention's probabilities, the loss's softmax).
//
// The activation count is not a rule of thumb: activation_items() lists the tape's nodes for
// this model op by op, and a test records the real forward on a tape and requires the two
// counts to agree exactly. Attention's (B, NH, T, T) probabilities grow with T², everything
// else with B·T; for a large vocabulary the logits, their gradient and the loss's softmax
// (3 · B·T·V numbers) are the largest single item.
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

// The tape's buffers for one training step at batch B and context T, grouped.
std::vector<ActivationItem> activation_items(const ModelConfig& config, int B, int T);

struct TrainingMemory {
  size_t parameters = 0;        // P
  size_t bytes_per_number = 0;  // sizeof(real): 4 in the float build
  size_t weight_bytes = 0;
  size_t gradient_bytes = 0;
  size_t optimizer_bytes = 0;   // AdamW: two moments per parameter
  size_t activation_bytes = 0;
  std::vector<ActivationItem> activations;
  size_t total_bytes() const { return weight_bytes + gradient_bytes + optimizer_bytes + activation_bytes; }
};

TrainingMemory estimate_training_memory(const ModelConfig& config, int B, int T);

// Numbers a tape holds right now in its recorded op nodes: outputs, gradients and saved
// tensors (leaves point at the caller's tensors and own nothing). What the estimate predicts.
size_t tape_numbers(const Tape& tape);

}  // namespace foundry
