// foundry train --config FILE --data DIR [--out DIR] [--set section.field=value ...] [--resume DIR] ...
#include <cstdio>
#include <cxxopts.hpp>
#include <filesystem>

#include "cli/commands.h"
#include "engine/parallel.h"
#include "train/trainer.h"

namespace foundry::cli {

int cmd_train(int argc, char** argv) {
  cxxopts::Options options(
      "foundry train",
      "Train a model from a JSON config (configs/*.json, every field documented in configs/README.md)\n"
      "on token files made by `foundry prepare`. Ctrl-C (or SIGTERM) saves a checkpoint and exits; --resume\n"
      "continues. A new run refuses a --out directory that already holds a run (--resume it, or --overwrite).");
  options.add_options()("config", "training config (model + training sections)", cxxopts::value<std::string>())(
      "data", "directory with train.bin and val.bin (from `foundry prepare`)", cxxopts::value<std::string>())(
      "out", "run directory for checkpoints, metrics.jsonl and best/ (default: runs/<config name>)",
      cxxopts::value<std::string>())("set", "override a config field, e.g. --set training.lr=3e-4 (repeatable)",
                                     cxxopts::value<std::vector<std::string>>())(
      "max-steps", "shortcut for --set training.max_steps=N", cxxopts::value<long>())(
      "lr", "shortcut for --set training.lr=X", cxxopts::value<double>())(
      "batch-size", "shortcut for --set training.batch_size=N", cxxopts::value<int>())(
      "seed", "shortcut for --set training.seed=N", cxxopts::value<uint64_t>())(
      "resume", "continue from a checkpoint, or from the newest checkpoint of a run directory",
      cxxopts::value<std::string>())("init-from", "start from a model directory's weights with a fresh optimizer",
                                     cxxopts::value<std::string>())(
      "stop-at", "stop after this step (saving a checkpoint) without changing the schedule", cxxopts::value<long>())(
      "overwrite", "a new run into a run directory moves the old run aside to DIR.old-<date>-<time> (never deletes)")(
      "threads", "threads to use (default: all cores)", cxxopts::value<int>())("quiet", "no progress output")(
      "h,help", "show this help");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  if (args.count("threads")) set_num_threads(args["threads"].as<int>());

  std::vector<std::string> overrides;
  if (args.count("set")) overrides = args["set"].as<std::vector<std::string>>();
  if (args.count("max-steps"))
    overrides.push_back("training.max_steps=" + std::to_string(args["max-steps"].as<long>()));
  if (args.count("lr")) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "training.lr=%.17g", args["lr"].as<double>());
    overrides.push_back(buf);
  }
  if (args.count("batch-size")) {
    overrides.push_back("training.batch_size=" + std::to_string(args["batch-size"].as<int>()));
  }
  if (args.count("seed")) overrides.push_back("training.seed=" + std::to_string(args["seed"].as<uint64_t>()));

  TrainOptions opt;
  if (args.count("data")) opt.data_dir = args["data"].as<std::string>();
  if (args.count("init-from")) opt.init_from = args["init-from"].as<std::string>();
  if (args.count("stop-at")) opt.stop_at = args["stop-at"].as<long>();
  opt.quiet = args.count("quiet") > 0;
  opt.overwrite = args.count("overwrite") > 0;
  TrainConfig config;
  if (args.count("resume")) {
    if (args.count("config")) {
      std::fprintf(stderr,
                   "foundry train: --resume takes the config from the checkpoint; drop --config "
                   "(use --set to change training fields)\n");
      return 2;
    }
    if (opt.overwrite) {
      std::fprintf(stderr, "foundry train: --overwrite is for a new run; --resume continues the run in place\n");
      return 2;
    }
    opt.resume = args["resume"].as<std::string>();
    config = resume_config(opt.resume, overrides);
    // By default a resumed run keeps writing into the run directory it came from.
    namespace fs = std::filesystem;
    const fs::path dir = fs::path(opt.resume);
    opt.out_dir = fs::exists(dir / "train_state.json") ? dir.parent_path().string() : dir.string();
    if (opt.out_dir.empty()) opt.out_dir = ".";
  } else {
    if (!args.count("config") || !args.count("data")) {
      std::fprintf(stderr, "foundry train: --config and --data are required (or --resume DIR)\n\n%s\n",
                   options.help().c_str());
      return 2;
    }
    const std::string path = args["config"].as<std::string>();
    config = load_train_config(path, overrides);
    opt.out_dir = "runs/" + std::filesystem::path(path).stem().string();
  }
  if (args.count("out")) opt.out_dir = args["out"].as<std::string>();
  train(config, opt);  // its last lines name the checkpoint, best/ and model/
  return 0;
}

}  // namespace foundry::cli
