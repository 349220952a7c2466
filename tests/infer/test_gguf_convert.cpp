// A model and its tokenizer through GGUF and back (infer/gguf_convert.h): names, shapes and keys as
// llama.cpp reads them, f32 weights bit for bit, both tokenizer families entry for entry, and
// clear errors for files this engine cannot run. (That llama.cpp itself runs our files and agrees
// token for token is tests/interop/llama_cpp.sh.)
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "common/gguf.h"
#include "engine/rng.h"
#include "infer/gguf_convert.h"
#include "model/llama2c.h"
#include "tests/common/test_helpers.h"
#include "tokenizer/bpe.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/sentencepiece.h"

using namespace foundry;

namespace {

const std::string kSrc = FOUNDRY_SOURCE_DIR;

ModelConfig small_config() {
  ModelConfig c;
  c.dim = 64;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 300;  // the fixture tokenizer's
  c.hidden_dim = 96;
  c.max_seq_len = 32;
  c.tie_embeddings = true;
  return c;
}

Model seeded_model(const ModelConfig& c) {
  Model m = make_model(c);
  Rng rng(7);
  init_weights(m, rng);
  return m;
}

void check_same_weights(const Model& a, const Model& b) {
  REQUIRE(a.entries.size() == b.entries.size());
  for (size_t k = 0; k < a.entries.size(); k++) {
    INFO(a.entries[k].name);
    CHECK(a.entries[k].name == b.entries[k].name);
    CHECK(a.values[k].shape == b.values[k].shape);
    REQUIRE(a.values[k].data.size() == b.values[k].data.size());
    CHECK(std::memcmp(a.values[k].data.data(), b.values[k].data.data(), a.values[k].data.size() * sizeof(real)) == 0);
  }
}

std::string metadata_string(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  return v ? v->s : "(missing)";
}

int64_t metadata_int(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  return v ? v->i : -1;
}

}  // namespace

TEST_CASE("gguf export: llama.cpp's tensor names", "[gguf]") {
  CHECK(gguf_tensor_name("tok_embeddings.weight") == "token_embd.weight");
  CHECK(gguf_tensor_name("norm.weight") == "output_norm.weight");
  CHECK(gguf_tensor_name("output.weight") == "output.weight");
  CHECK(gguf_tensor_name("layers.0.attention_norm.weight") == "blk.0.attn_norm.weight");
  CHECK(gguf_tensor_name("layers.11.attention.wq.weight") == "blk.11.attn_q.weight");
  CHECK(gguf_tensor_name("layers.1.attention.wo.weight") == "blk.1.attn_output.weight");
  CHECK(gguf_tensor_name("layers.2.feed_forward.w1.weight") == "blk.2.ffn_gate.weight");
  CHECK(gguf_tensor_name("layers.2.feed_forward.w3.weight") == "blk.2.ffn_up.weight");
  CHECK(gguf_tensor_name("layers.2.feed_forward.w2.weight") == "blk.2.ffn_down.weight");
  CHECK_THROWS(gguf_tensor_name("layers.2.mystery.weight"));
  CHECK(parse_gguf_weight_type("q8_0") == GgufWeightType::kQ8_0);
  CHECK_THROWS_WITH(parse_gguf_weight_type("q5_k"), Catch::Contains("expected f32, f16, q8_0 or q4_0"));
}

