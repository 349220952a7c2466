// Model files: the safetensors reader and writer, atomic writes, and model directories.
// Every corruption the loader promises to reject is crafted here byte by byte, and each test
// checks that the message names the file and the tensor (or config field) at fault.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "common/file_io.h"
#include "engine/rng.h"
#include "model/model.h"
#include "model/model_io.h"
#include "model/safetensors.h"
#include "tests/common/test_helpers.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"

using namespace foundry;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// A fresh, empty scratch directory under the build tree for one test.
std::string scratch_dir(const std::string& name) { return test::fresh_dir("test_scratch/model_io/" + name); }

using test::read_bytes;

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string u64_le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; i++) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// A hand-assembled safetensors file: length, header text as given, data bytes.
std::string raw_file(const std::string& header, const std::string& data) {
  return u64_le(header.size()) + header + data;
}

// Splits a safetensors file into its header JSON and data section (trusting it: tests only).
std::pair<nlohmann::json, std::string> split_file(const std::string& bytes) {
  uint64_t n = 0;
  for (int i = 0; i < 8; i++) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  return {nlohmann::json::parse(bytes.substr(8, n)), bytes.substr(8 + n)};
}

// Rewrites a file's header through `edit`, keeping its data section byte for byte.
template <typename Edit>
void edit_header(const std::string& path, Edit edit) {
  auto [header, data] = split_file(read_bytes(path));
  edit(header);
  write_bytes(path, raw_file(header.dump(), data));
}

ModelConfig tiny_config(bool tied) {
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

Model tiny_model(bool tied, uint64_t seed = 7) {
  Model m = make_model(tiny_config(tied));
  Rng rng(seed);
  init_weights(m, rng);
  return m;
}

// Two tensors and metadata, saved to `path`: the base of the single-file corruption tests.
void save_two(const std::string& path) {
  Tensor a({2, 3}, std::vector<real>{1, 2, 3, 4, 5, 6});  // 24 bytes at [0, 24)
  Tensor b({4}, std::vector<real>{-1, 0.5, 0.25, 8});     // 16 bytes at [24, 40)
  save_safetensors(path, {{"a.weight", &a}, {"b.weight", &b}}, {{"format", "pt"}});
}

void write_config(const std::string& dir, const nlohmann::json& j) { write_bytes(dir + "/config.json", j.dump(2)); }
nlohmann::json read_config(const std::string& dir) { return nlohmann::json::parse(read_bytes(dir + "/config.json")); }

}  // namespace

// ---- safetensors: the format itself -------------------------------------------------------------

