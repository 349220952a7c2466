// The data-parallel cost model (train/dp_cost.h) fed with measured numbers: one rank's speed,
// the config's gradient bytes and buckets. Prints the predicted 2-rank step beside a measured one
// (when given), then the table for 1, 2, 8 and 64 ranks on 10 and 100 Gbit/s links, and where
// data parallelism stops paying. bench/dp_scaling.sh measures the inputs and calls it.
//
//   build/bench/dp_cost_model --config configs/medium.json --tokens-per-s 2100
//       [--rounds 1] [--measured-2rank-tokens-per-s 3900] [--local-gbytes-per-s 5] [--bucket-mb 4]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "model/memory.h"
#include "train/dp_cost.h"
#include "train/train_config.h"

using namespace foundry;

int main(int argc, char** argv) {
  std::string config_path = std::string(FOUNDRY_SOURCE_DIR) + "/configs/medium.json";
  double tokens_per_s = 0, measured_two = 0, local_gbytes = 5.0, bucket_mb = 4.0;
  int rounds = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    const char* value = argv[i + 1];
    if (key == "--config") config_path = value;
    else if (key == "--tokens-per-s") tokens_per_s = std::atof(value);
    else if (key == "--rounds") rounds = std::atoi(value);
    else if (key == "--measured-2rank-tokens-per-s") measured_two = std::atof(value);
    else if (key == "--local-gbytes-per-s") local_gbytes = std::atof(value);
    else if (key == "--bucket-mb") bucket_mb = std::atof(value);
    else {
      std::fprintf(stderr, "dp_cost_model: unknown option %s\n", key.c_str());
      return 2;
    }
  }
  if (!(tokens_per_s > 0) || rounds < 1 || !(bucket_mb > 0) || !(local_gbytes > 0)) {
    std::fprintf(stderr, "dp_cost_model: --tokens-per-s (one rank, one thread) is required and positive\n");
    return 2;
  }
  const TrainConfig config = load_train_config(config_path, {});
  const double P = static_cast<double>(count_parameters(config.model));
  const int micro_tokens = config.training.batch_size * config.training.seq_len;
  DpCost cost;
  cost.forward_s = micro_tokens / tokens_per_s / 3;  // backward costs about twice the forward
  cost.backward_s = 2 * cost.forward_s;
  cost.optimizer_s = 20 * P / 10e9;  // AdamW streams ~20 bytes per parameter at ~10 GB/s
  cost.gradient_bytes = 4 * P;
  cost.buckets = static_cast<int>(std::ceil(cost.gradient_bytes / (bucket_mb * 1024 * 1024)));
  cost.rounds = rounds;
  std::printf(
      "%s: %.2fM parameters, %.1f MB of gradients in %d buckets; %d tokens per micro-batch, %d per rank "
      "per step; one rank %.0f tokens/s\n",
      config_path.c_str(), P / 1e6, cost.gradient_bytes / 1e6, cost.buckets, micro_tokens, rounds, tokens_per_s);
  const double single = predict_step(cost, 1, 1, 0).step_s;
  if (measured_two > 0) {
    const DpPrediction p = predict_step(cost, 2, local_gbytes * 1e9, 1e-6);
    const double predicted = 2 * rounds * micro_tokens / p.step_s;
    std::printf(
        "2 ranks on this machine (shared memory, %.0f GB/s, 1 us): predicted %.0f tokens/s (all-reduce "
        "%.1f ms, %.1f ms exposed), measured %.0f tokens/s: measured/predicted %.2f\n",
        local_gbytes, predicted, 1e3 * p.comm_s, 1e3 * p.exposed_s, measured_two, measured_two / predicted);
  }
  std::printf("%-11s %5s %11s %11s %10s %12s %10s\n", "link", "ranks", "all-reduce", "exposed", "step", "tokens/s",
              "efficiency");
  for (const double gbit : {10.0, 100.0}) {
    const double latency = gbit < 50 ? 20e-6 : 5e-6;
    for (int n : {1, 2, 8, 64}) {
      const DpPrediction p = predict_step(cost, n, gbit * 1e9 / 8, latency);
      std::printf("%4.0f Gbit/s %5d %9.3f s %9.3f s %8.3f s %12.0f %9.0f%%\n", gbit, n, p.comm_s, p.exposed_s, p.step_s,
                  n * rounds * micro_tokens / p.step_s, 100 * single / p.step_s);
    }
  }
  return 0;
}
