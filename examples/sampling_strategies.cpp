// sampling_strategies: one model, one prompt, several ways of choosing the next token.
//
//   example_sampling_strategies [model_dir [prompt]]
//
// Without arguments it first trains a tiny model on Tiny Shakespeare for a few seconds (so the
// example needs nothing but the repository); with a model directory (from `foundry train`, its
// best/ or a checkpoint, or `foundry import`) it uses that model and its tokenizer.
//
// For each strategy it prints the continuation and the model's own "surprise" at it: the mean
// of −ln p(token) over the generated tokens, with p the plain softmax (temperature 1). Greedy
// picks the most likely token every time, so it is the least surprising and often loops; a high
// temperature flattens the distribution and wanders into unlikely tokens; top-k and top-p cut
// the unlikely tail away and keep the variety. Exits with status 1 if settings that must agree
// with greedy decoding (top-k 1, a tiny top-p) do not.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "infer/generate.h"
#include "model/model_io.h"
#include "tokenizer/bpe_train.h"
#include "train/adamw.h"
#include "train/data_loader.h"
#include "train/lr_schedule.h"
#include "train/trainer.h"

using namespace foundry;

// A few seconds of training on the first 256 KiB of Tiny Shakespeare: enough for the model to
// learn names, line breaks and common words, which is all the comparison needs.
static Model train_tiny_model(std::unique_ptr<Tokenizer>& tokenizer_out) {
  std::ifstream in(std::string(FOUNDRY_SOURCE_DIR) + "/data/tinyshakespeare.txt", std::ios::binary);
  std::string text(256 * 1024, '\0');
  in.read(&text[0], static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  BpeTrainOptions tok_options;
  tok_options.vocab_size = 384;
  auto tokenizer = std::make_unique<BpeTokenizer>(train_bpe(text, tok_options));
  const std::vector<int> tokens = tokenizer->encode(text);

  ModelConfig config;
  config.dim = 96;
  config.n_layers = 2;
  config.n_heads = 4;
  config.n_kv_heads = 4;
  config.vocab_size = tokenizer->vocab_size();
  config.hidden_dim = 256;
  config.max_seq_len = 64;
  Model model = make_model(config);
  Rng init_rng(1337);
  init_weights(model, init_rng);

  const int B = 8, T = 64, steps = 250;
  DataLoader loader = make_data_loader(tokens, B, T, BatchOrder::random, 1, "tinyshakespeare");
  Batch batch;
  Tape tape;
  TrainingSection tc;  // one micro-batch per step, lr 3e-3 after 20 warmup steps, cosine to 3e-4
  tc.batch_size = B;
  tc.seq_len = T;
  tc.lr = 3e-3;
  tc.min_lr = 3e-4;
  tc.warmup_steps = 20;
  tc.max_steps = steps;
  tc.grad_clip = 1.0;
  AdamW opt = make_adamw(model.parameters());
  StepResult stats{};
  for (int step = 0; step < steps; ++step) stats = training_step(model, opt, tape, loader, batch, tc, step);
  std::printf("trained a %zu-parameter model for %d steps; last training loss %.3f\n", model.num_parameters(), steps,
              stats.loss);
  tokenizer_out = std::move(tokenizer);
  return model;
}

struct Strategy {
  const char* name;
  SamplingSettings settings;  // temperature, top_k, top_p
};

int main(int argc, char** argv) {
  try {
    std::unique_ptr<Tokenizer> tokenizer;
    Model model = argc > 1 ? load_model(argv[1]) : train_tiny_model(tokenizer);
    if (argc > 1) tokenizer = load_tokenizer(argv[1]);
    const std::string prompt = argc > 2 ? argv[2] : "KING RICHARD:\n";
    const int new_tokens = std::min(48, model.config.max_seq_len - 16);

    const Strategy strategies[] = {
        {"greedy", {0.0, 0, 1.0}},
        {"temperature 0.7", {0.7, 0, 1.0}},
        {"temperature 1.0", {1.0, 0, 1.0}},
        {"temperature 1.5", {1.5, 0, 1.0}},
        {"top-k 10", {1.0, 10, 1.0}},
        {"top-p 0.9", {1.0, 0, 0.9}},
        {"t 0.8, top-k 40, top-p 0.95", {0.8, 40, 0.95}},
        // These two must reproduce greedy decoding: one candidate survives each filter.
        {"top-k 1 (= greedy)", {1.0, 1, 1.0}},
        {"top-p 1e-6 (= greedy)", {1.0, 0, 1e-6}},
    };
    DecodeState state = make_decode_state(model.config);  // the KV cache, allocated once, reused per run
    const std::vector<int> ids = prompt_ids(*tokenizer, prompt, model.config.max_seq_len);
    std::vector<int> greedy_tokens;
    int failures = 0;
    for (const Strategy& s : strategies) {
      Sampler sampler(s.settings, /*seed=*/42);  // the same seed for every strategy: a fair comparison
      double surprise = 0;
      auto score = [&](int id) {
        // subtle: generate() calls on_token before the next decode_step, so state.logits still
        // holds the logits this token was drawn from.
        const real* logits = state.logits.ptr();
        double m = logits[0], total = 0;
        for (int v = 1; v < model.config.vocab_size; ++v) m = std::max(m, (double)logits[v]);
        for (int v = 0; v < model.config.vocab_size; ++v) total += std::exp(logits[v] - m);
        surprise += std::log(total) - (logits[id] - m);  // −ln softmax(logits)[id]
      };
      GenerationResult r = generate(model, state, sampler, ids, new_tokens, stop_ids(*tokenizer), score);
      if (s.settings.temperature == 0) greedy_tokens = r.tokens;
      const bool must_match = s.settings.top_k == 1 || s.settings.top_p < 1e-3;
      const bool matches = r.tokens == greedy_tokens;
      if (must_match && !matches) failures++;
      std::printf("--- %s: %zu tokens, surprise %.3f nats/token%s\n%s%s\n", s.name, r.tokens.size(),
                  r.tokens.empty() ? 0.0 : surprise / r.tokens.size(),
                  must_match ? (matches ? " (same as greedy: ok)" : " (DIFFERS from greedy)") : "", prompt.c_str(),
                  tokenizer->decode(r.tokens).c_str());
    }
    if (failures > 0) {
      std::fprintf(stderr, "FAILED: %d strategies that must equal greedy decoding did not\n", failures);
      return 1;
    }
    std::printf("ok: top-k 1 and a tiny top-p reproduce greedy decoding\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sampling_strategies: %s\n", e.what());
    return 1;
  }
  return 0;
}
