// Lesson 17: performance. The fast paths of a training step checked against their naive twins,
// and the memory and allocation facts that made the step fast, all as exact counts:
//
//   [exp]          fast_exp (vectorized) against std::exp: the worst error in ulp
//   [reuse_grads]  the pooled-gradient tape against the default tape: the same gradient bits,
//                  and how many numbers each holds
//   [allocations]  heap allocations of a steady-state training step: none of them large
//   [timings]      what each change buys (volatile: the lesson does not quote this section)
//
// Exits non-zero if a check fails.
//
//   build/lessons/lesson_17
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <vector>

#include "common/aligned_new.h"
#include "engine/fast_exp.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "model/memory.h"
#include "model/model.h"
#include "train/adamw.h"
#include "train/data_loader.h"
#include "train/trainer.h"

using namespace foundry;

// ANCHOR: count_allocations
// Every `new` of this program (std::vector's buffers, std::function's captures, strings) goes
// through the project's own operator new (common/aligned_new.cpp, which also aligns large
// blocks to cache lines), and it reports each block to an observer, so a step's allocations can
// be counted. 64 KiB and up counts as large: that is where glibc starts handing out fresh pages
// from the kernel, a page fault per 4 KiB page.
std::atomic<long> g_allocations{0};
std::atomic<long> g_large_allocations{0};

void count_allocation(std::size_t bytes) {
  g_allocations++;
  if (bytes >= 65536) g_large_allocations++;
}
// ANCHOR_END: count_allocations

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  std::printf("check: %s: %s\n", what, ok ? "ok" : "FAILED");
  if (!ok) failures++;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A model small enough for a lesson, shaped like the reference configs (GQA, tied embedding).
ModelConfig lesson_config() {
  ModelConfig c;
  c.dim = 64;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 512;
  c.hidden_dim = 176;
  c.max_seq_len = 64;
  return c;
}

std::vector<int> random_ids(size_t n, int V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int> ids(n);
  for (int& id : ids) id = static_cast<int>(rng.below(V));
  return ids;
}

// Gradient numbers the default tape keeps: one buffer per op node, as large as its output.
size_t default_grad_numbers(const Tape& tape) {
  size_t n = 0;
  for (int i = 0; i < tape.size(); i++) {
    const TapeNode& node = tape.node(i);
    if (node.grad == &node.own_grad) n += node.own_grad.size();
  }
  return n;
}

}  // namespace

