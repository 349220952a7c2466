// Lesson 16: the KV cache. Prints what the cache holds and its memory per token, proves on the
// llama2.c fixture that cached generation gives the same logits and tokens as recomputing the
// whole sequence, counts the work saved, and (in the [timing] section, which the lesson does
// not quote because timings vary) measures the speed-up. Exits non-zero if a check fails.
//
//   build/lessons/lesson_16
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "infer/kv_cache.h"
#include "infer/sampling.h"
#include "lessons/lesson_common.h"
#include "model/llama2c.h"

using namespace foundry;

namespace {

using lesson::check;
using lesson::failures;

// ANCHOR: recompute_step
// Without a cache: the logits of the last position, recomputed from the whole sequence.
std::vector<real> recompute_last(Tape& tape, Model& model, const std::vector<int>& seq) {
  tape.clear();
  Var logits = model_logits(tape, model, seq, 1, (int)seq.size());  // (1, T, V): every position
  const Tensor& L = tape.value(logits);
  return std::vector<real>(L.data.end() - model.config.vocab_size, L.data.end());  // only the last is used
}
// ANCHOR_END: recompute_step

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main() {
  const std::string dir = std::string(FOUNDRY_SOURCE_DIR) + "/tests/fixtures/llama2c";
  Model model = load_llama2c_checkpoint(dir + "/stories260K.bin");
  const ModelConfig& c = model.config;

  std::printf("[cache]\n");
  {
    DecodeState state = make_decode_state(c);
    std::printf("llama2.c stories260K: L %d, NKV %d, HS %d, max_seq_len %d\n", c.n_layers, c.n_kv_heads, c.head_size(),
                c.max_seq_len);
    std::printf("key cache %s + value cache %s = %zu floats\n", shape_str(state.cache.key.shape).c_str(),
                shape_str(state.cache.value.shape).c_str(), state.cache.key.size() + state.cache.value.size());
    std::printf("per position: 2 * %d * %d * %d * %zu bytes = %zu bytes\n", c.n_layers, c.n_kv_heads, c.head_size(),
                sizeof(real), kv_cache_bytes_per_position(c));
    // The reference configurations (configs/*.json, context 256).
    for (auto [name, L, C, NH, NKV] :
         {std::tuple<const char*, int, int, int, int>{"small", 4, 256, 8, 4}, {"medium", 8, 512, 8, 4}}) {
      ModelConfig r;
      r.n_layers = L, r.dim = C, r.n_heads = NH, r.n_kv_heads = NKV, r.max_seq_len = 256;
      std::printf("%s: %zu bytes per position, %.1f MiB for 256 positions\n", name, kv_cache_bytes_per_position(r),
                  kv_cache_bytes_per_position(r) * 256 / 1048576.0);
    }
  }

  // Greedy continuation of BOS + "Once upon a time" (ids from the fixture's tokenizer), both ways.
  const std::vector<int> prompt = {1, 403, 407, 261, 378};
  const int new_tokens = 48;

  std::printf("[equal]\n");
  {
    DecodeState state = make_decode_state(c);
    Tape tape;
    std::vector<int> seq = prompt;
    const real* cached = nullptr;
    for (int id : prompt) cached = decode_step(state, model, id);
    double worst = 0;
    int same = 0;
    for (int n = 0; n < new_tokens; n++) {
      std::vector<real> full = recompute_last(tape, model, seq);
      for (int v = 0; v < c.vocab_size; v++) worst = std::max(worst, (double)std::fabs(cached[v] - full[v]));
      int a = sample_greedy(cached, c.vocab_size), b = sample_greedy(full.data(), c.vocab_size);
      same += a == b;
      seq.push_back(a);
      cached = decode_step(state, model, a);
    }
    // Float32 rounding differs between the two paths (other summation orders), so "equal" means
    // within a few units in the last place of logits that reach about 10 in size.
    std::printf("%d of %d greedy tokens identical; largest logit difference below 1e-4: %s\n", same, new_tokens,
                worst < 1e-4 ? "yes" : "no");
    check(same == new_tokens && worst < 1e-4, "cached generation equals recomputation");
  }

  std::printf("[work]\n");
  {
    // Positions pushed through the whole model to produce n tokens after a prompt of p:
    // with the cache each position once; without it, every step redoes the whole prefix.
    for (int n : {64, 256}) {
      long p = (long)prompt.size(), with = p + n - 1, without = 0;
      for (long len = p; len < p + n; len++) without += len;
      std::printf("%d new tokens: %ld position passes with the cache, %ld without (%.0fx)\n", n, with, without,
                  double(without) / with);
    }
  }

  std::printf("[timing]\n");
  {
    // Not quoted by the lesson: these numbers depend on the machine and its load.
    DecodeState state = make_decode_state(c);
    auto t0 = std::chrono::steady_clock::now();
    const real* logits = nullptr;
    std::vector<int> seq = prompt;
    for (int id : prompt) logits = decode_step(state, model, id);
    for (int n = 0; n < 256; n++) {
      seq.push_back(sample_greedy(logits, c.vocab_size));
      logits = decode_step(state, model, seq.back());
    }
    double cached_s = seconds_since(t0);
    Tape tape;
    seq = prompt;
    t0 = std::chrono::steady_clock::now();
    for (int n = 0; n < 256; n++) {
      std::vector<real> full = recompute_last(tape, model, seq);
      seq.push_back(sample_greedy(full.data(), c.vocab_size));
    }
    double full_s = seconds_since(t0);
    std::printf("256 new tokens: %.1f ms with the cache (%.0f tokens/s), %.1f ms recomputing (%.0f tokens/s): %.0fx\n",
                1e3 * cached_s, 256 / cached_s, 1e3 * full_s, 256 / full_s, full_s / cached_s);
  }
  return failures ? 1 : 0;
}
