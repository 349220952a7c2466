// One assistant turn: render the conversation with the chat template and the generation prompt,
// generate until <|im_end|> (or the end-of-text token, the limit, a full context), and return
// the answer's text. `foundry chat`, `foundry eval-instruct` and the server share it.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "infer/kv_cache.h"
#include "infer/sampling.h"
#include "model/model.h"
#include "tokenizer/bpe.h"
#include "tokenizer/chat_template.h"

namespace foundry {

// <|im_end|> and, when the tokenizer has it, <|endoftext|>.
std::vector<int> chat_stop_ids(const BpeTokenizer& tokenizer);

// Drops the oldest messages (never a leading system message) until the conversation with its
// generation prompt leaves at least `reserve` positions of max_seq_len for the answer. Returns
// how many messages were dropped; throws std::invalid_argument when even the last message alone
// does not fit (the message names both numbers).
int fit_history(const BpeTokenizer& tokenizer, std::vector<ChatMessage>& history, int max_seq_len, int reserve);

struct ChatReply {
  std::string text;          // the answer, without <|im_end|>
  std::vector<int> tokens;   // its ids
  std::string stop_reason;   // "end of turn", "limit", "context full", "stop token <id>"
  size_t prompt_tokens = 0;  // positions the rendered conversation took
};

// history ends with the user's message. on_text (may be empty) receives the answer's text as
// it streams. Throws std::invalid_argument when the rendered prompt does not fit the context.
ChatReply chat_reply(const Model& model, const BpeTokenizer& tokenizer, DecodeState& state, Sampler& sampler,
                     const std::vector<ChatMessage>& history, int max_new_tokens,
                     const std::function<void(const std::string&)>& on_text = {});

}  // namespace foundry
