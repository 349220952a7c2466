#include "train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "engine/parallel.h"
#include "model/atomic_file.h"
#include "model/memory.h"
#include "model/model_io.h"
#include "tokenizer/tokenizer.h"
#include "train/baselines.h"
#include "train/checkpoint.h"
#include "train/grad_clip.h"
#include "train/lr_schedule.h"
#include "train/metrics.h"
#include "train/prepare.h"
#include "train/token_file.h"

namespace fs = std::filesystem;

namespace foundry {

namespace {

volatile std::sig_atomic_t g_stop_requested = 0;

extern "C" void on_sigint(int) {
  g_stop_requested = 1;
  // A second Ctrl-C should kill the program as usual, in case the checkpoint itself hangs.
  std::signal(SIGINT, SIG_DFL);
}

// Installs the SIGINT handler for the lifetime of one train() call.
struct SigintGuard {
  void (*previous)(int);
  SigintGuard() : previous(std::signal(SIGINT, on_sigint)) { g_stop_requested = 0; }
  ~SigintGuard() { std::signal(SIGINT, previous); }
};

std::string human_count(double v) {
  char buf[32];
  if (v >= 1e9) std::snprintf(buf, sizeof buf, "%.2fB", v / 1e9);
  else if (v >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1e3) std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

std::string human_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  char buf[32];
  const long s = static_cast<long>(seconds + 0.5);
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

void check_ids(const std::vector<int>& tokens, int vocab_size, const std::string& path) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] >= vocab_size) {
      throw std::invalid_argument(path + ": token " + std::to_string(i) + " has id " + std::to_string(tokens[i]) +
                                  " but model.vocab_size = " + std::to_string(vocab_size) +
                                  " (use a config whose vocab_size matches the tokenizer, e.g. --set model.vocab_size=N)");
    }
  }
}

// A model directory plus training.json, the context length it was trained at: `foundry eval`
// scores with that window by default, so its loss is the one training printed (infer/evaluate.h).
void save_model_with_context(const Model& model, const std::string& dir, const Tokenizer* tokenizer, int seq_len) {
  save_model(model, dir, tokenizer);
  write_file_atomic((fs::path(dir) / "training.json").string(), nlohmann::json{{"seq_len", seq_len}}.dump(2) + "\n");
}

}  // namespace

void request_stop() { g_stop_requested = 1; }

double estimate_training_bytes(const TrainConfig& config) {
  // model/memory.h counts the tape's buffers for one micro-batch exactly; the optimizer and
  // gradients do not grow with grad_accum (gradients accumulate in place).
  const TrainingMemory mem = estimate_training_memory(config.model, config.training.batch_size, config.training.seq_len);
  return static_cast<double>(mem.total_bytes());
}

// ANCHOR: compute_gradients
StepStats compute_gradients(Model& model, Tape& tape, DataLoader& loader, Batch& batch, int grad_accum,
                            double grad_clip) {
  model.zero_grad();
  double loss_sum = 0.0;
  for (int micro = 0; micro < grad_accum; ++micro) {
    next_batch(loader, batch);
    tape.clear();  // keeps every buffer: the same ops with the same shapes run each micro-batch
    Var loss = model_loss(tape, model, batch.inputs, batch.targets, loader.B, loader.T);
    loss_sum += tape.value(loss)[0];
    tape.backward(loss);  // gradients ADD into model.grads across micro-batches
  }
  std::vector<NamedTensor> params = model.parameters();
  if (grad_accum > 1) {
    // The sum of grad_accum mean losses' gradients; divide to get the gradient of their mean.
    const real inv = static_cast<real>(1.0 / grad_accum);
    for (NamedTensor& p : params) {
      for (real& g : p.grad->data) g *= inv;
    }
  }
  const double norm = clip_grad_norm(params, grad_clip);
  return {loss_sum / grad_accum, norm};
}
// ANCHOR_END: compute_gradients

// ANCHOR: evaluate
double evaluate(Model& model, Tape& tape, const std::vector<int>& tokens, int B, int T, int batches, Batch& batch) {
  double total = 0.0;
  for (int k = 0; k < batches; ++k) {
    // The same sequential batches every time, so two evaluations differ only by the weights.
    sequential_batch(tokens, static_cast<uint64_t>(k), B, T, batch);
    tape.clear();
    Var loss = model_loss(tape, model, batch.inputs, batch.targets, B, T);
    total += tape.value(loss)[0];  // no backward: evaluation only reads the loss
  }
  return total / batches;
}
// ANCHOR_END: evaluate

