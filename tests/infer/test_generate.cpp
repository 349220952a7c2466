// The generation loop: prompts, stop tokens, limits, the full context, streaming text.
#include <catch2/catch.hpp>

#include "engine/rng.h"
#include "infer/generate.h"
#include "model/llama2c.h"
#include "tokenizer/sentencepiece.h"

using namespace foundry;

namespace {
const std::string kDir = std::string(FOUNDRY_SOURCE_DIR) + "/tests/fixtures/llama2c";
}

TEST_CASE("generate: limit, stop tokens and a full context", "[generate]") {
  ModelConfig c;
  c.dim = 16, c.n_layers = 1, c.n_heads = 2, c.n_kv_heads = 2, c.vocab_size = 20, c.hidden_dim = 24, c.max_seq_len = 6;
  Model m = make_model(c);
  Rng rng(7);
  init_weights(m, rng);
  DecodeState state = make_decode_state(c);
  Sampler greedy({0.0, 0, 1.0});

  GenerationResult r = generate(m, state, greedy, {3, 4}, 2, {});
  CHECK(r.tokens.size() == 2);
  CHECK(r.stop_reason == "limit");
  CHECK(generate(m, state, greedy, {3, 4}, 0, {}).tokens.empty());

  // 2 prompt positions + 4 fed new tokens fill the 6 positions; the 5th new token needs no slot.
  r = generate(m, state, greedy, {3, 4}, 100, {});
  CHECK(r.tokens.size() == 5);
  CHECK(r.stop_reason == "context full");

  // Stopping on the token greedy picks first: nothing is emitted, the reason names it.
  int first = r.tokens[0];
  std::vector<int> seen;
  r = generate(m, state, greedy, {3, 4}, 100, {first}, [&](int id) { seen.push_back(id); });
  CHECK(r.tokens.empty());
  CHECK(seen.empty());
  CHECK(r.stop_reason == "stop token " + std::to_string(first));

  CHECK_THROWS_AS(generate(m, state, greedy, {}, 5, {}), std::invalid_argument);
  CHECK_THROWS_AS(generate(m, state, greedy, std::vector<int>(7, 1), 5, {}), std::invalid_argument);
}

TEST_CASE("generate: llama2.c prompts start with BOS, stop on BOS and EOS, stream the text", "[generate]") {
  auto tok = load_llama2c_tokenizer(kDir + "/tok512.bin");
  CHECK(prompt_ids(*tok, "", 512) == std::vector<int>{1});
  std::vector<int> ids = prompt_ids(*tok, "Once upon a time", 512);
  CHECK(ids == std::vector<int>{1, 403, 407, 261, 378});
  CHECK(stop_ids(*tok) == std::vector<int>{1, 2});
  CHECK_THROWS_WITH(prompt_ids(*tok, "Once upon a time", 3), Catch::Contains("max_seq_len) is 3"));

  // Streaming piece by piece gives the same text as decoding everything after BOS.
  TextStream stream(*tok, {1});
  std::string text;
  for (size_t i = 1; i < ids.size(); i++) text += stream.push(ids[i]);
  CHECK(text == "Once upon a time");
  text += stream.push(13);  // <0x0A>
  CHECK(text == "Once upon a time\n");

  Model m = load_llama2c_checkpoint(kDir + "/stories260K.bin");
  DecodeState state = make_decode_state(m.config);
  Sampler sampled({0.8, 40, 0.95}, 5), again({0.8, 40, 0.95}, 5);
  GenerationResult a = generate(m, state, sampled, ids, 40, stop_ids(*tok));
  GenerationResult b = generate(m, state, again, ids, 40, stop_ids(*tok));
  CHECK(a.tokens == b.tokens);  // same seed, same story
  CHECK(!a.tokens.empty());
  for (int id : a.tokens) CHECK((id != 1 && id != 2));
}
