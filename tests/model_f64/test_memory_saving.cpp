// Gradient checks (double build, 1e-6 relative) of the two memory savings of training: the loss
// computed in blocks of rows (linear_cross_entropy) and activation recomputation per block
// (transformer_block_recomputed). Each is also compared with the plain computation it replaces,
// and each has a deliberately broken twin that the checker must reject.
#include <catch2/catch.hpp>

#include "engine/linear_cross_entropy.h"
#include "engine/matmul.h"
#include "engine/softmax.h"
#include "model/block.h"
#include "model/model.h"
#include "tests/model_f64/model_helpers.h"

using namespace foundry;
using namespace foundry::model_test;

namespace {

ModelConfig tiny_config(int n_layers, bool tied) {
  ModelConfig c;
  c.dim = 8;
  c.n_layers = n_layers;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.vocab_size = 10;
  c.hidden_dim = 8;
  c.max_seq_len = 6;
  c.norm_eps = 1e-5;
  c.rope_theta = 100;
  c.tie_embeddings = tied;
  return c;
}

void randomize(Model& m, uint64_t seed) {
  Rng rng(seed);
  for (NamedTensor& p : m.parameters()) {
    bool is_norm = p.name.find("norm") != std::string::npos;
    for (real& v : p.value->data) v = static_cast<real>(is_norm ? 1 + 0.3 * rng.normal() : 0.4 * rng.normal());
  }
}

std::vector<Tensor*> weight_pointers(Model& m) {
  std::vector<Tensor*> list;
  for (NamedTensor& p : m.parameters()) list.push_back(p.value);
  return list;
}

const std::vector<int> kIds = {1, 4, 4, 9, 0, 2, 7, 3, 3, 5};      // (B=2, T=5)
const std::vector<int> kTargets = {4, 4, 9, 0, 2, 3, 3, 5, 1, 1};  // next tokens

// The classic bug of a blocked loss: each block's gradient scaled by 1 / (its own rows) instead
// of 1 / (all rows), as if every block were the whole batch. The forward (the mean) is right.
Var blocked_loss_wrong_scale(Tape& tape, Var x, Var w, const std::vector<int>& targets, int rows) {
  const Tensor& X = tape.value(x);
  const Tensor& W = tape.value(w);
  const int C = W.dim(1), V = W.dim(0), N = static_cast<int>(X.size() / C);
  Var out = tape.record("blocked_loss_wrong_scale", {x.id, w.id}, {});
  Tensor logits({N, V}), probs({N, V});
  linear_forward(logits.ptr(), X.ptr(), W.ptr(), N, C, V);
  tape.mutable_value(out)[0] =
      static_cast<real>(cross_entropy_forward(probs.ptr(), logits.ptr(), targets.data(), N, V));
  tape.set_backward(out, [&tape, x, w, out, targets, probs, rows, N, C, V] {
    const real dloss = tape.grad(out)[0];
    for (int r0 = 0; r0 < N; r0 += rows) {
      const int R = std::min(rows, N - r0);
      Tensor d({R, V});
      cross_entropy_backward(d.ptr(), probs.ptr() + (size_t)r0 * V, targets.data() + r0, dloss, R, V);  // / R
      linear_backward(tape.grad(x).ptr() + (size_t)r0 * C, tape.grad(w).ptr(), d.ptr(),
                      tape.value(x).ptr() + (size_t)r0 * C, tape.value(w).ptr(), R, C, V);
    }
  });
  return out;
}

// The classic bug of recomputation: the segment is re-run from a detached copy of its input, so
// the weights get their gradients but nothing flows back into x (and the layers before it).
Var block_recomputed_detached(Tape& tape, Var x, const LayerVars& w, const Model& model) {
  Var out = tape.record(
      "block (recomputed, detached)",
      {x.id, w.attention_norm.id, w.wq.id, w.wk.id, w.wv.id, w.wo.id, w.ffn_norm.id, w.w1.id, w.w3.id, w.w2.id},
      tape.value(x).shape);
  auto mirror = [&tape](Tape& in, Var v) { return in.param(tape.value(v), *tape.node(v.id).grad); };
  {
    Tape& in = tape.scratch();
    in.clear();
    LayerVars wi{mirror(in, w.attention_norm), mirror(in, w.wq), mirror(in, w.wk), mirror(in, w.wv), mirror(in, w.wo),
                 mirror(in, w.ffn_norm),       mirror(in, w.w1), mirror(in, w.w3), mirror(in, w.w2)};
    tape.mutable_value(out).data = in.value(transformer_block(in, in.input(tape.value(x)), wi, model)).data;
  }
  tape.set_backward(out, [&tape, x, w, out, &model, mirror] {
    Tape& in = tape.scratch();
    in.clear();
    LayerVars wi{mirror(in, w.attention_norm), mirror(in, w.wq), mirror(in, w.wk), mirror(in, w.wv), mirror(in, w.wo),
                 mirror(in, w.ffn_norm),       mirror(in, w.w1), mirror(in, w.w3), mirror(in, w.w2)};
    Var y = transformer_block(in, in.input(tape.value(x)), wi, model);  // x detached
    in.backward(y, tape.grad(out));
  });
  return out;
}

}  // namespace

