#include "train/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace foundry {

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) hi = lo + 1;
  const double raw = (hi - lo) / std::max(1, target);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / magnitude;  // in [1, 10)
  const double step = (fraction < 1.5 ? 1 : fraction < 3.5 ? 2 : fraction < 7.5 ? 5 : 10) * magnitude;
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) {
    ticks.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);  // print 0, not -1.2e-17
  }
  return ticks;
}

namespace {

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string tick_label(double v, double spacing) {
  if (std::fabs(v) >= 10000) return fmt("%.0fk", v / 1000);
  // Enough decimals to tell neighbouring ticks apart, no more.
  const int decimals = spacing >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(spacing) - 1e-9));
  char format[16];
  std::snprintf(format, sizeof format, "%%.%df", decimals);
  return fmt(format, v);
}

std::string escape_xml(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

using Curve = std::vector<std::pair<double, double>>;  // (step, loss) points

// A run's finite train losses and validation losses as points.
Curve train_points(const MetricsSeries& series) {
  Curve raw;
  for (const TrainPoint& p : series.train) {
    if (std::isfinite(p.loss)) raw.push_back({static_cast<double>(p.step), p.loss});
  }
  return raw;
}
Curve val_points(const MetricsSeries& series) {
  Curve val;
  for (const EvalPoint& p : series.eval) {
    if (std::isfinite(p.val_loss)) val.push_back({static_cast<double>(p.step), p.val_loss});
  }
  return val;
}

// The moving average over about 2% of a run: what the eye wants to follow through minibatch noise.
Curve moving_average(const Curve& raw) {
  Curve smooth;
  const size_t window = std::max<size_t>(1, raw.size() / 50);
  double running = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    running += raw[i].second;
    if (i >= window) running -= raw[i - window].second;
    smooth.push_back({raw[i].first, running / static_cast<double>(std::min(i + 1, window))});
  }
  return smooth;
}

// What both plots share: the picture's layout, axes fitted to every point of the curves they
// will draw (padded by 4% and ending on a tick, so the last label sits at the corner), the title,
// the grid with its ticks and labels, and the axis titles. The caller then adds curves and a legend.
class LossFrame {
 public:
  static constexpr double width = 860, height = 520;
  static constexpr double left = 78, right = 24, top = 52, bottom = 64;  // plot area inside the picture
  static constexpr double plot_w = width - left - right, plot_h = height - top - bottom;

