#include "train/grad_clip.h"

#include <cmath>

namespace foundry {

double grad_norm(const std::vector<NamedTensor>& params) {
  double sum_sq = 0.0;
  for (const NamedTensor& p : params) {
    const real* g = p.grad->ptr();
    const size_t n = p.grad->size();
    for (size_t i = 0; i < n; ++i) sum_sq += static_cast<double>(g[i]) * g[i];
  }
  return std::sqrt(sum_sq);
}

// ANCHOR: clip_grad_norm
double clip_grad_norm(const std::vector<NamedTensor>& params, double max_norm) {
  const double norm = grad_norm(params);
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm) {
    const real scale = static_cast<real>(max_norm / (norm + 1e-6));
    for (const NamedTensor& p : params) {
      real* g = p.grad->ptr();
      const size_t n = p.grad->size();
      for (size_t i = 0; i < n; ++i) g[i] *= scale;
    }
  }
  return norm;
}
// ANCHOR_END: clip_grad_norm

}  // namespace foundry
