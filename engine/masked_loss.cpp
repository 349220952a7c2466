// Masked cross-entropy: forward and backward side by side (the math is in masked_loss.h).
#include "engine/masked_loss.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "engine/fast_exp.h"

namespace foundry {

namespace {
size_t count_unmasked(const uint8_t* mask, int N) {
  size_t M = 0;
  for (int i = 0; i < N; i++) M += mask[i] ? 1 : 0;
  return M;
}
// The shape checks both taped losses share: logits (..., V), one target and one `per_row`
// entry (a mask flag or a weight) per row. Returns {N, V}.
std::pair<int, int> check_rows(const char* op, const Tensor& x, size_t targets, size_t per_row,
                               const char* per_row_name) {
  if (x.rank() < 1 || x.dim(-1) == 0) throw std::invalid_argument(std::string(op) + ": empty last dimension");
  const int V = x.dim(-1);
  const int N = static_cast<int>(x.size() / V);
  if (static_cast<int>(targets) != N || static_cast<int>(per_row) != N)
    throw std::invalid_argument(std::string(op) + ": " + std::to_string(N) + " rows of logits " + shape_str(x.shape) +
                                " but " + std::to_string(targets) + " targets and " + std::to_string(per_row) + " " +
                                per_row_name);
  return {N, V};
}
}  // namespace

// ANCHOR: masked_cross_entropy_forward
double masked_cross_entropy_forward(real* probs, const real* logits, const int* targets, const uint8_t* mask, int N,
                                    int V) {
  const size_t M = count_unmasked(mask, N);
  if (M == 0) return 0.0;
  double total = 0;
#pragma omp parallel for reduction(+ : total)
  for (int i = 0; i < N; i++) {
    if (!mask[i]) continue;  // not a target: no loss, no probabilities needed
    const real* row = logits + (size_t)i * V;
    real* p = probs + (size_t)i * V;
    real m = row[0];
    for (int j = 1; j < V; j++) m = std::max(m, row[j]);
    double z = 0;
    for (int j = 0; j < V; j++) {
      p[j] = fast_exp(row[j] - m);
      z += p[j];
    }
    for (int j = 0; j < V; j++) p[j] = static_cast<real>(p[j] / z);
    total += double(m - row[targets[i]]) + std::log(z);  // logsumexp(x) − x_t, as in softmax.cpp
  }
  return total / static_cast<double>(M);
}
// ANCHOR_END: masked_cross_entropy_forward

// ANCHOR: masked_cross_entropy_backward
void masked_cross_entropy_backward(real* dlogits, const real* probs, const int* targets, const uint8_t* mask,
                                   real dloss, int N, int V) {
  const size_t M = count_unmasked(mask, N);
  if (M == 0) return;
  const real scale = dloss / static_cast<real>(M);  // the mean is over the M rows that count
#pragma omp parallel for
  for (int i = 0; i < N; i++) {
    if (!mask[i]) continue;  // exactly zero: a masked row's logits get nothing
    const real* p = probs + (size_t)i * V;
    real* d = dlogits + (size_t)i * V;
    for (int j = 0; j < V; j++) d[j] += p[j] * scale;
    d[targets[i]] -= scale;  // the one-hot term
  }
}
// ANCHOR_END: masked_cross_entropy_backward

Var masked_cross_entropy(Tape& tape, Var logits, const std::vector<int>& targets, const std::vector<uint8_t>& mask) {
  const Tensor& x = tape.value(logits);
  // (No structured binding: C++17 lambdas may not capture one, and the backward captures N and V.)
  const std::pair<int, int> rows = check_rows("masked_cross_entropy", x, targets.size(), mask.size(), "mask entries");
  const int N = rows.first, V = rows.second;
  for (int i = 0; i < N; i++)
    if (mask[i] && (targets[i] < 0 || targets[i] >= V))
      throw std::invalid_argument("masked_cross_entropy: target " + std::to_string(targets[i]) + " at row " +
                                  std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(V) + ")");
  Var out = tape.record("masked_cross_entropy", {logits.id}, {});
  Tensor& probs = tape.saved(out, 0, {N, V});
  const double loss = masked_cross_entropy_forward(probs.ptr(), x.ptr(), targets.data(), mask.data(), N, V);
  tape.mutable_value(out)[0] = static_cast<real>(loss);
  tape.set_backward(out, [&tape, logits, out, targets, mask, N, V] {
    masked_cross_entropy_backward(tape.grad(logits).ptr(), tape.node(out.id).saved[0].ptr(), targets.data(),
                                  mask.data(), tape.grad(out)[0], N, V);
  });
  return out;
}

namespace {
double total_weight(const real* weight, int N) {
  double W = 0;
  for (int i = 0; i < N; i++) W += weight[i];
  return W;
}
}  // namespace

double weighted_cross_entropy_forward(real* probs, const real* logits, const int* targets, const real* weight, int N,
                                      int V) {
  const double W = total_weight(weight, N);
  if (W == 0) return 0.0;
  double total = 0;
#pragma omp parallel for reduction(+ : total)
  for (int i = 0; i < N; i++) {
    if (weight[i] == 0) continue;  // weight 0: as a masked row, nothing computed
    const real* row = logits + (size_t)i * V;
    real* p = probs + (size_t)i * V;
    real m = row[0];
    for (int j = 1; j < V; j++) m = std::max(m, row[j]);
    double z = 0;
    for (int j = 0; j < V; j++) {
      p[j] = fast_exp(row[j] - m);
      z += p[j];
    }
    for (int j = 0; j < V; j++) p[j] = static_cast<real>(p[j] / z);
    total += double(weight[i]) * (double(m - row[targets[i]]) + std::log(z));
  }
  return total / W;
}

void weighted_cross_entropy_backward(real* dlogits, const real* probs, const int* targets, const real* weight,
                                     real dloss, int N, int V) {
  const double W = total_weight(weight, N);
  if (W == 0) return;
#pragma omp parallel for
  for (int i = 0; i < N; i++) {
    if (weight[i] == 0) continue;                                 // exactly zero gradient for a row of weight 0
    const real scale = static_cast<real>(weight[i] * dloss / W);  // this row's share of the weighted mean
    const real* p = probs + (size_t)i * V;
    real* d = dlogits + (size_t)i * V;
    for (int j = 0; j < V; j++) d[j] += p[j] * scale;
    d[targets[i]] -= scale;
  }
}

Var weighted_cross_entropy(Tape& tape, Var logits, const std::vector<int>& targets, const std::vector<real>& weight) {
  const Tensor& x = tape.value(logits);
  const std::pair<int, int> rows = check_rows("weighted_cross_entropy", x, targets.size(), weight.size(), "weights");
  const int N = rows.first, V = rows.second;
  for (int i = 0; i < N; i++) {
    if (!(weight[i] >= 0) || !std::isfinite(weight[i]))
      throw std::invalid_argument("weighted_cross_entropy: weight " + std::to_string(weight[i]) + " at row " +
                                  std::to_string(i) + " is not a finite number >= 0");
    if (weight[i] > 0 && (targets[i] < 0 || targets[i] >= V))
      throw std::invalid_argument("weighted_cross_entropy: target " + std::to_string(targets[i]) + " at row " +
                                  std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(V) + ")");
  }
  Var out = tape.record("weighted_cross_entropy", {logits.id}, {});
  Tensor& probs = tape.saved(out, 0, {N, V});
  const double loss = weighted_cross_entropy_forward(probs.ptr(), x.ptr(), targets.data(), weight.data(), N, V);
  tape.mutable_value(out)[0] = static_cast<real>(loss);
  tape.set_backward(out, [&tape, logits, out, targets, weight, N, V] {
    weighted_cross_entropy_backward(tape.grad(logits).ptr(), tape.node(out.id).saved[0].ptr(), targets.data(),
                                    weight.data(), tape.grad(out)[0], N, V);
  });
  return out;
}

}  // namespace foundry