  // Throws std::invalid_argument(`nothing_to_plot`) when the curves hold no point.
  LossFrame(const std::vector<const Curve*>& curves, const std::string& title, const char* nothing_to_plot) {
    double x_max = 1;
    for (const Curve* curve : curves) {
      for (const auto& [step, loss] : *curve) {
        x_max = std::max(x_max, step);
        y_lo_ = std::min(y_lo_, loss);
        y_hi_ = std::max(y_hi_, loss);
      }
    }
    if (!(y_hi_ >= y_lo_)) throw std::invalid_argument(nothing_to_plot);
    if (y_hi_ - y_lo_ < 1e-6) y_hi_ = y_lo_ + 1;
    const double pad = 0.04 * (y_hi_ - y_lo_);
    y_lo_ -= pad;
    y_hi_ += pad;
    const std::vector<double> x_ticks = nice_ticks(0, x_max, 8);
    const std::vector<double> y_ticks = nice_ticks(y_lo_, y_hi_, 7);
    x_hi_ = std::max(x_max, x_ticks.back());

    add("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fmt("%.0f", width) + "\" height=\"" +
        fmt("%.0f", height) + "\" viewBox=\"0 0 " + fmt("%.0f", width) + " " + fmt("%.0f", height) +
        "\" font-family=\"Helvetica, Arial, sans-serif\">");
    add("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    add("<text x=\"" + fmt("%.1f", left + plot_w / 2) +
        "\" y=\"30\" text-anchor=\"middle\" font-size=\"18\" "
        "font-weight=\"bold\" fill=\"#222\">" +
        escape_xml(title) + "</text>");

    // Grid and tick labels.
    const double x_spacing = x_ticks.size() > 1 ? x_ticks[1] - x_ticks[0] : 1;
    const double y_spacing = y_ticks.size() > 1 ? y_ticks[1] - y_ticks[0] : 1;
    for (double t : x_ticks) {
      const double x = X(t);
      add("<line x1=\"" + fmt("%.1f", x) + "\" y1=\"" + fmt("%.1f", top) + "\" x2=\"" + fmt("%.1f", x) + "\" y2=\"" +
          fmt("%.1f", top + plot_h) + "\" stroke=\"#e6e6e6\"/>");
      add("<line x1=\"" + fmt("%.1f", x) + "\" y1=\"" + fmt("%.1f", top + plot_h) + "\" x2=\"" + fmt("%.1f", x) +
          "\" y2=\"" + fmt("%.1f", top + plot_h + 5) + "\" stroke=\"#444\"/>");
      add("<text x=\"" + fmt("%.1f", x) + "\" y=\"" + fmt("%.1f", top + plot_h + 20) +
          "\" text-anchor=\"middle\" font-size=\"12\" fill=\"#444\">" + tick_label(t, x_spacing) + "</text>");
    }
    for (double t : y_ticks) {
      if (t < y_lo_ || t > y_hi_) continue;
      const double y = Y(t);
      add("<line x1=\"" + fmt("%.1f", left) + "\" y1=\"" + fmt("%.1f", y) + "\" x2=\"" + fmt("%.1f", left + plot_w) +
          "\" y2=\"" + fmt("%.1f", y) + "\" stroke=\"#e6e6e6\"/>");
      add("<line x1=\"" + fmt("%.1f", left - 5) + "\" y1=\"" + fmt("%.1f", y) + "\" x2=\"" + fmt("%.1f", left) +
          "\" y2=\"" + fmt("%.1f", y) + "\" stroke=\"#444\"/>");
      add("<text x=\"" + fmt("%.1f", left - 9) + "\" y=\"" + fmt("%.1f", y + 4) +
          "\" text-anchor=\"end\" font-size=\"12\" fill=\"#444\">" + tick_label(t, y_spacing) + "</text>");
    }
    // Axes and their labels.
    add("<rect x=\"" + fmt("%.1f", left) + "\" y=\"" + fmt("%.1f", top) + "\" width=\"" + fmt("%.1f", plot_w) +
        "\" height=\"" + fmt("%.1f", plot_h) + "\" fill=\"none\" stroke=\"#444\"/>");
    add("<text x=\"" + fmt("%.1f", left + plot_w / 2) + "\" y=\"" + fmt("%.1f", height - 18) +
        "\" text-anchor=\"middle\" font-size=\"14\" fill=\"#222\">step (optimizer updates)</text>");
    add("<text transform=\"translate(22 " + fmt("%.1f", top + plot_h / 2) +
        ") rotate(-90)\" text-anchor=\"middle\" font-size=\"14\" fill=\"#222\">loss (nats per token)</text>");
  }

  // Picture coordinates of a step and a loss.
  double X(double step) const { return left + plot_w * step / x_hi_; }
  double Y(double loss) const { return top + plot_h * (1 - (loss - y_lo_) / (y_hi_ - y_lo_)); }

  void add(const std::string& element) { svg_ += element + "\n"; }
  void polyline(const Curve& pts, const std::string& style) {
    if (pts.empty()) return;
    std::string s = "<polyline fill=\"none\" " + style + " points=\"";
    // More points than pixels only makes the file bigger.
    const size_t stride = std::max<size_t>(1, pts.size() / 2000);
    for (size_t i = 0; i < pts.size(); i += stride)
      s += fmt("%.1f", X(pts[i].first)) + "," + fmt("%.1f", Y(pts[i].second)) + " ";
    add(s + "\"/>");
  }
  void points(const Curve& pts, const std::string& colour) {
    for (const auto& p : pts) {
      add("<circle cx=\"" + fmt("%.1f", X(p.first)) + "\" cy=\"" + fmt("%.1f", Y(p.second)) + "\" r=\"3.5\" fill=\"" +
          colour + "\" stroke=\"white\" stroke-width=\"1\"/>");
    }
  }
  std::string finish() {
    add("</svg>");
    return svg_;
  }

 private:
  double x_hi_ = 1, y_lo_ = INFINITY, y_hi_ = -INFINITY;
  std::string svg_;
};

}  // namespace