TEST_CASE("blocked loss: gradients of x and w within 1e-6, blocks of 3 rows of 10", "[model][blocked_loss]") {
  Rng rng(5);
  Tensor x = random_tensor({2, 5, 8}, rng), w = random_tensor({10, 8}, rng);
  for (int rows : {1, 3, 4}) {
    INFO("block rows " << rows);
    LossBlocking blocking;
    blocking.block_rows = rows;
    require_grads_ok(
        [&](Tape& t, const std::vector<Var>& v) { return linear_cross_entropy(t, v[0], v[1], kTargets, blocking); },
        {&x, &w}, {"x", "w"});
  }
}

TEST_CASE("blocked loss: the same loss and gradients as linear + cross_entropy", "[model][blocked_loss]") {
  Rng rng(6);
  Tensor x = random_tensor({2, 5, 8}, rng), w = random_tensor({10, 8}, rng);
  LossBlocking blocking;
  blocking.block_rows = 3;  // 4 blocks, the last one short
  require_same_computation(
      [&](Tape& t, const std::vector<Var>& v) { return linear_cross_entropy(t, v[0], v[1], kTargets, blocking); },
      [&](Tape& t, const std::vector<Var>& v) { return cross_entropy(t, linear(t, v[0], v[1]), kTargets); }, {&x, &w});
}

TEST_CASE("blocked loss: one block is the plain ops themselves; evaluation-only refuses backward",
          "[model][blocked_loss]") {
  Rng rng(7);
  Tensor x = random_tensor({2, 5, 8}, rng), w = random_tensor({10, 8}, rng), gx(x.shape), gw(w.shape);
  Tape tape;
  LossBlocking blocking;
  blocking.block_rows = 10;
  linear_cross_entropy(tape, tape.param(x, gx), tape.param(w, gw), kTargets, blocking);
  REQUIRE(tape.node(tape.size() - 1).op == "cross_entropy");
  REQUIRE(tape.node(tape.size() - 2).op == "linear");
  tape.clear();
  blocking = LossBlocking{};
  blocking.block_rows = 3;
  blocking.with_grad = false;
  Var loss = linear_cross_entropy(tape, tape.param(x, gx), tape.param(w, gw), kTargets, blocking);
  REQUIRE(tape.node(loss.id).op == "linear_cross_entropy");
  REQUIRE_THROWS_WITH(tape.backward(loss), Catch::Contains("evaluation only"));
  REQUIRE_THROWS_WITH(linear_cross_entropy(tape, tape.param(x, gx), tape.param(w, gw), {1, 2}, blocking),
                      Catch::Contains("10 rows") && Catch::Contains("2 targets"));
  std::vector<int> bad = kTargets;
  bad[7] = 10;
  REQUIRE_THROWS_WITH(linear_cross_entropy(tape, tape.param(x, gx), tape.param(w, gw), bad, blocking),
                      Catch::Contains("target 10 at row 7"));
}

