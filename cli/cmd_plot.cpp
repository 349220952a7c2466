// foundry plot --metrics RUN_DIR|metrics.jsonl [--out FILE.svg] [--title TEXT]
// foundry plot RUN_DIR RUN_DIR ... --out FILE.svg   several runs on one picture
#include <cstdio>
#include <cxxopts.hpp>
#include <filesystem>

#include "cli/commands.h"
#include "cli/options.h"
#include "common/file_io.h"
#include "train/plot.h"

namespace foundry::cli {

int cmd_plot(int argc, char** argv) {
  cxxopts::Options options("foundry plot",
                           "Draw the training and validation loss curves of a run as an SVG picture\n"
                           "(open it in any web browser). Given several runs, draw them on one picture\n"
                           "to compare them, each in its own colour (--out is then required):\n\n"
                           "  foundry plot runs/fp32 runs/bf16 --out compare.svg");
  options.add_options()("metrics", "run directories or their metrics.jsonl files",
                        cxxopts::value<std::vector<std::string>>())(
      "out", "the SVG file to write (default for one run: loss.svg next to the metrics log)",
      cxxopts::value<std::string>())("title", "title above the plot (default: the run directories' names)",
                                     cxxopts::value<std::string>())("h,help", "show this help");
  options.parse_positional({"metrics"});
  options.positional_help("RUN_DIR [RUN_DIR ...]");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  if (!args.count("metrics")) {
    std::fprintf(stderr, "foundry plot: give a run directory or metrics log (--metrics)\n\n%s\n",
                 options.help().c_str());
    return 2;
  }
  namespace fs = std::filesystem;
  std::vector<fs::path> logs;
  for (const std::string& m : args["metrics"].as<std::vector<std::string>>()) {
    fs::path metrics = m;
    if (fs::is_directory(metrics)) metrics /= "metrics.jsonl";
    logs.push_back(metrics);
  }
  auto run_name = [](const fs::path& log) { return fs::absolute(log).parent_path().filename().string(); };
  if (logs.size() == 1) {
    const fs::path& metrics = logs[0];
    const MetricsSeries series = read_metrics(metrics.string());
    const std::string out =
        args.count("out") ? args["out"].as<std::string>() : (metrics.parent_path() / "loss.svg").string();
    const std::string title =
        args.count("title") ? args["title"].as<std::string>() : "Loss curves: " + run_name(metrics);
    write_file_atomic(out, loss_curve_svg(series, title));
    std::printf("%s: %zu training step%s, %zu evaluation%s\n", out.c_str(), series.train.size(),
                series.train.size() == 1 ? "" : "s", series.eval.size(), series.eval.size() == 1 ? "" : "s");
    return 0;
  }
  // Several runs: the picture belongs to none of them, so the caller says where it goes.
  if (!args.count("out")) throw UsageError("plotting " + std::to_string(logs.size()) + " runs needs --out FILE.svg");
  std::vector<LabeledSeries> runs;
  std::string names;
  for (const fs::path& log : logs) {
    runs.push_back({run_name(log), read_metrics(log.string())});
    names += (names.empty() ? "" : " vs ") + run_name(log);
  }
  const std::string out = args["out"].as<std::string>();
  write_file_atomic(out, compare_loss_curves_svg(
                             runs, args.count("title") ? args["title"].as<std::string>() : "Loss curves: " + names));
  std::printf("%s: %zu runs\n", out.c_str(), runs.size());
  return 0;
}

}  // namespace foundry::cli
