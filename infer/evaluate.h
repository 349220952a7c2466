// Evaluation: the mean cross-entropy (and perplexity) of a model over a token sequence.
//
// The sequence is cut into non-overlapping windows of T positions (T = the context length,
// max_seq_len, unless asked otherwise): window k reads inputs tokens[kT, kT + T) and is scored
// on targets tokens[kT + 1, kT + T + 1), exactly the training objective. Tokens after the last
// full window are not scored; a sequence too short for one full window becomes one shorter
// window of all its n − 1 targets.
//
//   mean loss  = (1 / #targets) Σ −log p(target | everything before it in its window)
//   perplexity = exp(mean loss): the model is as unsure as a uniform choice among that many tokens
//
// Each window starts from an empty context, so its first predictions see little history; a
// sliding window with overlap would score lower but cost a multiple of the compute.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "model/model.h"

namespace foundry {

struct EvalResult {
  int windows = 0;     // N
  int window_len = 0;  // T
  size_t targets = 0;  // N · T positions scored
  double mean_loss = 0;
  double perplexity = 0;
};

// Scores up to max_windows windows (0: all) of `tokens` with windows of `window_len` positions
// (0: max_seq_len). on_logits (may be empty) receives each window's logits (T, V) in order.
// Throws std::invalid_argument when there are fewer than 2 tokens, an id is outside the
// vocabulary, or window_len exceeds max_seq_len.
EvalResult evaluate(Model& model, const std::vector<int>& tokens, int window_len, int max_windows,
                    const std::function<void(const real* logits, int T, int V)>& on_logits = {});

// The windows evaluate() will score: {N, T} (same rules and errors, nothing computed).
std::pair<int, int> eval_windows(const ModelConfig& config, size_t n_tokens, int window_len, int max_windows);

// The context length a model was trained at (training.seq_len), which is the window its training
// evaluations used: evaluating with a longer window scores positions the model never learned to
// use and gives a different (usually higher) loss than training printed. Looked up, in order, in
//   <model_dir>/training.json   {"seq_len": T, ...}, written by `foundry train` into best/ and model/
//   <model_dir>/train_state.json  a checkpoint's state (its config's training.seq_len)
//   <model_dir>/../config.json  the run directory's training config, used only when its model
//                               section is this model's config (runs trained before training.json)
// `seq_len` is 0 when none of them says; `source` names the file that did.
struct TrainingContext {
  int seq_len = 0;
  std::string source;
};
TrainingContext training_context(const std::string& model_dir, const ModelConfig& config);

// Bytes of the .npy file `foundry eval --logits-out` writes for N windows of T positions over a
// vocabulary of V: the header plus N·T·V float32 values.
uint64_t logits_file_bytes(int N, int T, int V);

}  // namespace foundry
