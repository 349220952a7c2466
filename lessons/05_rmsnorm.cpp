// Lesson 05: RMSNorm. Normalizes a row, compares it with LayerNorm, shows why eps sits inside
// the square root, and checks the hand-derived backward against finite differences of the same
// formula computed in double precision; a backward that drops the path through r is caught.
// Exits non-zero if any check fails.
//
//   build/lessons/lesson_05
#include <cmath>
#include <cstdio>
#include <vector>

#include "engine/tape.h"
#include "lessons/lesson_common.h"
#include "model/rmsnorm.h"

using namespace foundry;

namespace {

using lesson::check;
using lesson::failures;

void print_row(const char* label, const real* x, int n) {
  std::printf("%-22s", label);
  for (int j = 0; j < n; j++) std::printf(" %8.4f", x[j]);
  std::printf("\n");
}

// ANCHOR: layernorm
// LayerNorm, for comparison: subtract the mean, divide by the standard deviation, then a gain
// and a bias. Two statistics per row, two vectors of parameters.
void layernorm_row(real* y, const real* x, const real* gain, const real* bias, int C, real eps) {
  double mean = 0, var = 0;
  for (int i = 0; i < C; i++) mean += x[i];
  mean /= C;
  for (int i = 0; i < C; i++) var += (x[i] - mean) * (x[i] - mean);
  var /= C;
  for (int i = 0; i < C; i++) y[i] = static_cast<real>((x[i] - mean) / std::sqrt(var + eps)) * gain[i] + bias[i];
}
// ANCHOR_END: layernorm

// The probe loss L = Σ_i g_i · y_i of one row, in double: the reference the float backward is
// compared with, by central differences.
double probe_loss(const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>& g,
                  double eps) {
  double ms = 0;
  for (double v : x) ms += v * v;
  double r = 1 / std::sqrt(ms / x.size() + eps);
  double L = 0;
  for (size_t i = 0; i < x.size(); i++) L += g[i] * x[i] * r * w[i];
  return L;
}

}  // namespace

