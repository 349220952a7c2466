// Training throughput of the full loop: forward, backward, gradient clipping and the AdamW
// update, in tokens per second, for the three reference configurations at 1 and 2 threads.
//
//   build/bench/bench_train [steps_scale=1] [configs=tiny,small,medium]
//
// Each configuration is read from configs/<name>.json (one micro-batch per step, as in the
// other benchmarks) and trained on random token ids: speed does not depend on what the tokens
// are. Each step is the training loop's own training_step (train/trainer.h). One untimed step
// first (the tape allocates its buffers), then timed steps.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "engine/parallel.h"
#include "model/model.h"
#include "train/adamw.h"
#include "train/data_loader.h"
#include "train/train_config.h"
#include "train/trainer.h"

using namespace foundry;

int main(int argc, char** argv) {
  foundry::choose_wait_policy(argv);  // short spins, then sleep (engine/parallel.h); may re-execute
  const double scale = argc > 1 ? std::atof(argv[1]) : 1.0;
  std::string names = argc > 2 ? argv[2] : "tiny,small,medium";
  std::printf("%-7s %7s %11s %6s %9s %10s\n", "config", "threads", "tokens/step", "steps", "ms/step", "tokens/s");
  std::stringstream list(names);
  for (std::string name; std::getline(list, name, ',');) {
    const TrainConfig c = load_train_config(std::string(FOUNDRY_SOURCE_DIR) + "/configs/" + name + ".json");
    const TrainingSection& t = c.training;
    Rng rng(1);
    std::vector<int> tokens(200000);
    for (int& id : tokens) id = static_cast<int>(rng.below(c.model.vocab_size));
    const int steps = std::max(2, static_cast<int>((name == "tiny" ? 30 : name == "small" ? 6 : 3) * scale));
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      Model model = make_model(c.model);
      Rng init(t.seed);
      init_weights(model, init);
      AdamW opt = make_adamw(model.parameters());
      DataLoader loader = make_data_loader(tokens, t.batch_size, t.seq_len, BatchOrder::random, 2, "bench");
      Tape tape;
      tape.set_reuse_grads(true);  // as train() does
      Batch batch;
      TrainingSection one_micro_batch = t;
      one_micro_batch.grad_accum = 1;
      training_step(model, opt, tape, loader, batch, one_micro_batch, 0);  // untimed: first-touch of every buffer
      const auto start = std::chrono::steady_clock::now();
      double loss = 0;
      for (int s = 1; s <= steps; ++s) loss += training_step(model, opt, tape, loader, batch, one_micro_batch, s).loss;
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double tokens_per_step = static_cast<double>(t.batch_size) * t.seq_len;
      std::printf("%-7s %7d %11.0f %6d %9.1f %10.0f   (mean loss %.3f)\n", name.c_str(), threads, tokens_per_step,
                  steps, 1000 * seconds / steps, tokens_per_step * steps / seconds, loss / steps);
      std::fflush(stdout);
    }
  }
  return 0;
}
