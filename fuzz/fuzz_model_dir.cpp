// A model directory: config.json, model.safetensors and a tokenizer (tokenizer.json when the
// third part starts with '{', else tokenizer.bin), as `foundry generate` loads them. When all
// three load and agree, two tokens are generated greedily: broken weights must be an error.
#include "fuzz/fuzz_util.h"
#include "infer/generate.h"
#include "model/model_io.h"
#include "train/prepare.h"

using namespace foundry;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string> parts = fuzz::split_parts(data, size, 3);
  fuzz::write_file("config.json", parts[0]);
  fuzz::write_file("model.safetensors", parts[1]);
  const bool json = !parts[2].empty() && parts[2][0] == '{';
  fuzz::remove_file(json ? "tokenizer.bin" : "tokenizer.json");
  fuzz::write_file(json ? "tokenizer.json" : "tokenizer.bin", parts[2]);
  try {
    Model model = load_model(fuzz::scratch_dir());
    std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(fuzz::scratch_dir());
    check_model_tokenizer_vocab(model.config.vocab_size, "config.json", tokenizer->vocab_size(), "tokenizer");
    std::vector<int> ids = prompt_ids(*tokenizer, "Once", model.config.max_seq_len);
    DecodeState state = make_decode_state(model.config);
    Sampler greedy({0.0, 0, 1.0});
    GenerationResult r = generate(model, state, greedy, ids, 2, stop_ids(*tokenizer));
    for (int id : r.tokens)
      if (id < 0 || id >= tokenizer->vocab_size()) fuzz::fail("generated an id outside the vocabulary");
    tokenizer->decode(r.tokens);
  } catch (const std::exception&) {
  }
  return 0;
}
