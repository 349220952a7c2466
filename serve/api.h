// The OpenAI-shaped HTTP API of `foundry serve`: what a request may say, how it is checked, and
// what the answers look like. No sockets and no model here: bodies in, validated requests and
// JSON out, so every rule can be tested (and fuzzed) without a server.
//
//   POST /v1/completions       {"model", "prompt", "max_tokens", "temperature", "top_p", "top_k",
//                               "seed", "stop", "stream", "stream_options", "logprobs", ...}
//   POST /v1/chat/completions  {"model", "messages": [{"role", "content"}], ... the same sampling
//                               fields, "logprobs": bool, "top_logprobs": n}
//
// Errors are {"error": {"message", "type", "param", "code"}} with the HTTP status OpenAI uses:
// 400 for a bad request, 404 for an unknown model, 413 for a body over the limit, 503 when the
// queue is full.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "infer/sampling.h"
#include "tokenizer/tokenizer.h"

namespace foundry::serve {

struct ApiError : std::runtime_error {
  int status;         // HTTP status
  std::string type;   // "invalid_request_error", "server_error", ...
  std::string param;  // the offending field, or empty
  std::string code;   // a machine-readable reason, or empty
  ApiError(int status_, std::string message, std::string param_ = "", std::string code_ = "",
           std::string type_ = "invalid_request_error")
      : std::runtime_error(std::move(message)),
        status(status_),
        type(std::move(type_)),
        param(std::move(param_)),
        code(std::move(code_)) {}
};

// {"error": {...}} for an ApiError.
nlohmann::json error_json(const ApiError& e);

// Bounds the server puts on every request.
struct Limits {
  int max_tokens = 256;         // most new tokens one request may ask for (and the model's context)
  size_t max_prompt_bytes = 0;  // most bytes of prompt text (0: no limit beyond the body size)
  int max_messages = 256;       // most chat messages
  int max_stop = 4;             // most stop strings (OpenAI's limit)
  int max_stop_bytes = 64;      // longest stop string
  int max_top_logprobs = 20;    // most alternatives per token
};

struct ChatMessage {
  std::string role;  // system, user, assistant
  std::string content;
};

struct CompletionRequest {
  bool chat = false;
  std::string model;
  std::string prompt;                 // completions: the prompt text
  std::vector<ChatMessage> messages;  // chat: the conversation
  int max_tokens = 16;                // completions default as OpenAI; chat: Limits::max_tokens
  SamplingSettings sampling{1.0, 0, 1.0};
  bool has_seed = false;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int logprobs = -1;           // -1: none; otherwise the number of top alternatives per token
  int foundry_probs = 0;       // extension: alternatives before and after the sampling filters
};

// Parses and checks a body. Throws ApiError (status 400) naming the field for malformed JSON, a
// field of the wrong type or out of range (temperature negative or NaN, top_p outside (0, 1],
// max_tokens outside [1, limits.max_tokens], ...), or a field the API does not have.
CompletionRequest parse_request(const std::string& body, bool chat, const Limits& limits);

// How a conversation becomes text for a model without a chat template: each message on its
// own line as "role: content", then "assistant:" for the model to continue. A base model has
// seen dialogue written like this, so it answers in kind; it is a convention, not a template
// the model was trained on.
std::string render_plain_chat(const std::vector<ChatMessage>& messages);

// True when the tokenizer holds <|im_start|> and <|im_end|> (a chat model made by `foundry sft`).
bool has_chat_template(const Tokenizer& tokenizer);
// The prompt ids of a conversation: for a chat model the ChatML template it was fine-tuned with
// (tokenizer/chat_template.h: the render_chat that `foundry chat` and the GGUF export use too),
// ending with the assistant's generation prompt; otherwise render_plain_chat's text through
// prompt_ids. Throws std::invalid_argument (an unknown role, a prompt over the context).
std::vector<int> chat_prompt_ids(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages, int context);

// ---- answers -------------------------------------------------------------------------------------

// One alternative for a position: a token and its probability.
struct Alternative {
  int id;
  std::string text;
  double prob;
};

// What the engine reports for each generated token.
struct TokenInfo {
  int id = 0;
  std::string text;                // the token's own text (may be part of a UTF-8 character)
  double logprob = 0;              // log p of the token under the model (temperature 1, no filters)
  std::vector<Alternative> top;    // the most probable tokens under the model
  std::vector<Alternative> after;  // the distribution actually sampled from, after the filters
};

// A JSON string from bytes that may not be valid UTF-8 (a token can be half a character):
// invalid bytes become U+FFFD instead of an exception.
std::string json_text(const nlohmann::json& j);

// The "logprobs" object of a completion choice for these tokens (text_offset counts from `offset`).
nlohmann::json completion_logprobs(const std::vector<TokenInfo>& tokens, size_t offset);
// The "logprobs" object of a chat choice.
nlohmann::json chat_logprobs(const std::vector<TokenInfo>& tokens);
// The playground's extension: each token with its alternatives before and after the filters.
nlohmann::json foundry_tokens(const std::vector<TokenInfo>& tokens);

}  // namespace foundry::serve
