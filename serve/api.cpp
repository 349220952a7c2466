// Request parsing and answer shapes of the OpenAI-compatible API. See api.h.
#include "serve/api.h"

#include <cmath>
#include <set>

#include "infer/generate.h"
#include "tokenizer/bpe.h"
#include "tokenizer/chat_template.h"

namespace foundry::serve {

using nlohmann::json;

json error_json(const ApiError& e) {
  json err = {{"message", e.what()}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param.empty()) err["param"] = e.param;
  if (!e.code.empty()) err["code"] = e.code;
  return {{"error", err}};
}

std::string json_text(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

namespace {

ApiError bad(const std::string& param, const std::string& message, const std::string& code = "invalid_value") {
  return ApiError(400, message, param, code);
}

// The deepest nesting of arrays and objects in a body, found by a scan that skips strings. The
// JSON parser itself would handle any depth, but nothing a request needs nests deeper than a
// few levels, and a body of a million '[' is refused before a million nodes are built.
int nesting_depth(const std::string& body) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char ch : body) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (ch == '\\') escaped = true;
      else if (ch == '"') in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (ch == ']' || ch == '}') {
      depth--;
    }
  }
  return deepest;
}

double get_number(const json& body, const char* key, double lo, double hi, const std::string& range) {
  const json& v = body.at(key);
  if (!v.is_number()) throw bad(key, std::string("'") + key + "' must be a number");
  double x = v.get<double>();
  // NaN cannot arrive through JSON, but a number too large for a double arrives as infinity.
  if (!std::isfinite(x) || x < lo || x > hi)
    throw bad(key, std::string("'") + key + "' is " + json(x).dump() + ", expected " + range);
  return x;
}

long long get_integer(const json& body, const char* key, long long lo, long long hi) {
  const json& v = body.at(key);
  if (!v.is_number_integer()) throw bad(key, std::string("'") + key + "' must be an integer", "invalid_type");
  if (v.is_number_unsigned() && v.get<unsigned long long>() > (unsigned long long)hi)
    throw bad(key, std::string("'") + key + "' is " + v.dump() + ", expected at most " + std::to_string(hi));
  long long x = v.get<long long>();
  if (x < lo || x > hi) {
    throw bad(key, std::string("'") + key + "' is " + std::to_string(x) + ", expected " + std::to_string(lo) + " .. " +
                       std::to_string(hi));
  }
  return x;
}

std::string get_string(const json& v, const std::string& key) {
  if (!v.is_string()) throw bad(key, "'" + key + "' must be a string", "invalid_type");
  return v.get<std::string>();
}

bool get_bool(const json& body, const char* key) {
  const json& v = body.at(key);
  if (!v.is_boolean()) throw bad(key, std::string("'") + key + "' must be true or false", "invalid_type");
  return v.get<bool>();
}

// The fields each endpoint knows. Fields OpenAI has but this server does not implement are
// accepted only at their neutral value (n = 1, penalties 0, ...), so a client that sends its
// defaults works and one that asks for more hears that it cannot have it.
const std::set<std::string> kCommon = {"model",
                                       "max_tokens",
                                       "temperature",
                                       "top_p",
                                       "top_k",
                                       "seed",
                                       "stop",
                                       "stream",
                                       "stream_options",
                                       "n",
                                       "user",
                                       "presence_penalty",
                                       "frequency_penalty",
                                       "foundry_probs"};
const std::set<std::string> kCompletion = {"prompt", "logprobs", "echo", "best_of", "suffix"};
const std::set<std::string> kChat = {"messages", "logprobs", "top_logprobs", "max_completion_tokens"};

}  // namespace

