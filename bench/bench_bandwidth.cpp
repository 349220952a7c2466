// Memory read bandwidth, and what it allows generation: the ceiling on tokens/s.
//
//   build/bench/bench_bandwidth              400 MB, 1 thread and every thread
//   build/bench/bench_bandwidth --mb 200
//
// Why: generating one token multiplies one row of activations by every weight matrix, so it
// reads every weight once (2 flops per weight read: far too few to keep the arithmetic units
// busy). Once the weights no longer fit in the caches, tokens/s can be at most
//   read bandwidth (bytes/s) / bytes of weights read per token,
// and a decoder near that bound can only go faster by reading fewer bytes (bf16, q8_0, q4_0).
// The figure printed is the best of several passes of summing a large float array (the
// machine is shared; the best pass is the one nobody interrupted). With T threads each sums
// its own contiguous part, as the decoder's threads each read their own rows of a weight.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "bench/reference_configs.h"
#include "engine/parallel.h"
#include "model/params.h"

using namespace foundry;

namespace {

// GB/s of reading `data` once with `threads` threads, best of `passes`.
double read_gbps(const std::vector<float>& data, int threads, int passes) {
  const long n = static_cast<long>(data.size());
  double best = 0;
  volatile float sink = 0;  // keeps the sums from being optimised away
  for (int pass = 0; pass < passes; pass++) {
    const auto t0 = std::chrono::steady_clock::now();
    float total = 0;
#pragma omp parallel for num_threads(threads) reduction(+ : total) schedule(static, 1)
    for (int t = 0; t < threads; t++) {
      const long first = n * t / threads, last = n * (t + 1) / threads;
      // Eigen's sum uses several vector accumulators: the loop is bound by memory, not by the
      // latency of one chain of additions.
      total += Eigen::Map<const Eigen::VectorXf>(data.data() + first, last - first).sum();
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sink = sink + total;
    best = std::max(best, double(n) * sizeof(float) / s / 1e9);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  long mb = 400;
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--mb") && i + 1 < argc) {
      mb = std::atol(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: bench_bandwidth [--mb MEGABYTES]   (default 400; at least 64)\n");
      return 2;
    }
  }
  if (mb < 64 || mb > 16384) {
    std::fprintf(stderr, "bench_bandwidth: --mb %ld: expected 64 to 16384 (well above the caches)\n", mb);
    return 2;
  }
  std::vector<float> data(static_cast<size_t>(mb) * 1000 * 1000 / sizeof(float), 1.0f);
  const int all = std::max(1, num_threads());
  std::vector<int> counts = {1};
  if (all > 1) counts.push_back(all);
  std::printf("read bandwidth, %ld MB, best of 5 passes:\n", mb);
  std::vector<double> gbps;
  for (int t : counts) {
    gbps.push_back(read_gbps(data, t, 5));
    std::printf("  %d thread%s: %6.1f GB/s\n", t, t == 1 ? " " : "s", gbps.back());
  }
  struct Row {
    const char* name;
    ModelConfig config;
  };
  const Row rows[] = {{"tiny", make_config(128, 4, 4, 4, 352, 64)},
                      {"small", make_config(256, 4, 8, 4, 704, 256)},
                      {"medium", make_config(512, 8, 8, 4, 1376, 256)}};
  std::printf("\ngeneration's ceiling in fp32 (every weight read once per token; tied embeddings read once):\n");
  std::printf("  %-7s %10s", "config", "MB/token");
  for (int t : counts) std::printf("   %d thread%s tok/s", t, t == 1 ? " " : "s");
  std::printf("\n");
  for (const Row& r : rows) {
    const double bytes = double(parameter_count(r.config)) * sizeof(float);
    std::printf("  %-7s %10.1f", r.name, bytes / 1e6);
    for (double g : gbps) std::printf("   %15.0f", g * 1e9 / bytes);
    std::printf("\n");
  }
  std::printf("(tiny and small fit in the caches of most CPUs, so their ceiling is higher than this)\n");
  return 0;
}
