#include "train/adamw.h"

#include <cmath>
#include <stdexcept>

namespace foundry {

AdamW make_adamw(const std::vector<NamedTensor>& params) {
  AdamW opt;
  for (const NamedTensor& p : params) {
    opt.names.push_back(p.name);
    opt.m.emplace_back(p.value->shape);
    opt.v.emplace_back(p.value->shape);
  }
  return opt;
}

// ANCHOR: adamw_update
void adamw_update(real* p, real* m, real* v, const real* g, size_t n, double lr, double beta1, double beta2, double eps,
                  double wd, long t) {
  // The scalars are computed once, in double, in the same order PyTorch computes them, so our
  // float results agree with torch.optim.AdamW to the last bit or two.
  const double bias_correction1 = 1.0 - std::pow(beta1, static_cast<double>(t));
  const double bias_correction2 = 1.0 - std::pow(beta2, static_cast<double>(t));
  const real decay = static_cast<real>(1.0 - lr * wd);              // p ← p − lr·wd·p
  const real step_size = static_cast<real>(lr / bias_correction1);  // lr / (1 − β1^t) folds in m̂
  const real bc2_sqrt = static_cast<real>(std::sqrt(bias_correction2));
  const real b1 = static_cast<real>(beta1), one_minus_b1 = static_cast<real>(1.0 - beta1);
  const real b2 = static_cast<real>(beta2), one_minus_b2 = static_cast<real>(1.0 - beta2);
  const real epsilon = static_cast<real>(eps);
  for (size_t i = 0; i < n; ++i) {
    p[i] *= decay;
    m[i] = b1 * m[i] + one_minus_b1 * g[i];
    v[i] = b2 * v[i] + one_minus_b2 * g[i] * g[i];
    // sqrt(v̂) = sqrt(v) / sqrt(1 − β2^t); eps is added after the square root.
    const real denom = std::sqrt(v[i]) / bc2_sqrt + epsilon;
    p[i] -= step_size * (m[i] / denom);
  }
}
// ANCHOR_END: adamw_update

void adamw_step(AdamW& opt, const std::vector<NamedTensor>& params, double lr, const AdamWSettings& settings) {
  if (params.size() != opt.m.size()) {
    throw std::invalid_argument("adamw_step: the optimizer holds moments for " + std::to_string(opt.m.size()) +
                                " tensors but the model has " + std::to_string(params.size()));
  }
  // Checked before the parallel loop: an exception must not leave an OpenMP region.
  for (size_t k = 0; k < params.size(); ++k) {
    if (opt.names.size() != opt.m.size() || opt.names[k] != params[k].name) {
      throw std::invalid_argument("adamw_step: parameter " + std::to_string(k) + " is '" + params[k].name +
                                  "' but the optimizer's moments " + std::to_string(k) + " belong to '" + opt.names[k] +
                                  "'");
    }
    check_same_shape(*params[k].value, opt.m[k], "adamw_step: moments of " + params[k].name);
    check_same_shape(*params[k].value, *params[k].grad, "adamw_step: gradient of " + params[k].name);
  }
  opt.t++;
  // ANCHOR: adamw_threads
  const long count = static_cast<long>(params.size());
  // One tensor per iteration: each update writes only its own parameter and moments, so the
  // threads never collide and the result does not depend on their number. Dynamic: the
  // embedding is far larger than a norm's gain.
#pragma omp parallel for schedule(dynamic)
  for (long k = 0; k < count; ++k) {
    Tensor& p = *params[k].value;
    const Tensor& g = *params[k].grad;
    // ANCHOR: decay_rule
    const double wd = params[k].decay ? settings.weight_decay : 0.0;  // the parameter table's choice
    // ANCHOR_END: decay_rule
    adamw_update(p.ptr(), opt.m[k].ptr(), opt.v[k].ptr(), g.ptr(), p.size(), lr, settings.beta1, settings.beta2,
                 settings.eps, wd, opt.t);
  }
  // ANCHOR_END: adamw_threads
}

}  // namespace foundry