// ANCHOR: parse_request
CompletionRequest parse_request(const std::string& text, bool chat, const Limits& limits) {
  if (nesting_depth(text) > 16) throw bad("", "the request body nests arrays/objects more than 16 deep", "");
  json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    throw ApiError(400, "the request body is not valid JSON", "", "invalid_json");
  }
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object", "", "invalid_json");
  for (const auto& [key, value] : body.items()) {
    if (!kCommon.count(key) && !(chat ? kChat : kCompletion).count(key))
      throw ApiError(400, "Unrecognized request argument supplied: " + key, key, "unknown_parameter");
  }
  // null means "not given" for every optional field, as in OpenAI's API.
  auto has = [&](const char* key) { return body.contains(key) && !body[key].is_null(); };

  CompletionRequest r;
  r.chat = chat;
  if (!has("model")) throw bad("model", "you must provide a model parameter", "missing_required_parameter");
  r.model = get_string(body["model"], "model");

  if (chat) {
    if (!has("messages")) throw bad("messages", "'messages' is required", "missing_required_parameter");
    const json& ms = body["messages"];
    if (!ms.is_array() || ms.empty()) throw bad("messages", "'messages' must be a non-empty array");
    if ((int)ms.size() > limits.max_messages)
      throw bad("messages", "at most " + std::to_string(limits.max_messages) + " messages");
    for (size_t i = 0; i < ms.size(); i++) {
      const std::string where = "messages[" + std::to_string(i) + "]";
      const json& m = ms[i];
      if (!m.is_object() || !m.contains("role") || !m.contains("content"))
        throw bad(where, where + " must be an object with 'role' and 'content'");
      ChatMessage msg{get_string(m["role"], where + ".role"), ""};
      if (msg.role != "system" && msg.role != "user" && msg.role != "assistant" && msg.role != "developer")
        throw bad(where + ".role", where + ".role is '" + msg.role + "', expected system, user or assistant");
      // content is a string, or an array of {"type": "text", "text": ...} parts
      const json& content = m["content"];
      if (content.is_array()) {
        for (const json& part : content) {
          if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text"))
            throw bad(where + ".content", where + ".content parts must be {\"type\": \"text\", \"text\": ...}");
          msg.content += get_string(part["text"], where + ".content");
        }
      } else {
        msg.content = get_string(content, where + ".content");
      }
      r.messages.push_back(std::move(msg));
    }
    r.max_tokens = limits.max_tokens;
  } else {
    if (!has("prompt")) throw bad("prompt", "'prompt' is required", "missing_required_parameter");
    const json& p = body["prompt"];
    // A one-element array of strings is the same prompt; batches of prompts are not supported.
    if (p.is_array() && p.size() == 1 && p[0].is_string()) r.prompt = p[0].get<std::string>();
    else if (p.is_string()) r.prompt = p.get<std::string>();
    else throw bad("prompt", "'prompt' must be a string (or an array of one string)", "invalid_type");
  }
  if (limits.max_prompt_bytes > 0) {
    size_t bytes = r.prompt.size();
    for (const ChatMessage& m : r.messages) bytes += m.content.size();
    if (bytes > limits.max_prompt_bytes)
      throw bad(chat ? "messages" : "prompt",
                "the prompt is " + std::to_string(bytes) + " bytes, more than " +
                    std::to_string(limits.max_prompt_bytes) + " this server accepts",
                "context_length_exceeded");
  }

  for (const char* key : {"max_tokens", "max_completion_tokens"})
    if (has(key)) r.max_tokens = (int)get_integer(body, key, 1, limits.max_tokens);
  if (has("temperature")) r.sampling.temperature = get_number(body, "temperature", 0, 2, "0 .. 2");
  if (has("top_p")) {
    r.sampling.top_p = get_number(body, "top_p", 0, 1, "0 < top_p <= 1");
    if (r.sampling.top_p == 0) throw bad("top_p", "'top_p' is 0, expected 0 < top_p <= 1");
  }
  if (has("top_k")) r.sampling.top_k = (int)get_integer(body, "top_k", 0, 1 << 30);
  if (has("seed")) {
    const json& s = body["seed"];
    if (!s.is_number_integer()) throw bad("seed", "'seed' must be an integer", "invalid_type");
    r.has_seed = true;
    r.seed = s.is_number_unsigned() ? s.get<uint64_t>() : (uint64_t)s.get<int64_t>();
  }
  if (has("stop")) {
    const json& s = body["stop"];
    if (s.is_string()) r.stop.push_back(s.get<std::string>());
    else if (s.is_array())
      for (const json& x : s) r.stop.push_back(get_string(x, "stop"));
    else throw bad("stop", "'stop' must be a string or an array of strings", "invalid_type");
    if ((int)r.stop.size() > limits.max_stop)
      throw bad("stop", "at most " + std::to_string(limits.max_stop) + " stop strings");
    for (const std::string& x : r.stop) {
      if (x.empty() || (int)x.size() > limits.max_stop_bytes)
        throw bad("stop", "stop strings must be 1 .. " + std::to_string(limits.max_stop_bytes) + " bytes long");
    }
  }
  if (has("stream")) r.stream = get_bool(body, "stream");
  if (has("stream_options")) {
    const json& so = body["stream_options"];
    if (!so.is_object()) throw bad("stream_options", "'stream_options' must be an object", "invalid_type");
    if (!r.stream) throw bad("stream_options", "'stream_options' is only allowed when 'stream' is true");
    for (const auto& [key, value] : so.items())
      if (key != "include_usage")
        throw ApiError(400, "Unrecognized stream option: " + key, "stream_options", "unknown_parameter");
    if (so.contains("include_usage")) r.include_usage = get_bool(so, "include_usage");
  }
  if (chat) {
    bool want = has("logprobs") && get_bool(body, "logprobs");
    int top = has("top_logprobs") ? (int)get_integer(body, "top_logprobs", 0, limits.max_top_logprobs) : 0;
    if (has("top_logprobs") && !want) throw bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    if (want) r.logprobs = top;
  } else if (has("logprobs")) {
    r.logprobs = (int)get_integer(body, "logprobs", 0, 5);  // OpenAI's completions allow at most 5
  }
  if (has("foundry_probs")) r.foundry_probs = (int)get_integer(body, "foundry_probs", 0, limits.max_top_logprobs);

  // Accepted at their neutral values only.
  if (has("n") && get_integer(body, "n", 1, 1) != 1) throw bad("n", "only n = 1 is supported");
  if (has("best_of")) get_integer(body, "best_of", 1, 1);
  for (const char* key : {"presence_penalty", "frequency_penalty"})
    if (has(key)) get_number(body, key, 0, 0, "0 (penalties are not supported)");
  if (has("echo") && get_bool(body, "echo")) throw bad("echo", "'echo' is not supported");
  if (has("suffix")) throw bad("suffix", "'suffix' is not supported");
  if (has("user")) get_string(body["user"], "user");
  return r;
}
// ANCHOR_END: parse_request

