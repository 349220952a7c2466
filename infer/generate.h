// The generation loop: feed the prompt through the KV cache, then sample one token at a time.
//
//   logits = the prompt's positions in batched passes (forward_batch; the last one's logits predict)
//   repeat: next = sample(logits); stop if next is a stop token; emit next; feed next
//
// llama2.c's run.c stops when it samples BOS (its models mark the start of every story with
// it); we stop on both the tokenizer's BOS and its end-of-text token.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "infer/kv_cache.h"
#include "infer/sampling.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace foundry {

struct GenerationResult {
  std::vector<int> tokens;     // the new tokens, without the prompt and without the stop token
  std::string stop_reason;     // "limit", "stop token <id>" or "context full"
  double prefill_seconds = 0;  // time for the prompt's positions
  double decode_seconds = 0;   // time for the new tokens (forward + sampling + on_token)
};

// The ids generation starts from: BOS (when the tokenizer has one, as run.c does) followed by
// the encoded prompt. Without a BOS an empty prompt starts from the end-of-text token; with
// neither it is an error. Throws std::invalid_argument naming both numbers when the prompt
// needs more positions than the model's context (max_seq_len); a prompt too many bytes long to
// fit whatever its tokens is refused before it is encoded.
std::vector<int> prompt_ids(const Tokenizer& tokenizer, const std::string& prompt, int max_seq_len);

// The length in bytes of the tokenizer's longest token (at least 1).
size_t longest_token_bytes(const Tokenizer& tokenizer);

// The stop tokens of a tokenizer: its BOS and end-of-text ids that exist.
std::vector<int> stop_ids(const Tokenizer& tokenizer);

// Runs `prompt` (at least one id) from position 0 (the state is reset first), then up to
// max_new_tokens new tokens. on_token (may be empty) sees each new token as soon as it exists.
// Throws std::runtime_error when the model's logits are not finite (NaN or infinite weights).
GenerationResult generate(const Model& model, DecodeState& state, Sampler& sampler, const std::vector<int>& prompt,
                          int max_new_tokens, const std::vector<int>& stop,
                          const std::function<void(int)>& on_token = {});

// Streams text for a growing id sequence: push(id) returns the bytes that id adds to the
// decoded text. Decoding with the preceding ids (not each id alone) keeps context-dependent
// rules right, such as llama2.c's "no leading space after BOS". `context` holds ids already
// shown or never to be shown (BOS).
class TextStream {
 public:
  TextStream(const Tokenizer& tokenizer, std::vector<int> context);
  std::string push(int id);

 private:
  const Tokenizer& tokenizer_;
  std::vector<int> ids_;
};

}  // namespace foundry
