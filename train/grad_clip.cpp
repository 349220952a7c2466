#include "train/grad_clip.h"

#include <cmath>

namespace foundry {

double grad_norm(const std::vector<NamedTensor>& params) {
  // One partial sum per tensor (threads take whole tensors), then the partials in a fixed
  // order: the same bits whatever the number of threads.
  const long count = static_cast<long>(params.size());
  std::vector<double> partial(params.size(), 0.0);
#pragma omp parallel for schedule(dynamic)
  for (long k = 0; k < count; ++k) {
    const real* g = params[k].grad->ptr();
    const size_t n = params[k].grad->size();
    // 8 running sums (number i goes to sum i mod 8): independent chains that vectorize, in an
    // order fixed by n alone
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      for (int l = 0; l < 8; l++) lane[l] += static_cast<double>(g[i + l]) * g[i + l];
    }
    for (; i < n; ++i) lane[i % 8] += static_cast<double>(g[i]) * g[i];
    partial[k] = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  }
  double sum_sq = 0.0;
  for (double s : partial) sum_sq += s;
  return std::sqrt(sum_sq);
}

// ANCHOR: clip_grad_norm
double clip_grad_norm(const std::vector<NamedTensor>& params, double max_norm) {
  const double norm = grad_norm(params);
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm) {
    const real scale = static_cast<real>(max_norm / (norm + 1e-6));
    const long count = static_cast<long>(params.size());
#pragma omp parallel for schedule(dynamic)  // each thread scales whole tensors of its own
    for (long k = 0; k < count; ++k) {
      real* g = params[k].grad->ptr();
      const size_t n = params[k].grad->size();
      for (size_t i = 0; i < n; ++i) g[i] *= scale;
    }
  }
  return norm;
}
// ANCHOR_END: clip_grad_norm

}  // namespace foundry
