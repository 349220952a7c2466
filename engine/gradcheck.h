// The gradient checker shared by the tests and the lesson programs.
//
// Contract of every backward (as dlib puts it): backward adds the gradient of dot(output, probe).
// So we pick a random probe g of the output's shape and check the probe loss L = Σ out ⊙ g:
//   analytic:  one tape.backward(out, g), which fills dL/dx for every input x
//   numeric:   for every element x_i, central differences (L(x_i + h) − L(x_i − h)) / 2h
// and compare the two element by element. Central differences err by O(h²); in double
// precision with h = 1e-5 that is far below the 1e-6 relative tolerance we hold the checks to.
//
// The relative error of one element is |analytic − numeric| / max(|analytic|, |numeric|, floor).
// The floor keeps a gradient that is zero up to rounding from reporting a huge relative error;
// errors below it are judged absolutely. A NaN or infinite gradient counts as an infinite error.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/tape.h"

namespace foundry {

struct GradCheckOptions {
  double step = 1e-5;       // h
  double floor = 1e-3;      // denominator floor of the relative error
  size_t max_elements = 0;  // 0: check every element; else a seeded sample of this many per input
  uint64_t seed = 42;       // for the probe g and the sample
};

struct GradCheckResult {
  double max_abs_error = 0;
  double max_rel_error = 0;
  std::string worst;   // "input 1 (w) element 7: analytic 0.31, numeric 0.29"
  size_t checked = 0;  // elements compared

  // A check that compared nothing proves nothing, so it does not pass.
  bool passed(double tolerance) const { return checked > 0 && max_rel_error <= tolerance; }
  std::string str() const;
};

// `forward` builds the computation on a fresh tape from the given leaves and returns its
// output. `inputs` are the tensors to check (each becomes a param leaf); the checker perturbs
// them in place and restores them. `names` label them in the report (may be empty).
using GradCheckFn = std::function<Var(Tape&, const std::vector<Var>&)>;
GradCheckResult check_gradients(const GradCheckFn& forward, std::vector<Tensor*> inputs,
                                const std::vector<std::string>& names = {}, GradCheckOptions options = {});

}  // namespace foundry
