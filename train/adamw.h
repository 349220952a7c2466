// AdamW: Adam with decoupled weight decay, with PyTorch's semantics (torch.optim.AdamW).
//
// For each parameter p with gradient g, at update t = 1, 2, 3, ...:
//
//   p ← p − lr·wd·p                          decoupled weight decay (2-D tensors only)
//   m ← β1·m + (1 − β1)·g                    first moment: a running mean of the gradient
//   v ← β2·v + (1 − β2)·g²                   second moment: a running mean of its square
//   m̂ = m / (1 − β1^t),  v̂ = v / (1 − β2^t)  bias correction (m and v start at 0)
//   p ← p − lr · m̂ / (sqrt(v̂) + eps)        eps is added AFTER the square root
//
// Why each piece: m smooths the noise of minibatch gradients (momentum); dividing by sqrt(v)
// gives every parameter a step of about lr whatever the scale of its gradient; the bias
// correction undoes the pull towards 0 of moments that start at 0, which would otherwise make
// the first steps tiny. Weight decay shrinks weights towards 0 in proportion to their size, a
// regularizer; "decoupled" means it acts on p directly instead of being added to g, where Adam's
// division by sqrt(v) would rescale it differently for every parameter.
//
// Only the tensors the parameter table marks decay (model/params.h): the matrices (the
// embedding, the output projection, the attention and feed-forward weights). RMSNorm gains stay
// out: a gain of 1 is their neutral value, and pulling it towards 0 would just shrink the
// activations the next layer sees.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "model/model.h"

namespace foundry {

// ANCHOR: adamw_struct
// The hyperparameters: chosen by the user (the training config), never changed by an update.
struct AdamWSettings {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
};

// The state: what the updates build up, and what a checkpoint must save.
struct AdamW {
  long t = 0;                      // updates made so far; the next update uses t + 1
  std::vector<std::string> names;  // the parameter each moment belongs to: m[k] and v[k] are names[k]'s
  std::vector<Tensor> m;           // first moments, same shapes as their parameters
  std::vector<Tensor> v;           // second moments
};
// ANCHOR_END: adamw_struct

// Moments of the right shapes, all zero, t = 0, each under its parameter's name.
AdamW make_adamw(const std::vector<NamedTensor>& params);

// The update of one tensor of n elements, in place. `t` is the number of this update (>= 1)
// and `wd` the weight decay for this tensor (0 for the exempt ones).
void adamw_update(real* p, real* m, real* v, const real* g, size_t n, double lr, double beta1, double beta2, double eps,
                  double wd, long t);

// One optimizer step over every parameter at learning rate `lr` (increments opt.t first). Each
// parameter is updated with the moments of its own name; a list whose names do not match the
// optimizer's (another model, another order) is refused before anything changes.
void adamw_step(AdamW& opt, const std::vector<NamedTensor>& params, double lr, const AdamWSettings& settings);

}  // namespace foundry
