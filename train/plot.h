// Loss curves as an SVG picture: `foundry plot` reads a metrics log and writes one.
//
// SVG is plain text (XML) that every browser opens, so we can write it by hand without a
// plotting library: a few <line>, <polyline>, <circle> and <text> elements inside axes whose
// tick marks fall on round numbers (1, 2 or 5 times a power of ten).
#pragma once

#include <string>
#include <vector>

#include "train/metrics.h"

namespace foundry {

// Round tick positions covering [lo, hi]: about `target` of them, spaced 1, 2 or 5 × 10^k.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

// The whole SVG document: train loss (raw, faint, and a moving average), validation loss
// (points joined by a line), axes with ticks and labels, a legend and the title.
// Throws std::invalid_argument when the series holds no finite point to draw.
std::string loss_curve_svg(const MetricsSeries& series, const std::string& title);

// Several runs on one picture, to compare them (fp32 against bf16, two learning rates): for each
// run, in its own colour, the moving average of the train loss (solid) and the validation loss
// (dashed, with points); the legend names each run by its label. Throws std::invalid_argument
// when no run holds a finite point.
struct LabeledSeries {
  std::string label;
  MetricsSeries series;
};
std::string compare_loss_curves_svg(const std::vector<LabeledSeries>& runs, const std::string& title);

}  // namespace foundry
