#include "train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "common/file_io.h"
#include "engine/matmul.h"
#include "engine/parallel.h"
#include "model/memory.h"
#include "model/model_io.h"
#include "tokenizer/tokenizer.h"
#include "train/baselines.h"
#include "train/checkpoint.h"
#include "train/grad_clip.h"
#include "train/lr_schedule.h"
#include "train/metrics.h"
#include "train/prepare.h"
#include "train/stop_signal.h"
#include "train/token_file.h"

namespace fs = std::filesystem;

namespace foundry {

namespace {

std::string human_count(double v) {
  char buf[32];
  if (v >= 1e9) std::snprintf(buf, sizeof buf, "%.2fB", v / 1e9);
  else if (v >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1e3) std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

std::string human_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e9) return "?";  // 1e9 s: 31 years, not an estimate
  char buf[32];
  const long s = std::lround(seconds);
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

void check_ids(const std::vector<int>& tokens, int vocab_size, const std::string& path) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] >= vocab_size) {
      throw std::invalid_argument(
          path + ": token " + std::to_string(i) + " has id " + std::to_string(tokens[i]) +
          " but model.vocab_size = " + std::to_string(vocab_size) +
          " (use a config whose vocab_size matches the tokenizer, e.g. --set model.vocab_size=N)");
    }
  }
}

// A damaged checkpoint (a crash while writing it, a full disk): rethrows `error` with the newest
// older checkpoint of the same run directory that loads, and how to resume from it.
[[noreturn]] void throw_naming_an_intact_checkpoint(const std::string& dir, const std::exception& error) {
  const std::string damaged = fs::path(dir).lexically_normal().string();
  const std::vector<std::string> all = list_checkpoints(fs::path(damaged).parent_path().string());
  std::string intact;
  for (auto it = all.rbegin(); it != all.rend() && intact.empty(); ++it) {
    if (fs::path(*it).filename() >= fs::path(damaged).filename()) continue;  // only older ones
    try {
      load_checkpoint(*it);
      intact = *it;
    } catch (const std::invalid_argument&) {
    }
  }
  if (intact.empty()) {
    throw std::invalid_argument(std::string(error.what()) + "\nThe checkpoint " + damaged +
                                " is damaged and no older checkpoint beside it is intact.");
  }
  throw std::invalid_argument(std::string(error.what()) + "\nThe checkpoint " + damaged +
                              " is damaged. The older checkpoint " + intact + " is intact: resume from it with " +
                              "`foundry train --resume " + intact + "` (and move " + damaged +
                              " out of the run directory, so that a later --resume does not pick it again).");
}

// Everything one train() call works with. It stays where it is built: the loader points at
// train_tokens and every backward function at the tape.
struct Run {
  Run(const TrainConfig& config, const TrainOptions& opt)
      : config(config), tc(this->config.training), opt(opt), reducer(opt.reducer ? *opt.reducer : local_reducer()) {}
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  const TrainConfig config;
  const TrainingSection& tc;
  const TrainOptions& opt;
  GradientReducer& reducer;  // one process, or this rank's share of a data-parallel run
  Model model;
  TrainState state;  // what a checkpoint saves: step, optimizer, data loader, early stopping
  std::vector<int> train_tokens, val_tokens;
  int eval_batches = 1;
  std::unique_ptr<Tokenizer> tokenizer;  // travels with every saved model, when the data has one
  Tape tape;
  Batch batch, eval_batch;
  std::unique_ptr<MetricsWriter> metrics;  // opened once the run directory is ready
  TrainResult result;
  std::string last_good_checkpoint;  // written by this run or resumed from
  long last_saved = -1;
  // progress: speed over the last log interval
  std::chrono::steady_clock::time_point start, window_start;
  long window_tokens = 0;
  double tokens_per_s = 0;

  long tokens_per_step() const { return static_cast<long>(tc.batch_size) * tc.seq_len * tc.grad_accum; }
  bool tty() const { return !opt.quiet && isatty(fileno(opt.out)); }
  bool writes_files() const { return reducer.rank() == 0; }  // rank 0 writes for all ranks
  template <typename... Args>
  void say(const char* format, Args... args) const {
    if (opt.quiet) return;
    // Without arguments the text is printed as it is (clang rejects a non-literal format alone).
    if constexpr (sizeof...(args) == 0) std::fputs(format, opt.out);
    else std::fprintf(opt.out, format, args...);
  }
};

