#include "train/lr_schedule.h"

#include <cmath>

namespace foundry {

// ANCHOR: learning_rate
double learning_rate(const LrSchedule& sc, long step) {
  if (step < sc.warmup_steps) {
    // Linear warmup; the +1 makes the very first update use lr/W, not 0 (a wasted step).
    return sc.lr * static_cast<double>(step + 1) / static_cast<double>(sc.warmup_steps);
  }
  if (step >= sc.max_steps) return sc.min_lr;
  const double progress =
      static_cast<double>(step - sc.warmup_steps) / static_cast<double>(sc.max_steps - sc.warmup_steps);
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));  // 1 → 0 as progress goes 0 → 1
  return sc.min_lr + cosine * (sc.lr - sc.min_lr);
}
// ANCHOR_END: learning_rate

}  // namespace foundry
