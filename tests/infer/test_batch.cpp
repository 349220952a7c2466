// The batched forward (infer/batch.h): the same bits as one sequence at a time through
// decode_step, whatever else is in the batch; prefill in one pass equals feeding the prompt one
// position at a time; bad rows are refused before any cache changes.
#include <catch2/catch.hpp>

#include <cstring>

#include "engine/parallel.h"
#include "engine/rng.h"
#include "infer/batch.h"
#include "infer/generate.h"
#include "infer/sampling.h"
#include "model/model.h"
#include "model/quantize.h"

using namespace foundry;

namespace {

// Widths that are not multiples of the SIMD width (hidden 200, head 12), so a kernel path that
// differed between the middle and the end of a block would show up in the bits.
ModelConfig batch_config() {
  ModelConfig c;
  c.dim = 96;
  c.n_layers = 2;
  c.n_heads = 8;
  c.n_kv_heads = 4;
  c.vocab_size = 203;
  c.hidden_dim = 200;
  c.max_seq_len = 48;
  c.tie_embeddings = false;
  return c;
}

Model random_model(const ModelConfig& c, uint64_t seed) {
  Model m = make_model(c);
  Rng rng(seed);
  init_weights(m, rng);
  for (NamedTensor& p : m.parameters())
    if (p.value->rank() == 2)
      for (real& v : p.value->data) v *= 5;  // logits of order 1: greedy choices are not ties of noise
  return m;
}

bool same_bits(const real* a, const real* b, size_t n) { return std::memcmp(a, b, n * sizeof(real)) == 0; }

std::vector<int> some_prompt(int length, int salt, int V) {
  std::vector<int> ids;
  for (int i = 0; i < length; i++) ids.push_back((i * 31 + salt * 17 + 5) % V);
  return ids;
}

// A little continuous-batching loop: sequence s joins at step join[s] with its prompt
// prefilled in one pass, then every step decodes one token of every active sequence in one
// forward_batch. Returns each sequence's new tokens.
std::vector<std::vector<int>> run_batched(const Model& m, const std::vector<std::vector<int>>& prompts,
                                          const std::vector<int>& join, const std::vector<SamplingSettings>& settings,
                                          const std::vector<uint64_t>& seeds, int new_tokens) {
  const ModelConfig& c = m.config;
  size_t n = prompts.size();
  std::vector<KVCache> caches;
  std::vector<Sampler> samplers;
  for (size_t s = 0; s < n; s++) {
    caches.push_back(make_kv_cache(c));
    samplers.emplace_back(settings[s], seeds[s]);
  }
  std::vector<std::vector<int>> out(n);
  std::vector<int> last(n, -1);  // the token to feed next; -1: not yet joined
  BatchState batch = make_batch_state(c, 64);
  for (int step = 0;; step++) {
    std::vector<BatchRow> rows;
    std::vector<size_t> owner;  // which sequence each logits row belongs to
    bool any = false;
    for (size_t s = 0; s < n; s++) {
      if ((int)out[s].size() >= new_tokens) continue;
      any = true;
      if (step < join[s]) continue;
      if (last[s] < 0) {
        for (size_t i = 0; i < prompts[s].size(); i++)
          rows.push_back({&caches[s], prompts[s][i], i + 1 == prompts[s].size()});
      } else {
        rows.push_back({&caches[s], last[s], true});
      }
      owner.push_back(s);
    }
    if (!any) break;
    if (rows.empty()) continue;
    const real* logits = forward_batch(batch, m, rows);
    for (size_t k = 0; k < owner.size(); k++) {
      size_t s = owner[k];
      int next = samplers[s].sample(logits + k * c.vocab_size, c.vocab_size);
      out[s].push_back(next);
      last[s] = next;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("matvec_batch: every row has the bits matvec gives it alone, on 1 and 2 threads", "[batch]") {
  Rng rng(3);
  for (auto [N, K] : std::vector<std::pair<int, int>>{{5, 3}, {203, 96}, {700, 200}, {2000, 300}}) {
    const int R = 9;
    std::vector<real> w((size_t)N * K), x((size_t)R * K), alone(N), out((size_t)R * N);
    for (real& v : w) v = static_cast<real>(rng.normal());
    for (real& v : x) v = static_cast<real>(rng.normal());
    for (int threads : {1, 2}) {
      matvec_batch(out.data(), w.data(), x.data(), R, N, K, threads);
      for (int r = 0; r < R; r++) {
        matvec(alone.data(), w.data(), x.data() + (size_t)r * K, N, K, 1);
        INFO("N " << N << " K " << K << " threads " << threads << " row " << r);
        REQUIRE(same_bits(out.data() + (size_t)r * N, alone.data(), N));
      }
    }
  }
}

TEST_CASE("forward_batch: a prompt prefilled in one pass equals decode_step position by position", "[batch]") {
  ModelConfig c = batch_config();
  Model m = random_model(c, 7);
  std::vector<int> prompt = some_prompt(30, 1, c.vocab_size);
  for (int threads : {1, 2}) {
    int before = num_threads();
    set_num_threads(threads);
    DecodeState one = make_decode_state(c);
    std::vector<real> all_one;
    for (int id : prompt) {
      const real* l = decode_step(one, m, id);
      all_one.insert(all_one.end(), l, l + c.vocab_size);
    }
    KVCache cache = make_kv_cache(c);
    BatchState batch = make_batch_state(c, 32);
    std::vector<BatchRow> rows;
    for (int id : prompt) rows.push_back({&cache, id, true});  // every position's logits, to compare them all
    const real* l = forward_batch(batch, m, rows);
    set_num_threads(before);
    INFO("threads " << threads);
    CHECK(cache.length == (int)prompt.size());
    CHECK(num_threads() == before);
    REQUIRE(same_bits(l, all_one.data(), all_one.size()));
    REQUIRE(same_bits(cache.key.ptr(), one.cache.key.ptr(), cache.key.data.size()));
    REQUIRE(same_bits(cache.value.ptr(), one.cache.value.ptr(), cache.value.data.size()));
  }
}

TEST_CASE("forward_batch: a request's tokens are the same alone and beside 1 or 7 others, greedy and seeded",
          "[batch]") {
  ModelConfig c = batch_config();
  Model m = random_model(c, 11);
  const int new_tokens = 12;
  std::vector<std::vector<int>> prompts;
  std::vector<int> join;
  std::vector<SamplingSettings> settings;
  std::vector<uint64_t> seeds;
  for (int s = 0; s < 8; s++) {
    prompts.push_back(some_prompt(3 + 4 * s, s, c.vocab_size));
    join.push_back(s % 3);  // some join later, while others are decoding
    settings.push_back(s % 2 == 0 ? SamplingSettings{0.0, 0, 1.0} : SamplingSettings{0.9, 20, 0.95});
    seeds.push_back(100 + s);
  }
  // Alone: each request through generate() (batched prefill, then decode_step one token at a time).
  std::vector<std::vector<int>> alone;
  for (int s = 0; s < 8; s++) {
    DecodeState state = make_decode_state(c);
    Sampler sampler(settings[s], seeds[s]);
    alone.push_back(generate(m, state, sampler, prompts[s], new_tokens, {}).tokens);
    REQUIRE((int)alone.back().size() == new_tokens);
  }
  for (int threads : {1, 2}) {
    int before = num_threads();
    set_num_threads(threads);
    for (size_t together : {1, 2, 8}) {
      auto sub = [&](auto v) { return decltype(v)(v.begin(), v.begin() + together); };
      auto batched = run_batched(m, sub(prompts), sub(join), sub(settings), sub(seeds), new_tokens);
      for (size_t s = 0; s < together; s++) {
        INFO("request " << s << " beside " << together - 1 << " others, threads " << threads);
        CHECK(batched[s] == alone[s]);
      }
    }
    set_num_threads(before);
  }
  // The seeded requests did sample (not all greedy copies of each other).
  CHECK(alone[1] != alone[0]);
}

TEST_CASE("generate: batched prefill gives the logits of one position at a time", "[batch]") {
  ModelConfig c = batch_config();
  c.max_seq_len = 160;  // a prompt longer than one prefill pass (64 positions)
  Model m = random_model(c, 5);
  std::vector<int> prompt = some_prompt(150, 2, c.vocab_size);
  DecodeState ref = make_decode_state(c);
  const real* l = nullptr;
  for (int id : prompt) l = decode_step(ref, m, id);
  DecodeState state = make_decode_state(c);
  Sampler greedy(SamplingSettings{0.0, 0, 1.0}, 1);
  GenerationResult r = generate(m, state, greedy, prompt, 0, {});
  CHECK(r.tokens.empty());
  CHECK(state.cache.length == (int)prompt.size());
  REQUIRE(same_bits(state.logits.ptr(), l, c.vocab_size));
}

TEST_CASE("forward_batch: bad rows are refused before any cache changes", "[batch]") {
  ModelConfig c = batch_config();
  c.max_seq_len = 4;
  Model m = random_model(c, 2);
  KVCache a = make_kv_cache(c), b = make_kv_cache(c);
  BatchState batch = make_batch_state(c, 8);
  forward_batch(batch, m, {{&a, 1, true}, {&a, 2, true}, {&a, 3, true}});
  std::vector<real> keys = a.key.data;
  CHECK_THROWS_WITH(forward_batch(batch, m, {{&b, 1, true}, {&a, 4, true}, {&a, 5, true}}),
                    Catch::Contains("KV cache is full") && Catch::Contains("row 2"));
  CHECK_THROWS_WITH(forward_batch(batch, m, {{&b, 1, true}, {&a, 203, true}}),
                    Catch::Contains("outside the vocabulary") && Catch::Contains("row 1"));
  CHECK_THROWS_WITH(forward_batch(batch, m, std::vector<BatchRow>(9, {&b, 1, true})), Catch::Contains("capacity"));
  CHECK_THROWS_WITH(forward_batch(batch, m, {}), Catch::Contains("0 rows"));
  CHECK(a.length == 3);
  CHECK(b.length == 0);
  CHECK(a.key.data == keys);
}

TEST_CASE("forward_batch: a quantized model reads its blocks, with decode_step's bits, alone and batched", "[batch]") {
  // batch_config's widths: every matrix of 96-value rows is quantized, w2 (rows of 200) stays
  // float, so a step mixes both kinds of product.
  for (QuantType type : {QuantType::q8_0, QuantType::q4_0}) {
    ModelConfig c = batch_config();
    Model m = random_model(c, 13);
    quantize_model(m, type);
    REQUIRE(m.quantized_of(m.weights.layers[0].wq) != nullptr);
    REQUIRE(m.quantized_of(m.weights.layers[0].w2) == nullptr);
    std::vector<int> prompt = some_prompt(20, 3, c.vocab_size);
    for (int threads : {1, 2}) {
      INFO(quant_type_name(type) << ", threads " << threads);
      const int before = num_threads();
      set_num_threads(threads);
      // The prompt in one pass equals decode_step position by position, cache and logits.
      DecodeState one = make_decode_state(c);
      std::vector<real> all_one;
      for (int id : prompt) {
        const real* l = decode_step(one, m, id);
        all_one.insert(all_one.end(), l, l + c.vocab_size);
      }
      KVCache cache = make_kv_cache(c);
      BatchState batch = make_batch_state(c, 32);
      std::vector<BatchRow> rows;
      for (int id : prompt) rows.push_back({&cache, id, true});
      const real* l = forward_batch(batch, m, rows);
      REQUIRE(same_bits(l, all_one.data(), all_one.size()));
      REQUIRE(same_bits(cache.key.ptr(), one.cache.key.ptr(), cache.key.data.size()));
      // The blocks were read, not the floats they stand for: the activations are quantized
      // too, so the float product of the same (dequantized) weights gives other logits.
      KVCache float_cache = make_kv_cache(c);
      BatchState float_batch = make_batch_state(c, 32);
      Model twin = make_model(c);
      for (size_t k = 0; k < twin.values.size(); k++) twin.values[k] = m.values[k];
      CHECK_FALSE(
          same_bits(forward_batch(float_batch, twin, {{&float_cache, prompt[0], true}}), all_one.data(), c.vocab_size));
      set_num_threads(before);
    }
    // Tokens: alone (generate: batched prefill, then decode_step) and beside 1 and 7 others.
    const int new_tokens = 10;
    std::vector<std::vector<int>> prompts, alone;
    std::vector<int> join;
    std::vector<SamplingSettings> settings;
    std::vector<uint64_t> seeds;
    for (int s = 0; s < 8; s++) {
      prompts.push_back(some_prompt(2 + 3 * s, s, c.vocab_size));
      join.push_back(s % 3);
      settings.push_back(s % 2 == 0 ? SamplingSettings{0.0, 0, 1.0} : SamplingSettings{0.9, 20, 0.95});
      seeds.push_back(200 + s);
      DecodeState state = make_decode_state(c);
      Sampler sampler(settings[s], seeds[s]);
      alone.push_back(generate(m, state, sampler, prompts[s], new_tokens, {}).tokens);
    }
    for (size_t together : {1, 2, 8}) {
      auto sub = [&](auto v) { return decltype(v)(v.begin(), v.begin() + together); };
      auto batched = run_batched(m, sub(prompts), sub(join), sub(settings), sub(seeds), new_tokens);
      for (size_t s = 0; s < together; s++) {
        INFO(quant_type_name(type) << ": request " << s << " beside " << together - 1 << " others");
        CHECK(batched[s] == alone[s]);
      }
    }
  }
}