// ---- start-up: a checkpoint, a model's weights, or a fresh initialization ----

// The fields of two model configs that differ, as "model.dim is 128 in A but 64 in B".
std::string model_differences(const ModelConfig& a, const std::string& a_name, const ModelConfig& b,
                              const std::string& b_name) {
  const nlohmann::json ja = to_json(a), jb = to_json(b);
  std::string out;
  for (auto it = ja.begin(); it != ja.end(); ++it) {
    const nlohmann::json other = jb.contains(it.key()) ? jb.at(it.key()) : nlohmann::json();
    if (it.value() == other) continue;
    out += (out.empty() ? "" : "; ") + std::string("model.") + it.key() + " is " + it.value().dump() + " in " + a_name +
           " but " + other.dump() + " in " + b_name;
  }
  return out;
}

// A model directory plus training.json, the context length it was trained at: `foundry eval`
// scores with that window by default, so its loss is the one training printed (infer/evaluate.h).
// Written beside the real name and published in one rename, so a kill during the save leaves the
// previous best/ (or model/) whole.
void save_model_with_context(const Model& model, const std::string& dir, const Tokenizer* tokenizer, int seq_len) {
  const std::string tmp = dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  save_model_with_tokenizer(model, tmp, tokenizer);
  write_file_atomic((fs::path(tmp) / "training.json").string(), nlohmann::json{{"seq_len", seq_len}}.dump(2) + "\n");
  publish_directory(tmp, dir);
}

// Is this directory a training run (what train() writes into --out)?
bool looks_like_run_directory(const fs::path& dir) {
  if (fs::exists(dir / "metrics.jsonl") || fs::exists(dir / "best") || fs::exists(dir / "model")) return true;
  return !list_checkpoints(dir.string()).empty();
}

// "<dir>.old-20261130-153700", or with "-2", "-3", ... when that exists too.
std::string aside_name(const std::string& dir) {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &utc);
  std::string name = fs::path(dir).lexically_normal().string();
  while (!name.empty() && name.back() == '/') name.pop_back();
  name += std::string(".old-") + stamp;
  std::string candidate = name;
  for (int k = 2; fs::exists(candidate); ++k) candidate = name + "-" + std::to_string(k);
  return candidate;
}

void check_options(const Run& run) {
  validate(run.config, "training config");
  const std::string& out_dir = run.opt.out_dir;
  if (out_dir.empty()) throw std::invalid_argument("train: no output directory given (--out)");
  if (!run.opt.resume.empty() && !run.opt.init_from.empty()) {
    throw std::invalid_argument("train: --resume and --init-from exclude each other");
  }
  // Each rank computes grad_accum / N micro-batches of every step; other splits would change the
  // step's sum and so the result (train/grad_reducer.h).
  const int ranks = run.reducer.ranks(), accum = run.config.training.grad_accum;
  if (accum % ranks != 0) {
    throw std::invalid_argument(
        "train: training.grad_accum = " + std::to_string(accum) + " is not a multiple of the " + std::to_string(ranks) +
        " ranks: every rank computes grad_accum / ranks micro-batches of each step. " +
        (run.opt.resume.empty()
             ? "Set training.grad_accum to a multiple of " + std::to_string(ranks) +
                   " (divide training.batch_size by as much to keep the tokens per step)"
             : "This run has grad_accum " + std::to_string(accum) +
                   ": resume it on a number of ranks that divides it (one process always can); changing "
                   "grad_accum would change the steps the rest of the run takes") +
        ".");
  }
  // A new run never writes into another run's directory: its metrics, best/ and checkpoints would
  // mix with the new ones (and a later --resume would pick the wrong checkpoint).
  std::error_code ec;
  if (run.opt.resume.empty() && fs::is_directory(out_dir, ec) && !fs::is_empty(out_dir, ec)) {
    if (!looks_like_run_directory(out_dir)) {
      throw std::invalid_argument("train: the output directory " + out_dir +
                                  " is not empty and does not hold a training run; choose another --out");
    }
    if (!run.opt.overwrite) {
      throw std::invalid_argument("train: " + out_dir + " already holds a training run. Continue it with `foundry " +
                                  "train --resume " + out_dir + "`, choose another --out, or pass --overwrite to " +
                                  "move the old run aside (to " + out_dir + ".old-<date>-<time>) and start afresh");
    }
  }
}

