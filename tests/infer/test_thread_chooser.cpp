// Generation's thread count, chosen while it runs (infer/thread_chooser.h), and what makes that
// safe: a decoding step gives the same bits at any thread count.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "engine/parallel.h"
#include "engine/rng.h"
#include "infer/kv_cache.h"
#include "infer/thread_chooser.h"
#include "model/model.h"

using namespace foundry;

namespace {
// Runs `tokens` tokens through the chooser with a made-up time per token for each count;
// returns the count used for every token.
std::vector<int> drive(ThreadChooser& chooser, int tokens, double seconds_at_one, double seconds_at_two) {
  std::vector<int> used;
  for (int i = 0; i < tokens; i++) {
    const int n = chooser.next();
    used.push_back(n);
    chooser.record(n == 1 ? seconds_at_one : seconds_at_two);
  }
  return used;
}
}  // namespace

TEST_CASE("ThreadChooser: one thread asked, one thread given", "[threads]") {
  ThreadChooser one(1);
  for (int n : drive(one, 300, 1.0, 0.1)) REQUIRE(n == 1);
  CHECK(one.switches() == 0);
}

TEST_CASE("ThreadChooser: a loaded machine moves decoding to one thread, and back when it frees", "[threads]") {
  ThreadChooser chooser(2);
  // Two threads twice as slow as one (a neighbour holds a core): the first period is the two
  // windows alone, kProbe tokens at two threads then kProbe at one, and the count drops to 1.
  const int first = 2 * ThreadChooser::kProbe;
  std::vector<int> used = drive(chooser, first, 1.0, 2.0);
  for (int i = 0; i < ThreadChooser::kProbe; i++) REQUIRE(used[i] == 2);
  for (int i = ThreadChooser::kProbe; i < first; i++) REQUIRE(used[i] == 1);
  CHECK(chooser.current() == 1);
  CHECK(chooser.switches() == 1);
  // From then on one thread, with a probe of two threads at the end of each period.
  used = drive(chooser, ThreadChooser::kShortPeriod, 1.0, 2.0);
  for (int i = 0; i < ThreadChooser::kShortPeriod - ThreadChooser::kProbe; i++) REQUIRE(used[i] == 1);
  CHECK(used.back() == 2);
  CHECK(chooser.current() == 1);
  // That probe lost clearly, so the next period is four times as long. The neighbour stops: its
  // probe (at two threads) wins and two threads come back.
  drive(chooser, 4 * ThreadChooser::kShortPeriod, 1.0, 0.6);
  CHECK(chooser.current() == 2);
  CHECK(chooser.switches() == 2);
}

TEST_CASE("ThreadChooser: when the other count clearly loses, it probes less and less often", "[threads]") {
  ThreadChooser chooser(2);
  // Idle: two threads 1.6 times faster. Periods of 16 (the first), then 64, 256, 1024 tokens
  // (four times longer after each clear loss), each ending with kProbe tokens at one thread,
  // then kLongPeriod.
  const int tokens = 16 + 64 + 256 + 1024 + 1024;
  std::vector<int> used = drive(chooser, tokens, 1.6, 1.0);
  int probes = 0;
  for (int n : used) probes += n == 1;
  CHECK(probes == 5 * ThreadChooser::kProbe);
  CHECK(chooser.current() == 2);
  CHECK(chooser.switches() == 0);
  // The last probe sits at the end of a long period.
  CHECK(used[tokens - 1] == 1);
  CHECK(used[tokens - 1 - ThreadChooser::kProbe] == 2);
}

TEST_CASE("decode_step: the same logits, bit for bit, at one and at two threads", "[threads][decode]") {
  // Wide enough that the matrix-vector products and attention really split over two threads
  // (engine/parallel.h's thresholds), so the test sees the split.
  ModelConfig c;
  c.dim = 256, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.vocab_size = 1100, c.hidden_dim = 1024;
  c.max_seq_len = 24;
  Model m = make_model(c);
  Rng rng(11);
  init_weights(m, rng);
  auto run = [&](int threads) {
    const ScopedThreads scoped(threads);
    DecodeState state = make_decode_state(c);
    std::vector<real> all;
    for (int pos = 0; pos < c.max_seq_len; pos++) {
      const real* logits = decode_step(state, m, (pos * 37 + 5) % c.vocab_size);
      all.insert(all.end(), logits, logits + c.vocab_size);
    }
    return all;
  };
  const std::vector<real> one = run(1), two = run(2);
  REQUIRE(one.size() == two.size());
  CHECK(std::memcmp(one.data(), two.data(), one.size() * sizeof(real)) == 0);
}
