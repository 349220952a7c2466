// bench_suite: the benchmark suite, one program printing one table.
//
//   build/bench/bench_suite                          everything: tiny, small, medium; 1 and 2 threads
//   build/bench/bench_suite --configs medium --what train --threads 2
//   build/bench/bench_suite --json                   JSON lines (one per measurement) instead of the table
//   build/bench/bench_suite --precision bf16         the products in bf16 (training.precision, lesson 21)
//
// What it measures, for the three reference configurations (configs/*.json:
// vocabulary 4096, tied embeddings):
//   train      tokens/s of a full training step: zero the gradients, forward and loss on a reused
//              tape, backward, clip the global gradient norm to 1, AdamW. It calls the training
//              loop's own step (training_step, train/trainer.h), so what is timed is what
//              `foundry train` runs. Tokens/s = B·T / (median seconds per step) after two warm-up
//              steps (the first step allocates the tape's buffers; later steps reuse them).
//   peak       peak resident memory (getrusage ru_maxrss) of the process that trained: weights,
//              gradients, AdamW moments, the tape's activations and the program itself.
//   generate   greedy generation with the KV cache (infer/generate): one start token, then
//              tokens until the context is full; tokens/s = forward passes / seconds (median).
//   matmul     GFLOP/s of linear_forward on a transformer shape (medium's feed-forward, x (2048,
//              512) · w1ᵀ with w1 (1376, 512)), the product that dominates a training step.
//   tokenizer  seconds to train a BPE tokenizer (vocab 8192) on the 2 MiB TinyStories sample.
//
// Every (config, what, threads) runs in a fresh child process (this program re-executes itself
// with --child), so peaks are not mixed and no measurement inherits a warm heap from another.
// Timings are medians because a shared machine is noisy; the figures are not asserted anywhere.
// scripts/bench_vs_pytorch.sh runs this with --json beside bench/torch_reference.py.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/reference_configs.h"
#include "engine/matmul.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "infer/generate.h"
#include "infer/kv_cache.h"
#include "model/model.h"
#include "tokenizer/bpe_train.h"
#include "train/adamw.h"
#include "train/data_loader.h"
#include "train/trainer.h"

using namespace foundry;

