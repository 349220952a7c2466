// Lesson 13: AdamW and the learning-rate schedule. Prints what bias correction does to the
// moments, how Adam gives tiny and huge gradients the same step, weight decay on a matrix
// against an exempt gain, the warmup + cosine schedule at its boundaries, and clipping.
// Exits non-zero if any check fails.
//
//   build/lessons/lesson_13
#include <cmath>
#include <cstdio>

#include "lessons/lesson_common.h"
#include "train/adamw.h"
#include "train/grad_clip.h"
#include "train/lr_schedule.h"

using namespace foundry;

namespace {

using lesson::check;
using lesson::failures;

}  // namespace

int main() {
  std::printf("[bias_correction]\n");
  // A constant gradient g = 0.5: the moments should say "mean 0.5, mean square 0.25" at once.
  const double b1 = 0.9, b2 = 0.95, g = 0.5;
  double m = 0, v = 0;
  std::printf("   t        m     m_hat        v     v_hat\n");
  for (int t = 1; t <= 5; ++t) {
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    std::printf("%4d %8.4f %9.4f %8.4f %9.4f\n", t, m, m / (1 - std::pow(b1, t)), v, v / (1 - std::pow(b2, t)));
  }
  check(std::fabs(m / (1 - std::pow(b1, 5)) - g) < 1e-12, "corrected m equals the gradient");

  std::printf("[step_size]\n");
  // Two weights whose gradients differ by a factor 10^6; one AdamW step at lr = 0.01, no decay.
  Tensor w({2}, std::vector<real>{1.0f, 1.0f}), dw({2}, std::vector<real>{0.001f, 1000.0f});
  std::vector<NamedTensor> params = {{"w", &w, &dw}};
  AdamW opt = make_adamw(params);
  adamw_step(opt, params, 0.01, AdamWSettings{b1, b2, 1e-8, 0.0});
  std::printf("gradient 0.001: weight moved by %.6f\n", 1.0 - w[0]);
  std::printf("gradient 1000:  weight moved by %.6f\n", 1.0 - w[1]);
  std::printf("plain SGD would move them by %.5f and %.1f\n", 0.01 * 0.001, 0.01 * 1000.0);
  check(std::fabs((1.0 - w[0]) - 0.01) < 1e-4 && std::fabs((1.0 - w[1]) - 0.01) < 1e-4, "both steps are about lr");

  std::printf("[weight_decay]\n");
  // Zero gradients for 100 steps at lr = 0.01, wd = 0.1: only the decay acts.
  Tensor matrix({1, 2}, std::vector<real>{2.0f, -2.0f}), dmatrix({1, 2});
  Tensor gain({2}, std::vector<real>{1.0f, 1.0f}), dgain({2});
  std::vector<NamedTensor> both = {{"matrix", &matrix, &dmatrix}, {"gain", &gain, &dgain}};
  AdamW decay = make_adamw(both);
  for (int t = 0; t < 100; ++t) adamw_step(decay, both, 0.01, AdamWSettings{b1, b2, 1e-8, 0.1});
  std::printf("matrix after 100 steps: %.5f %.5f (2 * (1 - 0.001)^100 = %.5f)\n", matrix[0], matrix[1],
              2 * std::pow(1 - 0.001, 100));
  std::printf("gain after 100 steps:   %.5f %.5f (exempt)\n", gain[0], gain[1]);
  check(std::fabs(matrix[0] - 2 * std::pow(0.999, 100)) < 1e-5 && gain[0] == 1.0f, "only the matrix decays");

  std::printf("[schedule]\n");
  // configs/tiny.json: lr 2e-3, min_lr 2e-4, 100 warmup steps, 2000 steps.
  const LrSchedule sc{2e-3, 2e-4, 100, 2000};
  for (long s : {0L, 1L, 49L, 99L, 100L, 500L, 1050L, 1500L, 1999L, 2000L}) {
    std::printf("step %4ld  lr %.6f\n", s, learning_rate(sc, s));
  }
  check(learning_rate(sc, 99) == 2e-3 && learning_rate(sc, 2000) == 2e-4 &&
            std::fabs(learning_rate(sc, 1050) - 1.1e-3) < 1e-12,
        "warmup ends at lr, the midpoint is the mean, the end is min_lr");

  std::printf("[clipping]\n");
  Tensor a({2}), da({2}, std::vector<real>{3.0f, 4.0f});
  std::vector<NamedTensor> grads = {{"a", &a, &da}};
  const double norm = clip_grad_norm(grads, 1.0);
  std::printf("norm before %.4f, gradient after (%.6f, %.6f), norm after %.6f\n", norm, da[0], da[1], grad_norm(grads));
  check(std::fabs(da[0] / da[1] - 0.75) < 1e-6, "clipping keeps the direction");
  return failures == 0 ? 0 : 1;
}
