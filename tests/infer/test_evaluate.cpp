// Evaluation windows, loss and perplexity.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <sstream>

#include "infer/evaluate.h"
#include "model/llama2c.h"

using namespace foundry;

TEST_CASE("eval windows: full windows of T, one short window for a short text", "[evaluate]") {
  ModelConfig c;
  c.max_seq_len = 8;
  CHECK(eval_windows(c, 10, 4, 0) == std::make_pair(2, 4));    // 9 targets: two windows, one left over
  CHECK(eval_windows(c, 9, 4, 0) == std::make_pair(2, 4));     // exactly 8 targets
  CHECK(eval_windows(c, 3, 4, 0) == std::make_pair(1, 2));     // too short: one window of 2
  CHECK(eval_windows(c, 100, 0, 0) == std::make_pair(12, 8));  // default window: max_seq_len
  CHECK(eval_windows(c, 100, 0, 5) == std::make_pair(5, 8));
  CHECK_THROWS_WITH(eval_windows(c, 1, 4, 0), Catch::Contains("at least 2"));
  CHECK_THROWS_WITH(eval_windows(c, 100, 9, 0), Catch::Contains("exceeds the model's max_seq_len"));
}

TEST_CASE("eval: a model with all-zero weights predicts uniformly: loss log V, perplexity V", "[evaluate]") {
  ModelConfig c;
  c.dim = 16, c.n_layers = 1, c.n_heads = 2, c.n_kv_heads = 1, c.vocab_size = 37, c.hidden_dim = 24, c.max_seq_len = 8;
  Model m = make_model(c);  // every weight zero: logits are all 0
  std::vector<int> tokens = {1, 5, 9, 2, 36, 0, 4, 4, 4, 7, 8, 3, 2, 1, 0, 5, 6};
  EvalResult r = evaluate(m, tokens, 0, 0);
  CHECK(r.windows == 2);
  CHECK(r.window_len == 8);
  CHECK(r.targets == 16);
  CHECK(r.mean_loss == Approx(std::log(37.0)).epsilon(1e-6));
  CHECK(r.perplexity == Approx(37.0).epsilon(1e-5));
  std::vector<int> bad = {1, 37};
  CHECK_THROWS_WITH(evaluate(m, bad, 0, 0), Catch::Contains("outside the model's vocabulary"));
}

TEST_CASE("eval on the llama2.c model: the mean of per-window losses, logits handed out in order", "[evaluate]") {
  Model m = load_llama2c_checkpoint(std::string(FOUNDRY_SOURCE_DIR) + "/tests/fixtures/llama2c/stories260K.bin");
  // A story the model itself wrote greedily (see reference.json): it should find it easy.
  std::vector<int> story = {1,   403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338,
                            401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328};
  int calls = 0;
  EvalResult r = evaluate(m, story, 16, 0, [&](const real* logits, int T, int V) {
    CHECK(T == 16);
    CHECK(V == 512);
    calls++;
  });
  CHECK(r.windows == 2);
  CHECK(calls == 2);
  // Each window separately, through the same function: the overall mean is their average.
  std::vector<int> w0(story.begin(), story.begin() + 17), w1(story.begin() + 16, story.begin() + 33);
  double l0 = evaluate(m, w0, 16, 0).mean_loss, l1 = evaluate(m, w1, 16, 0).mean_loss;
  CHECK(r.mean_loss == Approx((l0 + l1) / 2).epsilon(1e-9));
  // Its own greedy story is far more likely than uniform guessing (log 512 = 6.24).
  CHECK(r.mean_loss < 2.0);
  CHECK(r.perplexity == Approx(std::exp(r.mean_loss)));
}
