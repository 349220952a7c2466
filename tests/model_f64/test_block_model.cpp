// Gradient checks (double build, 1e-6 relative) of a whole transformer block and of the whole
// loss of tiny models: GQA (NKV < NH), tied and untied output projection. Broken variants (a
// residual branch whose gradient is dropped, a tied table that forgets its second use) must fail.
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/matmul.h"
#include "engine/ops.h"
#include "engine/softmax.h"
#include "model/attention.h"
#include "model/block.h"
#include "model/model.h"
#include "model/rmsnorm.h"
#include "model/swiglu.h"
#include "tests/model_f64/model_helpers.h"

using namespace foundry;
using namespace foundry::model_test;

namespace {

ModelConfig tiny_config(int n_layers, int n_heads, int n_kv_heads, bool tied) {
  ModelConfig c;
  c.dim = 8;
  c.n_layers = n_layers;
  c.n_heads = n_heads;
  c.n_kv_heads = n_kv_heads;
  c.vocab_size = 10;
  c.hidden_dim = 8;
  c.max_seq_len = 6;
  c.norm_eps = 1e-5;
  c.rope_theta = 100;  // small, so every pair of the 4-wide heads turns noticeably
  c.tie_embeddings = tied;
  return c;
}

// Weights far from the 0.02 initialization, so every term of every gradient is large enough to
// be seen: matrices std 0.4, norm gains around 1.
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

std::vector<std::string> weight_names(Model& m) {
  std::vector<std::string> list;
  for (NamedTensor& p : m.parameters()) list.push_back(p.name);
  return list;
}

// The block with its feed-forward residual add broken: the gradient reaches the branch but not
// the skip path (dh is dropped), as if someone wrote out = ff(h) in the backward's eyes.
Var block_dropped_residual(Tape& tape, Var x, const LayerVars& w, const Model& model) {
  const ModelConfig& c = model.config;
  real eps = static_cast<real>(c.norm_eps);
  Var att = self_attention(tape, rmsnorm(tape, x, w.attention_norm, eps), w.wq, w.wk, w.wv, w.wo, model.rope_cos,
                           model.rope_sin, c.n_heads, c.n_kv_heads);
  Var h = add(tape, x, att);
  Var ff = feed_forward(tape, rmsnorm(tape, h, w.ffn_norm, eps), w.w1, w.w3, w.w2);
  Var out = tape.record("add_dropped_skip", {h.id, ff.id}, tape.value(h).shape);
  add_forward(tape.mutable_value(out).ptr(), tape.value(h).ptr(), tape.value(ff).ptr(), tape.value(h).size());
  tape.set_backward(out, [&tape, ff, out] {
    add_backward(tape.grad(ff).ptr(), nullptr, tape.grad(out).ptr(), tape.grad(out).size());
  });
  return out;
}

const std::vector<int> kIds = {1, 4, 4, 9, 0, 2, 7, 3, 3, 5};      // (B=2, T=5), repeated ids
const std::vector<int> kTargets = {4, 4, 9, 0, 2, 3, 3, 5, 1, 1};  // next tokens, repeated too

}  // namespace

TEST_CASE("block: gradients of x and all 9 weights within 1e-6 (GQA: 2 query heads share 1 kv head)",
          "[model][block]") {
  Model m = make_model(tiny_config(1, 2, 1, true));
  randomize(m, 21);
  LayerWeights& l = m.weights.layers[0];
  Rng rng(22);
  Tensor x = random_tensor({2, 3, 8}, rng);
  require_grads_ok(
      [&m](Tape& t, const std::vector<Var>& v) {
        LayerVars w{v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]};
        return transformer_block(t, v[0], w, m);
      },
      {&x, l.attention_norm, l.wq, l.wk, l.wv, l.wo, l.ffn_norm, l.w1, l.w3, l.w2},
      {"x", "attention_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w3", "w2"});
}

TEST_CASE("block: dropping the residual path from the backward fails the check", "[model][block][broken]") {
  Model m = make_model(tiny_config(1, 2, 1, true));
  randomize(m, 23);
  LayerWeights& l = m.weights.layers[0];
  Rng rng(24);
  Tensor x = random_tensor({1, 3, 8}, rng);
  require_grads_broken(
      [&m](Tape& t, const std::vector<Var>& v) {
        LayerVars w{v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]};
        return block_dropped_residual(t, v[0], w, m);
      },
      {&x, l.attention_norm, l.wq, l.wk, l.wv, l.wo, l.ffn_norm, l.w1, l.w3, l.w2});
}

