// The ChatML template (see chat_template.h for the format and why it is encoded piece by piece).
#include "tokenizer/chat_template.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/file_io.h"

namespace foundry {

void check_chat_roles(const std::vector<ChatMessage>& messages) {
  for (size_t k = 0; k < messages.size(); ++k) {
    const std::string& r = messages[k].role;
    if (r != "system" && r != "user" && r != "assistant")
      throw std::invalid_argument("chat message " + std::to_string(k) + ": role \"" + escape_bytes(r) +
                                  "\" is not one of system, user, assistant");
  }
}

std::string render_chat_text(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  check_chat_roles(messages);
  std::string text;
  for (const ChatMessage& m : messages) {
    text += kImStart;
    text += m.role + "\n" + m.content;
    text += kImEnd;
    text += "\n";
  }
  if (add_generation_prompt) text += std::string(kImStart) + "assistant\n";
  return text;
}

// ANCHOR: render_chat
ChatTokens render_chat(const BpeTokenizer& tokenizer, const std::vector<ChatMessage>& messages,
                       bool add_generation_prompt) {
  check_chat_roles(messages);
  const int start = tokenizer.special_id(kImStart), end = tokenizer.special_id(kImEnd);
  if (start < 0 || end < 0)
    throw std::invalid_argument(
        "render_chat: the tokenizer has no <|im_start|>/<|im_end|> special tokens "
        "(a base model: fine-tune it with `foundry sft` first)");
  ChatTokens out;
  // Appends one piece: a special token's id, or ordinary text encoded with no special matching.
  auto special = [&](int id, const char* name, bool target) {
    out.text += name;
    out.ids.push_back(id);
    out.target.push_back(target ? 1 : 0);
  };
  auto plain = [&](const std::string& s, bool target) {
    out.text += s;
    for (int id : tokenizer.encode_ordinary(s)) {
      out.ids.push_back(id);
      out.target.push_back(target ? 1 : 0);
    }
  };
  for (const ChatMessage& m : messages) {
    const bool answer = m.role == "assistant";
    special(start, kImStart, false);
    plain(m.role + "\n", false);
    plain(m.content, answer);
    special(end, kImEnd, answer);  // the model must learn to close its own turn
    plain("\n", false);
  }
  if (add_generation_prompt) {
    special(start, kImStart, false);
    plain("assistant\n", false);
  }
  return out;
}
// ANCHOR_END: render_chat

const char* chat_template_jinja() {
  return "{% for message in messages %}"
         "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
         "{% endfor %}"
         "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
}

bool has_chat_tokens(const BpeTokenizer& tokenizer) {
  return tokenizer.special_id(kImStart) >= 0 && tokenizer.special_id(kImEnd) >= 0;
}

BpeTokenizer add_chat_tokens(const BpeTokenizer& tokenizer) {
  std::vector<std::string> vocab = tokenizer.vocab();
  std::vector<int> specials = tokenizer.special_ids();
  for (const char* name : {kImStart, kImEnd}) {
    if (tokenizer.special_id(name) >= 0) continue;
    specials.push_back(static_cast<int>(vocab.size()));
    vocab.emplace_back(name);
  }
  return BpeTokenizer(std::move(vocab), tokenizer.merges(), std::move(specials));
}

void save_chat_config(const std::string& dir) {
  nlohmann::ordered_json j;
  j["chat_template"] = chat_template_jinja();
  j["bos_token"] = nullptr;
  j["eos_token"] = kImEnd;
  j["added_tokens"] = {kImStart, kImEnd};
  write_file_atomic(dir + "/tokenizer_config.json", j.dump(1) + "\n");
}

}  // namespace foundry
