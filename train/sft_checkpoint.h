// Checkpoints of a fine-tuning run (foundry sft): a run stopped by --stop-at, --max-seconds or a
// crash continues where its last checkpoint left it, at one thread bit for bit as if it had never
// stopped (the same weights, moments and metrics log as an uninterrupted run).
//
// <out>/ckpt-<step, 8 digits>/ (named as pretraining's, train/checkpoint.h) holds
//
//   config.json, model.safetensors,    the model at that step, chat tokens included: a chat model
//   tokenizer.json,                    directory in its own right (foundry chat loads it)
//   tokenizer_config.json
//   optimizer.safetensors              AdamW's moments (save_optimizer_state)
//   sft_state.json                     the step, AdamW's update count, where the batches are (the
//                                      shuffling generator's state, the current order of the
//                                      training examples and the position in it), the first
//                                      step's loss, the run's settings and the data's fingerprint
//   metrics.jsonl                      the metrics log up to that step
//
// It is written as <name>.tmp and renamed into place (publish_directory), so a crash leaves the
// older checkpoints whole. A resumed run keeps the settings that decide its numbers: they come
// from sft_state.json, and the data file must still have the fingerprint it had.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model.h"
#include "tokenizer/bpe.h"
#include "train/adamw.h"
#include "train/sft.h"

namespace foundry {

// Where a run is: everything besides the weights and the moments that the next step depends on.
struct SftProgress {
  long step = 0;              // optimizer updates done (the next one has index `step`)
  std::string rng;            // the shuffling generator (std::mt19937_64) as its stream text
  std::vector<size_t> order;  // the current epoch's order of the training examples
  size_t cursor = 0;          // the next position in `order`
  double first_loss = NAN;    // the loss of the run's first step
  double seconds = 0;         // wall time of the run so far, over all its sessions
  bool chat_tokens_added = false;
  std::string metrics;  // the metrics log (JSON lines) up to `step`
};

// The settings that decide a run's numbers (and where its base model and data came from), as
// sft_state.json stores them.
nlohmann::ordered_json sft_settings_json(const SftOptions& options);

void save_sft_checkpoint(const std::string& dir, const Model& model, const BpeTokenizer& tokenizer,
                         const std::vector<NamedTensor>& params, const AdamW& optimizer, const SftOptions& options,
                         const std::string& data_fingerprint, const SftProgress& progress);

// `path` itself when it holds sft_state.json, else the newest checkpoint of the run directory
// `path`. Throws std::invalid_argument when there is none.
std::string resolve_sft_checkpoint(const std::string& path);

// The options of the run whose checkpoint (or run directory) is `path`, ready to resume it:
// `resume` is the checkpoint, `out_dir` its run directory. Session-only options (max_seconds,
// stop_at, quiet) keep their defaults. Throws std::invalid_argument naming the file and field.
SftOptions sft_resume_options(const std::string& path);

// Loads a checkpoint's progress and moments (for `params`, the trainable tensors) and checks
// them against the run about to continue: the same settings, the same data (fingerprint), an
// order that is a permutation of the n_train training examples. Throws std::invalid_argument
// naming the file and the problem.
SftProgress load_sft_checkpoint(const std::string& dir, const SftOptions& options, const std::string& data_fingerprint,
                                size_t n_train, const std::vector<NamedTensor>& params, AdamW& optimizer);

}  // namespace foundry
