// Lesson 20: data parallelism. On one process: the mean of two micro-batches' gradients against
// the gradient of one batch twice as large (the same number, not the same bits), the fold that
// two ranks compute chunk by chunk against the single process's fold (the same bits), what the
// all-reduce costs per rank, and the cost model's table for the medium config on 10 and
// 100 Gbit/s links. Then the commands that run the same thing on two ranks. Exits non-zero if a
// check fails.
//
//   build/lessons/lesson_20
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/file_io.h"
#include "engine/rng.h"
#include "lessons/lesson_common.h"
#include "model/memory.h"
#include "model/model.h"
#include "train/data_loader.h"
#include "train/dp_cost.h"
#include "train/grad_reducer.h"
#include "train/train_config.h"

using namespace foundry;

namespace {

using lesson::check;

TrainConfig config_file(const std::string& name, const std::vector<std::string>& overrides) {
  nlohmann::json j = read_json_file(std::string(FOUNDRY_SOURCE_DIR) + "/configs/" + name);
  for (const std::string& o : overrides) apply_override(j, o);
  return train_config_from_json(j, "configs/" + name);
}

// Every gradient, in the order of the parameter list, as one vector.
std::vector<real> gradients(Model& model) {
  std::vector<real> out;
  for (const NamedTensor& p : model.parameters()) out.insert(out.end(), p.grad->data.begin(), p.grad->data.end());
  return out;
}

// A fresh gradient of one batch of B rows: zero, forward, backward.
std::vector<real> gradient_of(Model& model, Tape& tape, const Batch& batch, int B, int T) {
  model.zero_grad();
  tape.clear();
  tape.backward(model_loss(tape, model, batch.inputs, batch.targets, B, T));
  return gradients(model);
}

long differing_bits(const std::vector<real>& a, const std::vector<real>& b) {
  long n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += std::memcmp(&a[i], &b[i], sizeof(real)) != 0;
  return n;
}

}  // namespace

