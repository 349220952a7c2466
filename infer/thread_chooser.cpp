#include "infer/thread_chooser.h"

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <stdexcept>
#include <string>

namespace foundry {

namespace {
bool adaptation_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("FOUNDRY_ADAPT_THREADS");
    if (!v || !*v || std::string(v) == "1") return true;
    if (std::string(v) == "0") return false;
    throw std::invalid_argument(std::string("FOUNDRY_ADAPT_THREADS=\"") + v + "\": expected 0 or 1");
  }();
  return enabled;
}
double median(const double (&times)[ThreadChooser::kProbe]) {
  double sorted[ThreadChooser::kProbe];
  std::copy(std::begin(times), std::end(times), sorted);
  std::sort(std::begin(sorted), std::end(sorted));
  return 0.5 * (sorted[(ThreadChooser::kProbe - 1) / 2] + sorted[ThreadChooser::kProbe / 2]);
}
}  // namespace

ThreadChooser::ThreadChooser(int threads)
    : requested_(std::max(1, threads)), best_(std::max(1, threads)), enabled_(threads > 1 && adaptation_enabled()) {}

int ThreadChooser::next() const {
  if (!enabled_) return requested_;
  // The last kProbe tokens of the period run at the other count.
  const bool probing_other = position_ >= period_ - kProbe;
  if (!probing_other) return best_;
  return best_ == 1 ? requested_ : 1;
}

void ThreadChooser::record(double seconds) {
  if (!enabled_) return;
  const int window = position_ - (period_ - 2 * kProbe);  // 0 .. 2·kProbe−1 inside the windows
  if (window >= kProbe) other_times_[window - kProbe] = seconds;
  else if (window >= 0) best_times_[window] = seconds;
  if (++position_ < period_) return;
  // End of the period: keep the faster count. The other must win by 10% to take over: the two
  // windows are a few tokens apart, a later token attends over more positions, and a wrong
  // switch costs a whole period.
  const double best = median(best_times_), other = median(other_times_);
  if (other < 0.9 * best) {
    best_ = best_ == 1 ? requested_ : 1;
    switches_++;
    period_ = kShortPeriod;
  } else if (other > 1.2 * best) {
    period_ = std::min(4 * period_, kLongPeriod);  // a clear loss: look again less often
  } else {
    period_ = kShortPeriod;  // close: keep watching
  }
  position_ = 0;
}

}  // namespace foundry