TEST_CASE("gguf export: a BPE model's file, and its import is the same model and tokenizer", "[gguf]") {
  const ModelConfig c = small_config();
  Model model = seeded_model(c);
  BpeTokenizer tok = BpeTokenizer::load_json(kSrc + "/tests/fixtures/tokenizer/hf/tokenizer.json");
  const std::string path = test::fresh_dir("test_scratch/gguf_bpe") + "/m.gguf";
  export_gguf(model, tok, "tiny", GgufWeightType::kF32, path);

  GgufFile f = read_gguf(path);
  CHECK(metadata_string(f, "general.architecture") == "llama");
  CHECK(metadata_string(f, "general.name") == "tiny");
  CHECK(metadata_int(f, "llama.embedding_length") == 64);
  CHECK(metadata_int(f, "llama.block_count") == 2);
  CHECK(metadata_int(f, "llama.attention.head_count") == 4);
  CHECK(metadata_int(f, "llama.attention.head_count_kv") == 2);
  CHECK(metadata_int(f, "llama.feed_forward_length") == 96);
  CHECK(metadata_int(f, "llama.context_length") == 32);
  CHECK(metadata_int(f, "llama.rope.dimension_count") == 16);
  CHECK(f.find("llama.attention.layer_norm_rms_epsilon")->f == Approx(1e-5));
  CHECK(f.find("llama.rope.freq_base")->f == 10000);
  CHECK(metadata_string(f, "tokenizer.ggml.model") == "gpt2");
  CHECK(metadata_string(f, "tokenizer.ggml.pre") == "gpt-2");
  CHECK(metadata_int(f, "tokenizer.ggml.eos_token_id") == tok.eos_id());
  const auto& tokens = f.find("tokenizer.ggml.tokens")->array;
  REQUIRE(tokens.size() == 300);
  CHECK(tokens[tok.byte_id(' ')].s == "\xC4\xA0");  // 'Ġ', GPT-2's spelling of a space
  CHECK(tokens[298].s == "<|endoftext|>");
  CHECK(f.find("tokenizer.ggml.token_type")->array[298].i == 3);  // control
  CHECK(f.find("tokenizer.ggml.merges")->array.size() == tok.merges().size());
  // A matrix (out, in) is ne {in, out}; tied embeddings: no output.weight.
  REQUIRE(f.find_tensor("blk.1.attn_k.weight"));
  CHECK(f.find_tensor("blk.1.attn_k.weight")->ne == std::vector<uint64_t>{64, 32});
  CHECK(f.find_tensor("blk.0.ffn_down.weight")->ne == std::vector<uint64_t>{96, 64});
  CHECK(f.find_tensor("token_embd.weight")->ne == std::vector<uint64_t>{64, 300});
  CHECK(f.find_tensor("output.weight") == nullptr);
  CHECK(f.tensors.size() == 1 + 2 * 9 + 1);

  GgufImport back = import_gguf(f, path);
  CHECK(back.notes.empty());
  CHECK(back.model.config.tie_embeddings);
  CHECK(to_json(back.model.config) == to_json(c));
  check_same_weights(model, back.model);
  auto* bpe = dynamic_cast<BpeTokenizer*>(back.tokenizer.get());
  REQUIRE(bpe);
  CHECK(bpe->vocab() == tok.vocab());
  CHECK(bpe->special_ids() == tok.special_ids());
  REQUIRE(bpe->merges().size() == tok.merges().size());
  for (size_t k = 0; k < tok.merges().size(); k++) {
    CHECK(bpe->merges()[k].left == tok.merges()[k].left);
    CHECK(bpe->merges()[k].right == tok.merges()[k].right);
    CHECK(bpe->merges()[k].result == tok.merges()[k].result);
  }
  const std::string text = test::read_bytes(kSrc + "/tests/fixtures/tokenizer/hf/text.txt");
  CHECK(bpe->encode(text) == tok.encode(text));
}

TEST_CASE("gguf export: stories260K (llama2.c vocabulary) round-trips exactly, and an untied model too", "[gguf]") {
  Model model = load_llama2c_checkpoint(kSrc + "/tests/fixtures/llama2c/stories260K.bin");
  auto tok = load_llama2c_tokenizer(kSrc + "/tests/fixtures/llama2c/tok512.bin");
  const std::string path = test::fresh_dir("test_scratch/gguf_llama2c") + "/m.gguf";
  export_gguf(model, *tok, "stories260K", GgufWeightType::kF32, path);
  GgufFile f = read_gguf(path);
  CHECK(metadata_string(f, "tokenizer.ggml.model") == "llama");
  const auto& tokens = f.find("tokenizer.ggml.tokens")->array;
  REQUIRE(tokens.size() == 512);
  CHECK(tokens[3].s == "<0x00>");
  CHECK(f.find("tokenizer.ggml.token_type")->array[3].i == 6);    // byte
  CHECK(f.find("tokenizer.ggml.token_type")->array[1].i == 3);    // <s>: control
  CHECK(f.find("tokenizer.ggml.token_type")->array[300].i == 1);  // normal
  bool spaces_marked = false;
  for (const GgufValue& t : tokens) {
    CHECK(t.s.find(' ') == std::string::npos);  // SentencePiece spells spaces as U+2581
    spaces_marked = spaces_marked || t.s.rfind("\xE2\x96\x81", 0) == 0;
  }
  CHECK(spaces_marked);
  CHECK(model.config.tie_embeddings);
  CHECK(f.find_tensor("output.weight") == nullptr);
  CHECK(metadata_int(f, "llama.attention.head_count_kv") == model.config.n_kv_heads);

  GgufImport back = import_gguf(f, path);
  CHECK(back.model.config.tie_embeddings);
  CHECK(to_json(back.model.config) == to_json(model.config));
  check_same_weights(model, back.model);
  auto* sp = dynamic_cast<Llama2cTokenizer*>(back.tokenizer.get());
  REQUIRE(sp);
  auto* orig = dynamic_cast<Llama2cTokenizer*>(tok.get());
  for (int id = 0; id < 512; id++) {
    CHECK(sp->piece(id) == orig->piece(id));
    CHECK(sp->score(id) == orig->score(id));
  }
  CHECK(sp->encode("Once upon a time, Lily met a cat.") == orig->encode("Once upon a time, Lily met a cat."));

  // Untied: the classifier is written as output.weight and read back as it was.
  ModelConfig c = small_config();
  c.tie_embeddings = false;
  Model untied = seeded_model(c);
  BpeTokenizer bpe = BpeTokenizer::load_json(kSrc + "/tests/fixtures/tokenizer/hf/tokenizer.json");
  export_gguf(untied, bpe, "untied", GgufWeightType::kF32, path);
  GgufFile u = read_gguf(path);
  REQUIRE(u.find_tensor("output.weight"));
  CHECK(u.find_tensor("output.weight")->ne == std::vector<uint64_t>{64, 300});
  GgufImport untied_back = import_gguf(u, path);
  CHECK_FALSE(untied_back.model.config.tie_embeddings);
  check_same_weights(untied, untied_back.model);
}

