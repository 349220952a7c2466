// llama2.c's tokenizer.bin. A tokenizer that loads must give back any text after BOS (byte
// fallback covers every byte), and serialize to the bytes it was read from.
#include "fuzz/fuzz_util.h"
#include "tokenizer/sentencepiece.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    auto tok = foundry::parse_llama2c_tokenizer(bytes, "tokenizer.bin");
    if (tok->serialize() != bytes) foundry::fuzz::fail("serialize() differs from the bytes read");
    const std::string text = "Once upon a time, caf\xC3\xA9 \xF0\x9F\x99\x82\n\x80";
    std::vector<int> ids = {tok->bos_id()};
    for (int id : tok->encode(text)) ids.push_back(id);
    (void)tok->decode(ids);  // the pieces are arbitrary, so only the ids' validity is checked
  } catch (const std::exception&) {
  }
  return 0;
}