namespace {

struct Reference {
  std::string name;
  ModelConfig model;
  int B;            // batch rows; T = model.max_seq_len
  int train_steps;  // timed steps by default (about 5-10 s per measurement)
};

const std::vector<Reference>& references() {
  static const std::vector<Reference> refs = {
      {"tiny", make_config(128, 4, 4, 4, 352, 64), 12, 40},
      {"small", make_config(256, 4, 8, 4, 704, 256), 16, 8},
      {"medium", make_config(512, 8, 8, 4, 1376, 256), 8, 5},
  };
  return refs;
}

const Reference& reference(const std::string& name) {
  for (const Reference& r : references()) {
    if (r.name == name) return r;
  }
  throw std::invalid_argument("bench_suite: unknown config '" + name + "' (tiny, small or medium)");
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // KiB on Linux
}

// Matmul parameters: every weight that takes part in a matrix product, once per token. With
// tied embeddings the table is only a lookup at the input but a full product at the output.
double matmul_parameters(const ModelConfig& c) {
  const double C = c.dim, F = c.hidden_dim, KV = c.kv_dim(), Q = c.n_heads * c.head_size();
  return c.n_layers * (C * Q + 2 * C * KV + Q * C + 3 * C * F) + double(c.vocab_size) * C;
}

// Floating-point operations of one training step per token: 6 per matmul parameter (2 in the
// forward, 4 in the backward) plus the attention products, which have no parameters. A query at
// position t scores t + 1 keys and sums t + 1 values (2·HS flops each, per head); averaged over
// the T positions that is 2 · 2·HS·NH · (T + 1)/2 in the forward, times 3 with the backward.
double train_flops_per_token(const ModelConfig& c, int T) {
  const double attention = 6.0 * c.n_layers * c.n_heads * c.head_size() * (T + 1.0);
  return 6.0 * matmul_parameters(c) + attention;
}

// ---- the measurements (each runs in its own child process) -----------------------------------

// Set by --recompute and --loss-rows (training.recompute; rows of logits per loss block, 0 automatic).
bool g_recompute = false;
int g_loss_rows = 0;

void measure_train(const Reference& r, int threads, int steps) {
  const ModelConfig& c = r.model;
  const int B = r.B, T = c.max_seq_len;
  Model model = make_model(c);
  Rng init(1337);
  init_weights(model, init);
  // Random tokens stand in for a corpus: speed does not depend on which tokens they are.
  Rng data_rng(7);
  std::vector<int> tokens(200000);
  for (int& t : tokens) t = static_cast<int>(data_rng.below(c.vocab_size));
  DataLoader loader = make_data_loader(tokens, B, T, BatchOrder::random, 1, "bench tokens");
  Batch batch;
  Tape tape;
  tape.set_reuse_grads(true);  // as train() does: op gradients only while backward needs them
  // One micro-batch per step at a constant learning rate of 1e-3, clipped to norm 1.
  TrainingSection tc;
  tc.batch_size = B;
  tc.seq_len = T;
  tc.grad_accum = 1;
  tc.lr = tc.min_lr = 1e-3;
  tc.warmup_steps = 0;
  tc.max_steps = steps + 2;
  tc.grad_clip = 1.0;
  tc.recompute = g_recompute;
  AdamW opt = make_adamw(model.parameters());
  set_num_threads(threads);
  std::vector<double> step_seconds;
  double loss = 0;
  for (int s = 0; s < steps + 2; s++) {
    auto t0 = std::chrono::steady_clock::now();
    const StepResult stats = training_step(model, opt, tape, loader, batch, tc, s, local_reducer(),
                                           g_loss_rows);  // zero, fwd, bwd, clip, AdamW
    double dt = seconds_since(t0);
    if (s >= 2) step_seconds.push_back(dt);  // the first two steps allocate; not timed
    loss = stats.loss;
  }
  const double step = median(step_seconds);
  const double tps = B * T / step;
  std::printf(
      "{\"impl\": \"foundry\", \"config\": \"%s\", \"threads\": %d, \"what\": \"train\", \"tokens_per_s\": %.1f, "
      "\"step_ms\": %.2f, \"gflops\": %.1f, \"params\": %zu, \"last_loss\": %.4f, \"peak_rss_mib\": %.1f, "
      "\"recompute\": %s, \"loss_rows\": %d}\n",
      r.name.c_str(), num_threads(), tps, 1e3 * step, tps * train_flops_per_token(c, T) / 1e9, model.num_parameters(),
      loss, peak_rss_mib(), g_recompute ? "true" : "false", g_loss_rows);
}

void measure_generate(const Reference& r, int threads, int repeats) {
  const ModelConfig& c = r.model;
  Model model = make_model(c);
  Rng init(1337);
  init_weights(model, init);
  DecodeState state = make_decode_state(c);
  Sampler greedy({0.0, 0, 1.0});
  set_num_threads(threads);
  // One start token, then greedy tokens until the context is full: max_seq_len forward passes
  // (the prompt's one and max_seq_len − 1 for new tokens) and max_seq_len argmaxes.
  const int new_tokens = c.max_seq_len;
  std::vector<double> rates;
  for (int rep = 0; rep < repeats + 1; rep++) {
    GenerationResult g = generate(model, state, greedy, {0}, new_tokens, {});
    const double seconds = g.prefill_seconds + g.decode_seconds;
    if (rep > 0) rates.push_back(g.tokens.size() / seconds);  // the first run touches the cache's pages
  }
  std::printf(
      "{\"impl\": \"foundry\", \"config\": \"%s\", \"threads\": %d, \"what\": \"generate\", \"tokens_per_s\": %.1f, "
      "\"peak_rss_mib\": %.1f}\n",
      r.name.c_str(), num_threads(), median(rates), peak_rss_mib());
}

void measure_matmul(int threads, int repeats) {
  const int M = 2048, K = 512, N = 1376;  // medium's x · w1ᵀ: B·T = 8·256 rows
  Rng rng(1);
  std::vector<real> x((size_t)M * K), w((size_t)N * K), out((size_t)M * N);
  for (real& v : x) v = static_cast<real>(rng.normal());
  for (real& v : w) v = static_cast<real>(rng.normal());
  set_num_threads(threads);
  std::vector<double> rates;
  for (int rep = 0; rep < repeats + 1; rep++) {
    auto t0 = std::chrono::steady_clock::now();
    linear_forward(out.data(), x.data(), w.data(), M, K, N);
    double dt = seconds_since(t0);
    if (rep > 0) rates.push_back(2.0 * M * K * N / dt / 1e9);
  }
  std::printf(
      "{\"impl\": \"foundry\", \"what\": \"matmul\", \"threads\": %d, \"shape\": \"%dx%dx%d\", \"gflops\": %.1f}\n",
      num_threads(), M, K, N, median(rates));
}

std::string find_corpus(const std::string& name) {
  const std::filesystem::path source(FOUNDRY_SOURCE_DIR);
  for (const std::filesystem::path& p : {source / "data" / name, source / ".." / "shared" / "data" / name}) {
    if (std::filesystem::exists(p)) return p.string();
  }
  throw std::runtime_error("bench_suite: " + name + " not found under data/ or ../shared/data/");
}

void measure_tokenizer(int repeats) {
  std::ifstream in(find_corpus("tinystories.txt"), std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  BpeTrainOptions options;
  options.vocab_size = 8192;
  options.special_tokens = {"<|endoftext|>"};
  std::vector<double> times;
  for (int rep = 0; rep < repeats; rep++) {
    auto t0 = std::chrono::steady_clock::now();
    BpeTokenizer tok = train_bpe(text, options);  // counting pre-tokens + the merge loop
    times.push_back(seconds_since(t0));
  }
  std::printf(
      "{\"impl\": \"foundry\", \"what\": \"tokenizer\", \"threads\": 1, \"corpus_mib\": %.2f, "
      "\"vocab\": 8192, \"seconds\": %.4f}\n",
      text.size() / 1048576.0, median(times));
}

// ---- the parent: run children, collect their JSON lines, print the table --------------------

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// Runs this program again with `args` and returns its stdout (the child's JSON line).
std::string run_child(const std::string& args) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string command = "'" + self + "' --child " + args;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("bench_suite: cannot run " + command);
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  int status = pclose(pipe);
  if (status != 0) throw std::runtime_error("bench_suite: child failed (" + command + ")");
  return out;
}

// A number from a flat JSON line: "key": value. Enough for the lines this program prints.
double field(const std::string& line, const std::string& key) {
  size_t at = line.find("\"" + key + "\": ");
  if (at == std::string::npos) return 0;
  return std::atof(line.c_str() + at + key.size() + 4);
}

void usage(FILE* out) {
  std::fprintf(out,
               "usage: bench_suite [--configs tiny,small,medium] [--what train,generate,matmul,tokenizer]\n"
               "                   [--threads 1,2] [--steps N] [--repeats N] [--json] [--precision fp32|bf16]\n"
               "                   [--recompute] [--loss-rows N]\n\n"
               "Training tokens/s (full step: forward, backward, clipping, AdamW), peak memory, greedy\n"
               "generation tokens/s with the KV cache, matmul GFLOP/s and tokenizer training time.\n"
               "Every measurement runs in a fresh child process. --json prints one JSON line per\n"
               "measurement instead of the table. --steps overrides the timed training steps of each\n"
               "config (defaults: tiny 40, small 8, medium 5); --repeats the generation/matmul runs (5).\n"
               "--precision bf16 runs the matrix products with bf16 inputs (training.precision).\n"
               "--recompute trains with activation recomputation (training.recompute); --loss-rows N\n"
               "computes the loss N rows of logits at a time (default: automatic; a number at least B*T\n"
               "gives the unblocked loss, for comparison).\n");
}

}  // namespace

