// Masked cross-entropy: the loss of supervised fine-tuning, which counts only some positions
// (the assistant's tokens of a chat, tokenizer/chat_template.h) and ignores the rest.
//
// With mask m_i ∈ {0, 1} per row and M = Σ_i m_i rows that count:
//
//   loss = (1/M) Σ_i m_i · (logsumexp(x_i) − x_{i,t_i})
//
// Backward, for one row (p_i = softmax(x_i)): d/dx_ij [logsumexp(x_i) − x_{i,t_i}] = p_ij − [j = t_i],
// the same fused form as the plain cross-entropy (engine/softmax.h); the mask and the mean give
//
//   dx_ij += m_i · (p_ij − [j = t_i]) · dloss / M
//
// so a masked-out row gets exactly zero gradient: not a small number, zero, because nothing of it
// is computed. Two things differ from averaging the plain loss over all N rows: the denominator is
// M (the rows that count), so a batch with many prompt tokens does not get a smaller learning
// signal than one with few; and the masked rows neither add to the loss nor pull on the logits.
// M = 0 (a batch holding no target at all) gives loss 0 and no gradient rather than 0/0.
// A masked row's target is never read, so it may be any value (the SFT batches put −1 there).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/tape.h"

namespace foundry {

// logits (N, V); targets and mask N entries. Writes probs (N, V) for the unmasked rows (masked
// rows are left as they were) and returns the mean loss over the M unmasked rows (in double).
double masked_cross_entropy_forward(real* probs, const real* logits, const int* targets, const uint8_t* mask, int N,
                                    int V);
// dlogits += m_i · (probs − onehot(targets)) · dloss / M
void masked_cross_entropy_backward(real* dlogits, const real* probs, const int* targets, const uint8_t* mask,
                                   real dloss, int N, int V);

// Taped: logits (..., V) with one target and one mask byte per row; returns the loss, shape ().
// Throws std::invalid_argument on a count mismatch or an unmasked target outside [0, V).
Var masked_cross_entropy(Tape& tape, Var logits, const std::vector<int>& targets, const std::vector<uint8_t>& mask);

// Weighted cross-entropy: the masked loss with a weight w_i >= 0 per row instead of a bit, so
// that some targets count more than others (fine-tuning weighs the tokens of the words an
// instruction asks for above the rest of the answer). With W = Σ_i w_i:
//
//   loss = (1/W) Σ_i w_i · (logsumexp(x_i) − x_{i,t_i})
//   dx_ij += w_i · (p_ij − [j = t_i]) · dloss / W
//
// A weighted mean: weights of 0 and 1 give the masked loss above, and multiplying every weight
// by the same number changes nothing. A row of weight 0 gets exactly zero gradient, as a masked
// row does, and its target is never read. W = 0 gives loss 0 and no gradient.
double weighted_cross_entropy_forward(real* probs, const real* logits, const int* targets, const real* weight, int N,
                                      int V);
// dlogits += w_i · (probs − onehot(targets)) · dloss / W
void weighted_cross_entropy_backward(real* dlogits, const real* probs, const int* targets, const real* weight,
                                     real dloss, int N, int V);
// Taped: logits (..., V) with one target and one weight per row; returns the loss, shape ().
// Throws std::invalid_argument on a count mismatch, a negative or non-finite weight, or a target
// outside [0, V) on a row of positive weight.
Var weighted_cross_entropy(Tape& tape, Var logits, const std::vector<int>& targets, const std::vector<real>& weight);

}  // namespace foundry