TrainConfig resume_config(const std::string& checkpoint_or_run, const std::vector<std::string>& overrides) {
  const std::string dir = resolve_checkpoint(checkpoint_or_run);
  const std::string state_path = (fs::path(dir) / "train_state.json").string();
  nlohmann::json state = read_json_file(state_path);
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

TrainResult train(const TrainConfig& config_in, const TrainOptions& opt) {
  const TrainConfig config = config_in;
  validate(config, "training config");
  const TrainingConfig& tc = config.training;
  std::FILE* out = opt.out;
  const bool tty = !opt.quiet && isatty(fileno(out));
  auto say = [&](const char* format, auto... args) {
    if (!opt.quiet) std::fprintf(out, format, args...);
  };
  if (opt.out_dir.empty()) throw std::invalid_argument("train: no output directory given (--out)");
  if (!opt.resume.empty() && !opt.init_from.empty()) {
    throw std::invalid_argument("train: --resume and --init-from exclude each other");
  }

  // ---- the state: a checkpoint, a model's weights, or a fresh initialization ----
  TrainState state;
  Model model;
  if (!opt.resume.empty()) {
    const std::string dir = resolve_checkpoint(opt.resume);
    Checkpoint ck = load_checkpoint(dir);
    if (to_json(ck.model.config) != to_json(config.model)) {
      throw std::invalid_argument(dir + ": the checkpoint's model differs from the config's model section");
    }
    model = std::move(ck.model);
    state = std::move(ck.state);
    say("resuming from %s at step %ld\n", dir.c_str(), state.step);
  } else {
    if (!opt.init_from.empty()) {
      model = load_model(opt.init_from);
      if (to_json(model.config) != to_json(config.model)) {
        throw std::invalid_argument(opt.init_from + "/config.json: the model differs from the config's model section "
                                    "(make the config's model section match it)");
      }
      say("starting from the weights of %s with a fresh optimizer\n", opt.init_from.c_str());
    } else {
      model = make_model(config.model);
      Rng init_rng(tc.seed);  // weights from Rng(seed); batches from Rng(seed + 1)
      init_weights(model, init_rng);
    }
    state.optimizer = make_adamw(model.parameters(), tc.beta1, tc.beta2, tc.eps, tc.weight_decay);
    state.data_rng = Rng(tc.seed + 1);
  }
  state.config = config;  // overrides given when resuming (max_steps, ...) take effect
  state.optimizer.beta1 = tc.beta1;
  state.optimizer.beta2 = tc.beta2;
  state.optimizer.eps = tc.eps;
  state.optimizer.weight_decay = tc.weight_decay;
  if (!opt.data_dir.empty()) state.data_dir = opt.data_dir;
  if (state.data_dir.empty()) throw std::invalid_argument("train: no data directory given (--data)");

  // ---- data ----
  const std::string train_path = (fs::path(state.data_dir) / "train.bin").string();
  const std::string val_path = (fs::path(state.data_dir) / "val.bin").string();
  const std::vector<int> train_tokens = load_tokens(train_path);
  const std::vector<int> val_tokens = load_tokens(val_path);
  check_ids(train_tokens, config.model.vocab_size, train_path);
  check_ids(val_tokens, config.model.vocab_size, val_path);
  const int B = tc.batch_size, T = tc.seq_len;
  DataLoader loader = make_data_loader(train_tokens, B, T, sampling_from_string(tc.sampling, "training.sampling"),
                                       0, train_path);
  loader.rng = state.data_rng;
  loader.next_batch = state.data_next_batch;
  make_data_loader(val_tokens, B, T, Sampling::sequential, 0, val_path);  // checks val is long enough
  // Evaluating more batches than the split holds would only repeat tokens.
  const int eval_batches = static_cast<int>(
      std::max<size_t>(1, std::min<size_t>(tc.eval_batches, val_tokens.size() / (static_cast<size_t>(B) * T))));
  // The tokenizer `foundry prepare` stored next to the tokens travels with every saved model.
  // Model, tokenizer and token files must agree on the vocabulary before step 0: a model larger
  // than its tokenizer trains rows no id reaches and later samples ids nothing can decode.
  std::unique_ptr<Tokenizer> tokenizer;
  const fs::path data_path(state.data_dir);
  check_token_data(state.data_dir, train_path, config.model.vocab_size, "the config's model section", state.data_dir);
  if (fs::exists(data_path / "tokenizer.json") || fs::exists(data_path / "tokenizer.bin")) {
    tokenizer = load_tokenizer(state.data_dir);
    check_model_tokenizer_vocab(config.model.vocab_size, "the config's model section", tokenizer->vocab_size(),
                                (data_path / (fs::exists(data_path / "tokenizer.json") ? "tokenizer.json" : "tokenizer.bin"))
                                    .string());
  }

  // ---- the run directory ----
  fs::create_directories(opt.out_dir);
  const std::string metrics_path = (fs::path(opt.out_dir) / "metrics.jsonl").string();
  if (!opt.resume.empty()) {
    truncate_metrics(metrics_path, state.step);
  } else {
    std::error_code ec;
    fs::remove(metrics_path, ec);  // a new run starts a new log
  }
  write_file_atomic((fs::path(opt.out_dir) / "config.json").string(), to_json(config).dump(2) + "\n");
  MetricsWriter metrics(metrics_path);

  // ---- what is about to happen ----
  const long tokens_per_step = static_cast<long>(B) * T * tc.grad_accum;
  say("model: %s parameters (%zu)\n", human_count(static_cast<double>(model.num_parameters())).c_str(),
      model.num_parameters());
  say("memory: about %.0f MiB (weights, gradients, AdamW moments, activations of one micro-batch)\n",
      estimate_training_bytes(config) / (1024.0 * 1024.0));
  say("data: %s train tokens, %s validation tokens from %s; %ld tokens per step\n",
      human_count(static_cast<double>(train_tokens.size())).c_str(),
      human_count(static_cast<double>(val_tokens.size())).c_str(), state.data_dir.c_str(), tokens_per_step);
  say("baselines: uniform %.3f, unigram %.3f (validation loss, nats per token)\n", uniform_loss(config.model.vocab_size),
      unigram_loss(train_tokens, val_tokens, config.model.vocab_size));
  say("threads: %d; output: %s\nsettings:\n", num_threads(), opt.out_dir.c_str());
  if (!opt.quiet) {
    for (const std::string& line : settings_lines(config)) std::fprintf(out, "%s\n", line.c_str());
    std::fflush(out);
  }

  // ---- the loop ----
  LrSchedule schedule{tc.lr, tc.min_lr, tc.warmup_steps, tc.max_steps};
  Tape tape;
  tape.set_reuse_grads(true);  // op gradients live only during backward (engine/tape.h): half the memory
  Batch batch, eval_batch;
  TrainResult result;
  result.best_val_loss = state.best_val_loss;
  long last_saved = -1;
  auto save = [&](void) {
    state.data_rng = loader.rng;
    state.data_next_batch = loader.next_batch;
    const std::string dir = checkpoint_path(opt.out_dir, state.step);
    save_checkpoint(dir, model, state, tokenizer.get());
    prune_checkpoints(opt.out_dir, tc.keep_checkpoints);
    last_saved = state.step;
    result.last_checkpoint = dir;
  };
  // Evaluates, logs, updates the early-stopping state; returns true when patience ran out.
  auto run_eval = [&](double train_loss) {
    const double val = evaluate(model, tape, val_tokens, B, T, eval_batches, eval_batch);
    result.last_val_loss = val;
    bool out_of_patience = false;
    if (val < state.best_val_loss) {
      state.best_val_loss = val;
      state.evals_without_improvement = 0;
      save_model_with_context(model, (fs::path(opt.out_dir) / "best").string(), tokenizer.get(), T);
    } else {
      state.evals_without_improvement++;
      out_of_patience = tc.patience > 0 && state.evals_without_improvement >= tc.patience;
    }
    result.best_val_loss = state.best_val_loss;
    metrics.eval(state.step, val, train_loss, state.best_val_loss);
    if (tty) say("\n");
    say("eval step %ld: val loss %.4f (best %.4f%s)\n", state.step, val, state.best_val_loss,
        state.evals_without_improvement == 0 ? ", new best" : "");
    return out_of_patience;
  };

  SigintGuard sigint_guard;
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  auto window_start = start;
  long window_tokens = 0;
  double tokens_per_s = 0;
  if (state.step == 0 && tc.max_steps > 0) run_eval(NAN);  // the loss before any training
  result.stop_reason = "max_steps";
  while (state.step < tc.max_steps) {
    // ANCHOR: training_step
    if (opt.before_step) opt.before_step(state.step + 1, model);
    const StepStats stats = compute_gradients(model, tape, loader, batch, tc.grad_accum, tc.grad_clip);
    const double grad_norm = stats.grad_norm;
    const double lr = learning_rate(schedule, state.step);
    if (!std::isfinite(stats.loss) || !std::isfinite(grad_norm)) {
      metrics.train(state.step + 1, stats.loss, lr, grad_norm, state.tokens_seen, 0, 0);
      if (tty) say("\n");
      throw std::runtime_error(
          "step " + std::to_string(state.step + 1) + ": the " + (std::isfinite(stats.loss) ? "gradient norm" : "loss") +
          " is " + std::to_string(std::isfinite(stats.loss) ? grad_norm : stats.loss) +
          "; training stopped before updating the weights. " +
          (result.last_checkpoint.empty()
               ? std::string("No checkpoint was written in this session")
               : "The last good checkpoint is " + result.last_checkpoint) +
          ". Try a lower training.lr or training.grad_clip.");
    }
    adamw_step(state.optimizer, model.parameters(), lr);
    state.step++;
    state.tokens_seen += tokens_per_step;
    // ANCHOR_END: training_step
    result.last_loss = stats.loss;

    // Speed over the last log interval, and the time left at that speed.
    window_tokens += tokens_per_step;
    const auto now = clock::now();
    const double window_s = std::chrono::duration<double>(now - window_start).count();
    if (window_s > 0) tokens_per_s = window_tokens / window_s;
    const double elapsed = std::chrono::duration<double>(now - start).count();
    metrics.train(state.step, stats.loss, lr, stats.grad_norm, state.tokens_seen, tokens_per_s, elapsed);
    if (state.step % tc.log_interval == 0 || state.step == tc.max_steps || state.step == 1) {
      const double eta = tokens_per_s > 0 ? (tc.max_steps - state.step) * tokens_per_step / tokens_per_s : NAN;
      // A terminal gets one line rewritten in place (\r); a log file gets one line per report.
      say("%sstep %ld/%ld | loss %.4f | lr %.2e | norm %.3f | %s tok/s | ETA %s%s", tty ? "\r" : "", state.step,
          tc.max_steps, stats.loss, lr, stats.grad_norm, human_count(tokens_per_s).c_str(),
          human_duration(eta).c_str(), tty ? "   " : "\n");
      if (!opt.quiet) std::fflush(out);
      window_start = now;
      window_tokens = 0;
    }
    if (state.step % tc.eval_interval == 0 || state.step == tc.max_steps) {
      if (run_eval(stats.loss)) {
        result.stop_reason = "early_stopping";
        say("early stopping: no improvement in %d evaluations\n", tc.patience);
        break;
      }
    }
    if (state.step % tc.checkpoint_interval == 0) save();
    if (g_stop_requested) {
      result.stop_reason = "interrupted";
      if (tty) say("\n");
      say("interrupted at step %ld: saving a checkpoint\n", state.step);
      break;
    }
    if (opt.stop_at > 0 && state.step >= opt.stop_at) {
      result.stop_reason = "stop_at";
      break;
    }
  }
  if (tty) say("\n");
  if (last_saved != state.step) save();
  // The weights as the run ended, as a plain model directory for `foundry generate`.
  save_model_with_context(model, (fs::path(opt.out_dir) / "model").string(), tokenizer.get(), T);
  result.step = state.step;
  say("done (%s) at step %ld; checkpoint %s\n", result.stop_reason.c_str(), state.step,
      result.last_checkpoint.c_str());
  return result;
}

}  // namespace foundry
