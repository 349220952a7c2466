// A tiny base model directory (random weights, a BPE tokenizer without the chat tokens) and a
// small instruction file made from the corpus: what the fine-tuning tests run on in seconds.
#pragma once

#include <string>
#include <vector>

#include "common/file_io.h"
#include "engine/rng.h"
#include "tests/common/test_helpers.h"
#include "tokenizer/bpe_train.h"
#include "train/checkpoint.h"
#include "train/instruct.h"

namespace foundry::test {

struct TinyChatBase {
  std::string dir, data;
};

// Built once per test binary under FOUNDRY_BINARY_DIR/<relative>: the first n_train training
// examples (and every held-out name instruction), a tokenizer of vocab_size tokens.
inline TinyChatBase make_tiny_chat_base(const std::string& relative, int n_train = 40, int vocab_size = 400) {
  TinyChatBase t;
  const std::string root = fresh_dir(relative);
  t.dir = root + "/base";
  t.data = root + "/instruct.jsonl";
  const std::string corpus = load_corpus("tinystories.txt");
  BpeTrainOptions opt;
  opt.vocab_size = vocab_size;
  opt.special_tokens = {"<|endoftext|>"};
  BpeTokenizer tok = train_bpe(corpus.substr(0, 100000), opt);
  ModelConfig c;
  c.dim = 32;
  c.n_layers = 1;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.vocab_size = tok.vocab_size();
  c.hidden_dim = 64;
  c.max_seq_len = 96;
  Model m = make_model(c);
  Rng rng(3);
  init_weights(m, rng);
  save_model_with_tokenizer(m, t.dir, &tok);
  std::vector<InstructExample> small;
  for (const InstructExample& e : make_instruct(corpus))
    if ((e.split == "train" && static_cast<int>(small.size()) < n_train) || (e.split == "test" && e.kind == "name"))
      small.push_back(e);
  write_file_atomic(t.data, instruct_to_jsonl(small));
  return t;
}

}  // namespace foundry::test
