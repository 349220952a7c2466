// The training memory estimate (model/memory.h, what `foundry model-info` and `foundry train`
// print) against the real peak resident memory of training steps. A binary of its own, so the
// process starts small; each measurement runs in a forked child, whose peak (VmHWM) minus its
// resident size at the start (VmRSS) is what the steps added.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "engine/parallel.h"
#include "model/memory.h"
#include "train/trainer.h"

using namespace foundry;

namespace {

// A field of /proc/self/status in bytes ("VmRSS", "VmHWM"), or -1.
double status_bytes(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return std::stod(line.substr(prefix.size())) * 1024.0;  // "  1234 kB"
  }
  return -1;
}

// configs/small.json's widths with bench_vs_pytorch.sh's vocabulary of 4096, at batch 8.
TrainConfig peak_config(bool recompute) {
  TrainConfig c;
  c.model.dim = 256;
  c.model.n_layers = 4;
  c.model.n_heads = 8;
  c.model.n_kv_heads = 4;
  c.model.hidden_dim = 704;
  c.model.vocab_size = 4096;
  c.model.max_seq_len = 256;
  c.model.tie_embeddings = true;
  c.training.batch_size = 8;
  c.training.seq_len = 256;
  c.training.warmup_steps = 1;
  c.training.recompute = recompute;
  return c;
}

// In a child process: two training steps; returns the bytes the peak grew by, or -1.
double measured_growth(bool recompute) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    set_num_threads(1);
    const double start = status_bytes("VmRSS");
    const TrainConfig c = peak_config(recompute);
    Model model = make_model(c.model);
    Rng rng(1);
    init_weights(model, rng);
    std::vector<int> tokens(20000);
    for (int& id : tokens) id = static_cast<int>(rng.below(c.model.vocab_size));
    DataLoader loader =
        make_data_loader(tokens, c.training.batch_size, c.training.seq_len, BatchOrder::random, 2, "tokens");
    AdamW opt = make_adamw(model.parameters());
    Tape tape;
    tape.set_reuse_grads(true);  // as train() runs
    Batch batch;
    for (long s = 0; s < 2; ++s) training_step(model, opt, tape, loader, batch, c.training, s);
    const double growth = status_bytes("VmHWM") - start;
    const ssize_t n = write(fds[1], &growth, sizeof growth);
    _exit(n == sizeof growth ? 0 : 1);
  }
  close(fds[1]);
  double growth = -1;
  if (read(fds[0], &growth, sizeof growth) != sizeof growth) growth = -1;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? growth : -1;
}

}  // namespace

TEST_CASE("memory: the estimate predicts the peak resident memory of real training steps", "[memory][peak]") {
#if defined(__SANITIZE_ADDRESS__)
  WARN("skipped: AddressSanitizer's shadow memory and redzones inflate the resident memory");
  return;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  WARN("skipped: AddressSanitizer's shadow memory and redzones inflate the resident memory");
  return;
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
  WARN("skipped: AddressSanitizer's shadow memory and quarantine change the resident size");
  return;
#endif
  for (bool recompute : {false, true}) {
    const TrainConfig c = peak_config(recompute);
    const double predicted = static_cast<double>(estimate_training_bytes(c));
    const double growth = measured_growth(recompute);
    INFO("recompute " << recompute << ": predicted " << predicted / 1048576 << " MiB, measured growth "
                      << growth / 1048576 << " MiB");
    REQUIRE(growth > 0);
    std::printf("training memory, recompute %s: predicted %.1f MiB, measured growth of the peak %.1f MiB (%.3f)\n",
                recompute ? "on " : "off", predicted / 1048576, growth / 1048576, growth / predicted);
    // The tolerance: the estimate counts the numbers of weights, gradients, moments and tape
    // buffers; the process also holds the token list, the allocator's headers and rounding, and
    // the thread stacks, a few MiB here.
    CHECK(growth >= 0.90 * predicted);
    CHECK(growth <= 1.10 * predicted);
  }
}
