// The parameter table: one description of the model's tensors that everything else follows.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>

#include "model/llama2c.h"
#include "model/memory.h"
#include "model/model.h"
#include "model/model_io.h"
#include "model/params.h"
#include "train/adamw.h"

using namespace foundry;
using Catch::Matchers::Contains;

namespace {

ModelConfig small_config(bool tied) {
  ModelConfig c;
  c.dim = 16;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 37;
  c.hidden_dim = 40;
  c.max_seq_len = 8;
  c.tie_embeddings = tied;
  return c;
}

std::string scratch(const std::string& name) {
  const std::string dir = std::string(FOUNDRY_BINARY_DIR) + "/test_scratch/params/" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

}  // namespace

TEST_CASE("parameter table: the LLaMA rows expand to the file's names, shapes, init and decay", "[model][params]") {
  for (bool tied : {true, false}) {
    const ModelConfig c = small_config(tied);
    const std::vector<ParamEntry> e = param_entries(c);
    REQUIRE(e.size() == 1 + 9 * 2 + 1 + (tied ? 0 : 1));
    CHECK(e[0].name == "tok_embeddings.weight");
    CHECK(e[0].shape == Shape{37, 16});
    CHECK(e[10].name == "layers.1.attention_norm.weight");
    CHECK(e[10].layer == 1);
    CHECK(e[13].name == "layers.1.attention.wv.weight");
    CHECK(e[13].shape == Shape{8, 16});   // NKV·HS = 2·4
    CHECK(e[14].init == Init::residual);  // wo
    CHECK(e[18].init == Init::residual);  // w2
    CHECK(e[19].name == "norm.weight");
    CHECK(e[19].init == Init::ones);
    if (!tied) CHECK(e[20].name == "output.weight");
    // The decay flags are the usual rule: matrices decay, gains do not.
    for (const ParamEntry& p : e) CHECK(p.decay == (p.shape.size() == 2));
    // Everything that lists the tensors lists exactly these.
    Model m = make_model(c);
    std::vector<NamedTensor> params = m.parameters();
    const auto shapes = model_tensor_shapes(c);
    REQUIRE(params.size() == e.size());
    REQUIRE(shapes.size() == e.size());
    size_t total = 0;
    for (size_t k = 0; k < e.size(); k++) {
      CHECK(params[k].name == e[k].name);
      CHECK(params[k].value->shape == e[k].shape);
      CHECK(params[k].decay == e[k].decay);
      CHECK(shapes[k].first == e[k].name);
      CHECK(shapes[k].second == e[k].shape);
      total += params[k].value->size();
    }
    CHECK(parameter_count(c) == total);
    CHECK(count_parameters(c) == total);
    CHECK(m.num_parameters() == total);
    // The named views point at the same tensors.
    CHECK(m.weights.layers[1].wv == params[13].value);
    CHECK(m.grads.layers[1].wv == params[13].grad);
    CHECK((m.weights.output == nullptr) == tied);
  }
}

TEST_CASE("parameter table: a malformed table is refused", "[model][params]") {
  ParamTable dup = llama_param_table();
  dup.push_back(dup[0]);
  CHECK_THROWS_WITH(param_entries(small_config(true), dup), Contains("two rows are named 'tok_embeddings.weight'"));
  ParamTable split = llama_param_table();
  split.push_back({"late.weight", Scope::layer, {Dim::C}, Init::ones, false});
  CHECK_THROWS_WITH(param_entries(small_config(true), split), Contains("contiguous"));
}

// Adding a tensor to the model is one row of the table: allocation, parameters(), the count,
// initialization, weight decay, AdamW's moments, the tape leaves and the model files follow.
// (Using it in the forward pass is then a matter of reading it by name.)
TEST_CASE("parameter table: a new tensor is one row, and everything follows it", "[model][params]") {
  ParamTable table = llama_param_table();
  // A per-layer gain after the attention's wv row; per-layer rows must stay together.
  const auto after_wv =
      std::find_if(table.begin(), table.end(), [](const ParamSpec& s) { return s.name == "attention.wv.weight"; });
  table.insert(after_wv + 1, {"attention.extra.weight", Scope::layer, {Dim::KV}, Init::ones, false});
  const ModelConfig c = small_config(false);
  Model m = make_model(c, table);

  // Allocated, listed in file order, counted.
  std::vector<NamedTensor> params = m.parameters();
  REQUIRE(params.size() == 21 + 2);
  CHECK(params[5].name == "layers.0.attention.extra.weight");
  CHECK(params[5].value->shape == Shape{8});
  CHECK_FALSE(params[5].decay);
  CHECK(params[6].name == "layers.0.attention.wo.weight");
  CHECK(params[15].name == "layers.1.attention.extra.weight");
  CHECK(m.num_parameters() == parameter_count(c) + 2 * 8);
  CHECK(parameter_count(c, table) == m.num_parameters());

  // Initialized by its rule, in its place: the other tensors get the same numbers as without it.
  Rng rng(5), rng_plain(5);
  init_weights(m, rng);
  Model plain = make_model(c);
  init_weights(plain, rng_plain);
  for (real v : params[5].value->data) CHECK(v == 1.0f);
  CHECK(m.weights.layers[1].w2->data == plain.weights.layers[1].w2->data);
  CHECK(m.weights.output->data == plain.weights.output->data);

  // One tape leaf per tensor; the forward runs (it does not use the new tensor yet).
  Tape tape;
  const std::vector<Var> leaves = model_leaves(tape, m);
  CHECK(leaves.size() == params.size());
  const std::vector<int> ids = {1, 2, 3, 4}, targets = {2, 3, 4, 5};
  Var loss = model_loss(tape, m, ids, targets, 1, 4);
  tape.backward(loss);
  CHECK(std::isfinite(tape.value(loss)[0]));

  // AdamW keeps its moments under its name and leaves the unused, undecayed gain alone.
  AdamW opt = make_adamw(params);
  CHECK(opt.names[5] == "layers.0.attention.extra.weight");
  CHECK(opt.m[5].shape == Shape{8});
  const Tensor embedding_before = *m.weights.tok_embeddings;
  adamw_step(opt, params, 1e-2, AdamWSettings{0.9, 0.95, 1e-8, 0.1});
  for (real v : params[5].value->data) CHECK(v == 1.0f);
  CHECK(max_abs_diff(*m.weights.tok_embeddings, embedding_before) > 0);

  // Saved and loaded under its name; a loader with the plain table refuses the file.
  const std::string dir = scratch("extra");
  save_model(m, dir);
  Model back = load_model(dir, table);
  REQUIRE(back.parameters().size() == params.size());
  CHECK(back.values[5].data == params[5].value->data);
  CHECK_THROWS_WITH(load_model(dir), Contains("unexpected tensor 'layers.0.attention.extra.weight'"));
}

TEST_CASE("AdamW matches moments to parameters by name", "[model][params][adamw]") {
  Model m = make_model(small_config(true));
  std::vector<NamedTensor> params = m.parameters();
  AdamW opt = make_adamw(params);
  // wk and wv have the same shape: a list in another order must still be refused.
  std::swap(params[3], params[4]);
  CHECK_THROWS_WITH(adamw_step(opt, params, 1e-3, AdamWSettings{}),
                    Contains("parameter 3 is 'layers.0.attention.wv.weight'") &&
                        Contains("belong to 'layers.0.attention.wk.weight'"));
  CHECK(opt.t == 0);  // refused before anything changed
}

// The llama2.c size check is the table's parameter count plus the RoPE tables. A header whose
// sizes are absurd is refused by the config's limits before the count is even made (so it cannot
// overflow), and one within the limits is refused by the file size before anything is allocated.
TEST_CASE("llama2c: the header's sizes are limited before the size formula runs", "[model][params][llama2c]") {
  const std::string dir = scratch("llama2c");
  std::filesystem::create_directories(dir);
  auto write_header = [&](const std::string& name, std::vector<int32_t> h, size_t floats) {
    std::ofstream f(dir + "/" + name, std::ios::binary);
    f.write(reinterpret_cast<const char*>(h.data()), static_cast<std::streamsize>(h.size() * sizeof(int32_t)));
    const std::vector<float> zeros(floats, 0.0f);
    f.write(reinterpret_cast<const char*>(zeros.data()), static_cast<std::streamsize>(zeros.size() * sizeof(float)));
    return dir + "/" + name;
  };
  // dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size (negative: untied), seq_len
  CHECK_THROWS_WITH(
      load_llama2c_checkpoint(write_header("huge.bin", {1 << 30, 1 << 30, 1 << 30, 1, 1, -(1 << 30), 1 << 30}, 20)),
      Contains("huge.bin") && Contains("dim = 1073741824") && Contains("at most 65536"));
  const std::string big = write_header("big.bin", {65536, 262144, 1024, 2, 2, -1048576, 131072}, 20);
  CHECK_THROWS_WITH(load_llama2c_checkpoint(big), Contains("big.bin") && Contains("needs"));
  // A small header whose file holds exactly what it promises loads.
  ModelConfig c;
  c.dim = 8;
  c.hidden_dim = 16;
  c.n_layers = 1;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.vocab_size = 5;
  c.max_seq_len = 4;
  const size_t floats = parameter_count(c) + 2 * 4 * (4 / 2);
  Model m = load_llama2c_checkpoint(write_header("ok.bin", {8, 16, 1, 2, 1, 5, 4}, floats));
  CHECK(m.num_parameters() == parameter_count(c));
}
