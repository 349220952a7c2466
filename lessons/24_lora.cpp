// Lesson 24: LoRA. A linear layer with a low-rank adapter: it starts equal to the plain layer,
// its hand-derived backward agrees with finite differences and with the full weight gradient
// projected onto the adapter, a toy task shows that the rank the adapter needs is the rank of the
// change it must learn, the memory arithmetic of full fine-tuning against LoRA for two model
// sizes, and merging the adapter into the weight. Exits non-zero when any check fails.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "engine/gradcheck.h"
#include "engine/lora.h"
#include "engine/matmul.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "lessons/lesson_common.h"
#include "model/lora.h"
#include "model/params.h"
#include "train/adamw.h"
#include "train/lr_schedule.h"

using namespace foundry;
using lesson::check;

namespace {

Tensor random(const Shape& shape, Rng& rng, double std_dev) {
  Tensor t(shape);
  for (real& v : t.data) v = static_cast<real>(std_dev * rng.normal());
  return t;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (real v : t.data) m = std::max(m, std::fabs(double(v)));
  return m;
}

// The toy task of [rank]: learn y = x · (w0 + Δ)ᵀ starting from w0, where Δ has rank 2. Trains
// an adapter of rank R (R = 0: full fine-tuning of w instead) with AdamW on a cosine schedule
// (so that it settles instead of circling the minimum) and returns the final mean squared error.
double fit(int R, const Tensor& x, const Tensor& w0, const Tensor& y_true, size_t& trainable) {
  const int K = w0.dim(1), N = w0.dim(0);
  Tensor w = w0, gw(w0.shape);
  Rng rng(7);
  Tensor a({std::max(R, 1), K}), b({N, std::max(R, 1)}), ga(a.shape), gb(b.shape);
  for (real& v : a.data) v = static_cast<real>((2 * rng.uniform() - 1) / std::sqrt(double(K)));
  std::vector<NamedTensor> params;
  if (R == 0) params = {{"w", &w, &gw, false}};
  else params = {{"a", &a, &ga, false}, {"b", &b, &gb, false}};
  trainable = 0;
  for (const NamedTensor& p : params) trainable += p.value->size();
  AdamW opt = make_adamw(params);
  const real s = R > 0 ? static_cast<real>(2.0 / R) : 0;  // alpha = 2
  const LrSchedule schedule{0.05, 1e-4, 10, 400};
  double loss = 0;
  for (int step = 0; step < 400; step++) {
    for (const NamedTensor& p : params) p.grad->fill(0);
    Tape t;
    Var xv = t.input(x);
    Var y = R == 0 ? linear(t, xv, t.param(w, gw)) : lora_linear(t, xv, t.input(w), t.param(a, ga), t.param(b, gb), s);
    Var d = add(t, y, scale(t, t.input(y_true), -1));
    Var l = mean(t, mul(t, d, d));
    t.backward(l);
    loss = t.value(l)[0];
    adamw_step(opt, params, learning_rate(schedule, step), AdamWSettings{0.9, 0.95, 1e-8, 0.0});
  }
  return loss;
}

std::string mib(double bytes) {
  char buf[32];
  if (bytes >= 1024.0 * 1024 * 1024) std::snprintf(buf, sizeof buf, "%.1f GiB", bytes / (1024.0 * 1024 * 1024));
  else std::snprintf(buf, sizeof buf, "%.2f MiB", bytes / (1024.0 * 1024));
  return buf;
}

}  // namespace

