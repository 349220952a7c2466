// The llama2.c stories260K checkpoint: greedy continuations and per-position logits against the
// independent numpy forward pass of tests/fixtures/llama2c/make_reference.py, for the KV-cache
// path, the taped training forward, and a model converted to our directory format and reloaded.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "infer/generate.h"
#include "infer/kv_cache.h"
#include "model/llama2c.h"
#include "model/model_io.h"
#include "tokenizer/sentencepiece.h"
#include "train/checkpoint.h"

using namespace foundry;

namespace {

const std::string kDir = std::string(FOUNDRY_SOURCE_DIR) + "/tests/fixtures/llama2c";

nlohmann::json reference() {
  std::ifstream f(kDir + "/reference.json");
  return nlohmann::json::parse(f);
}

// Largest |ours − reference| over the logits of the positions listed in the reference run.
double worst_logit_error(const nlohmann::json& run, const std::function<const real*(int)>& logits_at) {
  double worst = 0;
  for (auto& [pos, values] : run["logits"].items()) {
    const real* ours = logits_at(std::stoi(pos));
    for (size_t v = 0; v < values.size(); v++)
      worst = std::max(worst, std::fabs(double(ours[v]) - values[v].get<double>()));
  }
  return worst;
}

// Greedy generation through the KV cache, checked against one reference run.
void check_greedy_runs(const Model& model, const Tokenizer& tok) {
  nlohmann::json ref = reference();
  REQUIRE(ref["greedy_runs"].size() == 2);
  DecodeState state = make_decode_state(model.config);
  for (const auto& run : ref["greedy_runs"]) {
    std::string prompt = run["prompt"];
    std::vector<int> expected_prompt = run["prompt_ids"];
    std::vector<int> expected_new = run["new_ids"];
    INFO("prompt '" << prompt << "'");
    std::vector<int> ids = prompt_ids(tok, prompt, model.config.max_seq_len);
    std::vector<int> with_bos = expected_prompt;
    with_bos.insert(with_bos.begin(), 1);
    REQUIRE(ids == with_bos);
    Sampler greedy({0.0, 0, 1.0});
    GenerationResult r = generate(model, state, greedy, ids, (int)expected_new.size(), stop_ids(tok));
    CHECK(r.tokens == expected_new);

    // Every position's logits of the whole sequence, through the cache.
    std::vector<int> seq = ids;
    seq.insert(seq.end(), expected_new.begin(), expected_new.end());
    std::vector<std::vector<real>> per_position;
    reset(state);
    for (int id : seq) {
      const real* l = decode_step(state, model, id);
      per_position.emplace_back(l, l + model.config.vocab_size);
    }
    double worst = worst_logit_error(run, [&](int pos) { return per_position[pos].data(); });
    INFO("worst logit error against numpy: " << worst);
    CHECK(worst < 1e-4);
  }
}

}  // namespace

TEST_CASE("llama2c: the checkpoint header becomes our config", "[llama2c]") {
  Model m = load_llama2c_checkpoint(kDir + "/stories260K.bin");
  const ModelConfig& c = m.config;
  CHECK(c.dim == 64);
  CHECK(c.hidden_dim == 172);
  CHECK(c.n_layers == 5);
  CHECK(c.n_heads == 8);
  CHECK(c.n_kv_heads == 4);
  CHECK(c.vocab_size == 512);
  CHECK(c.max_seq_len == 512);
  CHECK(c.tie_embeddings);
  CHECK(c.norm_eps == 1e-5);
  CHECK(c.rope_theta == 10000);
  CHECK(m.weights.output == nullptr);
}

TEST_CASE("llama2c: KV-cache greedy generation and logits match the numpy reference", "[llama2c]") {
  Model m = load_llama2c_checkpoint(kDir + "/stories260K.bin");
  auto tok = load_llama2c_tokenizer(kDir + "/tok512.bin");
  check_greedy_runs(m, *tok);
}

