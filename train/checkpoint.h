// Checkpoints: everything needed to continue a run exactly where it stopped.
//
// A checkpoint is a directory <run>/ckpt-<step, 8 digits>/ holding
//
//   config.json, model.safetensors   the model directory (model/model_io.h): a checkpoint is
//   tokenizer.json                   also a model that `foundry generate` can load
//   optimizer.safetensors            AdamW's moments: "m.<param name>" and "v.<param name>",
//                                    same shapes as the parameters
//   train_state.json                 step, AdamW's update count t, the training data loader's
//                                    position (generator state and batch counter), early-stopping
//                                    state, tokens seen, the data directory and the full config
//
// The directory is written as <name>.tmp and renamed into place once every file is on disk, so
// a crash or Ctrl-C halfway leaves the previous checkpoints untouched and no half checkpoint
// under a real name. Numbers that decide what happens next are stored exactly: the generator's
// 64-bit words as decimal strings, doubles as C99 hex floats ("0x1.8p+1"). With all of that, a
// run resumed at one thread continues bit for bit as if it had never stopped.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "train/adamw.h"
#include "train/data_loader.h"
#include "train/train_config.h"

namespace foundry {

// ANCHOR: train_state
struct TrainState {
  TrainConfig config;                 // the effective config of the run
  std::string data_dir;               // where train.bin and val.bin came from
  long step = 0;                      // optimizer updates done (the next update has index `step`)
  AdamW optimizer;                    // moments and update count
  DataLoader loader;                  // training batches: its rng and next_batch are saved
  double best_val_loss = INFINITY;    // lowest validation loss so far
  int evals_without_improvement = 0;  // early-stopping counter
  long tokens_seen = 0;               // training tokens processed
};
// ANCHOR_END: train_state

// A loaded checkpoint's state.loader holds the saved position but no tokens yet: the trainer
// gives them back with attach_tokens (train/data_loader.h).
struct Checkpoint {
  Model model;
  TrainState state;
};

// "<run_dir>/ckpt-00000100" for step 100.
std::string checkpoint_path(const std::string& run_dir, long step);

// A model directory that `foundry generate` can use on its own: the model's files
// (model/model_io.h) and, when `tokenizer` is given, the tokenizer's (Tokenizer::save_to_dir).
// The model layer knows nothing of tokenizers; this is where the two meet.
void save_model_with_tokenizer(const Model& model, const std::string& dir, const Tokenizer* tokenizer);

// Writes a checkpoint atomically (see above). Replaces an existing checkpoint of the same step.
void save_checkpoint(const std::string& dir, Model& model, const TrainState& state, const Tokenizer* tokenizer);

// AdamW's moments as one safetensors file ("m.<param name>", "v.<param name>", shaped like the
// parameters; the update count t in the metadata), and back. The loader checks every tensor
// against `params` (missing, extra or misshapen: "optimizer state for another model") and the
// update count against `adam_t`, the one the checkpoint's state file `state_path` holds.
// Pretraining's checkpoints and fine-tuning's (train/sft_checkpoint.h) both store them so.
void save_optimizer_state(const std::string& path, const std::vector<NamedTensor>& params, const AdamW& optimizer);
AdamW load_optimizer_state(const std::string& path, const std::vector<NamedTensor>& params, long adam_t,
                           const std::string& state_path);

// Loads and checks everything before returning: the model directory, every moment tensor against
// the model's parameters (missing, extra or misshapen tensors: "optimizer state for another
// model"), the state file's fields and that its config describes the same model. Throws
// std::invalid_argument naming the file and the problem; nothing is returned half-loaded.
Checkpoint load_checkpoint(const std::string& dir);

// The checkpoints of a run directory, oldest first (by step).
std::vector<std::string> list_checkpoints(const std::string& run_dir);

// `path` itself if it is a checkpoint, else the newest checkpoint of the run directory `path`.
// Throws when there is none.
std::string resolve_checkpoint(const std::string& path);

// Deletes all but the newest `keep` checkpoints of a run directory.
void prune_checkpoints(const std::string& run_dir, int keep);

// Directories as one unit, so that a kill at any instant leaves either the old or the new
// directory under the real name, never a half-written or half-deleted one:
//   publish_directory(tmp, dir): `tmp` holds the finished directory; it takes the name `dir` in
//     one rename (swapping with an existing `dir` through renameat2's RENAME_EXCHANGE, whose
//     old contents are then deleted under the temporary name).
//   remove_directory(dir): renames `dir` to "<dir>.old" first, then deletes it.
// Names ending in .tmp or .old are leftovers of an interruption; list_checkpoints skips them and
// remove_leftovers(run_dir) deletes them.
void publish_directory(const std::string& tmp, const std::string& dir);
void remove_directory(const std::string& dir);
void remove_leftovers(const std::string& run_dir);

}  // namespace foundry
