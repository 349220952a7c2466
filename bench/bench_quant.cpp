// Quantized decoding against float decoding and against the memory bandwidth, side by side.
//
//   build/bench/bench_quant [repeats] [new_tokens]
//
// First a stream-like loop: the bandwidth of reading a 256 MiB array (far beyond the caches) at 1
// and 2 threads, best of `repeats` passes, like STREAM's figure. Then, for the medium reference
// configuration (random weights: speed does not depend on the values) and llama2.c's stories260K,
// greedy generation in fp32, q8_0 and q4_0 at 1 and 2 threads: tokens/s (median of `repeats`
// runs of `new_tokens` tokens, default 5 and 128), the weight bytes one token reads (every matrix
// once, and one row of the embedding table; the KV cache is left out, it is small at these
// lengths), the bound bandwidth / bytes-per-token, and the fraction of that bound reached. The
// last columns are each type's speed over fp32's at the same thread count. No figure is
// asserted: on a shared machine they move with the load, which is printed first.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "bench/reference_configs.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "infer/generate.h"
#include "infer/kv_cache.h"
#include "model/llama2c.h"
#include "model/model.h"
#include "model/quantize.h"

using namespace foundry;

namespace {

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Bytes per second of summing a large float array: every byte comes from memory once, which is
// what a decode step does with the weights.
double read_bandwidth(int threads, int repeats) {
  const size_t n = (size_t(256) << 20) / sizeof(float);
  static std::vector<float> data;
  if (data.size() != n) data.assign(n, 1.0f);  // written once: the pages exist before timing
  double best = 0;
  volatile float sink = 0;
  for (int r = 0; r < repeats; ++r) {
    const double t0 = seconds_now();
    float total = 0;
#pragma omp parallel for num_threads(threads) reduction(+ : total)
    for (int chunk = 0; chunk < threads; ++chunk) {
      const size_t begin = n * chunk / threads, end = n * (chunk + 1) / threads;
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (size_t i = begin; i < end; ++i) s += data[i];
      total += s;
    }
    const double dt = seconds_now() - t0;
    sink = sink + total;
    best = std::max(best, n * sizeof(float) / dt);
  }
  return best;
}

// The weight bytes one decode step reads: every matrix once, as stored (blocks or floats), and
// one row of the embedding table (all of it again when it is the tied output projection).
double bytes_per_token(const Model& m) {
  double total = 0;
  for (size_t k = 0; k < m.values.size(); ++k) {
    const Tensor* t = &m.values[k];
    const QuantMatrix* q = m.quantized_of(t);
    const double bytes = q ? double(q->blocks.size()) : 4.0 * t->data.size();
    if (t == m.weights.tok_embeddings) {
      total += bytes / m.config.vocab_size;         // the token's row
      if (m.config.tie_embeddings) total += bytes;  // the logits read the whole table
    } else {
      total += bytes;
    }
  }
  return total;
}

double tokens_per_second(const Model& model, int new_tokens, int repeats, int bos) {
  DecodeState state = make_decode_state(model.config);
  Sampler greedy({0.0, 0, 1.0});
  std::vector<int> prompt = {bos};
  generate(model, state, greedy, prompt, 8, {});  // warm-up
  std::vector<double> rates;
  for (int r = 0; r < repeats; ++r) {
    GenerationResult g = generate(model, state, greedy, prompt, new_tokens, {});
    rates.push_back(g.tokens.size() / g.decode_seconds);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a.empty() ? "unknown" : a + " " + b + " " + c;
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  const int new_tokens = argc > 2 ? std::max(8, std::atoi(argv[2])) : 128;
  std::printf("load average (1, 5, 15 min): %s; quantized kernel: %s\n\n", load_average().c_str(),
              quant_kernel_name(quant_kernel()));
  double bandwidth[2];
  for (int t = 1; t <= 2; ++t) {
    bandwidth[t - 1] = read_bandwidth(t, repeats);
    std::printf("memory read bandwidth, %d thread%s: %.1f GB/s\n", t, t > 1 ? "s" : "", bandwidth[t - 1] / 1e9);
  }
  std::printf("\n%-14s %-5s %4s %10s %10s %10s %8s %8s\n", "model", "type", "thr", "MB/token", "tokens/s", "bound t/s",
              "of bound", "vs fp32");

  struct Source {
    std::string name;
    int bos;
    Model (*make)();
  };
  const Source sources[] = {
      {"medium", 0,
       [] {
         Model m = make_model(make_config(512, 8, 8, 4, 1376, 256));
         Rng rng(1);
         init_weights(m, rng);
         return m;
       }},
      {"stories260K", 1,
       [] {
         return load_llama2c_checkpoint(std::string(FOUNDRY_SOURCE_DIR) + "/tests/fixtures/llama2c/stories260K.bin");
       }},
  };
  const int before = num_threads();
  for (const Source& source : sources) {
    double fp32_rate[2] = {0, 0};
    for (const char* type : {"fp32", "q8_0", "q4_0"}) {
      Model m = source.make();
      if (std::string(type) != "fp32") quantize_model(m, parse_quant_type(type));
      const double bytes = bytes_per_token(m);
      for (int t = 1; t <= 2; ++t) {
        set_num_threads(t);
        const double rate = tokens_per_second(m, new_tokens, repeats, source.bos);
        if (std::string(type) == "fp32") fp32_rate[t - 1] = rate;
        const double bound = bandwidth[t - 1] / bytes;
        std::printf("%-14s %-5s %4d %10.2f %10.0f %10.0f %7.0f%% %7.2fx\n", source.name.c_str(), type, t, bytes / 1e6,
                    rate, bound, 100 * rate / bound, rate / fp32_rate[t - 1]);
        std::fflush(stdout);
      }
    }
  }
  set_num_threads(before);
  return 0;
}