TEST_CASE("model: whole loss, every parameter within 1e-6 (GQA, tied and untied)", "[model][model_grad]") {
  struct Case {
    int layers, heads, kv_heads;
    bool tied;
  };
  for (Case cs : {Case{2, 2, 1, true}, Case{1, 2, 1, false}, Case{1, 2, 2, false}}) {
    Model m = make_model(tiny_config(cs.layers, cs.heads, cs.kv_heads, cs.tied));
    INFO("layers " << cs.layers << ", heads " << cs.heads << ", kv heads " << cs.kv_heads << ", tied " << cs.tied
                   << ", " << m.num_parameters() << " parameters");
    randomize(m, 30 + cs.layers + cs.kv_heads);
    REQUIRE(m.num_parameters() < 1000);
    require_grads_ok(
        [&m](Tape& t, const std::vector<Var>& leaves) {
          return cross_entropy(t, model_logits(t, m, leaves, kIds, 2, 5), kTargets);
        },
        weight_pointers(m), weight_names(m));
  }
}

TEST_CASE("model: model_loss puts the same gradients into model.grads", "[model][model_grad]") {
  Model m = make_model(tiny_config(1, 2, 1, true));
  randomize(m, 40);
  std::vector<Tensor*> weights = weight_pointers(m);
  // reference: the checker's own path, gradients into separate tensors
  std::vector<Tensor> ref;
  for (Tensor* w : weights) ref.emplace_back(w->shape, 0);
  Tape t1;
  std::vector<Var> leaves;
  for (size_t k = 0; k < weights.size(); k++) leaves.push_back(t1.param(*weights[k], ref[k]));
  Var l1 = cross_entropy(t1, model_logits(t1, m, leaves, kIds, 2, 5), kTargets);
  t1.backward(l1);
  // model_loss: gradients into m.grads, twice on one cleared tape (buffers reused)
  Tape t2;
  std::vector<Tensor> first_step;
  for (int step = 0; step < 2; step++) {
    m.zero_grad();
    t2.clear();
    Var l2 = model_loss(t2, m, kIds, kTargets, 2, 5);
    REQUIRE(t2.value(l2)[0] == Approx(t1.value(l1)[0]).epsilon(1e-14));
    t2.backward(l2);
    std::vector<NamedTensor> params = m.parameters();
    for (size_t k = 0; k < params.size(); k++) {
      INFO(params[k].name << " step " << step);
      // subtle: not bit for bit against the other tape: Eigen's vectorized kernels peel a
      // different number of leading elements depending on a buffer's address, which changes
      // the order of a sum in its last bit. The same tape reused (same buffers) IS bit for bit.
      double scale = 0;
      for (real v : ref[k].data) scale = std::max(scale, std::fabs(double(v)));
      REQUIRE(max_abs_diff(*params[k].grad, ref[k]) <= 1e-12 * scale);
      if (step == 0) first_step.push_back(*params[k].grad);
      if (step == 1) REQUIRE(max_abs_diff(*params[k].grad, first_step[k]) == 0);
    }
  }
}

TEST_CASE("model: a tied output that does not add into the embedding's gradient fails", "[model][model_grad][broken]") {
  Model m = make_model(tiny_config(1, 2, 1, true));
  randomize(m, 50);
  // The same model run as "untied" whose output matrix is a constant copy of the table: the
  // values are those of the tied model (the copy follows every perturbation), but the output
  // projection's gradient never reaches tok_embeddings. The classic tying bug.
  ModelConfig untied_config = m.config;
  untied_config.tie_embeddings = false;
  Model untied = make_model(untied_config);
  Tensor copy;
  require_grads_broken(
      [&](Tape& t, const std::vector<Var>& leaves) {
        copy = *m.weights.tok_embeddings;
        std::vector<Var> l = leaves;
        l.push_back(t.input(copy, "output (a copy)"));
        return cross_entropy(t, model_logits(t, untied, l, kIds, 2, 5), kTargets);
      },
      weight_pointers(m));
}
