#include "engine/softmax.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/fast_exp.h"

namespace foundry {

namespace {

// The largest of n numbers (n ≥ 1), 16 running maxima side by side: independent lanes the
// compiler turns into one vector max per 16 numbers. A maximum is exact, so the lanes change
// nothing in the result.
real max_of(const real* x, int n) {
  real lane[16];
  for (int l = 0; l < 16; l++) lane[l] = x[0];
  int j = 0;
  for (; j + 16 <= n; j += 16) {
    for (int l = 0; l < 16; l++) lane[l] = x[j + l] > lane[l] ? x[j + l] : lane[l];
  }
  for (; j < n; j++) lane[0] = x[j] > lane[0] ? x[j] : lane[0];
  real m = lane[0];
  for (int l = 1; l < 16; l++) m = lane[l] > m ? lane[l] : m;
  return m;
}

// Σ x_j in double, as 8 running sums (number j goes to sum j mod 8) added at the end: 8
// independent chains instead of one long one, which the compiler turns into one vector add per 8
// numbers. The order of the additions depends only on n, never on where x sits in memory, so
// the result is the same on every run.
double sum_in_double(const real* x, int n) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int j = 0;
  for (; j + 8 <= n; j += 8) {
    for (int l = 0; l < 8; l++) lane[l] += x[j + l];
  }
  for (; j < n; j++) lane[j % 8] += x[j];
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

}  // namespace

// ANCHOR: softmax_forward
void softmax_forward(real* probs, const real* x, int N, int V) {
#pragma omp parallel for  // rows are independent
  for (int i = 0; i < N; i++) {
    const real* row = x + (size_t)i * V;
    real* p = probs + (size_t)i * V;
    real m = *std::max_element(row, row + V);
    real total = 0;
    for (int j = 0; j < V; j++) {
      p[j] = std::exp(row[j] - m);  // ≤ 1: never overflows
      total += p[j];
    }
    for (int j = 0; j < V; j++) p[j] /= total;
  }
}
// ANCHOR_END: softmax_forward

// ANCHOR: softmax_backward
void softmax_backward(real* dx, const real* dprobs, const real* probs, int N, int V) {
#pragma omp parallel for
  for (int i = 0; i < N; i++) {
    const real* p = probs + (size_t)i * V;
    const real* dp = dprobs + (size_t)i * V;
    real* d = dx + (size_t)i * V;
    real dot = 0;  // Σ_k p_k dp_k
    for (int k = 0; k < V; k++) dot += p[k] * dp[k];
    for (int j = 0; j < V; j++) d[j] += p[j] * (dp[j] - dot);
  }
}
// ANCHOR_END: softmax_backward

void log_softmax_forward(real* out, const real* x, int N, int V) {
#pragma omp parallel for
  for (int i = 0; i < N; i++) {
    const real* row = x + (size_t)i * V;
    real* y = out + (size_t)i * V;
    real m = *std::max_element(row, row + V);
    real total = 0;
    for (int j = 0; j < V; j++) total += std::exp(row[j] - m);
    // subtle: (x_j − m) − log Σ, not x_j − (m + log Σ). For logits near 1e4 the float sum
    // m + log Σ rounds to a multiple of 2^-10 and that error lands in every output; x_j − m is
    // exact for nearby values and log Σ is small.
    real log_total = std::log(total);
    for (int j = 0; j < V; j++) y[j] = (row[j] - m) - log_total;
  }
}

void log_softmax_backward(real* dx, const real* dout, const real* out, int N, int V) {
#pragma omp parallel for
  for (int i = 0; i < N; i++) {
    const real* y = out + (size_t)i * V;
    const real* dy = dout + (size_t)i * V;
    real* d = dx + (size_t)i * V;
    real total = 0;  // Σ_k dy_k
    for (int k = 0; k < V; k++) total += dy[k];
    for (int j = 0; j < V; j++) d[j] += dy[j] - std::exp(y[j]) * total;  // exp(y) = p
  }
}

// ANCHOR: cross_entropy_forward
double cross_entropy_forward(real* probs, const real* logits, const int* targets, int N, int V) {
  double total = 0;
#pragma omp parallel for reduction(+ : total)
  for (int i = 0; i < N; i++) {
    const real* row = logits + (size_t)i * V;
    real* p = probs + (size_t)i * V;
    // Each pass over the row is its own loop so that each vectorizes (engine/fast_exp.h for
    // the exponential; max_of and sum_in_double above for the two reductions).
    const real m = max_of(row, V);
    for (int j = 0; j < V; j++) p[j] = fast_exp(row[j] - m);
    const double z = sum_in_double(p, V);  // Σ exp(x − m) ≥ 1: the maximum contributes exp(0)
    for (int j = 0; j < V; j++) p[j] = static_cast<real>(p[j] / z);
    // loss_i = logsumexp(x) − x_t = (m − x_t) + log z: no log of a probability that underflowed.
    // subtle: m − x_t first. Both are near 1e4 for large logits and their difference is exact,
    // whereas m + log z would round away the digits of log z at the scale of 1e4.
    total += double(m - row[targets[i]]) + std::log(z);
  }
  return total / N;
}
// ANCHOR_END: cross_entropy_forward

// ANCHOR: cross_entropy_backward
void cross_entropy_backward(real* dlogits, const real* probs, const int* targets, real dloss, int N, int V) {
  real scale = dloss / N;  // the loss is a mean over N rows
#pragma omp parallel for
  for (int i = 0; i < N; i++) {
    const real* p = probs + (size_t)i * V;
    real* d = dlogits + (size_t)i * V;
    for (int j = 0; j < V; j++) d[j] += p[j] * scale;
    d[targets[i]] -= scale;  // the one-hot term
  }
}
// ANCHOR_END: cross_entropy_backward

namespace {
// Rows and columns of a (..., V) tensor seen as (N, V).
void rows_cols(const Tensor& x, const char* op, int& N, int& V) {
  if (x.rank() < 1 || x.dim(-1) == 0) throw std::invalid_argument(std::string(op) + ": empty last dimension");
  V = x.dim(-1);
  N = static_cast<int>(x.size() / V);
}
}  // namespace

Var softmax(Tape& tape, Var x) {
  int N, V;
  rows_cols(tape.value(x), "softmax", N, V);
  Var out = tape.record("softmax", {x.id}, tape.value(x).shape);
  softmax_forward(tape.mutable_value(out).ptr(), tape.value(x).ptr(), N, V);
  tape.set_backward(out, [&tape, x, out, N, V] {
    softmax_backward(tape.grad(x).ptr(), tape.grad(out).ptr(), tape.value(out).ptr(), N, V);
  });
  return out;
}

Var log_softmax(Tape& tape, Var x) {
  int N, V;
  rows_cols(tape.value(x), "log_softmax", N, V);
  Var out = tape.record("log_softmax", {x.id}, tape.value(x).shape);
  log_softmax_forward(tape.mutable_value(out).ptr(), tape.value(x).ptr(), N, V);
  tape.set_backward(out, [&tape, x, out, N, V] {
    log_softmax_backward(tape.grad(x).ptr(), tape.grad(out).ptr(), tape.value(out).ptr(), N, V);
  });
  return out;
}

Var cross_entropy(Tape& tape, Var logits, const std::vector<int>& targets) {
  int N, V;
  rows_cols(tape.value(logits), "cross_entropy", N, V);
  if (N == 0) {
    throw std::invalid_argument("cross_entropy: logits " + shape_str(tape.value(logits).shape) + " have no rows");
  }
  if (static_cast<int>(targets.size()) != N) {
    throw std::invalid_argument("cross_entropy: " + std::to_string(N) + " rows of logits " +
                                shape_str(tape.value(logits).shape) + " but " + std::to_string(targets.size()) +
                                " targets");
  }
  for (int i = 0; i < N; i++) {
    if (targets[i] < 0 || targets[i] >= V) {
      throw std::invalid_argument("cross_entropy: target " + std::to_string(targets[i]) + " at row " +
                                  std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(V) + ")");
    }
  }
  Var out = tape.record("cross_entropy", {logits.id}, {});
  Tensor& probs = tape.saved(out, 0, {N, V});
  double loss = cross_entropy_forward(probs.ptr(), tape.value(logits).ptr(), targets.data(), N, V);
  tape.mutable_value(out)[0] = static_cast<real>(loss);
  // The targets are copied into the closure (N ints) so the caller's vector may die before backward.
  tape.set_backward(out, [&tape, logits, out, targets, N, V] {
    cross_entropy_backward(tape.grad(logits).ptr(), tape.node(out.id).saved[0].ptr(), targets.data(), tape.grad(out)[0],
                           N, V);
  });
  return out;
}

}  // namespace foundry
