// Any sequence of ids (4 bytes each, little-endian) into both decoders and the streaming text
// of `foundry generate`: an id outside the vocabulary is std::invalid_argument, nothing worse.
#include <cstring>

#include "fuzz/fuzz_util.h"
#include "infer/generate.h"
#include "tokenizer/bpe.h"
#include "tokenizer/sentencepiece.h"

using namespace foundry;

namespace {
const BpeTokenizer* small;  // loaded before fuzzing starts (LLVMFuzzerInitialize)
const Tokenizer* llama;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  small = new BpeTokenizer(BpeTokenizer::load_json(fuzz::source_path("tests/fixtures/tokenizer/hf/tokenizer.json")));
  llama = load_llama2c_tokenizer(fuzz::source_path("tests/fixtures/llama2c/tok512.bin")).release();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<int> ids(size / 4);
  if (!ids.empty()) std::memcpy(ids.data(), data, ids.size() * 4);
  // Small ids are the interesting ones: fold most of them into a little past the vocabulary.
  for (int& id : ids)
    if (id > 0 && (id & 0x40000000) == 0) id %= 600;
  for (const Tokenizer* tok : {static_cast<const Tokenizer*>(small), llama}) {
    bool valid = true;
    for (int id : ids) valid = valid && id >= 0 && id < tok->vocab_size();
    try {
      const std::string text = tok->decode(ids);
      if (!valid) fuzz::fail("decode accepted an id outside the vocabulary");
      TextStream stream(*tok, {});
      std::string streamed;
      for (int id : ids) streamed += stream.push(id);
      if (streamed != text) fuzz::fail("TextStream differs from decode");
    } catch (const std::invalid_argument&) {
      if (valid) fuzz::fail("decode refused valid ids");
    }
  }
  try {
    small->decode_text(ids);
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
