// The training configuration: a JSON file with a "model" section (the architecture, exactly the
// fields of a model directory's config.json) and a "training" section (everything else).
// configs/README.md documents every field; configs/tiny.json, small.json and medium.json are
// the reference set-ups.
//
// Parsing is strict: an unknown key, a value of the wrong type or an invalid value is an error
// whose message names the file, the field and the reason. Command-line overrides
// ("training.lr=3e-4") are applied to the JSON before it is parsed, so they get the same checks.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/config.h"

namespace foundry {

// ANCHOR: training_config
// The "training" section of a training config: everything about a run but the architecture.
struct TrainingSection {
  int batch_size = 12;                 // B: rows per micro-batch
  int seq_len = 64;                    // T: tokens per row, at most model.max_seq_len
  int grad_accum = 1;                  // micro-batches whose gradients are summed into one update
  long max_steps = 2000;               // optimizer updates; the schedule ends here
  double lr = 1e-3;                    // peak learning rate, reached after warmup
  double min_lr = 1e-4;                // the cosine decays to this at max_steps
  long warmup_steps = 100;             // linear warmup length
  double weight_decay = 0.1;           // AdamW decoupled weight decay, on 2-D tensors only
  double beta1 = 0.9;                  // AdamW first-moment decay
  double beta2 = 0.95;                 // AdamW second-moment decay
  double eps = 1e-8;                   // AdamW epsilon, added after the square root
  double grad_clip = 1.0;              // max global gradient L2 norm; 0 turns clipping off
  long eval_interval = 100;            // evaluate on the validation split every this many steps
  int eval_batches = 20;               // batches per evaluation (sequential, always the same ones)
  int patience = 0;                    // stop after this many evaluations without improvement; 0: never
  long checkpoint_interval = 500;      // save a checkpoint every this many steps (and at the end)
  int keep_checkpoints = 3;            // keep only the newest N checkpoints
  long log_interval = 10;              // print a progress line every this many steps
  uint64_t seed = 1337;                // seeds weight initialization and the batch order
  std::string batch_order = "random";  // key "sampling": "random" windows or "sequential" tiling
  std::string precision = "fp32";      // matrix products: "fp32", or "bf16" inputs with fp32 accumulation
  bool recompute = false;              // keep one block's activations at a time, re-run in backward
  double target_loss = 0;              // stop at the evaluation whose validation loss is <= this; 0: never
};

// A training config file: the model and the training section (TrainingSection above).
struct TrainConfig {
  std::string description;  // free text, optional
  ModelConfig model;
  TrainingSection training;
};
// ANCHOR_END: training_config

// Every field of TrainingSection with its JSON name, range and help (model/config_fields.h): the
// one declaration that parsing, validation, to_json, `--set`, configs/README.md's training table
// and the settings `foundry train` prints come from.
const std::vector<ConfigField<TrainingSection>>& training_config_fields();

nlohmann::json to_json(const TrainingSection& t);
nlohmann::json to_json(const TrainConfig& c);

// Strict parsing of a whole training config. `where` (usually the file name) starts every message.
TrainConfig train_config_from_json(const nlohmann::json& j, const std::string& where);

// Throws std::invalid_argument naming the field when a value is out of range or two fields
// disagree (seq_len > model.max_seq_len, warmup_steps > max_steps, min_lr > lr, ...).
void validate(const TrainConfig& c, const std::string& where);

// The settings as "model.dim=128  model.n_layers=4  ..." lines of at most about `width`
// characters, every field in declaration order: what `foundry train` prints before it starts.
std::vector<std::string> settings_lines(const TrainConfig& c, size_t width = 98);

// Applies "section.field=value" to the JSON. A string field takes the value as it is; any other
// field reads it as JSON (numbers, true/false), falling back to a plain string that the parser
// then rejects with the field's name. Throws
// std::invalid_argument for a missing '=' or a path that is not section.field.
void apply_override(nlohmann::json& j, const std::string& assignment);

// The usual entry point: file, then overrides in order, then strict parsing.
TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides = {});

}  // namespace foundry
