// Supervised fine-tuning (SFT): a pretrained story model learns to answer chat turns.
//
// Every example (train/instruct.h) is rendered by the chat template (tokenizer/chat_template.h)
// into ids and a per-token target mask; position k of a row predicts token k+1, and the loss is
// the masked cross-entropy (engine/masked_loss.h) over the positions whose next token is part of
// an assistant's answer. The user's words are context, never targets.
//
// A batch holds B examples, each cut to at most T+1 tokens (T = seq_len) and padded at the end;
// a padded position is masked, and since attention is causal, padding after an example never
// changes the example's own logits. Rows are drawn in a seeded shuffled order, epoch after epoch.
//
// The loop is the pretraining step with another loss: zero the gradients, forward, backward,
// clip, AdamW at the warmup + cosine learning rate. A base model whose tokenizer lacks the chat
// tokens gets them first (add_chat_tokens, grow_vocab: see model/resize_vocab.h).
//
// The output directory:
//   model/          the fine-tuned model (config.json, model.safetensors, tokenizer.json with the
//                   chat tokens, tokenizer_config.json with the chat template): a chat model
//   metrics.jsonl   one line per logged step, and the validation losses (train/metrics.h's
//                   "train" and "eval" records, so `foundry plot` draws them)
//   sft.json        the settings of the run and where the base model and data came from
//   ckpt-<step>/    checkpoints to resume from (train/sft_checkpoint.h)
// With LoRA (SftOptions::lora_on, model/lora.h) the base stays frozen and only the adapters train:
//   adapter.safetensors  the adapters (the base model directory is needed to use them)
//   model/               only with SftOptions::merge: the base with the adapters folded in
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "engine/tape.h"
#include "model/lora.h"
#include "model/model.h"
#include "tokenizer/bpe.h"
#include "train/instruct.h"

