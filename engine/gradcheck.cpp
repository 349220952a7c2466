#include "engine/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace foundry {

std::string GradCheckResult::str() const {
  std::ostringstream out;
  out << "checked " << checked << " elements: max abs error " << max_abs_error << ", max rel error " << max_rel_error;
  if (!worst.empty()) out << ", worst at " << worst;
  return out.str();
}

// ANCHOR: check_gradients
GradCheckResult check_gradients(const GradCheckFn& forward, std::vector<Tensor*> inputs,
                                const std::vector<std::string>& names, GradCheckOptions options) {
  Rng rng(options.seed);
  std::vector<Tensor> grads;
  for (Tensor* x : inputs) grads.emplace_back(x->shape, 0);

  // Runs the computation and returns the probe loss L = Σ out ⊙ g (in double).
  Tape tape;
  Tensor probe;
  bool have_probe = false;  // subtle: not `probe.shape != y.shape`: an empty Tensor and a scalar share shape ()
  auto probe_loss = [&](bool run_backward) {
    tape.clear();
    std::vector<Var> leaves;
    for (size_t k = 0; k < inputs.size(); k++) leaves.push_back(tape.param(*inputs[k], grads[k]));
    Var out = forward(tape, leaves);
    const Tensor& y = tape.value(out);
    if (!have_probe) {  // first call: draw the probe
      have_probe = true;
      probe = Tensor(y.shape);
      for (real& v : probe.data) v = static_cast<real>(rng.normal());
    }
    double loss = 0;
    for (size_t i = 0; i < y.size(); i++) loss += double(y[i]) * double(probe[i]);
    if (run_backward) tape.backward(out, probe);
    return loss;
  };

  probe_loss(true);  // analytic gradients land in `grads`

  GradCheckResult result;
  for (size_t k = 0; k < inputs.size(); k++) {
    Tensor& x = *inputs[k];
    std::vector<size_t> elements;
    if (options.max_elements == 0 || options.max_elements >= x.size()) {
      for (size_t i = 0; i < x.size(); i++) elements.push_back(i);
    } else {
      for (size_t s = 0; s < options.max_elements; s++) elements.push_back(rng.below(x.size()));
    }
    for (size_t i : elements) {
      const real saved = x[i];
      const real x_plus = static_cast<real>(saved + options.step);
      const real x_minus = static_cast<real>(saved - options.step);
      x[i] = x_plus;
      double plus = probe_loss(false);
      x[i] = x_minus;
      double minus = probe_loss(false);
      x[i] = saved;
      // subtle: divide by the step actually taken; in float, saved ± h is rounded and the
      // difference can be off from 2h by several percent.
      double numeric = (plus - minus) / (double(x_plus) - double(x_minus));
      double analytic = grads[k][i];
      double abs_err = std::fabs(analytic - numeric);
      double rel_err = abs_err / std::max({std::fabs(analytic), std::fabs(numeric), options.floor});
      // subtle: a NaN compares false with everything and would slip past the maximum below;
      // a gradient that is not a finite number is as wrong as a gradient can be.
      if (!std::isfinite(abs_err)) abs_err = rel_err = HUGE_VAL;
      result.checked++;
      result.max_abs_error = std::max(result.max_abs_error, abs_err);
      if (rel_err > result.max_rel_error || result.worst.empty()) {
        result.max_rel_error = std::max(result.max_rel_error, rel_err);
        std::ostringstream where;
        where << "input " << k;
        if (k < names.size()) where << " (" << names[k] << ")";
        where << " element " << i << ": analytic " << analytic << ", numeric " << numeric;
        result.worst = where.str();
      }
    }
  }
  return result;
}
// ANCHOR_END: check_gradients

}  // namespace foundry
