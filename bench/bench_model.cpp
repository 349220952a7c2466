// bench_model: forward + backward tokens/s of the full model for the reference configurations.
//
//   build/bench/bench_model [--config tiny|small|medium|all] [--steps N] [--threads 1,2]
//
// One "step" is what training does minus the optimizer: zero the gradients, record the forward
// and the loss on a reused tape, run the backward. Tokens/s = B·T / (seconds per step), the
// median over --steps timed steps after two warm-up steps (the first step allocates the tape's
// buffers; later steps reuse them). Weights are the seeded initialization, tokens seeded random.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/reference_configs.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "model/model.h"

using namespace foundry;

namespace {

struct Reference {
  const char* name;
  ModelConfig config;
  int B, T;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Timing {
  double step, forward, backward;  // median seconds
};

Timing time_steps(Model& model, int B, int T, int steps) {
  Rng rng(1);
  std::vector<int> ids((size_t)B * T), targets((size_t)B * T);
  for (int& id : ids) id = static_cast<int>(rng.below(model.config.vocab_size));
  for (int& id : targets) id = static_cast<int>(rng.below(model.config.vocab_size));
  Tape tape;
  std::vector<double> fwd, bwd, total;
  for (int s = 0; s < steps + 2; s++) {
    auto t0 = std::chrono::steady_clock::now();
    model.zero_grad();
    tape.clear();
    Var loss = model_loss(tape, model, ids, targets, B, T);
    double f = seconds_since(t0);
    tape.backward(loss);
    double all = seconds_since(t0);
    if (s >= 2) fwd.push_back(f), bwd.push_back(all - f), total.push_back(all);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  return {median(total), median(fwd), median(bwd)};
}

}  // namespace

int main(int argc, char** argv) {
  foundry::choose_wait_policy(argv);  // short spins, then sleep (engine/parallel.h); may re-execute
  std::string which = "all";
  int steps = 5;
  std::vector<int> threads = {1, 2};
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      which = argv[++i];
    } else if (a == "--steps" && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else if (a == "--threads" && i + 1 < argc) {
      threads.clear();
      std::string list = argv[++i];
      for (size_t p = 0; p < list.size();) {
        size_t q = list.find(',', p);
        threads.push_back(std::atoi(list.substr(p, q - p).c_str()));
        p = q == std::string::npos ? list.size() : q + 1;
      }
    } else {
      std::fprintf(stderr,
                   "usage: bench_model [--config tiny|small|medium|all] [--steps N] [--threads 1,2]\n"
                   "forward+backward tokens/s of the full model for the reference configurations\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (steps < 1) steps = 1;
  const Reference refs[] = {
      {"tiny", make_config(128, 4, 4, 4, 352, 64), 12, 64},
      {"small", make_config(256, 4, 8, 4, 704, 256), 16, 256},
      {"medium", make_config(512, 8, 8, 4, 1376, 256), 8, 256},
  };
  std::printf("%-7s %9s %8s %7s %12s %10s %10s %10s\n", "config", "params", "B x T", "threads", "tokens/s", "step ms",
              "fwd ms", "bwd ms");
  bool any = false;
  for (const Reference& r : refs) {
    if (which != "all" && which != r.name) continue;
    any = true;
    Model model = make_model(r.config);
    Rng rng(1337);
    init_weights(model, rng);
    for (int n : threads) {
      set_num_threads(n);
      Timing t = time_steps(model, r.B, r.T, steps);
      char bt[32];
      std::snprintf(bt, sizeof bt, "%dx%d", r.B, r.T);
      std::printf("%-7s %8.2fM %8s %7d %12.0f %10.1f %10.1f %10.1f\n", r.name, model.num_parameters() / 1e6, bt,
                  num_threads(), r.B * r.T / t.step, 1e3 * t.step, 1e3 * t.forward, 1e3 * t.backward);
      std::fflush(stdout);
    }
  }
  if (!any) {
    std::fprintf(stderr, "bench_model: unknown --config '%s' (tiny, small, medium or all)\n", which.c_str());
    return 2;
  }
  return 0;
}
