// Quantized models (model/quantize.h): the file round trip, the loader's refusals, and decoding
// through the blocks against the float model of the same (dequantized) weights.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/file_io.h"
#include "engine/rng.h"
#include "infer/kv_cache.h"
#include "infer/sampling.h"
#include "model/model_io.h"
#include "model/quantize.h"
#include "model/safetensors.h"
#include "tests/common/test_helpers.h"

using namespace foundry;

namespace {

// A model whose every matrix has whole 32-value rows except w2 (hidden 48: rows of 48 values).
ModelConfig qconfig(bool tied) {
  ModelConfig c;
  c.dim = 64;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 40;
  c.hidden_dim = 96;
  c.max_seq_len = 32;
  c.tie_embeddings = tied;
  return c;
}

Model random_model(const ModelConfig& c, uint64_t seed) {
  Model m = make_model(c);
  Rng rng(seed);
  init_weights(m, rng);
  for (NamedTensor& p : m.parameters()) {
    if (p.value->rank() == 2) {
      for (real& v : p.value->data) v *= 5;  // logits of order 1, so greedy choices are not ties
    }
  }
  return m;
}

// A float model holding exactly the weights `q` stands for.
Model dequantized_twin(const Model& q) {
  Model f = make_model(q.config);
  for (size_t k = 0; k < f.values.size(); ++k) f.values[k] = q.values[k];
  return f;
}

}  // namespace

TEST_CASE("quantize_model: which tensors, and the values become what the blocks stand for", "[quantize]") {
  ModelConfig c = qconfig(false);
  c.hidden_dim = 80;  // w2's rows (80 values) are not whole blocks: it stays float
  Model m = random_model(c, 1);
  const Tensor wq_before = m.values[m.index_of("layers.0.attention.wq.weight")];
  const std::vector<std::string> kept = quantize_model(m, QuantType::q8_0);
  for (const std::string& name : kept) {
    INFO(name);
    const bool gain = name.find("norm") != std::string::npos;
    CHECK((gain || name.find("w2") != std::string::npos));
  }
  CHECK(m.quantized_of(m.weights.layers[0].w2) == nullptr);
  CHECK(m.quantized_of(m.weights.norm) == nullptr);
  const QuantMatrix* q = m.quantized_of(m.weights.layers[0].wq);
  REQUIRE(q != nullptr);
  CHECK(m.quantized_of(m.weights.tok_embeddings) != nullptr);
  // The values now equal the dequantized blocks, and moved by at most half a step.
  std::vector<float> deq(wq_before.data.size());
  dequantize_matrix(*q, deq.data());
  const Tensor& wq = *m.weights.layers[0].wq;
  for (size_t i = 0; i < deq.size(); ++i) CHECK(wq.data[i] == deq[i]);
  CHECK(weight_bytes(m) < 2 * m.num_parameters());  // under half of float32, though w2 stays float
  CHECK_THROWS_WITH(quantize_model(m, QuantType::q4_0), Catch::Contains("already quantized"));
}

TEST_CASE("a quantized model directory round-trips block for block", "[quantize]") {
  for (QuantType type : {QuantType::q8_0, QuantType::q4_0}) {
    for (bool tied : {true, false}) {
      Model m = random_model(qconfig(tied), 2);
      quantize_model(m, type);
      const std::string dir = test::fresh_dir(std::string("test_quantized_model/rt_") + quant_type_name(type));
      save_model(m, dir);
      Model back = load_model(dir);
      REQUIRE(back.quantized.size() == m.quantized.size());
      for (size_t k = 0; k < m.quantized.size(); ++k) {
        INFO(m.entries[k].name);
        CHECK(back.quantized[k].rows == m.quantized[k].rows);
        CHECK(back.quantized[k].blocks == m.quantized[k].blocks);
        CHECK(back.values[k].data == m.values[k].data);
      }
      // The file says what it holds.
      SafetensorsFile f = load_safetensors(dir + "/model.safetensors");
      CHECK(f.metadata.at("quantization") == quant_type_name(type));
      const ByteTensor& wq = f.bytes.at("layers.0.attention.wq.weight");
      CHECK(wq.shape == Shape{64, static_cast<int>(2 * quant_block_bytes(type))});
      CHECK(f.tensors.count("layers.0.attention_norm.weight") == 1);
    }
  }
}

