// The training loop: batches in, better weights out, with evaluation, early stopping, a
// progress line, a metrics log and checkpoints along the way.
//
// One step (one optimizer update, training_step):
// 1-2. for each of grad_accum micro-batches: draw a batch, forward to the loss, backward from
//      zeroed gradients, then add them to the step's running sum in micro-batch order (the
//      GradientReducer, train/grad_reducer.h: one process, or ranks of a data-parallel run); at
//      the end the sum is divided by grad_accum, so the update is that of one batch grad_accum
//      times larger
//   3. clip the global gradient norm
//   4. stop if the loss or the gradient norm is not finite (before touching the weights)
//   5. AdamW update at lr(step) from the schedule
//
// The run (train) wraps the step: start-up (fresh, resumed from a checkpoint, or from a model's
// weights), a header, then the loop with evaluation, early stopping, checkpoints, progress and
// the reasons to stop. The run directory (--out) receives metrics.jsonl, config.json (the
// effective config), ckpt-<step>/ checkpoints (the newest keep_checkpoints of them), best/, the
// model with the lowest validation loss so far, and model/, the weights as the run ended (both
// plain model directories that `foundry generate --model` loads). Ctrl-C or SIGTERM
// (train/stop_signal.h) stops the loop after its current step with a checkpoint: "interrupted".
#pragma once

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/tape.h"
#include "model/model.h"
#include "train/adamw.h"
#include "train/data_loader.h"
#include "train/grad_reducer.h"
#include "train/train_config.h"

namespace foundry {

struct TrainOptions {
  std::string data_dir;     // holds train.bin, val.bin and (optionally) tokenizer.json
  std::string out_dir;      // the run directory
  std::string resume;       // a checkpoint or run directory to continue from, or empty
  std::string init_from;    // a model directory whose weights start the run (fresh optimizer)
  long stop_at = 0;         // > 0: stop after this step, saving a checkpoint (splits a run)
  bool overwrite = false;   // a new run into a run directory moves the old run aside (never deletes)
  bool quiet = false;       // no progress output (tests)
  std::FILE* out = stdout;  // where progress goes
  // Data parallelism (train/grad_reducer.h): null is one process. With N ranks every rank calls
  // train() with its own reducer; only rank 0 prints (unless quiet) and writes files.
  GradientReducer* reducer = nullptr;
};

struct TrainResult {
  long step = 0;                    // updates done when the run ended
  double last_loss = NAN;           // training loss of the last step
  double last_val_loss = NAN;       // the last evaluation
  double best_val_loss = INFINITY;  // the best evaluation
  std::string stop_reason;          // "max_steps", "early_stopping", "target_loss", "interrupted", "stop_at"
  std::string last_checkpoint;      // path of the checkpoint written last
};

// Runs (or, with options.resume, continues) a training run. Throws std::runtime_error naming
// the step when the loss or the gradients stop being finite; the checkpoints already written
// are left as they were. A new run (no resume) refuses an out_dir that is not empty, so that two
// runs never mix: with options.overwrite an old run directory is renamed to
// <out_dir>.old-<UTC date>-<time> first.
TrainResult train(const TrainConfig& config, const TrainOptions& options);

// The config stored in a checkpoint (or a run directory's newest one), with overrides applied.
// Overrides of model.* are refused: the weights fix the architecture.
TrainConfig resume_config(const std::string& checkpoint_or_run, const std::vector<std::string>& overrides);

// One optimizer update (steps 1–5 above), at update index `step` (updates done so far).
struct StepResult {
  double loss;       // mean training loss of the micro-batches
  double grad_norm;  // global gradient norm before clipping
  double lr;         // the schedule's learning rate for this update
  bool updated;      // false: the loss or the norm was not finite and the weights are untouched
};
// With a reducer of N ranks, each rank computes grad_accum / N of the micro-batches and every
// rank ends with the same weights, bit for bit those of one process (grad_reducer.h).
// `loss_block_rows`: rows of logits the loss computes at once; 0 (what train() uses) is the automatic
// choice of engine/linear_cross_entropy.h. Benchmarks set it to compare with the unblocked loss.
StepResult training_step(Model& model, AdamW& optimizer, Tape& tape, DataLoader& loader, Batch& batch,
                         const TrainingSection& tc, long step, GradientReducer& reducer = local_reducer(),
                         int loss_block_rows = 0);

// AdamW's hyperparameters, as the training config sets them (the only place they are stored).
AdamWSettings adamw_settings(const TrainingSection& tc);

// Mean loss over `batches` sequential batches from the start of `tokens` (no gradients used):
// the validation loss the loop reports, early-stops on and keeps best/ by.
// With a reducer of N ranks, rank k scores batches k, k + N, ... and the losses are added in
// batch order: the same number on every rank and as in one process.
// `recompute`: run the blocks as training does with training.recompute, so evaluation's forward
// never holds more activations than a training step (the loss is the same either way).
double validation_loss(Model& model, Tape& tape, const std::vector<int>& tokens, int B, int T, int batches,
                       Batch& batch, GradientReducer& reducer = local_reducer(), bool recompute = false);

// Training memory in bytes (weights, gradients, AdamW moments, the pooled tape of one
// micro-batch, and with grad_accum > 1 the running sum of the micro-batches' gradients), from
// model/memory.h.
double estimate_training_bytes(const TrainConfig& config);

}  // namespace foundry
