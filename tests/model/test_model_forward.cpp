// The full model in the float build: parameter names, shapes and counts, the seeded
// initialization, the loss at initialization, tape reuse across steps, the memory estimate
// against the tape's real buffers, and the errors a caller can provoke.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>

#include "engine/softmax.h"
#include "model/memory.h"
#include "model/model.h"

using namespace foundry;

namespace {

ModelConfig small_config(int n_layers, int n_heads, int n_kv_heads, bool tied) {
  ModelConfig c;
  c.dim = 16;
  c.n_layers = n_layers;
  c.n_heads = n_heads;
  c.n_kv_heads = n_kv_heads;
  c.vocab_size = 37;
  c.hidden_dim = 24;
  c.max_seq_len = 12;
  c.tie_embeddings = tied;
  return c;
}

std::vector<int> token_ids(size_t n, int V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int> ids(n);
  for (int& id : ids) id = static_cast<int>(rng.below(V));
  return ids;
}

}  // namespace

TEST_CASE("model: parameters() lists the LLaMA names and shapes in file order", "[model]") {
  for (bool tied : {true, false}) {
    ModelConfig c = small_config(2, 4, 2, tied);
    Model m = make_model(c);
    std::vector<NamedTensor> p = m.parameters();
    REQUIRE(p.size() == (tied ? 20u : 21u));
    REQUIRE(p[0].name == "tok_embeddings.weight");
    REQUIRE(p[0].value->shape == Shape{37, 16});
    const char* layer_names[] = {"attention_norm.weight",  "attention.wq.weight",    "attention.wk.weight",
                                 "attention.wv.weight",    "attention.wo.weight",    "ffn_norm.weight",
                                 "feed_forward.w1.weight", "feed_forward.w3.weight", "feed_forward.w2.weight"};
    Shape layer_shapes[] = {{16}, {16, 16}, {8, 16}, {8, 16}, {16, 16}, {16}, {24, 16}, {24, 16}, {16, 24}};
    for (int l = 0; l < 2; l++)
      for (int k = 0; k < 9; k++) {
        const NamedTensor& t = p[1 + 9 * l + k];
        REQUIRE(t.name == "layers." + std::to_string(l) + "." + layer_names[k]);
        REQUIRE(t.value->shape == layer_shapes[k]);
        REQUIRE(t.grad->shape == layer_shapes[k]);
        REQUIRE(t.grad != t.value);
      }
    REQUIRE(p[19].name == "norm.weight");
    if (!tied) {
      REQUIRE(p[20].name == "output.weight");
      REQUIRE(p[20].value->shape == Shape{37, 16});
    }
    REQUIRE(m.num_parameters() == count_parameters(c));
  }
}

TEST_CASE("model: parameter count of the reference configs by formula", "[model]") {
  ModelConfig tiny;  // the defaults are the tiny reference config
  // embedding 4096·128 + 4 layers · (2·128 + 4·128² + 3·352·128) + 128
  REQUIRE(count_parameters(tiny) == 524288u + 4u * (256u + 65536u + 135168u) + 128u);
  REQUIRE(make_model(tiny).num_parameters() == count_parameters(tiny));
}

TEST_CASE("model: initialization is seeded and follows the documented scheme", "[model]") {
  ModelConfig c = small_config(2, 4, 2, false);
  c.dim = 64;
  c.hidden_dim = 128;
  Model a = make_model(c), b = make_model(c);
  Rng ra(5), rb(5);
  init_weights(a, ra);
  init_weights(b, rb);
  std::vector<NamedTensor> pa = a.parameters(), pb = b.parameters();
  auto std_of = [](const Tensor& t) {
    double s = 0;
    for (real v : t.data) s += double(v) * v;
    return std::sqrt(s / t.size());
  };
  double residual = 0.02 / std::sqrt(2.0 * c.n_layers);
  for (size_t k = 0; k < pa.size(); k++) {
    INFO(pa[k].name);
    REQUIRE(max_abs_diff(*pa[k].value, *pb[k].value) == 0);  // same seed, same numbers
    const std::string& name = pa[k].name;
    if (name.find("norm") != std::string::npos) {
      for (real v : pa[k].value->data) REQUIRE(v == 1);
    } else if (name.find(".wo.") != std::string::npos || name.find(".w2.") != std::string::npos) {
      REQUIRE(std_of(*pa[k].value) == Approx(residual).epsilon(0.05));
    } else {
      REQUIRE(std_of(*pa[k].value) == Approx(0.02).epsilon(0.05));
    }
  }
  Rng other(6);
  init_weights(b, other);
  REQUIRE(max_abs_diff(*a.weights.layers[1].w3, *b.weights.layers[1].w3) > 0);  // another seed differs
}