Checkpoint load_checkpoint_or_name_an_intact_one(const std::string& dir) {
  try {
    return load_checkpoint(dir);
  } catch (const std::invalid_argument& e) {
    throw_naming_an_intact_checkpoint(dir, e);
  }
}

void start_from_checkpoint(Run& run) {
  const std::string dir = resolve_checkpoint(run.opt.resume);
  Checkpoint ck = load_checkpoint_or_name_an_intact_one(dir);
  if (to_json(ck.model.config) != to_json(run.config.model)) {
    throw std::invalid_argument(dir + ": the checkpoint's model differs from the config's model section: " +
                                model_differences(ck.model.config, "the checkpoint", run.config.model, "the config"));
  }
  run.model = std::move(ck.model);
  run.state = std::move(ck.state);
  run.last_good_checkpoint = dir;
  run.say("resuming from %s at step %ld\n", dir.c_str(), run.state.step);
}

void start_from_weights(Run& run) {
  run.model = load_model(run.opt.init_from);
  if (to_json(run.model.config) != to_json(run.config.model)) {
    throw std::invalid_argument("--init-from " + run.opt.init_from + ": the weights are of another architecture: " +
                                model_differences(run.model.config, run.opt.init_from + "/config.json",
                                                  run.config.model, "the training config") +
                                " (the config's model section must describe the model it starts from)");
  }
  run.say("starting from the weights of %s with a fresh optimizer\n", run.opt.init_from.c_str());
}

void start_fresh(Run& run) {
  run.model = make_model(run.config.model);
  Rng init_rng(run.tc.seed);  // weights from Rng(seed); batches from Rng(seed + 1)
  init_weights(run.model, init_rng);
}

void start(Run& run) {
  const TrainingSection& tc = run.tc;
  if (!run.opt.resume.empty()) {
    start_from_checkpoint(run);
  } else {
    if (!run.opt.init_from.empty()) start_from_weights(run);
    else start_fresh(run);
    run.state.optimizer = make_adamw(run.model.parameters());
    run.state.loader.rng = Rng(tc.seed + 1);
  }
  run.state.config = run.config;  // overrides given when resuming (max_steps, ...) take effect
  if (!run.opt.data_dir.empty()) run.state.data_dir = run.opt.data_dir;
  if (run.state.data_dir.empty()) throw std::invalid_argument("train: no data directory given (--data)");
}

// The token files, the training loader (keeping a resumed run's position) and the tokenizer.
void load_data(Run& run) {
  const TrainingSection& tc = run.tc;
  const int B = tc.batch_size, T = tc.seq_len;
  const std::string train_path = (fs::path(run.state.data_dir) / "train.bin").string();
  const std::string val_path = (fs::path(run.state.data_dir) / "val.bin").string();
  run.train_tokens = load_tokens(train_path);
  run.val_tokens = load_tokens(val_path);
  check_ids(run.train_tokens, run.config.model.vocab_size, train_path);
  check_ids(run.val_tokens, run.config.model.vocab_size, val_path);
  attach_tokens(run.state.loader, run.train_tokens, B, T, batch_order_from_string(tc.batch_order, "training.sampling"),
                train_path);
  make_data_loader(run.val_tokens, B, T, BatchOrder::sequential, 0, val_path);  // checks val is long enough
  // Evaluating more batches than the split holds would only repeat tokens.
  run.eval_batches = static_cast<int>(
      std::max<size_t>(1, std::min<size_t>(tc.eval_batches, run.val_tokens.size() / (static_cast<size_t>(B) * T))));
  // The tokenizer `foundry prepare` stored next to the tokens travels with every saved model.
  // Model, tokenizer and token files must agree on the vocabulary before step 0: a model larger
  // than its tokenizer trains rows no id reaches and later samples ids nothing can decode.
  const fs::path data_path(run.state.data_dir);
  const int vocab = run.config.model.vocab_size;
  check_token_data(run.state.data_dir, train_path, vocab, "the config's model section", run.state.data_dir);
  if (fs::exists(data_path / "tokenizer.json") || fs::exists(data_path / "tokenizer.bin")) {
    run.tokenizer = load_tokenizer(run.state.data_dir);
    const char* file = fs::exists(data_path / "tokenizer.json") ? "tokenizer.json" : "tokenizer.bin";
    check_model_tokenizer_vocab(vocab, "the config's model section", run.tokenizer->vocab_size(),
                                (data_path / file).string());
  }
}

