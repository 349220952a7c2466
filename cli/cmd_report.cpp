// foundry report RUN_DIR [RUN_DIR ...] --out FILE.md   one page for a whole pipeline
#include <cstdio>
#include <cxxopts.hpp>
#include <filesystem>

#include "cli/commands.h"
#include "cli/options.h"
#include "train/report.h"

namespace foundry::cli {

int cmd_report(int argc, char** argv) {
  cxxopts::Options options(
      "foundry report",
      "One Markdown page for a pipeline, with its loss curves as SVG pictures beside it (train/report.h):\n"
      "the tokenizer, the pretraining curve and settings, the fine-tuning curves, the evaluation table and\n"
      "sample conversations.\n\n"
      "  foundry report runs/quickstart/train runs/chat/sft --out runs/chat/report.md\n\n"
      "Each RUN_DIR is a `foundry train` output (config.json, metrics.jsonl) or a `foundry sft` output\n"
      "(sft.json, metrics.jsonl; its evaluation is read from eval.json, written by\n"
      "`foundry eval-instruct --model RUN_DIR/model ... --json RUN_DIR/eval.json`). The pictures are\n"
      "written next to the page as <name>-pretrain-1.svg, <name>-sft-1.svg, ...; every file atomically.");
  options.add_options()("runs", "run directories", cxxopts::value<std::vector<std::string>>())(
      "out", "the Markdown file to write", cxxopts::value<std::string>())("h,help", "show this help");
  options.parse_positional({"runs"});
  options.positional_help("RUN_DIR [RUN_DIR ...]");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  if (!args.count("runs")) throw UsageError("give one or more run directories (see --help)");
  if (!args.count("out")) throw UsageError("give --out FILE.md, the page to write (see --help)");
  const std::string out = args["out"].as<std::string>();
  if (std::filesystem::path(out).stem().empty() || std::filesystem::is_directory(out))
    throw UsageError("--out " + out + ": expected a file name such as report.md");
  const Report r = write_report(args["runs"].as<std::vector<std::string>>(), out);
  std::printf("%s: %zu runs, %zu pictures\n", out.c_str(), args["runs"].as<std::vector<std::string>>().size(),
              r.pictures.size());
  return 0;
}

}  // namespace foundry::cli