TEST_CASE("model: loss at initialization is close to log(V)", "[model]") {
  ModelConfig c = small_config(2, 4, 1, true);
  Model m = make_model(c);
  Rng rng(7);
  init_weights(m, rng);
  int B = 3, T = 10;
  Tape tape;
  Var loss = model_loss(tape, m, token_ids(B * T, c.vocab_size, 1), token_ids(B * T, c.vocab_size, 2), B, T);
  // small weights give nearly uniform predictions: cross-entropy ≈ log V
  REQUIRE(tape.value(loss)[0] == Approx(std::log(37.0)).margin(0.05));
  REQUIRE(tape.value(model_logits(tape, m, token_ids(B * T, c.vocab_size, 1), B, T)).shape == Shape{B, T, 37});
}

TEST_CASE("model: a reused tape gives identical steps without reallocating its buffers", "[model]") {
  ModelConfig c = small_config(2, 4, 2, true);
  Model m = make_model(c);
  Rng rng(8);
  init_weights(m, rng);
  std::vector<int> ids = token_ids(2 * 8, c.vocab_size, 3), targets = token_ids(2 * 8, c.vocab_size, 4);
  Tape tape;
  std::vector<const real*> buffers;
  double first_loss = 0;
  Tensor first_grad;
  for (int step = 0; step < 3; step++) {
    tape.clear();
    m.zero_grad();
    Var loss = model_loss(tape, m, ids, targets, 2, 8);
    tape.backward(loss);
    std::vector<const real*> now;
    for (int i = 0; i < tape.size(); i++) {
      now.push_back(tape.node(i).value->ptr());
      for (const Tensor& s : tape.node(i).saved) now.push_back(s.ptr());
    }
    if (step == 0) {
      buffers = now;
      first_loss = tape.value(loss)[0];
      first_grad = *m.grads.layers[1].wk;
    } else {
      REQUIRE(now == buffers);  // every output and saved buffer is the one of step 0
      REQUIRE(tape.value(loss)[0] == first_loss);
      REQUIRE(max_abs_diff(*m.grads.layers[1].wk, first_grad) == 0);
    }
  }
}

TEST_CASE("model: a tied table gets gradient from both uses, an untied one only from the lookup", "[model]") {
  for (bool tied : {true, false}) {
    ModelConfig c = small_config(1, 2, 1, tied);
    Model m = make_model(c);
    Rng rng(9);
    init_weights(m, rng);
    std::vector<int> ids = {1, 2, 3, 1}, targets = {2, 3, 1, 2};  // token 5 never appears
    Tape tape;
    tape.backward(model_loss(tape, m, ids, targets, 1, 4));
    double row5 = 0, row1 = 0;
    for (int i = 0; i < c.dim; i++) {
      row5 += std::fabs(m.grads.tok_embeddings->at({5, i}));
      row1 += std::fabs(m.grads.tok_embeddings->at({1, i}));
    }
    INFO("tied " << tied);
    REQUIRE(row1 > 0);
    if (tied) {
      REQUIRE(row5 > 0);  // the output projection pushed token 5's logit down
    } else {
      REQUIRE(row5 == 0);
      double out5 = 0;
      for (int i = 0; i < c.dim; i++) out5 += std::fabs(m.grads.output->at({5, i}));
      REQUIRE(out5 > 0);
    }
  }
}

