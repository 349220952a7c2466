// tokenizer.json (Hugging Face's format). A tokenizer that loads must encode and decode any
// text back to its exact bytes: byte-level BPE has no unknown token.
#include "fuzz/fuzz_util.h"
#include "tokenizer/bpe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    foundry::BpeTokenizer tok =
        foundry::BpeTokenizer::from_hf_json({reinterpret_cast<const char*>(data), size}, "tokenizer.json");
    const std::string text = "Hello, world! caf\xC3\xA9 \xF0\x9F\x99\x82 \x80\xff  12345\n\n<|endoftext|>x";
    if (tok.decode(tok.encode(text)) != text) foundry::fuzz::fail("decode(encode(text)) != text");
    // Written out and read back, it must still encode the same (or refuse to be written).
    std::string written;
    try {
      written = tok.to_hf_json();
    } catch (const std::runtime_error&) {
      return 0;  // a vocabulary tokenizer.json cannot hold (two ids with the same bytes)
    }
    foundry::BpeTokenizer again = foundry::BpeTokenizer::from_hf_json(written, "round trip");
    if (again.encode(text) != tok.encode(text)) foundry::fuzz::fail("a saved tokenizer encodes differently");
  } catch (const std::exception&) {
  }
  return 0;
}