int main(int argc, char** argv) {
  foundry::choose_wait_policy(argv);  // short spins, then sleep (engine/parallel.h); may re-execute
  std::vector<std::string> configs = {"tiny", "small", "medium"};
  std::vector<std::string> what = {"train", "generate", "matmul", "tokenizer"};
  std::vector<int> threads = {1, 2};
  int steps = 0, repeats = 5;
  bool json = false, child = false;
  std::string config;              // --config: the child's one config
  std::string precision = "fp32";  // --precision: the matrix products' (engine/matmul.h)
  try {
    for (int i = 1; i < argc; i++) {
      std::string a = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument("bench_suite: " + a + " needs a value");
        return argv[++i];
      };
      if (a == "--configs") configs = split(value());
      else if (a == "--config") config = value();
      else if (a == "--what") what = split(value());
      else if (a == "--threads") {
        threads.clear();
        for (const std::string& t : split(value())) threads.push_back(std::atoi(t.c_str()));
      } else if (a == "--steps") steps = std::atoi(value().c_str());
      else if (a == "--repeats") repeats = std::max(1, std::atoi(value().c_str()));
      else if (a == "--json") json = true;
      else if (a == "--precision") precision = value();
      else if (a == "--child") child = true;
      else if (a == "--recompute") g_recompute = true;
      else if (a == "--loss-rows") g_loss_rows = std::atoi(value().c_str());
      else if (a == "--help" || a == "-h") {
        usage(stdout);
        return 0;
      } else {
        usage(stderr);
        return 2;
      }
    }
    for (const std::string& w : what) {
      if (w != "train" && w != "generate" && w != "matmul" && w != "tokenizer") {
        throw std::invalid_argument("bench_suite: unknown --what '" + w + "' (train, generate, matmul, tokenizer)");
      }
    }
    for (const std::string& c : configs) reference(c);  // throws on an unknown name
    for (int t : threads) {
      if (t < 1) throw std::invalid_argument("bench_suite: --threads needs positive counts");
    }

    const MatmulPrecisionScope products(parse_matmul_precision(precision));  // throws on a bad name
    if (child) {                                                             // one measurement, one JSON line
      const int t = threads.empty() ? 1 : threads[0];
      if (what.size() != 1) throw std::invalid_argument("bench_suite --child: exactly one --what");
      if (what[0] == "train") {
        const Reference& r = reference(config);
        measure_train(r, t, steps > 0 ? steps : r.train_steps);
      } else if (what[0] == "generate") {
        measure_generate(reference(config), t, repeats);
      } else if (what[0] == "matmul") {
        measure_matmul(t, repeats);
      } else {
        measure_tokenizer(repeats);
      }
      return 0;
    }

    auto wants = [&](const char* w) { return std::find(what.begin(), what.end(), w) != what.end(); };
    const std::string common = " --steps " + std::to_string(steps) + " --repeats " + std::to_string(repeats) +
                               " --precision " + precision + (g_recompute ? " --recompute" : "") + " --loss-rows " +
                               std::to_string(g_loss_rows);
    // results[config][what][threads] = JSON line
    std::map<std::string, std::map<std::string, std::map<int, std::string>>> results;
    auto run = [&](const std::string& cfg, const std::string& w, int t) {
      std::string line = run_child((cfg.empty() ? "" : "--config " + cfg) + " --what " + w + " --threads " +
                                   std::to_string(t) + common);
      while (!line.empty() && line.back() == '\n') line.pop_back();
      results[cfg][w][t] = line;
      if (json) std::printf("%s\n", line.c_str());
      else std::fprintf(stderr, "  done: %s %s %d thread(s)\n", cfg.empty() ? "-" : cfg.c_str(), w.c_str(), t);
      std::fflush(stdout);
    };
    for (const std::string& cfg : configs) {
      for (const char* w : {"train", "generate"}) {
        if (!wants(w)) continue;
        for (int t : threads) run(cfg, w, t);
      }
    }
    if (wants("matmul")) {
      for (int t : threads) run("", "matmul", t);
    }
    if (wants("tokenizer")) run("", "tokenizer", 1);
    if (json) return 0;

    // The table: one row per config, one column per figure and thread count.
    std::printf("\nLLM Foundry benchmark suite (real = %s, OpenMP %s; medians; each figure in its own process)\n",
                real_name(), have_openmp() ? "on" : "off");
    std::printf("precision: %s\n\n", matmul_precision_description().c_str());
    std::printf("%-7s %8s %8s", "config", "params", "B x T");
    for (int t : threads) std::printf(" %9s", ("train " + std::to_string(t) + "t").c_str());
    if (threads.size() >= 2) std::printf(" %7s", "speedup");
    std::printf(" %9s %8s", "GFLOP/s", "peak MiB");
    for (int t : threads) std::printf(" %9s", ("gen " + std::to_string(t) + "t").c_str());
    std::printf("\n");
    for (const std::string& cfg : configs) {
      const Reference& r = reference(cfg);
      Model sizes = make_model(r.model);
      char bt[32];
      std::snprintf(bt, sizeof bt, "%dx%d", r.B, r.model.max_seq_len);
      std::printf("%-7s %7.2fM %8s", cfg.c_str(), sizes.num_parameters() / 1e6, bt);
      auto& res = results[cfg];
      for (int t : threads) std::printf(" %9.0f", field(res["train"][t], "tokens_per_s"));
      if (threads.size() >= 2) {
        double first = field(res["train"][threads.front()], "tokens_per_s");
        double last = field(res["train"][threads.back()], "tokens_per_s");
        std::printf(" %6.2fx", first > 0 ? last / first : 0.0);
      }
      // GFLOP/s and peak memory of the run with the most threads
      std::printf(" %9.1f %8.0f", field(res["train"][threads.back()], "gflops"),
                  field(res["train"][threads.back()], "peak_rss_mib"));
      for (int t : threads) std::printf(" %9.0f", field(res["generate"][t], "tokens_per_s"));
      std::printf("\n");
    }
    std::printf(
        "\ntrain = tokens/s of a full step (forward, backward, clip, AdamW); GFLOP/s = model FLOPs\n"
        "(6 per matmul parameter per token + causal attention); gen = greedy tokens/s, KV cache\n");
    if (wants("matmul")) {
      std::printf("\nmatmul 2048x512x1376 (linear_forward):");
      for (int t : threads) std::printf("  %d thread(s) %.1f GFLOP/s", t, field(results[""]["matmul"][t], "gflops"));
      std::printf("\n");
    }
    if (wants("tokenizer")) {
      std::printf("tokenizer training (BPE, vocab 8192, 2 MiB TinyStories): %.3f s\n",
                  field(results[""]["tokenizer"][1], "seconds"));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