TEST_CASE("blocked loss: a block scaled by its own rows fails the check", "[model][blocked_loss][broken]") {
  Rng rng(8);
  Tensor x = random_tensor({2, 5, 8}, rng), w = random_tensor({10, 8}, rng);
  require_grads_broken(
      [&](Tape& t, const std::vector<Var>& v) { return blocked_loss_wrong_scale(t, v[0], v[1], kTargets, 3); },
      {&x, &w});
}

TEST_CASE("recomputed block: gradients of x and all 9 weights within 1e-6", "[model][recompute]") {
  Model m = make_model(tiny_config(1, true));
  randomize(m, 61);
  LayerWeights& l = m.weights.layers[0];
  Rng rng(62);
  Tensor x = random_tensor({2, 3, 8}, rng);
  const std::vector<Tensor*> inputs = {&x, l.attention_norm, l.wq, l.wk, l.wv, l.wo, l.ffn_norm, l.w1, l.w3, l.w2};
  auto recomputed = [&m](Tape& t, const std::vector<Var>& v) {
    return transformer_block_recomputed(t, v[0], LayerVars{v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]}, m);
  };
  require_grads_ok(recomputed, inputs, {"x", "attention_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w3", "w2"});
  // And the plain block's output and gradients, to the last bits: the two runs use different
  // buffers, and Eigen's vectorized kernels peel a different number of leading elements
  // depending on a buffer's address, which can change the order of a sum in its last bit.
  require_same_computation(
      recomputed,
      [&m](Tape& t, const std::vector<Var>& v) {
        return transformer_block(t, v[0], LayerVars{v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]}, m);
      },
      inputs, 1e-14);
}

TEST_CASE("recomputed block: re-running from a detached input fails the check", "[model][recompute][broken]") {
  Model m = make_model(tiny_config(1, true));
  randomize(m, 63);
  LayerWeights& l = m.weights.layers[0];
  Rng rng(64);
  Tensor x = random_tensor({1, 3, 8}, rng);
  require_grads_broken(
      [&m](Tape& t, const std::vector<Var>& v) {
        return block_recomputed_detached(t, v[0], LayerVars{v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]}, m);
      },
      {&x, l.attention_norm, l.wq, l.wk, l.wv, l.wo, l.ffn_norm, l.w1, l.w3, l.w2});
}

TEST_CASE("model_loss: recomputation and blocked loss, every parameter within 1e-6 (tied and untied)",
          "[model][recompute][blocked_loss]") {
  for (bool tied : {true, false}) {
    Model m = make_model(tiny_config(2, tied));
    INFO("tied " << tied);
    randomize(m, 70 + tied);
    ForwardOptions options;
    options.recompute = true;
    options.loss.block_rows = 4;
    auto saving = [&m, options](Tape& t, const std::vector<Var>& leaves) {
      return model_loss(t, m, leaves, kIds, kTargets, 2, 5, options);
    };
    require_grads_ok(saving, weight_pointers(m));
    // Recomputation alone changes nothing but the last bits (buffer addresses, see above); with the
    // loss in blocks, only rounding.
    ForwardOptions recompute_only;
    recompute_only.recompute = true;
    require_same_computation(
        [&m, recompute_only](Tape& t, const std::vector<Var>& leaves) {
          return model_loss(t, m, leaves, kIds, kTargets, 2, 5, recompute_only);
        },
        [&m](Tape& t, const std::vector<Var>& leaves) { return model_loss(t, m, leaves, kIds, kTargets, 2, 5); },
        weight_pointers(m), 1e-14);
    require_same_computation(
        saving,
        [&m](Tape& t, const std::vector<Var>& leaves) { return model_loss(t, m, leaves, kIds, kTargets, 2, 5); },
        weight_pointers(m));
  }
}