int main() {
  Rng rng(24);
  // x (M, K) = (3, 8), w (N, K) = (6, 8), rank R = 2, alpha = 4: s = alpha / R = 2.
  const int M = 3, K = 8, N = 6, R = 2;
  const real s = 2;
  Tensor x = random({M, K}, rng, 1.0), w = random({N, K}, rng, 0.5);
  Tensor a({R, K}), b({N, R});
  for (real& v : a.data) v = static_cast<real>((2 * rng.uniform() - 1) / std::sqrt(double(K)));

  std::printf("[start]\n");
  {
    Tape t, plain;
    Var y = lora_linear(t, t.input(x), t.input(w), t.input(a), t.input(b), s);
    Var y0 = linear(plain, plain.input(x), plain.input(w));
    std::printf("w: %d numbers; adapter a (%d, %d) + b (%d, %d): %d numbers\n", N * K, R, K, N, R, R * (K + N));
    check(max_abs_diff(t.value(y), plain.value(y0)) == 0.0,
          "with b = 0 the adapted layer is the plain one, bit for bit");
  }

  std::printf("\n[backward]\n");
  b = random({N, R}, rng, 0.5);  // as if training had moved b
  Tensor gx({M, K}), ga({R, K}), gb({N, R});
  Tensor probe = random({M, N}, rng, 1.0);
  {
    Tape t;
    Var y = lora_linear(t, t.param(x, gx), t.input(w), t.param(a, ga), t.param(b, gb), s);
    t.backward(y, probe);
  }
  // Finite differences: y is linear in each single number of x, a or b, so central differences
  // are exact up to float rounding even with a large step; the double build's test holds 1e-6.
  GradCheckOptions fd;
  fd.step = 1e-2;
  fd.floor = 1.0;  // errors judged absolutely
  GradCheckResult r = check_gradients(
      [&w, s](Tape& t, const std::vector<Var>& v) { return lora_linear(t, v[0], t.input(w), v[1], v[2], s); },
      {&x, &a, &b}, {"x", "a", "b"}, fd);
  std::printf("%zu numbers of x, a and b checked against central differences\n", r.checked);
  check(r.passed(1e-3), "the backward agrees with finite differences");
  // The same gradients from the full weight gradient: dW of the merged layer y = x · w'ᵀ is
  // dyᵀ · x, and the chain rule through w' = w + s · b · a gives da = s · bᵀ · dW, db = s · dW · aᵀ.
  Tensor dW({N, K}), da({R, K}), db({N, R});
  linear_backward(nullptr, dW.ptr(), probe.ptr(), x.ptr(), w.ptr(), M, K, N);  // dW = dyᵀ · x
  matmul_backward(nullptr, da.ptr(), dW.ptr(), b.ptr(), nullptr, N, R, K);     // da = bᵀ · dW
  linear_forward(db.ptr(), dW.ptr(), a.ptr(), N, K, R);                        // db = dW · aᵀ
  for (real& v : da.data) v *= s;
  for (real& v : db.data) v *= s;
  check(max_abs_diff(da, ga) <= 1e-5 * max_abs(da) && max_abs_diff(db, gb) <= 1e-5 * max_abs(db),
        "da = s·bᵀ·dW and db = s·dW·aᵀ: LoRA's gradients are the full gradient, projected");

  std::printf("\n[rank]\n");
  {
    // The change to learn has rank 2: Δ = u · vᵀ with u (16, 2), v (16, 2).
    const int KK = 16, NN = 16, MM = 256;
    Rng task(5);
    Tensor xt = random({MM, KK}, task, 1.0), w0 = random({NN, KK}, task, 0.3);
    Tensor u = random({NN, 2}, task, 0.5), v = random({KK, 2}, task, 0.5), delta({NN, KK}), w_true = w0;
    linear_forward(delta.ptr(), u.ptr(), v.ptr(), NN, 2, KK);  // Δ = u · vᵀ
    for (size_t i = 0; i < w_true.size(); i++) w_true[i] += delta[i];
    Tensor y_true({MM, NN});
    linear_forward(y_true.ptr(), xt.ptr(), w_true.ptr(), MM, KK, NN);
    std::vector<double> losses;
    for (int rank : {1, 2, 4, 0}) {
      size_t trainable = 0;
      losses.push_back(fit(rank, xt, w0, y_true, trainable));
      std::printf("%-10s %4zu trainable numbers, mean squared error after 400 steps %.4f\n",
                  rank ? ("rank " + std::to_string(rank)).c_str() : "full", trainable, losses.back());
    }
    check(losses[0] > 0.05 && losses[1] < 0.001 && losses[2] < 0.001 && losses[3] < 0.001,
          "rank 1 cannot learn a rank-2 change; rank 2 and 4 learn it as well as full fine-tuning");
  }

  std::printf("\n[memory]\n");
  {
    // Training memory that depends on what trains (fp32): full fine-tuning holds each weight, its
    // gradient and AdamW's two moments (16 bytes per parameter); LoRA holds the frozen weights
    // (4 bytes) and the same 16 bytes per adapter number.
    ModelConfig quick;  // configs/tinystories.json, the quickstart's model, with the two chat tokens
    quick.dim = 192;
    quick.n_layers = 4;
    quick.n_heads = 6;
    quick.n_kv_heads = 2;
    quick.vocab_size = 2050;
    quick.hidden_dim = 512;
    quick.max_seq_len = 256;
    ModelConfig seven;  // the shape of LLaMA-2 7B
    seven.dim = 4096;
    seven.n_layers = 32;
    seven.n_heads = 32;
    seven.n_kv_heads = 32;
    seven.vocab_size = 32000;
    seven.hidden_dim = 11008;
    seven.max_seq_len = 4096;
    seven.tie_embeddings = false;
    LoraConfig lc;  // rank 8 on wq, wk, wv, wo
    for (const auto& [name, c] : {std::pair<const char*, ModelConfig>{"quickstart", quick}, {"7B", seven}}) {
      const double P = static_cast<double>(parameter_count(c));
      const double A = static_cast<double>(lora_parameter_count(lc, c));
      std::printf("%-10s P = %.0f, LoRA r=8 on wq,wk,wv,wo: %.0f (%.2f%%)\n", name, P, A, 100 * A / P);
      std::printf("%-10s full: %s   LoRA: %s   (weights, gradients, AdamW moments)\n", "", mib(16 * P).c_str(),
                  mib(4 * P + 16 * A).c_str());
    }
    check(lora_parameter_count(lc, quick) == size_t{4 * 8 * ((192 + 192) + (192 + 64) + (192 + 64) + (192 + 192))},
          "the adapters hold R·(K + N) numbers per adapted weight and layer");
  }

  std::printf("\n[merge]\n");
  {
    Tape t;
    Var y = lora_linear(t, t.input(x), t.input(w), t.input(a), t.input(b), s);
    Tensor merged = w, ba({N, K});
    matmul_forward(ba.ptr(), b.ptr(), a.ptr(), N, R, K);  // b · a   (N, R)(R, K) -> (N, K)
    for (size_t i = 0; i < merged.size(); i++) merged[i] += s * ba[i];
    Tape tm;
    Var ym = linear(tm, tm.input(x), tm.input(merged));
    std::printf("w' = w + s·b·a: one (%d, %d) matrix again, no adapter at inference\n", N, K);
    check(max_abs_diff(tm.value(ym), t.value(y)) <= 1e-5 * max_abs(t.value(y)),
          "the merged layer computes the adapted layer's outputs (to float rounding)");
  }
  return lesson::failures == 0 ? 0 : 1;
}