namespace foundry {

// One rendered example: ids and, per id, whether it is an assistant target: 0 no, 1 yes, 2 yes
// and one of the tokens that spell a word the instruction asks for (kinds words and two_turn:
// the words of InstructExample::words in the last answer), which the loss may weigh more.
inline constexpr uint8_t kWordTarget = 2;
struct SftExample {
  std::vector<int> ids;
  std::vector<uint8_t> target;
};

// Renders the examples of one split ("train" or "test"), each cut to at most max_tokens ids.
// Examples with no target left after the cut are dropped.
std::vector<SftExample> render_sft_examples(const std::vector<InstructExample>& examples, const BpeTokenizer& tokenizer,
                                            const std::string& split, int max_tokens);

// Fills one batch of rows (the examples at `rows`), T positions each:
//   ids (B, T): inputs, targets (B, T): the next ids (−1 where there is none),
//   mask (B, T): 1 where targets[k] is an assistant token. T = the longest row − 1, at most T_max.
void fill_sft_batch(const std::vector<SftExample>& examples, const std::vector<size_t>& rows, int T_max,
                    std::vector<int>& ids, std::vector<int>& targets, std::vector<uint8_t>& mask, int& T);

// Reorders a freshly shuffled epoch so that each batch of B rows holds examples of about the
// same length: every run of kGroupBatches * B rows is sorted by length (stably, so ties keep the
// shuffle's order), cut into batches, and those batches are shuffled among themselves (rng). A
// batch's cost is B times its longest row, so a short words answer no longer pays for a whole
// story beside it. Which rows an epoch holds is unchanged.
inline constexpr int kGroupBatches = 64;
void group_by_length(std::vector<size_t>& order, const std::vector<SftExample>& examples, int B, std::mt19937_64& rng);

// The SFT loss of a batch: model logits (B, T, V), then the masked cross-entropy. With `lora`,
// the logits of the base with its adapters (lora_logits), and only the adapters get gradients.
// word_weight != 1: the weighted cross-entropy instead, the positions whose mask is kWordTarget
// weighing word_weight and the other targets 1 (engine/masked_loss.h).
Var sft_loss(Tape& tape, Model& model, const std::vector<int>& ids, const std::vector<int>& targets,
             const std::vector<uint8_t>& mask, int B, int T, LoraModel* lora = nullptr, double word_weight = 1.0);

// Mean masked loss over the examples, in batches of B (no gradients used).
double sft_validation_loss(Model& model, Tape& tape, const std::vector<SftExample>& examples, int B, int T_max,
                           LoraModel* lora = nullptr);

// The base model ready for chat: its tokenizer with the chat tokens and the model grown to match.
struct ChatModel {
  Model model;
  BpeTokenizer tokenizer;
  bool added_tokens = false;  // true when the base lacked <|im_start|>/<|im_end|>
};
ChatModel load_chat_base(const std::string& dir);

struct SftOptions {
  std::string base_dir;    // a model directory (foundry train's best/ or model/)
  std::string data_path;   // JSONL (train/instruct.h); its "train" split is used
  std::string out_dir;     // refused when it exists and is not empty (unless overwrite)
  int batch_size = 16;     // B
  int seq_len = 0;         // T_max; 0: the model's max_seq_len
  long max_steps = 300;    // the schedule's length
  double max_seconds = 0;  // > 0: stop (and save) once this much wall time has passed
  double lr = 1e-3;        // peak learning rate
  double min_lr = 1e-4;    // end of the cosine
  long warmup_steps = 20;
  double weight_decay = 0.0;  // fine-tuning keeps the pretrained weights where they are
  double grad_clip = 1.0;
  long log_interval = 10;
  long eval_interval = 100;  // masked loss on up to eval_examples test-split examples
  int eval_examples = 64;
  uint64_t seed = 1337;
  // Checkpoints (train/sft_checkpoint.h): every checkpoint_interval steps (0: only when the run
  // stops early), the newest keep_checkpoints kept. `resume`: a checkpoint or an output directory
  // to continue (its options come from sft_resume_options). stop_at > 0: stop after that step
  // with a checkpoint, as if interrupted; Ctrl-C or SIGTERM (train/stop_signal.h) stops after the
  // step under way the same way.
  long checkpoint_interval = 200;
  int keep_checkpoints = 2;
  std::string resume;
  long stop_at = 0;
  bool overwrite = false;
  bool quiet = false;
  std::FILE* out = stdout;
  bool lora_on = false;  // train low-rank adapters only (model/lora.h); the base stays frozen
  LoraConfig lora;       // their rank, alpha and targets
  bool merge = false;    // with lora_on: also write <out>/model, the base with the adapters folded in
  // The loss weight of the tokens that spell a requested word (kWordTarget), the other answer
  // tokens weighing 1; 1 is the plain masked loss. The validation loss stays unweighted.
  double word_weight = 1.0;
  // Batches of examples of about the same length (group_by_length), so that short answers are not
  // padded to the longest story in their batch; false: rows in plain shuffled order.
  bool group_by_length = false;
};

struct SftResult {
  long steps = 0;
  double first_loss = NAN, last_loss = NAN, val_loss = NAN;
  double seconds = 0;
  std::string stop_reason;      // "max_steps", "max_seconds", "stop_at" or "interrupted" (SIGINT, SIGTERM)
  std::string last_checkpoint;  // the checkpoint written last, if any
  std::string model_dir;        // <out>/model (empty for LoRA without merge)
  std::string adapter_path;     // <out>/adapter.safetensors with LoRA
  // What training held: the numbers that learn, their gradients and AdamW's two moments, and the
  // process's peak resident memory (getrusage) at the end.
  size_t trainable_parameters = 0;
  size_t gradient_bytes = 0, optimizer_bytes = 0;
  double peak_rss_mib = 0;
  double seconds_per_step = 0;
};

SftResult run_sft(const SftOptions& options);

}  // namespace foundry