TEST_CASE("memory: the activation estimate equals what the tape really stores", "[model][memory]") {
  struct Case {
    int layers, heads, kv_heads, B, T;
    bool tied;
  };
  for (Case cs : {Case{1, 4, 4, 1, 1, true}, Case{2, 4, 2, 3, 7, true}, Case{2, 4, 1, 2, 12, false},
                  Case{3, 2, 2, 4, 5, false}}) {
    ModelConfig c = small_config(cs.layers, cs.heads, cs.kv_heads, cs.tied);
    Model m = make_model(c);
    Tape tape;
    std::vector<int> ids = token_ids((size_t)cs.B * cs.T, c.vocab_size, 11);
    tape.backward(model_loss(tape, m, ids, ids, cs.B, cs.T));
    TrainingMemory est = estimate_training_memory(c, cs.B, cs.T);
    INFO("layers " << cs.layers << " heads " << cs.heads << "/" << cs.kv_heads << " B " << cs.B << " T " << cs.T);
    REQUIRE(est.activation_bytes == tape_numbers(tape) * sizeof(real));
    REQUIRE(est.parameters == m.num_parameters());
    REQUIRE(est.optimizer_bytes == 2 * est.weight_bytes);
    REQUIRE(est.total_bytes() == 4 * est.weight_bytes + est.activation_bytes);
  }
}

TEST_CASE("model: rejects bad batches with a clear message", "[model]") {
  ModelConfig c = small_config(1, 2, 1, true);
  Model m = make_model(c);
  Tape tape;
  REQUIRE_THROWS_WITH(model_logits(tape, m, std::vector<int>(13 * 2, 0), 2, 13), Catch::Contains("max_seq_len = 12"));
  REQUIRE_THROWS_WITH(model_logits(tape, m, std::vector<int>(5, 0), 2, 3), Catch::Contains("5 token ids"));
  REQUIRE_THROWS_WITH(model_logits(tape, m, {0, 37}, 1, 2), Catch::Contains("token id 37"));
  REQUIRE_THROWS_WITH(model_loss(tape, m, {0, 1}, {0}, 1, 2), Catch::Contains("1 targets"));
  ModelConfig bad = c;
  bad.n_kv_heads = 3;
  REQUIRE_THROWS_WITH(make_model(bad), Catch::Contains("n_kv_heads"));
}

// `foundry model-info` end to end, when the foundry program has been built next to the tests
// (a full build always builds it).
TEST_CASE("model-info: prints the counts and the estimate of a training config", "[model][cli]") {
  std::string foundry = std::string(FOUNDRY_BINARY_DIR) + "/foundry";
  if (!std::ifstream(foundry)) {
    WARN("foundry not built in " << FOUNDRY_BINARY_DIR << "; skipping the command-line check");
    return;
  }
  auto run = [&](const std::string& args, int& status) {
    std::string command = foundry + " model-info " + args + " 2>&1";
    std::string out;
    FILE* pipe = popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
    status = pclose(pipe);
    return out;
  };
  int status = -1;
  std::string out = run("--config " + std::string(FOUNDRY_SOURCE_DIR) + "/configs/tiny.json", status);
  INFO(out);
  REQUIRE(status == 0);
  ModelConfig tiny;  // configs/tiny.json holds the reference tiny sizes
  REQUIRE(out.find(std::to_string(count_parameters(tiny))) != std::string::npos);
  REQUIRE(out.find("batch B = 12 (training.batch_size)") != std::string::npos);
  REQUIRE(out.find("layers.0.feed_forward.w2.weight") != std::string::npos);
  REQUIRE(out.find("attention probabilities") != std::string::npos);
  std::string bad = run("--config " + std::string(FOUNDRY_SOURCE_DIR) + "/configs/tiny.json --context 65", status);
  REQUIRE(status != 0);
  REQUIRE(bad.find("max_seq_len = 64") != std::string::npos);
}
