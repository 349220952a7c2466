// OpenAI's GPT-2 files: vocab.json and merges.txt.
#include "fuzz/fuzz_util.h"
#include "tokenizer/bpe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string> parts = foundry::fuzz::split_parts(data, size, 2);
  const std::string vocab = foundry::fuzz::write_file("vocab.json", parts[0]);
  const std::string merges = foundry::fuzz::write_file("merges.txt", parts[1]);
  try {
    foundry::BpeTokenizer tok = foundry::BpeTokenizer::load_gpt2(vocab, merges);
    const std::string text = "Hello, world! \xF0\x9F\x99\x82 <|endoftext|>";
    if (tok.decode(tok.encode(text)) != text) foundry::fuzz::fail("decode(encode(text)) != text");
  } catch (const std::exception&) {
  }
  return 0;
}
