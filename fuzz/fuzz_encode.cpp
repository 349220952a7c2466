// Any bytes into the encoders: GPT-2's vocabulary, a small trained tokenizer.json, and
// llama2.c's tokenizer. Encoding must never fail and must give back the exact bytes; the
// streaming encoder must give the same ids.
#include <sstream>

#include "fuzz/fuzz_util.h"
#include "tokenizer/bpe.h"
#include "tokenizer/sentencepiece.h"

using namespace foundry;

namespace {
// Loaded once, before fuzzing starts: GPT-2's 50,000 merges take seconds under the sanitizers,
// which inside the first input would count against -timeout.
const BpeTokenizer* gpt2;
const BpeTokenizer* small;
const Tokenizer* llama;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  gpt2 = new BpeTokenizer(BpeTokenizer::load_gpt2(fuzz::source_path("tests/fixtures/tokenizer/gpt2/vocab.json"),
                                                  fuzz::source_path("tests/fixtures/tokenizer/gpt2/merges.txt")));
  small = new BpeTokenizer(BpeTokenizer::load_json(fuzz::source_path("tests/fixtures/tokenizer/hf/tokenizer.json")));
  llama = load_llama2c_tokenizer(fuzz::source_path("tests/fixtures/llama2c/tok512.bin")).release();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const BpeTokenizer* tok : {gpt2, small}) {
    const std::vector<int> ids = tok->encode(text);
    if (tok->decode(ids) != text) fuzz::fail("BPE: decode(encode(text)) != text");
    std::istringstream in(text);
    std::vector<int> streamed;
    tok->encode_stream(
        in, [&](const std::vector<int>& batch) { streamed.insert(streamed.end(), batch.begin(), batch.end()); }, 5);
    if (streamed != ids) fuzz::fail("BPE: encode_stream differs from encode");
  }
  // BOS decodes to its own piece; after it, the dummy prefix space is dropped and the text is back.
  std::vector<int> ids = {llama->bos_id()};
  for (int id : llama->encode(text)) ids.push_back(id);
  if (llama->decode(ids) != llama->decode({llama->bos_id()}) + text)
    fuzz::fail("llama2.c: decode({BOS} + encode(text)) != decode({BOS}) + text");
  return 0;
}
