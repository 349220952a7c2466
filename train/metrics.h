// The metrics log: one JSON object per line (JSON Lines), appended as training runs.
//
//   {"kind":"train","step":10,"loss":5.123,"lr":0.0005,"grad_norm":0.83,"tokens":7680,"tokens_per_s":10234.5,"elapsed_s":0.75}
//   {"kind":"eval","step":100,"val_loss":4.201,"train_loss":4.188,"best_val_loss":4.201}
//
// One "train" line per optimizer step (step = updates done so far, 1 for the first), one "eval"
// line per evaluation. JSON Lines survives a crash (every line already written stays readable),
// can be followed with `tail -f`, and loads in one line of pandas. `foundry plot` draws it.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace foundry {

struct TrainPoint {
  long step;
  double loss;
};
struct EvalPoint {
  long step;
  double val_loss;
};

struct MetricsSeries {
  std::vector<TrainPoint> train;
  std::vector<EvalPoint> eval;
};

// Reads a metrics log. Lines of other kinds are skipped; a malformed line is an error naming
// the file and the line number, except a last line cut short by a crash, which is ignored.
MetricsSeries read_metrics(const std::string& path);

// When a run resumes from a checkpoint at `step`, lines logged after it by the interrupted run
// describe steps that will be redone: keep only lines with step <= `step` (rewritten atomically).
void truncate_metrics(const std::string& path, long step);

// An append-only writer that flushes each line so the log is current even if the run dies.
class MetricsWriter {
 public:
  MetricsWriter() = default;
  explicit MetricsWriter(const std::string& path);  // appends; throws when it cannot open
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  void train(long step, double loss, double lr, double grad_norm, long tokens, double tokens_per_s, double elapsed_s);
  void eval(long step, double val_loss, double train_loss, double best_val_loss);

 private:
  void line(const std::string& text);
  std::FILE* file_ = nullptr;
  std::string path_;
};

}  // namespace foundry