void open_run_directory(Run& run) {
  if (!run.writes_files()) return;
  const std::string& out_dir = run.opt.out_dir;
  std::error_code ec;
  if (run.opt.resume.empty() && run.opt.overwrite && fs::is_directory(out_dir, ec) && !fs::is_empty(out_dir, ec)) {
    const std::string aside = aside_name(out_dir);
    fs::rename(out_dir, aside);  // check_options made sure it is a run directory
    run.say("moved the previous run in %s aside to %s\n", out_dir.c_str(), aside.c_str());
  }
  fs::create_directories(out_dir);
  remove_leftovers(out_dir);  // *.tmp, *.old of an interrupted save or delete
  const std::string metrics_path = (fs::path(out_dir) / "metrics.jsonl").string();
  if (!run.opt.resume.empty()) {
    truncate_metrics(metrics_path, run.state.step);
  } else {
    std::error_code ec;
    fs::remove(metrics_path, ec);  // a new run starts a new log
  }
  write_file_atomic((fs::path(out_dir) / "config.json").string(), to_json(run.config).dump(2) + "\n");
  run.metrics = std::make_unique<MetricsWriter>(metrics_path);
}

// ---- the header: what is about to happen ----

void print_header(const Run& run) {
  const TrainConfig& config = run.config;
  run.say("model: %s parameters (%zu)\n", human_count(static_cast<double>(run.model.num_parameters())).c_str(),
          run.model.num_parameters());
  run.say("memory: about %.0f MiB (weights, gradients, AdamW moments, activations of one micro-batch)\n",
          estimate_training_bytes(config) / (1024.0 * 1024.0));
  run.say("data: %s train tokens, %s validation tokens from %s; %ld tokens per step\n",
          human_count(static_cast<double>(run.train_tokens.size())).c_str(),
          human_count(static_cast<double>(run.val_tokens.size())).c_str(), run.state.data_dir.c_str(),
          run.tokens_per_step());
  run.say("baselines: uniform %.3f, unigram %.3f (validation loss, nats per token)\n",
          uniform_loss(config.model.vocab_size),
          unigram_loss(run.train_tokens, run.val_tokens, config.model.vocab_size));
  run.say("precision: %s\n", matmul_precision_description().c_str());
  if (run.reducer.ranks() > 1) {
    run.say(
        "data parallel: %d ranks, %d micro-batches of %d rows each per step; AdamW moments: %.1f MiB on each "
        "rank\n",
        run.reducer.ranks(), config.training.grad_accum / run.reducer.ranks(), config.training.batch_size,
        static_cast<double>(run.reducer.optimizer_bytes(run.state.optimizer)) / (1024.0 * 1024.0));
  }
  run.say("threads: %d; output: %s\nsettings:\n", num_threads(), run.opt.out_dir.c_str());
  if (!run.opt.quiet) {
    for (const std::string& line : settings_lines(config)) std::fprintf(run.opt.out, "%s\n", line.c_str());
    std::fflush(run.opt.out);
  }
}

// ---- the loop's parts ----

void save(Run& run) {
  const std::string dir = checkpoint_path(run.opt.out_dir, run.state.step);
  run.reducer.gather_optimizer_state(run.state.optimizer);  // every rank takes part; rank 0 gets all moments
  if (run.writes_files()) {
    save_checkpoint(dir, run.model, run.state, run.tokenizer.get());
    prune_checkpoints(run.opt.out_dir, run.tc.keep_checkpoints);
  }
  run.reducer.keep_own_share(run.state.optimizer);
  run.last_saved = run.state.step;
  run.result.last_checkpoint = dir;
  run.last_good_checkpoint = dir;
}

// Evaluates, logs, keeps best/ and the early-stopping count; returns true when patience ran out.
bool evaluate_and_track(Run& run, double train_loss) {
  TrainState& state = run.state;
  const double val = validation_loss(run.model, run.tape, run.val_tokens, run.tc.batch_size, run.tc.seq_len,
                                     run.eval_batches, run.eval_batch, run.reducer, run.tc.recompute);
  run.result.last_val_loss = val;
  bool out_of_patience = false;
  if (val < state.best_val_loss) {
    state.best_val_loss = val;
    state.evals_without_improvement = 0;
    if (run.writes_files())
      save_model_with_context(run.model, (fs::path(run.opt.out_dir) / "best").string(), run.tokenizer.get(),
                              run.tc.seq_len);
  } else {
    state.evals_without_improvement++;
    out_of_patience = run.tc.patience > 0 && state.evals_without_improvement >= run.tc.patience;
  }
  run.result.best_val_loss = state.best_val_loss;
  if (run.metrics) run.metrics->eval(state.step, val, train_loss, state.best_val_loss);
  if (run.tty()) run.say("\n");
  run.say("eval step %ld: val loss %.4f (best %.4f%s)\n", state.step, val, state.best_val_loss,
          state.evals_without_improvement == 0 ? ", new best" : "");
  return out_of_patience;
}