TEST_CASE("safetensors: round trip keeps names, shapes, values and metadata", "[model_io]") {
  const std::string path = scratch_dir("roundtrip") + "/t.safetensors";
  Rng rng(3);
  Tensor matrix({5, 7});
  for (real& v : matrix.data) v = static_cast<real>(rng.normal());
  Tensor scalar({}, std::vector<real>{3.5});  // shape (): one element
  Tensor empty({0, 4});                       // no elements at all
  Tensor extremes({4}, std::vector<real>{1e-38f, -3.4e38f, 0.0f, -0.0f});
  save_safetensors(path, {{"m", &matrix}, {"s", &scalar}, {"e", &empty}, {"x", &extremes}},
                   {{"format", "pt"}, {"note", "hello"}});

  SafetensorsFile f = load_safetensors(path);
  REQUIRE(f.tensors.size() == 4);
  REQUIRE(f.metadata == std::map<std::string, std::string>{{"format", "pt"}, {"note", "hello"}});
  for (const auto& [name, t] : std::vector<std::pair<std::string, const Tensor*>>{
           {"m", &matrix}, {"s", &scalar}, {"e", &empty}, {"x", &extremes}}) {
    const Tensor& got = f.tensors.at(name);
    REQUIRE(got.shape == t->shape);
    // Bit for bit, including the sign of -0.0 (memcmp must not see the null data of an empty tensor).
    REQUIRE(got.data.size() == t->data.size());
    if (!t->data.empty()) REQUIRE(std::memcmp(got.data.data(), t->data.data(), t->data.size() * sizeof(real)) == 0);
  }
  REQUIRE_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("safetensors: the bytes on disk follow the format", "[model_io]") {
  const std::string path = scratch_dir("layout") + "/t.safetensors";
  save_two(path);
  const std::string bytes = read_bytes(path);
  uint64_t n = 0;
  for (int i = 0; i < 8; i++) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  REQUIRE(bytes[8] == '{');
  REQUIRE((8 + n) % 8 == 0);  // the data section is 8-byte aligned (header padded with spaces)
  REQUIRE(bytes.size() == 8 + n + 40);
  auto [header, data] = split_file(bytes);
  REQUIRE(header["a.weight"]["dtype"] == "F32");
  REQUIRE(header["a.weight"]["shape"] == nlohmann::json::array({2, 3}));
  REQUIRE(header["a.weight"]["data_offsets"] == nlohmann::json::array({0, 24}));
  REQUIRE(header["b.weight"]["data_offsets"] == nlohmann::json::array({24, 40}));
  REQUIRE(header["__metadata__"]["format"] == "pt");
  // 1.0f is 0x3f800000: little-endian puts the low byte first.
  REQUIRE(data.substr(0, 4) == std::string("\x00\x00\x80\x3f", 4));
  // -1.0f is 0xbf800000, the first element of b.
  REQUIRE(data.substr(24, 4) == std::string("\x00\x00\x80\xbf", 4));
}

TEST_CASE("safetensors: saving rejects bad input and writes nothing", "[model_io]") {
  const std::string dir = scratch_dir("save_errors");
  Tensor a({2}, std::vector<real>{1, 2});
  REQUIRE_THROWS_WITH(save_safetensors(dir + "/dup.safetensors", {{"a", &a}, {"a", &a}}), Contains("'a' given twice"));
  REQUIRE_THROWS_WITH(save_safetensors(dir + "/meta.safetensors", {{"__metadata__", &a}}), Contains("__metadata__"));
  Tensor bad;
  bad.shape = {3};
  bad.data = {1, 2};
  REQUIRE_THROWS_WITH(save_safetensors(dir + "/bad.safetensors", {{"bad", &bad}}),
                      Contains("'bad'") && Contains("(3)"));
  REQUIRE(fs::is_empty(dir));
  REQUIRE_THROWS_AS(save_safetensors(dir + "/no/such/dir/x.safetensors", {{"a", &a}}), std::runtime_error);
}

TEST_CASE("safetensors: every kind of corrupt file is rejected, naming file and tensor", "[model_io]") {
  const std::string dir = scratch_dir("corrupt");
  const std::string path = dir + "/t.safetensors";
  save_two(path);
  REQUIRE_NOTHROW(load_safetensors(path));
  const std::string good = read_bytes(path);
  const std::string data = split_file(good).second;  // 40 bytes

  SECTION("missing file") { REQUIRE_THROWS_WITH(load_safetensors(dir + "/nope"), Contains(dir + "/nope")); }
  SECTION("shorter than the length field") {
    write_bytes(path, "abc");
    REQUIRE_THROWS_WITH(load_safetensors(path), Contains(path) && Contains("too short"));
  }
  SECTION("header length past the end of the file") {
    write_bytes(path, u64_le(1000) + "{}");
    REQUIRE_THROWS_WITH(load_safetensors(path), Contains(path) && Contains("header length 1000 runs past the end"));
  }
  SECTION("absurd header length") {
    write_bytes(path, u64_le(~0ull) + "{}");
    REQUIRE_THROWS_WITH(load_safetensors(path), Contains(path) && Contains("runs past the end"));
  }
  SECTION("header not JSON") {
    write_bytes(path, raw_file("{\"a.weight\": [oops", data));
    REQUIRE_THROWS_WITH(load_safetensors(path), Contains(path) && Contains("not valid JSON"));
    write_bytes(path, raw_file("PK\x03\x04 zip", data));
    REQUIRE_THROWS_WITH(load_safetensors(path), Contains(path) && Contains("not JSON"));
  }
  SECTION("wrong dtype") {
    edit_header(path, [](nlohmann::json& h) { h["b.weight"]["dtype"] = "F16"; });
    REQUIRE_THROWS_WITH(load_safetensors(path), Contains(path) && Contains("'b.weight'") && Contains("F16"));
  }
  SECTION("shape that does not match its byte range") {
    edit_header(path, [](nlohmann::json& h) { h["a.weight"]["shape"] = {3, 3}; });
    REQUIRE_THROWS_WITH(load_safetensors(path), Contains(path) && Contains("'a.weight'") && Contains("needs 36"));
  }
  SECTION("negative or non-integer shape") {
    edit_header(path, [](nlohmann::json& h) { h["a.weight"]["shape"] = {-2, -3}; });
    REQUIRE_THROWS_WITH(load_safetensors(path), Contains(path) && Contains("'a.weight'") && Contains("non-negative"));
    write_bytes(path, good);
    edit_header(path, [](nlohmann::json& h) { h["a.weight"]["shape"] = {2, 3.5}; });
    REQUIRE_THROWS_WITH(load_safetensors(path), Contains("'a.weight'"));
  }
  SECTION("shape so large the element count overflows") {
    edit_header(path, [](nlohmann::json& h) { h["a.weight"]["shape"] = {2147483647, 2147483647, 2147483647}; });
    REQUIRE_THROWS_WITH(load_safetensors(path), Contains(path) && Contains("'a.weight'") && Contains("too large"));
  }
  SECTION("data_offsets out of range") {
    edit_header(path, [](nlohmann::json& h) { h["b.weight"]["data_offsets"] = {40, 56}; });
    REQUIRE_THROWS_WITH(load_safetensors(path),
                        Contains(path) && Contains("'b.weight'") && Contains("run past the end of the data section"));
  }
  SECTION("data_offsets reversed or malformed") {
    edit_header(path, [](nlohmann::json& h) { h["b.weight"]["data_offsets"] = {40, 24}; });
    REQUIRE_THROWS_WITH(load_safetensors(path), Contains("'b.weight'") && Contains("end before they begin"));
    write_bytes(path, good);
    edit_header(path, [](nlohmann::json& h) { h["b.weight"]["data_offsets"] = {24}; });
    REQUIRE_THROWS_WITH(load_safetensors(path), Contains("'b.weight'") && Contains("data_offsets"));
  }
  SECTION("overlapping data_offsets") {
    // b claims [8, 24) inside a's [0, 24); a file of the right size so only the overlap is wrong.
    edit_header(path, [](nlohmann::json& h) { h["b.weight"]["data_offsets"] = {8, 24}; });
    REQUIRE_THROWS_WITH(load_safetensors(path),
                        Contains(path) && Contains("'a.weight'") && Contains("'b.weight'") && Contains("overlap"));
  }
  SECTION("a gap between tensors") {
    edit_header(path, [](nlohmann::json& h) { h["b.weight"]["data_offsets"] = {28, 44}; });
    write_bytes(path, read_bytes(path) + "1234");
    REQUIRE_THROWS_WITH(load_safetensors(path),
                        Contains(path) && Contains("belong to no tensor") && Contains("'b.weight'"));
  }
  SECTION("truncated file") {
    write_bytes(path, good.substr(0, good.size() - 10));
    REQUIRE_THROWS_WITH(load_safetensors(path), Contains(path) && Contains("'b.weight'") && Contains("truncated"));
  }
  SECTION("trailing bytes after the data") {
    write_bytes(path, good + "junk");
    REQUIRE_THROWS_WITH(load_safetensors(path), Contains(path) && Contains("cover only 40"));
  }
  SECTION("entry missing a field, or with an unknown one") {
    edit_header(path, [](nlohmann::json& h) { h["a.weight"].erase("shape"); });
    REQUIRE_THROWS_WITH(load_safetensors(path), Contains("'a.weight'") && Contains("missing field 'shape'"));
    write_bytes(path, good);
    edit_header(path, [](nlohmann::json& h) { h["a.weight"]["strides"] = {3, 1}; });
    REQUIRE_THROWS_WITH(load_safetensors(path), Contains("'a.weight'") && Contains("unknown field 'strides'"));
  }
  SECTION("metadata that is not string to string") {
    edit_header(path, [](nlohmann::json& h) { h["__metadata__"]["step"] = 12; });
    REQUIRE_THROWS_WITH(load_safetensors(path), Contains(path) && Contains("__metadata__") && Contains("'step'"));
  }
}

// ---- model directories --------------------------------------------------------------------------

TEST_CASE("model files: names and shapes are the LLaMA ones, in parameters() order", "[model_io]") {
  for (bool tied : {false, true}) {
    Model m = tiny_model(tied);
    auto shapes = model_tensor_shapes(m.config);
    auto params = m.parameters();
    REQUIRE(params.size() == shapes.size());
    REQUIRE(shapes.size() == static_cast<size_t>(1 + 9 * 2 + 1 + (tied ? 0 : 1)));
    for (size_t i = 0; i < params.size(); i++) {
      INFO(shapes[i].first);
      REQUIRE(params[i].name == shapes[i].first);
      REQUIRE(params[i].value->shape == shapes[i].second);
      REQUIRE(params[i].grad->shape == shapes[i].second);
    }
  }
  auto shapes = model_tensor_shapes(tiny_config(false));
  REQUIRE(shapes[0] == std::pair<std::string, Shape>{"tok_embeddings.weight", {37, 16}});
  REQUIRE(shapes[3] == std::pair<std::string, Shape>{"layers.0.attention.wk.weight", {8, 16}});  // NKV·HS = 2·4
  REQUIRE(shapes[5] == std::pair<std::string, Shape>{"layers.0.attention.wo.weight", {16, 16}});
  REQUIRE(shapes[9] == std::pair<std::string, Shape>{"layers.0.feed_forward.w2.weight", {16, 40}});
  REQUIRE(shapes.back() == std::pair<std::string, Shape>{"output.weight", {37, 16}});
}

TEST_CASE("model files: a saved model loads back bit-identically", "[model_io]") {
  for (bool tied : {false, true}) {
    const std::string dir = scratch_dir(tied ? "model_tied" : "model_untied") + "/nested/model";
    Model m = tiny_model(tied);
    save_model(m, dir);
    REQUIRE(fs::exists(dir + "/config.json"));
    REQUIRE(fs::exists(dir + "/model.safetensors"));
    REQUIRE_FALSE(fs::exists(dir + "/tokenizer.json"));
    for (const auto& entry : fs::directory_iterator(dir)) REQUIRE(entry.path().extension() != ".tmp");

    SafetensorsFile raw = load_safetensors(dir + "/model.safetensors");
    REQUIRE(raw.tensors.count("output.weight") == (tied ? 0u : 1u));
    REQUIRE(read_config(dir) == to_json(m.config));

    Model back = load_model(dir);
    REQUIRE(to_json(back.config) == to_json(m.config));
    auto a = m.parameters();
    auto b = back.parameters();
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); i++) {
      INFO(a[i].name);
      REQUIRE(b[i].value->shape == a[i].value->shape);
      REQUIRE(std::memcmp(b[i].value->ptr(), a[i].value->ptr(), a[i].value->size() * sizeof(real)) == 0);
      for (real g : b[i].grad->data) REQUIRE(g == 0);  // gradients come back zero
    }
    // The RoPE tables are rebuilt from the config.
    REQUIRE(back.rope_cos.data == m.rope_cos.data);
    REQUIRE(back.rope_sin.data == m.rope_sin.data);

    // Saving over an existing model replaces it.
    Model other = tiny_model(tied, 99);
    save_model(other, dir);
    Model back2 = load_model(dir);
    REQUIRE(back2.weights.tok_embeddings->data == other.weights.tok_embeddings->data);
  }
}

