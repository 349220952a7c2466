// Inputs that once crashed, hung or misbehaved (found by fuzzing and by hand-made hostile files),
// kept so they stay fixed: llama2.c checkpoints and tokenizers, generation from broken weights,
// a prompt far too long for the context.
#include <catch2/catch.hpp>

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "engine/rng.h"
#include "infer/generate.h"
#include "model/llama2c.h"
#include "model/model_io.h"
#include "tokenizer/sentencepiece.h"

using namespace foundry;

namespace {

const std::string kDir = std::string(FOUNDRY_SOURCE_DIR) + "/tests/fixtures/llama2c";

std::string scratch(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::path(FOUNDRY_BINARY_DIR) / "test_scratch" / "infer_regressions";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

std::string write_bytes(const std::string& name, const std::string& bytes) {
  const std::string path = scratch(name);
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::string llama2c_header(std::initializer_list<int32_t> fields, size_t floats_after) {
  std::string bytes;
  for (int32_t v : fields) bytes.append(reinterpret_cast<const char*>(&v), 4);
  bytes.append(4 * floats_after, '\0');
  return bytes;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

Model tiny_model(int vocab_size) {
  ModelConfig c;
  c.dim = 16, c.n_layers = 1, c.n_heads = 2, c.n_kv_heads = 2, c.vocab_size = vocab_size, c.hidden_dim = 24;
  c.max_seq_len = 8;
  Model m = make_model(c);
  Rng rng(7);
  init_weights(m, rng);
  return m;
}

}  // namespace

TEST_CASE("regression: a 15-byte tokenizer.bin promising a 2 GB piece is refused without allocating it",
          "[regression][llama2c]") {
  // max_token_length, then piece 0: score 0, length 0x7fffffff, and 3 bytes of it.
  std::string bytes(4, '\0');
  bytes.append(4, '\0');
  const int32_t length = INT32_MAX;
  bytes.append(reinterpret_cast<const char*>(&length), 4);
  bytes.append("abc");
  REQUIRE(bytes.size() == 15);
  const std::string msg = message_of([&] { parse_llama2c_tokenizer(bytes, "huge.bin"); });
  CHECK(msg.find("huge.bin") != std::string::npos);
  CHECK(msg.find("piece 0 has length 2147483647 but only 3 bytes are left") != std::string::npos);
}

TEST_CASE("regression: a llama2.c header with vocab_size INT32_MIN is refused (no negation overflow)",
          "[regression][llama2c]") {
  const std::string path = write_bytes("int_min.bin", llama2c_header({16, 32, 1, 2, 2, INT32_MIN, 8}, 0));
  const std::string msg = message_of([&] { load_llama2c_checkpoint(path); });
  CHECK(msg.find("vocab_size = -2147483648") != std::string::npos);
}

TEST_CASE("regression: a llama2.c header whose size formula would overflow 64 bits is refused before allocating",
          "[regression][llama2c]") {
  // 28 header bytes and 20 floats (108 bytes), but the header claims 2^30-wide layers, 2^30 of
  // them: L * C * C alone is 2^90 floats, which wrapped around in a size_t. The field limits
  // refuse such a header before any count is made.
  const int32_t big = 1 << 30;
  const std::string path = write_bytes("overflow.bin", llama2c_header({big, big, big, 1, 1, 32, big}, 20));
  REQUIRE(std::filesystem::file_size(path) == 108);
  const std::string msg = message_of([&] { load_llama2c_checkpoint(path); });
  CHECK(msg.find("overflow.bin: the header describes an invalid model") != std::string::npos);
  CHECK(msg.find("dim = 1073741824") != std::string::npos);
}

TEST_CASE("regression: generation from NaN weights is an error, not NUL bytes and success", "[regression][generate]") {
  Model m = tiny_model(20);
  Sampler greedy({0.0, 0, 1.0});
  SECTION("the final norm") { m.weights.norm->data[3] = NAN; }
  SECTION("the embedding of the prompt's token") {
    for (int k = 0; k < m.config.dim; k++) m.weights.tok_embeddings->data[4 * m.config.dim + k] = NAN;
  }
  SECTION("infinity in the classifier") { m.weights.tok_embeddings->data[0] = INFINITY; }
  DecodeState state = make_decode_state(m.config);
  const std::string msg = message_of([&] { generate(m, state, greedy, {3, 4}, 4, {}); });
  CHECK(msg.find("is not finite") != std::string::npos);
}

TEST_CASE("regression: a prompt far longer than the context is refused before it is encoded",
          "[regression][generate]") {
  auto tok = load_llama2c_tokenizer(kDir + "/tok512.bin");
  const size_t longest = longest_token_bytes(*tok);
  CHECK(longest > 1);
  CHECK(longest < 64);
  // 1 MB without a space: encoding it would be the slow part; the byte count alone settles it.
  const std::string prompt(1 << 20, 'x');
  const std::string msg = message_of([&] { prompt_ids(*tok, prompt, 256); });
  CHECK(msg.find("the prompt is 1048576 bytes") != std::string::npos);
  CHECK(msg.find("max_seq_len) is 256") != std::string::npos);
  // At the boundary the ordinary token count still decides.
  CHECK_THROWS_WITH(prompt_ids(*tok, std::string(longest * 4, 'x'), 4), Catch::Contains("max_seq_len) is 4"));
}

TEST_CASE("regression: a model directory with NaN weights found by fuzzing is refused at generation",
          "[regression][generate]") {
  // fuzz_model_dir's input: config.json, model.safetensors and tokenizer.json, joined by a line.
  std::ifstream in(std::string(FOUNDRY_SOURCE_DIR) + "/tests/fixtures/regressions/model_dir_nan_weights.fuzz",
                   std::ios::binary);
  REQUIRE(in.good());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string sep = "\n#--next-file--#\n";
  const size_t a = bytes.find(sep), b = bytes.find(sep, a + sep.size());
  REQUIRE(b != std::string::npos);
  const std::string dir = scratch("nan_model");
  std::filesystem::create_directories(dir);
  write_bytes("nan_model/config.json", bytes.substr(0, a));
  write_bytes("nan_model/model.safetensors", bytes.substr(a + sep.size(), b - a - sep.size()));
  write_bytes("nan_model/tokenizer.json", bytes.substr(b + sep.size()));
  Model m = load_model(dir);
  auto tok = load_tokenizer(dir);
  DecodeState state = make_decode_state(m.config);
  Sampler greedy({0.0, 0, 1.0});
  const std::vector<int> ids = prompt_ids(*tok, "Once", m.config.max_seq_len);
  const std::string msg = message_of([&] { generate(m, state, greedy, ids, 2, stop_ids(*tok)); });
  CHECK(msg.find("is not finite") != std::string::npos);
}