TEST_CASE("gguf import: files this engine cannot run are refused, naming the key or tensor", "[gguf]") {
  const ModelConfig c = small_config();
  Model model = seeded_model(c);
  BpeTokenizer tok = BpeTokenizer::load_json(kSrc + "/tests/fixtures/tokenizer/hf/tokenizer.json");
  auto kv = gguf_model_metadata(model, "m", GgufWeightType::kF32);
  for (auto& e : gguf_tokenizer_metadata(tok)) kv.push_back(e);
  auto tensors = gguf_model_tensors(model, GgufWeightType::kF32);
  auto import_error = [&](std::vector<std::pair<std::string, GgufValue>> meta, std::vector<GgufTensorOut> ts) {
    try {
      import_gguf(parse_gguf(serialize_gguf(meta, ts), "m.gguf"), "m.gguf");
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  CHECK(import_error(kv, tensors) == "(no error)");
  auto with = [&](const std::string& key, GgufValue v) {
    auto m = kv;
    for (auto& e : m)
      if (e.first == key) e.second = v;
    return m;
  };
  auto without = [&](const std::string& key) {
    auto m = kv;
    for (size_t k = 0; k < m.size(); k++)
      if (m[k].first == key) m.erase(m.begin() + k);
    return m;
  };
  CHECK_THAT(import_error(with("general.architecture", GgufValue::string("qwen2")), tensors),
             Catch::Contains("general.architecture is \"qwen2\"; only \"llama\" is supported"));
  CHECK_THAT(import_error(without("llama.block_count"), tensors),
             Catch::Contains("metadata key llama.block_count is missing"));
  CHECK_THAT(import_error(with("llama.rope.dimension_count", GgufValue::u32(8)), tensors),
             Catch::Contains("rotates the whole head"));
  CHECK_THAT(import_error(with("llama.attention.head_count", GgufValue::u32(5)), tensors),
             Catch::Contains("invalid model"));
  CHECK_THAT(import_error(with("tokenizer.ggml.model", GgufValue::string("bert")), tensors),
             Catch::Contains("only \"gpt2\" and \"llama\" are supported"));
  CHECK_THAT(import_error(with("tokenizer.ggml.merges", GgufValue::strings({"a"})), tensors),
             Catch::Contains("merge 0 \"a\" is not two tokens"));
  auto missing = tensors;
  missing.erase(missing.begin() + 3);
  CHECK_THAT(import_error(kv, missing), Catch::Contains("tensor blk.0.attn_k.weight is missing"));
  auto reshaped = tensors;
  reshaped[3].ne = {32, 64};
  CHECK_THAT(import_error(kv, reshaped), Catch::Contains("blk.0.attn_k.weight has ne {32, 64}, expected {64, 32}"));
}

TEST_CASE("gguf export: f16, q8_0 and q4_0 round-trip block for block", "[gguf]") {
  Model model = load_llama2c_checkpoint(kSrc + "/tests/fixtures/llama2c/stories260K.bin");
  auto tok = load_llama2c_tokenizer(kSrc + "/tests/fixtures/llama2c/tok512.bin");
  const std::string dir = test::fresh_dir("test_scratch/gguf_quant");
  for (auto [type, ggml] :
       {std::pair{GgufWeightType::kF16, GgmlType::kF16}, std::pair{GgufWeightType::kQ8_0, GgmlType::kQ8_0},
        std::pair{GgufWeightType::kQ4_0, GgmlType::kQ4_0}}) {
    INFO(ggml_type_name((uint32_t)ggml));
    const std::string path = dir + "/a.gguf", again = dir + "/b.gguf";
    export_gguf(model, *tok, "stories260K", type, path);
    GgufFile f = read_gguf(path);
    CHECK(f.find_tensor("blk.0.attn_q.weight")->type == ggml);
    CHECK(f.find_tensor("token_embd.weight")->type == ggml);
    CHECK(f.find_tensor("blk.0.attn_norm.weight")->type == GgmlType::kF32);  // gains stay exact
    // w2's rows have F = 172 values, not whole blocks of 32: exact too, except in f16.
    CHECK(f.find_tensor("blk.0.ffn_down.weight")->type == (ggml == GgmlType::kF16 ? GgmlType::kF16 : GgmlType::kF32));
    if (ggml == GgmlType::kQ8_0) CHECK(f.find_tensor("blk.0.attn_q.weight")->bytes == 64 * 64 / 32 * 34);

    GgufImport back = import_gguf(f, path);
    CHECK(back.notes.size() == 1);  // "... converted to float32"
    // The weights are the dequantized blocks: close to the originals, not equal.
    const size_t wq = model.index_of("layers.0.attention.wq.weight");
    double worst = 0;
    for (size_t i = 0; i < model.values[wq].data.size(); i++)
      worst = std::max(worst, std::abs(double(model.values[wq].data[i]) - back.model.values[wq].data[i]));
    CHECK(worst > 0);
    CHECK(worst < (ggml == GgmlType::kQ4_0 ? 0.2 : 0.02));
    // Exported again in the same type: every tensor's bytes are the same.
    export_gguf(back.model, *back.tokenizer, "stories260K", type, again);
    GgufFile g = read_gguf(again);
    REQUIRE(g.tensors.size() == f.tensors.size());
    for (size_t k = 0; k < f.tensors.size(); k++) {
      INFO(f.tensors[k].name);
      CHECK(g.tensors[k].type == f.tensors[k].type);
      CHECK(std::string(g.data(g.tensors[k]), g.tensors[k].bytes) ==
            std::string(f.data(f.tensors[k]), f.tensors[k].bytes));
    }
  }
}

TEST_CASE("gguf export: the first bytes are the ones lesson 22 works out by hand", "[gguf]") {
  Model model = seeded_model(small_config());
  BpeTokenizer tok = BpeTokenizer::load_json(kSrc + "/tests/fixtures/tokenizer/hf/tokenizer.json");
  const std::string path = test::fresh_dir("test_scratch/gguf_bytes") + "/m.gguf";
  export_gguf(model, tok, "tiny", GgufWeightType::kF32, path);
  const std::string b = test::read_bytes(path);
  REQUIRE(b.size() > 69);
  auto u64 = [&](size_t at) {
    uint64_t v;
    std::memcpy(&v, b.data() + at, 8);
    return v;
  };
  CHECK(b.substr(0, 4) == "GGUF");
  CHECK(b.substr(4, 4) == std::string("\x03\0\0\0", 4));
  CHECK(u64(8) == 20);  // 2 layers, tied: 1 + 2 × 9 + 1 tensors
  CHECK(u64(16) == read_gguf(path).metadata.size());
  CHECK(u64(24) == 20);
  CHECK(b.substr(32, 20) == "general.architecture");
  CHECK(b.substr(52, 4) == std::string("\x08\0\0\0", 4));
  CHECK(u64(56) == 5);
  CHECK(b.substr(64, 5) == "llama");
}

TEST_CASE("gguf export: a chat model carries its ChatML template", "[gguf]") {
  BpeTokenizer tok = add_chat_tokens(BpeTokenizer::load_json(kSrc + "/tests/fixtures/tokenizer/hf/tokenizer.json"));
  ModelConfig c = small_config();
  c.vocab_size = tok.vocab_size();
  Model model = seeded_model(c);
  const std::string path = test::fresh_dir("test_scratch/gguf_chat") + "/m.gguf";
  export_gguf(model, tok, "chat", GgufWeightType::kF32, path);
  GgufFile f = read_gguf(path);
  CHECK(metadata_string(f, "tokenizer.chat_template") == chat_template_jinja());
  CHECK(metadata_int(f, "tokenizer.ggml.eot_token_id") == tok.special_id(kImEnd));
  // Without the chat tokens there is no template.
  BpeTokenizer plain = BpeTokenizer::load_json(kSrc + "/tests/fixtures/tokenizer/hf/tokenizer.json");
  for (const auto& [key, value] : gguf_tokenizer_metadata(plain)) CHECK(key != "tokenizer.chat_template");
}
