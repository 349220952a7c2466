// Lesson 04: softmax and cross-entropy. Turns logits into probabilities, shows why the row
// maximum is subtracted (logits of ±1e4), computes the loss, and checks that the fused backward
// p − onehot equals the gradient of the same loss composed from log_softmax and a sum; then the
// embedding, whose backward adds the gradients of repeated ids into one row. Exits non-zero if
// any check fails.
//
//   build/lessons/lesson_04
#include <cmath>
#include <cstdio>
#include <vector>

#include "engine/embedding.h"
#include "engine/gradcheck.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "engine/softmax.h"
#include "lessons/lesson_common.h"

using namespace foundry;

namespace {

using lesson::check;
using lesson::failures;

// Prints the rows of a (rows, C) matrix, one per line, each labelled "label i".
void print_rows(const char* label, const Tensor& t) {
  for (int i = 0; i < t.dim(0); i++) {
    std::printf("%s %d:", label, i);
    for (int c = 0; c < t.dim(1); c++) std::printf(" %g", t.at({i, c}));
    std::printf("\n");
  }
}

void print_row(const char* label, const real* x, int n) {
  std::printf("%-26s", label);
  for (int j = 0; j < n; j++) std::printf(" %11.4f", x[j]);
  std::printf("\n");
}

// ANCHOR: softmax_textbook
// The formula as printed in textbooks, without the shift by the maximum.
void softmax_textbook(real* p, const real* x, int V) {
  real total = 0;
  for (int j = 0; j < V; j++) total += std::exp(x[j]);
  for (int j = 0; j < V; j++) p[j] = std::exp(x[j]) / total;
}
// ANCHOR_END: softmax_textbook

}  // namespace

