// Lesson 18: toward production. A training config read the way `foundry train` reads it (a file
// plus --set overrides, parsed strictly), then the promise checkpoints make: a run stopped
// halfway and resumed ends with exactly the same bits as a run that never stopped. Two
// deliberately incomplete resumes (no optimizer moments, no data position) show that the
// comparison can fail and why each piece of the checkpoint is needed. Exits non-zero if a
// check fails.
//
//   build/lessons/lesson_18
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "lessons/lesson_common.h"
#include "tokenizer/bpe_train.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train/prepare.h"
#include "train/token_file.h"
#include "train/train_config.h"
#include "train/trainer.h"

using namespace foundry;
namespace fs = std::filesystem;

namespace {

using lesson::check;
using lesson::failures;

// The config exactly as `foundry train --config configs/tiny.json --set ...` builds it: the file's
// JSON, each override applied to the JSON, then one strict parse (train/train_config.h).
// ANCHOR: load_config
TrainConfig tiny_config(const std::vector<std::string>& overrides) {
  nlohmann::json j = read_json_file(std::string(FOUNDRY_SOURCE_DIR) + "/configs/tiny.json");
  for (const std::string& o : overrides) apply_override(j, o);
  TrainConfig config = train_config_from_json(j, "configs/tiny.json");
  validate(config, "configs/tiny.json");
  return config;
}
// ANCHOR_END: load_config

// Numbers whose bits differ between two lists of tensors (the same shapes), compared as bytes:
// "equal within 1e-6" would hide a resume that is only almost right.
long differing(const std::vector<const Tensor*>& a, const std::vector<const Tensor*>& b) {
  long count = 0;
  for (size_t k = 0; k < a.size(); ++k) {
    for (size_t i = 0; i < a[k]->size(); ++i) {
      count += std::memcmp(&a[k]->data[i], &b[k]->data[i], sizeof(real)) != 0;
    }
  }
  return count;
}

std::vector<const Tensor*> weights_of(Checkpoint& c) {
  std::vector<const Tensor*> out;
  for (NamedTensor& p : c.model.parameters()) out.push_back(p.value);
  return out;
}

// Runs train() quietly; returns the checkpoint directory it wrote last.
std::string run(const TrainConfig& config, const std::string& data, const std::string& out, const std::string& resume,
                long stop_at) {
  TrainOptions options;
  options.data_dir = data;
  options.out_dir = out;
  options.resume = resume;
  options.stop_at = stop_at;
  options.quiet = true;
  return train(config, options).last_checkpoint;
}

}  // namespace

