// The pre-norm transformer block: two residual branches, each reading a normalized copy of
// the residual stream and adding its result back.
//
//   h   = x + attention(attention_norm(x))          x, h, out (B, T, C)
//   out = h + feed_forward(ffn_norm(h))
//
// Backward needs no code of its own: the tape runs each op's backward in reverse. The one thing
// worth seeing is the residual add: its backward hands dout unchanged to both of its inputs, so
// the gradient of the stream reaches every earlier layer through the additions alone, however
// deep the model (lesson 10).
#pragma once

#include "engine/tape.h"
#include "model/model.h"

namespace foundry {

// The tape leaves of one layer's weights, by name: LayerVars (model.h).
// x (B, T, C) -> (B, T, C). Sizes, eps and the RoPE tables come from `model`. `lora`: low-rank
// adapters on the layer's linear weights (model/lora.h); the default has none.
Var transformer_block(Tape& tape, Var x, const LayerVars& w, const Model& model, const LayerLora& lora = {});

// The same block with activation recomputation: the tape keeps only the block's output (B, T, C);
// its backward runs the block's forward again on the tape's scratch tape (Tape::scratch) and
// backpropagates through that. Memory: every block's activations are alive only one block at a
// time, during backward, instead of all L blocks' from the forward to the end of backward.
// Cost: one more forward of every block per step (about a third more arithmetic). Same values and
// gradients, bit for bit, as transformer_block.
Var transformer_block_recomputed(Tape& tape, Var x, const LayerVars& w, const Model& model);

}  // namespace foundry
