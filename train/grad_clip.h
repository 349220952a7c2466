// Gradient clipping by the global L2 norm (torch.nn.utils.clip_grad_norm_).
//
//   norm = sqrt( Σ over every parameter tensor, every element  g² )
//   if norm > max_norm:  g ← g · max_norm / (norm + 1e-6)      for every gradient
//
// One norm over ALL parameters, not one per tensor, so clipping shrinks the whole update
// without changing its direction. It protects against the rare batch whose gradient is huge
// (a spike that would throw the weights far away). The 1e-6 keeps the division safe when
// max_norm is tiny. The norm before clipping is worth logging: a run whose norm keeps growing is
// heading for trouble, and a NaN in it is how the loop notices non-finite gradients.
#pragma once

#include <vector>

#include "model/model.h"

namespace foundry {

// The global L2 norm of every gradient, accumulated in double.
double grad_norm(const std::vector<NamedTensor>& params);

// Clips in place when the norm exceeds max_norm (max_norm <= 0 turns clipping off) and returns
// the norm before clipping. A non-finite norm is returned as it is and nothing is scaled.
double clip_grad_norm(const std::vector<NamedTensor>& params, double max_norm);

}  // namespace foundry