// A step whose loss or gradient norm is not finite: logged, then the run stops with the weights
// and the checkpoints of the last good step.
[[noreturn]] void stop_on_non_finite(Run& run, const StepResult& s) {
  const long step = run.state.step + 1;
  if (run.metrics) run.metrics->train(step, s.loss, s.lr, s.grad_norm, run.state.tokens_seen, 0, 0);
  if (run.tty()) run.say("\n");
  const bool loss_ok = std::isfinite(s.loss);
  throw std::runtime_error(
      "step " + std::to_string(step) + ": the " + (loss_ok ? "gradient norm" : "loss") + " is " +
      std::to_string(loss_ok ? s.grad_norm : s.loss) + "; training stopped before updating the weights. " +
      (run.last_good_checkpoint.empty() ? std::string("No checkpoint was written in this session")
                                        : "The last good checkpoint is " + run.last_good_checkpoint) +
      ". Try a lower training.lr or training.grad_clip.");
}

// The metrics line of every step, and a progress line every log_interval steps with the speed
// over the interval and the time left at that speed.
void log_progress(Run& run, const StepResult& s) {
  const TrainState& state = run.state;
  const TrainingSection& tc = run.tc;
  run.window_tokens += run.tokens_per_step();
  const auto now = std::chrono::steady_clock::now();
  const double window_s = std::chrono::duration<double>(now - run.window_start).count();
  if (window_s > 0) run.tokens_per_s = run.window_tokens / window_s;
  const double elapsed = std::chrono::duration<double>(now - run.start).count();
  if (run.metrics)
    run.metrics->train(state.step, s.loss, s.lr, s.grad_norm, state.tokens_seen, run.tokens_per_s, elapsed);
  if (state.step % tc.log_interval == 0 || state.step == tc.max_steps || state.step == 1) {
    const double eta =
        run.tokens_per_s > 0 ? (tc.max_steps - state.step) * run.tokens_per_step() / run.tokens_per_s : NAN;
    // A terminal gets one line rewritten in place (\r); a log file gets one line per report.
    const bool tty = run.tty();
    run.say("%sstep %ld/%ld | loss %.4f | lr %.2e | norm %.3f | %s tok/s | ETA %s%s", tty ? "\r" : "", state.step,
            tc.max_steps, s.loss, s.lr, s.grad_norm, human_count(run.tokens_per_s).c_str(), human_duration(eta).c_str(),
            tty ? "   " : "\n");
    if (!run.opt.quiet) std::fflush(run.opt.out);
    run.window_start = now;
    run.window_tokens = 0;
  }
}

// Why the loop should stop after this step, or "" to go on. Early stopping is decided by the
// evaluation.
std::string stop_reason(Run& run) {
  // A signal may reach one rank only, or the ranks at different steps: they stop together.
  if (run.reducer.any(stop_requested())) return "interrupted";
  if (run.opt.stop_at > 0 && run.state.step >= run.opt.stop_at) return "stop_at";
  return "";
}

