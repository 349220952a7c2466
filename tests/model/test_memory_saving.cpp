// The float build's side of the two memory savings of training (their gradient checks are in
// tests/model_f64): activation recomputation gives the very same gradient bits as the plain
// forward at one thread, on the pooled tape training uses; the blocked loss gives the plain
// loss and gradients up to float rounding.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "engine/parallel.h"
#include "engine/rng.h"
#include "model/model.h"

using namespace foundry;

namespace {

ModelConfig saving_config(bool tied) {
  ModelConfig c;
  c.dim = 32;
  c.n_layers = 3;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 97;
  c.hidden_dim = 40;
  c.max_seq_len = 16;
  c.tie_embeddings = tied;
  return c;
}

std::vector<int> random_ids(size_t n, int V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int> ids(n);
  for (int& id : ids) id = static_cast<int>(rng.below(V));
  return ids;
}

struct StepOut {
  real loss;
  std::vector<Tensor> grads;
};

StepOut step(Model& m, Tape& tape, const std::vector<int>& ids, const std::vector<int>& targets, int B, int T,
             const ForwardOptions& options) {
  m.zero_grad();
  tape.clear();
  Var loss = model_loss(tape, m, ids, targets, B, T, options);
  StepOut out{tape.value(loss)[0], {}};
  tape.backward(loss);
  for (NamedTensor& p : m.parameters()) out.grads.push_back(*p.grad);
  return out;
}

}  // namespace

TEST_CASE("recompute: the same loss and gradient bits as the plain forward, step after step", "[model][recompute]") {
  set_num_threads(1);
  for (bool tied : {true, false}) {
    Model m = make_model(saving_config(tied));
    Rng rng(9);
    init_weights(m, rng);
    const int B = 3, T = 16;
    Tape plain, recomputed;
    plain.set_reuse_grads(true);  // as training runs
    recomputed.set_reuse_grads(true);
    ForwardOptions on;
    on.recompute = true;
    for (int s = 0; s < 2; s++) {
      std::vector<int> ids = random_ids(B * T, m.config.vocab_size, 20 + s);
      std::vector<int> targets = random_ids(B * T, m.config.vocab_size, 30 + s);
      StepOut a = step(m, plain, ids, targets, B, T, {});
      StepOut b = step(m, recomputed, ids, targets, B, T, on);
      INFO("tied " << tied << " step " << s);
      REQUIRE(a.loss == b.loss);
      for (size_t k = 0; k < a.grads.size(); k++) {
        INFO("parameter " << m.entries[k].name);
        REQUIRE(a.grads[k].data == b.grads[k].data);
      }
    }
    // The tape holds one node per block instead of the block's ops.
    int blocks = 0;
    for (int i = 0; i < recomputed.size(); i++) blocks += recomputed.node(i).op == "block (recomputed)";
    REQUIRE(blocks == m.config.n_layers);
    REQUIRE(recomputed.size() < plain.size() / 2);
  }
}

TEST_CASE("blocked loss: the plain loss and gradients to float rounding", "[model][blocked_loss]") {
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    Model m = make_model(saving_config(true));
    Rng rng(11);
    init_weights(m, rng);
    const int B = 4, T = 16;
    std::vector<int> ids = random_ids(B * T, m.config.vocab_size, 40);
    std::vector<int> targets = random_ids(B * T, m.config.vocab_size, 41);
    Tape plain, blocked;
    ForwardOptions rows;
    rows.loss.block_rows = 7;  // 10 blocks of 64 rows, the last one short
    StepOut a = step(m, plain, ids, targets, B, T, {});
    StepOut b = step(m, blocked, ids, targets, B, T, rows);
    INFO("threads " << threads);
    REQUIRE(b.loss == Approx(a.loss).epsilon(1e-6));
    for (size_t k = 0; k < a.grads.size(); k++) {
      double scale = 0, diff = 0;
      for (size_t i = 0; i < a.grads[k].size(); i++) {
        scale = std::max(scale, std::fabs(double(a.grads[k][i])));
        diff = std::max(diff, std::fabs(double(a.grads[k][i]) - double(b.grads[k][i])));
      }
      INFO("parameter " << m.entries[k].name << ": max difference " << diff << " of " << scale);
      REQUIRE(scale > 0);
      REQUIRE(diff <= 1e-5 * scale);
    }
  }
  set_num_threads(1);
}