TEST_CASE("llama2c: the taped training forward matches the numpy reference too", "[llama2c]") {
  Model m = load_llama2c_checkpoint(kDir + "/stories260K.bin");
  nlohmann::json ref = reference();
  const auto& run = ref["greedy_runs"][1];
  std::vector<int> seq = {1};
  for (int id : run["prompt_ids"]) seq.push_back(id);
  for (int id : run["new_ids"]) seq.push_back(id);
  Tape tape;
  Var logits = model_logits(tape, m, seq, 1, (int)seq.size());
  const Tensor& L = tape.value(logits);
  double worst = worst_logit_error(run, [&](int pos) { return L.ptr() + (size_t)pos * m.config.vocab_size; });
  INFO("worst logit error against numpy: " << worst);
  CHECK(worst < 1e-4);
}

TEST_CASE("llama2c: converted to a model directory, reloaded, it still generates the reference", "[llama2c]") {
  Model m = load_llama2c_checkpoint(kDir + "/stories260K.bin");
  auto tok = load_llama2c_tokenizer(kDir + "/tok512.bin");
  std::string dir = std::string(FOUNDRY_BINARY_DIR) + "/test_tmp_llama2c_model";
  std::filesystem::remove_all(dir);
  save_model_with_tokenizer(m, dir, tok.get());
  CHECK(std::filesystem::exists(dir + "/tokenizer.bin"));
  Model loaded = load_model(dir);
  auto loaded_tok = load_tokenizer(dir);
  CHECK(loaded_tok->kind() == "llama2c");
  CHECK(loaded.config.tie_embeddings);
  check_greedy_runs(loaded, *loaded_tok);
  std::filesystem::remove_all(dir);
}

TEST_CASE("llama2c: damaged checkpoints are rejected with the file and the reason", "[llama2c]") {
  std::ifstream f(kDir + "/stories260K.bin", std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  std::string bytes = ss.str();
  std::string dir = std::string(FOUNDRY_BINARY_DIR) + "/test_tmp_llama2c_bad";
  std::filesystem::create_directories(dir);
  auto message_of = [&](const std::string& b) {
    std::string path = dir + "/bad.bin";
    std::ofstream(path, std::ios::binary).write(b.data(), (std::streamsize)b.size());
    try {
      load_llama2c_checkpoint(path);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message_of(bytes.substr(0, 10)).find("too short") != std::string::npos);
  std::string truncated = message_of(bytes.substr(0, bytes.size() - 4));
  CHECK(truncated.find("bad.bin") != std::string::npos);
  CHECK(truncated.find("needs") != std::string::npos);
  // A negative vocab_size promises an untied classifier after the tables: 512·64 floats missing.
  std::string untied = bytes;
  int32_t minus = -512;
  std::memcpy(&untied[20], &minus, 4);
  CHECK(message_of(untied).find("needs") != std::string::npos);
  // With those floats appended it loads, untied, and its output matrix is what we appended.
  std::string with_cls = untied + std::string(512 * 64 * 4, '\0');
  std::string path = dir + "/untied.bin";
  std::ofstream(path, std::ios::binary).write(with_cls.data(), (std::streamsize)with_cls.size());
  Model u = load_llama2c_checkpoint(path);
  CHECK_FALSE(u.config.tie_embeddings);
  CHECK(u.weights.output->size() == 512 * 64);
  // n_heads = 7 does not divide dim 64.
  std::string bad_heads = bytes;
  int32_t seven = 7;
  std::memcpy(&bad_heads[12], &seven, 4);
  CHECK(message_of(bad_heads).find("invalid model") != std::string::npos);
  std::string zero = bytes;
  std::memset(&zero[0], 0, 4);
  CHECK(message_of(zero).find("dim = 0") != std::string::npos);
  CHECK_THROWS_AS(load_llama2c_checkpoint(dir + "/missing.bin"), std::runtime_error);
  std::filesystem::remove_all(dir);
}
