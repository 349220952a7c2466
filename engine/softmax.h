// Softmax, log-softmax and the fused softmax + cross-entropy loss, over the last dimension.
//
//   softmax:      p_j = exp(x_j − m) / Σ_k exp(x_k − m)      m = max_k x_k
//                 dx_j += p_j (dp_j − Σ_k p_k dp_k)
//   log_softmax:  y_j = x_j − m − log Σ_k exp(x_k − m)
//                 dx_j += dy_j − p_j Σ_k dy_k
//   cross-entropy of row i with target t_i:  loss_i = −log p_{i,t_i} = logsumexp(x_i) − x_{i,t_i}
//                 mean over the N rows; dx_ij += (p_ij − [j = t_i]) · dloss / N
//
// Subtracting the row maximum m changes nothing mathematically (it cancels in the ratio) but
// keeps every exp() argument ≤ 0, so logits of ±1e4 neither overflow to inf nor underflow to a
// log(0). The fused loss never forms log(p) from a rounded p, which is why it stays finite.
// Rows are independent, so each op splits its rows over the threads.
#pragma once

#include <vector>

#include "engine/tape.h"

namespace foundry {

// x, out: (N, V)
void softmax_forward(real* probs, const real* x, int N, int V);
void softmax_backward(real* dx, const real* dprobs, const real* probs, int N, int V);
void log_softmax_forward(real* out, const real* x, int N, int V);
void log_softmax_backward(real* dx, const real* dout, const real* out, int N, int V);

// Fused loss. logits (N, V), targets N ids in [0, V). Writes probs (N, V) for the backward and
// returns the mean loss over the N rows (computed in double).
double cross_entropy_forward(real* probs, const real* logits, const int* targets, int N, int V);
// dlogits += (probs − onehot(targets)) · dloss / N
void cross_entropy_backward(real* dlogits, const real* probs, const int* targets, real dloss, int N, int V);

// Taped wrappers: softmax over the last dim of x (any rank); cross_entropy of logits (..., V)
// against one target per row, returning the mean loss, shape ().
Var softmax(Tape& tape, Var x);
Var log_softmax(Tape& tape, Var x);
Var cross_entropy(Tape& tape, Var logits, const std::vector<int>& targets);

}  // namespace foundry
