// LoRA through a whole model (model/lora.h), in double precision: the adapters' gradients against
// finite differences, the same gradients as the projection of the full weight gradient
// (da = s·bᵀ·dW, db = s·dW·aᵀ), the exact start (b = 0 gives the base's logits bit for bit), and
// merging (the merged model's logits equal the adapted model's).
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/matmul.h"
#include "model/lora.h"
#include "model/model.h"
#include "tests/model_f64/model_helpers.h"

using namespace foundry;
using namespace foundry::model_test;

namespace {

ModelConfig tiny() {
  ModelConfig c;
  c.dim = 8;
  c.n_layers = 2;
  c.n_heads = 2;
  c.n_kv_heads = 1;  // GQA: wk and wv are (4, 8), so a rank-2 adapter on them is (2, 8) and (4, 2)
  c.vocab_size = 11;
  c.hidden_dim = 12;
  c.max_seq_len = 5;
  c.rope_theta = 100;
  return c;
}

Model tiny_model(uint64_t seed) {
  Model m = make_model(tiny());
  Rng rng(seed);
  for (NamedTensor& p : m.parameters()) {
    const bool gain = p.name.find("norm") != std::string::npos;
    for (real& v : p.value->data) v = static_cast<real>(gain ? 1 + 0.3 * rng.normal() : 0.4 * rng.normal());
  }
  return m;
}

// Adapters on every target, with b random too (b = 0 would leave a without a gradient).
LoraModel all_targets(const Model& m, int rank, double alpha, uint64_t seed) {
  LoraConfig lc;
  lc.rank = rank;
  lc.alpha = alpha;
  lc.targets = lora_target_names();
  Rng rng(seed);
  LoraModel lora = make_lora(m, lc, rng);
  for (LoraAdapter& ad : lora.adapters)
    for (real& v : ad.b.data) v = static_cast<real>(0.5 * rng.normal());
  return lora;
}

const std::vector<int> kIds = {1, 4, 7, 2, 9, 10, 3, 0};  // B = 2, T = 4

double max_abs(const Tensor& t) {
  double m = 0;
  for (real v : t.data) m = std::max(m, std::fabs(double(v)));
  return m;
}

}  // namespace

TEST_CASE("LoRA through the model: the adapters' gradients match finite differences", "[gradcheck][lora]") {
  Model m = tiny_model(5);
  LoraModel lora = all_targets(m, 2, 3.0, 6);
  std::vector<Tensor*> inputs;
  std::vector<std::string> names;
  for (NamedTensor& p : lora.parameters()) {
    inputs.push_back(p.value);
    names.push_back(p.name);
  }
  // The checker makes its own leaves for the adapters; the base enters as inputs, as in training.
  auto forward = [&m, &lora](Tape& t, const std::vector<Var>& v) {
    std::vector<Var> base;
    for (size_t k = 0; k < m.values.size(); k++) base.push_back(t.input(m.values[k]));
    std::vector<LayerLora> layers(m.config.n_layers);
    const real s = static_cast<real>(lora.config.scale());
    size_t k = 0;
    for (const LoraAdapter& ad : lora.adapters) {
      LayerLora& l = layers[ad.layer];
      LoraVars& f = ad.target == "wq"   ? l.wq
                    : ad.target == "wk" ? l.wk
                    : ad.target == "wv" ? l.wv
                    : ad.target == "wo" ? l.wo
                    : ad.target == "w1" ? l.w1
                    : ad.target == "w3" ? l.w3
                                        : l.w2;
      f = LoraVars{v[k], v[k + 1], s};
      k += 2;
    }
    return model_logits(t, m, base, kIds, 2, 4, layers);
  };
  require_grads_ok(forward, inputs, names);
}

TEST_CASE("LoRA gradients are the full weight gradient projected: da = s·bᵀ·dW, db = s·dW·aᵀ", "[lora]") {
  Model m = tiny_model(7);
  LoraModel lora = all_targets(m, 3, 6.0, 8);
  const double s = lora.config.scale();
  Rng rng(9);
  Tensor probe = random_tensor({2, 4, m.config.vocab_size}, rng);
  // Adapted model: gradients of a and b.
  Tape t;
  Var y = lora_logits(t, m, lora, kIds, 2, 4);
  t.backward(y, probe);
  // Merged model: the full gradient dW of every weight, at w' = w + s·b·a.
  merge_lora(m, lora);
  m.zero_grad();
  Tape tm;
  Var ym = model_logits(tm, m, kIds, 2, 4);
  tm.backward(ym, probe);
  for (const LoraAdapter& ad : lora.adapters) {
    const Tensor& dW = m.gradients[m.index_of(ad.weight)];  // (N, K)
    const int N = dW.dim(0), K = dW.dim(1), R = ad.a.dim(0);
    Tensor da({R, K}), db({N, R});
    matmul_backward(nullptr, da.ptr(), dW.ptr(), ad.b.ptr(), nullptr, N, R, K);  // da = bᵀ · dW  (R, N)(N, K)
    linear_forward(db.ptr(), dW.ptr(), ad.a.ptr(), N, K, R);                     // db = dW · aᵀ  (N, K)(K, R)
    for (real& v : da.data) v *= s;
    for (real& v : db.data) v *= s;
    INFO(ad.weight);
    REQUIRE(max_abs(ad.grad_a) > 1e-6);
    CHECK(max_abs_diff(ad.grad_a, da) <= 1e-10 * max_abs(da));
    CHECK(max_abs_diff(ad.grad_b, db) <= 1e-10 * max_abs(db));
  }
}

TEST_CASE("LoRA starts at the base (b = 0) and merges into a model with the same logits", "[lora]") {
  Model m = tiny_model(11);
  LoraConfig lc;
  lc.rank = 2;
  Rng rng(12);
  LoraModel lora = make_lora(m, lc, rng);
  Tape base_tape, lora_tape;
  Var yb = model_logits(base_tape, m, kIds, 2, 4);
  Var yl = lora_logits(lora_tape, m, lora, kIds, 2, 4);
  CHECK(max_abs_diff(base_tape.value(yb), lora_tape.value(yl)) == 0.0);  // b = 0: exactly the base
  // After "training": b random. Merging reorders the same sums, w·x + s·b·(a·x) against
  // (w + s·b·a)·x, so in double precision they agree to rounding, about 1e-16 relative per
  // operation over a few dozen operations; 1e-12 of the largest logit leaves a wide margin and
  // still catches any real error (a missing scale or transpose is of order 1).
  for (LoraAdapter& ad : lora.adapters)
    for (real& v : ad.b.data) v = static_cast<real>(0.5 * rng.normal());
  Tape adapted;
  Var ya = lora_logits(adapted, m, lora, kIds, 2, 4);
  const Tensor logits_adapted = adapted.value(ya);
  CHECK(max_abs_diff(logits_adapted, base_tape.value(yb)) > 1e-3);  // the adapters do change the model
  merge_lora(m, lora);
  Tape merged;
  Var ym = model_logits(merged, m, kIds, 2, 4);
  CHECK(max_abs_diff(merged.value(ym), logits_adapted) <= 1e-12 * max_abs(logits_adapted));
}