std::string render_plain_chat(const std::vector<ChatMessage>& messages) {
  std::string text;
  for (const ChatMessage& m : messages) text += m.role + ": " + m.content + "\n";
  return text + "assistant:";
}

namespace {
double safe_log(double p) { return p > 0 ? std::log(p) : -9999.0; }  // JSON has no -infinity
std::string valid_utf8(const std::string& s) {
  std::string quoted = json_text(json(s));  // "..." with bad bytes replaced
  return json::parse(quoted).get<std::string>();
}
json utf8_bytes(const std::string& s) {
  json b = json::array();
  for (unsigned char ch : s) b.push_back((int)ch);
  return b;
}
}  // namespace

json completion_logprobs(const std::vector<TokenInfo>& tokens, size_t offset) {
  json lp = {{"tokens", json::array()},
             {"token_logprobs", json::array()},
             {"top_logprobs", json::array()},
             {"text_offset", json::array()}};
  for (const TokenInfo& t : tokens) {
    lp["tokens"].push_back(valid_utf8(t.text));
    lp["token_logprobs"].push_back(t.logprob);
    json top = json::object();
    for (const Alternative& a : t.top) top[valid_utf8(a.text)] = safe_log(a.prob);
    lp["top_logprobs"].push_back(top);
    lp["text_offset"].push_back(offset);
    offset += t.text.size();
  }
  return lp;
}

json chat_logprobs(const std::vector<TokenInfo>& tokens) {
  json content = json::array();
  for (const TokenInfo& t : tokens) {
    json top = json::array();
    for (const Alternative& a : t.top)
      top.push_back({{"token", valid_utf8(a.text)}, {"logprob", safe_log(a.prob)}, {"bytes", utf8_bytes(a.text)}});
    content.push_back(
        {{"token", valid_utf8(t.text)}, {"logprob", t.logprob}, {"bytes", utf8_bytes(t.text)}, {"top_logprobs", top}});
  }
  return {{"content", content}};
}

json foundry_tokens(const std::vector<TokenInfo>& tokens) {
  json list = json::array();
  auto alts = [](const std::vector<Alternative>& v) {
    json a = json::array();
    for (const Alternative& x : v) a.push_back({{"id", x.id}, {"text", valid_utf8(x.text)}, {"prob", x.prob}});
    return a;
  };
  for (const TokenInfo& t : tokens) {
    list.push_back({{"id", t.id},
                    {"text", valid_utf8(t.text)},
                    {"prob", std::exp(t.logprob)},
                    {"before", alts(t.top)},
                    {"after", alts(t.after)}});
  }
  return list;
}

bool has_chat_template(const Tokenizer& tokenizer) {
  const auto* bpe = dynamic_cast<const BpeTokenizer*>(&tokenizer);
  return bpe != nullptr && has_chat_tokens(*bpe);
}

std::vector<int> chat_prompt_ids(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages, int context) {
  if (!has_chat_template(tokenizer)) return prompt_ids(tokenizer, render_plain_chat(messages), context);
  std::vector<foundry::ChatMessage> turns;
  for (const ChatMessage& m : messages) turns.push_back({m.role, m.content});
  std::vector<int> ids =
      render_chat(dynamic_cast<const BpeTokenizer&>(tokenizer), turns, /*add_generation_prompt=*/true).ids;
  if (static_cast<int>(ids.size()) > context) {
    throw std::invalid_argument("the conversation is " + std::to_string(ids.size()) +
                                " tokens in the chat template but the model's context (max_seq_len) is " +
                                std::to_string(context) + "; shorten the messages");
  }
  return ids;
}

}  // namespace foundry::serve