int main() {
  // A small model on random token ids: what matters here is how gradients combine.
  const TrainConfig config =
      config_file("tiny.json", {"model.dim=64", "model.n_layers=2", "model.hidden_dim=176", "model.max_seq_len=32",
                                "model.vocab_size=320", "training.seq_len=32"});
  const int B = 4, T = 32;
  Model model = make_model(config.model);
  Rng init(7);
  init_weights(model, init);
  Rng draw(11);
  std::vector<int> tokens(20000);
  for (int& t : tokens) t = static_cast<int>(draw.below(320));
  DataLoader loader = make_data_loader(tokens, B, T, BatchOrder::random, 3, "tokens");
  Batch first, second, both;
  next_batch(loader, first);
  next_batch(loader, second);
  both.inputs = first.inputs;
  both.inputs.insert(both.inputs.end(), second.inputs.begin(), second.inputs.end());
  both.targets = first.targets;
  both.targets.insert(both.targets.end(), second.targets.begin(), second.targets.end());
  Tape tape;

  std::printf("[mean]\n");
  const std::vector<real> g0 = gradient_of(model, tape, first, B, T);
  const std::vector<real> g1 = gradient_of(model, tape, second, B, T);
  const std::vector<real> g_big = gradient_of(model, tape, both, 2 * B, T);
  std::vector<real> mean(g0.size());
  for (size_t i = 0; i < mean.size(); ++i) mean[i] = (g0[i] + g1[i]) * static_cast<real>(0.5);
  double worst = 0, largest = 0;
  for (size_t i = 0; i < mean.size(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(mean[i]) - g_big[i]));
    largest = std::max(largest, std::fabs(static_cast<double>(g_big[i])));
  }
  std::printf("%zu gradient numbers; largest |g| %.3e; largest difference %.3e (%.1e of it)\n", mean.size(), largest,
              worst, worst / largest);
  std::printf("numbers whose bits differ: %ld of %zu\n", differing_bits(mean, g_big), mean.size());
  check(worst / largest < 1e-5, "the mean of the micro-batches' gradients is the big batch's gradient, up to rounding");

  std::printf("[fold]\n");
  // One process, grad_accum 2: what training_step does, through the same reducer.
  LocalReducer local;
  model.zero_grad();
  tape.clear();
  local.backward(model, tape, model_loss(tape, model, first.inputs, first.targets, B, T), 0, 2);
  local.reduce(model, 0, 2);
  model.zero_grad();
  tape.clear();
  local.backward(model, tape, model_loss(tape, model, second.inputs, second.targets, B, T), 1, 2);
  local.reduce(model, 1, 2);
  const std::vector<real> one_process = gradients(model);
  // Two ranks: rank 0 computed g0, rank 1 g1. Each rank owns half of the numbers; the owner
  // receives both ranks' halves and adds them in rank order; then every rank gathers both sums.
  const int N = 2;
  std::vector<real> two_ranks(g0.size());
  for (int owner = 0; owner < N; ++owner) {
    const size_t lo = g0.size() * owner / N, hi = g0.size() * (owner + 1) / N;
    const std::vector<const std::vector<real>*> arriving = {&g0, &g1};  // from rank 0, rank 1
    for (size_t i = lo; i < hi; ++i) {
      real sum = (*arriving[0])[i];  // the first chunk is copied
      for (int j = 1; j < N; ++j) sum = sum + (*arriving[j])[i];
      two_ranks[i] = sum;
    }
  }
  std::printf("numbers whose bits differ: %ld of %zu\n", differing_bits(one_process, two_ranks), g0.size());
  check(differing_bits(one_process, two_ranks) == 0, "two ranks add in the order of one process: the same bits");
  // What backward alone would give: the second micro-batch added into the first one's gradients,
  // term by term (the embedding's rows, the matrix products' blocks), in an order two ranks
  // cannot reproduce.
  model.zero_grad();
  for (const Batch* b : {&first, &second}) {
    tape.clear();
    tape.backward(model_loss(tape, model, b->inputs, b->targets, B, T));
  }
  std::printf("accumulated inside backward instead: %ld numbers differ from the fold\n",
              differing_bits(gradients(model), one_process));

  std::printf("[traffic]\n");
  const TrainConfig medium = config_file("medium.json", {});
  const double P = static_cast<double>(count_parameters(medium.model));
  const double G = P * sizeof(float);
  std::printf("%.1fM parameters: %.1f MB of float32 gradients per step\n", P / 1e6, G / 1e6);
  for (int n : {2, 8, 64}) {
    std::printf("N = %2d: every rank sends and receives 2(N-1)/N x G = %.1f MB per step\n", n,
                2.0 * (n - 1) / n * G / 1e6);
  }

  std::printf("[cost]\n");
  // Assumed compute speed of one rank: one core of a recent x86 CPU on medium (bench/dp_scaling.sh
  // measures yours), then an accelerator 100 times faster; forward 1/3 and backward 2/3 of the
  // time; AdamW touches 20 bytes per parameter at 10 GB/s (the accelerator: 100 times faster).
  const int micro_tokens = medium.training.batch_size * medium.training.seq_len;
  for (const double tokens_per_s : {2000.0, 200000.0}) {
    DpCost cost;
    cost.forward_s = micro_tokens / tokens_per_s / 3;
    cost.backward_s = 2 * cost.forward_s;
    cost.optimizer_s = 20 * P / 10e9 / (tokens_per_s / 2000);  // an accelerator streams memory as much faster
    cost.gradient_bytes = G;
    cost.buckets = static_cast<int>(std::ceil(G / (4.0 * 1024 * 1024)));
    std::printf(
        "one rank at %.0f tokens/s, one micro-batch of %d tokens per rank per step: forward %.4f s, "
        "backward %.4f s, AdamW %.4f s; %d buckets of 4 MiB\n",
        tokens_per_s, micro_tokens, cost.forward_s, cost.backward_s, cost.optimizer_s, cost.buckets);
    std::printf("%-11s %5s %11s %10s %9s %12s %10s\n", "link", "ranks", "all-reduce", "exposed", "step", "tokens/s",
                "efficiency");
    const double single = predict_step(cost, 1, 1, 0).step_s;
    for (const double gbit : {10.0, 100.0}) {
      const double latency = gbit < 50 ? 20e-6 : 5e-6;  // TCP over Ethernet; RDMA
      for (int n : {1, 2, 8, 64}) {
        const DpPrediction p = predict_step(cost, n, gbit * 1e9 / 8, latency);
        std::printf("%4.0f Gbit/s %5d %9.4f s %8.4f s %7.4f s %12.0f %9.0f%%\n", gbit, n, p.comm_s, p.exposed_s,
                    p.step_s, n * micro_tokens / p.step_s, 100 * single / p.step_s);
      }
    }
  }
  // Where it stops paying: the all-reduce no longer hides behind the backward pass. Its
  // bandwidth term is 2G / bandwidth at any N, so the break-even is a micro-batch size.
  for (const double gbit : {10.0, 100.0}) {
    const double allreduce_s = 2 * G / (gbit * 1e9 / 8);
    std::printf(
        "%3.0f Gbit/s: the all-reduce needs %.3f s at any N; backward hides it from %.0f tokens per rank "
        "per step at 2000 tokens/s, from %.0f at 200000\n",
        gbit, allreduce_s, allreduce_s / (2.0 / 3 / 2000), allreduce_s / (2.0 / 3 / 200000));
  }

  std::printf("[two-ranks]\n");
  std::printf(
      "mpirun -np 2 build/foundry train --config configs/tiny.json --data data/tinystories "
      "--set training.grad_accum=2 --set training.batch_size=6 --threads 1 --timeline timeline.json\n"
      "build/foundry train --config configs/tiny.json --data data/tinystories "
      "--set training.grad_accum=2 --set training.batch_size=6 --threads 1 --out runs/one\n"
      "cmp runs/tiny/model/model.safetensors runs/one/model/model.safetensors   # no output: the same bytes\n");
  return lesson::failures == 0 ? 0 : 1;
}