std::string loss_curve_svg(const MetricsSeries& series, const std::string& title) {
  // Train loss: every step, faint, plus its moving average; validation loss with its points.
  const Curve raw = train_points(series), smooth = moving_average(raw), val = val_points(series);
  LossFrame f({&raw, &val}, title, "the metrics log holds no finite loss to plot");
  f.polyline(raw, "stroke=\"#1f77b4\" stroke-opacity=\"0.25\" stroke-width=\"1\"");
  f.polyline(smooth, "stroke=\"#1f77b4\" stroke-width=\"2\"");
  f.polyline(val, "stroke=\"#ff7f0e\" stroke-width=\"2\"");
  f.points(val, "#ff7f0e");

  // Legend, top right inside the plot.
  const double lx = LossFrame::left + LossFrame::plot_w - 210, ly = LossFrame::top + 12;
  f.add("<rect x=\"" + fmt("%.1f", lx) + "\" y=\"" + fmt("%.1f", ly) +
        "\" width=\"198\" height=\"74\" rx=\"4\" fill=\"white\" fill-opacity=\"0.9\" stroke=\"#bbb\"/>");
  auto legend_row = [&](int row, const std::string& style, const std::string& label, bool dot) {
    const double y = ly + 18 + 20 * row;
    f.add("<line x1=\"" + fmt("%.1f", lx + 10) + "\" y1=\"" + fmt("%.1f", y) + "\" x2=\"" + fmt("%.1f", lx + 40) +
          "\" y2=\"" + fmt("%.1f", y) + "\" " + style + "/>");
    if (dot)
      f.add("<circle cx=\"" + fmt("%.1f", lx + 25) + "\" cy=\"" + fmt("%.1f", y) + "\" r=\"3.5\" fill=\"#ff7f0e\"/>");
    f.add("<text x=\"" + fmt("%.1f", lx + 48) + "\" y=\"" + fmt("%.1f", y + 4) + "\" font-size=\"12\" fill=\"#222\">" +
          label + "</text>");
  };
  legend_row(0, "stroke=\"#1f77b4\" stroke-opacity=\"0.25\" stroke-width=\"1\"", "train loss (each step)", false);
  legend_row(1, "stroke=\"#1f77b4\" stroke-width=\"2\"", "train loss (moving average)", false);
  legend_row(2, "stroke=\"#ff7f0e\" stroke-width=\"2\"", "validation loss", true);
  return f.finish();
}

std::string compare_loss_curves_svg(const std::vector<LabeledSeries>& runs, const std::string& title) {
  const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"};
  // Curves first, so the axes can cover them all: each run's moving average and validation loss.
  std::vector<Curve> train(runs.size()), val(runs.size());
  std::vector<const Curve*> all;
  for (size_t r = 0; r < runs.size(); ++r) {
    train[r] = moving_average(train_points(runs[r].series));
    val[r] = val_points(runs[r].series);
    all.push_back(&train[r]);
    all.push_back(&val[r]);
  }
  LossFrame f(all, title, "the metrics logs hold no finite loss to plot");

  const double lx = LossFrame::left + LossFrame::plot_w - 250, ly = LossFrame::top + 12;
  f.add("<rect x=\"" + fmt("%.1f", lx) + "\" y=\"" + fmt("%.1f", ly) + "\" width=\"238\" height=\"" +
        fmt("%.0f", 14 + 40.0 * static_cast<double>(runs.size())) +
        "\" rx=\"4\" fill=\"white\" fill-opacity=\"0.9\" stroke=\"#bbb\"/>");
  for (size_t r = 0; r < runs.size(); ++r) {
    const std::string colour = colours[r % (sizeof colours / sizeof colours[0])];
    f.polyline(train[r], "stroke=\"" + colour + "\" stroke-width=\"2\"");
    f.polyline(val[r], "stroke=\"" + colour + "\" stroke-width=\"2\" stroke-dasharray=\"6 4\"");
    f.points(val[r], colour);
    const double y = ly + 18 + 40.0 * static_cast<double>(r);
    const std::string name = escape_xml(runs[r].label);
    f.add("<line x1=\"" + fmt("%.1f", lx + 10) + "\" y1=\"" + fmt("%.1f", y) + "\" x2=\"" + fmt("%.1f", lx + 40) +
          "\" y2=\"" + fmt("%.1f", y) + "\" stroke=\"" + colour + "\" stroke-width=\"2\"/>");
    f.add("<text x=\"" + fmt("%.1f", lx + 48) + "\" y=\"" + fmt("%.1f", y + 4) + "\" font-size=\"12\" fill=\"#222\">" +
          name + ": train (moving average)</text>");
    f.add("<line x1=\"" + fmt("%.1f", lx + 10) + "\" y1=\"" + fmt("%.1f", y + 18) + "\" x2=\"" + fmt("%.1f", lx + 40) +
          "\" y2=\"" + fmt("%.1f", y + 18) + "\" stroke=\"" + colour +
          "\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>");
    f.add("<text x=\"" + fmt("%.1f", lx + 48) + "\" y=\"" + fmt("%.1f", y + 22) + "\" font-size=\"12\" fill=\"#222\">" +
          name + ": validation</text>");
  }
  return f.finish();
}

}  // namespace foundry