void finish(Run& run) {
  const long step = run.state.step;
  const std::string& reason = run.result.stop_reason;
  if (run.tty()) run.say("\n");
  if (reason == "interrupted") run.say("interrupted at step %ld: saving a checkpoint\n", step);
  if (run.last_saved != step) save(run);
  // The weights as the run ended, as a plain model directory for `foundry generate`.
  const std::string model_dir = (fs::path(run.opt.out_dir) / "model").string();
  const std::string best_dir = (fs::path(run.opt.out_dir) / "best").string();
  if (run.writes_files()) save_model_with_context(run.model, model_dir, run.tokenizer.get(), run.tc.seq_len);
  run.result.step = step;
  run.say("done (%s) at step %ld; checkpoint %s\n", reason.c_str(), step, run.result.last_checkpoint.c_str());
  // Two models: no evaluation runs at a stop, so the current weights may be better or worse than
  // the best evaluated ones.
  const int width = static_cast<int>(model_dir.size());  // "best" is shorter than "model"
  if (std::isfinite(run.state.best_val_loss)) {
    run.say("  %-*s  the best evaluated model (validation loss %.4f)\n", width, best_dir.c_str(),
            run.state.best_val_loss);
  }
  const bool evaluated_now = reason == "max_steps" || reason == "early_stopping" || reason == "target_loss";
  run.say("  %s  the weights at step %ld%s\n", model_dir.c_str(), step,
          evaluated_now ? "" : " (not evaluated: no evaluation runs at a stop)");
  if (step < run.tc.max_steps && reason != "early_stopping" && reason != "target_loss") {
    run.say("  continue with: foundry train --resume %s\n", run.opt.out_dir.c_str());
  }
}

}  // namespace

double estimate_training_bytes(const TrainConfig& config) {
  // model/memory.h counts the tape's buffers for one micro-batch, with the gradient pool training
  // uses (and training.recompute). With grad_accum > 1 one more gradient-sized buffer holds the
  // micro-batches' running sum (LocalReducer, train/grad_reducer.h); nothing else grows with grad_accum.
  const TrainingMemory mem = estimate_training_memory(config.model, config.training.batch_size, config.training.seq_len,
                                                      config.training.recompute);
  const double fold = config.training.grad_accum > 1 ? static_cast<double>(mem.gradient_bytes) : 0.0;
  return static_cast<double>(mem.training_bytes()) + fold;
}

AdamWSettings adamw_settings(const TrainingSection& tc) { return {tc.beta1, tc.beta2, tc.eps, tc.weight_decay}; }

// ANCHOR: training_step
StepResult training_step(Model& model, AdamW& optimizer, Tape& tape, DataLoader& loader, Batch& batch,
                         const TrainingSection& tc, long step, GradientReducer& reducer, int loss_block_rows) {
  // 1-2. Micro-batches, in rounds of one per rank. Each gradient starts from zero; the reducer
  // folds them into the step's sum in micro-batch order, whatever the number of ranks.
  const int rounds = tc.grad_accum / reducer.ranks();
  double loss_sum = 0.0;
  for (int round = 0; round < rounds; ++round) {
    model.zero_grad();                           // backward adds into the gradients
    next_batch_of_rank(loader, batch, reducer);  // this rank's share of the global batch
    tape.clear();  // keeps every buffer: the same ops with the same shapes run each micro-batch
    ForwardOptions forward;
    forward.recompute = tc.recompute;  // training.recompute: activations for one block at a time
    forward.loss.block_rows = loss_block_rows;
    Var loss = model_loss(tape, model, batch.inputs, batch.targets, loader.B, loader.T, forward);
    const double mine = tape.value(loss)[0];
    reducer.backward(model, tape, loss, round, rounds);  // may start sending gradients while it runs
    reducer.reduce(model, round, rounds);
    for (double l : reducer.all_gather(mine)) loss_sum += l;  // in micro-batch order
  }
  std::vector<NamedTensor> params = model.parameters();
  if (tc.grad_accum > 1) {
    // The sum of grad_accum mean losses' gradients; divide to get the gradient of their mean.
    const real inv = static_cast<real>(1.0 / tc.grad_accum);
    for (NamedTensor& p : params) {
      for (real& g : p.grad->data) g *= inv;
    }
  }
  StepResult r;
  r.loss = loss_sum / tc.grad_accum;
  // 3. Clip the global gradient norm (the norm before clipping is reported).
  r.grad_norm = clip_grad_norm(params, tc.grad_clip);
  r.lr = learning_rate(LrSchedule{tc.lr, tc.min_lr, tc.warmup_steps, tc.max_steps}, step);
  // 4. A NaN or infinity would be written into every weight and both moments: stop before that.
  r.updated = std::isfinite(r.loss) && std::isfinite(r.grad_norm);
  // 5. The update.
  if (r.updated) reducer.optimizer_step(optimizer, params, r.lr, adamw_settings(tc));
  return r;
}
// ANCHOR_END: training_step

