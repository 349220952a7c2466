// An HTTP request body of `foundry serve` (/v1/completions when the first byte is even,
// /v1/chat/completions when odd), parsed and validated as the server does, then rendered the
// way the server renders it. A body that parses must satisfy every bound the server relies on.
#include "fuzz/fuzz_util.h"
#include "serve/api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool chat = data[0] % 2 == 1;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  foundry::serve::Limits limits;
  limits.max_tokens = 64;
  try {
    foundry::serve::CompletionRequest r = foundry::serve::parse_request(body, chat, limits);
    if (r.max_tokens < 1 || r.max_tokens > limits.max_tokens) foundry::fuzz::fail("max_tokens outside its bounds");
    if (!(r.sampling.temperature >= 0 && r.sampling.temperature <= 2)) foundry::fuzz::fail("temperature out of range");
    if (!(r.sampling.top_p > 0 && r.sampling.top_p <= 1)) foundry::fuzz::fail("top_p out of range");
    if ((int)r.stop.size() > limits.max_stop) foundry::fuzz::fail("too many stop strings");
    if (r.logprobs > limits.max_top_logprobs) foundry::fuzz::fail("too many alternatives");
    if (chat && r.messages.empty()) foundry::fuzz::fail("a chat request without messages");
    const std::string text = chat ? foundry::serve::render_plain_chat(r.messages) : r.prompt;
    // Whatever bytes the request carried, answering with them must produce valid JSON.
    foundry::serve::TokenInfo t;
    t.text = text.substr(0, 16);
    t.top.push_back({1, text.substr(0, 3), 0.5});
    t.after.push_back({1, text.substr(0, 3), 1.0});
    nlohmann::json answer = {{"text", text},
                             {"lp", foundry::serve::completion_logprobs({t}, 0)},
                             {"chat", foundry::serve::chat_logprobs({t})},
                             {"pg", foundry::serve::foundry_tokens({t})}};
    if (nlohmann::json::parse(foundry::serve::json_text(answer), nullptr, false).is_discarded())
      foundry::fuzz::fail("an answer that is not valid JSON");
  } catch (const foundry::serve::ApiError& e) {
    if (e.status != 400) foundry::fuzz::fail("a request body error that is not 400");
  }
  return 0;
}
