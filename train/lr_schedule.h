// The learning-rate schedule: linear warmup, then cosine decay to a minimum.
//
// For the update with 0-based index s (the first update is s = 0), W = warmup_steps,
// S = max_steps, lr_max = lr and lr_min = min_lr:
//
//   s < W:        lr(s) = lr_max · (s + 1) / W
//   W <= s < S:   p = (s − W) / (S − W)                     p runs from 0 towards 1
//                 lr(s) = lr_min + ½ · (1 + cos(π · p)) · (lr_max − lr_min)
//   s >= S:       lr(s) = lr_min
//
// So lr(0) = lr_max / W, lr(W − 1) = lr(W) = lr_max, and the curve ends at lr_min at s = S.
// Warmup exists because Adam's second moment v is still a poor estimate over the first steps:
// full-size updates then can throw the weights into a bad region. The cosine spends most steps
// at a fairly high rate and then lands gently, which usually ends at a lower loss than a
// constant rate.
#pragma once

namespace foundry {

// ANCHOR: lr_schedule_struct
struct LrSchedule {
  double lr = 1e-3;       // lr_max, reached at the end of warmup
  double min_lr = 1e-4;   // lr_min, reached at max_steps
  long warmup_steps = 0;  // W (0: no warmup)
  long max_steps = 1;     // S
};
// ANCHOR_END: lr_schedule_struct

double learning_rate(const LrSchedule& schedule, long step);

}  // namespace foundry
