// standalone: LLM Foundry from a project of your own. It trains a byte-pair tokenizer on a short
// text, trains a tiny model on it for a few steps, saves and reloads it, and generates.
//
//   standalone [steps]
//
// Exits with status 1 when the loss did not fall or the reloaded model disagrees, so a test can
// run it. See CMakeLists.txt beside it for how it is built against the installed package.
#include <unistd.h>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/tape.h"
#include "infer/generate.h"
#include "model/model.h"
#include "model/model_io.h"
#include "tokenizer/bpe_train.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/data_loader.h"
#include "train/grad_clip.h"

using namespace foundry;

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 60;
  if (steps < 10) {
    std::fprintf(stderr, "standalone: steps = %d, expected at least 10\n", steps);
    return 2;
  }

  // 1. A corpus and a tokenizer: 256 bytes + merges + the end-of-text token.
  std::string text;
  const char* lines[] = {"the cat sat on the mat. ", "the dog sat on the log. ", "a cat and a dog met. ",
                         "the mat was red and the log was old. "};
  for (int i = 0; i < 200; ++i) text += lines[(i * 7) % 4];
  BpeTrainOptions tok_options;
  tok_options.vocab_size = 300;
  tok_options.special_tokens = {"<|endoftext|>"};
  BpeTokenizer tokenizer = train_bpe(text, tok_options);
  const std::vector<int> tokens = tokenizer.encode(text);  // (n)
  std::printf("tokenizer: %d tokens; corpus: %zu bytes -> %zu tokens\n", tokenizer.vocab_size(), text.size(),
              tokens.size());

  // 2. A tiny model whose vocabulary is the tokenizer's.
  ModelConfig config;
  config.dim = 32;
  config.n_layers = 2;
  config.n_heads = 4;
  config.n_kv_heads = 2;
  config.vocab_size = tokenizer.vocab_size();
  config.hidden_dim = 96;
  config.max_seq_len = 32;
  Model model = make_model(config);
  Rng init_rng(7);
  init_weights(model, init_rng);

  // 3. The training loop: batch, forward, backward, clip, AdamW.
  const int B = 4, T = 32;
  DataLoader loader = make_data_loader(tokens, B, T, BatchOrder::random, /*seed=*/1, "corpus");
  Batch batch;
  AdamW opt = make_adamw(model.parameters());
  const AdamWSettings adamw{/*beta1=*/0.9, /*beta2=*/0.95, /*eps=*/1e-8, /*weight_decay=*/0.0};
  Tape tape;
  double first = 0, last = 0;
  for (int step = 1; step <= steps; ++step) {
    next_batch(loader, batch);
    model.zero_grad();
    tape.clear();
    Var loss = model_loss(tape, model, batch.inputs, batch.targets, B, T);
    tape.backward(loss);
    clip_grad_norm(model.parameters(), 1.0);
    adamw_step(opt, model.parameters(), 1e-2, adamw);
    const double value = tape.value(loss)[0];
    if (step == 1) first = value;
    last = value;
  }
  std::printf("loss: step 1 %.3f, step %d %.3f (uniform: ln %d = %.3f)\n", first, steps, last, config.vocab_size,
              std::log(config.vocab_size));

  // 4. Save (a model directory `foundry generate --model` loads too) and reload.
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("foundry_standalone_" + std::to_string(::getpid()))).string();
  save_model_with_tokenizer(model, dir, &tokenizer);
  Model loaded = load_model(dir);

  // 5. Greedy generation with the KV cache, from the reloaded model.
  DecodeState state = make_decode_state(loaded.config);
  Sampler sampler(SamplingSettings{/*temperature=*/0.0, 0, 1.0});
  const std::vector<int> prompt = prompt_ids(tokenizer, "the cat", loaded.config.max_seq_len);
  GenerationResult r = generate(loaded, state, sampler, prompt, 20, stop_ids(tokenizer));
  std::printf("generated: \"the cat%s\"\n", tokenizer.decode(r.tokens).c_str());
  std::filesystem::remove_all(dir);

  if (!(last < first - 1.0)) {
    std::fprintf(stderr, "FAILED: the loss did not fall by at least 1 nat\n");
    return 1;
  }
  if (r.tokens.empty()) {
    std::fprintf(stderr, "FAILED: nothing was generated\n");
    return 1;
  }
  std::printf("ok\n");
  return 0;
}