int main() {
  // A scratch directory of this process (two runs at once must not share one), deleted at the end.
  const fs::path work = fs::temp_directory_path() / ("foundry_lesson_18_" + std::to_string(getpid()));
  fs::remove_all(work);

  std::printf("[config]\n");
  // The tiny reference config, shrunk so that each run below takes well under a second.
  const std::vector<std::string> overrides = {"model.dim=64",
                                              "model.n_layers=2",
                                              "model.hidden_dim=176",
                                              "model.max_seq_len=32",
                                              "model.vocab_size=320",
                                              "training.seq_len=32",
                                              "training.batch_size=8",
                                              "training.max_steps=24",
                                              "training.warmup_steps=4",
                                              "training.eval_interval=12",
                                              "training.eval_batches=2",
                                              "training.checkpoint_interval=12"};
  const TrainConfig config = tiny_config(overrides);
  std::printf(
      "configs/tiny.json with %zu overrides: dim %d, layers %d, vocab %d, batch %d x %d tokens, "
      "%ld steps, lr %g -> %g, seed %llu\n",
      overrides.size(), config.model.dim, config.model.n_layers, config.model.vocab_size, config.training.batch_size,
      config.training.seq_len, config.training.max_steps, config.training.lr, config.training.min_lr,
      static_cast<unsigned long long>(config.training.seed));
  // A config is a contract: a typo or an impossible value is refused before any work is done.
  for (const char* bad : {"training.learning_rate=3e-4", "training.lr=-1", "model.n_heads=3"}) {
    try {
      std::vector<std::string> with_bad = overrides;
      with_bad.push_back(bad);
      tiny_config(with_bad);
      check(false, bad);
    } catch (const std::invalid_argument& e) {
      std::printf("--set %s\n  refused: %s\n", bad, e.what());
    }
  }

  // Data: a 320-token BPE vocabulary and token files from the first 100 KiB of Tiny Shakespeare.
  std::ifstream in(std::string(FOUNDRY_SOURCE_DIR) + "/data/tinyshakespeare.txt", std::ios::binary);
  std::string text(100 * 1024, '\0');
  in.read(&text[0], static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  BpeTrainOptions tok_options;
  tok_options.vocab_size = config.model.vocab_size;
  const BpeTokenizer tokenizer = train_bpe(text, tok_options);
  const PreparedData split = split_and_tokenize(text, tokenizer, "", 0.1);
  const std::string data = (work / "data").string();
  fs::create_directories(data);
  save_tokens(data + "/train.bin", split.train, tokenizer.vocab_size());
  save_tokens(data + "/val.bin", split.val, tokenizer.vocab_size());
  tokenizer.save_json(data + "/tokenizer.json");

  std::printf("[uninterrupted]\n");
  const std::string run_a = (work / "a").string();
  const std::string end_a = run(config, data, run_a, "", 0);
  const MetricsSeries log_a = read_metrics(run_a + "/metrics.jsonl");
  for (const TrainPoint& p : log_a.train) {
    if (p.step % 4 == 0) std::printf("step %2ld  loss %.4f\n", p.step, p.loss);
  }
  std::printf("final checkpoint: %s\n", fs::path(end_a).filename().c_str());

  std::printf("[interrupted]\n");
  // Run B: the same config, stopped after step 12 (what Ctrl-C or a crash after a checkpoint
  // leaves behind), then resumed from its run directory in a second train() call.
  const std::string run_b = (work / "b").string();
  const std::string half = run(config, data, run_b, "", 12);
  std::printf("stopped; checkpoint %s holds:", fs::path(half).filename().c_str());
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(half)) files.push_back(entry.path().filename().string());
  std::sort(files.begin(), files.end());
  for (const std::string& f : files) std::printf(" %s", f.c_str());
  std::printf("\n");
  const TrainConfig resumed_config = resume_config(run_b, {});  // the config stored in the checkpoint
  // Training fields may change on resume (a longer max_steps, say); the architecture may not.
  try {
    resume_config(run_b, {"model.dim=128"});
    check(false, "a resume that changes the model is refused");
  } catch (const std::invalid_argument& e) {
    std::printf("resume with --set model.dim=128\n  refused: %s\n", e.what());
  }
  const std::string end_b = run(resumed_config, "", run_b, run_b, 0);
  std::printf("resumed from step 12; final checkpoint: %s\n", fs::path(end_b).filename().c_str());

  std::printf("[compare]\n");
  Checkpoint a = load_checkpoint(end_a);
  Checkpoint b = load_checkpoint(end_b);
  std::vector<const Tensor*> moments_a, moments_b;
  for (size_t k = 0; k < a.state.optimizer.m.size(); ++k) {
    moments_a.push_back(&a.state.optimizer.m[k]);
    moments_a.push_back(&a.state.optimizer.v[k]);
    moments_b.push_back(&b.state.optimizer.m[k]);
    moments_b.push_back(&b.state.optimizer.v[k]);
  }
  const long weight_diff = differing(weights_of(a), weights_of(b));
  const long moment_diff = differing(moments_a, moments_b);
  std::printf("weights:         %zu numbers in %zu tensors, %ld differ\n", a.model.num_parameters(),
              a.model.parameters().size(), weight_diff);
  std::printf("AdamW moments:   %zu numbers, %ld differ; update count %ld vs %ld\n", 2 * a.model.num_parameters(),
              moment_diff, a.state.optimizer.t, b.state.optimizer.t);
  const bool same_rng = std::memcmp(a.state.loader.rng.s, b.state.loader.rng.s, sizeof a.state.loader.rng.s) == 0;
  std::printf("data generator:  %s\n", same_rng ? "same state" : "different state");
  const MetricsSeries log_b = read_metrics(run_b + "/metrics.jsonl");
  long loss_diff = log_a.train.size() == log_b.train.size() ? 0 : -1;
  for (size_t i = 0; loss_diff >= 0 && i < log_a.train.size(); ++i) {
    loss_diff += log_a.train[i].step != log_b.train[i].step || log_a.train[i].loss != log_b.train[i].loss;
  }
  std::printf("metrics log:     %zu training losses, %ld differ\n", log_b.train.size(), loss_diff);
  check(weight_diff == 0 && moment_diff == 0 && a.state.optimizer.t == b.state.optimizer.t,
        "a resumed run ends with bit-identical weights and optimizer state");
  check(same_rng && loss_diff == 0, "it drew the same batches and logged the same losses");

  std::printf("[incomplete]\n");
  // Two resumes from a checkpoint missing one piece of state, made with the library's own
  // load_checkpoint / save_checkpoint, to show what each piece is for (and that the comparison
  // above would catch a resume that forgot it).
  for (int variant = 0; variant < 2; ++variant) {
    Checkpoint c = load_checkpoint(half);
    const char* what;
    if (variant == 0) {
      what = "fresh AdamW moments";
      c.state.optimizer = make_adamw(c.model.parameters());
    } else {
      what = "data generator restarted";
      c.state.loader.rng = Rng(config.training.seed + 1);
    }
    const std::string dir = (work / ("c" + std::to_string(variant))).string();
    save_checkpoint(checkpoint_path(dir, 12), c.model, c.state, &tokenizer);
    Checkpoint end = load_checkpoint(run(resumed_config, "", dir, dir, 0));
    const long diff = differing(weights_of(a), weights_of(end));
    std::printf("%-26s %ld of %zu weights differ from the uninterrupted run\n", what, diff, a.model.num_parameters());
    check(diff > 0, "an incomplete resume is detected");
  }

  fs::remove_all(work);
  std::printf(failures == 0 ? "all checks passed\n" : "%d checks FAILED\n", failures);
  return failures == 0 ? 0 : 1;
}
