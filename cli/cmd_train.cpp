// foundry train --config FILE --data DIR [--out DIR] [--set section.field=value ...] [--resume DIR] ...
#include <algorithm>
#include <cstdio>
#include <cxxopts.hpp>
#include <filesystem>

#include <memory>

#include "cli/commands.h"
#include "cli/options.h"
#include "engine/parallel.h"
#include "train/trainer.h"
#ifdef FOUNDRY_HAVE_MPI
#include "dist/mpi_reducer.h"
#endif

namespace foundry::cli {

namespace {

struct ParallelOptions {
  bool shard_optimizer = false;
  double bucket_mb = 4.0;
  double timeout_s = 300.0;
  std::string timeline;
  bool threads_given = false;
};

#ifdef FOUNDRY_HAVE_MPI
// Runs train() on every rank of an MPI job: rank 0 prints and writes, the others stay quiet. An
// error on any rank ends the whole job (MPI_Abort) instead of leaving the others waiting.
int train_on_ranks(const TrainConfig& config, TrainOptions opt, const ParallelOptions& p) {
  MpiSession session(nullptr, nullptr);
  try {
    if (!p.threads_given) {
      // The cores of one machine are shared by the ranks on it: by default each takes its part.
      MPI_Comm local;
      int local_ranks = 1;
      MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
      MPI_Comm_size(local, &local_ranks);
      MPI_Comm_free(&local);
      set_num_threads(std::max(1, num_threads() / local_ranks));
    }
    MpiReducerOptions mo;
    mo.shard_optimizer = p.shard_optimizer;
    mo.bucket_mb = p.bucket_mb;
    mo.timeout_s = p.timeout_s;
    mo.timeline = p.timeline;
    MpiReducer reducer(mo);
    opt.reducer = &reducer;
    if (reducer.rank() != 0) opt.quiet = true;
    train(config, opt);
    reducer.write_timeline();
    if (!opt.quiet) {
      std::printf("%s", reducer.summary().c_str());
      if (!p.timeline.empty())
        std::printf("timeline: %s (open it in chrome://tracing or ui.perfetto.dev)\n", p.timeline.c_str());
    }
    return 0;
  } catch (const std::exception& e) {
    if (session.size() == 1) throw;  // one rank: the usual error and exit code
    session.abort("foundry train: error on rank " + std::to_string(session.rank()) + " of " +
                  std::to_string(session.size()) + ": " + e.what() + "\nstopping every rank of the job");
  }
}
#endif

}  // namespace

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
      "threads", "threads to use (default: all cores; under mpirun, the cores shared out among the ranks)",
      cxxopts::value<int>())("quiet", "no progress output")(
      "shard-optimizer", "under mpirun: each rank keeps AdamW moments for its share of the weights only (ZeRO-1)")(
      "bucket-mb", "under mpirun: gradients travel in buckets of about this many MiB (default 4)",
      cxxopts::value<double>())(
      "timeline", "under mpirun: write a chrome://tracing / Perfetto JSON timeline of backward and the exchanges",
      cxxopts::value<std::string>())(
      "mpi-timeout", "under mpirun: seconds without an answer from another rank before the job stops (default 300)",
      cxxopts::value<double>())("h,help", "show this help");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  if (args.count("threads")) set_num_threads(args["threads"].as<int>());
  ParallelOptions parallel;
  parallel.threads_given = args.count("threads") > 0;
  parallel.shard_optimizer = args.count("shard-optimizer") > 0;
  if (args.count("bucket-mb")) parallel.bucket_mb = args["bucket-mb"].as<double>();
  if (args.count("timeline")) parallel.timeline = args["timeline"].as<std::string>();
  if (args.count("mpi-timeout")) parallel.timeout_s = args["mpi-timeout"].as<double>();
  if (!(parallel.bucket_mb > 0 && parallel.bucket_mb <= 1024)) {
    throw UsageError("--bucket-mb must be between 0 and 1024 MiB (got " + std::to_string(parallel.bucket_mb) + ")");
  }
  if (!(parallel.timeout_s >= 1)) {
    throw UsageError("--mpi-timeout must be at least 1 second (got " + std::to_string(parallel.timeout_s) + ")");
  }
  bool under_mpi = false;
#ifdef FOUNDRY_HAVE_MPI
  under_mpi = MpiSession::launched_by_mpi();
#endif
  const bool mpi_options =
      parallel.shard_optimizer || args.count("bucket-mb") || args.count("timeline") || args.count("mpi-timeout");
  if (mpi_options && !under_mpi) {
#ifdef FOUNDRY_HAVE_MPI
    throw UsageError(
        "--shard-optimizer, --bucket-mb, --timeline and --mpi-timeout are for data-parallel runs: start it with "
        "`mpirun -np N foundry train ...`");
#else
    throw UsageError(
        "--shard-optimizer, --bucket-mb, --timeline and --mpi-timeout are for data-parallel runs, and this foundry "
        "was built without MPI: install libopenmpi-dev and openmpi-bin, reconfigure with -DFOUNDRY_MPI=ON, and "
        "start it with `mpirun -np N foundry train ...`");
#endif
  }

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
#ifdef FOUNDRY_HAVE_MPI
  if (under_mpi) return train_on_ranks(config, opt, parallel);
#endif
  train(config, opt);  // its last lines name the checkpoint, best/ and model/
  return 0;
}

}  // namespace foundry::cli