namespace {
// Stands in for a real tokenizer: records the directory it was asked to save into.
struct FakeTokenizer : Tokenizer {
  mutable std::string saved_to;
  std::vector<int> encode(const std::string&) const override { return {}; }
  std::string decode(const std::vector<int>&) const override { return ""; }
  int vocab_size() const override { return 37; }
  std::string kind() const override { return "fake"; }
  void save_to_dir(const std::string& dir) const override {
    saved_to = dir;
    write_file_atomic(dir + "/tokenizer.json", std::string("{}"));
  }
};
}  // namespace

TEST_CASE("model files: save_model_with_tokenizer writes the tokenizer into the directory", "[model_io]") {
  const std::string dir = scratch_dir("with_tokenizer") + "/m";
  FakeTokenizer tok;
  save_model_with_tokenizer(tiny_model(false), dir, &tok);
  REQUIRE(tok.saved_to == dir);
  REQUIRE(fs::exists(dir + "/tokenizer.json"));
  REQUIRE_NOTHROW(load_model(dir));
}

TEST_CASE("model files: loading rejects weights that contradict the config", "[model_io]") {
  const std::string dir = scratch_dir("contradict") + "/m";
  const std::string weights = dir + "/model.safetensors";
  const std::string config = dir + "/config.json";
  save_model(tiny_model(false), dir);

  SECTION("missing tensor") {
    // A well-formed file that simply lacks one tensor.
    SafetensorsFile f = load_safetensors(weights);
    f.tensors.erase("layers.1.ffn_norm.weight");
    std::vector<std::pair<std::string, const Tensor*>> list;
    for (const auto& [name, t] : f.tensors) list.push_back({name, &t});
    save_safetensors(weights, list);
    REQUIRE_THROWS_WITH(load_model(dir), Contains(weights) && Contains("missing tensor 'layers.1.ffn_norm.weight'"));
  }
  SECTION("unexpected tensor") {
    SafetensorsFile f = load_safetensors(weights);
    Tensor extra({3}, std::vector<real>{1, 2, 3});
    std::vector<std::pair<std::string, const Tensor*>> list;
    for (const auto& [name, t] : f.tensors) list.push_back({name, &t});
    list.push_back({"layers.0.attention.bias", &extra});
    save_safetensors(weights, list);
    REQUIRE_THROWS_WITH(load_model(dir), Contains(weights) && Contains("unexpected tensor 'layers.0.attention.bias'"));
  }
  SECTION("wrong shape") {
    SafetensorsFile f = load_safetensors(weights);
    f.tensors["layers.1.attention.wk.weight"] = Tensor({16, 16});  // as if NKV = NH
    std::vector<std::pair<std::string, const Tensor*>> list;
    for (const auto& [name, t] : f.tensors) list.push_back({name, &t});
    save_safetensors(weights, list);
    REQUIRE_THROWS_WITH(load_model(dir), Contains(weights) && Contains("'layers.1.attention.wk.weight'") &&
                                             Contains("(16, 16)") && Contains("expects (8, 16)") &&
                                             Contains("n_kv_heads = 2"));
  }
  SECTION("wrong dtype") {
    edit_header(weights, [](nlohmann::json& h) { h["norm.weight"]["dtype"] = "BF16"; });
    REQUIRE_THROWS_WITH(load_model(dir), Contains(weights) && Contains("'norm.weight'") && Contains("BF16"));
  }
  SECTION("truncated weights") {
    std::string bytes = read_bytes(weights);
    write_bytes(weights, bytes.substr(0, bytes.size() / 2));
    REQUIRE_THROWS_WITH(load_model(dir), Contains(weights) && Contains("truncated"));
  }
  SECTION("header length past the end") {
    write_bytes(weights, u64_le(1u << 20) + "{}");
    REQUIRE_THROWS_WITH(load_model(dir), Contains(weights) && Contains("runs past the end"));
  }
  SECTION("config says another width") {
    nlohmann::json j = read_config(dir);
    j["dim"] = 32;
    write_config(dir, j);
    REQUIRE_THROWS_WITH(load_model(dir), Contains(weights) && Contains("'tok_embeddings.weight'") &&
                                             Contains("(37, 16)") && Contains("expects (37, 32)") && Contains(config));
  }
  SECTION("config says fewer layers") {
    nlohmann::json j = read_config(dir);
    j["n_layers"] = 1;
    write_config(dir, j);
    REQUIRE_THROWS_WITH(load_model(dir), Contains(weights) && Contains("unexpected tensor 'layers.1."));
  }
  SECTION("config says more layers") {
    nlohmann::json j = read_config(dir);
    j["n_layers"] = 3;
    write_config(dir, j);
    REQUIRE_THROWS_WITH(load_model(dir), Contains(weights) && Contains("missing tensor 'layers.2."));
  }
  SECTION("config says tied, file has an output projection") {
    nlohmann::json j = read_config(dir);
    j["tie_embeddings"] = true;
    write_config(dir, j);
    REQUIRE_THROWS_WITH(load_model(dir),
                        Contains("unexpected tensor 'output.weight'") && Contains("tie_embeddings = true"));
  }
  SECTION("config says untied, file has none") {
    save_model(tiny_model(true), dir);
    nlohmann::json j = read_config(dir);
    j["tie_embeddings"] = false;
    write_config(dir, j);
    REQUIRE_THROWS_WITH(load_model(dir), Contains("missing tensor 'output.weight'"));
  }
  SECTION("config changes the vocabulary") {
    nlohmann::json j = read_config(dir);
    j["vocab_size"] = 38;
    write_config(dir, j);
    REQUIRE_THROWS_WITH(load_model(dir), Contains("'tok_embeddings.weight'") && Contains("vocab_size = 38"));
  }
}

