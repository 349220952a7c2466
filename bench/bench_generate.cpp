// Greedy generation speed with the KV cache, tokens/s at 1 and 2 threads.
//
//   build/bench/bench_generate [repeats] [only] [max_threads]
//     only: run just the models whose name starts with it (e.g. llama2c), for profiling
//     max_threads: 1 skips the 2-thread column
//
// Models: the llama2.c stories260K fixture (256 new tokens from an empty prompt, i.e. from
// BOS, as `foundry generate --temperature 0 --max-new-tokens 256` does), and the small and
// medium reference configurations (configs/*.json) with random weights (speed does not
// depend on the values): 255 new tokens from one start token, filling their 256 positions.
// Each figure is the median of `repeats` runs (default 5); the time covers the forward passes
// and the sampling of the new tokens, not the prompt. The "(cpu)" columns divide by the CPU time
// the process used instead of the elapsed time (at 2 threads: by the CPU time of both). No figure is asserted: timings on a
// shared machine are noisy.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "engine/parallel.h"
#include "engine/rng.h"
#include "infer/generate.h"
#include "infer/kv_cache.h"
#include "model/llama2c.h"
#include "model/model.h"

using namespace foundry;

namespace {

ModelConfig reference_config(const std::string& name) {
  ModelConfig c;
  c.vocab_size = 4096;
  c.max_seq_len = 256;
  if (name == "small") {
    c.dim = 256, c.n_layers = 4, c.n_heads = 8, c.n_kv_heads = 4, c.hidden_dim = 704;
  } else {
    c.dim = 512, c.n_layers = 8, c.n_heads = 8, c.n_kv_heads = 4, c.hidden_dim = 1376;
  }
  return c;
}

struct Rates {
  double wall;  // tokens per second of elapsed time
  double cpu;   // tokens per second of CPU time used by the process (all its threads)
};

// Median tokens/s of greedy generation of `new_tokens` after `prompt`. The CPU-time figure is
// what the run would reach with its cores to itself: on a shared machine other programs
// may take some of them, which the wall-clock figure includes and the CPU-time one does not.
Rates tokens_per_second(const Model& model, const std::vector<int>& prompt, int new_tokens, int repeats) {
  DecodeState state = make_decode_state(model.config);
  Sampler greedy({0.0, 0, 1.0});
  std::vector<double> wall, cpu;
  generate(model, state, greedy, prompt, new_tokens, {});  // warm-up: first touch of every buffer
  for (int r = 0; r < repeats; r++) {
    std::clock_t c0 = std::clock();
    GenerationResult g = generate(model, state, greedy, prompt, new_tokens, {});
    double cpu_seconds = double(std::clock() - c0) / CLOCKS_PER_SEC;
    wall.push_back(g.tokens.size() / g.decode_seconds);
    cpu.push_back(g.tokens.size() / std::max(cpu_seconds, 1e-9));
  }
  std::sort(wall.begin(), wall.end());
  std::sort(cpu.begin(), cpu.end());
  return {wall[wall.size() / 2], cpu[cpu.size() / 2]};
}

}  // namespace

int main(int argc, char** argv) {
  foundry::choose_wait_policy(argv);  // short spins, then sleep (engine/parallel.h); may re-execute
  int repeats = argc > 1 ? std::atoi(argv[1]) : 5;
  std::string only = argc > 2 ? argv[2] : "";
  int max_threads = argc > 3 ? std::atoi(argv[3]) : 2;
  std::printf("greedy generation with the KV cache, tokens/s (median of %d runs)\n\n", repeats);
  std::printf("%-22s %8s %10s %10s %8s %10s %10s\n", "model", "params", "1 thread", "2 threads", "2t/1t", "1t (cpu)",
              "2t (cpu)");

  struct Case {
    std::string name;
    Model model;
    std::vector<int> prompt;
    int new_tokens;
  };
  std::vector<Case> cases;
  cases.push_back({"llama2c stories260K",
                   load_llama2c_checkpoint(std::string(FOUNDRY_SOURCE_DIR) + "/tests/fixtures/llama2c/stories260K.bin"),
                   {1},
                   256});
  for (const char* name : {"small", "medium"}) {
    if (std::string(name).compare(0, only.size(), only) != 0 && !only.empty()) continue;
    Model m = make_model(reference_config(name));
    Rng rng(1);
    init_weights(m, rng);
    cases.push_back({std::string(name) + " (random)", std::move(m), {0}, 255});
  }
  int before = num_threads();
  for (Case& c : cases) {
    if (c.name.compare(0, only.size(), only) != 0) continue;
    Rates rate[2] = {{0, 0}, {0, 0}};
    for (int t = 1; t <= max_threads && t <= 2; t++) {
      set_num_threads(t);
      rate[t - 1] = tokens_per_second(c.model, c.prompt, c.new_tokens, repeats);
    }
    std::printf("%-22s %7.2fM %10.0f %10.0f %8.2f %10.0f %10.0f\n", c.name.c_str(), c.model.num_parameters() / 1e6,
                rate[0].wall, rate[1].wall, rate[1].wall / rate[0].wall, rate[0].cpu, rate[1].cpu);
    std::fflush(stdout);
  }
  set_num_threads(before);
  return 0;
}
