#include "train/metrics.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "common/file_io.h"

namespace foundry {

namespace {

// JSON has no NaN or infinity; a diverged loss is logged as null rather than breaking the file.
nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

double as_double(const nlohmann::json& v) {
  return v.is_number() ? v.get<double>() : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

MetricsSeries read_metrics(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument(path + ": cannot open the metrics log");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  MetricsSeries series;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    nlohmann::json j = nlohmann::json::parse(lines[i], nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("kind") || !j.contains("step")) {
      if (i + 1 == lines.size()) break;  // the last line of a run that died mid-write
      throw std::invalid_argument(path + ": line " + std::to_string(i + 1) + " is not a metrics record");
    }
    const std::string kind = j["kind"].is_string() ? j["kind"].get<std::string>() : "";
    const long step = j["step"].is_number_integer() ? j["step"].get<long>() : -1;
    if (kind == "train" && j.contains("loss")) series.train.push_back({step, as_double(j["loss"])});
    if (kind == "eval" && j.contains("val_loss")) series.eval.push_back({step, as_double(j["val_loss"])});
  }
  return series;
}

void truncate_metrics(const std::string& path, long step) {
  std::ifstream in(path);
  if (!in) return;  // no log yet: nothing to trim
  std::ostringstream kept;
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("step") || !j["step"].is_number_integer()) continue;
    if (j["step"].get<long>() <= step) kept << line << "\n";
  }
  in.close();
  write_file_atomic(path, kept.str());
}

MetricsWriter::MetricsWriter(const std::string& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "a");
  if (!file_) throw std::runtime_error(path + ": cannot open the metrics log for writing");
}

MetricsWriter::~MetricsWriter() {
  if (file_) std::fclose(file_);
}

void MetricsWriter::line(const std::string& text) {
  if (!file_) return;
  // A full disk must stop the run with a clear error, not cut the log short in silence.
  errno = 0;
  if (std::fputs(text.c_str(), file_) < 0 || std::fputc('\n', file_) == EOF || std::fflush(file_) != 0) {
    const int err = errno;
    throw std::runtime_error(path_ + ": writing the metrics log failed: " + (err ? std::strerror(err) : "write error"));
  }
}

void MetricsWriter::train(long step, double loss, double lr, double grad_norm, long tokens, double tokens_per_s,
                          double elapsed_s) {
  nlohmann::json j = {{"kind", "train"},
                      {"step", step},
                      {"loss", number(loss)},
                      {"lr", lr},
                      {"grad_norm", number(grad_norm)},
                      {"tokens", tokens},
                      {"tokens_per_s", number(tokens_per_s)},
                      {"elapsed_s", elapsed_s}};
  line(j.dump());
}

void MetricsWriter::eval(long step, double val_loss, double train_loss, double best_val_loss) {
  nlohmann::json j = {{"kind", "eval"},
                      {"step", step},
                      {"val_loss", number(val_loss)},
                      {"train_loss", number(train_loss)},
                      {"best_val_loss", number(best_val_loss)}};
  line(j.dump());
}

}  // namespace foundry
