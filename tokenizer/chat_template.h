// The chat template: how a conversation becomes one token sequence, and which of its tokens a
// supervised fine-tuning loss trains on.
//
// The shape is ChatML, the form llama.cpp, vLLM and most servers recognise:
//
//   <|im_start|>system\nYou write short stories.<|im_end|>\n
//   <|im_start|>user\nWrite a story about a girl named Mia.<|im_end|>\n
//   <|im_start|>assistant\nMia had a red ball. ...<|im_end|>\n
//
// and, to ask the model for the next turn (the "generation prompt"), a final
// `<|im_start|>assistant\n` with nothing after it: the model writes the answer and then
// `<|im_end|>`, which is where generation stops.
//
// `<|im_start|>` and `<|im_end|>` are special tokens: one id each, never split, never merged.
// They are control tokens only where the template puts them. A message's text is encoded as
// ordinary text even when it contains the characters "<|im_end|>" (BpeTokenizer::encode_ordinary),
// so a user cannot close their own turn and speak as the assistant by typing the token's name.
//
// The token ids are the concatenation of the pieces' encodings, in order: the special id, the
// role and "\n", the content, the special id, "\n". (Encoding the whole rendered text at once
// could merge differently across a piece boundary, e.g. "\n" with spaces that open the content;
// training, `foundry chat`, `foundry serve` and the GGUF export all call render_chat, so the model
// always sees the one spelling.)
//
// Training targets: the content tokens of every assistant message and the `<|im_end|>` that closes
// it (so the model learns to stop) are targets; the template's own tokens, the system and user
// messages and the role names are not: the model should not be trained to write the user's part.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/bpe.h"

namespace foundry {

inline constexpr const char* kImStart = "<|im_start|>";
inline constexpr const char* kImEnd = "<|im_end|>";

struct ChatMessage {
  std::string role;     // "system", "user" or "assistant"
  std::string content;  // any UTF-8 text; special-token names in it stay plain text
};

// One rendered conversation: ids[k] and target[k] describe token k; text is what the ids decode to.
struct ChatTokens {
  std::string text;
  std::vector<int> ids;
  std::vector<uint8_t> target;  // 1: token k is part of an assistant's answer (a training target)
};

// Throws std::invalid_argument when a role is not system/user/assistant.
void check_chat_roles(const std::vector<ChatMessage>& messages);

// The rendered text alone (no tokenizer needed): what the Jinja template below produces.
std::string render_chat_text(const std::vector<ChatMessage>& messages, bool add_generation_prompt);

// The rendered text, its ids and the per-token target mask. The tokenizer must hold <|im_start|>
// and <|im_end|> as special tokens (add_chat_tokens); throws std::invalid_argument otherwise.
ChatTokens render_chat(const BpeTokenizer& tokenizer, const std::vector<ChatMessage>& messages,
                       bool add_generation_prompt);

// The same template as a Jinja string, as Hugging Face's tokenizer_config.json and GGUF's
// tokenizer.chat_template key store it (messages, add_generation_prompt).
const char* chat_template_jinja();

// True when the tokenizer holds both chat tokens as special tokens.
bool has_chat_tokens(const BpeTokenizer& tokenizer);
// The tokenizer with <|im_start|> and <|im_end|> appended as special tokens (ids V and V+1) if
// they are missing; otherwise a copy. Existing ids keep their meaning, so a model trained with
// the old vocabulary still reads the same tokens (model/resize_vocab.h grows its rows).
BpeTokenizer add_chat_tokens(const BpeTokenizer& tokenizer);

// Writes dir/tokenizer_config.json (atomically), Hugging Face's home for the chat template:
// {"chat_template": ..., "eos_token": "<|im_end|>", ...}. A model directory with it is a chat model.
void save_chat_config(const std::string& dir);

}  // namespace foundry
