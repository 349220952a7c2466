// A decoding step computes the same bits at any thread count: every row of a matrix-vector
// product is one dot product whatever block it falls in, and attention's heads are independent.
// (So generation could change its thread count between tokens without changing a token.)
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "engine/parallel.h"
#include "engine/rng.h"
#include "infer/kv_cache.h"
#include "model/model.h"

using namespace foundry;

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
