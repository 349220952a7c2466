// One assistant turn through the chat template (chat.h).
#include "infer/chat.h"

#include <stdexcept>

#include "infer/generate.h"

namespace foundry {

std::vector<int> chat_stop_ids(const BpeTokenizer& tokenizer) {
  std::vector<int> stop;
  if (tokenizer.special_id(kImEnd) >= 0) stop.push_back(tokenizer.special_id(kImEnd));
  if (tokenizer.eos_id() >= 0) stop.push_back(tokenizer.eos_id());
  return stop;
}

int fit_history(const BpeTokenizer& tokenizer, std::vector<ChatMessage>& history, int max_seq_len, int reserve) {
  int dropped = 0;
  const size_t keep_first = !history.empty() && history[0].role == "system" ? 1 : 0;
  while (true) {
    const size_t n = render_chat(tokenizer, history, true).ids.size();
    if (static_cast<int>(n) + reserve <= max_seq_len) return dropped;
    if (history.size() <= keep_first + 1)
      throw std::invalid_argument("the message needs " + std::to_string(n) + " positions and the answer " +
                                  std::to_string(reserve) + " more, but the model's context holds " +
                                  std::to_string(max_seq_len));
    history.erase(history.begin() + static_cast<long>(keep_first));
    ++dropped;
  }
}

ChatReply chat_reply(const Model& model, const BpeTokenizer& tokenizer, DecodeState& state, Sampler& sampler,
                     const std::vector<ChatMessage>& history, int max_new_tokens,
                     const std::function<void(const std::string&)>& on_text) {
  const std::vector<int> prompt = render_chat(tokenizer, history, true).ids;
  if (static_cast<int>(prompt.size()) >= model.config.max_seq_len)
    throw std::invalid_argument("the conversation needs " + std::to_string(prompt.size()) +
                                " positions; the model's context holds " + std::to_string(model.config.max_seq_len));
  ChatReply reply;
  reply.prompt_tokens = prompt.size();
  TextStream stream(tokenizer, prompt);
  const std::vector<int> stop = chat_stop_ids(tokenizer);
  GenerationResult r = generate(model, state, sampler, prompt, max_new_tokens, stop, [&](int id) {
    std::string piece = stream.push(id);
    reply.text += piece;
    if (on_text) on_text(piece);
  });
  reply.tokens = r.tokens;
  reply.stop_reason = r.stop_reason;
  if (!stop.empty() && r.stop_reason == "stop token " + std::to_string(stop[0])) reply.stop_reason = "end of turn";
  return reply;
}

}  // namespace foundry