int main() {
  set_num_threads(1);  // the counts below do not depend on threads; the timings are per core

  std::printf("[exp]\n");
  // The same grid as tests/engine/test_fast_exp.cpp: every 1/1024 (plus a little) from -87 to 88.
  double worst_ulp = 0;
  long points = 0;
  for (double x = -87.0; x < 88.0; x += 1.0 / 1024 + 1e-7, points++) {
    const float xf = static_cast<float>(x);
    const double exact = std::exp(static_cast<double>(xf));
    const float rounded = static_cast<float>(exact);
    const double ulp = std::nextafter(rounded, std::numeric_limits<float>::infinity()) - rounded;
    worst_ulp = std::max(worst_ulp, std::fabs(double(fast_exp_float(xf)) - exact) / ulp);
  }
  std::printf("fast_exp against exp in double on %ld points in [-87, 88): worst error %.2f ulp\n", points, worst_ulp);
  std::printf("fast_exp(-1e4) = %g, fast_exp(0) = %g, fast_exp(100) = %g\n", fast_exp_float(-1e4f),
              fast_exp_float(0.0f), fast_exp_float(100.0f));
  check(worst_ulp < 2.0, "fast_exp is within 2 ulp of the exact exponential");

  std::printf("[reuse_grads]\n");
  const ModelConfig c = lesson_config();
  const int B = 4, T = 64;
  Model model = make_model(c);
  Rng init(17);
  init_weights(model, init);
  std::vector<int> ids = random_ids(B * T, c.vocab_size, 1), targets = random_ids(B * T, c.vocab_size, 2);
  // ANCHOR: reuse_twin
  Tape plain, pooled;  // the naive twin keeps every gradient; the training tape pools them
  pooled.set_reuse_grads(true);
  std::vector<Tensor> plain_grads, pooled_grads;
  for (Tape* tape : {&plain, &pooled}) {
    model.zero_grad();
    tape->backward(model_loss(*tape, model, ids, targets, B, T));
    std::vector<Tensor>& out = tape == &plain ? plain_grads : pooled_grads;
    for (NamedTensor& p : model.parameters()) out.push_back(*p.grad);
  }
  long differing = 0;
  for (size_t k = 0; k < plain_grads.size(); k++) {
    for (size_t i = 0; i < plain_grads[k].size(); i++) differing += plain_grads[k][i] != pooled_grads[k][i];
  }
  // ANCHOR_END: reuse_twin
  const size_t values = tape_numbers(plain) - default_grad_numbers(plain);  // outputs + saved
  std::printf("parameter gradients that differ between the two tapes: %ld of %zu\n", differing, model.num_parameters());
  std::printf("tape numbers, outputs and saved tensors: %zu\n", values);
  std::printf("gradient numbers, default tape (one buffer per op): %zu\n", default_grad_numbers(plain));
  std::printf("gradient numbers, pooled tape (the pool's buffers): %zu\n", pooled.grad_pool_numbers());
  std::printf("pooled / default gradient memory: %.3f\n",
              double(pooled.grad_pool_numbers()) / double(default_grad_numbers(plain)));
  check(differing == 0, "the pooled tape gives the same gradient bits as the default tape");
  check(pooled.grad_pool_numbers() * 3 < default_grad_numbers(plain), "the pool holds under a third of them");

  std::printf("[allocations]\n");
  // A steady-state training step, as train() runs it: training_step (zero, forward, backward,
  // clip, AdamW) on a pooled tape. Two warm-up steps allocate everything; we count the third.
  std::vector<int> tokens = random_ids(20000, c.vocab_size, 3);
  DataLoader loader = make_data_loader(tokens, B, T, BatchOrder::random, 5, "lesson tokens");
  Batch batch;
  TrainingSection tc;  // one micro-batch of (B, T), a constant learning rate of 1e-3, clipped to norm 1
  tc.batch_size = B;
  tc.seq_len = T;
  tc.lr = tc.min_lr = 1e-3;
  tc.warmup_steps = 0;
  tc.grad_clip = 1.0;
  AdamW opt = make_adamw(model.parameters());
  Tape tape;
  tape.set_reuse_grads(true);
  long step_allocations = 0, step_large = 0, first_large = 0;
  // Only the sanitizer build cannot count: AddressSanitizer's operator new replaces the project's
  // there. The count is the normal build's check (its test compares this section; the sanitizer
  // build's runs the program without comparing it), and the sections below run either way.
  const bool counting = set_allocation_observer(count_allocation);
  for (int step = 0; step < 3; step++) {
    const long before = g_allocations, before_large = g_large_allocations;
    training_step(model, opt, tape, loader, batch, tc, step);
    step_allocations = g_allocations - before;
    step_large = g_large_allocations - before_large;
    if (step == 0) first_large = step_large;
  }
  if (counting) {
    std::printf("first step allocates large buffers: %s\n", first_large > 0 ? "yes" : "no");
    std::printf("steady-state step: %ld large allocations (64 KiB or more)\n", step_large);
    check(step_large == 0, "a steady-state step allocates no large buffer");
  } else {
    std::printf("this build cannot count allocations (AddressSanitizer owns operator new): check skipped\n");
  }

  // Timings: not quoted by the lesson (they change from run to run and machine to machine).
  std::printf("[timings]\n");
  std::printf("first step: %ld large allocations; steady-state step: %ld allocations in all\n", first_large,
              step_allocations);
  {
    std::vector<float> x(1 << 22), y(x.size());
    for (size_t i = 0; i < x.size(); i++) x[i] = -static_cast<float>(i % 4096) / 256.0f;
    auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < x.size(); i++) y[i] = std::exp(x[i]);
    const double scalar = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < x.size(); i++) y[i] = fast_exp(x[i]);
    const double vector = seconds_since(t0);
    std::printf("4M exponentials: std::exp %.1f ms, fast_exp %.1f ms (%.1fx)\n", 1e3 * scalar, 1e3 * vector,
                scalar / vector);
  }
  {
    // Interleaved, step for step, so that both tapes see the same machine.
    Tape default_tape, pooled_tape;
    pooled_tape.set_reuse_grads(true);
    std::vector<double> times[2];
    for (int step = 0; step < 12; step++) {
      for (int k = 0; k < 2; k++) {
        auto t0 = std::chrono::steady_clock::now();
        training_step(model, opt, k ? pooled_tape : default_tape, loader, batch, tc, step);
        if (step >= 2) times[k].push_back(seconds_since(t0));
      }
    }
    for (int k = 0; k < 2; k++) {
      std::sort(times[k].begin(), times[k].end());
      const double median = times[k][times[k].size() / 2];
      std::printf("training step of the lesson model, %s tape: %.2f ms (%.0f tokens/s)\n", k ? "pooled " : "default",
                  1e3 * median, B * T / median);
    }
  }
  return failures == 0 ? 0 : 1;
}
