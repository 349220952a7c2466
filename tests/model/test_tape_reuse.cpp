// Tape::set_reuse_grads (the training tape's pooled gradient buffers) against its naive twin,
// the default tape where every op node owns its gradient: the parameters' gradients must be the
// same bits, step after step; the pool must hold far fewer numbers than the default tape's
// gradients; an op's gradient asked for after backward must be refused, not returned stale.
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/parallel.h"
#include "engine/rng.h"
#include "model/memory.h"
#include "model/model.h"

using namespace foundry;

namespace {

ModelConfig reuse_config(bool tied) {
  ModelConfig c;
  c.dim = 32;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 53;
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

// Gradients of every parameter after one forward + backward on `tape`.
std::vector<Tensor> gradients(Model& m, Tape& tape, const std::vector<int>& ids, const std::vector<int>& targets, int B,
                              int T) {
  m.zero_grad();
  tape.clear();
  tape.backward(model_loss(tape, m, ids, targets, B, T));
  std::vector<Tensor> out;
  for (NamedTensor& p : m.parameters()) out.push_back(*p.grad);
  return out;
}

}  // namespace

TEST_CASE("tape reuse_grads: the same parameter gradients as the default tape, step after step",
          "[tape][reuse_grads]") {
  for (bool tied : {true, false}) {
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      Model m = make_model(reuse_config(tied));
      Rng rng(5);
      init_weights(m, rng);
      const int B = 3, T = 16;
      Tape plain, pooled;
      pooled.set_reuse_grads(true);
      for (int step = 0; step < 3; step++) {  // a new batch each step: the pool is reused
        std::vector<int> ids = random_ids(B * T, 53, 10 + step), targets = random_ids(B * T, 53, 20 + step);
        std::vector<Tensor> a = gradients(m, plain, ids, targets, B, T);
        std::vector<Tensor> b = gradients(m, pooled, ids, targets, B, T);
        INFO("tied " << tied << " threads " << threads << " step " << step);
        REQUIRE(a.size() == b.size());
        for (size_t k = 0; k < a.size(); k++) {
          REQUIRE(a[k].shape == b[k].shape);
          REQUIRE(a[k].data == b[k].data);  // bit for bit: the same arithmetic in the same order
        }
      }
      // The pool's buffers after a step: a fraction of the per-node gradients of the default tape.
      size_t plain_grads = 0;
      for (int i = 0; i < plain.size(); i++) {
        const TapeNode& n = plain.node(i);
        if (n.grad == &n.own_grad) plain_grads += n.own_grad.size();
      }
      INFO("pool " << pooled.grad_pool_numbers() << " numbers, default tape " << plain_grads);
      REQUIRE(pooled.grad_pool_numbers() > 0);
      REQUIRE(pooled.grad_pool_numbers() * 2 < plain_grads);
      // A second pass over the same shapes allocates nothing: the pool keeps its capacity.
      const size_t before = pooled.grad_pool_numbers();
      gradients(m, pooled, random_ids(B * T, 53, 1), random_ids(B * T, 53, 2), B, T);
      REQUIRE(pooled.grad_pool_numbers() == before);
    }
  }
  set_num_threads(0);
}

TEST_CASE("tape reuse_grads: an op's gradient after backward is refused; params keep theirs", "[tape][reuse_grads]") {
  Model m = make_model(reuse_config(true));
  Rng rng(5);
  init_weights(m, rng);
  Tape tape;
  tape.set_reuse_grads(true);
  std::vector<int> ids = random_ids(2 * 8, 53, 3);
  Var logits = model_logits(tape, m, ids, 2, 8);
  REQUIRE(tape.needs_grad(logits));
  m.zero_grad();
  tape.clear();
  Var loss = model_loss(tape, m, ids, ids, 2, 8);
  tape.backward(loss);
  REQUIRE_THROWS_WITH(tape.grad(loss), Catch::Contains("not held"));
  double sum = 0;
  for (real g : m.grads.tok_embeddings->data) sum += std::fabs(g);
  REQUIRE(sum > 0);
  // evaluation on the same tape (forward only) records no gradient buffers at all
  tape.clear();
  model_loss(tape, m, ids, ids, 2, 8);
  REQUIRE(tape_numbers(tape) < estimate_training_memory(m.config, 2, 8).activation_bytes / sizeof(real));
}
