// foundry plot --metrics RUN_DIR|metrics.jsonl [--out FILE.svg] [--title TEXT]
#include <cstdio>
#include <cxxopts.hpp>
#include <filesystem>

#include "cli/commands.h"
#include "common/file_io.h"
#include "train/plot.h"

namespace foundry::cli {

int cmd_plot(int argc, char** argv) {
  cxxopts::Options options("foundry plot",
                           "Draw the training and validation loss curves of a run as an SVG picture\n"
                           "(open it in any web browser).");
  options.add_options()("metrics", "a run directory or its metrics.jsonl", cxxopts::value<std::string>())(
      "out", "the SVG file to write (default: loss.svg next to the metrics log)", cxxopts::value<std::string>())(
      "title", "title above the plot (default: the run directory's name)", cxxopts::value<std::string>())(
      "h,help", "show this help");
  options.parse_positional({"metrics"});
  options.positional_help("RUN_DIR");
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
  fs::path metrics = args["metrics"].as<std::string>();
  if (fs::is_directory(metrics)) metrics /= "metrics.jsonl";
  const MetricsSeries series = read_metrics(metrics.string());
  const std::string out =
      args.count("out") ? args["out"].as<std::string>() : (metrics.parent_path() / "loss.svg").string();
  const std::string title = args.count("title")
                                ? args["title"].as<std::string>()
                                : "Loss curves: " + fs::absolute(metrics).parent_path().filename().string();
  write_file_atomic(out, loss_curve_svg(series, title));
  std::printf("%s: %zu training step%s, %zu evaluation%s\n", out.c_str(), series.train.size(),
              series.train.size() == 1 ? "" : "s", series.eval.size(), series.eval.size() == 1 ? "" : "s");
  return 0;
}

}  // namespace foundry::cli