TEST_CASE("the loader refuses bad quantized files with a clear error", "[quantize]") {
  Model m = random_model(qconfig(true), 3);
  quantize_model(m, QuantType::q8_0);
  const std::string dir = test::fresh_dir("test_quantized_model/bad");
  save_model(m, dir);
  const std::string path = dir + "/model.safetensors";
  SafetensorsFile good = load_safetensors(path);

  // Rewrites the file from `f` (F32 and U8 tensors, metadata) and expects load_model to fail
  // with a message containing `what`.
  auto rewrite = [&](const SafetensorsFile& f) {
    std::vector<std::pair<std::string, const Tensor*>> floats;
    for (auto& [name, t] : f.tensors) floats.push_back({name, &t});
    std::vector<std::pair<std::string, const ByteTensor*>> bytes;
    for (auto& [name, t] : f.bytes) bytes.push_back({name, &t});
    save_safetensors(path, floats, f.metadata, bytes);
  };
  auto expect_refusal = [&](const SafetensorsFile& f, const std::string& what) {
    rewrite(f);
    CHECK_THROWS_WITH(load_model(dir), Catch::Contains(what));
  };
  {
    SafetensorsFile f = good;
    f.metadata.erase("quantization");
    expect_refusal(f, "no \"quantization\" entry");
  }
  {
    SafetensorsFile f = good;
    f.metadata["quantization"] = "q5_1";
    expect_refusal(f, "unknown quantization type 'q5_1'");
  }
  {
    SafetensorsFile f = good;
    f.metadata["quantization"] = "q4_0";  // q8_0 bytes read as q4_0: the row length is wrong
    expect_refusal(f, "U8 shape (40, 68), expected (40, 36)");
  }
  {
    SafetensorsFile f = good;
    f.bytes.at("layers.1.feed_forward.w1.weight").shape = {96 * 2, 34};
    expect_refusal(f, "U8 shape (192, 34), expected (96, 68)");
  }
  {
    SafetensorsFile f = good;
    ByteTensor& t = f.bytes.at("layers.0.attention.wk.weight");
    t.data[34] = 0x00;
    t.data[35] = 0x7c;  // block 1's scale: fp16 infinity
    expect_refusal(f, "block 1 has scale bits 0x7c00");
  }
  {
    SafetensorsFile f = good;
    ByteTensor gain{{64, 1}, std::vector<uint8_t>(64, 0)};
    f.tensors.erase("norm.weight");
    f.bytes["norm.weight"] = gain;
    expect_refusal(f, "only matrices with rows of whole 32-value blocks are quantized");
  }
  // The same tensors written back unchanged load again: the refusals came from the damage alone.
  rewrite(good);
  CHECK_NOTHROW(load_model(dir));
}

TEST_CASE("decoding a quantized model follows its float twin closely", "[quantize][kv_cache]") {
  for (QuantType type : {QuantType::q8_0, QuantType::q4_0}) {
    for (bool tied : {true, false}) {
      Model q = random_model(qconfig(tied), 7);
      quantize_model(q, type);
      Model f = dequantized_twin(q);
      DecodeState sq = make_decode_state(q.config), sf = make_decode_state(f.config);
      const int V = q.config.vocab_size;
      double worst = 0, scale = 0;
      int token = 1;
      for (int pos = 0; pos < 20; ++pos) {
        const real* lq = decode_step(sq, q, token);
        const real* lf = decode_step(sf, f, token);
        for (int v = 0; v < V; ++v) {
          worst = std::max(worst, std::fabs(double(lq[v]) - lf[v]));
          scale = std::max(scale, std::fabs(double(lf[v])));
        }
        token = sample_greedy(lf, V);  // both follow the float model's tokens
      }
      INFO(quant_type_name(type) << (tied ? " tied" : " untied") << ": worst logit difference " << worst
                                 << " of logits up to " << scale);
      // Only the activations' 8-bit rounding separates them.
      CHECK(worst < 0.05 * scale);
      CHECK(worst > 0);  // the blocks, not the floats, were used
    }
  }
}
