// Instruction / chat data (JSONL), read as `foundry sft` and `foundry eval-instruct --data` read it.
#include "fuzz/fuzz_util.h"
#include "tokenizer/chat_template.h"
#include "train/instruct.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    std::vector<foundry::InstructExample> ex = foundry::read_instruct_jsonl(text, "fuzz.jsonl");
    // What loads renders (every role is valid) and survives its own round trip.
    for (const auto& e : ex) foundry::render_chat_text(e.messages, true);
    const std::string once = foundry::instruct_to_jsonl(ex);
    const std::string twice = foundry::instruct_to_jsonl(foundry::read_instruct_jsonl(once, "round trip"));
    if (once != twice) foundry::fuzz::fail("instruction data changed in a JSONL round trip");
  } catch (const std::runtime_error&) {
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