// ANCHOR: validation_loss
double validation_loss(Model& model, Tape& tape, const std::vector<int>& tokens, int B, int T, int batches,
                       Batch& batch, GradientReducer& reducer, bool recompute) {
  ForwardOptions forward;
  forward.recompute = recompute;
  forward.loss.with_grad = false;  // no backward follows: the loss skips its gradient work
  double total = 0.0;
  const int N = reducer.ranks();
  for (int first = 0; first < batches; first += N) {
    const int k = first + reducer.rank();  // this rank's batch of the round (none past the end)
    double mine = 0.0;
    if (k < batches) {
      // The same sequential batches every time, so two evaluations differ only by the weights.
      sequential_batch(tokens, static_cast<uint64_t>(k), B, T, batch);
      tape.clear();
      Var loss = model_loss(tape, model, batch.inputs, batch.targets, B, T, forward);
      mine = tape.value(loss)[0];  // no backward: evaluation only reads the loss
    }
    const std::vector<double> losses = reducer.all_gather(mine);
    for (int j = 0; j < N && first + j < batches; ++j) total += losses[j];  // in batch order
  }
  return total / batches;
}
// ANCHOR_END: validation_loss

TrainConfig resume_config(const std::string& checkpoint_or_run, const std::vector<std::string>& overrides) {
  const std::string dir = resolve_checkpoint(checkpoint_or_run);
  const std::string state_path = (fs::path(dir) / "train_state.json").string();
  nlohmann::json state;
  try {
    state = read_json_file(state_path);
  } catch (const std::invalid_argument& e) {
    throw_naming_an_intact_checkpoint(dir, e);
  }
  if (!state.is_object() || !state.contains("config")) {
    throw std::invalid_argument(state_path + ": missing field 'config'");
  }
  nlohmann::json j = state["config"];
  for (const std::string& o : overrides) {
    if (o.rfind("model.", 0) == 0) {
      throw std::invalid_argument("override '" + o +
                                  "': the model section cannot change when resuming (the checkpoint's weights fix "
                                  "the architecture); use --init-from for a new run from these weights");
    }
    apply_override(j, o);
  }
  return train_config_from_json(j, state_path + ": config");
}

// ANCHOR: run_loop
TrainResult train(const TrainConfig& config, const TrainOptions& opt) {
  Run run(config, opt);
  check_options(run);
  // The matrix products of this run (engine/matmul.h); the previous precision comes back when
  // train() returns, so a program that trains twice gets what each config asks for.
  const MatmulPrecisionScope precision(parse_matmul_precision(config.training.precision));
  run.reducer.any(false);  // every rank has looked at the run directory before rank 0 changes it
  start(run);
  run.reducer.keep_own_share(run.state.optimizer);  // a sharded optimizer drops the others' moments
  load_data(run);
  open_run_directory(run);
  print_header(run);

  TrainState& state = run.state;
  const TrainingSection& tc = run.tc;
  run.tape.set_reuse_grads(true);  // op gradients live only during backward (engine/tape.h): half the memory
  run.result.best_val_loss = state.best_val_loss;
  StopSignalGuard stop_signals;
  run.start = run.window_start = std::chrono::steady_clock::now();
  if (state.step == 0 && tc.max_steps > 0) evaluate_and_track(run, NAN);  // the loss before any training
  run.result.stop_reason = "max_steps";
  while (state.step < tc.max_steps) {
    const StepResult s =
        training_step(run.model, state.optimizer, run.tape, state.loader, run.batch, tc, state.step, run.reducer);
    if (!s.updated) stop_on_non_finite(run, s);
    state.step++;
    state.tokens_seen += run.tokens_per_step();
    run.result.last_loss = s.loss;
    log_progress(run, s);
    if (state.step % tc.eval_interval == 0 || state.step == tc.max_steps) {
      if (evaluate_and_track(run, s.loss)) {
        run.result.stop_reason = "early_stopping";
        run.say("early stopping: no improvement in %d evaluations\n", tc.patience);
        break;
      }
      if (tc.target_loss > 0 && run.result.last_val_loss <= tc.target_loss) {
        run.result.stop_reason = "target_loss";
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - run.start).count();
        run.say("target reached: val loss %.4f <= %.4f at step %ld, %.1f s after training started\n",
                run.result.last_val_loss, tc.target_loss, state.step, seconds);
        break;
      }
    }
    if (state.step % tc.checkpoint_interval == 0) save(run);
    const std::string reason = stop_reason(run);
    if (!reason.empty()) {
      run.result.stop_reason = reason;
      break;
    }
  }
  finish(run);
  return run.result;
}
// ANCHOR_END: run_loop

}  // namespace foundry