TEST_CASE("model files: an invalid config is rejected before the weights are read", "[model_io]") {
  const std::string dir = scratch_dir("bad_config") + "/m";
  const std::string config = dir + "/config.json";
  save_model(tiny_model(false), dir);
  const nlohmann::json good = read_config(dir);
  auto with = [&](const char* key, const nlohmann::json& value) {
    nlohmann::json j = good;
    j[key] = value;
    write_config(dir, j);
  };
  SECTION("n_heads not dividing dim") {
    with("n_heads", 3);
    REQUIRE_THROWS_WITH(load_model(dir), Contains(config) && Contains("n_heads = 3") && Contains("divide dim"));
  }
  SECTION("n_kv_heads not dividing n_heads") {
    with("n_kv_heads", 3);
    REQUIRE_THROWS_WITH(load_model(dir), Contains(config) && Contains("n_kv_heads = 3"));
  }
  SECTION("non-positive sizes") {
    for (const char* key : {"dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "hidden_dim", "max_seq_len"}) {
      for (int bad : {0, -4}) {
        INFO(key << " = " << bad);
        with(key, bad);
        REQUIRE_THROWS_WITH(load_model(dir), Contains(config) && Contains(key) && Contains("positive"));
      }
    }
  }
  SECTION("missing or unknown field, wrong type, not JSON") {
    nlohmann::json j = good;
    j.erase("hidden_dim");
    write_config(dir, j);
    REQUIRE_THROWS_WITH(load_model(dir), Contains(config) && Contains("missing field 'hidden_dim'"));
    with("n_experts", 8);
    REQUIRE_THROWS_WITH(load_model(dir), Contains(config) && Contains("unknown field 'n_experts'"));
    with("dim", "sixteen");
    REQUIRE_THROWS_WITH(load_model(dir), Contains(config) && Contains("'dim'"));
    write_bytes(config, "{ \"dim\": 16,");
    REQUIRE_THROWS_WITH(load_model(dir), Contains(config) && Contains("JSON"));
  }
  SECTION("missing files") {
    fs::remove(dir + "/model.safetensors");
    REQUIRE_THROWS_WITH(load_model(dir), Contains(dir + "/model.safetensors"));
    fs::remove(config);
    REQUIRE_THROWS_WITH(load_model(dir), Contains(config));
    REQUIRE_THROWS_WITH(load_model(dir + "/does-not-exist"), Contains("does-not-exist"));
  }
}

TEST_CASE("model files: a failed load leaves the caller's model untouched", "[model_io]") {
  const std::string root = scratch_dir("no_half_load");
  const std::string good_dir = root + "/good";
  const std::string bad_dir = root + "/bad";
  save_model(tiny_model(false, 1), good_dir);
  save_model(tiny_model(false, 2), bad_dir);
  // Corrupt only the last tensor, so a loader that filled the model as it went would have
  // overwritten every earlier tensor before noticing.
  edit_header(bad_dir + "/model.safetensors", [](nlohmann::json& h) { h["output.weight"]["shape"] = {16, 37}; });

  Model m = load_model(good_dir);
  const Tensor before = *m.weights.tok_embeddings;
  REQUIRE_THROWS_WITH(m = load_model(bad_dir), Contains("'output.weight'") && Contains("(16, 37)"));
  REQUIRE(m.weights.tok_embeddings->data == before.data);
}