int main() {
  std::printf("[softmax]\n");
  {
    const int V = 4;
    real logits[V] = {2.0f, 1.0f, 0.1f, -1.0f};
    real shifted[V], p[V], p_shifted[V];
    for (int j = 0; j < V; j++) shifted[j] = logits[j] + 100;
    softmax_forward(p, logits, 1, V);
    softmax_forward(p_shifted, shifted, 1, V);
    print_row("logits", logits, V);
    print_row("softmax", p, V);
    print_row("softmax of logits + 100", p_shifted, V);
    double total = 0, diff = 0;
    for (int j = 0; j < V; j++) {
      total += p[j];
      diff = std::max(diff, double(std::fabs(p[j] - p_shifted[j])));
    }
    check(std::fabs(total - 1) < 1e-6, "the probabilities sum to 1");
    check(diff < 1e-6, "adding a constant to every logit changes nothing");
  }

  std::printf("[stability]\n");
  {
    const int V = 3;
    real logits[V] = {1e4f, -1e4f, 0.0f};
    real p_textbook[V], p[V];
    softmax_textbook(p_textbook, logits, V);
    softmax_forward(p, logits, 1, V);
    print_row("logits", logits, V);
    print_row("textbook exp(x) / sum", p_textbook, V);
    print_row("softmax_forward", p, V);
    check(std::isnan(p_textbook[0]), "the textbook formula gives inf / inf = nan");
    check(p[0] == 1 && p[1] == 0 && p[2] == 0, "the shifted one gives (1, 0, 0)");
    // The loss for target 1, the logit at −1e4: its probability underflows to exactly 0.
    const int target = 1;
    const double via_log_p = -std::log(double(p[target]));
    real probs[V];
    const double fused = cross_entropy_forward(probs, logits, &target, 1, V);
    std::printf("-log(p[1]) from the probabilities: %g\n", via_log_p);
    std::printf("cross_entropy_forward:              %g\n", fused);
    check(std::isinf(via_log_p), "log of an underflowed probability is infinite");
    check(fused == 20000, "logsumexp(x) − x_t = 1e4 − (−1e4) = 20000, exactly");
  }

  std::printf("[loss]\n");
  {
    // Uniform logits: every token equally likely, the loss of a model that knows nothing.
    for (int V : {65, 4096, 32000}) {
      std::vector<real> zeros(V, 0), probs(V);
      const int target = 0;
      const double loss = cross_entropy_forward(probs.data(), zeros.data(), &target, 1, V);
      std::printf("uniform logits, V = %5d: loss %.4f, log V = %.4f\n", V, loss, std::log(double(V)));
      if (std::fabs(loss - std::log(double(V))) > 1e-4) check(false, "uniform loss = log V");
    }
  }

  std::printf("[gradient]\n");
  {
    // N = 2 rows, V = 4 classes. The fused op against the same loss built from engine
    // primitives: L = −(1/N) Σ_i log_softmax(x_i)[t_i], picked out with a one-hot mask.
    const int N = 2, V = 4;
    Tensor logits({N, V}, {2.0f, 1.0f, 0.1f, -1.0f, 0.5f, -0.5f, 3.0f, 0.0f});  // (N, V)
    std::vector<int> targets = {0, 1};
    Tensor onehot({N, V});  // (N, V)
    for (int i = 0; i < N; i++) onehot.at({i, targets[i]}) = 1;

    Tensor d_fused({N, V}), d_composed({N, V});
    // ANCHOR: fused_vs_composed
    Tape tape;
    Var fused = cross_entropy(tape, tape.param(logits, d_fused), targets);
    tape.backward(fused);  // d_fused = (p − onehot) / N

    Tape tape2;
    Var log_p = log_softmax(tape2, tape2.param(logits, d_composed));            // (N, V)
    Var picked = sum(tape2, mul(tape2, log_p, tape2.input(onehot, "onehot")));  // Σ_i log p_{i,t_i}
    Var composed = scale(tape2, picked, real(-1) / N);                          // the mean, negated
    tape2.backward(composed);
    // ANCHOR_END: fused_vs_composed
    std::printf("loss: fused %.6f, composed %.6f\n", tape.value(fused)[0], tape2.value(composed)[0]);
    for (int i = 0; i < N; i++) {
      std::printf("row %d, target %d\n", i, targets[i]);
      print_row("  dlogits fused", d_fused.ptr() + i * V, V);
      print_row("  dlogits composed", d_composed.ptr() + i * V, V);
    }
    check(std::fabs(tape.value(fused)[0] - tape2.value(composed)[0]) < 1e-6, "the two losses agree");
    check(max_abs_diff(d_fused, d_composed) < 1e-6, "the fused backward (p − onehot) / N is the composed gradient");
    double worst_row_sum = 0;
    for (int i = 0; i < N; i++) {
      double row = 0;
      for (int j = 0; j < V; j++) row += d_fused.at({i, j});
      worst_row_sum = std::max(worst_row_sum, std::fabs(row));
    }
    check(worst_row_sum < 1e-6, "each row of the gradient sums to 0");
  }

  std::printf("[embedding]\n");
  {
    // A table of V = 4 tokens with C = 3 numbers each (row v holds v, so the lookup is easy to
    // read), and a batch of N = 4 positions in which token 2 appears three times.
    const int V = 4, C = 3, N = 4;
    Tensor table({V, C}, {0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3});  // (V, C)
    std::vector<int> ids = {2, 0, 2, 2};                         // (N)
    Tensor out({N, C});                                          // (N, C)
    embedding_forward(out.ptr(), ids.data(), table.ptr(), N, V, C);
    std::printf("ids: 2 0 2 2\n");
    print_rows("out row", out);

    // A different gradient at every position, so the sums can be told apart.
    Tensor dout({N, C}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});  // (N, C)
    Tensor dtable({V, C});                                         // (V, C)
    embedding_backward(dtable.ptr(), dout.ptr(), ids.data(), N, C);
    print_rows("dtable row", dtable);
    // The trap: a backward that assigns keeps only the last position that wrote each row.
    Tensor assigned({V, C});  // (V, C)
    for (int i = 0; i < N; i++) {
      for (int c = 0; c < C; c++) assigned.at({ids[i], c}) = dout.at({i, c});
    }
    std::printf("with = instead of +=, dtable row 2 would be: %g %g %g\n", assigned.at({2, 0}), assigned.at({2, 1}),
                assigned.at({2, 2}));
    check(dtable.at({2, 0}) == 1 + 7 + 10 && dtable.at({2, 2}) == 3 + 9 + 12,
          "row 2 holds the sum of the gradients of positions 0, 2 and 3");
    check(dtable.at({1, 0}) == 0 && dtable.at({3, 2}) == 0, "tokens that do not occur get no gradient");

    // The taped embedding against finite differences, with repeated ids. It is linear in the
    // table, so a large step is exact.
    Rng rng(4);
    Tensor random_table({5, 3});  // (V, C)
    for (real& v : random_table.data) v = static_cast<real>(rng.normal());
    std::vector<int> repeated = {1, 4, 1, 1, 0, 4};
    GradCheckOptions options;
    options.step = 1e-2;
    GradCheckResult r = check_gradients(
        [&repeated](Tape& tape, const std::vector<Var>& in) { return embedding(tape, in[0], repeated); },
        {&random_table}, {"table"}, options);
    std::printf("embedding with ids 1 4 1 1 0 4: %zu elements checked, %s\n", r.checked,
                r.passed(1e-3) ? "max relative error below 1e-3: passed" : "FAILED");
    check(r.passed(1e-3), "the scatter-add backward passes the gradient check");
  }

  std::printf("%s\n", failures == 0 ? "all checks passed" : "SOME CHECKS FAILED");
  return failures == 0 ? 0 : 1;
}