int main() {
  const int C = 6;
  const real eps = 1e-5f;
  real x[C] = {1.5f, -0.5f, 2.0f, 0.0f, -1.0f, 3.0f};
  real w[C] = {1.0f, 0.5f, 2.0f, 1.0f, 1.0f, 0.8f};
  real ones[C] = {1, 1, 1, 1, 1, 1}, zeros[C] = {0, 0, 0, 0, 0, 0};

  std::printf("[forward]\n");
  {
    real y[C], y_unit[C], rstd;
    rmsnorm_forward(y_unit, &rstd, x, ones, 1, C, eps);
    rmsnorm_forward(y, &rstd, x, w, 1, C, eps);
    double ms = 0;
    for (int i = 0; i < C; i++) ms += double(x[i]) * x[i];
    std::printf("mean(x^2) = %.4f, rms = %.4f, rstd r = %.4f\n", ms / C, std::sqrt(ms / C), rstd);
    print_row("x", x, C);
    print_row("x * r (w = 1)", y_unit, C);
    print_row("w", w, C);
    print_row("y = x * r * w", y, C);
    double ms_out = 0;
    for (int i = 0; i < C; i++) ms_out += double(y_unit[i]) * y_unit[i];
    check(std::fabs(ms_out / C - 1) < 1e-5, "with w = 1 the output has mean square 1");
    real x100[C], y100[C], r100;
    for (int i = 0; i < C; i++) x100[i] = 100 * x[i];
    rmsnorm_forward(y100, &r100, x100, w, 1, C, eps);
    double diff = 0;
    for (int i = 0; i < C; i++) diff = std::max(diff, double(std::fabs(y100[i] - y[i])));
    check(diff < 1e-5, "scaling the row by 100 leaves the output unchanged");
  }

  std::printf("[layernorm]\n");
  {
    real y_ln[C], y_rms[C], rstd, centered[C];
    layernorm_row(y_ln, x, ones, zeros, C, eps);
    rmsnorm_forward(y_rms, &rstd, x, ones, 1, C, eps);
    print_row("layernorm(x)", y_ln, C);
    print_row("rmsnorm(x)", y_rms, C);
    double mean = 0;
    for (int i = 0; i < C; i++) mean += x[i];
    mean /= C;
    for (int i = 0; i < C; i++) centered[i] = static_cast<real>(x[i] - mean);
    rmsnorm_forward(y_rms, &rstd, centered, ones, 1, C, eps);
    print_row("rmsnorm(x - mean)", y_rms, C);
    double diff = 0;
    for (int i = 0; i < C; i++) diff = std::max(diff, double(std::fabs(y_ln[i] - y_rms[i])));
    check(diff < 1e-5, "on a zero-mean row RMSNorm and LayerNorm (gain 1, bias 0) agree");
  }

  std::printf("[eps]\n");
  {
    real y[C], rstd;
    rmsnorm_forward(y, &rstd, zeros, w, 1, C, eps);
    std::printf("all-zero row: rstd = %.1f (= 1/sqrt(eps)), output %g\n", rstd, y[0]);
    check(std::isfinite(rstd) && y[0] == 0, "eps inside the root: a zero row gives 0, not 0/0");
  }

  std::printf("[backward]\n");
  {
    // Probe g; the analytic gradient from rmsnorm_backward (float) against central differences
    // of the double-precision formula.
    real g[C] = {0.3f, -1.0f, 0.5f, 2.0f, -0.7f, 0.1f};
    real y[C], rstd, dx[C] = {0}, dw[C] = {0};
    rmsnorm_forward(y, &rstd, x, w, 1, C, eps);
    rmsnorm_backward(dx, dw, g, x, w, &rstd, 1, C);
    std::vector<double> xd(x, x + C), wd(w, w + C), gd(g, g + C);
    real dx_num[C], dw_num[C];
    const double h = 1e-6;
    for (int i = 0; i < C; i++) {
      std::vector<double> xp = xd, xm = xd, wp = wd, wm = wd;
      xp[i] += h, xm[i] -= h, wp[i] += h, wm[i] -= h;
      dx_num[i] = static_cast<real>((probe_loss(xp, wd, gd, eps) - probe_loss(xm, wd, gd, eps)) / (2 * h));
      dw_num[i] = static_cast<real>((probe_loss(xd, wp, gd, eps) - probe_loss(xd, wm, gd, eps)) / (2 * h));
    }
    print_row("dx (rmsnorm_backward)", dx, C);
    print_row("dx (finite diff.)", dx_num, C);
    print_row("dw (rmsnorm_backward)", dw, C);
    print_row("dw (finite diff.)", dw_num, C);
    double err = 0;
    for (int i = 0; i < C; i++)
      err = std::max({err, double(std::fabs(dx[i] - dx_num[i])), double(std::fabs(dw[i] - dw_num[i]))});
    check(err < 1e-5, "the hand-derived backward matches finite differences");

    // The bug: treat r as a constant and keep only dx_j = r g_j w_j.
    real dx_bug[C];
    for (int i = 0; i < C; i++) dx_bug[i] = rstd * g[i] * w[i];
    print_row("dx without the r path", dx_bug, C);
    double bug_err = 0;
    for (int i = 0; i < C; i++) bug_err = std::max(bug_err, double(std::fabs(dx_bug[i] - dx_num[i])));
    std::printf("largest error of the dropped-term backward: %.4f\n", bug_err);
    check(bug_err > 1e-2, "dropping the path through r is caught");

    // dx has (almost) no component along x: moving along x only rescales the row, which
    // RMSNorm undoes.
    double along = 0, norm_x = 0, norm_dx = 0;
    for (int i = 0; i < C; i++)
      along += double(dx[i]) * x[i], norm_x += double(x[i]) * x[i], norm_dx += double(dx[i]) * dx[i];
    std::printf("|cos(dx, x)| = %.4f\n", std::fabs(along / std::sqrt(norm_x * norm_dx)));
    check(std::fabs(along / std::sqrt(norm_x * norm_dx)) < 1e-4, "the gradient is orthogonal to x");
  }

  std::printf("%s\n", failures == 0 ? "all checks passed" : "SOME CHECKS FAILED");
  return failures == 0 ? 0 : 1;
}
